//! Velero 1.18.3's own diagnosis block, as the real node-agent wrote it when node-agent's
//! loadAffinity matched no node (tests/env real node), read with and without its ConfigMap.

use serde_json::json;

use crate::findings::{
    ConfigMapRead, VeleroConfigMap, diagnose,
    rules::tests::{load, rules_of},
};

#[test]
fn an_unschedulable_data_mover_pod_comes_before_the_prepare_timeout_naming_its_config_map() {
    let mut e = load("data-mover-pod-unschedulable");
    e.infra.set_node_agent_daemonset(
        "resources/daemonset-node-agent.yaml",
        &json!({"spec": {"template": {"spec": {"containers": [{"name": "node-agent",
            "args": ["node-agent", "server", "--node-agent-configmap=node-agent-config"]}]}}}}),
    );
    e.infra.add_velero_config_map(
        VeleroConfigMap::NodeAgent,
        "node-agent-config".into(),
        ConfigMapRead::Read {
            path: "resources/configmap/node-agent-config.yaml".into(),
            data: json!({"node-agent-config.json":
                r#"{"loadAffinity":[{"nodeSelector":{"matchLabels":{"vdo.test/data-mover":"nowhere"}}}]}"#}),
        },
    );
    let found = diagnose(&e);
    assert_eq!(found[0].rule, "data-path-pod-unschedulable");
    assert!(
        found[0].title.starts_with(
            "The data-path pod of DataUpload/bk-2421-001-52ef-88mgs could not be scheduled: 0/4 nodes are available: 4 node(s) didn't match Pod's node affinity/selector."
        ),
        "{}",
        found[0].title
    );
    assert!(
        found[0]
            .quote
            .contains("key node-agent-config.json: loadAffinity [{"),
        "{}",
        found[0].quote
    );
    let step = found[0].next_step.as_deref().unwrap_or_default();
    assert!(
        step.contains("kubectl -n velero edit configmap node-agent-config"),
        "{step}"
    );
    // The canceled DataUpload is its consequence, not a cause of its own.
    let canceled = found
        .iter()
        .find(|f| f.rule == "volume-operation-failed")
        .expect("the DataUpload's finding");
    assert_eq!(canceled.consequence_of, Some(1));
}

#[test]
fn without_a_config_map_the_step_points_at_node_agent_s_placement() {
    let e = load("data-mover-pod-unschedulable");
    let found = diagnose(&e);
    assert_eq!(rules_of(&found)[0], "data-path-pod-unschedulable");
    let step = found[0].next_step.as_deref().unwrap_or_default();
    assert!(step.contains("get daemonset node-agent -o yaml"), "{step}");
}

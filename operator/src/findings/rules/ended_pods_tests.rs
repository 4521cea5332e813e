//! The rule on shapes other than the one it was written from (Velero 1.18's PodVolumeBackup
//! pod, deleted, its limit from node-agent's ConfigMap): a data mover's pod that is still there
//! (Velero 1.14 keeps it, named otherwise than its DataUpload), its ConfigMap refused to the
//! operator; a PodVolumeRestore's pod killed by its exit code only, with a termination message;
//! no ConfigMap at all.

use serde_json::{Value, json};

use crate::findings::{
    ConfigMapRead, Evidence, VeleroConfigMap, diagnose, evidence::PodRole, rules::tests::rules_of,
};

/// A Backup PartiallyFailed whose operation `kind`/`op` Failed with `message`.
fn evidence(kind: &str, op: &str, message: &str) -> Evidence {
    let mut e = Evidence::default();
    e.set_target(
        "resources/backup.yaml",
        &json!({"kind": "Backup", "metadata": {"name": "b1", "namespace": "velero"},
                "status": {"phase": "PartiallyFailed"}}),
    );
    e.add_operation(
        &format!("resources/{}/{op}.yaml", kind.to_lowercase()),
        kind,
        &json!({"kind": kind, "metadata": {"name": op, "namespace": "velero"},
                "spec": {"node": "node-real"},
                "status": {"phase": "Failed", "message": message}}),
    );
    e
}

fn pod(name: &str, label: (&str, &str), ended: Value, annotations: Value) -> Value {
    json!({
        "metadata": {"name": name, "labels": {label.0: label.1}, "annotations": annotations},
        "spec": {"nodeName": "node-real", "containers": [
            {"name": "main", "resources": {"limits": {"memory": "64Mi"}}}]},
        "status": {"phase": "Failed", "containerStatuses": [
            {"name": "main", "restartCount": 0, "state": {"terminated": ended}}]},
    })
}

fn with_config_map(e: &mut Evidence, read: ConfigMapRead) {
    e.infra.set_node_agent_daemonset(
        "resources/daemonset-node-agent.yaml",
        &json!({"spec": {"template": {"spec": {"containers": [{"name": "node-agent",
            "args": ["node-agent", "server", "--node-agent-configmap=na-config"]}]}}}}),
    );
    e.infra
        .add_velero_config_map(VeleroConfigMap::NodeAgent, "na-config".into(), read);
}

#[test]
fn a_deleted_data_path_pod_killed_for_memory_comes_before_the_failed_volume_naming_its_config_map()
{
    let mut e = evidence("PodVolumeBackup", "b1-x", "data path backup failed: ");
    e.add_pod(
        "pods/recorded/b1-x.yaml",
        PodRole::DataPath,
        &pod(
            "b1-x",
            ("velero.io/pod-volume-backup", "b1-x"),
            json!({"reason": "OOMKilled", "exitCode": 137}),
            json!({"velerodebug.io/recorded-at": "2026-11-29T10:00:00Z"}),
        ),
    );
    with_config_map(
        &mut e,
        ConfigMapRead::Read {
            path: "resources/configmap/na-config.yaml".into(),
            data: json!({"node-agent-config.json": r#"{"podResources":{"memoryLimit":"64Mi"}}"#}),
        },
    );
    let found = diagnose(&e);
    assert_eq!(
        rules_of(&found),
        ["data-path-pod-out-of-memory", "volume-operation-failed"]
    );
    let first = &found[0];
    for want in [
        "OOMKilled",
        "exit code 137",
        "ConfigMap velero/na-config, key node-agent-config.json: podResources.memoryLimit 64Mi",
        "recorded at 2026-11-29T10:00:00Z, before Velero deleted the pod",
    ] {
        assert!(first.quote.contains(want), "{want} not in {}", first.quote);
    }
    assert!(
        first.title.contains("PodVolumeBackup/b1-x"),
        "{}",
        first.title
    );
    let step = first.next_step.as_deref().unwrap();
    assert!(
        step.contains("kubectl -n velero edit configmap na-config"),
        "{step}"
    );
    assert_eq!(found[1].consequence_of, Some(1));
}

#[test]
fn a_data_mover_pod_still_there_with_its_config_map_refused_says_what_was_withheld() {
    let mut e = evidence("DataUpload", "b1-du", "");
    e.add_pod(
        "pods/b1-du-7f8x.yaml",
        PodRole::DataPath,
        &pod(
            "b1-du-7f8x",
            ("velero.io/data-upload", "b1-du"),
            json!({"reason": "OOMKilled", "exitCode": 137}),
            json!({}),
        ),
    );
    with_config_map(
        &mut e,
        ConfigMapRead::Refused("forbidden; rbac.veleroConfigMaps does not list it".into()),
    );
    let found = diagnose(&e);
    assert_eq!(found[0].rule, "data-path-pod-out-of-memory");
    assert!(
        found[0].title.contains("DataUpload/b1-du"),
        "{}",
        found[0].title
    );
    assert!(
        found[0]
            .quote
            .contains("could not be read (forbidden; rbac.veleroConfigMaps"),
        "{}",
        found[0].quote
    );
    assert!(
        !found[0].quote.contains("Velero deleted"),
        "{}",
        found[0].quote
    );
}

#[test]
fn a_restore_pod_that_ended_in_error_quotes_its_termination_message_without_a_config_map() {
    let mut e = evidence("PodVolumeRestore", "r1-y", "data path restore failed: ");
    e.add_pod(
        "pods/r1-y.yaml",
        PodRole::DataPath,
        &pod(
            "r1-y",
            ("velero.io/pod-volume-restore", "r1-y"),
            json!({"reason": "Error", "exitCode": 2,
                   "message": "open /host_pods/x/volumes: no such file or directory"}),
            json!({}),
        ),
    );
    let found = diagnose(&e);
    assert_eq!(
        rules_of(&found),
        ["data-path-pod-ended", "volume-operation-failed"]
    );
    assert!(
        found[0].quote.contains("no such file or directory"),
        "{}",
        found[0].quote
    );
    assert!(!found[0].quote.contains("ConfigMap"), "{}", found[0].quote);
    let step = found[0].next_step.as_deref().unwrap();
    assert!(step.contains("kubectl -n velero logs r1-y"), "{step}");
}

#[test]
fn out_of_memory_without_a_config_map_points_at_the_limit_range() {
    let mut e = evidence("PodVolumeBackup", "b1-x", "");
    e.add_pod(
        "pods/b1-x.yaml",
        PodRole::DataPath,
        &pod(
            "b1-x",
            ("velero.io/pod-volume-backup", "b1-x"),
            json!({"reason": "OOMKilled", "exitCode": 137}),
            json!({}),
        ),
    );
    let found = diagnose(&e);
    assert_eq!(found[0].rule, "data-path-pod-out-of-memory");
    let step = found[0].next_step.as_deref().unwrap();
    assert!(step.contains("get limitrange"), "{step}");
}

#[test]
fn a_data_path_pod_that_succeeded_is_no_finding() {
    let mut e = evidence("PodVolumeBackup", "b1-x", "boom");
    e.add_pod(
        "pods/b1-x.yaml",
        PodRole::DataPath,
        &pod(
            "b1-x",
            ("velero.io/pod-volume-backup", "b1-x"),
            json!({"reason": "Completed", "exitCode": 0}),
            json!({}),
        ),
    );
    assert_eq!(rules_of(&diagnose(&e)), ["volume-operation-failed"]);
}

/// Velero before 1.18 cancels the operation of a data-path pod the kubelet refused with only
/// `Pod is in abnormal state`; the pod's own status (kept by the recorder) holds the kubelet's
/// words, and the rule names them from there.
#[test]
fn a_rejected_data_mover_pod_velero_does_not_quote_is_named_from_its_own_status() {
    let mut e = evidence(
        "DataUpload",
        "b1-du",
        "found a du velero/b1-du with expose error: Pod is in abnormal state [Failed], message []",
    );
    let mut rejected = pod(
        "b1-du",
        ("velero.io/data-upload", "b1-du"),
        json!({}),
        json!({"velerodebug.io/recorded-at": "2026-11-29T10:00:00Z"}),
    );
    rejected["status"] = json!({"phase": "Failed", "reason": "OutOfcpu",
        "message": "Pod was rejected: Node didn't have enough resource: cpu, requested: 64000, used: 0, capacity: 2000"});
    e.add_pod("pods/recorded/b1-du.yaml", PodRole::DataPath, &rejected);
    with_config_map(&mut e, ConfigMapRead::Missing);
    let found = diagnose(&e);
    assert_eq!(found[0].rule, "data-path-pod-rejected", "{found:?}");
    assert_eq!(
        found[0].title,
        "Data-path pod b1-du of DataUpload/b1-du was rejected by its node node-real: Node didn't have enough resource: cpu"
    );
    for want in [
        "OutOfcpu",
        "requested: 64000",
        "before Velero deleted the pod",
    ] {
        assert!(
            found[0].quote.contains(want),
            "{want} not in {}",
            found[0].quote
        );
    }
    let step = found[0].next_step.as_deref().unwrap_or_default();
    assert!(step.contains("edit configmap na-config"), "{step}");
    let failed = found
        .iter()
        .position(|f| f.rule == "volume-operation-failed");
    assert_eq!(
        failed.map(|i| found[i].consequence_of),
        Some(Some(1)),
        "{found:?}"
    );
}

/// A pod that failed for another reason than the kubelet's admission is no rejection.
#[test]
fn a_data_path_pod_failed_for_another_reason_is_not_called_rejected() {
    let mut e = evidence("DataUpload", "b1-du", "Pod is in abnormal state");
    let mut evicted = pod(
        "b1-du",
        ("velero.io/data-upload", "b1-du"),
        json!({}),
        json!({}),
    );
    evicted["status"] = json!({"phase": "Failed", "reason": "Evicted",
        "message": "The node was low on resource: ephemeral-storage."});
    e.add_pod("pods/b1-du.yaml", PodRole::DataPath, &evicted);
    let found = diagnose(&e);
    assert!(
        !rules_of(&found).contains(&"data-path-pod-rejected"),
        "{found:?}"
    );
}

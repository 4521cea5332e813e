//! Nodes of a test's own, faked by kwok, and the node-agent pod the DaemonSet places on one,
//! restarted with the logs a test gives it.

use std::time::Duration;

use anyhow::Result;
use kube::{
    Api, Client, ResourceExt,
    api::{DynamicObject, Patch, PatchParams, PostParams},
    core::ApiResource,
};

use crate::{
    cleanup::Cleanup,
    context::{TestCtx, unique_name},
    kwok_logs::{cri_lines, kwok_logs_resource},
    polling::eventually,
};

/// A Node of the test's own, faked by kwok (its annotation), with `taints`; deleted at
/// cleanup. Waits until it is Ready. The shared nodes, which other tests run on, stay as they
/// are.
pub async fn fake_node(
    client: &Client,
    cleanup: &Cleanup,
    prefix: &str,
    taints: serde_json::Value,
) -> Result<String> {
    use k8s_openapi::api::core::v1::Node;
    let name = unique_name(prefix);
    let node: Node = serde_json::from_value(serde_json::json!({
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                       "kubernetes.io/arch": "amd64", "type": "kwok"}
        },
        "spec": {"taints": taints},
        "status": {
            "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
            "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"}
        }
    }))?;
    let nodes: Api<Node> = Api::all(client.clone());
    nodes.create(&PostParams::default(), &node).await?;
    cleanup.delete(&ApiResource::erase::<Node>(&()), None, &name);
    eventually(
        &format!("node {name} Ready"),
        Duration::from_secs(60),
        || async {
            let n = nodes.get(&name).await?;
            let ready = n
                .status
                .and_then(|s| s.conditions)
                .into_iter()
                .flatten()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            Ok(ready.then_some(()))
        },
    )
    .await?;
    Ok(name)
}

/// The node-agent pod on `node` (a node of the test's own, [`fake_node`], so no other test
/// sees it), restarted: its container log is `current`, its previous instance's `previous`
/// (CRI log files kwok serves), and its status says it restarted once. Returns the pod.
pub async fn restart_node_agent_on(
    t: &TestCtx,
    node: &str,
    current: &[String],
    previous: &[String],
) -> Result<String> {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::ListParams;
    // The DaemonSet places a node-agent on the new node.
    let pods: Api<Pod> = Api::namespaced(t.client.clone(), &t.env.namespace);
    let agent = eventually(
        &format!("a Running node-agent on {node}"),
        Duration::from_secs(90),
        || async {
            let listed = pods
                .list(&ListParams::default().labels("name=node-agent"))
                .await?;
            Ok(listed.items.into_iter().find(|p| {
                p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node)
                    && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
            }))
        },
    )
    .await?
    .name_any();
    t.cleanup.object::<Pod>(&t.env.namespace, &agent);
    let dir = &t.env.pod_logs_dir;
    let current_file = dir.join(format!("{agent}.log"));
    let previous_file = dir.join(format!("{agent}.previous.log"));
    std::fs::write(&current_file, cri_lines(current))?;
    std::fs::write(&previous_file, cri_lines(previous))?;
    let logs: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Logs",
        "metadata": {"name": agent, "namespace": t.env.namespace},
        "spec": {"logs": [{"containers": ["node-agent"],
                           "logsFile": current_file, "previousLogsFile": previous_file}]},
    }))?;
    let logs_api: Api<DynamicObject> =
        Api::namespaced_with(t.client.clone(), &t.env.namespace, &kwok_logs_resource());
    logs_api.create(&PostParams::default(), &logs).await?;
    t.cleanup
        .delete(&kwok_logs_resource(), Some(&t.env.namespace), &agent);
    // The kubelet's record of the restart, as a crashed container leaves it.
    let restarted = serde_json::json!({"status": {"containerStatuses": [{
        "name": "node-agent", "ready": true, "restartCount": 1,
        "image": "velero/velero", "imageID": "", "started": true,
        "state": {"running": {"startedAt": "2026-11-23T04:01:00Z"}},
        "lastState": {"terminated": {"exitCode": 2, "reason": "Error",
                                     "startedAt": "2026-11-23T03:00:00Z",
                                     "finishedAt": "2026-11-23T04:00:30Z"}},
    }]}});
    pods.patch_status(
        &agent,
        &PatchParams::default(),
        &Patch::Strategic(restarted),
    )
    .await?;
    Ok(agent)
}

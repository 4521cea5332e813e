//! The nodes around the target's data path: every node's readiness, taints and node-agent pod
//! (or why the node-agent DaemonSet cannot run there) in one table, resources/nodes.txt, and
//! the YAML of the nodes that ran the target's volume operations. Nodes and node-agent pods
//! are read a page at a time: a cluster of thousands of nodes costs one page of memory.

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::{Api, ResourceExt, api::ListParams};

use super::{CollectError, Found, Sink, Sources};
use crate::{
    findings::{Evidence, NODES_TABLE},
    kubernetes::{self, Pages},
    redact::MaskCounts,
    tar_gz::EntryPath,
    velero,
};

/// Readiness, taints and node-agent of every node; YAML of the involved ones. Runs after
/// DaemonSet node-agent was collected (the table says why it cannot run on a node).
pub(super) async fn nodes(
    src: &Sources<'_>,
    out: &mut Sink,
    found: &mut Found,
) -> Result<(), CollectError> {
    node_agent_pods(src, out, found).await;
    every_node(src, out, found).await?;
    if !found.summary.evidence.infra.all_nodes_listed {
        involved_nodes_one_by_one(src, out, found).await?;
    }
    if found.summary.evidence.infra.nodes.is_empty() {
        return Ok(());
    }
    let table = nodes_table(&found.summary.evidence);
    let mut redacted = String::with_capacity(table.len());
    for line in table.lines() {
        redacted.push_str(&out.redact_line(line));
        redacted.push('\n');
    }
    out.add_text(&nodes_table_path(), &redacted)
}

/// [`NODES_TABLE`], the path the findings name.
fn nodes_table_path() -> EntryPath {
    EntryPath::new(&["resources"], "nodes", "txt")
}

/// The node-agent pod of every node (only what the findings need of each), so a node without
/// a running one is named, and why.
async fn node_agent_pods(src: &Sources<'_>, out: &mut Sink, found: &mut Found) {
    let api: Api<Pod> = src.namespaced();
    let selector = ListParams::default().labels(velero::NODE_AGENT_POD_SELECTOR);
    let mut pages = Pages::new(&api, selector, src.limits);
    let mut running = Vec::new();
    loop {
        let page = match pages.next().await {
            Ok(Some(page)) => page,
            Ok(None) => break,
            Err(e) => {
                out.warn(format!("node-agent pods: could not be listed: {e}"));
                return;
            }
        };
        for pod in page {
            let status = pod.status.as_ref();
            let phase = status.and_then(|s| s.phase.clone());
            let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
            // Names, phase, reasons and the kubelet's messages (redacted as every text is: a
            // message names a path, an image or a Secret, never its data).
            let waiting: Vec<serde_json::Value> = status
                .and_then(|s| s.container_statuses.as_ref())
                .into_iter()
                .flatten()
                .filter_map(|cs| cs.state.as_ref()?.waiting.as_ref())
                .filter_map(|w| {
                    let message = w
                        .message
                        .as_deref()
                        .map(|m| out.redact_line(m).into_owned());
                    Some(serde_json::json!({"state": {"waiting": {
                        "reason": w.reason.clone()?, "message": message,
                    }}}))
                })
                .collect();
            let facts = serde_json::json!({
                "metadata": {
                    "name": pod.name_any(),
                    "deletionTimestamp": pod.metadata.deletion_timestamp.as_ref().map(|t| t.0.to_string()),
                },
                "spec": {"nodeName": node},
                "status": {
                    "phase": phase,
                    "reason": status.and_then(|s| s.reason.clone()),
                    "message": status.and_then(|s| s.message.as_deref()).map(|m| out.redact_line(m).into_owned()),
                    "containerStatuses": waiting,
                },
            });
            found.summary.evidence.infra.add_node_agent_pod(&facts);
            if let (Some("Running"), Some(node)) = (phase.as_deref(), node) {
                running.push(node);
            }
        }
    }
    if pages.truncated {
        out.warn(format!(
            "node-agent pods: more than {} pods; only the first were looked at",
            src.limits.max_list_items
        ));
    }
    // The logs step sets them too when it lists node-agent pods for their logs.
    if found.summary.evidence.node_agent_nodes.is_none() {
        found.summary.evidence.set_node_agent_nodes(running);
    }
}

/// Every node, a page at a time: the involved ones written as YAML, all of them into the
/// evidence.
async fn every_node(
    src: &Sources<'_>,
    out: &mut Sink,
    found: &mut Found,
) -> Result<(), CollectError> {
    let api: Api<Node> = Api::all(src.client.clone());
    let mut pages = Pages::new(&api, ListParams::default(), src.limits);
    let mut complete = true;
    let mut any = false;
    loop {
        let page = match pages.next().await {
            Ok(Some(page)) => page,
            Ok(None) => break,
            Err(e) => {
                out.warn(format!("nodes: could not be listed: {e}"));
                complete = false;
                break;
            }
        };
        any = true;
        for node in page {
            let name = node.name_any();
            if found.involved_nodes.contains(&name) {
                let path = node_path(&name);
                let seen = out.add_object_seen(&path, &node)?;
                found
                    .summary
                    .evidence
                    .infra
                    .add_node(&path.to_string(), &seen);
            } else {
                // Not written whole, so what is masked here is not counted: its table line is
                // counted as it is written.
                let mut value = serde_json::to_value(&node).unwrap_or_default();
                out.redactor
                    .redact_json_counted(&mut value, &mut MaskCounts::default());
                found.summary.evidence.infra.add_node(NODES_TABLE, &value);
            }
        }
    }
    for why in std::mem::take(&mut pages.undecodable) {
        out.warn(format!("nodes: one left out, it could not be read: {why}"));
        complete = false;
    }
    if pages.truncated {
        out.warn(format!(
            "nodes: more than {} nodes; only the first are in {NODES_TABLE}",
            src.limits.max_list_items
        ));
        complete = false;
    }
    let complete = complete && any;
    found.summary.evidence.infra.all_nodes_listed = complete;
    if complete {
        for name in found.involved_nodes.clone() {
            if found.summary.evidence.infra.nodes.contains_key(&name) {
                continue;
            }
            // Named by an operation's status, which anyone who may edit it writes.
            out.warn(if kubernetes::is_object_name(&name) {
                format!("node {name} (named by an operation) no longer exists")
            } else {
                format!("node {name:?} (named by an operation) is not a node name")
            });
        }
    }
    Ok(())
}

fn node_path(name: &str) -> EntryPath {
    EntryPath::new(&["resources", "node"], name, "yaml")
}

/// When not every node could be listed (no right to, a list cut short): the involved ones
/// not seen yet, each by name.
async fn involved_nodes_one_by_one(
    src: &Sources<'_>,
    out: &mut Sink,
    found: &mut Found,
) -> Result<(), CollectError> {
    let nodes: Api<Node> = Api::all(src.client.clone());
    for name in found.involved_nodes.clone() {
        if found.summary.evidence.infra.nodes.contains_key(&name) {
            continue;
        }
        // Named by an operation's status, which anyone who may edit it writes.
        if !kubernetes::is_object_name(&name) {
            out.warn(format!(
                "node {name:?} (named by an operation) is not a node name"
            ));
            continue;
        }
        match src.timed(nodes.get_opt(&name)).await {
            Ok(Some(n)) => {
                let path = node_path(&name);
                let seen = out.add_object_seen(&path, &n)?;
                found
                    .summary
                    .evidence
                    .infra
                    .add_node(&path.to_string(), &seen);
            }
            Ok(None) => out.warn(format!(
                "node {name} (named by an operation) no longer exists"
            )),
            Err(e) => out.warn(format!("node {name}: {e}")),
        }
    }
    Ok(())
}

/// resources/nodes.txt: one line per node, its readiness, whether it takes new pods, its
/// node-agent pod (or why there is none) and its taints.
fn nodes_table(e: &Evidence) -> String {
    let infra = &e.infra;
    let mut table = String::from(
        "# Every node: Ready condition, cordoned or not, the node-agent pod on it (or why DaemonSet node-agent cannot run there), taints.\n\
         # YAML of the nodes that ran the target's volume operations: resources/node/.\n\
         NAME\tREADY\tSCHEDULING\tNODE-AGENT\tTAINTS\n",
    );
    for node in infra.nodes.values() {
        let ready = if node.ready_detail.is_empty() {
            node.ready.clone()
        } else {
            format!("{} ({})", node.ready, node.ready_detail)
        };
        let scheduling = if node.unschedulable {
            "cordoned"
        } else {
            "schedulable"
        };
        let agent = match infra.node_agent_pods.get(&node.name) {
            Some(pod) => {
                let reason = pod
                    .reason
                    .as_deref()
                    .map(|r| format!(", {r}"))
                    .unwrap_or_default();
                format!("{} ({}{reason})", pod.name, pod.phase)
            }
            None if node.agent_blockers.is_empty() => "none".to_string(),
            None => format!("none: {}", node.agent_blockers.join("; ")),
        };
        let taints = if node.taints.is_empty() {
            "-".to_string()
        } else {
            node.taints.join(",")
        };
        table.push_str(&format!(
            "{}\t{ready}\t{scheduling}\t{agent}\t{taints}\n",
            node.name
        ));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_table_is_where_the_findings_say() {
        assert_eq!(nodes_table_path().to_string(), NODES_TABLE);
    }

    #[test]
    fn the_table_says_why_a_node_has_no_node_agent() {
        let mut e = Evidence::default();
        e.infra.set_node_agent_daemonset(
            "resources/daemonset-node-agent.yaml",
            &json!({"spec": {"template": {"spec": {}}}}),
        );
        e.infra
            .add_node_agent_pod(&json!({"metadata": {"name": "node-agent-a"},
            "spec": {"nodeName": "node-0"}, "status": {"phase": "Running"}}));
        e.infra
            .add_node_agent_pod(&json!({"metadata": {"name": "node-agent-b"},
            "spec": {"nodeName": "node-1"}, "status": {"phase": "Running",
                "containerStatuses": [{"state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}}));
        let ready = json!([{"type": "Ready", "status": "True"}]);
        e.infra.add_node(
            NODES_TABLE,
            &json!({"metadata": {"name": "node-0"}, "status": {"conditions": ready}}),
        );
        e.infra.add_node(
            NODES_TABLE,
            &json!({"metadata": {"name": "node-1"}, "spec": {"unschedulable": true}, "status": {"conditions": ready}}),
        );
        e.infra.add_node(
            "resources/node/node-2.yaml",
            &json!({"metadata": {"name": "node-2"},
                "spec": {"taints": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]},
                "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "KubeletNotReady"}]}}),
        );
        let table = nodes_table(&e);
        let lines: Vec<&str> = table.lines().skip(2).collect();
        assert_eq!(
            lines,
            [
                "NAME\tREADY\tSCHEDULING\tNODE-AGENT\tTAINTS",
                "node-0\tTrue\tschedulable\tnode-agent-a (Running)\t-",
                "node-1\tTrue\tcordoned\tnode-agent-b (Running, CrashLoopBackOff)\t-",
                "node-2\tFalse (KubeletNotReady)\tschedulable\tnone: taint dedicated=db:NoSchedule is not tolerated\tdedicated=db:NoSchedule",
            ]
        );
    }
}

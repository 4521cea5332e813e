//! Which pods' logs a bundle reads (the Velero server's, the node-agents' by policy, the
//! data-path pods of the target's volume operations) and one read per container and
//! instance.

use k8s_openapi::api::core::v1::Pod;
use kube::{Api, ResourceExt, api::ListParams};
use velero_debug_crd::NodeAgentLogs;

use super::LogJob;
use crate::{
    collect::{Found, Sink, Sources},
    findings::{LogRole, LogSource, PodRole},
    tar_gz::EntryPath,
    velero,
};

/// Pods by the folder their logs go to: velero, node-agent, data-path (and those of other
/// parts: repo-maintenance).
pub(in crate::collect) type GroupedPods = Vec<(&'static str, Pod)>;

pub(super) async fn server_pods(src: &Sources<'_>, out: &mut Sink, api: &Api<Pod>) -> GroupedPods {
    let selector = ListParams::default().labels(velero::SERVER_POD_SELECTOR);
    let Some(server) = src.list_all(out, api, selector, "Velero server pods").await else {
        return Vec::new();
    };
    if server.is_empty() {
        out.warn("no Velero server pod (label deploy=velero) found");
    }
    server.into_iter().map(|p| ("velero", p)).collect()
}

/// The node-agent pods the plan asks for: all, or those on the nodes that ran the target's
/// volume operations.
pub(super) async fn node_agent_pods(
    src: &Sources<'_>,
    out: &mut Sink,
    found: &mut Found,
    api: &Api<Pod>,
) -> GroupedPods {
    if src.plan.node_agent_logs == NodeAgentLogs::None {
        return Vec::new();
    }
    let selector = ListParams::default().labels(velero::NODE_AGENT_POD_SELECTOR);
    let Some(agents) = src.list_all(out, api, selector, "node-agent pods").await else {
        return Vec::new();
    };
    // Every node with a running node-agent, so a node that ran a volume without one is named.
    found.summary.evidence.set_node_agent_nodes(
        agents
            .iter()
            .filter(|pod| pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .filter_map(|pod| pod.spec.as_ref().and_then(|s| s.node_name.clone())),
    );
    agents
        .into_iter()
        .filter(|pod| {
            let node = pod.spec.as_ref().and_then(|s| s.node_name.as_ref());
            src.plan.node_agent_logs == NodeAgentLogs::All
                || node.is_some_and(|n| found.involved_nodes.contains(n))
        })
        .map(|p| ("node-agent", p))
        .collect()
}

/// The pods that moved the target's data, found by the label naming their operation.
pub(super) async fn data_path_pods(
    src: &Sources<'_>,
    out: &mut Sink,
    found: &Found,
    api: &Api<Pod>,
) -> GroupedPods {
    let mut pods = Vec::new();
    for label in velero::DATA_PATH_POD_LABELS {
        let selector = ListParams::default().labels(label);
        let Some(items) = src.list_all(out, api, selector, "data-path pods").await else {
            continue;
        };
        pods.extend(
            items
                .into_iter()
                .filter(|pod| {
                    pod.labels()
                        .get(label)
                        .is_some_and(|serves| found.operation_names.contains(serves))
                })
                .map(|p| ("data-path", p)),
        );
    }
    pods
}

/// The data-path pods of the target's operations that the recorder saw end badly and that are
/// gone now (Velero deleted them): their status is the only evidence of how they ended.
pub(super) fn recorded_and_gone(
    src: &Sources<'_>,
    found: &Found,
    listed: &GroupedPods,
) -> Vec<Pod> {
    let listed: std::collections::BTreeSet<&str> = listed
        .iter()
        .filter_map(|(_, p)| p.metadata.uid.as_deref())
        .collect();
    src.recorder
        .serving(&found.operation_names, &Default::default())
        .into_iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(src.namespace.as_str()))
        .filter(|p| {
            !p.metadata
                .uid
                .as_deref()
                .is_some_and(|u| listed.contains(u))
        })
        .collect()
}

/// One job per container (init containers too) and instance (current, previous); the
/// server's tee their lines naming the operation when those stand in for its log.
pub(super) fn log_jobs(
    src: &Sources<'_>,
    out: &mut Sink,
    pods: &GroupedPods,
    stand_in: bool,
) -> Vec<LogJob> {
    let mut jobs = Vec::new();
    let instances: &[bool] = if src.plan.previous_logs {
        &[false, true]
    } else {
        &[false]
    };
    for (group, pod) in pods {
        let name = pod.name_any();
        let spec = pod.spec.clone().unwrap_or_default();
        let containers: Vec<String> = spec
            .init_containers
            .clone()
            .unwrap_or_default()
            .into_iter()
            .chain(spec.containers.clone())
            .map(|c| c.name)
            .collect();
        for container in containers {
            let may_have_previous = may_have_previous(pod, &container);
            for &previous in instances.iter().filter(|&&p| !p || may_have_previous) {
                let suffix = if previous { ".previous" } else { "" };
                let bundle_path = EntryPath::new(
                    &["logs", group, &name],
                    &format!("{container}{suffix}"),
                    "log",
                );
                let spool = out.spool_path(&bundle_path.to_string());
                let tee = (stand_in && *group == "velero")
                    .then(|| out.spool_path(&format!("{bundle_path}.tee")));
                let source = LogSource {
                    path: bundle_path.to_string(),
                    role: log_role(group),
                    pod: Some(name.clone()),
                    node: spec.node_name.clone(),
                    previous,
                };
                jobs.push(LogJob {
                    pod: name.clone(),
                    container: container.clone(),
                    previous,
                    bundle_path,
                    spool,
                    source,
                    tee,
                });
            }
        }
    }
    jobs
}

/// Whether a container may have a previous instance whose log the kubelet keeps: its status
/// says it restarted or ended before, or the pod has no status for it to say otherwise. One
/// request a container that never restarted (most of them) would only be refused.
fn may_have_previous(pod: &Pod, container: &str) -> bool {
    let Some(status) = pod.status.as_ref() else {
        return true;
    };
    let statuses = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten());
    let mut of_container = statuses.filter(|s| s.name == container).peekable();
    if of_container.peek().is_none() {
        return true;
    }
    of_container.any(|s| {
        s.restart_count > 0
            || s.last_state
                .as_ref()
                .is_some_and(|l| l.terminated.is_some())
    })
}

/// The findings' name for a folder of pods.
pub(super) fn pod_role(group: &str) -> PodRole {
    match group {
        "velero" => PodRole::Server,
        "node-agent" => PodRole::NodeAgent,
        _ => PodRole::DataPath,
    }
}

fn log_role(group: &str) -> LogRole {
    match pod_role(group) {
        PodRole::Server => LogRole::Server,
        PodRole::NodeAgent => LogRole::NodeAgent,
        PodRole::DataPath => LogRole::DataPath,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod_with_statuses(statuses: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "node-agent-1"},
            "status": statuses,
        }))
        .unwrap()
    }

    #[test]
    fn a_previous_log_is_asked_for_only_where_a_container_may_have_one() {
        let status = |restarts: i32, last: serde_json::Value| {
            serde_json::json!({"name": "node-agent", "ready": true, "restartCount": restarts,
                               "image": "velero", "imageID": "", "lastState": last})
        };
        let never = pod_with_statuses(
            serde_json::json!({"containerStatuses": [status(0, serde_json::json!({}))]}),
        );
        assert!(!may_have_previous(&never, "node-agent"));
        let restarted = pod_with_statuses(
            serde_json::json!({"containerStatuses": [status(2, serde_json::json!({}))]}),
        );
        assert!(may_have_previous(&restarted, "node-agent"));
        let ended = serde_json::json!({"terminated": {"exitCode": 1}});
        let init_ended =
            pod_with_statuses(serde_json::json!({"initContainerStatuses": [status(0, ended)]}));
        assert!(may_have_previous(&init_ended, "node-agent"));
        // Nothing says otherwise: asked, as before.
        assert!(may_have_previous(&never, "another"));
        assert!(may_have_previous(
            &pod_with_statuses(serde_json::Value::Null),
            "node-agent"
        ));
    }
}

//! Pods of Velero's data path that ended badly: killed for memory, or ended in error. Their
//! status is the only place the kubelet writes `OOMKilled`, and Velero's own message about
//! the operation may stop at its colon (`data path backup failed: `), so the pod's end is the
//! cause and the operation's failure its consequence. The pod may be gone (Velero 1.17+
//! deletes a data-path pod seconds after it ends): the operator's recorder kept its end.

use super::{Evidence, Finding, Layer, Severity};
use crate::findings::{
    evidence::{ContainerEvidence, PodEvidence, PodRole},
    next_steps, patterns,
    text::cap,
    velero_config::{self, VeleroConfigMap},
};

/// Findings of this rule are bounded: one per pod, at most this many.
const MAX_PODS: usize = 10;
/// The setting of node-agent's ConfigMap that limits a data-path pod's memory.
const MEMORY_LIMIT: &str = "podResources.memoryLimit";

/// How a container ended badly, now or before a restart.
struct End<'a> {
    container: &'a ContainerEvidence,
    reason: &'a str,
    code: i64,
}

impl End<'_> {
    fn out_of_memory(&self) -> bool {
        self.reason == "OOMKilled"
    }
}

fn end_of(pod: &PodEvidence) -> Option<End<'_>> {
    pod.containers.iter().find_map(|c| {
        [c.terminated.as_ref(), c.last_terminated.as_ref()]
            .into_iter()
            .flatten()
            .find(|(reason, code)| *code != 0 || reason == "OOMKilled")
            .map(|(reason, code)| End {
                container: c,
                reason,
                code: *code,
            })
    })
}

pub(super) fn data_path_pod_ended(e: &Evidence) -> Vec<Finding> {
    e.pods
        .iter()
        .filter(|p| p.role == PodRole::DataPath)
        .filter_map(|pod| Some((pod, end_of(pod)?)))
        .take(MAX_PODS)
        .map(|(pod, end)| finding(e, pod, &end))
        .collect()
}

/// Data-path pods the kubelet refused at admission, read from their own status: the
/// `data-path-pod-rejected` of a Velero that does not quote the kubelet (before 1.18).
pub(super) fn rejected_by_the_kubelet(e: &Evidence) -> Vec<Finding> {
    e.pods
        .iter()
        .filter(|p| p.role == PodRole::DataPath)
        .filter_map(|pod| {
            let (reason, message) = pod.failed.as_ref()?;
            let why = patterns::rejection_reason(message)?;
            Some((pod, reason, message, why))
        })
        .take(MAX_PODS)
        .map(|(pod, reason, message, why)| {
            let on = pod
                .node
                .as_deref()
                .map(|n| format!(" {n}"))
                .unwrap_or_default();
            let of = serving(pod);
            let mut quote = format!("pod {}: {reason}: {}", pod.name, cap(message.trim(), 300));
            quote.push_str(&recorded(pod));
            Finding::new(
                Severity::Error,
                Layer::DataPath,
                "data-path-pod-rejected",
                format!(
                    "Data-path pod {}{of} was rejected by its node{on}: {why}",
                    pod.name
                ),
                &quote,
                &pod.path,
            )
            .explaining(pod.serves.iter().cloned())
            .next_step(rejected_step(e, pod.node.as_deref()))
        })
        .collect()
}

/// What to change when the kubelet of `node` rejects a data-path pod.
pub(super) fn rejected_step(e: &Evidence, node: Option<&str>) -> String {
    next_steps::data_path_pod_rejected(node_agent_config_map(e), node, e.target.velero_namespace())
}

/// The ConfigMap node-agent reads data-path pods' resources from.
fn node_agent_config_map(e: &Evidence) -> Option<&str> {
    e.infra
        .node_agent_arguments
        .as_ref()
        .and_then(|a| a.node_agent_config_map())
}

/// ` of PodVolumeBackup/name`: the operation the pod served, for a title.
fn serving(pod: &PodEvidence) -> String {
    pod.serves
        .as_deref()
        .map(|op| format!(" of {op}"))
        .unwrap_or_default()
}

/// When the recorder kept the pod's end, for a quote: the pod itself is gone.
fn recorded(pod: &PodEvidence) -> String {
    pod.recorded_at
        .as_ref()
        .map(|at| format!("; recorded at {at}, before Velero deleted the pod"))
        .unwrap_or_default()
}

fn finding(e: &Evidence, pod: &PodEvidence, end: &End<'_>) -> Finding {
    let ns = e.target.velero_namespace();
    let of = serving(pod);
    let on = pod
        .node
        .as_deref()
        .map(|n| format!(" on node {n}"))
        .unwrap_or_default();
    let limit = end.container.memory_limit.as_deref();
    let (rule, title) = if end.out_of_memory() {
        let limit = limit.map(|l| format!(", limit {l}")).unwrap_or_default();
        (
            "data-path-pod-out-of-memory",
            format!(
                "Data-path pod {}{of} was killed for memory (OOMKilled{limit}){on}",
                pod.name
            ),
        )
    } else {
        (
            "data-path-pod-ended",
            format!(
                "Data-path pod {}{of} ended {} (exit code {}){on}",
                pod.name, end.reason, end.code
            ),
        )
    };
    let setting = velero_config::setting(
        &e.infra.velero_config_maps,
        VeleroConfigMap::NodeAgent,
        &[],
        MEMORY_LIMIT,
    );
    let mut quote = format!(
        "container {}: {}, exit code {}",
        end.container.name, end.reason, end.code
    );
    if let Some(message) = &end.container.ended_message {
        quote.push_str(&format!(", message: {}", cap(message.trim(), 300)));
    }
    let said = setting
        .describe(ns, MEMORY_LIMIT)
        .filter(|_| end.out_of_memory());
    match (said, limit) {
        // The limit is in the title; where it comes from says more.
        (Some(said), _) => quote.push_str(&format!("; {said}")),
        (None, Some(limit)) => quote.push_str(&format!("; memory limit {limit}")),
        (None, None) => {}
    }
    quote.push_str(&recorded(pod));
    let config_map = node_agent_config_map(e);
    let step = if end.out_of_memory() {
        next_steps::data_path_pod_out_of_memory(config_map, limit, ns)
    } else {
        next_steps::data_path_pod_ended(&pod.name, pod.recorded_at.is_some(), ns)
    };
    Finding::new(
        Severity::Error,
        Layer::DataPath,
        rule,
        title,
        &quote,
        &pod.path,
    )
    .explaining(pod.serves.iter().cloned())
    .next_step(step)
}

#[cfg(test)]
#[path = "ended_pods_tests.rs"]
mod tests;

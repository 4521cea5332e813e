//! Data-path infrastructure: the node-agent that moves volume data on each node, and the
//! backup repositories it writes to. A failure here explains the volume operations on the
//! nodes (or of the repository) it touched.

use std::collections::BTreeSet;

use super::{Evidence, Finding, Layer, Severity, from_mentions, plural};
use crate::findings::{evidence::PodRole, node_key, patterns, patterns::Pattern};

/// The operations (`Kind/name`) that ran on `node`.
fn operations_on(e: &Evidence, node: &str) -> Vec<String> {
    e.operations
        .iter()
        .filter(|o| o.node.as_deref() == Some(node))
        .map(|o| o.key())
        .collect()
}

/// A node that ran (or had to run) a volume operation has no running node-agent: Velero says
/// so in the results, or the node-agent pods listed show none there.
pub(super) fn node_agent_missing(e: &Evidence) -> Vec<Finding> {
    let mut found = Vec::new();
    let mut named = BTreeSet::new();
    for m in e.mentions(Pattern::NodeAgentNotRunning) {
        let Some(node) = m.node.clone().or_else(|| patterns::node_named(&m.quote)) else {
            continue;
        };
        if !named.insert(node.clone()) {
            continue;
        }
        let explains: Vec<String> = operations_on(e, &node)
            .into_iter()
            .chain([node_key(&node)])
            .collect();
        found.push(
            missing_agent_finding(&node, &m.quote, &m.file)
                .at_line(m.line)
                .explaining(explains),
        );
    }
    if let Some(agents) = &e.node_agent_nodes {
        for node in e.involved_nodes.difference(agents) {
            if !named.insert(node.clone()) {
                continue;
            }
            let ops = operations_on(e, node);
            let quote = format!(
                "no node-agent pod runs on node {node}, which ran {}",
                if ops.is_empty() {
                    "volume operations of this target".to_string()
                } else {
                    ops.join(", ")
                }
            );
            let file = e
                .operations
                .iter()
                .find(|o| o.node.as_deref() == Some(node.as_str()))
                .map(|o| o.path.clone())
                .unwrap_or_else(|| "resources/daemonset-node-agent.yaml".into());
            found.push(
                missing_agent_finding(node, &quote, &file)
                    .explaining(ops.into_iter().chain([node_key(node)])),
            );
        }
    }
    found
}

/// A node-agent restarted: the panic in its previous log (with its line) or the reason of its
/// last termination. On a node that ran the target's volumes it explains their failures.
pub(super) fn node_agent_restarted(e: &Evidence) -> Vec<Finding> {
    let mut found = Vec::new();
    for pod in e.pods.iter().filter(|p| p.role == PodRole::NodeAgent) {
        let Some(container) = pod
            .containers
            .iter()
            .filter(|c| c.restarts > 0)
            .max_by_key(|c| c.restarts)
        else {
            continue;
        };
        let node = pod.node.clone().unwrap_or_default();
        let involved = e.involved_nodes.contains(&node);
        let panic = e.log_hits.iter().find(|h| {
            h.hit.pattern == Pattern::GoPanic && h.source.pod.as_deref() == Some(&pod.name)
        });
        let last = container.last_terminated.as_ref();
        let (quote, file, line, why) = match (panic, last) {
            (Some(p), _) => (
                p.hit.quote.clone(),
                p.source.path.clone(),
                Some(p.hit.line),
                "a panic".to_string(),
            ),
            (None, Some((reason, code))) => (
                format!(
                    "container {} restarted {} time(s); last exit: {reason}, code {code}",
                    container.name, container.restarts
                ),
                pod.path.clone(),
                None,
                reason.clone(),
            ),
            (None, None) => (
                format!(
                    "container {} restarted {} time(s)",
                    container.name, container.restarts
                ),
                pod.path.clone(),
                None,
                "reason unknown".to_string(),
            ),
        };
        let severity = if involved || panic.is_some() || why == "OOMKilled" {
            Severity::Error
        } else {
            Severity::Warning
        };
        let explains: Vec<String> = if involved {
            operations_on(e, &node)
                .into_iter()
                .chain([node_key(&node)])
                .collect()
        } else {
            Vec::new()
        };
        found.push(
            Finding::new(
                severity,
                Layer::DataPath,
                "node-agent-restarted",
                format!("node-agent on node {node} restarted after {why}"),
                &quote,
                &file,
            )
            .at_line(line)
            .explaining(explains),
        );
    }
    found
}

pub(super) fn repository_not_initialized(e: &Evidence) -> Vec<Finding> {
    from_mentions(
        e,
        Pattern::RepositoryNotInitialized,
        Severity::Error,
        Layer::DataPath,
        "repository-not-initialized",
        |_, n| {
            format!(
                "Backup repository not initialized in the object store ({})",
                plural(n, "mention", "mentions")
            )
        },
    )
    .into_iter()
    .collect()
}

pub(super) fn repository_locked(e: &Evidence) -> Vec<Finding> {
    from_mentions(
        e,
        Pattern::RepositoryLocked,
        Severity::Error,
        Layer::DataPath,
        "repository-locked",
        |_, n| {
            format!(
                "Backup repository is locked by another process ({})",
                plural(n, "mention", "mentions")
            )
        },
    )
    .into_iter()
    .collect()
}

pub(super) fn repository_not_ready(e: &Evidence) -> Vec<Finding> {
    from_mentions(
        e,
        Pattern::RepositoryNotReady,
        Severity::Error,
        Layer::DataPath,
        "repository-not-ready",
        |_, n| {
            format!(
                "Backup repository is not ready ({})",
                plural(n, "mention", "mentions")
            )
        },
    )
    .into_iter()
    .collect()
}

/// The finding for a node that should run a node-agent and does not, with its proof.
fn missing_agent_finding(node: &str, quote: &str, file: &str) -> Finding {
    Finding::new(
        Severity::Error,
        Layer::DataPath,
        "node-agent-missing",
        format!("No running node-agent on node {node}"),
        quote,
        file,
    )
}

//! A stall bundle's headline: a running Backup or Restore that stopped moving, and what it
//! waits on, named from the evidence the other rules read. The least advanced volume
//! operation not finished first (its data-path pod that does not start, its repository not
//! ready, its pod that cannot start, no node-agent on its node, its pod that never ran
//! restore-wait), else what the operation's phase says it waits for (a plugin's asynchronous
//! operation by id and age, a post-restore hook's pod that does not run).

use super::{Evidence, Finding, Layer, Severity, data_path, pods};
use crate::findings::{
    evidence::{ItemOperationEvidence, OperationEvidence, PodRole},
    next_steps,
    text::duration_words,
};

/// node-agent's `--data-mover-prepare-timeout` when its arguments do not say (Velero 1.18's
/// pkg/cmd/cli/nodeagent/server.go defaultDataMoverPrepareTimeout).
const DEFAULT_PREPARE_TIMEOUT: &str = "30m";

/// The phases of a volume operation in the order it goes through them; one further back
/// holds the operation up longer.
const PROGRESSION: [&str; 5] = ["<none>", "New", "Accepted", "Prepared", "InProgress"];

/// What a stalled operation waits on, and what shows it.
struct Waiting {
    what: String,
    quote: String,
    file: String,
    next_step: String,
    explains: Vec<String>,
}

pub(super) fn operation_stalled(e: &Evidence) -> Vec<Finding> {
    let t = &e.target;
    let Some(stalled) = t.stalled.as_ref().filter(|_| !t.is_final()) else {
        return Vec::new();
    };
    let waiting = match least_advanced(e) {
        Some(op) => volume_waits(e, op),
        None => phase_waits(e),
    };
    // The cause first: a title is cut at 160 characters, and names are long.
    let title = format!(
        "{} has not moved for {}: {}",
        t.kind,
        duration_words(stalled.still_for),
        waiting.what
    );
    let quote = format!(
        "status.phase {} since {} at least; {}",
        t.phase, stalled.since, waiting.quote
    );
    vec![
        // The headline of a bundle taken while the operation hangs: before every cause, as
        // it names the one that holds it.
        Finding::new(
            Severity::Error,
            Layer::Platform,
            "operation-stalled",
            title,
            &quote,
            &waiting.file,
        )
        .explaining(waiting.explains)
        .next_step(waiting.next_step),
    ]
}

/// The volume operation not finished that is furthest back.
fn least_advanced(e: &Evidence) -> Option<&OperationEvidence> {
    e.operations
        .iter()
        .filter_map(|op| {
            let stage = PROGRESSION.iter().position(|p| *p == op.phase)?;
            Some((stage, op))
        })
        .min_by_key(|(stage, _)| *stage)
        .map(|(_, op)| op)
}

fn volume_waits(e: &Evidence, op: &OperationEvidence) -> Waiting {
    let named = format!("{} {}", op.kind, op.name);
    if let Some(waiting) = data_path_pod_waits(e, op, &named) {
        return waiting;
    }
    if let Some(waiting) = repository_waits(e, op, &named) {
        return waiting;
    }
    let pod = op.pod.as_deref().filter(|_| op.kind == "PodVolumeRestore");
    if let Some((pod, blocked)) = pod.and_then(|p| Some((p, pods::why_blocked(e, p)?))) {
        return Waiting {
            what: format!("{}, which {named} waits for", blocked.describe(pod)),
            quote: format!(
                "{named} ({}) waits for pod {pod}: {}",
                op.phase, blocked.quote
            ),
            file: blocked.file,
            next_step: blocked.next_step,
            explains: vec![op.key(), pods::pod_key(pod)],
        };
    }
    if let Some(node) = op.node.as_deref()
        && let Some((why, file)) = data_path::why_no_agent(e, node)
    {
        return Waiting {
            what: format!("no node-agent on node {node} ({why}), which {named} needs"),
            quote: format!("{named} ({}) on node {node}: {why}", op.phase),
            file,
            next_step: data_path::agent_next_step(e, node).unwrap_or_default(),
            explains: vec![op.key(), crate::findings::node_key(node)],
        };
    }
    if let Some(pod) = pod.filter(|_| matches!(op.phase.as_str(), "<none>" | "New")) {
        return Waiting {
            what: format!(
                "pod {pod} never ran its restore-wait init container, which {named} waits for"
            ),
            quote: format!("{named}: status.phase {}, no node accepted it", op.phase),
            file: op.path.clone(),
            next_step: next_steps::pod_volume_restore_stuck(pod),
            explains: vec![op.key()],
        };
    }
    let message = if op.message.is_empty() {
        String::new()
    } else {
        format!(": {}", op.message)
    };
    Waiting {
        what: format!("{named} does not move ({}{message})", op.phase),
        quote: format!("{named}: status.phase {}{message}", op.phase),
        file: op.path.clone(),
        next_step: next_steps::volume_operation_stalled(&op.kind, &op.name, op.node.as_deref()),
        explains: vec![op.key()],
    }
}

/// The operation's data-path pod, there and not running: Velero names its hosting pod after
/// the operation (pkg/exposer: `hostingPodName := ownerObject.Name`), in its own namespace.
fn data_path_pod_waits(e: &Evidence, op: &OperationEvidence, named: &str) -> Option<Waiting> {
    let pod = e
        .pods
        .iter()
        .find(|p| p.role == PodRole::DataPath && p.name == op.name)
        .filter(|p| !matches!(p.phase.as_str(), "Running" | "Succeeded"))?;
    let key = format!("{}/{}", e.target.velero_namespace(), pod.name);
    let blocked = pods::why_blocked(e, &key);
    let (rule, cause, quote, file) = match &blocked {
        Some(b) => (b.rule, b.cause.clone(), b.quote.clone(), b.file.clone()),
        None => {
            let waiting = pod.containers.iter().find_map(|c| c.waiting.clone());
            let cause = waiting.unwrap_or_else(|| "no event says why".to_string());
            ("pod-not-ready", cause.clone(), cause, pod.path.clone())
        }
    };
    let phase = if pod.phase.is_empty() {
        "not running"
    } else {
        &pod.phase
    };
    let timeout = e
        .infra
        .node_agent_arguments
        .as_ref()
        .and_then(|a| a.data_mover_prepare_timeout())
        .unwrap_or(DEFAULT_PREPARE_TIMEOUT);
    Some(Waiting {
        // Titles are cut at 160 characters: the cause before the long generated names (the
        // pod is named after the operation, and the quote names both).
        what: format!("its data-path pod is {phase}: {cause} ({named})"),
        quote: format!(
            "{named} ({}) waits for data-path pod {key} ({phase}): {quote}",
            op.phase
        ),
        file,
        next_step: next_steps::data_path_pod_not_starting(&key, rule, timeout),
        explains: vec![op.key(), pods::pod_key(&key)],
    })
}

/// The BackupRepository of the operation's volume namespace, NotReady: node-agent cannot
/// start moving its data.
fn repository_waits(e: &Evidence, op: &OperationEvidence, named: &str) -> Option<Waiting> {
    let namespace = op.namespace.as_deref()?;
    let repository = e
        .infra
        .repositories
        .iter()
        .find(|r| r.phase == "NotReady" && r.volume_namespace == namespace)?;
    let message = if repository.message.is_empty() {
        "no message"
    } else {
        &repository.message
    };
    Some(Waiting {
        what: format!(
            "its repository {} is NotReady: {message} ({named})",
            repository.name
        ),
        quote: format!(
            "{named} ({}); BackupRepository {}: status.phase NotReady, {message}",
            op.phase, repository.name
        ),
        file: repository.path.clone(),
        next_step: next_steps::repository_not_ready(
            Some(&repository.name),
            e.target.velero_namespace(),
        ),
        explains: vec![op.key(), repository.key()],
    })
}

/// The plugin operation not finished that started first, and how long it has run.
fn oldest_plugin_operation(e: &Evidence) -> Option<&ItemOperationEvidence> {
    e.item_operations
        .iter()
        .filter(|op| matches!(op.phase.as_str(), "New" | "InProgress" | "<none>"))
        .min_by_key(|op| op.created)
}

fn plugin_operation_waits(e: &Evidence, op: &ItemOperationEvidence) -> Waiting {
    let t = &e.target;
    let taken_at = t.stalled.as_ref().map(|s| s.taken_at);
    let age = op
        .created
        .zip(taken_at)
        .and_then(|(created, now)| std::time::Duration::try_from(now.duration_since(created)).ok())
        .map(|d| format!(", running for {}", duration_words(d)))
        .unwrap_or_default();
    let progress = if op.progress.is_empty() {
        String::new()
    } else {
        format!(" ({})", op.progress)
    };
    Waiting {
        what: format!(
            "plugin {}'s asynchronous operation {} is {}{age}{progress}",
            op.action, op.operation_id, op.phase
        ),
        quote: format!(
            "operation {} of plugin {} for {}: {}{age}{progress}",
            op.operation_id, op.action, op.item, op.phase
        ),
        file: op.path.clone(),
        next_step: next_steps::plugin_operation_waiting(
            &t.kind,
            &t.name,
            &op.action,
            &op.operation_id,
        ),
        explains: Vec::new(),
    }
}

/// A Restore Finalizing waits for its post-restore exec hooks (Velero 1.18's
/// restore_finalizer_controller.go WaitRestoreExecHook), each for its container to be up: the
/// first restored pod with a hook (by annotation, or any when spec.hooks has exec hooks) that
/// does not run, and why.
fn hook_waits(e: &Evidence) -> Option<Waiting> {
    let hooks_in_spec = e.target.post_restore_exec_hooks;
    e.workload_pods
        .iter()
        .filter(|p| p.post_restore_hook.is_some() || hooks_in_spec)
        .filter(|p| !p.is_fine())
        .find_map(|p| {
            let pod = p.key();
            let blocked = pods::why_blocked(e, &pod)?;
            let container = p.post_restore_hook.as_deref().unwrap_or("of the hook");
            Some(Waiting {
                what: format!(
                    "its post-restore hook in container {container} waits: {}",
                    blocked.describe(&pod)
                ),
                quote: format!(
                    "post-restore hook in container {container} of pod {pod}: {}",
                    blocked.quote
                ),
                file: blocked.file,
                next_step: next_steps::post_restore_hook_waiting(
                    &pod,
                    container,
                    &blocked.next_step,
                ),
                explains: vec![pods::pod_key(&pod)],
            })
        })
}

fn phase_waits(e: &Evidence) -> Waiting {
    let t = &e.target;
    if t.phase.starts_with("WaitingForPluginOperations")
        && let Some(op) = oldest_plugin_operation(e)
    {
        return plugin_operation_waits(e, op);
    }
    if t.phase.starts_with("Finalizing")
        && let Some(waiting) = hook_waits(e)
    {
        return waiting;
    }
    let (attempted, completed, _) = t.item_operations;
    let what = match t.phase.as_str() {
        "New" => "no Velero server has started it".to_string(),
        p if p.starts_with("WaitingForPluginOperations") => format!(
            "it waits on its plugins' asynchronous operations, {completed} of {attempted} completed"
        ),
        p if p.starts_with("Finalizing") => "it does not finish finalizing".to_string(),
        _ => "no item and no volume operation moves".to_string(),
    };
    Waiting {
        quote: what.clone(),
        what,
        file: t.path.clone(),
        next_step: next_steps::operation_stalled(&t.kind, &t.name, &t.phase, &t.namespace),
        explains: Vec::new(),
    }
}

#[cfg(test)]
#[path = "stalled_tests.rs"]
mod tests;

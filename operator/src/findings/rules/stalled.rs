//! A stall bundle's headline: a running Backup or Restore that stopped moving, and what it
//! waits on, named from the evidence the other rules read. The least advanced volume
//! operation not finished first (its pod that cannot start, no node-agent on its node, its pod
//! that never ran restore-wait), else what the operation's phase says it waits for.

use super::{Evidence, Finding, Layer, Severity, data_path, pods};
use crate::findings::{evidence::OperationEvidence, next_steps, text::duration_words};

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

fn phase_waits(e: &Evidence) -> Waiting {
    let t = &e.target;
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
mod tests {
    use super::*;
    use crate::findings::{StalledEvidence, diagnose};

    fn running(phase: &str) -> Evidence {
        let mut e = Evidence::default();
        e.set_target(
            "resources/restore.yaml",
            &serde_json::json!({"kind": "Restore", "metadata": {"name": "r1", "namespace": "velero"},
                "status": {"phase": phase, "restoreItemOperationsAttempted": 2,
                    "restoreItemOperationsCompleted": 1}}),
        );
        e.target.stalled = Some(StalledEvidence {
            since: "2026-11-28T10:00:00Z".into(),
            still_for: std::time::Duration::from_secs(40 * 60),
        });
        e
    }

    fn restore_of(e: &mut Evidence, name: &str, phase: &str, pod: &str) {
        e.add_operation(
            &format!("resources/podvolumerestore/{name}.yaml"),
            "PodVolumeRestore",
            &serde_json::json!({"metadata": {"name": name},
                "spec": {"volume": "data", "pod": {"namespace": "shop", "name": pod}},
                "status": {"phase": phase}}),
        );
    }

    #[test]
    fn the_least_advanced_volume_operation_is_named_first_with_why() {
        let mut e = running("InProgress");
        restore_of(&mut e, "pvr-moving", "InProgress", "web-1");
        restore_of(&mut e, "pvr-waiting", "New", "web-0");
        let found = diagnose(&e);
        let first = &found[0];
        assert_eq!(first.rule, "operation-stalled");
        assert_eq!(
            first.title,
            "Restore has not moved for 40m: pod shop/web-0 never ran its restore-wait init container, which PodVolumeRestore pvr-waiting waits for"
        );
        assert!(
            first
                .quote
                .contains("PodVolumeRestore pvr-waiting: status.phase New")
        );
        assert!(first.quote.contains("since 2026-11-28T10:00:00Z"));
        assert!(first.next_step.as_deref().unwrap().contains("shop/web-0"));
        assert!(
            first
                .explains
                .contains(&"PodVolumeRestore/pvr-waiting".to_string())
        );
    }

    #[test]
    fn without_volume_operations_the_phase_says_what_it_waits_on() {
        let e = running("WaitingForPluginOperations");
        let found = operation_stalled(&e);
        assert_eq!(
            found[0].title,
            "Restore has not moved for 40m: it waits on its plugins' asynchronous operations, 1 of 2 completed"
        );
        assert!(found[0].next_step.as_deref().unwrap().contains("--details"));
        assert!(
            operation_stalled(&running("New"))[0]
                .title
                .contains("no Velero server")
        );
    }

    #[test]
    fn a_bundle_not_taken_for_a_stall_or_an_operation_that_ended_gets_none() {
        let mut ended = running("Failed");
        restore_of(&mut ended, "pvr", "New", "web-0");
        assert!(operation_stalled(&ended).is_empty());
        let mut not_stalled = running("InProgress");
        not_stalled.target.stalled = None;
        assert!(operation_stalled(&not_stalled).is_empty());
    }
}

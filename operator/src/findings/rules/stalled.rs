//! A stall bundle's headline: a running Backup or Restore that stopped moving, and what it
//! waits on, named from the evidence the other rules read. The least advanced volume
//! operation not finished first (its data-path pod that does not start, its pod that cannot
//! start, no node-agent on its node, its pod that never ran restore-wait), else what the
//! operation's phase says it waits for (a plugin's asynchronous operation, by id and age).

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
            taken_at: "2026-11-28T10:40:00Z".parse().unwrap(),
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

    fn backup_of(e: &mut Evidence, name: &str, phase: &str) {
        e.add_operation(
            &format!("resources/podvolumebackup/{name}.yaml"),
            "PodVolumeBackup",
            &serde_json::json!({"metadata": {"name": name},
                "spec": {"volume": "data", "node": "node-1", "pod": {"namespace": "shop", "name": "db-0"}},
                "status": {"phase": phase}}),
        );
    }

    #[test]
    fn a_data_path_pod_that_does_not_start_is_named_with_its_event_and_the_timeout_to_come() {
        let mut e = running("InProgress");
        backup_of(&mut e, "b1-x7k2p", "Accepted");
        e.add_pod(
            "pods/b1-x7k2p.yaml",
            PodRole::DataPath,
            &serde_json::json!({"metadata": {"name": "b1-x7k2p"}, "spec": {"nodeName": "node-1"},
                "status": {"phase": "Pending", "containerStatuses": [{"name": "c",
                    "state": {"waiting": {"reason": "ContainerCreating"}}}]}}),
        );
        e.add_events(
            "events/related.yaml",
            &serde_json::json!([{"type": "Warning", "reason": "FailedMount",
                "involvedObject": {"kind": "Pod", "namespace": "velero", "name": "b1-x7k2p"},
                "message": "MountVolume.SetUp failed for volume \"ca\" : secret \"ca-bundle\" not found",
                "lastTimestamp": "2026-11-28T10:01:00Z"}]),
        );
        let found = operation_stalled(&e);
        assert_eq!(
            found[0].title,
            "Restore has not moved for 40m: its data-path pod is Pending: MountVolume.SetUp failed for volume \"ca\" : secret \"ca-bundle\" not found (PodVolumeBackup b1-x7k2p)"
        );
        assert!(
            found[0]
                .quote
                .contains("waits for data-path pod velero/b1-x7k2p (Pending)"),
            "{}",
            found[0].quote
        );
        assert_eq!(found[0].file, "events/related.yaml");
        let step = found[0].next_step.as_deref().unwrap();
        assert!(step.contains("prepare timeout (30m)"), "{step}");
        assert!(
            step.contains("kubectl -n velero describe pod b1-x7k2p"),
            "{step}"
        );
        assert!(step.contains("get ds node-agent"), "{step}");
        assert!(
            found[0]
                .explains
                .contains(&"pod/velero/b1-x7k2p".to_string())
        );

        // Without an event, its container's state speaks; node-agent's own timeout is told.
        let mut quiet = running("InProgress");
        backup_of(&mut quiet, "b1-x7k2p", "Accepted");
        quiet.add_pod(
            "pods/b1-x7k2p.yaml",
            PodRole::DataPath,
            &serde_json::json!({"metadata": {"name": "b1-x7k2p"}, "status": {"phase": "Pending",
                "containerStatuses": [{"name": "c", "state": {"waiting": {"reason": "ContainerCreating"}}}]}}),
        );
        quiet.infra.node_agent_arguments = Some(crate::findings::WorkloadArguments::of_workload(
            "resources/node-agent.yaml",
            &serde_json::json!({"spec": {"template": {"spec": {"containers": [{"name": "node-agent",
                "args": ["server", "--data-mover-prepare-timeout=5m"]}]}}}}),
            "node-agent",
        ));
        let found = operation_stalled(&quiet);
        assert!(
            found[0]
                .title
                .ends_with("Pending: ContainerCreating (PodVolumeBackup b1-x7k2p)"),
            "{}",
            found[0].title
        );
        let step = found[0].next_step.as_deref().unwrap();
        assert!(step.contains("prepare timeout (5m)"), "{step}");

        // A data-path pod that runs holds nothing up: the operation itself is named.
        let mut moving = running("InProgress");
        backup_of(&mut moving, "b1-x7k2p", "InProgress");
        moving.add_pod(
            "pods/b1-x7k2p.yaml",
            PodRole::DataPath,
            &serde_json::json!({"metadata": {"name": "b1-x7k2p"}, "status": {"phase": "Running"}}),
        );
        let found = operation_stalled(&moving);
        assert!(
            found[0]
                .title
                .contains("PodVolumeBackup b1-x7k2p does not move"),
            "{}",
            found[0].title
        );
    }

    #[test]
    fn a_plugin_operation_is_named_by_plugin_id_and_age() {
        let mut e = running("WaitingForPluginOperations");
        for (id, created, phase) in [
            ("du-late", "2026-11-28T10:20:00Z", "InProgress"),
            ("du-done", "2026-11-28T09:00:00Z", "Completed"),
            ("du-first", "2026-11-28T09:40:00Z", "InProgress"),
        ] {
            e.add_item_operation(
                "object-store/itemoperations.json",
                &serde_json::json!({"spec": {"backupItemAction": "velero.io/csi-pvc-backupper",
                    "operationID": id, "resourceIdentifier": {"Group": "", "Resource": "persistentvolumeclaims",
                        "Namespace": "shop", "Name": "data-db-0"}},
                    "status": {"phase": phase, "created": created, "description": "Accepted",
                        "nCompleted": 3, "nTotal": 10, "operationUnits": "GiB"}}),
            );
        }
        let found = operation_stalled(&e);
        assert_eq!(
            found[0].title,
            "Restore has not moved for 40m: plugin velero.io/csi-pvc-backupper's asynchronous operation du-first is InProgress, running for 1h (Accepted, 3 of 10 GiB)"
        );
        assert!(
            found[0]
                .quote
                .contains("for persistentvolumeclaims/shop/data-db-0"),
            "{}",
            found[0].quote
        );
        assert_eq!(found[0].file, "object-store/itemoperations.json");
        let step = found[0].next_step.as_deref().unwrap();
        assert!(
            step.contains("operation du-first of plugin velero.io/csi-pvc-backupper"),
            "{step}"
        );
    }

    #[test]
    fn a_restore_finalizing_names_the_pod_its_post_restore_hook_waits_for() {
        let mut e = running("Finalizing");
        let pod = |name: &str, annotations: serde_json::Value, phase: &str| {
            serde_json::json!({"metadata": {"name": name, "namespace": "shop", "annotations": annotations},
                "spec": {"containers": [{"name": "app"}, {"name": "sidecar"}]},
                "status": {"phase": phase, "containerStatuses": [{"name": "app",
                    "state": {"waiting": {"reason": "CreateContainerConfigError",
                        "message": "secret \"db-password\" not found"}}}]}})
        };
        // Not ready, but no hook of its own: not what Finalizing waits for.
        e.add_workload_pod(
            "w/a.yaml",
            &pod("cache-0", serde_json::json!({}), "Pending"),
        );
        e.add_workload_pod(
            "w/b.yaml",
            &pod(
                "db-0",
                serde_json::json!({"post.hook.restore.velero.io/command": "[\"/bin/check\"]",
                    "post.hook.restore.velero.io/container": "app"}),
                "Pending",
            ),
        );
        let found = operation_stalled(&e);
        assert_eq!(
            found[0].title,
            "Restore has not moved for 40m: its post-restore hook in container app waits: shop/db-0 is Pending: container app waiting: CreateContainerConfigError"
        );
        assert!(
            found[0].quote.contains("secret \"db-password\" not found"),
            "{}",
            found[0].quote
        );
        let step = found[0].next_step.as_deref().unwrap();
        assert!(
            step.contains("container app of pod shop/db-0 is up"),
            "{step}"
        );
        assert!(step.contains("waitTimeout"), "{step}");

        // Hooks in the restore's spec: any restored pod that does not run; a hook's container
        // by annotation defaults to the pod's first.
        let mut by_spec = running("Finalizing");
        by_spec.set_target(
            "resources/restore.yaml",
            &serde_json::json!({"kind": "Restore", "metadata": {"name": "r1", "namespace": "velero"},
                "spec": {"hooks": {"resources": [{"name": "check", "postHooks": [{"exec": {"command": ["true"]}}]}]}},
                "status": {"phase": "Finalizing"}}),
        );
        by_spec.target.stalled = e.target.stalled.clone();
        by_spec.add_workload_pod(
            "w/a.yaml",
            &pod("cache-0", serde_json::json!({}), "Pending"),
        );
        assert!(
            operation_stalled(&by_spec)[0]
                .title
                .contains("waits: shop/cache-0 is Pending")
        );
        let mut first = running("Finalizing");
        first.add_workload_pod(
            "w/c.yaml",
            &pod(
                "web-0",
                serde_json::json!({"post.hook.restore.velero.io/command": "x"}),
                "Pending",
            ),
        );
        assert_eq!(
            first.workload_pods[0].post_restore_hook.as_deref(),
            Some("app")
        );

        // Without a pod to wait for, the phase alone speaks.
        let bare = running("Finalizing");
        assert!(
            operation_stalled(&bare)[0]
                .title
                .contains("does not finish finalizing")
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

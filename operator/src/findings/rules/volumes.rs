//! Volume operations: PodVolumeBackups/Restores and DataUploads/Downloads that failed, were
//! canceled or never started; item operations that timed out; CSI snapshots; Velero's own
//! diagnosis of an expose that did not work.

use super::{Evidence, Finding, Layer, Severity, from_mentions, group_into, plural, pods};
use crate::findings::{
    CSI_SNAPSHOTS_KEY, OperationEvidence,
    evidence::PodRole,
    infrastructure::SnapshotContentEvidence,
    last_words::LastWords,
    log_scan::{LogRole, LogSource},
    next_steps, node_key,
    patterns::{self, Pattern},
    text::cap,
};

/// Findings of one rule are bounded: beyond this many groups, the summary's list of operations
/// has the rest.
const MAX_GROUPS: usize = 10;

/// How findings name all operations of a kind (a timeout waiting for all of them is a
/// consequence of any one of them failing or being stuck).
fn kind_key(kind: &str) -> String {
    format!("kind/{kind}")
}

fn op_id_key(id: &str) -> String {
    format!("operation-id/{id}")
}

/// What an operation is and explains, in `explains` terms: itself, its kind and the item
/// operation that tracks it.
fn keys(op: &OperationEvidence) -> Vec<String> {
    let mut keys = vec![op.key(), kind_key(&op.kind)];
    keys.extend(op.operation_id.as_deref().map(op_id_key));
    keys
}

/// `pod shop/web-0, volume data, node n1` for what is known.
fn where_(op: &OperationEvidence) -> String {
    let mut parts = Vec::new();
    if let Some(pod) = &op.pod {
        parts.push(format!("pod {pod}"));
    }
    if let Some(volume) = &op.volume {
        parts.push(format!("volume {volume}"));
    }
    parts.push(match &op.node {
        Some(node) => format!("node {node}"),
        None => "no node".to_string(),
    });
    parts.join(", ")
}

/// Failed or Canceled operations, grouped when they failed the same way on the same node.
/// The node-agent pod on `node`, when listed.
fn node_agent_on<'a>(e: &'a Evidence, node: &str) -> Option<&'a str> {
    e.pods
        .iter()
        .find(|p| p.role == PodRole::NodeAgent && p.node.as_deref() == Some(node))
        .map(|p| p.name.as_str())
}

pub(super) fn volume_operation_failed(e: &Evidence) -> Vec<Finding> {
    let mut groups: Vec<Vec<&OperationEvidence>> = Vec::new();
    for op in e
        .operations
        .iter()
        .filter(|o| matches!(o.phase.as_str(), "Failed" | "Canceled"))
    {
        group_into(&mut groups, op, MAX_GROUPS, |a, b| {
            (&a.kind, &a.phase, &a.node, &a.message) == (&b.kind, &b.phase, &b.node, &b.message)
        });
    }
    groups
        .into_iter()
        .map(|group| {
            let first = group[0];
            let title = if group.len() == 1 {
                format!(
                    "{} {} {} ({})",
                    first.kind,
                    first.name,
                    first.phase,
                    where_(first)
                )
            } else {
                let on = first
                    .node
                    .as_deref()
                    .map(|n| format!(" on node {n}"))
                    .unwrap_or_default();
                format!("{} {}s {}{on}", group.len(), first.kind, first.phase)
            };
            let quote = if first.message.is_empty() {
                format!("status.phase: {}, no message", first.phase)
            } else {
                first.message.clone()
            };
            // Velero's message may stop at its colon (`data path backup failed: `): the
            // data-path pod's own last words, when its log was read, say what failed.
            let words = data_path_words(e, first).filter(|_| says_nothing(&first.message));
            let (quote, file, line) = match words {
                Some((source, w)) => (
                    format!("{quote}; its data-path pod's last words: {}", w.text),
                    source.path.clone(),
                    Some(w.line),
                ),
                None => (quote, first.path.clone(), None),
            };
            let keys: Vec<String> = group.iter().flat_map(|o| keys(o)).collect();
            let agent = first.node.as_deref().and_then(|n| node_agent_on(e, n));
            let ns = e.target.velero_namespace();
            Finding::new(
                Severity::Error,
                Layer::VolumeOperations,
                "volume-operation-failed",
                title,
                &quote,
                &file,
            )
            .at_line(line)
            .explaining(keys.clone())
            .about(keys.into_iter().chain(first.node.as_deref().map(node_key)))
            .next_step(next_steps::volume_operation_failed(&first.kind, agent, ns))
            .waited_on_if(first.phase == "Canceled", waited_pods(&group))
        })
        .collect()
}

/// Whether Velero's message about an operation says nothing of why: empty, or cut at its
/// colon (`data path backup failed: `).
fn says_nothing(message: &str) -> bool {
    let message = message.trim();
    message.is_empty() || message.ends_with(':')
}

/// What the data-path pod of `op` said last (1.17+ names the pod after its operation), from
/// its current log.
fn data_path_words<'a>(
    e: &'a Evidence,
    op: &OperationEvidence,
) -> Option<(&'a LogSource, &'a LastWords)> {
    e.last_words
        .iter()
        .find(|(s, _)| {
            s.role == LogRole::DataPath && !s.previous && s.pod.as_deref() == Some(&op.name)
        })
        .map(|(s, w)| (s, w))
}

/// The pods (`pod/<namespace>/<name>`) `ops` served: what a canceled operation waited on.
fn waited_pods(ops: &[&OperationEvidence]) -> Vec<String> {
    ops.iter()
        .filter_map(|o| o.pod.as_deref())
        .map(pods::pod_key)
        .collect()
}

/// PodVolumeRestores not accepted by a node yet: a PVR is accepted only once the restored
/// pod's restore-wait init container runs.
pub(super) fn waiting_restores(e: &Evidence) -> impl Iterator<Item = &OperationEvidence> {
    e.operations.iter().filter(|o| {
        o.kind == "PodVolumeRestore"
            && matches!(o.phase.as_str(), "<none>" | "New" | "Accepted" | "Prepared")
    })
}

/// An error once the restore is over; while it runs, only worth a look.
fn stuck_severity(e: &Evidence) -> Severity {
    if e.target.is_final() {
        Severity::Error
    } else {
        Severity::Warning
    }
}

/// The cause of PodVolumeRestores that wait for their pod: the pod cannot start (its volume
/// attached to another node, a claim not bound, no node to run on...), named with the event or
/// state that says so. Ranked before the stuck PVRs it explains, and one per pod.
pub(super) fn pod_volume_restore_blocked(e: &Evidence) -> Vec<Finding> {
    let mut by_pod: Vec<Vec<&OperationEvidence>> = Vec::new();
    for op in waiting_restores(e).filter(|o| o.pod.is_some()) {
        group_into(&mut by_pod, op, MAX_GROUPS, |a, b| a.pod == b.pod);
    }
    by_pod
        .into_iter()
        .filter_map(|ops| {
            let pod = ops[0].pod.as_deref()?;
            let blocked = pods::why_blocked(e, pod)?;
            let stuck = match ops.len() {
                1 => format!("PodVolumeRestore {} is stuck", ops[0].name),
                n => format!(
                    "PodVolumeRestores {} and {} more are stuck",
                    ops[0].name,
                    n - 1
                ),
            };
            let title = format!("{stuck}: its pod {}", blocked.describe(pod));
            Some(
                Finding::new(
                    stuck_severity(e),
                    Layer::VolumeOperations,
                    blocked.rule,
                    title,
                    &blocked.quote,
                    &blocked.file,
                )
                .explaining(ops.iter().flat_map(|o| keys(o)))
                .explaining([pods::pod_key(pod)])
                .about([pods::pod_key(pod)])
                .next_step(blocked.next_step),
            )
        })
        .collect()
}

/// A PodVolumeRestore left New: the pod never got as far as its restore init container.
/// While the restore runs that is normal, unless the pod is in trouble.
pub(super) fn pod_volume_restore_stuck(e: &Evidence) -> Vec<Finding> {
    waiting_restores(e)
        .filter(|op| {
            e.target.is_final()
                || op
                    .pod
                    .as_deref()
                    .is_some_and(|p| pods::why_blocked(e, p).is_some())
        })
        .map(|op| {
            let pod = op.pod.as_deref().unwrap_or("<unknown pod>");
            // The pod and its events would say why; the operator may not have been let see them.
            let namespace = pod.split_once('/').map_or("", |(ns, _)| ns);
            let blind = !namespace.is_empty() && e.refused(namespace, "pods");
            // Short enough for the title's cap: the next step says the rest.
            let (title, step) = if blind {
                (
                    format!(
                        "PodVolumeRestore {} stuck {}: the operator may not read its pod {pod}",
                        op.name, op.phase
                    ),
                    next_steps::pod_volume_restore_stuck_unseen(pod, namespace),
                )
            } else {
                (
                    format!(
                        "PodVolumeRestore {} stuck {}: pod {pod} never ran its restore init container",
                        op.name, op.phase
                    ),
                    next_steps::pod_volume_restore_stuck(pod),
                )
            };
            Finding::new(
                stuck_severity(e),
                Layer::VolumeOperations,
                "pod-volume-restore-stuck",
                title,
                &format!(
                    "status.phase: {}, no node accepted it ({})",
                    op.phase,
                    where_(op)
                ),
                &op.path,
            )
            .explaining(keys(op))
            .about([op.key()])
            .next_step(step)
        })
        .take(MAX_GROUPS)
        .collect()
}

/// VolumeSnapshotContents of the backup whose CSI driver reported an error (Velero quotes it
/// only when it times out), grouped by error; after a failed backup, those never ready too.
pub(super) fn volume_snapshot_content_error(e: &Evidence) -> Vec<Finding> {
    let failed = e.target.is_final() && e.target.phase != "Completed";
    let mut groups: Vec<Vec<&SnapshotContentEvidence>> = Vec::new();
    for content in e
        .infra
        .snapshot_contents
        .iter()
        .filter(|c| c.error.is_some() || failed)
    {
        group_into(&mut groups, content, MAX_GROUPS, |a, b| {
            (&a.error, &a.driver) == (&b.error, &b.driver)
        });
    }
    groups
        .into_iter()
        .map(|group| {
            let first = group[0];
            let (severity, what) = match first.error {
                Some(_) => (Severity::Error, "has an error"),
                None => (Severity::Warning, "never became ready to use"),
            };
            let title = if group.len() == 1 {
                format!(
                    "VolumeSnapshotContent {} {what} (driver {}, VolumeSnapshot {})",
                    first.name, first.driver, first.snapshot
                )
            } else {
                format!(
                    "{} VolumeSnapshotContents {what} (driver {})",
                    group.len(),
                    first.driver
                )
            };
            let quote = first
                .error
                .clone()
                .unwrap_or_else(|| "status.readyToUse: false, no error".into());
            Finding::new(
                severity,
                Layer::VolumeOperations,
                "volume-snapshot-content-error",
                title,
                &quote,
                &first.path,
            )
            .explaining([CSI_SNAPSHOTS_KEY.to_string()])
            .next_step(next_steps::volume_snapshot_content_error(
                &first.name,
                &first.driver,
            ))
        })
        .collect()
}

/// A VolumeSnapshot no content with a snapshot ever answered (Velero's plain timeout line):
/// the snapshot controller never bound it, or the driver's csi-snapshotter never cut it. The
/// stuck snapshot is the cause; Velero's timeout is what it caused.
pub(super) fn snapshot_not_reconciled(e: &Evidence) -> Vec<Finding> {
    let mentions = e.mentions(Pattern::SnapshotNotReconciled);
    let stuck: Vec<(String, &crate::findings::patterns::Mention)> = mentions
        .iter()
        .filter_map(|m| patterns::unreconciled_snapshot(&m.quote).map(|s| (s, m)))
        .collect();
    let Some((first, mention)) = stuck.first() else {
        return Vec::new();
    };
    let mut names: Vec<&str> = stuck.iter().map(|(s, _)| s.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let title = match names.len() {
        1 => format!("VolumeSnapshot {first} never got a snapshot: nothing reconciled it"),
        n => format!(
            "VolumeSnapshot {first} and {} more never got a snapshot: nothing reconciled them",
            n - 1
        ),
    };
    vec![
        Finding::new(
            Severity::Error,
            Layer::VolumeOperations,
            "volume-snapshot-not-reconciled",
            title,
            &mention.quote,
            &mention.file,
        )
        .at_line(mention.line)
        .explaining([CSI_SNAPSHOTS_KEY.to_string()])
        .next_step(next_steps::volume_snapshot_not_reconciled(first)),
    ]
}

/// No VolumeSnapshotClass Velero may use for a claim's driver: none of the driver's classes
/// is labelled for Velero and there is not exactly one (or there is none). Velero names the
/// StorageClass and the driver; the claims' item actions failed with it.
pub(super) fn no_snapshot_class(e: &Evidence) -> Vec<Finding> {
    from_mentions(
        e,
        Pattern::NoSnapshotClass,
        Severity::Error,
        Layer::VolumeOperations,
        "no-volume-snapshot-class",
        |mentions, n| {
            let (class, driver) = mentions
                .first()
                .map(|m| patterns::snapshot_class_wanted(&m.quote))
                .unwrap_or_default();
            let driver = driver.unwrap_or_else(|| "its driver".into());
            let class = class
                .map(|c| format!(" (StorageClass {c})"))
                .unwrap_or_default();
            format!(
                "No VolumeSnapshotClass Velero may use for {driver}{class}: {} failed",
                plural(n, "claim", "claims")
            )
        },
    )
    .map(|f| {
        let (_, driver) = patterns::snapshot_class_wanted(&f.quote);
        let step = next_steps::no_snapshot_class(driver.as_deref());
        f.explaining([CSI_SNAPSHOTS_KEY.to_string()])
            .next_step(step)
    })
    .into_iter()
    .collect()
}

pub(super) fn csi_snapshot_timeout(e: &Evidence) -> Vec<Finding> {
    from_mentions(
        e,
        Pattern::CsiSnapshotTimeout,
        Severity::Error,
        Layer::VolumeOperations,
        "csi-snapshot-timeout",
        |_, n| {
            format!(
                "CSI snapshot(s) timed out ({})",
                plural(n, "mention", "mentions")
            )
        },
    )
    // A timeout explains the item action that failed with it; a snapshot content's error
    // explains both.
    .map(|f| {
        f.waited_on([CSI_SNAPSHOTS_KEY.to_string()])
            .explaining([CSI_SNAPSHOTS_KEY.to_string()])
            .next_step(next_steps::csi_snapshot_timeout())
    })
    .into_iter()
    .collect()
}

/// Velero gave up waiting for the pod volume operations: a consequence of one of them.
pub(super) fn pod_volume_timeout(e: &Evidence) -> Vec<Finding> {
    from_mentions(
        e,
        Pattern::PodVolumeTimeout,
        Severity::Error,
        Layer::VolumeOperations,
        "pod-volume-timeout",
        |_, _| "Velero timed out waiting for the pod volume operations".to_string(),
    )
    .map(|f| {
        // What it waited on: the pod volume operations that did not complete, and their pods.
        let unfinished: Vec<&OperationEvidence> = e
            .operations
            .iter()
            .filter(|o| o.kind.starts_with("PodVolume") && o.phase != "Completed")
            .collect();
        let waited = unfinished
            .iter()
            .map(|o| o.key())
            .chain(waited_pods(&unfinished))
            .chain([kind_key("PodVolumeBackup"), kind_key("PodVolumeRestore")]);
        f.waited_on(waited)
            .next_step(next_steps::pod_volume_timeout(e.target.velero_namespace()))
    })
    .into_iter()
    .collect()
}

/// itemoperations.json entries that failed or timed out: Velero never copies these errors into
/// the results file.
pub(super) fn item_operation_failed(e: &Evidence) -> Vec<Finding> {
    let mut groups: Vec<Vec<&crate::findings::evidence::ItemOperationEvidence>> = Vec::new();
    for op in e
        .item_operations
        .iter()
        .filter(|o| !o.error.is_empty() || o.phase == "Failed")
    {
        group_into(&mut groups, op, MAX_GROUPS, |a, b| a.error == b.error);
    }
    groups
        .into_iter()
        .map(|group| {
            let first = group[0];
            let error = if first.error.is_empty() {
                "phase Failed, no error".to_string()
            } else {
                first.error.clone()
            };
            let title = if group.len() == 1 {
                format!(
                    "Item operation of {} for {} failed: {}",
                    first.action,
                    first.item,
                    cap(&error, 80)
                )
            } else {
                format!(
                    "{} item operations failed: {}",
                    group.len(),
                    cap(&error, 80)
                )
            };
            Finding::new(
                Severity::Error,
                Layer::VolumeOperations,
                "item-operation-failed",
                title,
                &error,
                &first.path,
            )
            .about(group.iter().map(|o| op_id_key(&o.operation_id)))
            .next_step(next_steps::item_operation_failed(
                &first.action,
                &e.target.kind,
                &e.target.name,
            ))
        })
        .collect()
}

/// Velero's own diagnosis when exposing a volume to the data path did not work.
pub(super) fn expose_diagnosis(e: &Evidence) -> Vec<Finding> {
    from_mentions(
        e,
        Pattern::DiagnoseExpose,
        Severity::Warning,
        Layer::VolumeOperations,
        "expose-diagnosis",
        |_, n| {
            format!(
                "Velero diagnosed a volume expose that did not work ({})",
                plural(n, "line", "lines")
            )
        },
    )
    .map(|f| f.next_step(next_steps::expose_diagnosis(e.target.velero_namespace())))
    .into_iter()
    .collect()
}

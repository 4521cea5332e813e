//! What the collect step saw, kept small: the fields the rules and summary.md read, with every
//! list bounded, so a Backup of 5,000 volumes or a results file of a million lines costs a
//! fixed amount of memory. Fed with the JSON of objects as written into the bundle (already
//! redacted), so nothing quoted from here can hold a secret the bundle masks.

use std::collections::{BTreeMap, BTreeSet};

mod intake;

use super::{
    infrastructure::InfraEvidence,
    last_words::LastWords,
    limit_ranges::{self, LimitRangeEvidence},
    log_scan::{LogHit, LogLineGroup, LogScan, LogSource},
    patterns::{self, Mention, Pattern},
    results::ResultGroups,
    text::cap,
};

/// VolumeAttachments kept (those of the target's claims' volumes).
const MAX_ATTACHMENTS: usize = 500;
/// Operations that did not complete kept in detail; the rest are only counted.
const MAX_OPERATIONS: usize = 500;
/// Warning events kept (the latest), and per workload pod or claim.
const MAX_EVENTS: usize = 40;
const MAX_EVENTS_PER_POD: usize = 5;
/// Item operations that did not complete kept in detail.
const MAX_ITEM_OPERATIONS: usize = 100;
/// Log hits kept per pattern (each also counted), and warning/error line groups kept in all.
const MAX_HITS_PER_PATTERN: usize = 5;
const MAX_PANIC_HITS: usize = 20;
const MAX_LOG_GROUPS: usize = 200;
/// Logs whose last words are kept (one per pod container log: Velero's pods are few, and
/// data-path pods are bounded by the collection).
const MAX_LAST_WORDS: usize = 500;
/// Status messages and the like are cut to this many bytes when kept.
const MAX_FIELD_BYTES: usize = 1024;
/// Workload pods kept (the collect step bounds them too), their PVCs, and the containers and
/// claims kept per pod.
const MAX_WORKLOAD_PODS: usize = 50;
const MAX_CLAIMS: usize = 100;
const MAX_CONTAINERS_PER_POD: usize = 10;
const MAX_CLAIMS_PER_POD: usize = 10;
/// The init container Velero puts in a restored pod with fs-backup volumes: it waits until the
/// node-agent has written them back, and the node-agent starts only once it runs. Velero also
/// knows it by its restic-era name, which pods restored by older versions still carry
/// (pkg/restorehelper WaitInitContainerLegacy, read by 1.14 to 1.18).
const RESTORE_WAIT_CONTAINERS: [&str; 2] = ["restore-wait", "restic-wait"];
/// ResourceQuotas kept, and the resources kept per quota.
const MAX_QUOTAS: usize = 20;
const MAX_QUOTA_RESOURCES: usize = 20;
/// StorageClass names kept.
const MAX_STORAGE_CLASSES: usize = 100;
/// Restored applications (Deployments, StatefulSets, DaemonSets, Jobs) kept.
const MAX_APPLICATIONS: usize = 500;
/// Pods and claims whose volume operations are counted (so "1 of 3 volumes" can be said).
const MAX_VOLUME_SUBJECTS: usize = 2000;

/// The Backup or Restore, from its status.
#[derive(Debug, Default, Clone)]
pub(crate) struct TargetEvidence {
    pub path: String,
    pub kind: String,
    pub name: String,
    /// Velero's namespace (the Backup's or Restore's).
    pub namespace: String,
    pub uid: String,
    pub phase: String,
    pub failure_reason: Option<String>,
    pub errors: Option<i64>,
    pub warnings: Option<i64>,
    pub started: Option<String>,
    pub completed: Option<String>,
    pub validation_errors: Vec<String>,
    pub hooks_attempted: i64,
    pub hooks_failed: i64,
    /// A Restore's `spec.hooks` has post-restore exec hooks: while Finalizing, Velero waits
    /// for each to run in its container.
    pub post_restore_exec_hooks: bool,
    /// (attempted, completed, failed) of backup/restore item operations.
    pub item_operations: (i64, i64, i64),
    /// The BSL the target's files live in (a Backup's own; a Restore's backup's).
    pub storage_location: Option<String>,
    /// A Restore's backup: name, and its phase when the backup still exists.
    pub backup_name: Option<String>,
    pub backup_phase: Option<String>,
    pub backup_path: Option<String>,
    /// A stall bundle's: since when the running target had not moved (its annotation).
    pub stalled: Option<StalledEvidence>,
}

/// How long a running target had not moved when its stall bundle was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StalledEvidence {
    /// RFC 3339.
    pub since: String,
    pub still_for: std::time::Duration,
    /// When the bundle was taken: how old what it waits on is, is told from it.
    pub taken_at: jiff::Timestamp,
    /// The stalls withheld before this bundle by the bound on stall bundles an hour, as its
    /// annotation names them.
    pub withheld: Option<String>,
}

impl TargetEvidence {
    /// Velero's namespace, for commands in next steps (velero when the target did not say).
    pub fn velero_namespace(&self) -> &str {
        if self.namespace.is_empty() {
            "velero"
        } else {
            &self.namespace
        }
    }

    /// The phase says the operation is over (nothing more will change).
    pub fn is_final(&self) -> bool {
        matches!(
            self.phase.as_str(),
            "Completed" | "PartiallyFailed" | "Failed" | "FailedValidation"
        )
    }
}

/// A PodVolumeBackup/Restore or DataUpload/Download.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct OperationEvidence {
    pub path: String,
    pub kind: String,
    pub name: String,
    pub phase: String,
    pub message: String,
    pub node: Option<String>,
    /// `namespace/name` of the workload pod (PVB/PVR `spec.pod`).
    pub pod: Option<String>,
    /// The namespace of the volume's workload: the pod's, DataUpload `spec.sourceNamespace`,
    /// DataDownload `spec.targetVolume.namespace`.
    pub namespace: Option<String>,
    /// The volume (PVB/PVR `spec.volume`) or PVC (DataUpload `spec.sourcePVC`, DataDownload
    /// `spec.targetVolume.pvc`).
    pub volume: Option<String>,
    /// `velero.io/async-operation-id`: how itemoperations.json names a DataUpload/Download.
    pub operation_id: Option<String>,
}

impl OperationEvidence {
    /// `Kind/name`: how findings name it in `explains`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }
}

#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct StorageLocationEvidence {
    pub path: String,
    pub name: String,
    pub phase: String,
    pub message: String,
}

/// Which Velero workload a pod belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PodRole {
    Server,
    NodeAgent,
    DataPath,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ContainerEvidence {
    pub name: String,
    pub restarts: i64,
    /// `lastState.terminated`: reason and exit code of the previous instance.
    pub last_terminated: Option<(String, i64)>,
    /// `state.waiting.reason` (CrashLoopBackOff, ImagePullBackOff...).
    pub waiting: Option<String>,
    /// `state.terminated`: reason and exit code, while it waits to be started again (a
    /// kubelet of 1.36 shows a crash loop's back-off so, not as CrashLoopBackOff).
    pub terminated: Option<(String, i64)>,
    /// The termination message of its last end (now or before a restart), as the kubelet
    /// wrote it.
    pub ended_message: Option<String>,
    /// `resources.limits.memory` in the pod's spec.
    pub memory_limit: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PodEvidence {
    pub path: String,
    pub role: PodRole,
    pub name: String,
    pub node: Option<String>,
    pub phase: String,
    pub containers: Vec<ContainerEvidence>,
    /// A data-path pod's operation (`PodVolumeBackup/name`), from the label naming it.
    pub serves: Option<String>,
    /// Gone from the cluster: when the operator's recorder saw it end (recorder/).
    pub recorded_at: Option<String>,
    /// A pod that failed as a whole: its own status.reason and status.message (the kubelet's
    /// admission refusal, `OutOfcpu` "Pod was rejected: ..."), which no container status holds.
    pub failed: Option<(String, String)>,
}

/// Container waiting reasons that only say the container is on its way (or waits for something
/// a stronger piece of evidence names).
pub(crate) const ON_THE_WAY: [&str; 3] = ["", "PodInitializing", "ContainerCreating"];

/// A container of a workload pod that waits (init containers too).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WaitingContainer {
    pub name: String,
    pub init: bool,
    pub reason: String,
    pub message: String,
}

/// A workload pod: one a PodVolumeBackup/Restore names, or a restored pod that is not Ready.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WorkloadPodEvidence {
    pub path: String,
    pub namespace: String,
    pub name: String,
    pub phase: String,
    pub node: Option<String>,
    /// Condition Ready is True.
    pub ready: bool,
    /// Condition PodScheduled is False: its reason and message.
    pub unschedulable: Option<(String, String)>,
    /// Containers waiting (and init containers that exited with an error), init containers
    /// first.
    pub waiting: Vec<WaitingContainer>,
    /// The init containers placed before Velero's restore-wait, in order: the PodVolumeRestores
    /// of the pod start only once restore-wait runs, so each of these must succeed first.
    pub before_restore_wait: Vec<String>,
    /// Names of the PersistentVolumeClaims its volumes use (ephemeral volumes' included).
    pub claims: Vec<String>,
    /// Its controller (`ownerReferences` with `controller: true`): kind and name.
    pub owner: Option<(String, String)>,
    /// Label `pod-template-hash`: a Deployment's ReplicaSet is `<deployment>-<hash>`.
    pub template_hash: Option<String>,
    /// The Helm release its labels or annotations name.
    pub helm_release: Option<String>,
    /// The container a post-restore exec hook of its annotations runs in
    /// (`post.hook.restore.velero.io/container`, else its first container).
    pub post_restore_hook: Option<String>,
}

impl WorkloadPodEvidence {
    /// `namespace/name`, as operations name their pod.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Running (or done) as it should: nothing about it explains a stuck volume.
    pub fn is_fine(&self) -> bool {
        self.phase == "Succeeded" || (self.phase == "Running" && self.ready)
    }
}

/// A Deployment, StatefulSet, DaemonSet or Job a Restore restored.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApplicationEvidence {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// The Helm release its labels or annotations name.
    pub helm_release: Option<String>,
}

/// A PersistentVolumeClaim of a workload pod.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ClaimEvidence {
    pub path: String,
    pub namespace: String,
    pub name: String,
    pub phase: String,
    /// `spec.storageClassName`: None when unset (the default class applies), `""` for none.
    pub storage_class: Option<String>,
    pub volume: Option<String>,
}

/// A ResourceQuota of a restored namespace.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct QuotaEvidence {
    pub path: String,
    pub namespace: String,
    pub name: String,
    /// `status.hard` (else `spec.hard`) and `status.used`, by resource.
    pub hard: BTreeMap<String, String>,
    pub used: BTreeMap<String, String>,
}

/// A VolumeAttachment of a PV the target's claims use: which node holds the volume.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AttachmentEvidence {
    pub name: String,
    pub volume: String,
    pub node: String,
    pub attached: bool,
}

/// The cluster's StorageClasses, as listed.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct StorageClassesEvidence {
    pub names: BTreeSet<String>,
    /// Each class's provisioner (`provisioner`), by class name.
    pub provisioners: BTreeMap<String, String>,
    /// The one annotated `storageclass.kubernetes.io/is-default-class: "true"`.
    pub default: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EventEvidence {
    pub path: String,
    pub time: String,
    /// `namespace/Kind/name` of the involved object.
    pub object: String,
    pub namespace: String,
    pub kind: String,
    pub name: String,
    pub reason: String,
    pub message: String,
    pub count: i64,
}

impl EventEvidence {
    pub fn line(&self) -> String {
        let times = if self.count > 1 {
            format!(" (x{})", self.count)
        } else {
            String::new()
        };
        format!(
            "{} {} {}{times}: {}",
            self.time, self.object, self.reason, self.message
        )
    }
}

/// One entry of itemoperations.json that did not complete.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ItemOperationEvidence {
    pub path: String,
    pub action: String,
    /// `resource/namespace/name` of the item.
    pub item: String,
    pub operation_id: String,
    pub phase: String,
    pub error: String,
    /// `status.created`: when the plugin started it.
    pub created: Option<jiff::Timestamp>,
    /// `status.description` and `nCompleted of nTotal operationUnits`, as far as given.
    pub progress: String,
}

/// A log hit with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LogHitAt {
    pub source: LogSource,
    pub hit: LogHit,
}

#[derive(Debug, Default)]
pub(crate) struct Evidence {
    pub target: TargetEvidence,
    pub operations: Vec<OperationEvidence>,
    /// kind -> phase -> count, of every operation (kept or not).
    pub operation_counts: BTreeMap<String, BTreeMap<String, u32>>,
    pub operations_left_out: usize,
    /// Nodes named by any of the target's operations, completed or not.
    pub involved_nodes: BTreeSet<String>,
    pub storage_locations: Vec<StorageLocationEvidence>,
    pub pods: Vec<PodEvidence>,
    /// Nodes with a running node-agent pod; None when node-agent pods were not listed.
    pub node_agent_nodes: Option<BTreeSet<String>>,
    pub events: Vec<EventEvidence>,
    pub events_seen: usize,
    pub workload_pods: Vec<WorkloadPodEvidence>,
    /// The workloads a Restore restored (by Velero's restore-name label), bounded.
    pub applications: Vec<ApplicationEvidence>,
    /// Volume operations of every phase by what they move: `pod/<ns>/<name>` (PodVolume*)
    /// or `pvc/<ns>/<name>` (DataUpload/Download).
    pub volume_totals: BTreeMap<String, u32>,
    /// More subjects were seen than kept: the totals are unknown.
    pub volume_totals_cut: bool,
    pub claims: Vec<ClaimEvidence>,
    pub quotas: Vec<QuotaEvidence>,
    pub limit_ranges: Vec<LimitRangeEvidence>,
    pub volume_attachments: Vec<AttachmentEvidence>,
    /// None when StorageClasses were not listed.
    pub storage_classes: Option<StorageClassesEvidence>,
    pub results: ResultGroups,
    pub item_operation_phases: BTreeMap<String, u32>,
    pub item_operations: Vec<ItemOperationEvidence>,
    pub log_hits: Vec<LogHitAt>,
    /// How often each pattern was seen in the one log that saw it most, kept or not: the same
    /// refusal shows in the operation's log and again in the server's, so a sum would count it
    /// twice.
    pub log_hit_counts: BTreeMap<Pattern, u64>,
    /// Warning and error lines no pattern matched, grouped by message.
    pub log_lines: Vec<(LogSource, LogLineGroup)>,
    pub log_lines_left_out: u64,
    /// Pattern lines written outside the operation's window in logs that serve many operations
    /// (a node-agent's): earlier context, never a cause; at most [`MAX_HITS_PER_PATTERN`] a
    /// pattern.
    pub log_context: Vec<LogHitAt>,
    /// What each pod's container logs (current and previous) ended with, for the rules about
    /// a component that restarted or cannot start; at most [`MAX_LAST_WORDS`].
    pub last_words: Vec<(LogSource, LastWords)>,
    /// Nodes, node-agent placement, repositories and their maintenance, snapshot contents,
    /// Velero's flags.
    pub infra: InfraEvidence,
    /// A Restore's backup's results file: what the backup itself missed.
    pub backup_results: ResultGroups,
    /// The target's own log could not be had from the object store.
    pub operation_log_missing: Option<MissingLog>,
    /// Every volume operation's times, for the report.
    pub timeline: super::timeline::Timeline,
    /// Reads the operator was refused (HTTP 403): by namespace ("" for the whole cluster),
    /// each resource and why (naming the chart value that grants it). A finding whose
    /// evidence lived there says so.
    pub not_allowed: BTreeMap<String, BTreeMap<String, String>>,
}

impl Evidence {
    /// Whether the operator was refused `resource` in `namespace` (there, or across the
    /// cluster with no namespace read instead).
    pub(crate) fn refused(&self, namespace: &str, resource: &str) -> bool {
        [namespace, ""].iter().any(|ns| {
            self.not_allowed
                .get(*ns)
                .is_some_and(|r| r.contains_key(resource))
        })
    }
}

/// The target's own log, missing from the object store.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct MissingLog {
    /// Its key in the bucket.
    pub key: String,
    /// What the store said.
    pub why: String,
    /// The bundle file of the server's lines standing in for it, when there is one.
    pub stand_in: Option<String>,
}

impl Evidence {
    /// What pod `pod` said last in its previous log (`previous`) or its current one.
    pub fn last_words_of(&self, pod: &str, previous: bool) -> Option<(&LogSource, &LastWords)> {
        self.last_words
            .iter()
            .find(|(s, _)| s.previous == previous && s.pod.as_deref() == Some(pod))
            .map(|(s, w)| (s, w))
    }

    /// The backup whose data the target moves: a Backup itself, a Restore's backup.
    pub fn target_backup_name(&self) -> Option<String> {
        let t = &self.target;
        if t.kind == "Restore" {
            t.backup_name.clone()
        } else {
            Some(t.name.clone()).filter(|n| !n.is_empty())
        }
    }

    /// Whether the target made or used CSI snapshots, as far as what was collected says:
    /// then the snapshot classes and CSI drivers are worth reading.
    pub fn uses_csi_snapshots(&self) -> bool {
        self.infra.snapshot_contents_seen > 0
            || !self.mentions(Pattern::CsiSnapshotTimeout).is_empty()
    }
}

/// Whether a PodVolumeRestore of this phase without a node of its own ran on its pod's node.
/// Velero 1.14's PodVolumeRestore has no `status.node` (1.18 sets it when a node-agent accepts
/// it), and 1.14's node-agent serves only the restores of pods on its own node. Only restores
/// past acceptance are placed: a New one still waits for its pod's restore-wait container.
pub(crate) fn restore_placed_by_its_pod(phase: &str) -> bool {
    matches!(phase, "InProgress" | "Completed" | "Failed")
}

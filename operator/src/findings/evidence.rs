//! What the collect step saw, kept small: the fields the rules and summary.md read, with every
//! list bounded, so a Backup of 5,000 volumes or a results file of a million lines costs a
//! fixed amount of memory. Fed with the JSON of objects as written into the bundle (already
//! redacted), so nothing quoted from here can hold a secret the bundle masks.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::{
    infrastructure::InfraEvidence,
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
/// Status messages and the like are cut to this many bytes when kept.
const MAX_FIELD_BYTES: usize = 1024;
/// Workload pods kept (the collect step bounds them too), their PVCs, and the containers and
/// claims kept per pod.
const MAX_WORKLOAD_PODS: usize = 50;
const MAX_CLAIMS: usize = 100;
const MAX_CONTAINERS_PER_POD: usize = 10;
const MAX_CLAIMS_PER_POD: usize = 10;
/// The init container Velero puts in a restored pod with fs-backup volumes: it waits until the
/// node-agent has written them back, and the node-agent starts only once it runs.
const RESTORE_WAIT_CONTAINER: &str = "restore-wait";
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
    /// (attempted, completed, failed) of backup/restore item operations.
    pub item_operations: (i64, i64, i64),
    /// The BSL the target's files live in (a Backup's own; a Restore's backup's).
    pub storage_location: Option<String>,
    /// A Restore's backup: name, and its phase when the backup still exists.
    pub backup_name: Option<String>,
    pub backup_phase: Option<String>,
    pub backup_path: Option<String>,
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
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PodEvidence {
    pub path: String,
    pub role: PodRole,
    pub name: String,
    pub node: Option<String>,
    pub phase: String,
    pub containers: Vec<ContainerEvidence>,
}

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

/// The Helm release an object belongs to: Helm 3's `meta.helm.sh/release-name` annotation,
/// else the chart labels' `app.kubernetes.io/instance` (with `app.kubernetes.io/managed-by:
/// Helm` or `helm.sh/chart`).
pub(crate) fn helm_release(metadata: &Value) -> Option<String> {
    let labels = &metadata["labels"];
    some_text(&metadata["annotations"]["meta.helm.sh/release-name"]).or_else(|| {
        let by_helm =
            labels["app.kubernetes.io/managed-by"] == "Helm" || labels["helm.sh/chart"].is_string();
        by_helm
            .then(|| some_text(&labels["app.kubernetes.io/instance"]))
            .flatten()
    })
}

/// The controller of an object (`ownerReferences` with `controller: true`): kind and name.
/// The containers of a pod's status that wait for more than a start (init containers first),
/// and the init containers that exited with an error (caught between two restarts).
fn stopped_containers(status: &Value) -> Vec<WaitingContainer> {
    [
        ("initContainerStatuses", true),
        ("containerStatuses", false),
    ]
    .iter()
    .flat_map(|(key, init)| {
        status[key]
            .as_array()
            .into_iter()
            .flatten()
            .map(move |c| (c, *init))
    })
    .filter_map(|(c, init)| {
        let (waiting, failed) = (&c["state"]["waiting"], &c["state"]["terminated"]);
        if waiting.is_object() {
            return Some(WaitingContainer {
                name: text(&c["name"]),
                init,
                reason: text(&waiting["reason"]),
                message: text(&waiting["message"]),
            });
        }
        let code = failed["exitCode"]
            .as_i64()
            .filter(|code| init && *code != 0)?;
        Some(WaitingContainer {
            name: text(&c["name"]),
            init,
            reason: some_text(&failed["reason"]).unwrap_or_else(|| "Error".into()),
            message: format!("exit code {code}"),
        })
    })
    .take(MAX_CONTAINERS_PER_POD)
    .collect()
}

/// The names of the init containers before Velero's restore-wait (at most
/// MAX_CONTAINERS_PER_POD); empty without it.
fn init_containers_before_restore_wait(spec: &Value) -> Vec<String> {
    let init = spec["initContainers"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    let Some(at) = init
        .iter()
        .position(|c| c["name"] == RESTORE_WAIT_CONTAINER)
    else {
        return Vec::new();
    };
    init[..at]
        .iter()
        .take(MAX_CONTAINERS_PER_POD)
        .map(|c| text(&c["name"]))
        .collect()
}

fn controller_of(metadata: &Value) -> Option<(String, String)> {
    metadata["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["controller"] == true)
        .map(|r| (text(&r["kind"]), text(&r["name"])))
}

fn text(v: &Value) -> String {
    v.as_str()
        .map(|s| cap(s, MAX_FIELD_BYTES))
        .unwrap_or_default()
}

fn some_text(v: &Value) -> Option<String> {
    v.as_str()
        .filter(|s| !s.is_empty())
        .map(|s| cap(s, MAX_FIELD_BYTES))
}

fn name_of(obj: &Value) -> String {
    text(&obj["metadata"]["name"])
}

/// What a volume operation moves, as [`Evidence::volume_totals`] names it: `pod/<ns>/<name>`
/// for a PodVolumeBackup/Restore, `pvc/<ns>/<name>` for a DataUpload/Download.
pub(crate) fn volume_subject(kind: &str, spec: &Value) -> Option<String> {
    if kind.starts_with("PodVolume") {
        let pod = &spec["pod"];
        return Some(format!(
            "pod/{}/{}",
            some_text(&pod["namespace"])?,
            some_text(&pod["name"])?
        ));
    }
    let (namespace, claim) = if kind == "DataUpload" {
        (&spec["sourceNamespace"], &spec["sourcePVC"])
    } else {
        (
            &spec["targetVolume"]["namespace"],
            &spec["targetVolume"]["pvc"],
        )
    };
    Some(format!(
        "pvc/{}/{}",
        some_text(namespace)?,
        some_text(claim)?
    ))
}

impl Evidence {
    /// The Backup or Restore (`obj` is the object's JSON, `path` its file in the bundle).
    pub fn set_target(&mut self, path: &str, obj: &Value) {
        let status = &obj["status"];
        let t = &mut self.target;
        t.path = path.to_string();
        t.kind = text(&obj["kind"]);
        t.name = name_of(obj);
        t.namespace = text(&obj["metadata"]["namespace"]);
        t.uid = text(&obj["metadata"]["uid"]);
        t.phase = some_text(&status["phase"]).unwrap_or_else(|| "<none>".into());
        t.failure_reason = some_text(&status["failureReason"]);
        t.errors = status["errors"].as_i64();
        t.warnings = status["warnings"].as_i64();
        t.started = some_text(&status["startTimestamp"]);
        t.completed = some_text(&status["completionTimestamp"]);
        t.validation_errors = status["validationErrors"]
            .as_array()
            .into_iter()
            .flatten()
            .take(20)
            .map(text)
            .collect();
        t.hooks_attempted = status["hookStatus"]["hooksAttempted"].as_i64().unwrap_or(0);
        t.hooks_failed = status["hookStatus"]["hooksFailed"].as_i64().unwrap_or(0);
        let prefix = if t.kind == "Restore" {
            "restore"
        } else {
            "backup"
        };
        let count = |what: &str| {
            status[format!("{prefix}ItemOperations{what}")]
                .as_i64()
                .unwrap_or(0)
        };
        t.item_operations = (count("Attempted"), count("Completed"), count("Failed"));
        if t.kind == "Restore" {
            t.backup_name = some_text(&obj["spec"]["backupName"]);
        } else {
            t.storage_location = some_text(&obj["spec"]["storageLocation"]);
        }
    }

    /// A Restore's backup, when it still exists.
    pub fn set_restore_backup(&mut self, path: &str, backup: &Value) {
        let t = &mut self.target;
        t.backup_phase = some_text(&backup["status"]["phase"]);
        t.backup_path = Some(path.to_string());
        t.storage_location = some_text(&backup["spec"]["storageLocation"]);
        if t.backup_name.is_none() {
            t.backup_name = Some(name_of(backup));
        }
    }

    pub fn add_operation(&mut self, path: &str, kind: &str, obj: &Value) {
        let (spec, status) = (&obj["spec"], &obj["status"]);
        let phase = some_text(&status["phase"]).unwrap_or_else(|| "<none>".into());
        *self
            .operation_counts
            .entry(kind.to_string())
            .or_default()
            .entry(phase.clone())
            .or_default() += 1;
        let node = if kind == "PodVolumeBackup" {
            some_text(&spec["node"])
        } else {
            some_text(&status["node"]).or_else(|| some_text(&status["acceptedByNode"]))
        };
        self.involved_nodes.extend(node.clone());
        self.count_volume(kind, spec);
        self.timeline.add(path, kind, node.as_deref(), &phase, obj);
        if phase == "Completed" {
            return;
        }
        if self.operations.len() >= MAX_OPERATIONS {
            self.operations_left_out += 1;
            return;
        }
        let pod = &spec["pod"];
        let namespace = some_text(&pod["namespace"])
            .or_else(|| some_text(&spec["sourceNamespace"]))
            .or_else(|| some_text(&spec["targetVolume"]["namespace"]));
        let pod = some_text(&pod["name"]).map(|n| format!("{}/{n}", text(&pod["namespace"])));
        let volume = some_text(&spec["volume"])
            .or_else(|| some_text(&spec["sourcePVC"]))
            .or_else(|| some_text(&spec["targetVolume"]["pvc"]));
        self.operations.push(OperationEvidence {
            path: path.to_string(),
            kind: kind.to_string(),
            name: name_of(obj),
            phase,
            message: text(&status["message"]),
            node,
            pod,
            namespace,
            volume,
            operation_id: some_text(&obj["metadata"]["labels"]["velero.io/async-operation-id"]),
        });
    }

    /// One more volume operation of the pod or claim it moves.
    fn count_volume(&mut self, kind: &str, spec: &Value) {
        let Some(subject) = volume_subject(kind, spec) else {
            return;
        };
        if let Some(n) = self.volume_totals.get_mut(&subject) {
            *n += 1;
        } else if self.volume_totals.len() < MAX_VOLUME_SUBJECTS {
            self.volume_totals.insert(subject, 1);
        } else {
            self.volume_totals_cut = true;
        }
    }

    /// A restored Deployment, StatefulSet, DaemonSet or Job (its JSON).
    pub fn add_application(&mut self, kind: &str, obj: &Value) {
        if self.applications.len() >= MAX_APPLICATIONS {
            return;
        }
        let metadata = &obj["metadata"];
        self.applications.push(ApplicationEvidence {
            kind: kind.to_string(),
            namespace: text(&metadata["namespace"]),
            name: name_of(obj),
            helm_release: helm_release(metadata),
        });
    }

    pub fn add_storage_location(&mut self, path: &str, obj: &Value) {
        self.storage_locations.push(StorageLocationEvidence {
            path: path.to_string(),
            name: name_of(obj),
            phase: text(&obj["status"]["phase"]),
            message: text(&obj["status"]["message"]),
        });
    }

    /// A Velero pod (its JSON), with its containers' restarts and last termination.
    pub fn add_pod(&mut self, path: &str, role: PodRole, pod: &Value) {
        let status = &pod["status"];
        let containers = ["initContainerStatuses", "containerStatuses"]
            .iter()
            .flat_map(|key| status[key].as_array().into_iter().flatten())
            .map(|c| {
                let terminated = &c["lastState"]["terminated"];
                ContainerEvidence {
                    name: text(&c["name"]),
                    restarts: c["restartCount"].as_i64().unwrap_or(0),
                    last_terminated: terminated.is_object().then(|| {
                        (
                            some_text(&terminated["reason"]).unwrap_or_else(|| "unknown".into()),
                            terminated["exitCode"].as_i64().unwrap_or(0),
                        )
                    }),
                    waiting: some_text(&c["state"]["waiting"]["reason"]),
                }
            })
            .collect();
        self.pods.push(PodEvidence {
            path: path.to_string(),
            role,
            name: name_of(pod),
            node: some_text(&pod["spec"]["nodeName"]),
            phase: text(&status["phase"]),
            containers,
        });
    }

    /// The nodes that run a node-agent pod (every node-agent pod, not only those collected),
    /// so a node without one can be named.
    pub fn set_node_agent_nodes(&mut self, nodes: impl IntoIterator<Item = String>) {
        self.node_agent_nodes = Some(nodes.into_iter().collect());
    }

    /// A workload pod (its JSON): phase, node, conditions, waiting containers, claims.
    /// `node`, the node of pod `namespace/name`, ran the PodVolumeRestores that name that pod
    /// and carry no node of their own ([`restore_placed_by_its_pod`]): it is involved, and the
    /// kept ones among them are placed on it.
    pub fn place_pod_volume_restores(&mut self, pod: &str, node: &str) {
        for op in self.operations.iter_mut().filter(|o| {
            o.kind == "PodVolumeRestore"
                && o.node.is_none()
                && o.pod.as_deref() == Some(pod)
                && restore_placed_by_its_pod(&o.phase)
        }) {
            op.node = Some(node.to_string());
        }
        self.timeline
            .place_restores(pod, node, restore_placed_by_its_pod);
        self.involved_nodes.insert(node.to_string());
    }

    pub fn add_workload_pod(&mut self, path: &str, pod: &Value) {
        if self.workload_pods.len() >= MAX_WORKLOAD_PODS {
            return;
        }
        let (spec, status) = (&pod["spec"], &pod["status"]);
        let condition = |kind: &str| {
            status["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["type"] == kind)
        };
        let unschedulable = condition("PodScheduled")
            .filter(|c| c["status"] == "False")
            .map(|c| (text(&c["reason"]), text(&c["message"])));
        let waiting = stopped_containers(status);
        let claims = spec["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| {
                some_text(&v["persistentVolumeClaim"]["claimName"]).or_else(|| {
                    // A generic ephemeral volume's claim is named `<pod>-<volume>`.
                    v["ephemeral"]
                        .is_object()
                        .then(|| format!("{}-{}", name_of(pod), text(&v["name"])))
                })
            })
            .take(MAX_CLAIMS_PER_POD)
            .collect();
        let metadata = &pod["metadata"];
        self.workload_pods.push(WorkloadPodEvidence {
            path: path.to_string(),
            namespace: text(&metadata["namespace"]),
            name: name_of(pod),
            phase: some_text(&status["phase"]).unwrap_or_else(|| "<none>".into()),
            node: some_text(&spec["nodeName"]),
            ready: condition("Ready").is_some_and(|c| c["status"] == "True"),
            unschedulable,
            waiting,
            before_restore_wait: init_containers_before_restore_wait(spec),
            claims,
            owner: controller_of(metadata),
            template_hash: some_text(&metadata["labels"]["pod-template-hash"]),
            helm_release: helm_release(metadata),
        });
    }

    /// A PersistentVolumeClaim of a workload pod (its JSON).
    pub fn add_claim(&mut self, path: &str, claim: &Value) {
        if self.claims.len() >= MAX_CLAIMS {
            return;
        }
        self.claims.push(ClaimEvidence {
            path: path.to_string(),
            namespace: text(&claim["metadata"]["namespace"]),
            name: name_of(claim),
            phase: some_text(&claim["status"]["phase"]).unwrap_or_else(|| "<none>".into()),
            storage_class: claim["spec"]["storageClassName"]
                .as_str()
                .map(|s| cap(s, MAX_FIELD_BYTES)),
            volume: some_text(&claim["spec"]["volumeName"]),
        });
    }

    /// A ResourceQuota (its JSON).
    pub fn add_quota(&mut self, path: &str, quota: &Value) {
        if self.quotas.len() >= MAX_QUOTAS {
            return;
        }
        let resources = |v: &Value| -> BTreeMap<String, String> {
            v.as_object()
                .into_iter()
                .flatten()
                .take(MAX_QUOTA_RESOURCES)
                .map(|(k, v)| (cap(k, MAX_FIELD_BYTES), text(v)))
                .collect()
        };
        let status = &quota["status"];
        let hard = if status["hard"].is_object() {
            resources(&status["hard"])
        } else {
            resources(&quota["spec"]["hard"])
        };
        self.quotas.push(QuotaEvidence {
            path: path.to_string(),
            namespace: text(&quota["metadata"]["namespace"]),
            name: name_of(quota),
            hard,
            used: resources(&status["used"]),
        });
    }

    /// A VolumeAttachment (its JSON).
    pub fn add_volume_attachment(&mut self, attachment: &Value) {
        if self.volume_attachments.len() >= MAX_ATTACHMENTS {
            return;
        }
        self.volume_attachments.push(AttachmentEvidence {
            name: name_of(attachment),
            volume: text(&attachment["spec"]["source"]["persistentVolumeName"]),
            node: text(&attachment["spec"]["nodeName"]),
            attached: attachment["status"]["attached"] == true,
        });
    }

    /// A LimitRange (its JSON).
    pub fn add_limit_range(&mut self, path: &str, range: &Value) {
        if let Some(range) = limit_ranges::read(path, range, self.limit_ranges.len()) {
            self.limit_ranges.push(range);
        }
    }

    /// The cluster's StorageClasses (their JSON), listed whole.
    pub fn set_storage_classes<'a>(&mut self, classes: impl IntoIterator<Item = &'a Value>) {
        let mut found = StorageClassesEvidence::default();
        for class in classes {
            let name = name_of(class);
            let annotation =
                &class["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"];
            if annotation == "true" && found.default.is_none() {
                found.default = Some(name.clone());
            }
            if found.names.len() < MAX_STORAGE_CLASSES {
                found.names.insert(name);
            }
        }
        self.storage_classes = Some(found);
    }

    /// Events (a JSON list as written into the bundle): each one [`add_event`](Self::add_event)
    /// takes, then [`trim_events`](Self::trim_events). Collection hands them over one at a time.
    #[cfg(test)]
    pub(crate) fn add_events(&mut self, path: &str, events: &Value) {
        for e in events.as_array().into_iter().flatten() {
            self.add_event(path, e);
        }
        self.trim_events();
    }

    /// One event as written into the bundle at `path`. Only Warning events are kept: once
    /// [`trim_events`](Self::trim_events) trimmed them, the latest and those about the workload
    /// pods and their claims.
    pub fn add_event(&mut self, path: &str, e: &Value) {
        if e["type"] != "Warning" {
            return;
        }
        self.events_seen += 1;
        let obj = &e["involvedObject"];
        let time = ["lastTimestamp", "eventTime", "firstTimestamp"]
            .iter()
            .find_map(|k| some_text(&e[k]))
            .unwrap_or_default();
        let (namespace, kind, name) = (
            text(&obj["namespace"]),
            text(&obj["kind"]),
            text(&obj["name"]),
        );
        let event = EventEvidence {
            path: path.to_string(),
            time,
            object: format!("{namespace}/{kind}/{name}"),
            namespace,
            kind,
            name,
            reason: text(&e["reason"]),
            message: text(&e["message"]),
            count: e["count"].as_i64().unwrap_or(1),
        };
        if self.events.iter().any(|k| {
            k.object == event.object && k.reason == event.reason && k.message == event.message
        }) {
            return;
        }
        self.events.push(event);
        if self.events.len() > 4 * MAX_EVENTS {
            self.trim_events();
        }
    }

    /// Keeps the events about workload pods and their claims (a few each) and the latest
    /// others: once after the events of a list were added.
    pub fn trim_events(&mut self) {
        let workloads: BTreeSet<(&str, String)> = self
            .operations
            .iter()
            .filter_map(|o| o.pod.clone())
            .chain(self.workload_pods.iter().map(|p| p.key()))
            .map(|pod| ("Pod", pod))
            .chain(self.claims.iter().map(|c| {
                (
                    "PersistentVolumeClaim",
                    format!("{}/{}", c.namespace, c.name),
                )
            }))
            .collect();
        self.events.sort_by(|a, b| b.time.cmp(&a.time));
        let mut per_object: BTreeMap<(String, String), usize> = BTreeMap::new();
        let mut others = 0;
        self.events.retain(|e| {
            let object = format!("{}/{}", e.namespace, e.name);
            if workloads.contains(&(e.kind.as_str(), object.clone())) {
                let n = per_object.entry((e.kind.clone(), object)).or_default();
                *n += 1;
                *n <= MAX_EVENTS_PER_POD
            } else {
                others += 1;
                others <= MAX_EVENTS
            }
        });
        self.events.sort_by(|a, b| a.time.cmp(&b.time));
    }

    /// One entry of itemoperations.json (its JSON).
    pub fn add_item_operation(&mut self, path: &str, op: &Value) {
        let status = &op["status"];
        let phase = some_text(&status["phase"]).unwrap_or_else(|| "<none>".into());
        *self.item_operation_phases.entry(phase.clone()).or_default() += 1;
        let error = text(&status["error"]);
        if (phase == "Completed" && error.is_empty())
            || self.item_operations.len() >= MAX_ITEM_OPERATIONS
        {
            return;
        }
        let spec = &op["spec"];
        let id = &spec["resourceIdentifier"];
        let action = some_text(&spec["backupItemAction"])
            .or_else(|| some_text(&spec["restoreItemAction"]))
            .unwrap_or_default();
        self.item_operations.push(ItemOperationEvidence {
            path: path.to_string(),
            action,
            item: format!(
                "{}/{}/{}",
                text(&id["Resource"]),
                text(&id["Namespace"]),
                text(&id["Name"])
            ),
            operation_id: text(&spec["operationID"]),
            phase,
            error,
        });
    }

    /// What one log file showed, once it has been read whole.
    pub fn add_log_scan(&mut self, scan: LogScan) {
        let (source, hits, groups, dropped) = scan.into_parts();
        for hit in hits {
            let most = self.log_hit_counts.entry(hit.pattern).or_default();
            *most = (*most).max(hit.count);
            let cap = if hit.pattern == Pattern::GoPanic {
                MAX_PANIC_HITS
            } else {
                MAX_HITS_PER_PATTERN
            };
            let kept = self
                .log_hits
                .iter()
                .filter(|h| h.hit.pattern == hit.pattern)
                .count();
            if kept < cap {
                self.log_hits.push(LogHitAt {
                    source: source.clone(),
                    hit,
                });
            }
        }
        self.log_lines_left_out += dropped;
        for group in groups {
            if self.log_lines.len() < MAX_LOG_GROUPS {
                self.log_lines.push((source.clone(), group));
            } else {
                self.log_lines_left_out += group.count;
            }
        }
    }

    /// Every place a pattern shows: operations' and the target's status, results, item
    /// operations, logs. Bounded by what each source keeps.
    pub fn mentions(&self, pattern: Pattern) -> Vec<Mention> {
        let mut out = Vec::new();
        let t = &self.target;
        let target_texts = t.failure_reason.iter().chain(&t.validation_errors);
        for text in target_texts {
            if patterns::classify(text).contains(&pattern) {
                out.push(Mention {
                    pattern,
                    quote: super::text::quote(text),
                    file: t.path.clone(),
                    line: None,
                    operation: None,
                    node: None,
                });
            }
        }
        for op in &self.operations {
            if patterns::classify(&op.message).contains(&pattern) {
                out.push(Mention {
                    pattern,
                    quote: super::text::quote(&op.message),
                    file: op.path.clone(),
                    line: None,
                    operation: Some(op.key()),
                    node: op.node.clone(),
                });
            }
        }
        for m in self.results.mentions(pattern) {
            out.push(m.clone());
        }
        for op in &self.item_operations {
            if patterns::classify(&op.error).contains(&pattern) {
                out.push(Mention {
                    pattern,
                    quote: super::text::quote(&op.error),
                    file: op.path.clone(),
                    line: None,
                    operation: None,
                    node: None,
                });
            }
        }
        for h in self.log_hits.iter().filter(|h| h.hit.pattern == pattern) {
            out.push(Mention {
                pattern,
                quote: h.hit.quote.clone(),
                file: h.source.path.clone(),
                line: Some(h.hit.line),
                operation: None,
                node: h.source.node.clone(),
            });
        }
        out
    }
}

impl Evidence {
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

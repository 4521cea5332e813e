//! Collection: everything relevant to one Backup or Restore goes into the archive. The room
//! of its own the DebugBundle controller's collect step (bundle/collect.rs) calls into: it is
//! given what to read ([`Sources`]) and where to write ([`Sink`]), says how far it got
//! through [`Progress`], and returns what it collected ([`Collected`]: the archive, the
//! findings' evidence, the warnings). It writes no status, publishes no event and never
//! imports the controller (`bundle`), the process or the `Context`: the controller decides.
//!
//! Each part is its own module and never fails the bundle for what it cannot read: an object,
//! log or file that cannot be had becomes a warning in the bundle. Only the archive itself
//! failing (disk) is an error. Every API call has a timeout and every list is paginated.

mod budget;
mod events;
mod infrastructure;
mod lines;
mod logs;
mod markers;
mod object_store;
mod objects;
mod repositories;
mod sink;
mod snapshots;
mod sources;
mod tail_keeper;
mod velero_config_maps;
mod velero_files;
mod workload_env;
mod workloads;

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Instant,
};

use jiff::Timestamp;
use kube::core::DynamicObject;
use velero_debug_crd::NodeAgentLogs;

pub(crate) use self::{sink::Sink, sources::Sources, workload_env::WorkloadEnv};

/// Why a namespace's workload objects or events were not collected when the API server refused
/// them (manifest.json's notCollected, summary.md's "Not allowed to read").
const REFUSED_IN_NAMESPACE: &str =
    "forbidden; rbac.workloadNamespaces does not list this namespace";
use crate::{redact::MaskCounts, summary::Summary, tar_gz::TarGzWriter, velero::Target};

/// Why collection stopped: only its archive (the disk under the spool folder) failing. What
/// cannot be read is a warning in the bundle, never an error.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CollectError {
    #[error("writing the archive: {0}")]
    Archive(#[from] std::io::Error),
}

/// What to collect, with every default resolved (bundle/plan.rs resolves and checks it).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CollectPlan {
    pub target: Target,
    /// Logs written at or after this time.
    pub since: Timestamp,
    /// maxLogBytesPerContainer, checked to be within its range.
    pub max_log_bytes: u64,
    pub previous_logs: bool,
    pub node_agent_logs: NodeAgentLogs,
    pub events: bool,
    /// A stall bundle's: since when its running target had not moved.
    pub stalled_since: Option<Timestamp>,
    /// A stall bundle's: the stalls withheld before it (its annotation, as written).
    pub stalls_withheld: Option<String>,
}

/// The target and, for a restore, its backup, as read before collection (the controller
/// needs them first, to plan).
pub(crate) struct TargetObjects {
    pub target: DynamicObject,
    /// For a restore, its backup (when it still exists).
    pub backup: Option<DynamicObject>,
}

/// How collection says how far it got: the number of parts done (of [`STEPS`]), after each.
/// It must not wait: the controller writes it to status from a task of its own.
pub(crate) trait Progress: Sync {
    fn parts_done(&self, done: usize);
}

impl<F: Fn(usize) + Sync> Progress for F {
    fn parts_done(&self, done: usize) {
        self(done)
    }
}

/// What collection hands to the archive step.
pub(crate) struct Collected {
    pub archive: TarGzWriter,
    pub summary: Summary,
    pub warnings: Vec<String>,
    /// Milliseconds per part.
    pub timings: BTreeMap<String, u64>,
    /// Values masked in everything collected, by redaction rule.
    pub masks: MaskCounts,
    /// Kinds not collected (refused reads), and why.
    pub not_collected: Vec<crate::summary::NotCollected>,
}

/// Collects everything for one bundle from `sources` into `sink`, the parts one after the
/// other; the archive is finished by the next step.
pub(crate) async fn run(
    sources: Sources<'_>,
    mut sink: Sink,
    objects: &TargetObjects,
    progress: &dyn Progress,
) -> Result<Collected, CollectError> {
    let mut found = Found::default();
    all_parts(&sources, &mut sink, &mut found, objects, progress).await?;
    found.summary.evidence.target.stalled = sources.plan.stalled_since.map(|since| {
        let taken_at = Timestamp::now();
        crate::findings::StalledEvidence {
            since: since.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            still_for: std::time::Duration::try_from(taken_at.duration_since(since))
                .unwrap_or_default(),
            taken_at,
            withheld: sources.plan.stalls_withheld.clone(),
        }
    });
    Ok(sink.into_collected(found.summary))
}

/// What the parts found so far: the summary and its evidence (for the findings), and what
/// later parts look for because earlier ones found it.
#[derive(Default)]
struct Found {
    summary: Summary,
    /// Nodes that ran the target's volume operations.
    involved_nodes: BTreeSet<String>,
    /// Names of the target's operation objects (PVB/PVR/DataUpload/DataDownload).
    operation_names: BTreeSet<String>,
    /// The workload pods the target's PodVolumeBackups/Restores name (`spec.pod`), those of
    /// operations that did not complete first.
    operation_pods: Vec<workloads::PodRef>,
    /// The pods of PodVolumeRestores that ran without naming their node (Velero 1.14): those
    /// pods' nodes ran them.
    unplaced_restore_pods: BTreeSet<workloads::PodRef>,
    /// Uids of the workload objects collected, by namespace: their events are collected.
    workload_uids: BTreeMap<String, BTreeSet<String>>,
    /// Uids of the PersistentVolumes collected: their events (in namespace default, where
    /// Kubernetes records events of cluster-scoped objects) are collected.
    volume_uids: BTreeSet<String>,
    /// The warning (its index in the sink's) saying the operation's own log is not in the
    /// object store: the logs step puts the server's lines for the operation in its place and
    /// says so.
    missing_operation_log: Option<usize>,
}

/// Steps in the order they end; status.progress counts them. The logs, the longest, are read
/// while workloads, cluster-state and events are collected.
pub(crate) const STEPS: [&str; 8] = [
    "target",
    "object-store",
    "operations",
    "workloads",
    "cluster-state",
    "events",
    "logs",
    "summary",
];

/// Runs every part, timing each and reporting the number done through `progress`.
async fn all_parts(
    src: &Sources<'_>,
    out: &mut Sink,
    found: &mut Found,
    objects: &TargetObjects,
    progress: &dyn Progress,
) -> Result<(), CollectError> {
    macro_rules! part {
        ($n:expr, $name:expr, $call:expr) => {{
            let start = Instant::now();
            $call.await?;
            crate::allocator::release_freed_memory_now().await;
            out.record_timing($name, start);
            progress.parts_done($n);
        }};
    }
    part!(1, "target", objects::target_yaml(src, out, found, objects));
    part!(2, "object-store", object_store::artifacts(src, out, found));
    part!(
        3,
        "operations",
        objects::operations(src, out, found, objects)
    );
    // The nodes whose node-agents' logs are read are known from the operations, but for a
    // PodVolumeRestore that names none (Velero 1.14): its pod's node, which the workloads
    // find. What the parts after them collect is not needed to read the logs, and they are
    // what a bundle waits for besides the logs (BENCHMARKS.md, issue 38).
    let workloads_first = !found.unplaced_restore_pods.is_empty();
    if workloads_first {
        part!(4, "workloads", workloads::all(src, out, found, objects));
    }
    let logs_start = Instant::now();
    let reading = logs::plan(src, out, found).await?.read();
    let others = async {
        if !workloads_first {
            part!(4, "workloads", workloads::all(src, out, found, objects));
        }
        part!(5, "cluster-state", objects::cluster_state(src, out, found));
        if src.plan.events {
            part!(6, "events", events::all(src, out, found, objects));
        }
        Ok::<_, CollectError>(())
    };
    // An archive that cannot be written ends collection at once: the reads are dropped.
    let reading = async { Ok::<_, CollectError>(reading.await) };
    let (read, ()) = futures::try_join!(reading, others)?;
    read.add(src, out, found)?;
    crate::allocator::release_freed_memory_now().await;
    out.record_timing("logs", logs_start);
    progress.parts_done(7);
    Ok(())
}

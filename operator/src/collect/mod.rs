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
mod log_tail;
mod logs;
mod object_store;
mod objects;
mod repositories;
mod sink;
mod snapshots;
mod sources;
mod stand_in;
mod velero_files;
mod workloads;

use std::{
    collections::{BTreeMap, BTreeSet},
    future::Future,
    path::PathBuf,
    sync::Arc,
    time::Instant,
};

use jiff::Timestamp;
use k8s_openapi::NamespaceResourceScope;
use kube::{Api, Client, Resource, api::ListParams, core::DynamicObject};
use serde::{Serialize, de::DeserializeOwned};
use velero_debug_crd::NodeAgentLogs;

use self::budget::ContentBudget;
pub(crate) use self::{sink::Sink, sources::Sources};
use crate::{
    config::{Limits, size_text},
    gzip_members::{CompressedFile, Compression},
    kubernetes,
    redact::{MaskCounts, Redactor},
    storage::{ObjectStore, StorageLocation},
    summary::Summary,
    tar_gz::{EntryPath, TarGzWriter},
    velero::Target,
};

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
}

/// Collects everything for one bundle from `sources` into `sink`, the parts one after the
/// other; the archive is finished by the next step.
pub(crate) async fn run(
    sources: Sources<'_>,
    sink: Sink,
    objects: &TargetObjects,
    progress: &dyn Progress,
) -> Result<Collected, CollectError> {
    let mut collector = Collector::new(sources, sink);
    all_parts(&mut collector, objects, progress).await?;
    Ok(Collected {
        archive: collector.archive,
        summary: collector.summary,
        warnings: collector.warnings,
        timings: collector.timings,
        masks: collector.masks,
    })
}

/// The collection of one bundle in progress.
struct Collector<'a> {
    client: Client,
    /// Container logs are read with this one (log_client.rs).
    log_client: Client,
    namespace: String,
    plan: &'a CollectPlan,
    limits: &'a Limits,
    redactor: Arc<Redactor>,
    compression: Compression,
    /// What the redactor masked so far, from every source.
    masks: MaskCounts,
    store: &'a ObjectStore,
    location: &'a StorageLocation,
    archive: TarGzWriter,
    /// Taken from before anything is written for the bundle (spool files, archive entries).
    budget: ContentBudget,
    spool_dir: PathBuf,
    warnings: Vec<String>,
    timings: BTreeMap<String, u64>,
    summary: Summary,
    /// Uids of every object collected, so events about them can be found.
    collected_uids: BTreeSet<String>,
    /// Nodes that ran the target's volume operations.
    involved_nodes: BTreeSet<String>,
    /// Names of the target's operation objects (PVB/PVR/DataUpload/DataDownload).
    operation_names: BTreeSet<String>,
    /// The workload pods the target's PodVolumeBackups/Restores name (`spec.pod`), those of
    /// operations that did not complete first.
    operation_pods: Vec<workloads::PodRef>,
    /// Uids of the workload objects collected, by namespace: their events are collected.
    workload_uids: BTreeMap<String, BTreeSet<String>>,
    /// The warning (its index) saying the operation's own log is not in the object store:
    /// the logs step puts the server's lines for the operation in its place and says so.
    missing_operation_log: Option<usize>,
    spool_seq: u64,
}

impl<'a> Collector<'a> {
    /// A collection with nothing collected yet, from `sources` into `sink`.
    fn new(sources: Sources<'a>, sink: Sink) -> Self {
        Collector {
            client: sources.client,
            log_client: sources.log_client,
            namespace: sources.namespace,
            plan: sources.plan,
            limits: sources.limits,
            redactor: sink.redactor,
            compression: sink.compression,
            masks: MaskCounts::default(),
            store: sources.store,
            location: sources.location,
            archive: sink.archive,
            budget: sink.budget,
            spool_dir: sink.spool_dir,
            warnings: Vec::new(),
            timings: BTreeMap::new(),
            summary: Summary::default(),
            collected_uids: BTreeSet::new(),
            involved_nodes: BTreeSet::new(),
            operation_names: BTreeSet::new(),
            operation_pods: Vec::new(),
            workload_uids: BTreeMap::new(),
            missing_operation_log: None,
            spool_seq: 0,
        }
    }
}

/// Steps in the order they run; status.progress counts them.
pub(crate) const STEPS: [&str; 8] = [
    "target",
    "object-store",
    "operations",
    "workloads",
    "cluster-state",
    "logs",
    "events",
    "summary",
];

impl Collector<'_> {
    fn record_timing(&mut self, step: &str, start: Instant) {
        self.timings
            .insert(step.to_string(), start.elapsed().as_millis() as u64);
    }

    fn warn(&mut self, message: impl Into<String>) {
        let message = message.into();
        tracing::info!(warning = %message, "bundle warning");
        self.warnings.push(message);
    }

    /// A fresh spool file path inside the bundle's spool folder.
    fn spool_path(&mut self, hint: &str) -> PathBuf {
        self.spool_seq += 1;
        let safe: String = hint
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(60)
            .collect();
        self.spool_dir.join(format!("{}-{safe}", self.spool_seq))
    }

    /// Adds a Kubernetes object as redacted YAML.
    fn add_object(&mut self, path: &EntryPath, obj: &impl Serialize) -> Result<(), CollectError> {
        self.add_object_seen(path, obj).map(drop)
    }

    /// [`add_object`](Self::add_object), returning the object as written (redacted JSON): what
    /// the findings may quote.
    fn add_object_seen(
        &mut self,
        path: &EntryPath,
        obj: &impl Serialize,
    ) -> Result<serde_json::Value, CollectError> {
        let mut value = serde_json::to_value(obj).unwrap_or_default();
        strip_noise(&mut value);
        self.redactor
            .redact_json_counted(&mut value, &mut self.masks);
        if let Some(uid) = value["metadata"]["uid"].as_str() {
            self.collected_uids.insert(uid.to_string());
        }
        let yaml = serde_yaml::to_string(&value).unwrap_or_default();
        self.add_text(path, &yaml)?;
        Ok(value)
    }

    /// Adds text (already redacted by the caller, its masks counted, when it comes from
    /// outside), unless the bundle's budget has no room for all of it.
    fn add_text(&mut self, path: &EntryPath, text: &str) -> Result<(), CollectError> {
        if !self.budget.take_all(text.len() as u64) {
            self.warn_left_out(path);
            return Ok(());
        }
        tokio::task::block_in_place(|| self.archive.append_bytes(path, text.as_bytes()))?;
        Ok(())
    }

    /// Adds a spooled file, whose bytes were taken from the budget as they were written, and
    /// removes it; counts what was masked in it.
    fn add_spooled(
        &mut self,
        path: &EntryPath,
        file: &std::path::Path,
        masks: &MaskCounts,
    ) -> Result<(), CollectError> {
        let added = tokio::task::block_in_place(|| self.archive.append_file(path, file));
        let _ = std::fs::remove_file(file);
        added?;
        self.masks.merge(masks);
        Ok(())
    }

    /// Adds a spooled file compressed ahead (see [`gzip_members`](crate::gzip_members)),
    /// whose bytes were taken from the budget as they were written; counts what was masked in
    /// it.
    fn add_compressed(
        &mut self,
        path: &EntryPath,
        content: &CompressedFile,
        masks: &MaskCounts,
    ) -> Result<(), CollectError> {
        tokio::task::block_in_place(|| self.archive.append_compressed(path, content))?;
        self.masks.merge(masks);
        Ok(())
    }

    /// A file left out whole: the budget was used up before it.
    fn warn_left_out(&mut self, path: &EntryPath) {
        self.warn(format!(
            "{path} left out: the bundle reached its size limit of {} (MAX_BUNDLE_BYTES)",
            size_text(self.budget.total())
        ));
    }

    /// Lists every object matching `lp`, page by page; a list cut at `max_list_items`, an
    /// object left out because it could not be read, or a list that fails is a warning.
    async fn list_all<K>(&mut self, api: &Api<K>, lp: ListParams, what: &str) -> Option<Vec<K>>
    where
        K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
    {
        self.list_matching(api, lp, what, |_| true).await
    }

    /// [`list_all`](Self::list_all), keeping only the objects `keep` accepts: the others are
    /// dropped with their page, so a namespace with thousands of objects of no concern (the
    /// events of every other bundle in Velero's namespace) costs one page of memory, not all.
    async fn list_matching<K>(
        &mut self,
        api: &Api<K>,
        lp: ListParams,
        what: &str,
        keep: impl FnMut(&K) -> bool,
    ) -> Option<Vec<K>>
    where
        K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
    {
        let max = self.limits.max_list_items;
        match kubernetes::list_keeping(api, lp, self.limits, max, keep).await {
            Ok(listed) => Some(self.listed(listed, what)),
            Err(e) => {
                self.warn(format!("{what}: could not be listed: {e}"));
                None
            }
        }
    }

    /// [`list_all`](Self::list_all) of a kind the cluster may not serve (an optional CRD): a
    /// 404 is [`Unlisted::NotServed`], no warning, for the caller to mention when it matters.
    async fn list_optional<K>(
        &mut self,
        api: &Api<K>,
        lp: ListParams,
        what: &str,
    ) -> Result<Vec<K>, Unlisted>
    where
        K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
    {
        match self.try_list_all(api, lp, what).await {
            Ok(items) => Ok(items),
            Err(e) if e.is_not_found() || kubernetes::is_not_found_message(&e.message) => {
                tracing::info!(what, "not served by the cluster (CRD not installed)");
                Err(Unlisted::NotServed)
            }
            Err(e) => {
                self.warn(format!("{what}: could not be listed: {e}"));
                Err(Unlisted::Failed)
            }
        }
    }

    /// [`list_all`](Self::list_all), leaving a list that fails to the caller (a refusal it
    /// explains better, a kind not served).
    async fn try_list_all<K>(
        &mut self,
        api: &Api<K>,
        lp: ListParams,
        what: &str,
    ) -> Result<Vec<K>, kubernetes::RequestError>
    where
        K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
    {
        let listed = kubernetes::list_all(api, lp, self.limits).await?;
        Ok(self.listed(listed, what))
    }

    /// The items of a list, with a warning for a list cut short or an item left out.
    fn listed<K>(&mut self, listed: kubernetes::Listed<K>, what: &str) -> Vec<K> {
        if listed.truncated {
            self.warn(format!(
                "{what}: more than {} objects; only the first were collected",
                self.limits.max_list_items
            ));
        }
        for why in listed.undecodable {
            self.warn(format!("{what}: one left out, it could not be read: {why}"));
        }
        listed.items
    }

    fn dynamic_api(&self, kind: &str) -> Api<DynamicObject> {
        Api::namespaced_with(
            self.client.clone(),
            &self.namespace,
            &crate::velero::resource(kind),
        )
    }

    fn namespaced<K>(&self) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Runs an API call under the API timeout.
    async fn timed<T>(
        &self,
        fut: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, String> {
        kubernetes::with_timeout(self.limits.api_timeout, fut).await
    }

    /// [`timed`](Self::timed), keeping the HTTP status of a refusal.
    async fn timed_request<T>(
        &self,
        fut: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, kubernetes::RequestError> {
        kubernetes::request_within(self.limits.api_timeout, fut).await
    }
}

/// Why [`Collector::list_optional`] has no list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unlisted {
    /// The cluster does not serve the kind (its CRD is not installed).
    NotServed,
    /// Listing failed; a warning says why.
    Failed,
}

/// managedFields only make YAML long; nobody debugging a restore reads them.
fn strip_noise(value: &mut serde_json::Value) {
    if let Some(meta) = value.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        meta.remove("managedFields");
        if let Some(annotations) = meta.get_mut("annotations").and_then(|a| a.as_object_mut()) {
            annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
        }
    }
}

/// Runs every part, timing each and reporting the number done through `progress`.
async fn all_parts(
    c: &mut Collector<'_>,
    objects: &TargetObjects,
    progress: &dyn Progress,
) -> Result<(), CollectError> {
    macro_rules! part {
        ($n:expr, $name:expr, $call:expr) => {{
            let start = Instant::now();
            $call.await?;
            c.record_timing($name, start);
            progress.parts_done($n);
        }};
    }
    part!(1, "target", objects::target_yaml(c, objects));
    part!(2, "object-store", object_store::artifacts(c));
    part!(3, "operations", objects::operations(c, objects));
    part!(4, "workloads", workloads::all(c, objects));
    part!(5, "cluster-state", objects::cluster_state(c));
    part!(6, "logs", logs::all(c));
    if c.plan.events {
        part!(7, "events", events::all(c, objects));
    }
    Ok(())
}

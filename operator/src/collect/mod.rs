//! Collection of everything relevant to one Backup or Restore into the bundle archive.
//!
//! Each step is its own module and never fails the bundle for what it cannot read: an object,
//! log or file that cannot be had becomes a warning in the bundle. Only the archive itself
//! failing (disk) is an error. Every API call has a timeout and every list is paginated.

mod events;
mod logs;
mod object_store;
mod objects;

use std::{
    collections::{BTreeMap, BTreeSet},
    future::Future,
    path::PathBuf,
    time::{Duration, Instant},
};

use k8s_openapi::NamespaceResourceScope;
use kube::{Api, Client, Resource, api::ListParams, core::DynamicObject};
use serde::{Serialize, de::DeserializeOwned};

use crate::{
    archive::ArchiveWriter, plan::CollectPlan, redact::Redactor, storage::ObjectStore,
    summary::Summary,
};

/// Limits that keep one bundle from stalling or growing without bound.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Timeout of one API request (a list page, a get).
    pub api_timeout: Duration,
    /// Timeout of reading one container's log.
    pub log_timeout: Duration,
    /// Page size of list calls.
    pub page_size: u32,
    /// At most this many objects of one list are kept.
    pub max_list_items: usize,
    /// Logs read at the same time.
    pub log_concurrency: usize,
    /// Content of one bundle (before compression); logs beyond it are left out with a
    /// warning, so the spool folder needs at most this per bundle collecting.
    pub max_bundle_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            api_timeout: Duration::from_secs(30),
            log_timeout: Duration::from_secs(120),
            page_size: 250,
            max_list_items: 5000,
            log_concurrency: 4,
            max_bundle_bytes: 512 * 1024 * 1024,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("writing the archive: {0}")]
    Archive(#[from] std::io::Error),
}

/// What is known about the target once fetched.
pub struct TargetObjects {
    pub target: DynamicObject,
    /// For a restore, its backup (when it still exists).
    pub backup: Option<DynamicObject>,
}

/// The collection of one bundle in progress.
pub struct Collector<'a> {
    pub client: Client,
    pub namespace: String,
    pub plan: &'a CollectPlan,
    pub limits: &'a Limits,
    pub redactor: &'a Redactor,
    pub store: &'a ObjectStore,
    pub location: &'a crate::plan::StorageLocation,
    pub archive: ArchiveWriter,
    pub spool_dir: PathBuf,
    pub warnings: Vec<String>,
    pub timings: BTreeMap<String, u64>,
    pub summary: Summary,
    /// Uids of every object collected, so events about them can be found.
    pub collected_uids: BTreeSet<String>,
    /// Nodes that ran the target's volume operations.
    pub involved_nodes: BTreeSet<String>,
    /// Names of the target's operation objects (PVB/PVR/DataUpload/DataDownload).
    pub operation_names: BTreeSet<String>,
    spool_seq: u64,
}

/// Steps in the order they run; status.progress counts them.
pub const STEPS: [&str; 7] = [
    "target",
    "object-store",
    "operations",
    "cluster-state",
    "logs",
    "events",
    "summary",
];

impl<'a> Collector<'a> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client: Client,
        namespace: &str,
        plan: &'a CollectPlan,
        limits: &'a Limits,
        redactor: &'a Redactor,
        store: &'a ObjectStore,
        location: &'a crate::plan::StorageLocation,
        archive: ArchiveWriter,
        spool_dir: PathBuf,
    ) -> Self {
        Self {
            client,
            namespace: namespace.to_string(),
            plan,
            limits,
            redactor,
            store,
            location,
            archive,
            spool_dir,
            warnings: Vec::new(),
            timings: BTreeMap::new(),
            summary: Summary::default(),
            collected_uids: BTreeSet::new(),
            involved_nodes: BTreeSet::new(),
            operation_names: BTreeSet::new(),
            spool_seq: 0,
        }
    }

    fn record_timing(&mut self, step: &str, start: Instant) {
        self.timings
            .insert(step.to_string(), start.elapsed().as_millis() as u64);
    }

    pub fn warn(&mut self, message: impl Into<String>) {
        let message = message.into();
        tracing::info!(warning = %message, "bundle warning");
        self.warnings.push(message);
    }

    /// A fresh spool file path inside the bundle's spool folder.
    pub fn spool_path(&mut self, hint: &str) -> PathBuf {
        self.spool_seq += 1;
        let safe: String = hint
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(60)
            .collect();
        self.spool_dir.join(format!("{}-{safe}", self.spool_seq))
    }

    /// Adds a Kubernetes object as redacted YAML.
    pub fn add_object(&mut self, path: &str, obj: &impl Serialize) -> Result<(), CollectError> {
        let mut value = serde_json::to_value(obj).unwrap_or_default();
        strip_noise(&mut value);
        self.redactor.redact_json(&mut value);
        if let Some(uid) = value["metadata"]["uid"].as_str() {
            self.collected_uids.insert(uid.to_string());
        }
        let yaml = serde_yaml::to_string(&value).unwrap_or_default();
        tokio::task::block_in_place(|| self.archive.append_bytes(path, yaml.as_bytes()))?;
        Ok(())
    }

    /// Adds text (already redacted by the caller when it comes from outside).
    pub fn add_text(&mut self, path: &str, text: &str) -> Result<(), CollectError> {
        tokio::task::block_in_place(|| self.archive.append_bytes(path, text.as_bytes()))?;
        Ok(())
    }

    /// Adds a spooled file, unless the bundle reached its size limit (then a warning says
    /// what was left out).
    pub fn add_spooled(&mut self, path: &str, file: &std::path::Path) -> Result<(), CollectError> {
        let added =
            tokio::task::block_in_place(|| self.archive.append_file_within_budget(path, file));
        let _ = std::fs::remove_file(file);
        if !added? {
            self.warn(format!(
                "{path} left out: the bundle reached its size limit of {} bytes (MAX_BUNDLE_BYTES)",
                self.limits.max_bundle_bytes
            ));
        }
        Ok(())
    }

    /// Lists every object of a namespaced kind matching `lp`, page by page, each page under the
    /// API timeout; stops at `max_list_items` with a warning.
    pub async fn list_all<K>(&mut self, api: &Api<K>, lp: ListParams, what: &str) -> Option<Vec<K>>
    where
        K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
    {
        match list_paginated(api, lp, self.limits).await {
            Ok((items, truncated)) => {
                if truncated {
                    self.warn(format!(
                        "{what}: more than {} objects; only the first were collected",
                        self.limits.max_list_items
                    ));
                }
                Some(items)
            }
            Err(e) => {
                self.warn(format!("{what}: could not be listed: {e}"));
                None
            }
        }
    }

    pub fn dynamic_api(&self, kind: &str) -> Api<DynamicObject> {
        Api::namespaced_with(
            self.client.clone(),
            &self.namespace,
            &crate::velero::resource(kind),
        )
    }

    pub fn namespaced<K>(&self) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Runs an API call under the API timeout.
    pub async fn timed<T>(
        &self,
        fut: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, String> {
        match tokio::time::timeout(self.limits.api_timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(kube_message(&e)),
            Err(_) => Err(format!(
                "timed out after {}s",
                self.limits.api_timeout.as_secs()
            )),
        }
    }
}

/// A kube error as one short line: the API server's own message, not the debug dump.
pub fn kube_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => format!("{} (HTTP {})", status.message, status.code),
        other => other.to_string(),
    }
}

/// Lists with pagination; returns the items and whether the cap cut the list.
pub async fn list_paginated<K>(
    api: &Api<K>,
    lp: ListParams,
    limits: &Limits,
) -> Result<(Vec<K>, bool), String>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let mut items = Vec::new();
    let mut lp = lp.limit(limits.page_size);
    loop {
        let page = match tokio::time::timeout(limits.api_timeout, api.list(&lp)).await {
            Ok(Ok(page)) => page,
            Ok(Err(e)) => return Err(kube_message(&e)),
            Err(_) => return Err(format!("timed out after {}s", limits.api_timeout.as_secs())),
        };
        items.extend(page.items);
        if items.len() >= limits.max_list_items {
            items.truncate(limits.max_list_items);
            return Ok((items, true));
        }
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => lp = lp.continue_token(&token),
            _ => return Ok((items, false)),
        }
    }
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

/// Runs every step, timing each and reporting the number done through `on_step`; the archive
/// is finished by the caller.
pub async fn run(
    c: &mut Collector<'_>,
    objects: &TargetObjects,
    mut on_step: impl FnMut(usize),
) -> Result<(), CollectError> {
    macro_rules! step {
        ($n:expr, $name:expr, $call:expr) => {{
            let start = Instant::now();
            $call.await?;
            c.record_timing($name, start);
            on_step($n);
        }};
    }
    step!(1, "target", objects::target(c, objects));
    step!(2, "object-store", object_store::artifacts(c));
    step!(3, "operations", objects::operations(c, objects));
    step!(4, "cluster-state", objects::cluster_state(c));
    step!(5, "logs", logs::all(c));
    if c.plan.events {
        step!(6, "events", events::all(c, objects));
    }
    Ok(())
}

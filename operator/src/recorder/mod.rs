//! The recorder of what Velero deletes: since 1.17 node-agent deletes a data-path pod seconds
//! after it ends, and Velero keeps only its last maintenance jobs, so a pod's own status (the
//! only place `OOMKilled` is written) is gone before anyone makes a bundle. While it leads,
//! the operator watches the pods of Velero's namespace and keeps those of its data path that
//! ended badly (termination.rs cuts each to how it ended; book.rs bounds them), writes them to
//! the ConfigMap [`TERMINATION_RECORD`] every [`SAVE_EVERY`] (so they outlive the process and
//! pass to the next leader), and hands a bundle the ones of its operations.
//!
//! [`TERMINATION_RECORD`]: velero_debug_crd::TERMINATION_RECORD

mod book;
mod termination;

use std::{
    collections::BTreeSet,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::{ByteString, api::core::v1::ConfigMap, api::core::v1::Pod};
use kube::{
    Api, Client,
    api::{Patch, PatchParams},
    runtime::{WatchStreamExt, watcher},
};
use tokio_util::sync::CancellationToken;
use velero_debug_crd::TERMINATION_RECORD;

use crate::{kubernetes, redact::Redactor, velero};

/// How often a changed book is written to its ConfigMap.
const SAVE_EVERY: Duration = Duration::from_secs(10);
/// The key of the ConfigMap's binaryData that holds the book.
const KEY: &str = "terminations.jsonl.gz";

/// The pods recorded, shared by the watch that records them and the bundles that read them.
pub(crate) struct Recorder {
    book: Mutex<book::Book>,
    /// Changed since it was last written.
    dirty: AtomicBool,
    redactor: Arc<Redactor>,
}

impl Recorder {
    pub(crate) fn new(redactor: Arc<Redactor>) -> Self {
        Recorder {
            book: Mutex::default(),
            dirty: AtomicBool::new(false),
            redactor,
        }
    }

    /// Records `pod` when it is one of Velero's data path and ended badly; its messages are
    /// redacted before they are kept (the record is stored in a ConfigMap).
    pub(crate) fn observe(&self, pod: &Pod, now: Timestamp) {
        let Some(ended) = termination::of(pod, now) else {
            return;
        };
        let ended = self.redacted(ended);
        if self.lock().keep(ended) {
            self.dirty.store(true, Ordering::Relaxed);
        }
    }

    /// The recorded pods that served one of `operations` (the label's value names it), and
    /// the maintenance pods of `repositories`.
    pub(crate) fn serving(
        &self,
        operations: &BTreeSet<String>,
        repositories: &BTreeSet<String>,
    ) -> Vec<Pod> {
        self.lock().matching(|pod| {
            let labels = pod.metadata.labels.as_ref();
            let has = |key: &str, among: &BTreeSet<String>| {
                labels
                    .and_then(|l| l.get(key))
                    .is_some_and(|v| among.contains(v))
            };
            velero::DATA_PATH_POD_LABELS
                .iter()
                .any(|key| has(key, operations))
                || has(velero::REPOSITORY_NAME_LABEL, repositories)
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, book::Book> {
        // A panic while holding it leaves a book still whole (each change is one call).
        self.book.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn redacted(&self, pod: Pod) -> Pod {
        let mut value = serde_json::to_value(&pod).unwrap_or_default();
        self.redactor
            .redact_json_counted(&mut value, &mut Default::default());
        serde_json::from_value(value).unwrap_or(pod)
    }
}

/// Where the book is stored, and how long a request to it may take.
struct Store {
    api: Api<ConfigMap>,
    namespace: String,
    timeout: Duration,
    /// The last write failed: said once, not at every retry (a ConfigMap the chart did not
    /// make stays missing).
    failing: AtomicBool,
}

impl Store {
    /// The records stored, kept beside what is already in `recorder`.
    async fn load(&self, recorder: &Recorder) {
        let map = match kubernetes::request_within(self.timeout, self.api.get(TERMINATION_RECORD))
            .await
        {
            Ok(map) => map,
            Err(e) => {
                tracing::warn!(namespace = %self.namespace, error = %e, "ConfigMap {TERMINATION_RECORD}, where pods Velero deleted are recorded, could not be read (the Helm chart makes it): pods recorded earlier are not known");
                return;
            }
        };
        let Some(stored) = map.binary_data.as_ref().and_then(|d| d.get(KEY)) else {
            return;
        };
        let (stored, bad) = book::Book::decode(&stored.0);
        if bad > 0 {
            tracing::warn!(
                bad,
                "ConfigMap {TERMINATION_RECORD}: records that could not be read were dropped"
            );
        }
        let mut book = recorder.lock();
        for pod in stored.matching(|_| true) {
            book.keep(pod);
        }
    }

    async fn save(&self, recorder: &Recorder) {
        if !recorder.dirty.swap(false, Ordering::Relaxed) {
            return;
        }
        let bytes = recorder.lock().encode();
        let patch = ConfigMap {
            binary_data: Some([(KEY.to_string(), ByteString(bytes))].into()),
            ..ConfigMap::default()
        };
        let params = PatchParams::default();
        let patch = Patch::Merge(&patch);
        let patched = self.api.patch(TERMINATION_RECORD, &params, &patch);
        match kubernetes::request_within(self.timeout, patched).await {
            Ok(_) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!(namespace = %self.namespace, "ConfigMap {TERMINATION_RECORD}: the pods recorded are written again");
                }
            }
            Err(e) => {
                recorder.dirty.store(true, Ordering::Relaxed);
                if !self.failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(namespace = %self.namespace, error = %e, "ConfigMap {TERMINATION_RECORD} (the Helm chart makes it): the pods recorded could not be written; retried every 10 s, kept in memory meanwhile");
                }
            }
        }
    }
}

/// Records the pods of Velero's `namespace` until `shutdown`, writing the book as it changes
/// and once more at the end.
pub(crate) async fn run(
    recorder: Arc<Recorder>,
    client: Client,
    namespace: String,
    timeout: Duration,
    shutdown: CancellationToken,
    recorded: impl Fn(usize),
) {
    let store = Store {
        api: Api::namespaced(client.clone(), &namespace),
        namespace: namespace.clone(),
        timeout,
        failing: AtomicBool::new(false),
    };
    store.load(&recorder).await;
    recorded(recorder.len());
    let pods: Api<Pod> = Api::namespaced(client, &namespace);
    // Only the pods' events are used: no store of them is kept.
    let mut events = watcher(pods, watcher::Config::default().any_semantic())
        .default_backoff()
        .boxed();
    let mut save = tokio::time::interval(SAVE_EVERY);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = save.tick() => {
                store.save(&recorder).await;
                recorded(recorder.len());
            }
            event = events.next() => match event {
                Some(Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod) | watcher::Event::Delete(pod))) => {
                    recorder.observe(&pod, Timestamp::now());
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => tracing::warn!(error = %e, "watching Velero's pods to record how they end"),
                None => break,
            },
        }
    }
    store.save(&recorder).await;
}

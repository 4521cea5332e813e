//! What every reconcile shares: one client, one event recorder, the settings, the metrics,
//! the collection slots and the shutdown signal.

use std::sync::{Arc, atomic::AtomicU64};

use kube::{
    Client,
    runtime::events::{Recorder, Reporter},
};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::{config::Config, metrics::Metrics, redact::Redactor};

/// Field manager of everything the operator writes.
pub(crate) const MANAGER: &str = "velero-debug-operator";

pub(crate) struct Context {
    pub client: Client,
    /// API requests made by this process (see process.rs); a bundle records its share.
    pub api_requests: Arc<AtomicU64>,
    pub recorder: Recorder,
    pub config: Config,
    /// Shared with the blocking threads that redact object-store files (collect/object_store.rs).
    pub redactor: Arc<Redactor>,
    /// Collection slots: bundles beyond `config.concurrency` wait as Pending.
    pub collect_slots: Arc<Semaphore>,
    pub metrics: Arc<Metrics>,
    /// Fires on SIGTERM or a lost lease: collections and uploads in flight stop (the upload
    /// is aborted) and the bundle is left for the next leader.
    pub shutdown: CancellationToken,
    /// This cluster, on every archive it writes (the DebugBundle CRD's uid; see orphans.rs);
    /// empty when it could not be read.
    pub cluster_mark: String,
}

impl Context {
    pub fn new(
        client: Client,
        config: Config,
        redactor: Redactor,
        api_requests: Arc<AtomicU64>,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
        cluster_mark: String,
    ) -> Self {
        let reporter = Reporter {
            controller: MANAGER.into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            api_requests,
            collect_slots: Arc::new(Semaphore::new(config.concurrency.max(1).into())),
            config,
            redactor: Arc::new(redactor),
            metrics,
            shutdown,
            cluster_mark,
        }
    }
}

//! What every reconcile of one term shares (see leader.rs: a term is one stretch of leading):
//! one client, the event publisher, the settings, the metrics, the collection slots and the
//! term's end.

use std::sync::Arc;

use kube::{Client, runtime::events::Reporter};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::{
    config::Config, event_publisher::EventPublisher, install_record::InstallRecord,
    metrics::Metrics, recorder::Recorder, redact::Redactor, request_tally::RequestTally,
};

/// Field manager of everything the operator writes.
pub(crate) const MANAGER: &str = "velero-debug-operator";

pub(crate) struct Context {
    pub client: Client,
    /// The client container logs are read with (log_client.rs); `client` where none is given.
    pub log_client: Client,
    /// The client of background reads no bundle asked for (the stall watch's looks at
    /// running operations), left out of the request tally a bundle's manifest reports; `client`
    /// where none is given.
    pub uncounted_client: Client,
    /// API requests made by this process (see process.rs); a bundle records its share.
    pub api_requests: Arc<RequestTally>,
    pub events: EventPublisher,
    pub config: Config,
    /// Built once per process (its patterns are compiled once), shared by every term and
    /// with the blocking threads that redact object-store files (collect/object_store.rs).
    pub redactor: Arc<Redactor>,
    /// Collection slots: bundles beyond `config.concurrency` wait as Pending.
    pub collect_slots: Arc<Semaphore>,
    pub metrics: Arc<Metrics>,
    /// Fires when this term ends (SIGTERM, or the lease lost or unconfirmed; a child of the
    /// process's SIGTERM token): collections and uploads in flight stop (the upload is
    /// aborted), nothing more is written (see [`Context::still_leading`]) and the bundle is
    /// left for the next leader.
    pub shutdown: CancellationToken,
    /// This install, on every archive it writes (the DebugBundle CRD's uid, the namespace
    /// served and this process; see orphans.rs); empty when the CRD could not be read or the
    /// install record not written.
    pub install_mark: String,
    /// Where uploads begun are recorded (install_record.rs); None when not serving one
    /// namespace, or when the record could not be written.
    pub install_record: Option<InstallRecord>,
    /// How the pods of Velero's data path that ended badly ended (recorder/): Velero deletes
    /// them, and bundles made later read them here.
    pub recorder: Arc<Recorder>,
}

impl Context {
    pub fn new(
        client: Client,
        config: Config,
        redactor: Arc<Redactor>,
        api_requests: Arc<RequestTally>,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
        install: (String, Option<InstallRecord>),
    ) -> Self {
        let (install_mark, install_record) = install;
        let reporter = Reporter {
            controller: MANAGER.into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            events: EventPublisher::new(client.clone(), reporter),
            log_client: client.clone(),
            uncounted_client: client.clone(),
            recorder: Arc::new(Recorder::new(redactor.clone())),
            client,
            api_requests,
            collect_slots: Arc::new(Semaphore::new(config.concurrency.max(1).into())),
            config,
            redactor,
            metrics,
            shutdown,
            install_mark,
            install_record,
        }
    }

    /// Container logs are read with `log_client`.
    pub fn with_log_client(self, log_client: Client) -> Self {
        Self { log_client, ..self }
    }

    /// Background reads go through `uncounted_client`.
    pub fn with_uncounted_client(self, uncounted_client: Client) -> Self {
        Self {
            uncounted_client,
            ..self
        }
    }

    /// Ok while this term lasts. Checked right before each write of a bundle's status and
    /// the upload's completion: once another replica may lead, this one must not write what
    /// the new leader is redoing.
    pub fn still_leading(&self) -> Result<(), NotLeading> {
        if self.shutdown.is_cancelled() {
            Err(NotLeading)
        } else {
            Ok(())
        }
    }
}

/// A write refused because this process's term is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "not written: this process no longer leads (SIGTERM, or the Lease lost); the next leader carries on"
)]
pub(crate) struct NotLeading;

//! The DebugBundle controller: `reconcile` only runs the finalizer. Its Apply branch runs the
//! collection pipeline (pipeline.rs) for a bundle that has not finished, and the lifecycle
//! (lifecycle.rs: retention, URL refresh and expiry) for one that has; its Cleanup branch
//! deletes the archive. Permanent failures end in status Failed and wait for a change;
//! transient ones are retried with backoff up to a limit.

mod lifecycle;
mod pipeline;

use std::{
    path::PathBuf,
    sync::{Arc, atomic::AtomicU64},
    time::Duration,
};

use futures::{FutureExt, StreamExt};
use jiff::Timestamp;
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{Patch, PatchParams},
    runtime::{
        Controller,
        controller::{self, Action},
        events::{Event, EventType, Recorder, Reporter},
        finalizer::{self, Event as Finalizer, finalizer},
        watcher,
    },
};
use velero_debug_crd::{DebugBundle, DebugBundleStatus, FINALIZER, reasons};

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::{
    auto_bundles::{self, Policy},
    collect::Limits,
    fetch::{self, FetchError},
    metrics::Metrics,
    plan,
    redact::Redactor,
    status,
    storage::{ObjectStore, StorageError},
};

pub const OPERATOR_VERSION: &str = env!("CARGO_PKG_VERSION");
pub(crate) const MANAGER: &str = "velero-debug-operator";
/// Progress is written by a task of its own, under its own field manager.
const PROGRESS_MANAGER: &str = "velero-debug-operator-progress";

#[derive(Debug, Clone)]
pub struct Config {
    /// Where archives are spooled while being built.
    pub spool_dir: PathBuf,
    /// Bundles collected at the same time.
    pub concurrency: u16,
    /// How long a missing target is waited for (a bundle applied with its restore).
    pub target_wait: Duration,
    /// Attempts of a bundle whose failure may pass (object store unreachable).
    pub max_attempts: i32,
    pub limits: Limits,
    /// Retention of bundles made by hand, when their spec sets none (None: kept).
    pub ttl_manual: Option<Duration>,
    /// Retention of automatic bundles, when their spec sets none (None: kept).
    pub ttl_auto: Option<Duration>,
    /// Which Backups and Restores get automatic bundles.
    pub auto: Policy,
    /// Upload rate limit (None: as fast as the store takes it).
    pub upload_bytes_per_second: Option<u64>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            spool_dir: std::env::temp_dir(),
            concurrency: 4,
            target_wait: Duration::from_secs(120),
            max_attempts: 5,
            limits: Limits::default(),
            ttl_manual: Some(Duration::from_secs(7 * 24 * 3600)),
            ttl_auto: Some(Duration::from_secs(3 * 24 * 3600)),
            auto: Policy::default(),
            upload_bytes_per_second: None,
        }
    }
}

/// Shared by every reconcile: one client, one event recorder.
pub struct Context {
    pub client: Client,
    /// API requests made by this process (see main.rs); a bundle records its share.
    pub api_requests: Arc<AtomicU64>,
    pub recorder: Recorder,
    pub config: Config,
    pub redactor: Redactor,
    /// Collection slots: bundles beyond `config.concurrency` wait as Pending.
    pub collect_slots: Arc<Semaphore>,
    pub metrics: Arc<Metrics>,
    /// Fires on SIGTERM or a lost lease: collections and uploads in flight stop (the upload
    /// is aborted) and the bundle is left for the next leader.
    pub shutdown: CancellationToken,
}

impl Context {
    pub fn new(
        client: Client,
        config: Config,
        api_requests: Arc<AtomicU64>,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
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
            redactor: Redactor::new(),
            metrics,
            shutdown,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("spool: {0}")]
    Spool(#[from] std::io::Error),
    #[error(transparent)]
    Finalizer(#[from] Box<finalizer::Error<Error>>),
    #[error("stopped: the operator is shutting down; the next leader collects this bundle")]
    ShuttingDown,
}

pub async fn reconcile(bundle: Arc<DebugBundle>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = bundle.namespace().unwrap_or_default();
    let api: Api<DebugBundle> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer(&api, FINALIZER, bundle, |event| async {
        match event {
            Finalizer::Apply(b) => apply(&b, &ctx).await,
            Finalizer::Cleanup(b) => cleanup(&b, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

/// Transient errors: requeue with a delay (the finalizer already recorded nothing permanent).
pub fn error_policy(bundle: Arc<DebugBundle>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconcile_error("debugbundle");
    tracing::warn!(bundle = %bundle.name_any(), %error, "reconcile failed; retrying");
    Action::requeue(Duration::from_secs(10))
}

async fn apply(bundle: &DebugBundle, ctx: &Context) -> Result<Action, Error> {
    let st = bundle.status.as_ref();
    let finished = st.and_then(|s| s.phase).is_some_and(|p| p.is_finished())
        && st.and_then(|s| s.observed_generation) == bundle.metadata.generation;
    if finished {
        lifecycle::finished(bundle, ctx).await
    } else {
        pipeline::collect(bundle, ctx).await
    }
}

async fn patch_status(
    ctx: &Context,
    bundle: &DebugBundle,
    status: DebugBundleStatus,
) -> Result<DebugBundleStatus, Error> {
    let api: Api<DebugBundle> =
        Api::namespaced(ctx.client.clone(), &bundle.namespace().unwrap_or_default());
    // Server-side apply of the whole status: fields this status leaves out are removed.
    let patch = serde_json::json!({
        "apiVersion": "velerodebug.io/v1alpha1",
        "kind": "DebugBundle",
        "status": status,
    });
    api.patch_status(
        &bundle.name_any(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(status)
}

async fn publish(
    ctx: &Context,
    bundle: &DebugBundle,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note.chars().take(1000).collect()),
        action: "Collect".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &bundle.object_ref(&())).await {
        tracing::warn!(error = %e, "could not publish event");
    }
}

/// Ends the bundle as Failed with a machine-readable reason; waits for a change.
async fn fail(
    ctx: &Context,
    bundle: &DebugBundle,
    target: &str,
    reason: &str,
    message: String,
) -> Result<Action, Error> {
    tracing::info!(bundle = %bundle.name_any(), reason, %message, "bundle failed");
    ctx.metrics.finished("failed");
    patch_status(
        ctx,
        bundle,
        status::failed(bundle, target, reason, &message, Timestamp::now()),
    )
    .await?;
    publish(
        ctx,
        bundle,
        EventType::Warning,
        "Failed",
        format!("{reason}: {message}"),
    )
    .await;
    Ok(Action::await_change())
}

/// A failure that may pass: counted, retried with backoff, Failed at the limit.
async fn retry_or_fail(
    ctx: &Context,
    bundle: &DebugBundle,
    target: &str,
    reason: &str,
    error: Error,
) -> Result<Action, Error> {
    let attempts = bundle.status.as_ref().and_then(|s| s.attempts).unwrap_or(0) + 1;
    if attempts >= ctx.config.max_attempts {
        let message = format!("{error} (gave up after {attempts} attempts)");
        return fail(ctx, bundle, target, reason, message).await;
    }
    let message = error.to_string();
    patch_status(
        ctx,
        bundle,
        status::retrying(bundle, target, reason, &message, Timestamp::now()),
    )
    .await?;
    Err(error)
}

fn reason_of(error: &StorageError) -> &'static str {
    match error {
        StorageError::CredentialsInvalid { .. } => reasons::CREDENTIALS_INVALID,
        StorageError::Unreachable { .. } => reasons::STORAGE_UNREACHABLE,
        StorageError::CertificateUntrusted { .. } => reasons::CERTIFICATE_UNTRUSTED,
        _ => reasons::UPLOAD_FAILED,
    }
}

/// The object store of an existing archive's storage location; None when the location, or
/// its credential, no longer exists or is no longer usable (nothing can be done there).
async fn archive_store(
    ctx: &Context,
    namespace: &str,
    storage_location: &str,
) -> Result<Option<ObjectStore>, Error> {
    let Some(bsl) = fetch::storage_location(&ctx.client, namespace, storage_location).await? else {
        return Ok(None);
    };
    let Ok(location) = plan::storage_location(&bsl) else {
        return Ok(None);
    };
    let credentials = match fetch::credentials(&ctx.client, namespace, &location).await {
        Ok(c) => c,
        Err(FetchError::CredentialMissing { .. } | FetchError::CredentialForbidden { .. }) => {
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    Ok(Some(ObjectStore::connect(&location, &credentials).await))
}

/// Deletes the archive; one already gone, or a BSL that no longer exists, is fine.
async fn cleanup(bundle: &DebugBundle, ctx: &Context) -> Result<Action, Error> {
    let Some(archive) = bundle.status.as_ref().and_then(|s| s.archive.clone()) else {
        return Ok(Action::await_change());
    };
    let ns = bundle.namespace().unwrap_or_default();
    let Some(store) = archive_store(ctx, &ns, &archive.storage_location).await? else {
        tracing::info!(bundle = %bundle.name_any(), "storage location gone; nothing to delete");
        return Ok(Action::await_change());
    };
    match store.delete(&archive.key).await {
        Ok(()) => Ok(Action::await_change()),
        Err(e) if e.is_transient() => Err(e.into()),
        Err(e) => {
            // A permanent refusal must not keep the DebugBundle from being deleted forever.
            tracing::warn!(bundle = %bundle.name_any(), error = %e, "archive could not be deleted");
            Ok(Action::await_change())
        }
    }
}

/// Runs the DebugBundle controller, and the automatic-bundle watches the policy enables,
/// until SIGTERM/SIGINT.
pub async fn run(
    client: Client,
    namespace: Option<String>,
    config: Config,
    api_requests: Arc<AtomicU64>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let api: Api<DebugBundle> = match &namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let ctx = Arc::new(Context::new(
        client.clone(),
        config,
        api_requests,
        metrics,
        shutdown.clone(),
    ));
    // Reconciles are not limited (0): collection is, by `collect_slots`, so a queued bundle
    // shows Pending and retention or URL refresh never waits behind a long collection.
    let bundles = Controller::new(api, watcher::Config::default().any_semantic())
        .with_config(controller::Config::default().concurrency(0))
        .graceful_shutdown_on(shutdown.cancelled_owned())
        .run(reconcile, error_policy, ctx.clone())
        .for_each(|res| async move {
            match res {
                Ok((obj, _)) => tracing::debug!(bundle = %obj.name, "reconciled"),
                Err(e) => tracing::debug!(error = %e, "reconcile error"),
            }
        });
    let mut tasks = vec![bundles.boxed()];
    for kind in ["Restore", "Backup"] {
        if !ctx.config.auto.phases(kind).is_empty() {
            let watch = auto_bundles::run(kind, client.clone(), namespace.clone(), ctx.clone());
            tasks.push(watch.boxed());
        }
    }
    futures::future::join_all(tasks).await;
}

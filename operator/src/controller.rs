//! The DebugBundle controller: `reconcile` only runs the finalizer, whose Apply branch is the
//! pipeline fetch -> plan -> collect -> upload -> status, and whose Cleanup branch deletes the
//! archive. Permanent failures end in status Failed and wait for a change; transient ones are
//! retried with backoff up to a limit.

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use futures::StreamExt;
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
use velero_debug_crd::{ArchiveStatus, DebugBundle, DebugBundleStatus, FINALIZER, reasons};

use crate::{
    archive::ArchiveWriter,
    collect::{self, Collector, Limits},
    fetch::{self, FetchError},
    plan::{self, PlanError},
    redact::Redactor,
    status,
    storage::{ObjectStore, StorageError},
    summary::{FORMAT_VERSION, Manifest, ManifestTarget},
};

pub const OPERATOR_VERSION: &str = env!("CARGO_PKG_VERSION");
const MANAGER: &str = "velero-debug-operator";
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
}

impl Default for Config {
    fn default() -> Self {
        Self {
            spool_dir: std::env::temp_dir(),
            concurrency: 4,
            target_wait: Duration::from_secs(120),
            max_attempts: 5,
            limits: Limits::default(),
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
}

impl Context {
    pub fn new(client: Client, config: Config, api_requests: Arc<AtomicU64>) -> Self {
        let reporter = Reporter {
            controller: MANAGER.into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            api_requests,
            config,
            redactor: Redactor::new(),
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
pub fn error_policy(bundle: Arc<DebugBundle>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(bundle = %bundle.name_any(), %error, "reconcile failed; retrying");
    Action::requeue(Duration::from_secs(10))
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
        _ => reasons::UPLOAD_FAILED,
    }
}

async fn apply(bundle: &DebugBundle, ctx: &Context) -> Result<Action, Error> {
    // Each status builds on the last one written, not on the object as the watch delivered it.
    let mut bundle = bundle.clone();
    let st = bundle.status.clone().unwrap_or_default();
    let generation = bundle.metadata.generation;
    if st.phase.is_some_and(|p| p.is_finished()) && st.observed_generation == generation {
        return Ok(Action::await_change());
    }
    let ns = bundle.namespace().unwrap_or_default();

    // fetch the target
    let target = match plan::target(&bundle.spec) {
        Ok(t) => t,
        Err(e) => return fail(ctx, &bundle, "", reasons::INVALID_SPEC, e.to_string()).await,
    };
    let shown = target.display();
    let Some(objects) = fetch::target(&ctx.client, &ns, &target).await? else {
        let age = bundle
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| Timestamp::now().duration_since(t.0).unsigned_abs())
            .unwrap_or_default();
        if age < ctx.config.target_wait {
            patch_status(
                ctx,
                &bundle,
                status::waiting_for_target(&bundle, &shown, Timestamp::now()),
            )
            .await?;
            return Ok(Action::requeue(Duration::from_secs(5)));
        }
        let message = format!(
            "{} {} does not exist in namespace {ns} (waited {}s)",
            target.kind(),
            target.name(),
            ctx.config.target_wait.as_secs()
        );
        return fail(ctx, &bundle, &shown, reasons::TARGET_NOT_FOUND, message).await;
    };

    // plan
    let collect_plan = match plan::collect_plan(&bundle.spec, &objects.target) {
        Ok(p) => p,
        Err(e) => return fail(ctx, &bundle, &shown, reasons::INVALID_SPEC, e.to_string()).await,
    };
    let name_with = |default_bsl: Option<&str>| {
        plan::storage_location_name(
            &bundle.spec,
            &target,
            &objects.target,
            objects.backup.as_ref(),
            default_bsl,
        )
    };
    // The default BSL is listed only when neither the spec nor the backup names one.
    let named = match name_with(None) {
        Err(PlanError::NoStorageLocation { .. }) => {
            let default_bsl =
                fetch::default_storage_location(&ctx.client, &ns, &ctx.config.limits).await?;
            name_with(default_bsl.as_deref())
        }
        other => other,
    };
    let bsl_name = match named {
        Ok(n) => n,
        Err(e) => {
            return fail(
                ctx,
                &bundle,
                &shown,
                reasons::STORAGE_LOCATION_NOT_FOUND,
                e.to_string(),
            )
            .await;
        }
    };
    let Some(bsl) = fetch::storage_location(&ctx.client, &ns, &bsl_name).await? else {
        let message = format!("BackupStorageLocation {bsl_name} does not exist in namespace {ns}");
        return fail(
            ctx,
            &bundle,
            &shown,
            reasons::STORAGE_LOCATION_NOT_FOUND,
            message,
        )
        .await;
    };
    let location = match plan::storage_location(&bsl).and_then(plan::writable) {
        Ok(l) => l,
        Err(e @ PlanError::ReadOnly(_)) => {
            return fail(
                ctx,
                &bundle,
                &shown,
                reasons::STORAGE_LOCATION_READ_ONLY,
                e.to_string(),
            )
            .await;
        }
        Err(e) => {
            return fail(
                ctx,
                &bundle,
                &shown,
                reasons::UNSUPPORTED_STORAGE_LOCATION,
                e.to_string(),
            )
            .await;
        }
    };
    let credentials = match fetch::credentials(&ctx.client, &ns, &location).await {
        Ok(c) => c,
        Err(e @ FetchError::CredentialMissing { .. }) => {
            return fail(
                ctx,
                &bundle,
                &shown,
                reasons::CREDENTIALS_INVALID,
                e.to_string(),
            )
            .await;
        }
        Err(e) => return Err(e.into()),
    };
    let store = ObjectStore::connect(&location, &credentials).await;
    let key = plan::archive_key(
        &location,
        &ns,
        &bundle.name_any(),
        &bundle.uid().unwrap_or_default(),
    );

    // Preflight: a refused credential or an unreachable store is known before collecting.
    if let Err(e) = store.exists(&key).await {
        let reason = reason_of(&e);
        return if e.is_transient() {
            retry_or_fail(ctx, &bundle, &shown, reason, e.into()).await
        } else {
            fail(ctx, &bundle, &shown, reason, e.to_string()).await
        };
    }

    // collect
    let total = collect::STEPS.len() as i32;
    bundle.status = Some(
        patch_status(
            ctx,
            &bundle,
            status::collecting(&bundle, &shown, total, Timestamp::now()),
        )
        .await?,
    );
    publish(
        ctx,
        &bundle,
        EventType::Normal,
        "Started",
        format!("collecting for {shown} into {bsl_name}"),
    )
    .await;
    let spool = tempfile::Builder::new()
        .prefix("velero-debug-")
        .tempdir_in(&ctx.config.spool_dir)?;
    let archive_path = spool.path().join("bundle.tar.gz");
    let mtime = Timestamp::now().as_second().max(0) as u64;
    let archive = ArchiveWriter::create(&archive_path, &bundle.name_any(), mtime)?;
    let mut collector = Collector::new(
        ctx.client.clone(),
        &ns,
        &collect_plan,
        &ctx.config.limits,
        &ctx.redactor,
        &store,
        &location,
        archive,
        spool.path().to_path_buf(),
    );
    // Progress goes to status while collection runs, from a task of its own, so a slow API
    // server never slows collection down.
    let (progress_tx, mut progress_rx) = tokio::sync::watch::channel(0usize);
    let progress_api: Api<DebugBundle> = Api::namespaced(ctx.client.clone(), &ns);
    let name = bundle.name_any();
    let progress_task = tokio::spawn(async move {
        while progress_rx.changed().await.is_ok() {
            let done = *progress_rx.borrow_and_update();
            let patch = serde_json::json!({
                "apiVersion": "velerodebug.io/v1alpha1", "kind": "DebugBundle",
                "status": {"progress": {"itemsDone": done, "itemsTotal": total}}
            });
            let params = PatchParams::apply(PROGRESS_MANAGER).force();
            let _ = progress_api
                .patch_status(&name, &params, &Patch::Apply(&patch))
                .await;
        }
    });
    let requests_before = ctx.api_requests.load(Ordering::Relaxed);
    let collected = collect::run(&mut collector, &objects, |n| {
        let _ = progress_tx.send(n);
    })
    .await;
    drop(progress_tx);
    let _ = progress_task.await;
    if let Err(e) = collected {
        return fail(ctx, &bundle, &shown, reasons::ARCHIVE_FAILED, e.to_string()).await;
    }
    // Approximate when bundles run at once: the counter is per process.
    let api_requests = ctx.api_requests.load(Ordering::Relaxed) - requests_before;
    let finished = match finish_archive(collector, api_requests) {
        Ok(f) => f,
        Err(e) => return fail(ctx, &bundle, &shown, reasons::ARCHIVE_FAILED, e.to_string()).await,
    };

    // upload
    bundle.status = Some(
        patch_status(
            ctx,
            &bundle,
            status::uploading(&bundle, &shown, &key, Timestamp::now()),
        )
        .await?,
    );
    if let Err(e) = store.upload_file(&key, &finished.archive.path).await {
        let reason = reason_of(&e);
        return if e.is_transient() {
            retry_or_fail(ctx, &bundle, &shown, reasons::UPLOAD_FAILED, e.into()).await
        } else {
            fail(ctx, &bundle, &shown, reason, e.to_string()).await
        };
    }
    let url = match store.presign_get(&key, collect_plan.url_ttl).await {
        Ok(u) => u,
        Err(e) => return fail(ctx, &bundle, &shown, reasons::UPLOAD_FAILED, e.to_string()).await,
    };
    let now = Timestamp::now();
    let expires = now + jiff::SignedDuration::try_from(collect_plan.url_ttl).unwrap_or_default();
    let archive_status = ArchiveStatus {
        storage_location: location.name.clone(),
        bucket: location.bucket.clone(),
        key: key.clone(),
        size_bytes: finished.archive.size as i64,
        sha256: finished.archive.sha256.clone(),
        file_count: finished.archive.file_count,
    };
    let done = status::Completed {
        archive: archive_status,
        url,
        url_expires_at: expires,
        warnings: &finished.warnings,
    };
    patch_status(ctx, &bundle, status::completed(&bundle, &shown, done, now)).await?;
    publish(
        ctx,
        &bundle,
        EventType::Normal,
        "Completed",
        format!(
            "bundle of {} files ({} bytes) uploaded to {bsl_name}; {} warning(s)",
            finished.archive.file_count,
            finished.archive.size,
            finished.warnings.len()
        ),
    )
    .await;
    Ok(Action::await_change())
}

struct FinishedBundle {
    archive: crate::archive::FinishedArchive,
    warnings: Vec<String>,
}

/// Adds manifest.json and summary.md, then closes the archive.
fn finish_archive(mut c: Collector<'_>, api_requests: u64) -> std::io::Result<FinishedBundle> {
    let summary_md = c.summary.render(&c.warnings);
    c.archive
        .append_bytes("summary.md", summary_md.as_bytes())?;
    let files = c.archive.files().to_vec();
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        operator_version: OPERATOR_VERSION,
        target: ManifestTarget {
            kind: &c.summary.kind,
            name: &c.summary.name,
            uid: &c.summary.uid,
            phase: &c.summary.phase,
        },
        created_at: Timestamp::now().to_string(),
        files: &files,
        warnings: &c.warnings,
        timings_ms: &c.timings,
        api_requests,
    };
    let json = serde_json::to_vec_pretty(&manifest).map_err(std::io::Error::other)?;
    c.archive.append_bytes("manifest.json", &json)?;
    let warnings = std::mem::take(&mut c.warnings);
    let archive = tokio::task::block_in_place(|| c.archive.finish())?;
    Ok(FinishedBundle { archive, warnings })
}

/// Deletes the archive; one already gone, or a BSL that no longer exists, is fine.
async fn cleanup(bundle: &DebugBundle, ctx: &Context) -> Result<Action, Error> {
    let Some(archive) = bundle.status.as_ref().and_then(|s| s.archive.clone()) else {
        return Ok(Action::await_change());
    };
    let ns = bundle.namespace().unwrap_or_default();
    let Some(bsl) = fetch::storage_location(&ctx.client, &ns, &archive.storage_location).await?
    else {
        tracing::info!(bundle = %bundle.name_any(), "storage location gone; nothing to delete");
        return Ok(Action::await_change());
    };
    let Ok(location) = plan::storage_location(&bsl) else {
        return Ok(Action::await_change());
    };
    let credentials = match fetch::credentials(&ctx.client, &ns, &location).await {
        Ok(c) => c,
        Err(FetchError::CredentialMissing { .. }) => return Ok(Action::await_change()),
        Err(e) => return Err(e.into()),
    };
    let store = ObjectStore::connect(&location, &credentials).await;
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

/// Runs the controller until SIGTERM/SIGINT.
pub async fn run(
    client: Client,
    namespace: Option<String>,
    config: Config,
    api_requests: Arc<AtomicU64>,
) {
    let api: Api<DebugBundle> = match &namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let concurrency = config.concurrency;
    let ctx = Arc::new(Context::new(client, config, api_requests));
    Controller::new(api, watcher::Config::default().any_semantic())
        .with_config(controller::Config::default().concurrency(concurrency))
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|res| async move {
            match res {
                Ok((obj, _)) => tracing::debug!(bundle = %obj.name, "reconciled"),
                Err(e) => tracing::debug!(error = %e, "reconcile error"),
            }
        })
        .await;
}

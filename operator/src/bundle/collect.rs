//! Step 5, collect: the controller's side of collection, which happens in its own room
//! (`crate::collect`). Here the bundle is marked Collecting (status and a Started event), its
//! spool folder and archive are made, collection's progress goes to status, and collection
//! stops when this process stops leading.

use std::collections::BTreeMap;

use jiff::Timestamp;
use kube::{ResourceExt, runtime::events::EventType};
use tempfile::TempDir;

use super::{
    dereference::Dereferenced,
    plan::BundlePlan,
    progress::Reporter,
    run::{Run, WriteError},
};
use crate::{
    collect::{self as collection, CollectError, Collected, STEPS, Sink, Sources, WorkloadEnv},
    request_tally,
    storage::ObjectStore,
    tar_gz::TarGzWriter,
};

/// Why the collect step stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CollectStepError {
    #[error(transparent)]
    Collection(#[from] CollectError),
    #[error("writing status: {0}")]
    Status(#[from] WriteError),
    #[error("stopped: this process no longer leads (SIGTERM, or the Lease lost)")]
    Cancelled,
}

/// What the collect step hands to the archive step: what was collected, and the spool folder
/// it is in (removed when this is dropped).
pub(crate) struct Spooled {
    pub collected: Collected,
    /// API requests made while collecting, by kind (approximate when bundles run at once:
    /// the tally is per process).
    pub api_requests: BTreeMap<String, u64>,
    pub spool: TempDir,
}

/// Marks the bundle Collecting and collects what `found` and `plan` name into a new archive
/// in a spool folder of its own, showing collection's progress in status as it goes.
pub(super) async fn run(
    run: &mut Run<'_>,
    found: &Dereferenced,
    plan: &BundlePlan,
    store: &ObjectStore,
) -> Result<Spooled, CollectStepError> {
    let ctx = run.ctx;
    let total = STEPS.len() as i32;
    run.write(|t| t.collecting(total, STEPS[0])).await?;
    let note = format!(
        "collecting for {} into {}",
        run.target(),
        found.location.name
    );
    run.event(EventType::Normal, "Started", &note).await;
    let (spool, archive) = create_archive(run).map_err(CollectError::Archive)?;
    let sources = Sources {
        client: ctx.client.clone(),
        log_client: ctx.log_client.clone(),
        namespace: run.bundle.namespace().unwrap_or_default(),
        plan: &plan.collect,
        limits: &ctx.config.limits,
        store,
        location: &found.location,
        recorder: &ctx.recorder,
    };
    let sink = Sink::new(
        archive,
        spool.path().to_path_buf(),
        ctx.config.limits.max_bundle_bytes,
        ctx.redactor.clone(),
        workload_env(&ctx.config, run.bundle.namespace().unwrap_or_default()),
        ctx.config.compression,
    );
    let progress = start_progress(run, total);
    let requests_before = ctx.api_requests.snapshot();
    let report = |done: usize| progress.report(done as u64);
    let done = tokio::select! {
        r = collection::run(sources, sink, &found.objects, &report) => Ok(r?),
        // Shutting down: the bundle stays Collecting and the next leader collects it again.
        _ = ctx.shutdown.cancelled() => Err(CollectStepError::Cancelled),
    };
    progress.stop().await;
    Ok(Spooled {
        collected: done?,
        api_requests: request_tally::since(&requests_before, &ctx.api_requests.snapshot()),
        spool,
    })
}

/// Literal env values of pods outside Velero's namespace (the bundle's) are masked unless the
/// operator is told to keep them.
fn workload_env(config: &crate::config::Config, velero_namespace: String) -> WorkloadEnv {
    if config.keep_workload_env_values {
        WorkloadEnv::Keep
    } else {
        WorkloadEnv::MaskOutside { velero_namespace }
    }
}

/// The bundle's spool folder, and the archive started in it.
fn create_archive(run: &Run<'_>) -> std::io::Result<(TempDir, TarGzWriter)> {
    let ctx = run.ctx;
    let spool = tempfile::Builder::new()
        .prefix("velero-debug-")
        .tempdir_in(&ctx.config.spool_dir)?;
    let mtime = Timestamp::now().as_second().max(0) as u64;
    // The bundle's name is the archive's root folder (sanitized by the writer).
    let archive = TarGzWriter::create(
        &spool.path().join("bundle.tar.gz"),
        &run.bundle.name_any(),
        mtime,
        ctx.config.compression,
    )?;
    Ok((spool, archive))
}

/// Progress goes to status from a task of its own, so a slow API server never slows
/// collection down.
fn start_progress(run: &Run<'_>, total: i32) -> Reporter {
    Reporter::start(
        run.api(),
        run.bundle.name_any(),
        run.ctx.shutdown.clone(),
        move |done| {
            // The step under way is the one after those done (the last, summary, ends collection).
            let step = STEPS[(done as usize).min(STEPS.len() - 1)];
            serde_json::json!({"itemsDone": done, "itemsTotal": total, "step": step})
        },
    )
}

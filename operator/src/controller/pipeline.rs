//! The collection pipeline of a DebugBundle that has not finished: fetch the target, plan,
//! check the object store, wait for a collection slot, collect, archive, upload, sign the URL.

use std::{sync::atomic::Ordering, time::Duration};

use jiff::Timestamp;
use kube::{
    Api, ResourceExt,
    api::{Patch, PatchParams},
    runtime::{controller::Action, events::EventType},
};
use velero_debug_crd::{ArchiveStatus, DebugBundle, reasons};

use super::{
    Context, Error, OPERATOR_VERSION, PROGRESS_MANAGER, fail, patch_status, publish, reason_of,
    retry_or_fail,
};
use crate::{
    archive::ArchiveWriter,
    collect::{self, Collector},
    fetch::{self, FetchError},
    metrics::InFlight,
    plan::{self, PlanError},
    status,
    storage::{ObjectStore, StorageError},
    summary::{FORMAT_VERSION, Manifest, ManifestTarget},
};

pub(super) async fn collect(bundle: &DebugBundle, ctx: &Context) -> Result<Action, Error> {
    // A failure that may pass is retried after its backoff, whatever woke this reconcile.
    let next = bundle
        .status
        .as_ref()
        .and_then(|s| s.next_attempt_at.as_ref());
    if let Some(wait) = next.map(|t| t.0.duration_since(Timestamp::now()))
        && wait > jiff::SignedDuration::ZERO
    {
        return Ok(Action::requeue(wait.unsigned_abs()));
    }
    // Each status builds on the last one written, not on the object as the watch delivered it.
    let mut bundle = bundle.clone();
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
        Err(
            e @ (FetchError::CredentialMissing { .. } | FetchError::CredentialForbidden { .. }),
        ) => {
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

    // Wait for a collection slot; the bundle shows Pending/Queued meanwhile. The slot is held
    // until the final status is written, so at most `concurrency` bundles ever show Collecting
    // or Uploading at once.
    let slot = match ctx.collect_slots.clone().try_acquire_owned() {
        Ok(slot) => slot,
        Err(_) => {
            bundle.status = Some(
                patch_status(
                    ctx,
                    &bundle,
                    status::queued(&bundle, &shown, ctx.config.concurrency, Timestamp::now()),
                )
                .await?,
            );
            let slot = ctx
                .collect_slots
                .clone()
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            // Deleted while it waited: the finalizer's cleanup runs next, nothing to collect.
            let api: Api<DebugBundle> = Api::namespaced(ctx.client.clone(), &ns);
            match api.get_opt(&bundle.name_any()).await? {
                Some(b) if b.metadata.deletion_timestamp.is_none() => {}
                _ => return Ok(Action::await_change()),
            }
            slot
        }
    };

    let _in_flight = InFlight::new(&ctx.metrics.in_flight);

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
    let archive = ArchiveWriter::create(&archive_path, &bundle.name_any(), mtime)?
        .with_budget(ctx.config.limits.max_bundle_bytes);
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
    let collected = tokio::select! {
        r = collect::run(&mut collector, &objects, |n| {
            let _ = progress_tx.send(n);
        }) => Some(r),
        // Shutting down: the bundle stays Collecting and the next leader collects it again.
        _ = ctx.shutdown.cancelled() => None,
    };
    drop(progress_tx);
    let _ = progress_task.await;
    let Some(collected) = collected else {
        return Err(Error::ShuttingDown);
    };
    if let Err(e) = collected {
        return fail(ctx, &bundle, &shown, reasons::ARCHIVE_FAILED, e.to_string()).await;
    }
    // Approximate when bundles run at once: the counter is per process.
    let api_requests = ctx.api_requests.load(Ordering::Relaxed) - requests_before;
    let finished = match finish_archive(collector, api_requests) {
        Ok(f) => f,
        Err(e) => return fail(ctx, &bundle, &shown, reasons::ARCHIVE_FAILED, e.to_string()).await,
    };

    // upload: first abort the upload of an attempt that was cut short (a killed process).
    if let Some(stale) = bundle.status.as_ref().and_then(|s| s.upload_id.clone()) {
        tracing::info!(bundle = %bundle.name_any(), upload_id = %stale, "aborting the upload of an earlier attempt");
        store.abort_upload(&key, &stale).await;
    }
    let upload_id = match store.start_upload(&key).await {
        Ok(id) => id,
        Err(e) if e.is_transient() => {
            return retry_or_fail(ctx, &bundle, &shown, reasons::UPLOAD_FAILED, e.into()).await;
        }
        Err(e) => return fail(ctx, &bundle, &shown, reason_of(&e), e.to_string()).await,
    };
    bundle.status = Some(
        patch_status(
            ctx,
            &bundle,
            status::uploading(&bundle, &shown, &key, &upload_id, Timestamp::now()),
        )
        .await?,
    );
    let sent = store
        .finish_upload(
            &key,
            &upload_id,
            &finished.archive.path,
            ctx.config.upload_bytes_per_second,
            &ctx.shutdown,
        )
        .await;
    if let Err(e) = sent {
        if matches!(e, StorageError::Cancelled) {
            return Err(Error::ShuttingDown);
        }
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
    drop(slot);
    ctx.metrics.finished("completed");
    ctx.metrics.size.observe(finished.archive.size as f64);
    if let Some(started) = bundle.status.as_ref().and_then(|s| s.start_time.as_ref()) {
        let took = now.duration_since(started.0).as_secs_f64();
        ctx.metrics.duration.observe(took.max(0.0));
    }
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
    // The status write triggers the next reconcile, where the lifecycle (retention, URL
    // expiry) takes over.
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

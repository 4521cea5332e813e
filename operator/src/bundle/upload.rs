//! Step 7, upload: the archive goes to the store as a multipart upload whose id is in status
//! before any part is sent, so an upload cut short by a killed process is aborted by whoever
//! collects the bundle next (and one killed before its id was written, by listing the key's
//! open uploads).

use kube::ResourceExt;

use super::{
    archive::FinishedBundle,
    progress::Reporter,
    run::{Run, WriteError},
    status::UPLOAD_STEP,
};
use crate::{
    context::NotLeading,
    install_record,
    storage::{NewArchive, ObjectStore, StorageError},
};

#[derive(Debug, thiserror::Error)]
pub(crate) enum UploadError {
    #[error(transparent)]
    Store(#[from] StorageError),
    #[error("writing status: {0}")]
    Status(#[from] WriteError),
    #[error(transparent)]
    NotLeading(#[from] NotLeading),
}

pub(crate) async fn send(
    run: &mut Run<'_>,
    store: &ObjectStore,
    key: &str,
    finished: &FinishedBundle,
) -> Result<(), UploadError> {
    // A replica whose term is over must not abort what the next leader uploads (the id in
    // status may be the new leader's by now), nor start an upload.
    run.ctx.still_leading()?;
    if let Some(stale) = run.status().upload_id.clone() {
        tracing::info!(bundle = %run.bundle.name_any(), upload_id = %stale, "aborting the upload of an earlier attempt");
        store.abort_upload(key, &stale).await;
    }
    abort_unrecorded_uploads(run, store, key).await;
    let archive = NewArchive {
        key,
        file: &finished.archive.path,
        mark: (
            crate::storage::location::INSTALL_MARK,
            run.ctx.install_mark.as_str(),
        ),
    };
    let upload_id = store.start_upload(&archive).await?;
    let recorded = record_upload(run, store, key, &upload_id).await;
    let size = finished.archive.size;
    run.write(|t| t.uploading(key, &upload_id, size)).await?;
    let ctx = run.ctx;
    let steps = run.status().progress.clone().unwrap_or_default();
    let progress = Reporter::start(
        run.api(),
        run.bundle.name_any(),
        ctx.shutdown.clone(),
        move |sent| {
            serde_json::json!({
                "itemsDone": steps.items_done, "itemsTotal": steps.items_total,
                "step": UPLOAD_STEP, "bytesUploaded": sent, "bytesTotal": size,
            })
        },
    );
    let sent = store
        .finish_upload(
            &archive,
            &upload_id,
            ctx.config.upload_bytes_per_second,
            &ctx.shutdown,
            &|bytes| progress.report(bytes),
        )
        .await;
    progress.stop().await;
    // Finished or aborted either way (the port aborts what fails).
    if let (Some(record), Some(entry)) = (&ctx.install_record, recorded)
        && let Err(e) = record.upload_ended(&entry).await
    {
        tracing::info!(bundle = %run.bundle.name_any(), error = %e, "the upload's record is left for its retention");
    }
    sent?;
    Ok(())
}

/// Records the upload begun in the install record, so the garbage collector may abort it
/// should this process die with it open and the bundle go (orphans.rs). Unrecorded, it is
/// left to the bundle's next attempt, which aborts it by its id in status.
async fn record_upload(
    run: &Run<'_>,
    store: &ObjectStore,
    key: &str,
    upload_id: &str,
) -> Option<String> {
    let record = run.ctx.install_record.as_ref()?;
    let entry = install_record::upload_entry(&store.location().name, key, upload_id);
    match record.upload_begun(&entry).await {
        Ok(()) => Some(entry),
        Err(e) => {
            tracing::warn!(bundle = %run.bundle.name_any(), error = %e, "the upload could not be recorded; the garbage collector will not abort it");
            None
        }
    }
}

/// A process killed between starting an upload and writing its id to status leaves an upload
/// no status names; the key is this bundle's alone, so any upload open on it is an earlier
/// attempt's. Where the store lists uploads (S3, MinIO; not every S3-compatible server).
async fn abort_unrecorded_uploads(run: &Run<'_>, store: &ObjectStore, key: &str) {
    match store.list_uploads(key, 100).await {
        Ok(Some(open)) => {
            for upload in open.iter().filter(|u| u.key == key) {
                tracing::info!(bundle = %run.bundle.name_any(), upload_id = %upload.id, "aborting an upload an earlier attempt left unrecorded");
                store.abort_upload(key, &upload.id).await;
            }
        }
        Ok(None) => {}
        Err(e) => {
            tracing::debug!(bundle = %run.bundle.name_any(), error = %e, "open uploads not listed")
        }
    }
}

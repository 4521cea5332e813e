//! Step 7, upload: the archive goes to the store as a multipart upload whose id is in status
//! before any part is sent, so an upload cut short by a killed process is aborted by whoever
//! collects the bundle next.

use kube::ResourceExt;

use super::{
    archive::FinishedBundle,
    progress::Reporter,
    run::{Run, WriteError},
    status::UPLOAD_STEP,
};
use crate::{
    context::NotLeading,
    storage::{ObjectStore, StorageError},
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
    let mark = (crate::orphans::CLUSTER_MARK, run.ctx.cluster_mark.as_str());
    let upload_id = store.start_upload(key, mark).await?;
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
            key,
            &upload_id,
            &finished.archive.path,
            ctx.config.upload_bytes_per_second,
            &ctx.shutdown,
            &|bytes| progress.report(bytes),
        )
        .await;
    progress.stop().await;
    sent?;
    Ok(())
}

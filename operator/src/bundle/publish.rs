//! Step 8, publish: signs the download URL and records the finished bundle in status, its
//! metrics and an event.

use jiff::Timestamp;
use kube::runtime::{controller::Action, events::EventType};
use velero_debug_crd::ArchiveStatus;

use super::{
    archive::FinishedBundle, diagnosis, plan::BundlePlan, run::Run, status, upload::UploadError,
};
use crate::storage::{ObjectStore, StorageLocation};

pub(crate) async fn completed(
    run: &mut Run<'_>,
    store: &ObjectStore,
    location: &StorageLocation,
    plan: &BundlePlan,
    finished: FinishedBundle,
    sha256: String,
) -> Result<Action, UploadError> {
    let url = match store.presign_get(&plan.key, plan.url_ttl).await {
        Ok(url) => url,
        Err(e) => {
            // An archive uploaded is referenced by its bundle's status or deleted: no status
            // will name this one (the garbage collector would take it otherwise, later). Not
            // once the term is over: the next leader may have uploaded to the same key.
            run.ctx.still_leading()?;
            if let Err(gone) = store.delete(&plan.key).await {
                tracing::warn!(key = %plan.key, error = %gone, "the archive of a bundle whose URL could not be signed could not be deleted; the garbage collector will");
            }
            return Err(e.into());
        }
    };
    let now = Timestamp::now();
    let archive = &finished.archive;
    let done = status::Completed {
        archive: ArchiveStatus {
            storage_location: location.name.clone(),
            bucket: location.bucket.clone(),
            key: plan.key.clone(),
            size_bytes: archive.size as i64,
            sha256,
            file_count: archive.file_count,
        },
        url,
        warnings: &finished.warnings,
        findings: diagnosis::for_status(&finished.findings),
    };
    run.write(|t| t.completed(done)).await?;
    let metrics = &run.ctx.metrics;
    let took = (run.status().start_time.as_ref())
        .map(|started| now.duration_since(started.0).as_secs_f64());
    metrics.finished("completed", velero_debug_crd::reasons::COMPLETED, took);
    metrics.found(diagnosis::metric_labels(&finished.findings));
    metrics.size.observe(archive.size as f64);
    let note = format!(
        "bundle of {} files ({} bytes) uploaded to {}; {} warning(s)",
        archive.file_count,
        archive.size,
        location.name,
        finished.warnings.len()
    );
    run.event(EventType::Normal, "Completed", &note).await;
    run.announce_probable_cause().await;
    // The status write triggers the next reconcile, where the lifecycle (retention, URL
    // expiry) takes over.
    Ok(Action::await_change())
}

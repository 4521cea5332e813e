//! The finalizer's cleanup: deleting a DebugBundle deletes its archive first. An archive
//! already gone, or a storage location that no longer exists, is fine.

use kube::{ResourceExt, runtime::controller::Action};
use velero_debug_crd::DebugBundle;

use super::{dereference, error::Error};
use crate::context::Context;

pub(crate) async fn delete_archive(bundle: &DebugBundle, ctx: &Context) -> Result<Action, Error> {
    let Some(archive) = bundle.status.as_ref().and_then(|s| s.archive.as_ref()) else {
        return Ok(Action::await_change());
    };
    let ns = bundle.namespace().unwrap_or_default();
    let Some(store) =
        dereference::archive_store(&ctx.client, &ns, &archive.storage_location).await?
    else {
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

//! The finalizer's cleanup: deleting a DebugBundle deletes its archive first. An archive
//! already gone, or a storage location that no longer exists, is fine.
//!
//! Status is not trusted for what is deleted: whoever may write a bundle's status could point
//! `status.archive.key` at any object of the bucket. The key deleted is derived from the
//! bundle's namespace, name and uid under our `plugins/` folder (storage/location.rs); status
//! only says which storage location holds it, and that must be an object name.

use kube::{ResourceExt, runtime::controller::Action};

use super::{dereference, error::Error, watched::WatchedBundle};
use crate::{context::Context, kubernetes};

pub(crate) async fn delete_archive(bundle: &WatchedBundle, ctx: &Context) -> Result<Action, Error> {
    let name = bundle.name_any();
    let Some(recorded) = recorded_archive(bundle) else {
        return Ok(Action::await_change());
    };
    if !kubernetes::is_object_name(&recorded.storage_location) {
        tracing::warn!(bundle = %name, location = ?recorded.storage_location, "status.archive.storageLocation is not an object name; nothing deleted");
        return Ok(Action::await_change());
    }
    let ns = bundle.namespace().unwrap_or_default();
    let Some(store) =
        dereference::archive_store(&ctx.client, &ns, &recorded.storage_location).await?
    else {
        tracing::info!(bundle = %name, "storage location gone; nothing to delete");
        return Ok(Action::await_change());
    };
    let key = store
        .location()
        .archive_key(&ns, &name, &bundle.uid().unwrap_or_default());
    if recorded.key.as_deref() != Some(key.as_str()) {
        tracing::warn!(bundle = %name, recorded = ?recorded.key, deleted = %key, "status.archive.key is not this bundle's archive key; only the bundle's own key is deleted");
    }
    match store.delete(&key).await {
        Ok(()) => Ok(Action::await_change()),
        Err(e) if e.is_transient() => Err(e.into()),
        Err(e) => {
            // A permanent refusal must not keep the DebugBundle from being deleted forever.
            tracing::warn!(bundle = %name, error = %e, "archive could not be deleted");
            Ok(Action::await_change())
        }
    }
}

/// What status says of the archive, read from a bundle our types could not read too.
struct RecordedArchive {
    storage_location: String,
    key: Option<String>,
}

fn recorded_archive(bundle: &WatchedBundle) -> Option<RecordedArchive> {
    match bundle {
        WatchedBundle::Readable(b) => {
            let archive = b.status.as_ref()?.archive.as_ref()?;
            Some(RecordedArchive {
                storage_location: archive.storage_location.clone(),
                key: Some(archive.key.clone()),
            })
        }
        WatchedBundle::Unreadable(u) => {
            let archive = &u.raw["status"]["archive"];
            Some(RecordedArchive {
                storage_location: archive["storageLocation"].as_str()?.to_string(),
                key: archive["key"].as_str().map(str::to_string),
            })
        }
    }
}

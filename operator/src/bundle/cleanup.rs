//! The finalizer's cleanup: deleting a DebugBundle deletes its archive first. An archive
//! already gone, or a storage location that no longer exists, is fine.
//!
//! Deletion always ends: when the archive cannot be deleted (its credential is gone or
//! forbidden, the store refuses, or stays unreachable past the limit) the finalizer is
//! released with a Warning event `ArchiveLeft` naming the object left, which the garbage
//! collector (orphans.rs) takes once it can, or a person does. Retries back off (see
//! [`retry_after`]); the limit is `Config::archive_delete_limit` (ARCHIVE_DELETE_LIMIT).
//!
//! Status is not trusted for what is deleted: whoever may write a bundle's status could point
//! `status.archive.key` at any object of the bucket. The key deleted is derived from the
//! bundle's namespace, name and uid under our `plugins/` folder (storage/location.rs); status
//! only says which storage location holds it, and that must be an object name.

use std::time::Duration;

use kube::{
    Resource, ResourceExt,
    runtime::{controller::Action, events::EventType},
};

use super::{dereference, error::Error, watched::WatchedBundle};
use crate::{context::Context, event_publisher::Said, kubernetes};

/// When a cleanup that failed for a reason that may pass is tried again: a quarter of the time
/// the deletion has waited, between 5 s and 60 s.
pub(crate) fn retry_after(waited: Duration) -> Duration {
    (waited / 4).clamp(Duration::from_secs(5), Duration::from_secs(60))
}

/// How long the bundle has been waiting to be deleted.
pub(crate) fn deletion_waited(bundle: &WatchedBundle) -> Duration {
    bundle
        .meta()
        .deletion_timestamp
        .as_ref()
        .map(|t| jiff::Timestamp::now().duration_since(t.0))
        .and_then(|d| Duration::try_from(d).ok())
        .unwrap_or_default()
}

/// The finalizer goes without the archive: said in an event and the log.
async fn leave(bundle: &WatchedBundle, ctx: &Context, what: &str, why: &str) -> Action {
    let note = format!(
        "{what} was not deleted with the bundle: {why}; the garbage collector deletes it once the store can be reached with the location's credential"
    );
    tracing::warn!(bundle = %bundle.name_any(), %note, "archive left");
    let said = Said {
        type_: EventType::Warning,
        reason: "ArchiveLeft",
        action: "Delete",
        note: &note,
    };
    ctx.events
        .publish(&bundle.object_ref(&()), None, said)
        .await;
    Action::await_change()
}

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
    let what = format!(
        "archive {} in storage location {}",
        recorded.key.as_deref().unwrap_or("(key not recorded)"),
        recorded.storage_location
    );
    let store = match dereference::archive_store(
        &ctx.client,
        &ns,
        &recorded.storage_location,
        &ctx.config.trusted_storage_hosts,
    )
    .await
    {
        Ok(Some(store)) => store,
        Ok(None) => {
            let why = "the storage location, or its credential, is gone or may not be read";
            return Ok(leave(bundle, ctx, &what, why).await);
        }
        Err(e) if deletion_waited(bundle) >= ctx.config.archive_delete_limit => {
            return Ok(leave(bundle, ctx, &what, &e.to_string()).await);
        }
        Err(e) => return Err(e.into()),
    };
    let key = store
        .location()
        .archive_key(&ns, &name, &bundle.uid().unwrap_or_default());
    if recorded.key.as_deref() != Some(key.as_str()) {
        tracing::warn!(bundle = %name, recorded = ?recorded.key, deleted = %key, "status.archive.key is not this bundle's archive key; only the bundle's own key is deleted");
    }
    match store.delete(&key).await {
        Ok(()) => Ok(Action::await_change()),
        Err(e) if e.is_transient() && deletion_waited(bundle) < ctx.config.archive_delete_limit => {
            Err(e.into())
        }
        // A permanent refusal, or a store unreachable for too long, must not keep the
        // DebugBundle from being deleted forever.
        Err(e) => Ok(leave(
            bundle,
            ctx,
            &format!(
                "archive {key} in storage location {}",
                recorded.storage_location
            ),
            &e.to_string(),
        )
        .await),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_to_a_minute() {
        assert_eq!(retry_after(Duration::ZERO), Duration::from_secs(5));
        assert_eq!(
            retry_after(Duration::from_secs(40)),
            Duration::from_secs(10)
        );
        assert_eq!(
            retry_after(Duration::from_secs(200)),
            Duration::from_secs(50)
        );
        assert_eq!(
            retry_after(Duration::from_secs(300)),
            Duration::from_secs(60)
        );
    }
}

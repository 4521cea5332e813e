//! Step 4, preflight: connects to the object store and asks for the archive's key, so a
//! refused credential or an unreachable store is known before anything is collected.

use super::{dereference::Dereferenced, plan::BundlePlan};
use crate::storage::{ObjectStore, StorageError};

/// The store, and its refusal of this operator's credentials when it refused them.
pub(crate) struct Checked {
    pub store: ObjectStore,
    /// The bundle still collects and diagnoses (the location's status, which Velero fills from
    /// the same refusal, says why), then fails with this before its upload: its findings are
    /// in its status, as with a bucket that does not exist.
    pub refused: Option<StorageError>,
}

pub(crate) async fn store(
    found: &Dereferenced,
    plan: &BundlePlan,
) -> Result<Checked, StorageError> {
    let store = ObjectStore::connect(&found.location, &found.credentials).await;
    match store.exists(&plan.key).await {
        Ok(_) => Ok(Checked {
            store,
            refused: None,
        }),
        Err(e @ StorageError::CredentialsInvalid { .. }) => Ok(Checked {
            store,
            refused: Some(e),
        }),
        Err(e) => Err(e),
    }
}

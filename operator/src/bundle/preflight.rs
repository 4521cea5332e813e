//! Step 4, preflight: connects to the object store and asks for the archive's key, so a
//! refused credential or an unreachable store is known before anything is collected.

use super::{dereference::Dereferenced, plan::BundlePlan};
use crate::storage::{ObjectStore, StorageError};

pub(crate) async fn store(
    found: &Dereferenced,
    plan: &BundlePlan,
) -> Result<ObjectStore, StorageError> {
    let store = ObjectStore::connect(&found.location, &found.credentials).await;
    store.exists(&plan.key).await?;
    Ok(store)
}

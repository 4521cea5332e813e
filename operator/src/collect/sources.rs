//! What collection reads from: the cluster (through the operator's client, and the one
//! container logs are read with), Velero's namespace, the plan, the limits on every read, and
//! the storage location's object store.

use kube::Client;

use super::CollectPlan;
use crate::{
    config::Limits,
    storage::{ObjectStore, StorageLocation},
};

/// Where one bundle's collection reads, and what it reads for.
pub(crate) struct Sources<'a> {
    pub client: Client,
    /// Container logs are read with this one (log_client.rs).
    pub log_client: Client,
    /// Velero's namespace: the bundle's own.
    pub namespace: String,
    pub plan: &'a CollectPlan,
    pub limits: &'a Limits,
    pub store: &'a ObjectStore,
    pub location: &'a StorageLocation,
}

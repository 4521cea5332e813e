//! One file uploaded to a BSL's store as an archive is, timed, then deleted: what `make bench`
//! compares across providers. Public for the bench binary only; the operator never calls it.

use std::{path::Path, time::Duration};

use kube::core::DynamicObject;
use tokio_util::sync::CancellationToken;

use crate::config::TrustedHosts;
use crate::storage::{ObjectStore, StorageLocation, credentials, port::NewArchive};

/// Uploads `file` to the store of `bsl` (credential: the text of its Secret's key, if any)
/// under `<prefix>/plugins/velero-debug-operator/bench/<name>`, deletes it, and returns the
/// upload's wall time (from its start to its completion). Hosts in TRUSTED_STORAGE_HOSTS
/// (comma list, as the operator's) may receive the credential: the environment's emulators.
pub async fn upload_time(
    bsl: &DynamicObject,
    secret_text: Option<&str>,
    file: &Path,
    name: &str,
) -> anyhow::Result<Duration> {
    let location = StorageLocation::from_bsl(bsl)?;
    let trusted = std::env::var("TRUSTED_STORAGE_HOSTS").unwrap_or_default();
    let trusted = TrustedHosts::new(trusted.split(','));
    let creds = credentials::read(&location, secret_text, &trusted)
        .map_err(|e| anyhow::anyhow!("the credential of {}: {e:?}", location.name))?;
    let store = ObjectStore::connect(&location, &creds).await;
    let key = location.key(&format!("plugins/velero-debug-operator/bench/{name}"));
    let archive = NewArchive {
        key: &key,
        file,
        mark: ("", ""),
    };
    let started = std::time::Instant::now();
    let id = store.start_upload(&archive).await?;
    store
        .finish_upload(&archive, &id, None, &CancellationToken::new(), &|_| {})
        .await?;
    let elapsed = started.elapsed();
    store.delete(&key).await?;
    Ok(elapsed)
}

/// How the Azure backend cuts an upload: the block size in MiB and the blocks sent at once (the
/// bench gives Microsoft's SDK the same).
pub const AZURE_UPLOAD_SHAPE: (u64, usize) = (
    crate::storage::azure::BLOCK_SIZE >> 20,
    crate::storage::azure::BLOCKS_IN_FLIGHT,
);

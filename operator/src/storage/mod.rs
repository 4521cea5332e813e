//! The object store behind a BackupStorageLocation, whatever its provider: one dispatcher
//! (`ObjectStore`) over three backends, each in its folder and configured the way Velero's
//! plugin for that provider reads the same BSL: S3 and S3-compatible stores (s3/,
//! aws-sdk-s3), Azure Blob (azure/) and Google Cloud Storage (gcs/), the last two on the HTTP
//! client in transport/. What they all serve is port.rs; the BSL and its Secret are read by
//! location.rs and credentials.rs. Nothing above this module knows which provider it talks
//! to, and no provider imports this file.

mod azure;
pub(crate) mod credentials;
mod gcs;
pub(crate) mod location;
pub mod measure;
pub(crate) mod port;
mod provider_names;
mod s3;
mod transport;

use std::{collections::HashMap, path::Path, time::Duration};

use tokio_util::sync::CancellationToken;

pub(crate) use crate::config::TrustedHosts;
pub(crate) use credentials::Credentials;
pub(crate) use location::StorageLocation;
pub(crate) use port::{NewArchive, OpenUpload, SignedUrl, StorageError, StoredObject};

/// How long an abort of an unfinished upload may take (see `abort_upload`).
const ABORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The store of one BSL, whatever its provider.
#[derive(Clone)]
pub(crate) struct ObjectStore {
    backend: Backend,
    location: StorageLocation,
}

#[derive(Clone)]
enum Backend {
    S3(Box<s3::S3Store>),
    Azure(azure::AzureStore),
    Gcs(gcs::GcsStore),
}

/// Calls the same method on whichever backend the store has.
macro_rules! dispatch {
    ($self:ident, $store:ident => $call:expr) => {
        match &$self.backend {
            Backend::S3($store) => $call,
            Backend::Azure($store) => $call,
            Backend::Gcs($store) => $call,
        }
    };
}

impl ObjectStore {
    pub(crate) fn location(&self) -> &StorageLocation {
        &self.location
    }

    /// A client for the location with its credentials (already read for its provider, see
    /// credentials.rs). Nothing is sent yet.
    pub(crate) async fn connect(location: &StorageLocation, creds: &Credentials) -> Self {
        let backend = match creds {
            Credentials::Aws(c) => Backend::S3(Box::new(s3::S3Store::connect(location, c).await)),
            Credentials::Azure(c) => Backend::Azure(azure::AzureStore::connect(location, c)),
            Credentials::Gcs(c) => Backend::Gcs(gcs::GcsStore::connect(location, c)),
        };
        ObjectStore {
            backend,
            location: location.clone(),
        }
    }

    /// Streams an object to a local file. Downloads at most `max_bytes + 1` bytes of it, so
    /// the caller sees whether it is larger than it wants without the disk filling up;
    /// returns the bytes written.
    pub(crate) async fn download(
        &self,
        key: &str,
        to: &Path,
        max_bytes: u64,
    ) -> Result<u64, StorageError> {
        dispatch!(self, s => s.download(key, to, max_bytes).await)
    }

    /// Starts an upload of `archive` and returns its id. The id goes to status before any part
    /// is sent, so an upload cut short by a killed process is aborted by whoever collects the
    /// bundle next.
    pub(crate) async fn start_upload(
        &self,
        archive: &NewArchive<'_>,
    ) -> Result<String, StorageError> {
        dispatch!(self, s => s.start_upload(archive).await)
    }

    /// Sends the file as the parts of `upload_id` and completes the upload; aborts it on
    /// failure or when `cancel` fires (the term ended), never completing it after.
    /// `bytes_per_second` limits the rate; `on_sent` hears the bytes sent after each part.
    pub(crate) async fn finish_upload(
        &self,
        archive: &NewArchive<'_>,
        upload_id: &str,
        bytes_per_second: Option<u64>,
        cancel: &CancellationToken,
        on_sent: &(dyn Fn(u64) + Sync),
    ) -> Result<(), StorageError> {
        let sent = tokio::select! {
            r = async { dispatch!(self, s => s.send_upload(archive, upload_id, bytes_per_second, cancel, on_sent).await) } => r,
            _ = cancel.cancelled() => Err(StorageError::Cancelled),
        };
        if sent.is_err() {
            self.abort_upload(archive.key, upload_id).await;
        }
        sent
    }

    /// Aborts an unfinished upload; one already gone (completed or aborted) is fine.
    /// Best effort, and short: a store that stalls must not hold the attempt that gives up on
    /// it (an upload left open is aborted by the next attempt, which finds its id in status
    /// or lists it, or by the garbage collector).
    pub(crate) async fn abort_upload(&self, key: &str, upload_id: &str) {
        let abort = async { dispatch!(self, s => s.abort_upload(key, upload_id).await) };
        match tokio::time::timeout(ABORT_TIMEOUT, abort).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::debug!(key, upload_id, error = %e, "abort of the upload"),
            Err(_) => tracing::warn!(
                key,
                upload_id,
                "the store did not answer the abort of the upload within 10 s; left for the next attempt"
            ),
        }
    }

    /// A GET URL valid for `ttl`, or until the credentials it is signed with expire if that
    /// comes first.
    pub(crate) async fn presign_get(
        &self,
        key: &str,
        ttl: Duration,
    ) -> Result<SignedUrl, StorageError> {
        dispatch!(self, s => s.presign_get(key, ttl).await)
    }

    /// Deletes an object; one that is already gone is fine.
    pub(crate) async fn delete(&self, key: &str) -> Result<(), StorageError> {
        dispatch!(self, s => s.delete(key).await)
    }

    /// Objects under `prefix`, page by page, at most `max` of them: their keys and when they
    /// were last written (seconds since the epoch, 0 when the store does not say).
    pub(crate) async fn list(
        &self,
        prefix: &str,
        max: usize,
    ) -> Result<Vec<StoredObject>, StorageError> {
        dispatch!(self, s => s.list(prefix, max).await)
    }

    /// Uploads begun under `prefix` and not finished, at most `max`: their keys, ids and when
    /// they began. `None` when the store does not list them (GCS resumable uploads, some
    /// S3-compatible servers).
    pub(crate) async fn list_uploads(
        &self,
        prefix: &str,
        max: usize,
    ) -> Result<Option<Vec<OpenUpload>>, StorageError> {
        dispatch!(self, s => s.list_uploads(prefix, max).await)
    }

    /// An object's user metadata (without the provider's prefix); None when it is gone.
    pub(crate) async fn metadata(
        &self,
        key: &str,
    ) -> Result<Option<HashMap<String, String>>, StorageError> {
        dispatch!(self, s => s.metadata(key).await)
    }

    pub(crate) async fn exists(&self, key: &str) -> Result<bool, StorageError> {
        Ok(self.metadata(key).await?.is_some())
    }
}

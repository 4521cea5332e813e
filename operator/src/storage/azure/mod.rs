//! Azure Blob storage through its REST API, as velero-plugin-for-microsoft-azure (Velero's
//! `pkg/util/azure`) reads the same BSL: `bucket` is the container; config `storageAccount`,
//! `storageAccountURI`, `storageAccountKeyEnvVar`, `useAAD`; the credential Secret a dotenv
//! file. A thin client of our own on the HTTP client in http.rs, because no maintained crate
//! does what Velero's shared-key setups need on our stack: the official `azure_storage_blob`
//! makes no SAS from an account key, and `object_store` brings a second reqwest and cannot
//! list or discard uncommitted blocks.
//!
//! With an account key, every request carries a service SAS made from the key for it alone: the blob it
//! acts on (the container only to list it), the one permission it needs, valid a few minutes.
//! One signing scheme for all we do, the same the read URLs use; a SAS that leaks (to a host a
//! storageAccountURI names) opens no more than the request it came with, and a
//! storageAccountURI on another host than the account's own is refused unless trusted
//! (trust.rs). An upload is a block blob: blocks named after the upload id, committed with the
//! metadata at the end. With `useAAD`, requests carry an Entra ID token instead
//! (entra.rs) and read URLs are user-delegation SAS (delegation.rs). The SAS is
//! signed in sas.rs; the service's answers are read in replies.rs.

mod certificate;
pub(in crate::storage) mod credentials;
mod delegation;
pub(in crate::storage) mod entra;
pub(in crate::storage) mod key_exchange;
mod replies;
mod sas;
mod token_grant;

use std::{collections::HashMap, time::Duration};

use base64::Engine;
use futures::{StreamExt, TryStreamExt};
use md5::{Digest, Md5};
use percent_encoding::{AsciiSet, utf8_percent_encode};
use std::sync::atomic::{AtomicU64, Ordering};
use tokio_util::sync::CancellationToken;

use crate::storage::{
    location::StorageLocation,
    port::{NewArchive, OpenUpload, SignedUrl, StorageError, StoredObject, UrlLifetime},
    transport::http::{self, Errors},
};
use credentials::AzureAuth;
use replies::{block_id, bounded_text, first_block_upload_id, read_error, read_listing, refusal};
use sas::{CLOCK_SKEW, Permission, Sas, VERSION};

pub(crate) use credentials::AzureCredentials;

/// Blocks sent at once; why four: BENCHMARKS.md, "Storage providers".
pub(in crate::storage) const BLOCKS_IN_FLIGHT: usize = 4;
/// A block's size: blocks are streamed from the spool file, so their size costs no memory;
/// larger blocks mean fewer requests (BENCHMARKS.md, "Storage providers").
pub(in crate::storage) const BLOCK_SIZE: u64 = 32 << 20;
/// A blob name keeps `/` in a URL; everything but unreserved characters is encoded.
const PATH: &AsciiSet = http::UNRESERVED_AND_SLASH;
const QUERY: &AsciiSet = http::UNRESERVED;

/// How long the SAS of one request is valid (from [`CLOCK_SKEW`] back): it is checked when the
/// request starts, so a long block upload needs no more.
const REQUEST_SAS_MINUTES: i64 = 15;

#[derive(Clone)]
pub(in crate::storage) struct AzureStore {
    http: reqwest::Client,
    creds: AzureCredentials,
    container: String,
    errors: Errors,
}

impl AzureStore {
    pub(in crate::storage) fn connect(
        location: &StorageLocation,
        creds: &AzureCredentials,
    ) -> Self {
        let http = http::client(location).unwrap_or_else(|e| {
            tracing::error!(error = %e, "TLS settings of the storage location ignored");
            http::fallback_client()
        });
        AzureStore {
            http,
            creds: creds.clone(),
            container: location.bucket.clone(),
            errors: Errors {
                location: location.name.clone(),
                bucket: location.bucket.clone(),
                route: crate::proxy::Proxies::from_env().route(&creds.account_url),
            },
        }
    }

    /// Velero's plugin signs https-only URLs; an account served over plain http (an
    /// emulator) could not be read with them.
    fn protocols(&self) -> &'static str {
        if self.creds.account_url.starts_with("http://") {
            "https,http"
        } else {
            "https"
        }
    }

    /// A SAS for one request of ours: on `blob` (the container when None), with only
    /// `permission`, valid [`REQUEST_SAS_MINUTES`]; none with Entra ID (a token goes in the
    /// request's header instead).
    fn auth(&self, blob: Option<&str>, permission: Permission) -> Option<String> {
        // (An Exchange never reaches a store: credentials.rs resolves it to a key first.)
        let AzureAuth::Key(key) = &self.creds.auth else {
            return None;
        };
        let now = jiff::Timestamp::now();
        let sas = Sas {
            account: &self.creds.account,
            container: &self.container,
            blob,
            permissions: permission.letter(),
            start: now - jiff::SignedDuration::from_secs(CLOCK_SKEW),
            expiry: now + jiff::SignedDuration::from_mins(REQUEST_SAS_MINUTES),
            protocol: self.protocols(),
        };
        Some(sas.sign(key))
    }

    /// The container's URL with `query`, signed to list it.
    fn container_url(&self, query: &str) -> String {
        let sas = self.auth(None, Permission::List);
        format!(
            "{}/{}?{query}{}",
            self.creds.account_url,
            utf8_percent_encode(&self.container, QUERY),
            sas.map(|s| format!("&{s}")).unwrap_or_default()
        )
    }

    /// The blob's URL with `query`, signed for `permission` on it alone.
    fn blob_url(&self, key: &str, query: &str, permission: Permission) -> String {
        let sas = self.auth(Some(key), permission).unwrap_or_default();
        let sep = if query.is_empty() || sas.is_empty() {
            ""
        } else {
            "&"
        };
        format!(
            "{}/{}/{}?{query}{sep}{sas}",
            self.creds.account_url,
            utf8_percent_encode(&self.container, QUERY),
            utf8_percent_encode(key, PATH),
        )
    }

    /// The request with its Entra ID token, when the location has no key.
    async fn authorized(
        &self,
        operation: &'static str,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, StorageError> {
        let AzureAuth::Entra(identity) = &self.creds.auth else {
            return Ok(request);
        };
        match identity.token().await {
            Ok(token) => Ok(request.bearer_auth(token)),
            Err(failure) => {
                let location = self.errors.location.clone();
                let message = format!("{operation}: {}", failure.message);
                Err(if failure.transient {
                    StorageError::Unreachable {
                        location,
                        via: String::new(),
                        message,
                    }
                } else {
                    StorageError::CredentialsInvalid { location, message }
                })
            }
        }
    }

    /// Sends a request; an answer outside 2xx comes back as the store's error.
    async fn send(
        &self,
        operation: &'static str,
        key: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, StorageError> {
        let response = self
            .authorized(operation, request)
            .await?
            .header("x-ms-version", VERSION)
            .send()
            .await
            .map_err(|e| self.errors.transport(operation, &e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        // HEAD answers carry their code in a header only.
        let header_code = response
            .headers()
            .get("x-ms-error-code")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let (status, body) = http::error_body(response).await;
        let mut answer = read_error(status, &body);
        if answer.code.is_empty() {
            answer.code = header_code;
        }
        let error = self
            .errors
            .answer(operation, key, &answer, refusal(&answer.code));
        Err(match (error, &self.creds.auth) {
            // Which identity's token was refused: what to grant a role to, or to fix.
            (StorageError::CredentialsInvalid { location, message }, AzureAuth::Entra(e)) => {
                StorageError::CredentialsInvalid {
                    location,
                    message: format!("{message} (the request carried {})", e.summary),
                }
            }
            (error, _) => error,
        })
    }

    pub(in crate::storage) async fn download(
        &self,
        key: &str,
        to: &std::path::Path,
        max_bytes: u64,
    ) -> Result<u64, StorageError> {
        let response = self
            .send(
                "GetBlob",
                key,
                self.http.get(self.blob_url(key, "", Permission::Read)),
            )
            .await?;
        http::save_body(
            &self.errors,
            &format!("GetBlob {key}"),
            response,
            to,
            max_bytes,
        )
        .await
    }

    /// Metadata names are C# identifiers in Azure: `-` is written `_` and read back as `-`.
    pub(in crate::storage) async fn metadata(
        &self,
        key: &str,
    ) -> Result<Option<HashMap<String, String>>, StorageError> {
        let request = self
            .http
            .head(self.blob_url(key, "", Permission::Read))
            .timeout(http::REQUEST_TIMEOUT);
        match self.send("GetBlobProperties", key, request).await {
            Ok(response) => Ok(Some(
                response
                    .headers()
                    .iter()
                    .filter_map(|(name, value)| {
                        let name = name.as_str().strip_prefix("x-ms-meta-")?;
                        Some((name.replace('_', "-"), value.to_str().ok()?.to_string()))
                    })
                    .collect(),
            )),
            Err(StorageError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub(in crate::storage) async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let request = self
            .http
            .delete(self.blob_url(key, "", Permission::Delete))
            .timeout(http::REQUEST_TIMEOUT);
        match self.send("DeleteBlob", key, request).await {
            Ok(_) | Err(StorageError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// One listing of the container, page by page: committed blobs, or with `uncommitted`
    /// also those that have only uncommitted blocks.
    async fn list_blobs(
        &self,
        prefix: &str,
        max: usize,
        uncommitted: bool,
    ) -> Result<Vec<StoredObject>, StorageError> {
        let mut objects = Vec::new();
        let mut marker = String::new();
        loop {
            let mut query = format!(
                "restype=container&comp=list&maxresults=1000&prefix={}",
                utf8_percent_encode(prefix, QUERY)
            );
            if uncommitted {
                query += "&include=uncommittedblobs";
            }
            if !marker.is_empty() {
                query += &format!("&marker={}", utf8_percent_encode(&marker, QUERY));
            }
            let request = self
                .http
                .get(self.container_url(&query))
                .timeout(http::REQUEST_TIMEOUT);
            let response = self.send("ListBlobs", prefix, request).await?;
            let body = bounded_text(&self.errors, "ListBlobs", response).await?;
            let page = read_listing(&body).map_err(|message| StorageError::Failed {
                location: self.errors.location.clone(),
                operation: "ListBlobs",
                message,
            })?;
            objects.extend(page.blobs);
            marker = page.next_marker;
            if marker.is_empty() || objects.len() >= max {
                objects.truncate(max);
                return Ok(objects);
            }
        }
    }

    pub(in crate::storage) async fn list(
        &self,
        prefix: &str,
        max: usize,
    ) -> Result<Vec<StoredObject>, StorageError> {
        self.list_blobs(prefix, max, false).await
    }

    /// Blobs that have uncommitted blocks and nothing committed: an upload of ours begun and
    /// not finished (its id is in its block names). A blob that has both is not listed: its
    /// blocks go when it is next committed, or after a week. Both listings stop at `max`: a
    /// committed blob past the first one's end is at worst taken for an open upload, and its
    /// abort leaves a committed blob as it is.
    pub(in crate::storage) async fn list_uploads(
        &self,
        prefix: &str,
        max: usize,
    ) -> Result<Option<Vec<OpenUpload>>, StorageError> {
        let committed: std::collections::HashSet<String> = self
            .list_blobs(prefix, max, false)
            .await?
            .into_iter()
            .map(|o| o.key)
            .collect();
        let mut open = Vec::new();
        for blob in self.list_blobs(prefix, max, true).await? {
            if committed.contains(&blob.key) {
                continue;
            }
            if let Some(id) = self.upload_id_of(&blob.key).await? {
                open.push(OpenUpload {
                    key: blob.key,
                    id,
                    begun: blob.written,
                });
            }
        }
        Ok(Some(open))
    }

    /// The upload id in the name of a blob's first uncommitted block, when it has the shape
    /// of ours.
    async fn upload_id_of(&self, key: &str) -> Result<Option<String>, StorageError> {
        let request = self
            .http
            .get(self.blob_url(
                key,
                "comp=blocklist&blocklisttype=uncommitted",
                Permission::Read,
            ))
            .timeout(http::REQUEST_TIMEOUT);
        let response = match self.send("GetBlockList", key, request).await {
            Ok(r) => r,
            Err(StorageError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let body = bounded_text(&self.errors, "GetBlockList", response).await?;
        Ok(first_block_upload_id(&body))
    }

    /// Nothing is sent: Azure has no upload to open. The id names the blocks.
    pub(in crate::storage) async fn start_upload(
        &self,
        _archive: &NewArchive<'_>,
    ) -> Result<String, StorageError> {
        let mut bytes = [0u8; 8];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| StorageError::Failed {
            location: self.errors.location.clone(),
            operation: "StartUpload",
            message: "no random bytes for an upload id".into(),
        })?;
        Ok(hex::encode(bytes))
    }

    /// Puts the blocks (each with its MD5, which Azure checks), `BLOCKS_IN_FLIGHT` at once, then commits
    /// them in order with the content type and the mark.
    pub(in crate::storage) async fn send_upload(
        &self,
        archive: &NewArchive<'_>,
        upload_id: &str,
        bytes_per_second: Option<u64>,
        cancel: &CancellationToken,
        on_sent: &(dyn Fn(u64) + Sync),
    ) -> Result<(), StorageError> {
        let size = tokio::fs::metadata(archive.file).await?.len();
        let count = size.div_ceil(BLOCK_SIZE).max(1);
        let started = tokio::time::Instant::now();
        let sent = AtomicU64::new(0);
        let on_bytes = |n: u64| on_sent(sent.fetch_add(n, Ordering::Relaxed) + n);
        let ids: Vec<String> = futures::stream::iter(0..count)
            .map(|index| {
                let feed = http::Feed {
                    file: archive.file,
                    offset: index * BLOCK_SIZE,
                    length: (size - index * BLOCK_SIZE).min(BLOCK_SIZE),
                    started,
                    bytes_per_second,
                    cancel,
                    on_bytes: &on_bytes,
                };
                self.put_block(archive.key, block_id(upload_id, index), feed)
            })
            .buffered(BLOCKS_IN_FLIGHT)
            .try_collect()
            .await?;
        if cancel.is_cancelled() {
            return Err(StorageError::Cancelled);
        }
        let list: String = ids
            .iter()
            .map(|id| format!("<Latest>{id}</Latest>"))
            .collect();
        let mut request = self
            .http
            .put(self.blob_url(archive.key, "comp=blocklist", Permission::Write))
            .header("x-ms-blob-content-type", "application/gzip")
            .body(format!(
                "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>{list}</BlockList>"
            ))
            .timeout(http::REQUEST_TIMEOUT);
        if !archive.mark.1.is_empty() {
            request = request.header(
                format!("x-ms-meta-{}", archive.mark.0.replace('-', "_")),
                archive.mark.1,
            );
        }
        self.send("PutBlockList", archive.key, request).await?;
        Ok(())
    }

    /// One block, streamed from the file, with the MD5 Azure checks it against (read from
    /// the file first: the page cache serves the second read).
    async fn put_block(
        &self,
        key: &str,
        id: String,
        feed: http::Feed<'_>,
    ) -> Result<String, StorageError> {
        let md5 = base64::engine::general_purpose::STANDARD
            .encode(file_md5(feed.file, feed.offset, feed.length).await?);
        let query = format!("comp=block&blockid={}", utf8_percent_encode(&id, QUERY));
        let length = feed.length;
        let (body, feeder) = http::streamed(feed, &self.errors);
        let request = self
            .http
            .put(self.blob_url(key, &query, Permission::Write))
            .header("Content-MD5", md5)
            .header(reqwest::header::CONTENT_LENGTH, length)
            .body(body);
        let (fed, answer) = tokio::join!(feeder, self.send("PutBlock", key, request));
        fed?;
        answer?;
        Ok(id)
    }

    /// Azure has no abort: committing an empty block list discards the uncommitted blocks,
    /// and the empty blob it makes is deleted at once. Only where no blob is committed
    /// (`If-None-Match: *`): a committed archive is never replaced by an abort.
    pub(in crate::storage) async fn abort_upload(
        &self,
        key: &str,
        _upload_id: &str,
    ) -> Result<(), StorageError> {
        let request = self
            .http
            .put(self.blob_url(key, "comp=blocklist", Permission::Write))
            .header("If-None-Match", "*")
            .body("<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList></BlockList>")
            .timeout(http::REQUEST_TIMEOUT);
        let created = match self.send("PutBlockList", key, request).await {
            Ok(response) => response,
            // 409 BlobAlreadyExists, 412: a committed blob is there; left as it is.
            Err(StorageError::Failed { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        let etag = created
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("*")
            .to_string();
        let request = self
            .http
            .delete(self.blob_url(key, "", Permission::Delete))
            .header("If-Match", etag)
            .timeout(http::REQUEST_TIMEOUT);
        match self.send("DeleteBlob", key, request).await {
            Ok(_) | Err(StorageError::NotFound { .. } | StorageError::Failed { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// A read-only service SAS for the blob, started ten minutes back as the plugin signs
    /// it; the account key does not expire, so the TTL is the URL's.
    pub(in crate::storage) async fn presign_get(
        &self,
        key: &str,
        ttl: Duration,
    ) -> Result<SignedUrl, StorageError> {
        let now = jiff::Timestamp::now();
        let start = now - jiff::SignedDuration::from_secs(CLOCK_SKEW);
        let expiry = now + jiff::SignedDuration::try_from(ttl).unwrap_or(jiff::SignedDuration::MAX);
        let (sas, valid_for) = match &self.creds.auth {
            AzureAuth::Key(account_key) => {
                let sas = Sas {
                    account: &self.creds.account,
                    container: &self.container,
                    blob: Some(key),
                    permissions: "r",
                    start,
                    expiry,
                    protocol: self.protocols(),
                };
                (sas.sign(account_key), ttl)
            }
            AzureAuth::Entra(_) | AzureAuth::Exchange(_) => {
                self.delegation_sas(key, start, ttl).await?
            }
        };
        Ok(SignedUrl {
            url: format!(
                "{}/{}/{}?{sas}",
                self.creds.account_url,
                utf8_percent_encode(&self.container, QUERY),
                utf8_percent_encode(key, PATH)
            ),
            lifetime: UrlLifetime {
                valid_for,
                cut_by_credentials: valid_for < ttl,
            },
        })
    }

    /// A user-delegation SAS for `key`: a delegation key asked for the URL's lifetime (at
    /// most the seven days a key lives), then signed with it.
    async fn delegation_sas(
        &self,
        key: &str,
        start: jiff::Timestamp,
        ttl: Duration,
    ) -> Result<(String, Duration), StorageError> {
        let now = jiff::Timestamp::now();
        let most = Duration::from_secs(delegation::MAX_KEY_DAYS as u64 * 86_400 - 60);
        let valid_for = ttl.min(most);
        let expiry = now + jiff::SignedDuration::try_from(valid_for).unwrap_or_default();
        let failed = |message: String| StorageError::Failed {
            location: self.errors.location.clone(),
            operation: "GetUserDelegationKey",
            message,
        };
        let request = self
            .http
            .post(format!(
                "{}/?restype=service&comp=userdelegationkey",
                self.creds.account_url
            ))
            .timeout(http::REQUEST_TIMEOUT)
            .body(delegation::key_request(start, expiry));
        let response = self.send("GetUserDelegationKey", "", request).await?;
        let body = bounded_text(&self.errors, "GetUserDelegationKey", response).await?;
        let delegation = delegation::read_key(&body)
            .ok_or_else(|| failed("the answer holds no user delegation key".into()))?;
        let sas = delegation::read_sas(
            &delegation,
            &self.creds.account,
            &self.container,
            key,
            start,
            expiry,
            self.protocols(),
        )
        .ok_or_else(|| failed("the delegation key's value is not base64".into()))?;
        Ok((sas, valid_for))
    }
}

/// The MD5 of `length` bytes of `path` at `offset`, hashed on a blocking thread: hashing a
/// block on the runtime would hold up the other block's body meanwhile.
async fn file_md5(path: &std::path::Path, offset: u64, length: u64) -> std::io::Result<Vec<u8>> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Seek};
        let mut file = std::fs::File::open(path)?;
        file.seek(std::io::SeekFrom::Start(offset))?;
        let mut file = file.take(length);
        let mut md5 = Md5::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                return Ok(md5.finalize().to_vec());
            }
            md5.update(&buf[..n]);
        }
    })
    .await
    .map_err(std::io::Error::other)?
}

#[cfg(test)]
#[path = "azure_tests.rs"]
mod tests;

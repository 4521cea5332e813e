//! Google Cloud Storage through its JSON API, as velero-plugin-for-gcp reads the same BSL
//! (`bucket`, `prefix`; config `storeEndpoint`, `universeDomain`, `kmsKeyName`), on the HTTP
//! client in http.rs. A thin client of our own rather than a crate: `object_store` uploads
//! through the XML API (which the emulator we prove against does not speak) and the official
//! `google-cloud-storage` crate is ~190 crates and needs a newer rustc; what we need is six
//! requests, a resumable upload and V4 URL signing.
//!
//! Authentication: a service-account key, as a self-signed JWT (Google's "service account
//! authorization without OAuth": no token endpoint to reach); without a key, a token of the
//! metadata server or of workload identity federation (identity.rs); the credential is read
//! in credentials.rs, read URLs are V4-signed in signed_url.rs. `STORAGE_EMULATOR_HOST`
//! in the operator's environment sends every request to that host without authentication, as
//! Google's own clients do (and the plugin, through them).

pub(in crate::storage) mod credentials;
pub(in crate::storage) mod identity;
mod signed_url;

use std::{
    collections::HashMap,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use base64::Engine;
use percent_encoding::{AsciiSet, utf8_percent_encode};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::storage::{
    location::StorageLocation,
    port::{NewArchive, OpenUpload, SignedUrl, StorageError, StoredObject, crc_of_range},
    transport::http::{self, Answer, Errors, Refusal},
};
use credentials::{Auth, DEFAULT_UNIVERSE};
use signed_url::{MAX_URL_LIFETIME, sign_v4, unsigned_v4};

pub(crate) use credentials::GcsCredentials;

/// A bucket or object name in a JSON API URL: all but unreserved characters encoded.
const QUERY: &AsciiSet = crate::storage::transport::http::UNRESERVED;

#[derive(Clone)]
pub(in crate::storage) struct GcsStore {
    http: reqwest::Client,
    /// The JSON API: `https://storage.googleapis.com/storage/v1`, no slash at the end.
    api: String,
    /// Where uploads go: the API's `/upload/` twin.
    upload: String,
    /// Scheme and host of signed URLs.
    url_endpoint: String,
    bucket: String,
    auth: Auth,
    /// False against the emulator (STORAGE_EMULATOR_HOST).
    authenticate: bool,
    kms_key: Option<String>,
    errors: Errors,
}

/// An answer to read as JSON, or an error.
enum Sent {
    Ok(reqwest::Response),
    Refused(Answer),
}

impl GcsStore {
    pub(in crate::storage) fn connect(location: &StorageLocation, creds: &GcsCredentials) -> Self {
        let emulator = std::env::var("STORAGE_EMULATOR_HOST")
            .ok()
            .filter(|h| !h.is_empty());
        let universe = location
            .config("universeDomain")
            .unwrap_or(DEFAULT_UNIVERSE);
        let api = match (&emulator, location.config("storeEndpoint")) {
            (Some(host), _) => {
                let host = host.trim_end_matches('/');
                let host = if host.contains("://") {
                    host.to_string()
                } else {
                    format!("http://{host}")
                };
                format!("{host}/storage/v1")
            }
            (None, Some(endpoint)) => endpoint.trim_end_matches('/').to_string(),
            (None, None) => format!("https://storage.{universe}/storage/v1"),
        };
        let root = api.strip_suffix("/storage/v1").unwrap_or(&api).to_string();
        let http = http::client(location).unwrap_or_else(|e| {
            tracing::error!(error = %e, "TLS settings of the storage location ignored");
            http::fallback_client()
        });
        GcsStore {
            http,
            upload: format!("{root}/upload/storage/v1"),
            url_endpoint: root,
            api: api.clone(),
            bucket: location.bucket.clone(),
            auth: creds.auth.clone(),
            authenticate: emulator.is_none(),
            kms_key: location.config("kmsKeyName").map(str::to_string),
            errors: Errors {
                location: location.name.clone(),
                bucket: location.bucket.clone(),
                route: crate::proxy::Proxies::from_env().route(&api),
            },
        }
    }

    fn object_url(&self, key: &str) -> String {
        format!(
            "{}/b/{}/o/{}",
            self.api,
            utf8_percent_encode(&self.bucket, QUERY),
            utf8_percent_encode(key, QUERY)
        )
    }

    fn session_url(&self, key: &str, upload_id: &str) -> String {
        format!(
            "{}/b/{}/o?uploadType=resumable&name={}&upload_id={}",
            self.upload,
            utf8_percent_encode(&self.bucket, QUERY),
            utf8_percent_encode(key, QUERY),
            utf8_percent_encode(upload_id, QUERY)
        )
    }

    async fn authorized(
        &self,
        operation: &'static str,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, StorageError> {
        if !self.authenticate {
            return Ok(request);
        }
        match &self.auth {
            Auth::Key(key) => Ok(request.bearer_auth(key.bearer(jiff::Timestamp::now()))),
            Auth::Token(identity) => match identity.access_token().await {
                Ok(token) => Ok(request.bearer_auth(token)),
                Err(failure) => Err(self.token_failed(operation, failure)),
            },
        }
    }

    /// A token or signature that could not be had: a refused credential, or (transient) a
    /// token server out of reach.
    fn token_failed(
        &self,
        operation: &'static str,
        failure: identity::TokenFailure,
    ) -> StorageError {
        let location = self.errors.location.clone();
        let message = format!("{operation}: {}", failure.message);
        if failure.transient {
            StorageError::Unreachable {
                location,
                via: String::new(),
                message,
            }
        } else {
            StorageError::CredentialsInvalid { location, message }
        }
    }

    /// Sends a request; an answer outside 2xx (and 308, a resumable upload's "go on") comes
    /// back as `Refused` with the store's reason and message.
    async fn send(
        &self,
        operation: &'static str,
        request: reqwest::RequestBuilder,
    ) -> Result<Sent, StorageError> {
        let response = self
            .authorized(operation, request)
            .await?
            .send()
            .await
            .map_err(|e| self.errors.transport(operation, &e))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) || status == 308 {
            return Ok(Sent::Ok(response));
        }
        let (status, body) = http::error_body(response).await;
        Ok(Sent::Refused(read_error(status, &body)))
    }

    fn refused(&self, operation: &'static str, key: &str, answer: &Answer) -> StorageError {
        self.errors.answer(operation, key, answer, refusal(answer))
    }

    /// A refused request on the bucket itself (a listing, a new upload): its 404 is the
    /// bucket's.
    fn refused_on_bucket(
        &self,
        operation: &'static str,
        key: &str,
        answer: &Answer,
    ) -> StorageError {
        match self.refused(operation, key, answer) {
            StorageError::NotFound { .. } => StorageError::BucketMissing {
                location: self.errors.location.clone(),
                bucket: self.bucket.clone(),
            },
            other => other,
        }
    }

    /// A refused request on an object: a 404 whose message does not say which is missing
    /// (an emulator's bare "Not Found") is the bucket's when the bucket is not there.
    async fn refused_on_object(
        &self,
        operation: &'static str,
        key: &str,
        answer: &Answer,
    ) -> StorageError {
        let error = self.refused(operation, key, answer);
        if !matches!(error, StorageError::NotFound { .. }) {
            return error;
        }
        let bucket = format!(
            "{}/b/{}",
            self.api,
            utf8_percent_encode(&self.bucket, QUERY)
        );
        let request = self.http.get(bucket).timeout(http::REQUEST_TIMEOUT);
        match self.send("GetBucket", request).await {
            Ok(Sent::Refused(a)) if a.status == 404 => StorageError::BucketMissing {
                location: self.errors.location.clone(),
                bucket: self.bucket.clone(),
            },
            _ => error,
        }
    }

    pub(in crate::storage) async fn download(
        &self,
        key: &str,
        to: &std::path::Path,
        max_bytes: u64,
    ) -> Result<u64, StorageError> {
        let request = self.http.get(format!("{}?alt=media", self.object_url(key)));
        match self.send("GetObject", request).await? {
            Sent::Ok(response) => {
                http::save_body(
                    &self.errors,
                    &format!("GetObject {key}"),
                    response,
                    to,
                    max_bytes,
                )
                .await
            }
            Sent::Refused(a) => Err(self.refused_on_object("GetObject", key, &a).await),
        }
    }

    pub(in crate::storage) async fn metadata(
        &self,
        key: &str,
    ) -> Result<Option<HashMap<String, String>>, StorageError> {
        #[derive(Deserialize)]
        struct Object {
            #[serde(default)]
            metadata: HashMap<String, String>,
        }
        let request = self
            .http
            .get(self.object_url(key))
            .timeout(http::REQUEST_TIMEOUT);
        match self.send("GetObjectMetadata", request).await? {
            Sent::Ok(response) => {
                let object: Object = json(&self.errors, "GetObjectMetadata", response).await?;
                Ok(Some(object.metadata))
            }
            Sent::Refused(a) => match self.refused_on_object("GetObjectMetadata", key, &a).await {
                StorageError::NotFound { .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    pub(in crate::storage) async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let request = self
            .http
            .delete(self.object_url(key))
            .timeout(http::REQUEST_TIMEOUT);
        match self.send("DeleteObject", request).await? {
            Sent::Ok(_) => Ok(()),
            Sent::Refused(a) => match self.refused_on_object("DeleteObject", key, &a).await {
                StorageError::NotFound { .. } => Ok(()),
                other => Err(other),
            },
        }
    }

    pub(in crate::storage) async fn list(
        &self,
        prefix: &str,
        max: usize,
    ) -> Result<Vec<StoredObject>, StorageError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Page {
            #[serde(default)]
            items: Vec<Item>,
            next_page_token: Option<String>,
        }
        #[derive(Deserialize)]
        struct Item {
            name: String,
            #[serde(default)]
            updated: String,
        }
        let mut objects = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![
                ("prefix", prefix.to_string()),
                ("maxResults", "1000".into()),
            ];
            if let Some(t) = token.take() {
                query.push(("pageToken", t));
            }
            let url = format!(
                "{}/b/{}/o",
                self.api,
                utf8_percent_encode(&self.bucket, QUERY)
            );
            let request = self
                .http
                .get(url)
                .query(&query)
                .timeout(http::REQUEST_TIMEOUT);
            let page: Page = match self.send("ListObjects", request).await? {
                Sent::Ok(response) => json(&self.errors, "ListObjects", response).await?,
                Sent::Refused(a) => return Err(self.refused_on_bucket("ListObjects", prefix, &a)),
            };
            objects.extend(page.items.into_iter().map(|i| {
                StoredObject {
                    written: i
                        .updated
                        .parse::<jiff::Timestamp>()
                        .map_or(0, |t| t.as_second()),
                    key: i.name,
                }
            }));
            token = page.next_page_token.filter(|t| !t.is_empty());
            if token.is_none() || objects.len() >= max {
                objects.truncate(max);
                return Ok(objects);
            }
        }
    }

    /// GCS does not list resumable upload sessions; an abandoned one expires after a week and
    /// never becomes an object.
    pub(in crate::storage) async fn list_uploads(
        &self,
        _prefix: &str,
        _max: usize,
    ) -> Result<Option<Vec<OpenUpload>>, StorageError> {
        Ok(None)
    }

    /// Opens a resumable upload session with the object's metadata, mark and CRC32C: GCS
    /// checks the whole object against it when the last chunk arrives.
    pub(in crate::storage) async fn start_upload(
        &self,
        archive: &NewArchive<'_>,
    ) -> Result<String, StorageError> {
        let size = tokio::fs::metadata(archive.file).await?.len();
        let crc32c =
            crc_of_range(archive.file, 0, size, crc_fast::CrcAlgorithm::Crc32Iscsi).await? as u32;
        let mut metadata = serde_json::Map::new();
        if !archive.mark.1.is_empty() {
            metadata.insert(archive.mark.0.into(), archive.mark.1.into());
        }
        let body = serde_json::json!({
            "name": archive.key,
            "contentType": "application/gzip",
            "metadata": metadata,
            "crc32c": base64::engine::general_purpose::STANDARD.encode(crc32c.to_be_bytes()),
        });
        let mut query = vec![("uploadType", "resumable"), ("name", archive.key)];
        if let Some(kms) = &self.kms_key {
            query.push(("kmsKeyName", kms));
        }
        let url = format!(
            "{}/b/{}/o",
            self.upload,
            utf8_percent_encode(&self.bucket, QUERY)
        );
        let request = self
            .http
            .post(url)
            .query(&query)
            .header("X-Upload-Content-Type", "application/gzip")
            .header("X-Upload-Content-Length", size)
            .json(&body)
            .timeout(http::REQUEST_TIMEOUT);
        let response = match self.send("StartUpload", request).await? {
            Sent::Ok(response) => response,
            Sent::Refused(a) => return Err(self.refused_on_bucket("StartUpload", archive.key, &a)),
        };
        let session = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| reqwest::Url::parse(l).ok());
        session
            .and_then(|url| {
                url.query_pairs()
                    .find(|(k, _)| k == "upload_id")
                    .map(|(_, v)| v.into_owned())
            })
            .ok_or_else(|| StorageError::Failed {
                location: self.errors.location.clone(),
                operation: "StartUpload",
                message: "the store answered without a session (no upload_id in Location)".into(),
            })
    }

    /// Sends the whole file to the session in one streamed request, which finishes the
    /// object: a session takes its bytes in order, so parts could not go at once, and every
    /// extra chunk costs a round trip (and, on fake-gcs-server, a rewrite of what came
    /// before). A cut request is not resumed: the attempt starts the upload again. The body
    /// fails, and the object is never finished, once `cancel` fires.
    pub(in crate::storage) async fn send_upload(
        &self,
        archive: &NewArchive<'_>,
        upload_id: &str,
        bytes_per_second: Option<u64>,
        cancel: &CancellationToken,
        on_sent: &(dyn Fn(u64) + Sync),
    ) -> Result<(), StorageError> {
        let size = tokio::fs::metadata(archive.file).await?.len();
        let sent = AtomicU64::new(0);
        let on_bytes = |n: u64| on_sent(sent.fetch_add(n, Ordering::Relaxed) + n);
        let (body, feeder) = http::streamed(
            http::Feed {
                file: archive.file,
                offset: 0,
                length: size,
                started: tokio::time::Instant::now(),
                bytes_per_second,
                cancel,
                on_bytes: &on_bytes,
            },
            &self.errors,
        );
        let range = match size {
            0 => "bytes */0".to_string(),
            _ => format!("bytes 0-{}/{size}", size - 1),
        };
        let request = self
            .http
            .put(self.session_url(archive.key, upload_id))
            .header(reqwest::header::CONTENT_RANGE, range)
            .header(reqwest::header::CONTENT_LENGTH, size)
            .body(body);
        let (fed, answer) = tokio::join!(feeder, self.send("UploadObject", request));
        fed?;
        match answer? {
            Sent::Ok(_) => Ok(()),
            Sent::Refused(a) => Err(self.refused("UploadObject", archive.key, &a)),
        }
    }

    /// Cancels a resumable session (GCS answers 499); one already finished or gone is fine.
    pub(in crate::storage) async fn abort_upload(
        &self,
        key: &str,
        upload_id: &str,
    ) -> Result<(), StorageError> {
        let request = self
            .http
            .delete(self.session_url(key, upload_id))
            .timeout(http::REQUEST_TIMEOUT);
        match self.send("AbortUpload", request).await? {
            Sent::Ok(_) => Ok(()),
            Sent::Refused(a) if matches!(a.status, 499 | 404 | 410) => Ok(()),
            Sent::Refused(a) => Err(self.refused("AbortUpload", key, &a)),
        }
    }

    /// A V4 signed URL; a TTL past the seven days V4 allows is cut to them.
    pub(in crate::storage) async fn presign_get(
        &self,
        key: &str,
        ttl: Duration,
    ) -> Result<SignedUrl, StorageError> {
        let valid_for = ttl.min(MAX_URL_LIFETIME);
        let now = jiff::Timestamp::now();
        let url = match &self.auth {
            Auth::Key(k) => sign_v4(k, &self.url_endpoint, &self.bucket, key, now, valid_for),
            Auth::Token(identity) => {
                let signer = identity.signer.as_deref().unwrap_or_default();
                let unsigned = unsigned_v4(
                    signer,
                    &self.url_endpoint,
                    &self.bucket,
                    key,
                    now,
                    valid_for,
                );
                let signature = identity
                    .sign_blob(&self.http, unsigned.to_sign.as_bytes())
                    .await
                    .map_err(|f| self.token_failed("PresignGet", f))?;
                unsigned.signed(&signature)
            }
        };
        Ok(SignedUrl {
            url,
            lifetime: crate::storage::port::UrlLifetime {
                valid_for,
                cut_by_credentials: valid_for < ttl,
            },
        })
    }
}

/// A JSON body, at most 16 MiB of it (a page of 1,000 objects is far less).
async fn json<T: serde::de::DeserializeOwned>(
    errors: &Errors,
    operation: &'static str,
    response: reqwest::Response,
) -> Result<T, StorageError> {
    let failed = |message: String| StorageError::Failed {
        location: errors.location.clone(),
        operation,
        message,
    };
    let bytes = http::bounded_body(errors, operation, response, 16 << 20).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| failed(format!("the answer is not what GCS sends: {e}")))
}

/// GCS's error document: `{"error": {"code", "message", "errors": [{"reason"}]}}`.
fn read_error(status: u16, body: &str) -> Answer {
    #[derive(Deserialize, Default)]
    struct Doc {
        #[serde(default)]
        error: Inner,
    }
    #[derive(Deserialize, Default)]
    struct Inner {
        #[serde(default)]
        message: String,
        #[serde(default)]
        errors: Vec<Reason>,
    }
    #[derive(Deserialize, Default)]
    struct Reason {
        #[serde(default)]
        reason: String,
    }
    let doc: Doc = serde_json::from_str(body).unwrap_or_default();
    let code = doc
        .error
        .errors
        .first()
        .map(|r| r.reason.clone())
        .unwrap_or_default();
    let message = if doc.error.message.is_empty() {
        body.trim().chars().take(200).collect()
    } else {
        doc.error.message
    };
    Answer {
        status,
        code,
        message,
    }
}

/// A 404 names the bucket when the bucket is what is missing ("The specified bucket does not
/// exist."), the object otherwise ("No such object: ...").
fn refusal(answer: &Answer) -> Refusal {
    let message = answer.message.to_ascii_lowercase();
    match answer.status {
        401 | 403 => Refusal::Credentials,
        404 if message.contains("bucket") && !message.contains("object") => Refusal::BucketMissing,
        404 => Refusal::NotFound,
        _ => Refusal::Other,
    }
}

#[cfg(test)]
#[path = "gcs_tests.rs"]
mod tests;

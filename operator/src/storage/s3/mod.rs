//! The S3 backend (provider aws: AWS S3 and every S3-compatible server) on aws-sdk-s3,
//! configured the way Velero's AWS plugin reads the same BSL.

pub(in crate::storage) mod credentials;
pub(in crate::storage) mod profile;
mod replies;

use std::{
    path::Path,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use aws_credential_types::provider::{SharedCredentialsProvider, error::CredentialsError};
use aws_sdk_s3::{
    Client,
    config::{
        Region, RequestChecksumCalculation, StalledStreamProtectionConfig, http::HttpResponse,
        timeout::TimeoutConfig,
    },
    error::{ProvideErrorMetadata, SdkError},
    presigning::PresigningConfig,
    primitives::{ByteStream, Length},
    types::{CompletedMultipartUpload, CompletedPart, ServerSideEncryption},
};
use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use futures::{StreamExt, TryStreamExt};
use tokio_util::sync::CancellationToken;

use crate::proxy::{Proxies, Route};

use crate::storage::{
    location::StorageLocation, port::NewArchive, port::OpenUpload, port::PART_SIZE,
    port::SignedUrl, port::StorageError, port::StoredObject, port::crc_of_range, port::error_chain,
    port::is_certificate_error, port::save_capped, port::url_lifetime, s3::profile::AwsCredentials,
    transport::tls,
};
use credentials::{CredentialFailure, credentials_provider};
use replies::{BoundedReplies, MAX_REPLY_BYTES};

/// Parts sent at once: while one part is checksummed here, the store can be writing and
/// hashing the other. Two beat one and four beat two by nothing (BENCHMARKS.md, "Two upload
/// parts in flight").
const PARTS_IN_FLIGHT: usize = 2;

/// What a part's body reads from the archive file at once.
const PART_READ_PIECE: usize = 64 * 1024;

/// How long a body may move no bytes before its transfer fails (the SDK's stalled-stream
/// protection, both ways). The attempt timeout below bounds an upload's part but not a
/// download's body, which the SDK hands over once the headers came; this bounds that. Longer
/// than the SDK's 20 s default, so an S3-compatible server pausing under load (a MinIO
/// healing, a Ceph OSD failing over) is not cut; far shorter than the 120 s a whole part may
/// take, so a stall is named as one.
const STALLED_BODY_GRACE: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub(in crate::storage) struct S3Store {
    client: Client,
    /// Signs URLs for `publicUrl` when the BSL has one, else the same endpoint.
    presign_client: Client,
    location: StorageLocation,
    /// What the URLs are signed with: its expiry bounds theirs.
    credentials: SharedCredentialsProvider,
    /// How the endpoint is reached.
    route: Route,
    /// Whether parts carry a CRC32 (`checksumAlgorithm` not set to "").
    checksums: bool,
    /// The role assumed and how, for messages (none: static keys or the pod's own chain).
    role: Option<String>,
}

impl S3Store {
    pub(in crate::storage) async fn connect(
        location: &StorageLocation,
        creds: &AwsCredentials,
    ) -> Self {
        let region = location.config("region").unwrap_or("us-east-1").to_string();
        let provider = credentials_provider(creds, &region).await;
        // caCert / insecureSkipTLSVerify: one HTTP client for both S3 clients (the location was
        // validated when it was planned, so an error here is not expected).
        let http = match tls::http_client(location) {
            Ok(http) => http,
            Err(e) => {
                tracing::error!(error = %e, "TLS settings of the storage location ignored");
                None
            }
        };
        let checksums = location.config.get("checksumAlgorithm").map(String::as_str) != Some("");
        let build = |endpoint: Option<&str>| {
            let mut b = aws_sdk_s3::Config::builder()
                .behavior_version_latest()
                .region(Region::new(region.clone()))
                .credentials_provider(provider.clone())
                .force_path_style(location.flag("s3ForcePathStyle"))
                .timeout_config(
                    TimeoutConfig::builder()
                        .connect_timeout(Duration::from_secs(10))
                        .operation_attempt_timeout(Duration::from_secs(120))
                        .build(),
                )
                // A stalled upload ends as a dispatch failure (a timeout of the connector),
                // a stalled download as an error reading the body: both Unreachable, retried.
                .stalled_stream_protection(
                    StalledStreamProtectionConfig::enabled()
                        .grace_period(STALLED_BODY_GRACE)
                        .build(),
                )
                .interceptor(BoundedReplies {
                    max: MAX_REPLY_BYTES,
                });
            if let Some(e) = endpoint {
                b = b.endpoint_url(e);
            }
            if let Some(http) = &http {
                b = b.http_client(http.clone());
            }
            // Velero's convention: checksumAlgorithm "" turns checksums off, which many
            // S3-compatible servers need; unset keeps the SDK default.
            if !checksums {
                b = b.request_checksum_calculation(RequestChecksumCalculation::WhenRequired);
            }
            Client::from_conf(b.build())
        };
        let endpoint = location.config("s3Url");
        let aws = format!("https://s3.{region}.amazonaws.com");
        let route = Proxies::from_env().route(endpoint.unwrap_or(&aws));
        S3Store {
            route,
            client: build(endpoint),
            presign_client: build(location.config("publicUrl").or(endpoint)),
            location: location.clone(),
            credentials: provider,
            checksums,
            role: match creds {
                AwsCredentials::Role(role) => Some(role.summary.clone()),
                _ => None,
            },
        }
    }

    fn error<E: ProvideErrorMetadata + std::error::Error + 'static>(
        &self,
        operation: &'static str,
        key: &str,
        err: SdkError<E, HttpResponse>,
    ) -> StorageError {
        if let Some(failure) = credentials::find_in_chain::<CredentialsError>(&err) {
            return self.credentials_error(operation, failure);
        }
        let location = self.location.name.clone();
        match &err {
            // No retry makes an untrusted certificate trusted.
            SdkError::DispatchFailure(_) if is_certificate_error(&error_chain(&err)) => {
                StorageError::CertificateUntrusted {
                    location,
                    message: format!("{operation}: {}", error_chain(&err)),
                }
            }
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => StorageError::Unreachable {
                location,
                via: self.route.phrase(),
                message: format!("{operation}: {}", error_chain(&err)),
            },
            SdkError::ServiceError(service) => {
                let e = service.err();
                let code = e.code().unwrap_or_default();
                let status = service.raw().status().as_u16();
                // The status always, the code and message when the store sent them (an answer
                // to a HEAD has no body): never an empty ": ".
                let mut answer = format!("HTTP {status}");
                if !code.is_empty() {
                    answer += &format!(" {code}");
                }
                if let Some(text) = e.message().filter(|m| !m.is_empty()) {
                    answer += &format!(": {text}");
                }
                let message = format!("{operation}: {answer}");
                match code {
                    "InvalidAccessKeyId"
                    | "SignatureDoesNotMatch"
                    | "AccessDenied"
                    | "InvalidToken"
                    | "ExpiredToken" => StorageError::CredentialsInvalid { location, message },
                    "NoSuchBucket" => StorageError::BucketMissing {
                        location,
                        bucket: self.location.bucket.clone(),
                    },
                    "NoSuchUpload" => StorageError::UploadGone {
                        location,
                        key: key.to_string(),
                    },
                    "NoSuchKey" | "NotFound" => StorageError::NotFound {
                        location,
                        key: key.to_string(),
                    },
                    _ if status == 403 => StorageError::CredentialsInvalid { location, message },
                    _ if status == 404 => StorageError::NotFound {
                        location,
                        key: key.to_string(),
                    },
                    _ if service.raw().status().is_server_error() => StorageError::Unreachable {
                        location,
                        via: self.route.phrase(),
                        message,
                    },
                    // Its Display names the operation already.
                    _ => StorageError::Failed {
                        location,
                        operation,
                        message: answer,
                    },
                }
            }
            _ => StorageError::Failed {
                location,
                operation,
                message: error_chain(&err),
            },
        }
    }

    /// The SDK could not get the credential (STS refused the role, the token file cannot be
    /// read...): no retry makes it work, unless STS could not be reached or failed itself.
    fn credentials_error(
        &self,
        operation: &'static str,
        failure: &CredentialsError,
    ) -> StorageError {
        let location = self.location.name.clone();
        let what = self.role.as_deref().unwrap_or("the location's credential");
        let failed = CredentialFailure::of(failure);
        let message = format!("{operation}: getting {what}: {}", failed.detail);
        if failed.transient {
            return StorageError::Unreachable {
                location,
                via: String::new(),
                message,
            };
        }
        StorageError::CredentialsInvalid { location, message }
    }

    /// Streams an object to a local file; returns its size.
    /// Downloads at most `max_bytes + 1` bytes of the object, so the caller sees whether it
    /// is larger than it wants without the disk filling up; returns the bytes written.
    pub(in crate::storage) async fn download(
        &self,
        key: &str,
        to: &Path,
        max_bytes: u64,
    ) -> Result<u64, StorageError> {
        let resp = self
            .client
            .get_object()
            .bucket(&self.location.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.error("GetObject", key, e))?;
        let chunks = futures::stream::unfold(resp.body, |mut body| async move {
            match body.try_next().await {
                Ok(Some(chunk)) => Some((Ok(chunk), body)),
                Ok(None) => None,
                Err(e) => Some((Err(error_chain(&e)), body)),
            }
        });
        let what = format!("GetObject {key}");
        save_capped(chunks, to, max_bytes, &self.location.name, &what).await
    }

    /// Starts a multipart upload. Its id goes to status before any part is sent, so an upload
    /// cut short by a killed process is aborted by whoever collects the bundle next.
    /// `mark` (`name`, `value`) goes with the object as its metadata: the cluster that wrote
    /// it (see orphans.rs).
    pub(in crate::storage) async fn start_upload(
        &self,
        archive: &NewArchive<'_>,
    ) -> Result<String, StorageError> {
        let (key, mark) = (archive.key, archive.mark);
        let mut create = self
            .client
            .create_multipart_upload()
            .bucket(&self.location.bucket)
            .key(key)
            .content_type("application/gzip");
        if !mark.1.is_empty() {
            create = create.metadata(mark.0, mark.1);
        }
        if let Some(kms) = self.location.config("kmsKeyId") {
            create = create
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .ssekms_key_id(kms);
        } else if let Some(sse) = self.location.config("serverSideEncryption") {
            create = create.server_side_encryption(ServerSideEncryption::from(sse));
        }
        let upload = create
            .send()
            .await
            .map_err(|e| self.error("CreateMultipartUpload", key, e))?;
        Ok(upload.upload_id().unwrap_or_default().to_string())
    }

    /// Sends the file as the parts of `upload_id` and completes the upload, unless `cancel`
    /// fired before (the port aborts what fails).
    pub(in crate::storage) async fn send_upload(
        &self,
        archive: &NewArchive<'_>,
        upload_id: &str,
        bytes_per_second: Option<u64>,
        cancel: &CancellationToken,
        on_sent: &(dyn Fn(u64) + Sync),
    ) -> Result<(), StorageError> {
        self.upload_parts(
            archive.key,
            upload_id,
            archive.file,
            bytes_per_second,
            cancel,
            on_sent,
        )
        .await
    }

    /// Aborts a multipart upload; one already gone (completed or aborted) is fine.
    pub(in crate::storage) async fn abort_upload(
        &self,
        key: &str,
        upload_id: &str,
    ) -> Result<(), StorageError> {
        match self
            .client
            .abort_multipart_upload()
            .bucket(&self.location.bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match self.error("AbortMultipartUpload", key, e) {
                StorageError::NotFound { .. } => Ok(()),
                other => Err(other),
            },
        }
    }

    async fn upload_parts(
        &self,
        key: &str,
        upload_id: &str,
        from: &Path,
        bytes_per_second: Option<u64>,
        cancel: &CancellationToken,
        on_sent: &(dyn Fn(u64) + Sync),
    ) -> Result<(), StorageError> {
        let size = tokio::fs::metadata(from).await?.len();
        // At least one part, empty for an empty file.
        let count = size.div_ceil(PART_SIZE as u64).max(1);
        let started = tokio::time::Instant::now();
        let sent = AtomicU64::new(0);
        let mut parts: Vec<CompletedPart> = futures::stream::iter(0..count)
            .map(|index| {
                let sent = &sent;
                async move {
                    let offset = index * PART_SIZE as u64;
                    let length = (size - offset).min(PART_SIZE as u64);
                    if let Some(rate) = bytes_per_second.filter(|r| *r > 0) {
                        // A part leaves no earlier than the rate allows for everything up to
                        // its end.
                        let due = Duration::from_secs_f64((offset + length) as f64 / rate as f64);
                        tokio::time::sleep_until(started + due).await;
                    }
                    let number = index as i32 + 1;
                    let part = self
                        .client
                        .upload_part()
                        .bucket(&self.location.bucket)
                        .key(key)
                        .upload_id(upload_id)
                        .part_number(number)
                        .set_checksum_crc32(self.part_checksum(from, offset, length).await?)
                        .body(part_body(from, offset, length).await?)
                        .send()
                        .await
                        .map_err(|e| self.error("UploadPart", key, e))?;
                    let total = sent.fetch_add(length, Ordering::Relaxed) + length;
                    on_sent(total);
                    Ok::<_, StorageError>(
                        CompletedPart::builder()
                            .part_number(number)
                            .set_e_tag(part.e_tag().map(str::to_string))
                            .build(),
                    )
                }
            })
            .buffer_unordered(PARTS_IN_FLIGHT)
            .try_collect()
            .await?;
        parts.sort_by_key(|p| p.part_number());
        // Checked right before: completing after the term ended (SIGTERM, the lease lost)
        // would publish an archive while the next leader is making it again.
        if cancel.is_cancelled() {
            return Err(StorageError::Cancelled);
        }
        self.client
            .complete_multipart_upload()
            .bucket(&self.location.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| self.error("CompleteMultipartUpload", key, e))?;
        Ok(())
    }

    /// A part's CRC32 (base64, as S3 wants it), or none with checksums off. Computed here
    /// rather than by the SDK, which for a streamed body sends it as an aws-chunked trailer
    /// that S3-compatible servers do not all take; as a header it goes the way an in-memory
    /// part's does.
    async fn part_checksum(
        &self,
        from: &Path,
        offset: u64,
        length: u64,
    ) -> std::io::Result<Option<String>> {
        if !self.checksums {
            return Ok(None);
        }
        Ok(Some(part_crc32(from, offset, length).await?))
    }

    /// A GET URL valid for `ttl`, or until the credentials it is signed with expire if that
    /// comes first; through the BSL's publicUrl when it has one.
    pub(in crate::storage) async fn presign_get(
        &self,
        key: &str,
        ttl: Duration,
    ) -> Result<SignedUrl, StorageError> {
        use aws_credential_types::provider::ProvideCredentials;
        let failed = |message: String| StorageError::Failed {
            location: self.location.name.clone(),
            operation: "Presign",
            message,
        };
        // The URL is signed with exactly these credentials, so their expiry bounds it (a
        // role's keys from the client's cache could be older than these).
        let credentials = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|e| self.credentials_error("Presign", &e))?;
        let lifetime = url_lifetime(ttl, credentials.expiry(), std::time::SystemTime::now());
        let config =
            PresigningConfig::expires_in(lifetime.valid_for).map_err(|e| failed(e.to_string()))?;
        let req = self
            .presign_client
            .get_object()
            .bucket(&self.location.bucket)
            .key(key)
            .customize()
            .config_override(
                aws_sdk_s3::config::Builder::default()
                    .credentials_provider(SharedCredentialsProvider::new(credentials)),
            )
            .presigned(config)
            .await
            .map_err(|e| self.error("Presign", key, e))?;
        Ok(SignedUrl {
            url: req.uri().to_string(),
            lifetime,
        })
    }

    /// Deletes an object; one that is already gone is fine.
    pub(in crate::storage) async fn delete(&self, key: &str) -> Result<(), StorageError> {
        match self
            .client
            .delete_object()
            .bucket(&self.location.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match self.error("DeleteObject", key, e) {
                StorageError::NotFound { .. } => Ok(()),
                other => Err(other),
            },
        }
    }

    /// Objects under `prefix`, page by page, at most `max` of them: their keys and when they
    /// were last written (seconds since the epoch, 0 when the store does not say).
    pub(in crate::storage) async fn list(
        &self,
        prefix: &str,
        max: usize,
    ) -> Result<Vec<StoredObject>, StorageError> {
        let mut objects = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.location.bucket)
                .prefix(prefix)
                .max_keys(1000)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| self.error("ListObjectsV2", prefix, e))?;
            for object in page.contents() {
                if let Some(key) = object.key() {
                    objects.push(StoredObject {
                        key: key.to_string(),
                        written: object.last_modified().map_or(0, |t| t.secs()),
                    });
                }
            }
            token = page
                .next_continuation_token()
                .filter(|_| page.is_truncated() == Some(true))
                .map(str::to_string);
            if token.is_none() || objects.len() >= max {
                objects.truncate(max);
                return Ok(objects);
            }
        }
    }

    /// Multipart uploads begun under `prefix` and not finished, at most `max`: their keys, ids
    /// and when they began. `None` when the store does not list them (some S3-compatible
    /// servers do not).
    pub(in crate::storage) async fn list_uploads(
        &self,
        prefix: &str,
        max: usize,
    ) -> Result<Option<Vec<OpenUpload>>, StorageError> {
        let mut uploads = Vec::new();
        let (mut key_marker, mut id_marker): (Option<String>, Option<String>) = (None, None);
        loop {
            let page = match self
                .client
                .list_multipart_uploads()
                .bucket(&self.location.bucket)
                .prefix(prefix)
                .set_key_marker(key_marker.take())
                .set_upload_id_marker(id_marker.take())
                .send()
                .await
            {
                Ok(page) => page,
                Err(e) if matches!(e.code(), Some("NotImplemented" | "MethodNotAllowed")) => {
                    return Ok(None);
                }
                Err(e) => return Err(self.error("ListMultipartUploads", prefix, e)),
            };
            for upload in page.uploads() {
                if let (Some(key), Some(id)) = (upload.key(), upload.upload_id()) {
                    uploads.push(OpenUpload {
                        key: key.to_string(),
                        id: id.to_string(),
                        begun: upload.initiated().map_or(0, |t| t.secs()),
                    });
                }
            }
            if page.is_truncated() != Some(true) || uploads.len() >= max {
                uploads.truncate(max);
                return Ok(Some(uploads));
            }
            key_marker = page.next_key_marker().map(str::to_string);
            id_marker = page.next_upload_id_marker().map(str::to_string);
            if key_marker.is_none() {
                return Ok(Some(uploads));
            }
        }
    }

    /// An object's user metadata (`x-amz-meta-*`, without the prefix); None when it is gone.
    pub(in crate::storage) async fn metadata(
        &self,
        key: &str,
    ) -> Result<Option<std::collections::HashMap<String, String>>, StorageError> {
        match self
            .client
            .head_object()
            .bucket(&self.location.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(head) => Ok(Some(head.metadata().cloned().unwrap_or_default())),
            Err(e) => match self.error("HeadObject", key, e) {
                StorageError::NotFound { .. } => Ok(None),
                other => Err(other),
            },
        }
    }
}

/// The CRC32 of `length` bytes of `from` at `offset`, in base64 of its big-endian bytes as
/// the `x-amz-checksum-crc32` header carries it.
async fn part_crc32(from: &Path, offset: u64, length: u64) -> std::io::Result<String> {
    let crc = crc_of_range(from, offset, length, crc_fast::CrcAlgorithm::Crc32IsoHdlc).await?;
    Ok(BASE64.encode((crc as u32).to_be_bytes()))
}

/// `length` bytes of `from` at `offset` as a body read from the file while it is sent (and
/// again if it is retried), not held in memory.
async fn part_body(from: &Path, offset: u64, length: u64) -> std::io::Result<ByteStream> {
    ByteStream::read_from()
        .path(from)
        .offset(offset)
        .length(Length::Exact(length))
        .buffer_size(PART_READ_PIECE)
        .build()
        .await
        .map_err(std::io::Error::other)
}

#[cfg(test)]
#[path = "s3_tests.rs"]
mod tests;

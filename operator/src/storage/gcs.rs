//! Google Cloud Storage through its JSON API, as velero-plugin-for-gcp reads the same BSL
//! (`bucket`, `prefix`; config `storeEndpoint`, `universeDomain`, `kmsKeyName`), on the HTTP
//! client in http.rs. A thin client of our own rather than a crate: `object_store` uploads
//! through the XML API (which the emulator we prove against does not speak) and the official
//! `google-cloud-storage` crate is ~190 crates and needs a newer rustc; what we need is six
//! requests, a resumable upload and V4 URL signing.
//!
//! Authentication: a service-account key, as a self-signed JWT (Google's "service account
//! authorization without OAuth": no token endpoint to reach); without a key, a token of the
//! metadata server or of workload identity federation (gcs_identity.rs). `STORAGE_EMULATOR_HOST`
//! in the operator's environment sends every request to that host without authentication, as
//! Google's own clients do (and the plugin, through them).

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use aws_lc_rs::{rand::SystemRandom, signature};
use base64::Engine;
use percent_encoding::{AsciiSet, utf8_percent_encode};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::{
    NewArchive, OpenUpload, ReadError, SignedUrl, StorageError, StoredObject, TrustedHosts,
    crc_of_range,
    gcs_identity::{self, TokenIdentity},
    http::{self, Answer, Errors, Refusal},
    location::StorageLocation,
    trust,
};

/// Google's public cloud, where a BSL and a key name no other.
const DEFAULT_UNIVERSE: &str = "googleapis.com";

/// What `urllib.parse.quote(safe="~")` leaves as it is, as Google's signers encode a query.
const QUERY: &AsciiSet = super::http::UNRESERVED;
/// An object name in a signed URL's path: `/` kept too.
const PATH: &AsciiSet = super::http::UNRESERVED_AND_SLASH;
/// V4 signed URLs live at most seven days.
const MAX_URL_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
const SCOPE: &str = "https://www.googleapis.com/auth/devstorage.read_write";

/// The credential of a GCS location.
#[derive(Clone)]
pub(crate) struct GcsCredentials {
    auth: Auth,
}

#[derive(Clone)]
enum Auth {
    /// A service-account key: it signs the requests' JWTs and the read URLs.
    Key(Arc<ServiceAccountKey>),
    /// A token from the metadata server or a federation; IAM signs the read URLs.
    Token(Arc<TokenIdentity>),
}

struct ServiceAccountKey {
    client_email: String,
    private_key_id: String,
    pair: signature::RsaKeyPair,
}

impl std::fmt::Debug for GcsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.auth {
            Auth::Key(key) => f
                .debug_struct("GcsCredentials")
                .field("client_email", &key.client_email)
                .finish_non_exhaustive(),
            Auth::Token(identity) => identity.fmt(f),
        }
    }
}

#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    client_email: String,
    #[serde(default)]
    private_key_id: String,
    #[serde(default)]
    private_key: String,
    /// Where the key is valid; Google's libraries refuse a client of another universe.
    #[serde(default)]
    universe_domain: Option<String>,
}

impl GcsCredentials {
    /// The Secret's text as the plugin reads `credentialsFile` (a service-account key or an
    /// `external_account` file); no Secret means the metadata server, as Google's default
    /// credentials find it.
    pub(super) fn read(
        location: &StorageLocation,
        contents: Option<&str>,
        trusted: &TrustedHosts,
    ) -> Result<Self, ReadError> {
        let token = |identity: TokenIdentity| GcsCredentials {
            auth: Auth::Token(Arc::new(identity)),
        };
        let Some(contents) = contents else {
            check_endpoints(location, None, trusted)?;
            return gcs_identity::metadata_server(location, SCOPE, None).map(token);
        };
        // serde_json's error names a line and column, never the text.
        let file: KeyFile = serde_json::from_str(contents).map_err(|e| {
            ReadError::Unusable(format!("it is not a JSON service-account key ({e})"))
        })?;
        match file.kind.as_str() {
            "service_account" => {}
            "external_account" => {
                check_endpoints(location, file.universe_domain.as_deref(), trusted)?;
                let files = gcs_identity::token_files();
                return gcs_identity::external_account(location, contents, SCOPE, trusted, &files)
                    .map(token);
            }
            "authorized_user" => {
                check_endpoints(location, None, trusted)?;
                return gcs_identity::authorized_user(
                    location,
                    contents,
                    SCOPE,
                    gcs_identity::GOOGLE_TOKEN_ENDPOINT,
                )
                .map(token);
            }
            "impersonated_service_account" => {
                check_endpoints(location, None, trusted)?;
                return gcs_identity::impersonated_account_file(
                    location,
                    contents,
                    SCOPE,
                    trusted,
                    gcs_identity::GOOGLE_TOKEN_ENDPOINT,
                )
                .map(token);
            }
            other => {
                return Err(ReadError::Unsupported {
                    what: format!("credential type {:?}", http::printable(other, 40)),
                    instead: "put a service-account key (JSON, type service_account), an external_account, authorized_user or impersonated_service_account file in the Secret named by the BSL's spec.credential, or use no Secret on GKE (Workload Identity)".into(),
                });
            }
        }
        if file.client_email.is_empty() {
            return Err(ReadError::Unusable("the key has no client_email".into()));
        }
        check_endpoints(location, file.universe_domain.as_deref(), trusted)?;
        let pair = rsa_key(&file.private_key).map_err(ReadError::Unusable)?;
        Ok(GcsCredentials {
            auth: Auth::Key(Arc::new(ServiceAccountKey {
                client_email: file.client_email,
                private_key_id: file.private_key_id,
                pair,
            })),
        })
    }
}

/// The token a key signs is good for an hour on any host: the location's `universeDomain` and
/// `storeEndpoint` must name the key's own universe's storage host, or a trusted one
/// (trust.rs). The emulator (STORAGE_EMULATOR_HOST, the operator's own setting) gets no token.
fn check_endpoints(
    location: &StorageLocation,
    key_universe: Option<&str>,
    trusted: &TrustedHosts,
) -> Result<(), ReadError> {
    let own = format!(
        "storage.{}",
        key_universe
            .filter(|u| !u.is_empty())
            .unwrap_or(DEFAULT_UNIVERSE)
    );
    if let Some(universe) = location.config("universeDomain") {
        let url = format!("https://storage.{universe}");
        trust::check_endpoint("universeDomain", &url, &[&own], trusted)?;
    }
    if let Some(endpoint) = location.config("storeEndpoint") {
        trust::check_endpoint("storeEndpoint", endpoint, &[&own], trusted)?;
    }
    Ok(())
}

/// The key pair of a `private_key` (PKCS#8 PEM, as Google issues them).
fn rsa_key(pem: &str) -> Result<signature::RsaKeyPair, String> {
    use rustls::pki_types::{PrivatePkcs8KeyDer, pem::PemObject};
    let der = PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|_| "private_key is not a PKCS#8 PEM key".to_string())?;
    signature::RsaKeyPair::from_pkcs8(der.secret_pkcs8_der())
        .map_err(|e| format!("private_key is not a usable RSA key ({e})"))
}

impl ServiceAccountKey {
    fn sign(&self, message: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                message,
                &mut out,
            )
            .expect("an RSA key pair signs into a buffer of its modulus' length");
        out
    }

    /// A self-signed JWT for the Storage scope, valid an hour from `now`.
    fn bearer(&self, now: jiff::Timestamp) -> String {
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": self.private_key_id});
        let iat = now.as_second();
        let claims = serde_json::json!({
            "iss": self.client_email, "sub": self.client_email, "scope": SCOPE,
            "iat": iat, "exp": iat + 3600,
        });
        let signed = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let signature = b64(&self.sign(signed.as_bytes()));
        format!("{signed}.{signature}")
    }
}

/// A V4 GET URL before its signature: the URL the signature is appended to, and what is
/// signed.
struct UnsignedV4 {
    url: String,
    to_sign: String,
}

impl UnsignedV4 {
    fn signed(self, signature: &[u8]) -> String {
        format!("{}&X-Goog-Signature={}", self.url, hex::encode(signature))
    }
}

/// A V4 signed GET URL signed with a key.
fn sign_v4(
    key: &ServiceAccountKey,
    endpoint: &str,
    bucket: &str,
    object: &str,
    at: jiff::Timestamp,
    expires: Duration,
) -> String {
    let unsigned = unsigned_v4(&key.client_email, endpoint, bucket, object, at, expires);
    let signature = key.sign(unsigned.to_sign.as_bytes());
    unsigned.signed(&signature)
}

/// A V4 GET URL (GOOG4-RSA-SHA256, host the only signed header) as Google's client libraries
/// make it, for `signer` to sign: `endpoint` is scheme and host
/// (`https://storage.googleapis.com`).
fn unsigned_v4(
    signer: &str,
    endpoint: &str,
    bucket: &str,
    object: &str,
    at: jiff::Timestamp,
    expires: Duration,
) -> UnsignedV4 {
    use sha2::{Digest, Sha256};
    let stamp = at.strftime("%Y%m%dT%H%M%SZ").to_string();
    let scope = format!("{}/auto/storage/goog4_request", &stamp[..8]);
    let host = endpoint.split_once("://").map_or(endpoint, |(_, h)| h);
    let resource = format!("/{bucket}/{}", utf8_percent_encode(object, PATH));
    let mut query = [
        ("X-Goog-Algorithm", "GOOG4-RSA-SHA256".to_string()),
        ("X-Goog-Credential", format!("{signer}/{scope}")),
        ("X-Goog-Date", stamp.clone()),
        ("X-Goog-Expires", expires.as_secs().to_string()),
        ("X-Goog-SignedHeaders", "host".to_string()),
    ]
    .iter()
    .map(|(k, v)| {
        format!(
            "{}={}",
            utf8_percent_encode(k, QUERY),
            utf8_percent_encode(v, QUERY)
        )
    })
    .collect::<Vec<_>>();
    query.sort();
    let query = query.join("&");
    let canonical = format!("GET\n{resource}\n{query}\nhost:{host}\n\nhost\nUNSIGNED-PAYLOAD");
    let to_sign = format!(
        "GOOG4-RSA-SHA256\n{stamp}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    UnsignedV4 {
        url: format!("{endpoint}{resource}?{query}"),
        to_sign,
    }
}

#[derive(Clone)]
pub(super) struct GcsStore {
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
    pub(super) fn connect(location: &StorageLocation, creds: &GcsCredentials) -> Self {
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
            reqwest::Client::new()
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
        failure: gcs_identity::TokenFailure,
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

    pub(super) async fn download(
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

    pub(super) async fn metadata(
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

    pub(super) async fn delete(&self, key: &str) -> Result<(), StorageError> {
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

    pub(super) async fn list(
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
    pub(super) async fn list_uploads(
        &self,
        _prefix: &str,
        _max: usize,
    ) -> Result<Option<Vec<OpenUpload>>, StorageError> {
        Ok(None)
    }

    /// Opens a resumable upload session with the object's metadata, mark and CRC32C: GCS
    /// checks the whole object against it when the last chunk arrives.
    pub(super) async fn start_upload(
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
    pub(super) async fn send_upload(
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
    pub(super) async fn abort_upload(
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
    pub(super) async fn presign_get(
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
            lifetime: super::UrlLifetime {
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

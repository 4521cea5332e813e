//! The HTTP side shared by the Azure and GCS backends: one reqwest client per location (the
//! HTTP stack the operator already ships) with the TLS and timeouts the S3 client has, and
//! the mapping of an answer to a `StorageError`, so both backends fail alike.

use std::{path::Path, sync::Arc, time::Duration};

use futures::TryStreamExt;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};

pub(in crate::storage) use crate::proxy::Route;

use crate::storage::{
    location::{LocationError, StorageLocation, ca_pem},
    port::StorageError,
    port::error_chain,
    port::is_certificate_error,
    port::save_capped,
    transport::tls::AcceptAnyCertificate,
};

/// How long a body may move no bytes before its transfer fails (as the S3 client's
/// stalled-stream grace).
/// RFC 3986's unreserved characters (letters, digits, `-._~`) as they are, every other byte
/// percent-encoded: what Python's `urllib.parse.quote(safe="~")` writes, and so Google's and
/// Microsoft's signers and form encoders.
pub(in crate::storage) const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
/// The same, `/` kept too: an object's name in a URL's path.
pub(in crate::storage) const UNRESERVED_AND_SLASH: &AsciiSet = &UNRESERVED.remove(b'/');

const STALLED_BODY_GRACE: Duration = Duration::from_secs(30);
/// A request that is not a download: a part, a listing, a commit.
pub(in crate::storage) const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// The client for a location: the system's roots plus the BSL's caCert, or no verification
/// with insecureSkipTLSVerify (as Velero's plugins read those settings).
pub(in crate::storage) fn client(
    location: &StorageLocation,
) -> Result<reqwest::Client, LocationError> {
    client_with(location, location.flag("insecureSkipTLSVerify"))
}

/// A client that verifies every certificate whatever `insecureSkipTLSVerify` says (the
/// system's roots and the BSL's caCert): for the requests that carry a secret of their own,
/// such as a client secret sent for a token.
pub(in crate::storage) fn verified_client(
    location: &StorageLocation,
) -> Result<reqwest::Client, LocationError> {
    client_with(location, false)
}

fn client_with(
    location: &StorageLocation,
    accept_any_certificate: bool,
) -> Result<reqwest::Client, LocationError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("aws-lc-rs supports the default protocol versions");
    let config = if accept_any_certificate {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate::new(provider)))
            .with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        // Certificates the system has that rustls cannot use are passed over, as the AWS
        // SDK's client does.
        let (_added, _ignored) =
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        if let Some(pem) = ca_pem(location)? {
            use rustls::pki_types::{CertificateDer, pem::PemObject};
            for cert in CertificateDer::pem_slice_iter(&pem).flatten() {
                roots.add(cert).map_err(|e| {
                    LocationError::InvalidCaCert(location.name.clone(), e.to_string())
                })?;
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(STALLED_BODY_GRACE)
        // A redirect would carry a request's token, signature or secret body (a 307 re-posts
        // it) to a host no check has seen; no store or token service of ours redirects.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| LocationError::InvalidCaCert(location.name.clone(), error_chain(&e)))
}

/// The client of a location whose TLS settings could not be read (logged by the caller): the
/// system's roots only, and no redirects either.
pub(in crate::storage) fn fallback_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(STALLED_BODY_GRACE)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}

/// What a store's error answer means, as each backend reads its error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::storage) enum Refusal {
    Credentials,
    BucketMissing,
    NotFound,
    /// The upload's parts are gone (aborted meanwhile).
    UploadGone,
    /// Anything else: classed by its status alone.
    Other,
}

/// An error answer: its status, the store's code and message when it sent them.
#[derive(Debug, Clone, Default)]
pub(in crate::storage) struct Answer {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl Answer {
    /// "HTTP 403 AuthenticationFailed: message", without empty parts.
    fn describe(&self) -> String {
        let mut text = format!("HTTP {}", self.status);
        if !self.code.is_empty() {
            text += &format!(" {}", self.code);
        }
        if !self.message.is_empty() {
            text += &format!(": {}", self.message);
        }
        text
    }
}

/// The errors of one location, named as its operations fail.
#[derive(Clone, Debug)]
pub(in crate::storage) struct Errors {
    pub location: String,
    pub bucket: String,
    /// How the location's endpoint is reached.
    pub route: Route,
}

impl Errors {
    /// A request that got no answer: no connection, a timeout, a body cut off, a certificate.
    pub(in crate::storage) fn transport(
        &self,
        operation: &str,
        err: &reqwest::Error,
    ) -> StorageError {
        let chain = redact_url(&error_chain(err));
        let message = format!("{operation}: {chain}");
        if is_certificate_error(&chain) {
            StorageError::CertificateUntrusted {
                location: self.location.clone(),
                message,
            }
        } else {
            StorageError::Unreachable {
                location: self.location.clone(),
                via: self.route.phrase(),
                message,
            }
        }
    }

    /// An error answer, classed by `refusal` (the backend's reading of its code) and then by
    /// its status.
    pub(in crate::storage) fn answer(
        &self,
        operation: &'static str,
        key: &str,
        answer: &Answer,
        refusal: Refusal,
    ) -> StorageError {
        let location = self.location.clone();
        let message = format!("{operation}: {}", answer.describe());
        match refusal {
            Refusal::Credentials => StorageError::CredentialsInvalid { location, message },
            Refusal::BucketMissing => StorageError::BucketMissing {
                location,
                bucket: self.bucket.clone(),
            },
            Refusal::NotFound => StorageError::NotFound {
                location,
                key: key.to_string(),
            },
            Refusal::UploadGone => StorageError::UploadGone {
                location,
                key: key.to_string(),
            },
            Refusal::Other => match answer.status {
                401 | 403 => StorageError::CredentialsInvalid { location, message },
                404 => StorageError::NotFound {
                    location,
                    key: key.to_string(),
                },
                // Throttled or failing: the store may come back.
                408 | 429 | 500..=599 => StorageError::Unreachable {
                    location,
                    via: self.route.phrase(),
                    message,
                },
                _ => StorageError::Failed {
                    location,
                    operation,
                    message: answer.describe(),
                },
            },
        }
    }
}

/// Error text never carries a URL's query: it may hold a signature or a SAS token.
fn redact_url(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(q) = rest.find('?') {
        out.push_str(&rest[..q]);
        out.push_str("?<query redacted>");
        rest = &rest[q..];
        let end = rest
            .find(|c: char| c.is_whitespace() || c == ')' || c == '"')
            .unwrap_or(rest.len());
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Streams a response body into `to`, at most `max_bytes + 1` bytes; returns what it wrote.
/// An error reading the body is the store's (retried), one writing the file the disk's.
pub(in crate::storage) async fn save_body(
    errors: &Errors,
    operation: &str,
    response: reqwest::Response,
    to: &Path,
    max_bytes: u64,
) -> Result<u64, StorageError> {
    let chunks = response
        .bytes_stream()
        .map_err(|e| redact_url(&error_chain(&e)));
    save_capped(chunks, to, max_bytes, &errors.location, operation).await
}

/// Bytes of a file read per piece of a streamed body.
const PIECE: usize = 1 << 20;

/// A range of a spooled file to send as a request body, and how to send it.
pub(in crate::storage) struct Feed<'a> {
    pub file: &'a Path,
    pub offset: u64,
    pub length: u64,
    /// When the whole upload started: pieces are paced by their end in the file.
    pub started: tokio::time::Instant,
    pub bytes_per_second: Option<u64>,
    pub cancel: &'a tokio_util::sync::CancellationToken,
    /// Hears the bytes of each piece handed to the body.
    pub on_bytes: &'a (dyn Fn(u64) + Sync),
}

/// A request body streamed from `feed`'s range of the file, and the future that feeds it
/// (run it beside the request): it reads the file a piece at a time, so memory stays bounded
/// whatever the range's size; it paces the pieces to `bytes_per_second`; and when `cancel`
/// fires, or the store takes no bytes for the stall grace, it fails the body, so the request
/// ends without the store completing anything.
pub(in crate::storage) fn streamed<'a>(
    feed: Feed<'a>,
    errors: &'a Errors,
) -> (
    reqwest::Body,
    impl std::future::Future<Output = Result<(), StorageError>> + 'a,
) {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    type Piece = Result<Vec<u8>, std::io::Error>;
    let (tx, rx) = tokio::sync::mpsc::channel::<Piece>(2);
    let pieces = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|piece| (piece, rx))
    });
    let body = reqwest::Body::wrap_stream(pieces);
    let feeder = async move {
        let mut file = tokio::fs::File::open(feed.file).await?;
        file.seek(std::io::SeekFrom::Start(feed.offset)).await?;
        let mut fed = 0u64;
        while fed < feed.length {
            let n = (feed.length - fed).min(PIECE as u64);
            if let Some(rate) = feed.bytes_per_second.filter(|r| *r > 0) {
                let end = feed.offset + fed + n;
                let due = Duration::from_secs_f64(end as f64 / rate as f64);
                tokio::time::sleep_until(feed.started + due).await;
            }
            if feed.cancel.is_cancelled() {
                let _ = tx.send(Err(std::io::Error::other("cancelled"))).await;
                return Err(StorageError::Cancelled);
            }
            let mut piece = vec![0u8; n as usize];
            file.read_exact(&mut piece).await?;
            match tokio::time::timeout(STALLED_BODY_GRACE, tx.send(Ok(piece))).await {
                Ok(Ok(())) => {}
                // The request ended (refused, cut): its own result says how.
                Ok(Err(_)) => return Ok(()),
                Err(_) => {
                    return Err(StorageError::Unreachable {
                        location: errors.location.clone(),
                        via: errors.route.phrase(),
                        message: format!(
                            "the store took no bytes of the upload for {}s",
                            STALLED_BODY_GRACE.as_secs()
                        ),
                    });
                }
            }
            fed += n;
            (feed.on_bytes)(n);
        }
        Ok(())
    };
    (body, feeder)
}

/// A listing's or block list's body: at most `max` bytes of it, counted as they arrive, so a
/// store that sends no Content-Length (chunked) and never ends fails here instead of filling
/// the memory.
pub(in crate::storage) async fn bounded_body(
    errors: &Errors,
    operation: &'static str,
    response: reqwest::Response,
    max: usize,
) -> Result<Vec<u8>, StorageError> {
    let too_big = || StorageError::Failed {
        location: errors.location.clone(),
        operation,
        message: format!("the answer is larger than {} MiB", max >> 20),
    };
    if response.content_length().is_some_and(|n| n > max as u64) {
        return Err(too_big());
    }
    let mut body = Vec::new();
    let mut chunks = response.bytes_stream();
    while let Some(chunk) = chunks
        .try_next()
        .await
        .map_err(|e| errors.transport(operation, &e))?
    {
        if body.len() + chunk.len() > max {
            return Err(too_big());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The body of an error answer, at most 64 KiB of it: enough for any store's error document.
pub(in crate::storage) async fn error_body(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let mut text = Vec::new();
    let mut body = response.bytes_stream();
    while let Ok(Some(chunk)) = body.try_next().await {
        text.extend_from_slice(&chunk);
        if text.len() > 64 * 1024 {
            text.truncate(64 * 1024);
            break;
        }
    }
    (status, String::from_utf8_lossy(&text).into_owned())
}

/// A body's first `limit` bytes: what is read of a small answer a hostile server may make
/// large.
pub(in crate::storage) async fn read_at_most(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, reqwest::Error> {
    let mut out = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = limit.saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}

/// `HTTP <status> <code>: <message>` of a JSON error document `{"error": {<code_key>,
/// "message"}}` (Google's IAM names its code `status`, Resource Manager `code`), each part
/// printable and cut; the parts the body lacks are left out.
pub(in crate::storage) fn json_refusal(status: u16, body: &[u8], code_key: &str) -> String {
    let doc: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let text = |key: &str| doc["error"][key].as_str().unwrap_or_default().to_string();
    let (code, message) = (text(code_key), text("message"));
    let mut out = format!("HTTP {status}");
    if !code.is_empty() {
        out += &format!(" {}", printable(&code, 80));
    }
    if !message.is_empty() {
        out += &format!(": {}", printable(&message, 300));
    }
    out
}

/// At most `limit` characters of `text` from a server or a Secret, control characters dropped:
/// what a message may quote of something hostile.
pub(in crate::storage) fn printable(text: &str, limit: usize) -> String {
    let mut out: String = text
        .chars()
        .filter(|c| !c.is_control())
        .take(limit)
        .collect();
    if text
        .chars()
        .filter(|c| !c.is_control())
        .nth(limit)
        .is_some()
    {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_text_loses_every_query() {
        assert_eq!(
            redact_url(
                "error sending request for url (https://a.blob.core.windows.net/c/k?sv=1&sig=SECRET): connection refused"
            ),
            "error sending request for url (https://a.blob.core.windows.net/c/k?<query redacted>): connection refused"
        );
        assert_eq!(redact_url("no url here"), "no url here");
        assert_eq!(
            redact_url("a?b c?d"),
            "a?<query redacted> c?<query redacted>"
        );
    }

    /// A 307 would have the client post the same secret body to the host it names: every
    /// client of a location (verified, unverified, the fallback) answers with the 307 itself.
    #[tokio::test]
    async fn no_client_follows_a_redirect() {
        use std::sync::{
            Arc,
            atomic::{AtomicUsize, Ordering},
        };
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let elsewhere = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let elsewhere_addr = elsewhere.local_addr().unwrap();
        let reached = Arc::new(AtomicUsize::new(0));
        let counted = reached.clone();
        tokio::spawn(async move {
            while elsewhere.accept().await.is_ok() {
                counted.fetch_add(1, Ordering::SeqCst);
            }
        });
        let redirecting = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/token", redirecting.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = redirecting.accept().await {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let answer = format!(
                    "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://{elsewhere_addr}/steal\r\nContent-Length: 0\r\n\r\n"
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            }
        });
        let location = StorageLocation::default();
        let clients = [
            client(&location).unwrap(),
            verified_client(&location).unwrap(),
            client_with(&location, true).unwrap(),
            fallback_client(),
        ];
        for http in clients {
            let answer = http
                .post(&url)
                .body("client_secret=s3cr3t")
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status().as_u16(), 307);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(reached.load(Ordering::SeqCst), 0, "a redirect was followed");
    }

    /// A server of the test's own that answers every request with a chunked body that never
    /// ends; its URL.
    async fn endless_chunked_server() -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut request = [0u8; 4096];
                    let _ = tcp.read(&mut request).await;
                    let head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
                    if tcp.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    let chunk = format!("10000\r\n{}\r\n", "x".repeat(0x10000));
                    while tcp.write_all(chunk.as_bytes()).await.is_ok() {}
                });
            }
        });
        url
    }

    #[tokio::test]
    async fn an_endless_chunked_listing_fails_at_its_bound() {
        // reqwest's default client wants a process-wide provider (the operator's clients bring
        // their own).
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let url = endless_chunked_server().await;
        let errors = Errors {
            location: "l".into(),
            bucket: "b".into(),
            route: Route::Direct,
        };
        let response = reqwest::get(&url).await.unwrap();
        assert_eq!(response.content_length(), None);
        let e = tokio::time::timeout(
            Duration::from_secs(30),
            bounded_body(&errors, "ListBlobs", response, 4 << 20),
        )
        .await
        .expect("the listing was read on past its bound")
        .unwrap_err();
        assert!(e.to_string().contains("larger than 4 MiB"), "{e}");
    }

    #[test]
    fn answers_are_classed_by_the_backend_then_by_status() {
        let errors = Errors {
            location: "l".into(),
            bucket: "b".into(),
            route: Route::Direct,
        };
        let answer = |status| Answer {
            status,
            code: "X".into(),
            message: "m".into(),
        };
        let class = |status, refusal| errors.answer("Get", "k", &answer(status), refusal);
        assert!(matches!(
            class(404, Refusal::BucketMissing),
            StorageError::BucketMissing { .. }
        ));
        assert!(matches!(
            class(400, Refusal::Credentials),
            StorageError::CredentialsInvalid { .. }
        ));
        assert!(matches!(
            class(401, Refusal::Other),
            StorageError::CredentialsInvalid { .. }
        ));
        assert!(matches!(
            class(404, Refusal::Other),
            StorageError::NotFound { .. }
        ));
        assert!(class(503, Refusal::Other).is_transient());
        assert!(class(400, Refusal::UploadGone).is_transient());
        assert!(class(429, Refusal::Other).is_transient());
        assert_eq!(
            class(409, Refusal::Other).to_string(),
            "l: Get failed: HTTP 409 X: m"
        );
    }
}

//! The port every provider's backend serves and the dispatcher (mod.rs) speaks: its errors,
//! what it lists and uploads, a signed URL's lifetime, and the helpers every backend shares
//! (a body saved within a cap, a part's checksum, an error's chain). It imports no provider,
//! so a provider depends on it and never on the dispatcher.

use std::{path::Path, time::Duration};

use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// The size of an upload's part (S3 parts, Azure blocks, GCS chunks): the least S3 takes (but
/// for the last), a multiple of GCS's 256 KiB. Every backend streams a part from the archive
/// file, so its size costs no memory.
pub(crate) const PART_SIZE: usize = 5 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub(crate) enum StorageError {
    #[error("the object store refused the credentials of {location}: {message}")]
    CredentialsInvalid { location: String, message: String },
    /// `via`: " through the proxy URL" when the location is reached through one (proxy.rs).
    #[error("the object store of {location} cannot be reached{via}: {message}")]
    Unreachable {
        location: String,
        via: String,
        message: String,
    },
    #[error("{location}: object {key} does not exist")]
    NotFound { location: String, key: String },
    /// The upload being sent was aborted meanwhile (S3 NoSuchUpload, Azure InvalidBlockList):
    /// by a sweep of another install sharing the bucket, or a deposed leader. Starting the
    /// upload again mends it.
    #[error("{location}: the upload of {key} was aborted while it was sent")]
    UploadGone { location: String, key: String },
    /// Real stores answer NoSuchBucket (404) for any object of a bucket that does not exist:
    /// not the same as a missing object, and no object of that location can be had.
    #[error(
        "the bucket {bucket} of storage location {location} does not exist; Velero shows such a location as Unavailable"
    )]
    BucketMissing { location: String, bucket: String },
    #[error("{location}: {operation} failed: {message}")]
    Failed {
        location: String,
        operation: &'static str,
        message: String,
    },
    #[error("spool file: {0}")]
    Io(#[from] std::io::Error),
    #[error("cancelled: this process no longer leads (SIGTERM, or the Lease lost)")]
    Cancelled,
    #[error(
        "the object store of {location} presented a TLS certificate that cannot be verified (set the BSL's caCert, or insecureSkipTLSVerify): {message}"
    )]
    CertificateUntrusted { location: String, message: String },
}

/// rustls's words for a server certificate it does not trust.
pub(in crate::storage) fn is_certificate_error(chain: &str) -> bool {
    [
        "invalid peer certificate",
        "UnknownIssuer",
        "certificate verify failed",
        "NotValidForName",
    ]
    .iter()
    .any(|m| chain.contains(m))
}

impl StorageError {
    /// Retrying may help (the server may come back); a refused credential will not.
    pub(crate) fn is_transient(&self) -> bool {
        matches!(
            self,
            StorageError::Unreachable { .. }
                | StorageError::Io(_)
                | StorageError::UploadGone { .. }
        )
    }
}

/// What a provider's reader (credentials.rs calls it) says of a Secret's text, before the error names the BSL.
#[derive(Debug, PartialEq)]
pub(crate) enum ReadError {
    Unsupported {
        what: String,
        instead: String,
    },
    Unusable(String),
    /// An endpoint (config `key`) on a host that may not receive the credential (trust.rs).
    UntrustedHost {
        key: &'static str,
        host: String,
        expected: String,
    },
    /// A value (`key`, as the BSL or the credential file names it) that would become part of
    /// a host or a URL and is not of the shape its provider allows (provider_names.rs).
    Refused {
        key: String,
        value: String,
        allowed: &'static str,
    },
}

/// An object as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredObject {
    pub key: String,
    /// Seconds since the epoch.
    pub written: i64,
}

/// An upload begun and not finished (an S3 multipart upload, an Azure blob with uncommitted
/// blocks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OpenUpload {
    pub key: String,
    pub id: String,
    /// Seconds since the epoch.
    pub begun: i64,
}

/// An archive to upload: the spooled file, complete before its upload starts (GCS takes its
/// checksum with the first request), its key, and the mark (`name`, `value`) stored with it
/// as metadata: the cluster that wrote it (see orphans.rs). An empty value sets no mark.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewArchive<'a> {
    pub key: &'a str,
    pub file: &'a Path,
    pub mark: (&'a str, &'a str),
}

/// A signed download URL and how long it works.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SignedUrl {
    pub url: String,
    pub lifetime: UrlLifetime,
}

impl SignedUrl {
    /// When the URL stops working, for a URL signed at `signed_at`.
    pub(crate) fn expires_at(&self, signed_at: jiff::Timestamp) -> jiff::Timestamp {
        signed_at + jiff::SignedDuration::try_from(self.lifetime.valid_for).unwrap_or_default()
    }
}

/// How long a presigned URL works: a URL signed with temporary credentials (IRSA, a session)
/// stops working when they expire, whatever its own expiry says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct UrlLifetime {
    pub valid_for: Duration,
    /// The credentials expire before the TTL asked for: `valid_for` is theirs.
    pub cut_by_credentials: bool,
}

/// Shortest URL worth signing: credentials about to expire are refreshed by the provider.
const MIN_URL_LIFETIME: Duration = Duration::from_secs(60);

/// The lifetime of a URL asked for `ttl`, signed at `now` with credentials that expire at
/// `expiry` (None: they do not).
pub(crate) fn url_lifetime(
    ttl: Duration,
    expiry: Option<std::time::SystemTime>,
    now: std::time::SystemTime,
) -> UrlLifetime {
    let left = expiry.map(|e| e.duration_since(now).unwrap_or_default());
    match left {
        Some(left) if left < ttl => UrlLifetime {
            valid_for: left.max(MIN_URL_LIFETIME.min(ttl)),
            cut_by_credentials: true,
        },
        _ => UrlLifetime {
            valid_for: ttl,
            cut_by_credentials: false,
        },
    }
}

/// Writes the chunks of `body` into `to`, at most `max_bytes + 1` bytes of them, so the
/// caller sees whether the object is larger than it wants without the disk filling up;
/// returns the bytes written. An error reading the body (a stall past the grace, a reset) is
/// the store's, `Unreachable` with `what` and its text, retried; one writing the file is the
/// disk's.
pub(in crate::storage) async fn save_capped<B: AsRef<[u8]>>(
    body: impl futures::Stream<Item = Result<B, String>>,
    to: &Path,
    max_bytes: u64,
    location: &str,
    what: &str,
) -> Result<u64, StorageError> {
    use futures::TryStreamExt;
    use tokio::io::AsyncWriteExt;
    let mut body = std::pin::pin!(body);
    let mut file = tokio::fs::File::create(to).await?;
    let limit = max_bytes.saturating_add(1);
    let mut written = 0u64;
    while written < limit {
        let chunk = match body.try_next().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(e) => {
                return Err(StorageError::Unreachable {
                    location: location.to_string(),
                    via: String::new(),
                    message: format!("{what}: reading the body: {e}"),
                });
            }
        };
        let chunk = chunk.as_ref();
        let room = usize::try_from(limit - written).unwrap_or(usize::MAX);
        let kept = &chunk[..chunk.len().min(room)];
        file.write_all(kept).await?;
        written += kept.len() as u64;
    }
    file.flush().await?;
    Ok(written)
}

/// The CRC (`algorithm`) of `length` bytes of `from` at `offset`, read a piece at a time: a
/// part's checksum without holding the part.
pub(in crate::storage) async fn crc_of_range(
    from: &Path,
    offset: u64,
    length: u64,
    algorithm: crc_fast::CrcAlgorithm,
) -> std::io::Result<u64> {
    let mut file = tokio::fs::File::open(from).await?;
    file.seek(std::io::SeekFrom::Start(offset)).await?;
    let mut file = file.take(length);
    let mut digest = crc_fast::Digest::new(algorithm);
    let mut piece = vec![0u8; CRC_PIECE];
    let mut read = 0u64;
    loop {
        let n = file.read(&mut piece).await?;
        if n == 0 {
            break;
        }
        digest.update(&piece[..n]);
        read += n as u64;
    }
    if read != length {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("{} ended before its part at {offset}", from.display()),
        ));
    }
    Ok(digest.finalize())
}

/// What `crc_of_range` reads at once: past 64 KiB a bigger piece buys nothing but memory.
const CRC_PIECE: usize = 64 * 1024;

/// The error and its sources on one line: the SDK's top-level message alone ("dispatch
/// failure") does not say why.
pub(in crate::storage) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_ranges_crc_is_of_that_range_and_a_short_file_is_named() {
        use crc_fast::CrcAlgorithm::{Crc32Iscsi, Crc32IsoHdlc};
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        // The check values of CRC-32 (S3's CRC32) and CRC-32C (GCS's), on a range that is
        // neither the file's start nor its end and spans pieces.
        let mut text = vec![b'x'; CRC_PIECE + 3];
        text.extend_from_slice(b"123456789");
        text.extend_from_slice(b"tail");
        std::fs::write(&file, &text).unwrap();
        let at = CRC_PIECE as u64 + 3;
        assert_eq!(
            crc_of_range(&file, at, 9, Crc32IsoHdlc).await.unwrap(),
            0xCBF4_3926
        );
        assert_eq!(
            crc_of_range(&file, at, 9, Crc32Iscsi).await.unwrap(),
            0xE306_9283
        );
        assert_eq!(crc_of_range(&file, 0, 0, Crc32IsoHdlc).await.unwrap(), 0);
        let whole = crc_fast::checksum(Crc32IsoHdlc, &text);
        let len = text.len() as u64;
        assert_eq!(
            crc_of_range(&file, 0, len, Crc32IsoHdlc).await.unwrap(),
            whole
        );
        let short = crc_of_range(&file, at, len, Crc32IsoHdlc)
            .await
            .unwrap_err();
        assert_eq!(short.kind(), std::io::ErrorKind::UnexpectedEof);
        assert!(
            short.to_string().contains("ended before its part"),
            "{short}"
        );
    }

    #[test]
    fn a_url_lives_no_longer_than_its_credentials() {
        use std::time::SystemTime;
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let day = Duration::from_secs(86_400);
        // Static credentials: the TTL.
        let l = url_lifetime(day, None, now);
        assert_eq!((l.valid_for, l.cut_by_credentials), (day, false));
        // A session ending in an hour: an hour, and said so.
        let l = url_lifetime(day, Some(now + Duration::from_secs(3600)), now);
        assert_eq!(
            (l.valid_for, l.cut_by_credentials),
            (Duration::from_secs(3600), true)
        );
        // Ending after the TTL: the TTL.
        let l = url_lifetime(day, Some(now + 2 * day), now);
        assert_eq!((l.valid_for, l.cut_by_credentials), (day, false));
        // Already expired (the provider refreshes them): the shortest lifetime, not zero.
        let l = url_lifetime(day, Some(now - Duration::from_secs(5)), now);
        assert_eq!(
            (l.valid_for, l.cut_by_credentials),
            (Duration::from_secs(60), true)
        );
        // A TTL shorter than that shortest lifetime stays the TTL.
        let short = Duration::from_secs(30);
        let l = url_lifetime(short, Some(now - Duration::from_secs(5)), now);
        assert_eq!(l.valid_for, short);
    }
}

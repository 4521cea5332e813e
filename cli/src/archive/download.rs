//! `download`: a streaming GET of the presigned URL, hashed while it is written. To a file it
//! goes through a temporary file beside the target, renamed only when the sha256 matches (a
//! mismatch leaves nothing); to stdout ("-") it cannot be taken back, so the check comes at
//! the end and fails the command. The byte count is checked before the sha256: a stream
//! longer than `status.archive.sizeBytes` is cut there, a shorter one is a broken download.
//!
//! The URL is presigned: its query string is a bearer credential. No error here carries it
//! (see [`without_query`]), so nothing printed lands it in a terminal or a CI log.

use std::{
    io::{self, Write},
    path::{Path, PathBuf},
    time::Duration,
};

use futures::{Stream, StreamExt};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use jiff::Timestamp;
use sha2::{Digest, Sha256};
use velero_debug_crd::{CONDITION_DOWNLOAD_URL_VALID, DebugBundle, Phase, reasons};

use crate::print::output::stderr_is_terminal;

#[derive(Debug, thiserror::Error)]
pub(crate) enum DownloadError {
    #[error(
        "DebugBundle {name} is {phase}, not Completed: nothing to download yet (see `kubectl velero-debug wait {name}`)"
    )]
    NotCompleted { name: String, phase: String },
    #[error("DebugBundle {0} has no archive in status")]
    NoArchive(String),
    #[error(
        "sha256 mismatch: the download has {actual}, status.archive.sha256 says {expected}{}",
        if *.deleted { "; nothing was kept" } else { "; the bytes written to stdout are not the bundle" }
    )]
    ChecksumMismatch {
        expected: String,
        actual: String,
        deleted: bool,
    },
    #[error(
        "the download is {} bytes, status.archive.sizeBytes says {expected}{}",
        if *.longer { format!("more than {actual}") } else { actual.to_string() },
        if *.longer { ": it is not the bundle, reading stopped there" } else { ": the download broke off" }
    )]
    SizeMismatch {
        expected: u64,
        actual: u64,
        /// Cut once past `expected`: the stream's length is unknown.
        longer: bool,
    },
    #[error("the download URL's host {host} is not reachable from this machine ({source}).\n{}", unreachable_hint(.host))]
    Unreachable {
        host: String,
        source: reqwest::Error,
    },
    #[error("the object store answered {status} for the download URL{}", if *.status == reqwest::StatusCode::FORBIDDEN { " (an expired or refused signature: try `kubectl velero-debug refresh-url NAME`)" } else { "" })]
    HttpStatus { status: reqwest::StatusCode },
    /// Built only through `From`, which drops the URL's query string.
    #[error("reading the download: {0}")]
    Http(reqwest::Error),
    #[error("writing {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

impl From<reqwest::Error> for DownloadError {
    fn from(source: reqwest::Error) -> Self {
        DownloadError::Http(without_query(source))
    }
}

/// `error` without its URL's query string and fragment (the signature of a presigned URL) or
/// userinfo: reqwest prints the URL of a failed request in the error's message.
pub(super) fn without_query(mut error: reqwest::Error) -> reqwest::Error {
    if let Some(url) = error.url_mut() {
        url.set_query(None);
        url.set_fragment(None);
        let _ = url.set_username("");
        let _ = url.set_password(None);
    }
    error
}

/// Giving up on a store that does not answer: connecting, and between two reads of an answer
/// (no limit on the whole, which depends on the archive's size and the link).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
pub(crate) const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// The HTTP client of every archive GET, with `read_timeout` between two reads.
pub(crate) fn http_client(read_timeout: Duration) -> Result<reqwest::Client, DownloadError> {
    Ok(reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(read_timeout)
        .build()?)
}

/// What the bundle's status says about its download URL at `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UrlState {
    Valid(String),
    /// Past downloadURLExpiresAt, marked URLExpired, or missing: a new one must be signed.
    NeedsRefresh,
}

/// Before a download, a URL that expires within a minute is renewed first: it could fail half
/// way. A URL just signed is used as long as it has not expired, whatever its TTL.
pub(crate) const RENEW_MARGIN: jiff::SignedDuration = jiff::SignedDuration::from_mins(1);

pub(crate) fn url_state(
    bundle: &DebugBundle,
    now: Timestamp,
    margin: jiff::SignedDuration,
) -> UrlState {
    let Some(status) = &bundle.status else {
        return UrlState::NeedsRefresh;
    };
    let marked_expired = status
        .conditions
        .iter()
        .any(|c| c.type_ == CONDITION_DOWNLOAD_URL_VALID && c.reason == reasons::URL_EXPIRED);
    let expired = status
        .download_url_expires_at
        .as_ref()
        .is_some_and(|t| t.0 <= now + margin);
    match &status.download_url {
        Some(url) if !marked_expired && !expired => UrlState::Valid(url.clone()),
        _ => UrlState::NeedsRefresh,
    }
}

/// The archive's expected size and sha256, once the bundle is Completed.
pub(crate) fn expected_archive(bundle: &DebugBundle) -> Result<(u64, String), DownloadError> {
    let name = bundle.metadata.name.clone().unwrap_or_default();
    let status = bundle.status.clone().unwrap_or_default();
    let phase = status.phase.unwrap_or_default();
    if phase != Phase::Completed {
        return Err(DownloadError::NotCompleted {
            name,
            phase: format!("{phase:?}"),
        });
    }
    let archive = status.archive.ok_or(DownloadError::NoArchive(name))?;
    Ok((
        archive.size_bytes.max(0) as u64,
        archive.sha256.to_ascii_lowercase(),
    ))
}

/// What to tell a user whose machine cannot reach the presigned URL's host.
pub(crate) fn unreachable_hint(host: &str) -> String {
    format!(
        "The URL is signed for the host the BackupStorageLocation names: config.publicUrl if \
         set, else config.s3Url. {host} is probably an in-cluster address. Either set the BSL's \
         config.publicUrl to an address this machine reaches and run `kubectl velero-debug \
         refresh-url NAME`, or reach the store another way (such as `kubectl port-forward`) \
         and fetch status.archive.key from status.archive.bucket."
    )
}

pub(crate) fn progress_bar(size: u64) -> ProgressBar {
    let target = if stderr_is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(size), target);
    bar.set_style(
        ProgressStyle::with_template(
            "{bytes:>10}/{total_bytes:10} [{bar:30}] {bytes_per_sec:>12} {eta}",
        )
        .expect("the template is valid")
        .progress_chars("=> "),
    );
    bar
}

/// Starts the GET, telling an unreachable host apart from other failures. An answer whose
/// Content-Length is not `expected_size` is refused before it is read.
pub(crate) async fn get(
    client: &reqwest::Client,
    url: &str,
    expected_size: u64,
) -> Result<reqwest::Response, DownloadError> {
    let response = client.get(url).send().await.map_err(|source| {
        if source.is_connect() || source.is_timeout() {
            DownloadError::Unreachable {
                host: reqwest::Url::parse(url)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_string))
                    .unwrap_or_else(|| "of the URL in status".to_string()),
                source: without_query(source),
            }
        } else {
            DownloadError::from(source)
        }
    })?;
    if !response.status().is_success() {
        return Err(DownloadError::HttpStatus {
            status: response.status(),
        });
    }
    match response.content_length() {
        Some(length) if length != expected_size => Err(DownloadError::SizeMismatch {
            expected: expected_size,
            actual: length,
            longer: false,
        }),
        _ => Ok(response),
    }
}

/// What the archive must be: its size, checked first, then its sha256 (lowercase hex).
pub(crate) struct Expected<'a> {
    pub size: u64,
    pub sha256: &'a str,
}

/// Copies `chunks` into `writer`, returning the sha256 (hex) of what was written; a stream
/// that is not `size` bytes long is an error, and one going past it is not read further.
async fn copy_hashing<S, B, E, W>(
    mut chunks: S,
    writer: &mut W,
    size: u64,
    bar: &ProgressBar,
) -> Result<String, CopyError<E>>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
    W: Write,
{
    let mut hasher = Sha256::new();
    let mut written = 0u64;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(CopyError::Read)?;
        let bytes = chunk.as_ref();
        if written + bytes.len() as u64 > size {
            return Err(CopyError::Size(DownloadError::SizeMismatch {
                expected: size,
                actual: size,
                longer: true,
            }));
        }
        written += bytes.len() as u64;
        hasher.update(bytes);
        writer.write_all(bytes).map_err(CopyError::Write)?;
        bar.inc(bytes.len() as u64);
    }
    writer.flush().map_err(CopyError::Write)?;
    if written != size {
        return Err(CopyError::Size(DownloadError::SizeMismatch {
            expected: size,
            actual: written,
            longer: false,
        }));
    }
    Ok(hex::encode(hasher.finalize()))
}

enum CopyError<E> {
    Read(E),
    Write(io::Error),
    Size(DownloadError),
}

/// Writes the stream to `path` only if its sha256 is `expected`; on a mismatch no file is
/// left (neither the temporary one nor a new `path`).
pub(crate) async fn save_verified<S, B, E>(
    chunks: S,
    path: &Path,
    expected: &Expected<'_>,
    bar: &ProgressBar,
) -> Result<(), DownloadError>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
    DownloadError: From<E>,
{
    let write_error = |source| DownloadError::Write {
        path: path.to_path_buf(),
        source,
    };
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".velero-debug-")
        .suffix(".part")
        .tempfile_in(folder)
        .map_err(write_error)?;
    // On any error, dropping `temp` deletes it.
    let actual = match copy_hashing(chunks, temp.as_file_mut(), expected.size, bar).await {
        Ok(actual) => actual,
        Err(CopyError::Read(e)) => return Err(e.into()),
        Err(CopyError::Write(e)) => return Err(write_error(e)),
        Err(CopyError::Size(e)) => return Err(e),
    };
    if actual != expected.sha256 {
        return Err(DownloadError::ChecksumMismatch {
            expected: expected.sha256.to_string(),
            actual,
            deleted: true,
        });
    }
    temp.persist(path).map_err(|e| write_error(e.error))?;
    Ok(())
}

/// Streams to stdout, checking the sha256 once everything was written.
pub(crate) async fn stream_verified<S, B, E>(
    chunks: S,
    expected: &Expected<'_>,
    bar: &ProgressBar,
) -> Result<(), DownloadError>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
    DownloadError: From<E>,
{
    let mut stdout = io::stdout().lock();
    let actual = match copy_hashing(chunks, &mut stdout, expected.size, bar).await {
        Ok(actual) => actual,
        Err(CopyError::Read(e)) => return Err(e.into()),
        Err(CopyError::Size(e)) => return Err(e),
        Err(CopyError::Write(source)) => {
            return Err(DownloadError::Write {
                path: "-".into(),
                source,
            });
        }
    };
    if actual != expected.sha256 {
        return Err(DownloadError::ChecksumMismatch {
            expected: expected.sha256.to_string(),
            actual,
            deleted: false,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::print::output::fixtures;

    fn chunks(parts: &[&'static [u8]]) -> impl Stream<Item = Result<&'static [u8], io::Error>> {
        futures::stream::iter(parts.iter().map(|p| Ok(*p)).collect::<Vec<_>>())
    }

    impl From<io::Error> for DownloadError {
        fn from(source: io::Error) -> Self {
            DownloadError::Write {
                path: "test".into(),
                source,
            }
        }
    }

    const HELLO_WORLD_SHA: &str =
        "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9";
    const HELLO_WORLD: Expected = Expected {
        size: 11,
        sha256: HELLO_WORLD_SHA,
    };

    fn files_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn a_matching_download_is_renamed_into_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.tar.gz");
        let bar = ProgressBar::hidden();
        save_verified(chunks(&[b"hello ", b"world"]), &path, &HELLO_WORLD, &bar)
            .await
            .unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"hello world");
        assert_eq!(files_in(dir.path()), ["b.tar.gz"]);
        assert_eq!(bar.position(), 11);
    }

    #[tokio::test]
    async fn a_mismatch_keeps_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.tar.gz");
        let err = save_verified(
            chunks(&[b"hello ", b"w0rld"]),
            &path,
            &HELLO_WORLD,
            &ProgressBar::hidden(),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&err, DownloadError::ChecksumMismatch { expected, deleted: true, .. } if expected == HELLO_WORLD_SHA),
            "{err}"
        );
        assert!(files_in(dir.path()).is_empty());
    }

    #[tokio::test]
    async fn a_read_error_keeps_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.tar.gz");
        let broken = futures::stream::iter(vec![
            Ok(&b"hello"[..]),
            Err(io::Error::other("connection reset")),
        ]);
        assert!(
            save_verified(broken, &path, &HELLO_WORLD, &ProgressBar::hidden())
                .await
                .is_err()
        );
        assert!(files_in(dir.path()).is_empty());
    }

    #[tokio::test]
    async fn the_size_is_checked_before_the_sha256_and_a_longer_stream_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.tar.gz");
        let bar = ProgressBar::hidden();
        let short = save_verified(chunks(&[b"hello "]), &path, &HELLO_WORLD, &bar);
        let err = short.await.unwrap_err();
        assert!(
            matches!(
                err,
                DownloadError::SizeMismatch {
                    expected: 11,
                    actual: 6,
                    longer: false
                }
            ),
            "{err}"
        );
        // An endless stream: the copy stops at the first chunk past the size.
        let pulled = std::cell::Cell::new(0);
        let endless = futures::stream::repeat_with(|| {
            pulled.set(pulled.get() + 1);
            Ok::<_, io::Error>(&b"hello"[..])
        });
        let err = save_verified(endless, &path, &HELLO_WORLD, &ProgressBar::hidden())
            .await
            .unwrap_err();
        assert!(
            matches!(err, DownloadError::SizeMismatch { longer: true, .. }),
            "{err}"
        );
        assert_eq!(pulled.get(), 3);
        assert!(files_in(dir.path()).is_empty());
    }

    const SIGNED: &str = "http://u:pw@127.0.0.1:1/bucket/key?X-Amz-Signature=c0ffee&sig=s#frag";

    #[tokio::test]
    async fn an_unreachable_host_is_explained_without_the_query() {
        // Port 1 on the loopback: refused at once.
        let client = http_client(READ_TIMEOUT).unwrap();
        let err = get(&client, SIGNED, 11).await.unwrap_err();
        let DownloadError::Unreachable { host, .. } = &err else {
            panic!("{err}");
        };
        assert_eq!(host, "127.0.0.1");
        let shown = err.to_string();
        assert!(shown.contains("config.publicUrl"), "{shown}");
        assert!(shown.contains("127.0.0.1:1/bucket/key"), "{shown}");
        for secret in ["c0ffee", "sig=", "X-Amz", "pw", "frag"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
    }

    #[tokio::test]
    async fn a_reqwest_error_loses_the_query_of_its_url() {
        let client = reqwest::Client::new();
        let raw = client.get(SIGNED).send().await.unwrap_err();
        assert!(raw.to_string().contains("c0ffee"), "{raw}");
        let shown = DownloadError::from(raw).to_string();
        assert!(
            !shown.contains("c0ffee") && !shown.contains("pw"),
            "{shown}"
        );
        assert!(shown.contains("/bucket/key"), "{shown}");
    }

    /// A server on the loopback that sends `head` to its first client, then nothing.
    async fn stalling_server(head: &'static [u8]) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 4096];
            let _ = socket.read(&mut request).await;
            socket.write_all(head).await.unwrap();
            tokio::time::sleep(Duration::from_secs(60)).await;
        });
        format!("http://{address}/bucket/key?X-Amz-Signature=c0ffee")
    }

    #[tokio::test]
    async fn a_store_that_stops_sending_times_out() {
        let url = stalling_server(b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\nhello").await;
        let client = http_client(Duration::from_millis(300)).unwrap();
        let response = get(&client, &url, 11).await.unwrap();
        let started = std::time::Instant::now();
        let dir = tempfile::tempdir().unwrap();
        let (path, bar) = (dir.path().join("b.tar.gz"), ProgressBar::hidden());
        let saved = save_verified(response.bytes_stream(), &path, &HELLO_WORLD, &bar);
        let err = saved.await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(10), "{err}");
        assert!(matches!(err, DownloadError::Http(_)), "{err}");
        assert!(!err.to_string().contains("c0ffee"), "{err}");
    }

    #[tokio::test]
    async fn a_length_other_than_the_archives_is_refused_unread() {
        let url = stalling_server(b"HTTP/1.1 200 OK\r\ncontent-length: 99999\r\n\r\n").await;
        let client = http_client(READ_TIMEOUT).unwrap();
        let err = get(&client, &url, 11).await.unwrap_err();
        assert!(
            matches!(
                err,
                DownloadError::SizeMismatch {
                    expected: 11,
                    actual: 99999,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn the_url_is_refreshed_once_expired_or_marked_so() {
        let bundle = fixtures::completed();
        let before: Timestamp = "2026-11-23T11:00:00Z".parse().unwrap();
        assert!(matches!(
            url_state(&bundle, before, RENEW_MARGIN),
            UrlState::Valid(_)
        ));
        let within_a_minute: Timestamp = "2026-11-23T11:55:30Z".parse().unwrap();
        assert_eq!(
            url_state(&bundle, within_a_minute, RENEW_MARGIN),
            UrlState::NeedsRefresh
        );
        // Just signed with a TTL of a minute or less: used while it works.
        assert!(matches!(
            url_state(&bundle, within_a_minute, jiff::SignedDuration::ZERO),
            UrlState::Valid(_)
        ));
        let mut marked = bundle.clone();
        marked.status.as_mut().unwrap().conditions[1].reason = reasons::URL_EXPIRED.into();
        assert_eq!(
            url_state(&marked, before, RENEW_MARGIN),
            UrlState::NeedsRefresh
        );
    }

    #[test]
    fn only_a_completed_bundle_with_an_archive_downloads() {
        let mut bundle = fixtures::completed();
        assert_eq!(
            expected_archive(&bundle).unwrap(),
            (
                14142,
                "a38dc53a9d8867184260628df7d9ae29685cd519450a53acd450b57b82949c9b".into()
            )
        );
        bundle.status.as_mut().unwrap().phase = Some(Phase::Collecting);
        assert!(matches!(
            expected_archive(&bundle),
            Err(DownloadError::NotCompleted { .. })
        ));
    }
}

//! `download`: a streaming GET of the presigned URL, hashed while it is written. To a file it
//! goes through a temporary file beside the target, renamed only when the sha256 matches (a
//! mismatch leaves nothing); to stdout ("-") it cannot be taken back, so the check comes at
//! the end and fails the command.

use std::{
    fs::File,
    io::{self, Write},
    path::{Path, PathBuf},
};

use futures::{Stream, StreamExt};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use jiff::Timestamp;
use sha2::{Digest, Sha256};
use velero_debug_crd::{CONDITION_DOWNLOAD_URL_VALID, DebugBundle, Phase, reasons};

use crate::output::stderr_is_terminal;

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
    #[error("the download URL's host {host} is not reachable from this machine ({source}).\n{}", unreachable_hint(.host))]
    Unreachable {
        host: String,
        source: reqwest::Error,
    },
    #[error("the object store answered {status} for the download URL{}", if *.status == reqwest::StatusCode::FORBIDDEN { " (an expired or refused signature: try `kubectl velero-debug refresh-url NAME`)" } else { "" })]
    HttpStatus { status: reqwest::StatusCode },
    #[error("reading the download: {0}")]
    Http(#[from] reqwest::Error),
    #[error("writing {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("extracting into {path}: {source}")]
    Extract { path: PathBuf, source: io::Error },
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

/// Starts the GET, telling an unreachable host apart from other failures.
pub(crate) async fn get(url: &str) -> Result<reqwest::Response, DownloadError> {
    let response = reqwest::get(url).await.map_err(|source| {
        if source.is_connect() || source.is_timeout() {
            DownloadError::Unreachable {
                host: reqwest::Url::parse(url)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_string))
                    .unwrap_or_else(|| url.to_string()),
                source,
            }
        } else {
            DownloadError::Http(source)
        }
    })?;
    if !response.status().is_success() {
        return Err(DownloadError::HttpStatus {
            status: response.status(),
        });
    }
    Ok(response)
}

/// Copies `chunks` into `writer`, returning the sha256 (hex) of what was written.
async fn copy_hashing<S, B, E, W>(
    mut chunks: S,
    writer: &mut W,
    bar: &ProgressBar,
) -> Result<String, CopyError<E>>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
    W: Write,
{
    let mut hasher = Sha256::new();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(CopyError::Read)?;
        let bytes = chunk.as_ref();
        hasher.update(bytes);
        writer.write_all(bytes).map_err(CopyError::Write)?;
        bar.inc(bytes.len() as u64);
    }
    writer.flush().map_err(CopyError::Write)?;
    Ok(hex::encode(hasher.finalize()))
}

enum CopyError<E> {
    Read(E),
    Write(io::Error),
}

/// Writes the stream to `path` only if its sha256 is `expected`; on a mismatch no file is
/// left (neither the temporary one nor a new `path`).
pub(crate) async fn save_verified<S, B, E>(
    chunks: S,
    path: &Path,
    expected: &str,
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
    let actual = match copy_hashing(chunks, temp.as_file_mut(), bar).await {
        Ok(actual) => actual,
        Err(CopyError::Read(e)) => return Err(e.into()),
        Err(CopyError::Write(e)) => return Err(write_error(e)),
    };
    if actual != expected {
        // Dropping `temp` deletes it.
        return Err(DownloadError::ChecksumMismatch {
            expected: expected.to_string(),
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
    expected: &str,
    bar: &ProgressBar,
) -> Result<(), DownloadError>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
    DownloadError: From<E>,
{
    let mut stdout = io::stdout().lock();
    let actual = match copy_hashing(chunks, &mut stdout, bar).await {
        Ok(actual) => actual,
        Err(CopyError::Read(e)) => return Err(e.into()),
        Err(CopyError::Write(source)) => {
            return Err(DownloadError::Write {
                path: "-".into(),
                source,
            });
        }
    };
    if actual != expected {
        return Err(DownloadError::ChecksumMismatch {
            expected: expected.to_string(),
            actual,
            deleted: false,
        });
    }
    Ok(())
}

/// Unpacks a verified archive into `folder` (the tar crate refuses entries leaving it). Every
/// gzip member is read: the operator writes summary.md and manifest.json in a first one.
pub(crate) fn extract(archive: &Path, folder: &Path) -> Result<(), DownloadError> {
    let error = |source| DownloadError::Extract {
        path: folder.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(folder).map_err(error)?;
    let file = File::open(archive).map_err(error)?;
    tar::Archive::new(flate2::read::MultiGzDecoder::new(file))
        .unpack(folder)
        .map_err(error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::fixtures;

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
        save_verified(chunks(&[b"hello ", b"world"]), &path, HELLO_WORLD_SHA, &bar)
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
            HELLO_WORLD_SHA,
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
            save_verified(broken, &path, HELLO_WORLD_SHA, &ProgressBar::hidden())
                .await
                .is_err()
        );
        assert!(files_in(dir.path()).is_empty());
    }

    #[tokio::test]
    async fn an_unreachable_host_is_explained() {
        // Port 1 on the loopback: refused at once.
        let err = get("http://127.0.0.1:1/bucket/key").await.unwrap_err();
        let DownloadError::Unreachable { host, .. } = &err else {
            panic!("{err}");
        };
        assert_eq!(host, "127.0.0.1");
        assert!(err.to_string().contains("config.publicUrl"), "{err}");
    }

    #[test]
    fn extracts_every_gzip_member() {
        use crate::summary::fixtures::gzip_member;
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("b.tar.gz");
        let mut bytes = gzip_member(&[("b1/summary.md", b"# hi")], false);
        bytes.extend(gzip_member(&[("b1/logs/velero.log", b"log")], true));
        std::fs::write(&archive, bytes).unwrap();
        let out = dir.path().join("out");
        extract(&archive, &out).unwrap();
        assert_eq!(
            std::fs::read_to_string(out.join("b1/summary.md")).unwrap(),
            "# hi"
        );
        assert_eq!(
            std::fs::read_to_string(out.join("b1/logs/velero.log")).unwrap(),
            "log"
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

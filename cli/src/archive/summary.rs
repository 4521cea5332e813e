//! `summary`: prints the bundle's summary.md, reading the archive only up to that entry (the
//! rest of the download is dropped unread). The operator puts summary.md first, in a gzip
//! member of its own with manifest.json, so that is about all that is read.
//!
//! The stream is not verified (its sha256 needs all of it), so every read is capped: the
//! archive at its size in status, the unpacked tar at [`MAX_UNPACKED_BYTES`], summary.md at
//! [`MAX_SUMMARY_BYTES`]. A hostile store sending an endless gzip is cut at the first cap.

use std::{
    cell::Cell,
    io::{self, Read},
    ops::ControlFlow,
    path::Path,
    rc::Rc,
};

use futures::TryStreamExt;
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::{
    download::without_query,
    entries::{ArchiveError, Budget, MAX_ENTRIES, read_entries},
};

/// The operator caps summary.md at 64 KiB; a larger one is not from it.
pub(crate) const MAX_SUMMARY_BYTES: u64 = 1024 * 1024;
/// The operator puts summary.md in the first few KiB of the tar; an older archive may have it
/// later, but not this far.
pub(crate) const MAX_UNPACKED_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub(crate) enum SummaryError {
    #[error("reading the archive: {0}")]
    Read(#[from] io::Error),
    #[error("the archive has no summary.md at its top")]
    Missing,
    #[error("{0}: stopped reading there (`kubectl velero-debug download` gets the whole archive)")]
    Cut(String),
}

impl From<ArchiveError> for SummaryError {
    fn from(e: ArchiveError) -> Self {
        match e {
            ArchiveError::Read(e) => SummaryError::Read(e),
            ArchiveError::Limit(hit) => SummaryError::Cut(hit.to_string()),
            sparse @ ArchiveError::Sparse => SummaryError::Cut(sparse.to_string()),
        }
    }
}

/// How much is read at most, in bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caps {
    /// Of the stream: the archive's size in status.
    pub archive: u64,
    pub unpacked: u64,
    pub summary: u64,
}

impl Caps {
    pub(crate) fn for_archive(size: u64) -> Caps {
        Caps {
            archive: size,
            unpacked: MAX_UNPACKED_BYTES,
            summary: MAX_SUMMARY_BYTES,
        }
    }
}

/// The stream, failing once more than `left` bytes come and recording that it did (the gzip
/// and tar readers may wrap the error; the record tells it apart from a broken stream).
struct Capped<R> {
    inner: R,
    left: u64,
    hit: Rc<Cell<bool>>,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // One byte past the cap is asked for, so a stream of exactly the cap ends cleanly.
        let asked = (self.left.saturating_add(1)).min(buf.len() as u64) as usize;
        let n = self.inner.read(&mut buf[..asked])?;
        if n as u64 > self.left {
            self.hit.set(true);
            return Err(io::Error::other("read past the cap"));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// True for `summary.md` at the archive's top or in its one root folder.
fn is_summary(path: &Path) -> bool {
    let parts: Vec<_> = path.components().collect();
    parts.len() <= 2 && path.file_name().is_some_and(|n| n == "summary.md")
}

/// summary.md from a tar.gz, reading entries only until it is found, within `caps` (the
/// unpacked ones counted as every archive is, entries.rs). Every gzip member is read if need
/// be, so an archive with summary.md anywhere near its start works too.
pub(crate) fn read_summary(archive: impl Read, caps: Caps) -> Result<String, SummaryError> {
    let hit = Rc::new(Cell::new(false));
    let stream = Capped {
        inner: archive,
        left: caps.archive,
        hit: hit.clone(),
    };
    let budget = Budget {
        bytes: caps.unpacked,
        entries: MAX_ENTRIES,
        bytes_named: "the most `summary` reads looking for summary.md",
    };
    let mut found = None;
    let read = read_entries(stream, budget, |entry| {
        if !is_summary(&entry.path()?) {
            return Ok(ControlFlow::Continue(()));
        }
        let mut text = Vec::new();
        entry.take(caps.summary + 1).read_to_end(&mut text)?;
        if text.len() as u64 > caps.summary {
            let cap = caps.summary;
            return Err(SummaryError::Cut(format!("summary.md is over {cap} bytes")));
        }
        found = Some(String::from_utf8_lossy(&text).into_owned());
        Ok(ControlFlow::Break(()))
    });
    match (read, found) {
        (Err(SummaryError::Read(_)), _) if hit.get() => Err(SummaryError::Cut(format!(
            "the store sent more than the archive's {} bytes (status.archive.sizeBytes)",
            caps.archive
        ))),
        (Err(e), _) => Err(e),
        (Ok(()), Some(text)) => Ok(text),
        (Ok(()), None) => Err(SummaryError::Missing),
    }
}

/// summary.md from the streamed body of `response`, an archive of `archive_size` bytes.
pub(crate) async fn summary_from_response(
    response: reqwest::Response,
    archive_size: u64,
) -> Result<String, SummaryError> {
    let chunks = response
        .bytes_stream()
        .map_err(|e| io::Error::other(without_query(e)));
    let reader = SyncIoBridge::new(Box::pin(StreamReader::new(chunks)));
    tokio::task::spawn_blocking(move || read_summary(reader, Caps::for_archive(archive_size)))
        .await
        .map_err(io::Error::other)?
}

#[cfg(test)]
pub(super) mod fixtures {
    use flate2::{Compression, write::GzEncoder};

    /// A gzip member of tar entries; with `ends_archive`, the tar end-of-archive marker
    /// too. Concatenated, members make one tar.gz, as the operator writes it.
    pub(crate) fn gzip_member(entries: &[(&str, &[u8])], ends_archive: bool) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, body) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(body.len() as u64);
            header.set_mode(0o644);
            builder.append_data(&mut header, path, *body).unwrap();
        }
        let mut tar = builder.into_inner().unwrap();
        if !ends_archive {
            tar.truncate(tar.len() - 1024);
        }
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        gz.finish().unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::{fixtures::gzip_member, *};

    fn tar_gz(entries: &[(&str, &[u8])]) -> Vec<u8> {
        gzip_member(entries, true)
    }

    /// The operator's layout: summary.md and manifest.json in a first member, then `body`.
    fn summary_first(body: &[u8]) -> Vec<u8> {
        let mut archive = gzip_member(
            &[("b1/summary.md", b"# early\n"), ("b1/manifest.json", b"{}")],
            false,
        );
        archive.extend_from_slice(body);
        archive
    }

    /// Counts how many bytes were pulled from the archive.
    struct Counting<R> {
        inner: R,
        read: usize,
    }

    impl<R: Read> Read for Counting<R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.read += n;
            Ok(n)
        }
    }

    /// Bytes that neither compress nor make a gzip header.
    fn noise(len: usize) -> Vec<u8> {
        let mut noise = vec![0u8; len];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for byte in &mut noise {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *byte = state as u8;
        }
        noise
    }

    #[test]
    fn finds_summary_in_the_root_folder() {
        let archive = tar_gz(&[
            ("b1/pods/x.yaml", b"kind: Pod"),
            ("b1/logs/summary.md", b"not this one"),
            ("b1/summary.md", b"# Restore r1\n"),
        ]);
        assert_eq!(
            read_summary(&archive[..], Caps::for_archive(archive.len() as u64)).unwrap(),
            "# Restore r1\n"
        );
    }

    #[test]
    fn finds_summary_in_a_later_gzip_member() {
        let mut archive = gzip_member(&[("b1/pods/x.yaml", b"kind: Pod")], false);
        archive.extend(gzip_member(&[("b1/summary.md", b"# late\n")], true));
        assert_eq!(
            read_summary(&archive[..], Caps::for_archive(archive.len() as u64)).unwrap(),
            "# late\n"
        );
    }

    #[test]
    fn stops_reading_once_summary_is_read() {
        // Incompressible entries after summary.md, so reading them would show in the count.
        let big = noise(1 << 20);
        let body = gzip_member(&[("b1/logs/big.log", &big)], true);
        let archive = summary_first(&body);
        let mut reader = Counting {
            inner: &archive[..],
            read: 0,
        };
        assert_eq!(
            read_summary(&mut reader, Caps::for_archive(archive.len() as u64)).unwrap(),
            "# early\n"
        );
        assert!(
            reader.read < archive.len() / 2,
            "read {} of {}",
            reader.read,
            archive.len()
        );
    }

    #[test]
    fn the_members_after_the_first_are_never_decoded() {
        // Not gzip at all: decoding any of it would fail.
        let archive = summary_first(&noise(1 << 16));
        let mut whole = Vec::new();
        let decoded = flate2::read::MultiGzDecoder::new(&archive[..]).read_to_end(&mut whole);
        assert!(decoded.is_err());
        assert_eq!(
            read_summary(&archive[..], Caps::for_archive(archive.len() as u64)).unwrap(),
            "# early\n"
        );
    }

    /// The head of a tar entry of `size` bytes, its body to follow.
    fn entry_head(path: &str, size: u64) -> Vec<u8> {
        let mut header = tar::Header::new_gnu();
        header.set_path(path).unwrap();
        header.set_size(size);
        header.set_mode(0o644);
        header.set_cksum();
        header.as_bytes().to_vec()
    }

    /// A gzip of a tar entry of `size` zero bytes at `path`, as a hostile store could send.
    fn zeros_entry(path: &str, size: u64) -> Vec<u8> {
        use flate2::{Compression, write::GzEncoder};
        let mut gz = GzEncoder::new(Vec::new(), Compression::best());
        std::io::Write::write_all(&mut gz, &entry_head(path, size)).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..size >> 20 {
            std::io::Write::write_all(&mut gz, &zeros).unwrap();
        }
        gz.finish().unwrap()
    }

    #[test]
    fn every_read_is_capped() {
        // Bytes past the archive's size in status.
        let archive = summary_first(&noise(1 << 16));
        let err = read_summary(&archive[..], Caps::for_archive(100)).unwrap_err();
        assert!(
            matches!(&err, SummaryError::Cut(m) if m.contains("sizeBytes")),
            "{err}"
        );
        // A small gzip unpacking to more than the cap before any summary.md.
        let small = |archive: &[u8]| Caps {
            archive: archive.len() as u64,
            unpacked: 1 << 20,
            summary: 64 << 10,
        };
        let bomb = zeros_entry("b1/logs/filler.log", 2 << 20);
        let err = read_summary(&bomb[..], small(&bomb)).unwrap_err();
        assert!(
            matches!(&err, SummaryError::Cut(m) if m.contains("unpacked")),
            "{err}"
        );
        // A summary.md too large to be the operator's.
        let huge = zeros_entry("b1/summary.md", 1 << 20);
        let err = read_summary(&huge[..], small(&huge)).unwrap_err();
        assert!(
            matches!(&err, SummaryError::Cut(m) if m.contains("summary.md is over")),
            "{err}"
        );
    }

    #[test]
    fn an_archive_without_summary_says_so() {
        let archive = tar_gz(&[("b1/manifest.json", b"{}")]);
        assert!(matches!(
            read_summary(&archive[..], Caps::for_archive(archive.len() as u64)),
            Err(SummaryError::Missing)
        ));
    }
}

//! `summary`: prints the bundle's summary.md, reading the archive only up to that entry (the
//! rest of the download is dropped unread). The operator puts summary.md first, in a gzip
//! member of its own with manifest.json, so that is about all that is read.

use std::{
    io::{self, Read},
    path::Path,
};

use futures::TryStreamExt;
use tokio_util::io::{StreamReader, SyncIoBridge};

#[derive(Debug, thiserror::Error)]
pub(crate) enum SummaryError {
    #[error("reading the archive: {0}")]
    Read(#[from] io::Error),
    #[error("the archive has no summary.md at its top")]
    Missing,
}

/// True for `summary.md` at the archive's top or in its one root folder.
fn is_summary(path: &Path) -> bool {
    let parts: Vec<_> = path.components().collect();
    parts.len() <= 2 && path.file_name().is_some_and(|n| n == "summary.md")
}

/// summary.md from a tar.gz, reading entries only until it is found. Every gzip member is
/// read if need be, so an archive with summary.md anywhere works too.
pub(crate) fn read_summary(archive: impl Read) -> Result<String, SummaryError> {
    let mut archive = tar::Archive::new(flate2::read::MultiGzDecoder::new(archive));
    for entry in archive.entries()? {
        let mut entry = entry?;
        if is_summary(&entry.path()?) {
            let mut text = String::new();
            entry.read_to_string(&mut text)?;
            return Ok(text);
        }
    }
    Err(SummaryError::Missing)
}

/// summary.md from the streamed body of `response`.
pub(crate) async fn summary_from_response(
    response: reqwest::Response,
) -> Result<String, SummaryError> {
    let body = StreamReader::new(response.bytes_stream().map_err(io::Error::other));
    let reader = SyncIoBridge::new(Box::pin(body));
    tokio::task::spawn_blocking(move || read_summary(reader))
        .await
        .map_err(io::Error::other)?
}

#[cfg(test)]
pub(crate) mod fixtures {
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
        assert_eq!(read_summary(&archive[..]).unwrap(), "# Restore r1\n");
    }

    #[test]
    fn finds_summary_in_a_later_gzip_member() {
        let mut archive = gzip_member(&[("b1/pods/x.yaml", b"kind: Pod")], false);
        archive.extend(gzip_member(&[("b1/summary.md", b"# late\n")], true));
        assert_eq!(read_summary(&archive[..]).unwrap(), "# late\n");
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
        assert_eq!(read_summary(&mut reader).unwrap(), "# early\n");
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
        assert_eq!(read_summary(&archive[..]).unwrap(), "# early\n");
    }

    #[test]
    fn an_archive_without_summary_says_so() {
        let archive = tar_gz(&[("b1/manifest.json", b"{}")]);
        assert!(matches!(
            read_summary(&archive[..]),
            Err(SummaryError::Missing)
        ));
    }
}

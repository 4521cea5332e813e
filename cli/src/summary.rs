//! `summary`: prints the bundle's summary.md, reading the archive only up to that entry (the
//! rest of the download is dropped unread).

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

/// summary.md from a tar.gz, reading entries only until it is found.
pub(crate) fn read_summary(archive: impl Read) -> Result<String, SummaryError> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(archive));
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
mod tests {
    use super::*;
    use flate2::{Compression, write::GzEncoder};

    fn tar_gz(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
        for (path, body) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(body.len() as u64);
            header.set_mode(0o644);
            builder.append_data(&mut header, path, *body).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
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
    fn stops_reading_once_summary_is_read() {
        // Incompressible bytes after summary.md, so reading them would show in the count.
        let mut noise = vec![0u8; 1 << 20];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for byte in &mut noise {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *byte = state as u8;
        }
        let archive = tar_gz(&[("b1/summary.md", b"# early\n"), ("b1/logs/big.log", &noise)]);
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
    fn an_archive_without_summary_says_so() {
        let archive = tar_gz(&[("b1/manifest.json", b"{}")]);
        assert!(matches!(
            read_summary(&archive[..]),
            Err(SummaryError::Missing)
        ));
    }
}

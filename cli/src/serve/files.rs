//! Bundle files sent as a body without holding them in memory: a log as it is (or its last
//! lines), a Velero file gzipped on the way as the object store holds it.

use std::path::{Path, PathBuf};

use axum::body::Body;
use tokio_util::io::{ReaderStream, SyncIoBridge};

/// A log whole, streamed; or its last `tail` lines, read from the end.
pub(crate) async fn log(path: PathBuf, tail: Option<usize>) -> std::io::Result<Body> {
    match tail {
        Some(n) => {
            let end = tokio::task::spawn_blocking(move || last_lines(&path, n, MAX_TAIL_BYTES))
                .await
                .map_err(std::io::Error::other)??;
            Ok(Body::from(end))
        }
        None => {
            let file = tokio::fs::File::open(&path).await?;
            Ok(Body::from_stream(ReaderStream::new(file)))
        }
    }
}

/// The most bytes `--tail` answers: a bundle's line may be as long as its log.
const MAX_TAIL_BYTES: u64 = 16 << 20;

/// The last `n` lines of the file at `path` (a last line without its newline counts), read
/// backwards a block at a time; at most its last `max` bytes.
fn last_lines(path: &Path, n: usize, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    const BLOCK: u64 = 64 << 10;
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    if n == 0 || len == 0 {
        return Ok(Vec::new());
    }
    let floor = len.saturating_sub(max);
    // Newlines to pass: n, plus the file's own last one.
    let mut wanted = n;
    let mut start = len;
    let mut found = None;
    let mut block = vec![0u8; BLOCK as usize];
    while start > floor && found.is_none() {
        let from = start.saturating_sub(BLOCK).max(floor);
        let chunk = &mut block[..(start - from) as usize];
        file.seek(SeekFrom::Start(from))?;
        file.read_exact(chunk)?;
        for (i, b) in chunk.iter().enumerate().rev() {
            let at = from + i as u64;
            if *b != b'\n' || at == len - 1 {
                continue;
            }
            wanted -= 1;
            if wanted == 0 {
                found = Some(at + 1);
                break;
            }
        }
        start = from;
    }
    let begin = found.unwrap_or(floor);
    let mut out = Vec::with_capacity((len - begin) as usize);
    file.seek(SeekFrom::Start(begin))?;
    file.take(len - begin).read_to_end(&mut out)?;
    Ok(out)
}

/// `path` gzipped as it is read, on a blocking thread writing into a bounded pipe.
pub(crate) fn gzipped(path: PathBuf) -> Body {
    let (reader, writer) = tokio::io::duplex(64 << 10);
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let mut file = std::fs::File::open(&path)?;
        let mut gz = flate2::write::GzEncoder::new(SyncIoBridge::new(writer), Default::default());
        std::io::copy(&mut file, &mut gz)?;
        gz.finish()?;
        Ok(())
    });
    Body::from_stream(ReaderStream::new(reader))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn the_last_lines_are_read_from_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("velero.log");
        let tail = |text: &str, n: usize, max: u64| {
            std::fs::write(&path, text).unwrap();
            String::from_utf8(last_lines(&path, n, max).unwrap()).unwrap()
        };
        assert_eq!(tail("a\nb\nc\n", 2, 1 << 20), "b\nc\n");
        assert_eq!(tail("a\nb\nc", 2, 1 << 20), "b\nc");
        assert_eq!(tail("a\nb\nc", 5, 1 << 20), "a\nb\nc");
        assert_eq!(tail("a\n", 0, 1 << 20), "");
        assert_eq!(tail("", 3, 1 << 20), "");
        // Across blocks: 200 000 lines of 7 bytes, the last 3.
        let many: String = (0..200_000).map(|i| format!("{i:06}\n")).collect();
        assert_eq!(tail(&many, 3, 1 << 20), "199997\n199998\n199999\n");
        // One line longer than the bound: its last `max` bytes only.
        let long = format!("{}\n", "x".repeat(1000));
        assert_eq!(tail(&long, 1, 100).len(), 100);
    }

    #[tokio::test]
    async fn a_gzipped_file_inflates_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("restore.log");
        let text = "line\n".repeat(50_000);
        std::fs::write(&path, &text).unwrap();
        let body = gzipped(path);
        let bytes = axum::body::to_bytes(body, 10 << 20).await.unwrap();
        let mut out = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, text);
    }
}

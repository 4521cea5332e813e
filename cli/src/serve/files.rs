//! Bundle files sent as a body without holding them in memory: a log as it is (or its last
//! lines), a Velero file gzipped on the way as the object store holds it.

use std::path::PathBuf;

use axum::body::Body;
use tokio_util::io::{ReaderStream, SyncIoBridge};

/// A log whole, streamed; or its last `tail` lines (read whole: `--tail` is for short ends).
pub(crate) async fn log(path: PathBuf, tail: Option<usize>) -> std::io::Result<Body> {
    match tail {
        Some(n) => {
            let text = tokio::fs::read_to_string(&path).await?;
            Ok(Body::from(super::logs::tail(&text, n).to_string()))
        }
        None => {
            let file = tokio::fs::File::open(&path).await?;
            Ok(Body::from_stream(ReaderStream::new(file)))
        }
    }
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

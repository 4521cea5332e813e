//! The bundle's tar.gz, written to a spool file on disk with its sha256 computed on the way, so
//! memory stays bounded however large the logs are.

use std::{
    fs::File,
    io::{self, BufWriter, Read, Write},
    path::{Path, PathBuf},
};

use flate2::{Compression, write::GzEncoder};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Counts and hashes what passes through to the file.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// One file in the bundle, as listed in manifest.json.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct ArchivedFile {
    pub path: String,
    pub size: u64,
}

/// The finished archive on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FinishedArchive {
    pub path: PathBuf,
    pub size: u64,
    pub sha256: String,
    pub file_count: i32,
}

pub(crate) struct TarGzWriter {
    builder: tar::Builder<GzEncoder<HashingWriter<BufWriter<File>>>>,
    path: PathBuf,
    /// Every entry sits under this folder, so extracting a bundle makes one directory.
    root: String,
    files: Vec<ArchivedFile>,
    mtime: u64,
    /// Content bytes taken so far, and the most a spooled file may bring the total to: the
    /// compressed archive never exceeds its content, so the spool folder stays bounded.
    content: u64,
    budget: u64,
}

impl TarGzWriter {
    /// `mtime` (seconds since the epoch) is stamped on every entry, so the same content makes
    /// the same archive.
    pub fn create(path: &Path, root: &str, mtime: u64) -> io::Result<Self> {
        let file = BufWriter::with_capacity(256 * 1024, File::create(path)?);
        let hashing = HashingWriter {
            inner: file,
            hasher: Sha256::new(),
            written: 0,
        };
        let mut builder = tar::Builder::new(GzEncoder::new(hashing, Compression::new(6)));
        builder.mode(tar::HeaderMode::Deterministic);
        Ok(Self {
            builder,
            path: path.to_path_buf(),
            root: root.trim_matches('/').to_string(),
            files: Vec::new(),
            mtime,
            content: 0,
            budget: u64::MAX,
        })
    }

    /// Spooled files that would bring the content above `bytes` are left out (see
    /// [`Self::append_file_within_budget`]).
    pub fn with_budget(mut self, bytes: u64) -> Self {
        self.budget = bytes;
        self
    }

    fn header(&self, size: u64) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_size(size);
        header.set_mode(0o644);
        header.set_mtime(self.mtime);
        header.set_entry_type(tar::EntryType::Regular);
        header
    }

    /// Appends `size` bytes read from `data` at `path` (relative to the bundle root).
    pub fn append_reader(&mut self, path: &str, size: u64, data: impl Read) -> io::Result<()> {
        let mut header = self.header(size);
        let full = format!("{}/{}", self.root, path.trim_start_matches('/'));
        self.builder.append_data(&mut header, &full, data)?;
        self.files.push(ArchivedFile {
            path: path.to_string(),
            size,
        });
        self.content += size;
        Ok(())
    }

    pub fn append_bytes(&mut self, path: &str, data: &[u8]) -> io::Result<()> {
        self.append_reader(path, data.len() as u64, data)
    }

    /// Appends a spooled file, whose size is known once it is written.
    pub fn append_file(&mut self, path: &str, file: &Path) -> io::Result<()> {
        let f = File::open(file)?;
        let size = f.metadata()?.len();
        self.append_reader(path, size, f)
    }

    /// Appends a spooled file unless it would take the content over the budget; false when
    /// it was left out.
    pub fn append_file_within_budget(&mut self, path: &str, file: &Path) -> io::Result<bool> {
        let size = std::fs::metadata(file)?.len();
        if self.content.saturating_add(size) > self.budget {
            return Ok(false);
        }
        self.append_file(path, file)?;
        Ok(true)
    }

    pub fn files(&self) -> &[ArchivedFile] {
        &self.files
    }

    pub fn finish(self) -> io::Result<FinishedArchive> {
        let file_count = self.files.len() as i32;
        let gz = self.builder.into_inner()?;
        let mut hashing = gz.finish()?;
        hashing.flush()?;
        Ok(FinishedArchive {
            path: self.path,
            size: hashing.written,
            sha256: hex::encode(hashing.hasher.finalize()),
            file_count,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;

    #[test]
    fn archive_holds_entries_under_root_and_hash_matches_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.tar.gz");
        let mut w = TarGzWriter::create(&path, "bundle-x", 1_700_000_000).unwrap();
        w.append_bytes("a/one.txt", b"hello").unwrap();
        let spooled = dir.path().join("spool");
        std::fs::write(&spooled, vec![b'x'; 100_000]).unwrap();
        w.append_file("logs/big.log", &spooled).unwrap();
        let done = w.finish().unwrap();

        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(done.size, bytes.len() as u64);
        assert_eq!(done.sha256, hex::encode(Sha256::digest(&bytes)));
        assert_eq!(done.file_count, 2);

        let mut archive = tar::Archive::new(GzDecoder::new(bytes.as_slice()));
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let mut content = Vec::new();
            entry.read_to_end(&mut content).unwrap();
            seen.push((entry.path().unwrap().display().to_string(), content.len()));
        }
        assert_eq!(
            seen,
            [
                ("bundle-x/a/one.txt".to_string(), 5),
                ("bundle-x/logs/big.log".to_string(), 100_000)
            ]
        );
    }

    #[test]
    fn spooled_files_beyond_the_budget_are_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.tar.gz");
        let mut w = TarGzWriter::create(&path, "r", 42)
            .unwrap()
            .with_budget(1000);
        let spool = |name: &str, n: usize| {
            let p = dir.path().join(name);
            std::fs::write(&p, vec![b'x'; n]).unwrap();
            p
        };
        assert!(w.append_file_within_budget("a", &spool("a", 600)).unwrap());
        assert!(!w.append_file_within_budget("b", &spool("b", 600)).unwrap());
        assert!(w.append_file_within_budget("c", &spool("c", 400)).unwrap());
        let names: Vec<_> = w.files().iter().map(|f| f.path.clone()).collect();
        assert_eq!(names, ["a", "c"]);
        assert!(w.finish().unwrap().size < 1000);
    }

    #[test]
    fn same_content_makes_the_same_archive() {
        let dir = tempfile::tempdir().unwrap();
        let make = |name: &str| {
            let mut w = TarGzWriter::create(&dir.path().join(name), "r", 42).unwrap();
            w.append_bytes("f", b"same").unwrap();
            w.finish().unwrap().sha256
        };
        assert_eq!(make("1"), make("2"));
    }
}

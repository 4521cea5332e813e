//! A spooled file compressed ahead of the archive, as gzip members the archive copies in as
//! they are (see [`TarGzWriter::append_compressed`](crate::tar_gz::TarGzWriter)).
//!
//! Each log is compressed as it is read, 16 MiB at a time ([`FollowingCompression`]): the
//! bundle's compression overlaps its reading instead of following it, and ranges of logs read
//! at the same time are compressed on as many cores as there are. One large file written in
//! order (Velero's log from the object store) is compressed on threads of its own
//! ([`CompressingWriter`], [`Compression::threads`]). A concatenation of gzip members is one
//! gzip stream (RFC 1952), so the archive stays one valid `.tar.gz`.

use std::{
    fs::File,
    io::{self, BufWriter, Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
    sync::{Arc, Mutex, mpsc},
    thread::JoinHandle,
};

use flate2::write::GzEncoder;

/// Bytes of one tar block: a file's content is padded to a whole number of them.
const TAR_BLOCK_BYTES: u64 = 512;
/// Buffer of the reads and writes of one range: small, as many logs may be compressed at once.
const BUFFER_BYTES: usize = 64 * 1024;
/// A file is cut into ranges of at least this size: below it, another thread costs more than
/// it saves.
const MIN_RANGE_BYTES: u64 = 8 * 1024 * 1024;
/// A file written in order is handed to its compressing threads in ranges of this size.
const FOLLOW_RANGE_BYTES: u64 = 16 * 1024 * 1024;

/// How the bundle's content is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Compression {
    /// gzip level, 1 (fastest) to 9 (smallest). The default, 2, is several times as fast as
    /// level 6 for an archive a little larger (BENCHMARKS.md, "Compression level by
    /// measurement").
    pub level: u32,
    /// Threads one file is compressed on (its ranges, each a gzip member). 1 suits a pod
    /// limited to one core; logs read at the same time are compressed at the same time
    /// whatever this is.
    pub threads: usize,
}

impl Default for Compression {
    fn default() -> Self {
        Self {
            level: 2,
            threads: 1,
        }
    }
}

impl Compression {
    pub fn flate2(&self) -> flate2::Compression {
        flate2::Compression::new(self.level.clamp(1, 9))
    }
}

/// A file's content (padded to the tar block) as gzip member files, in order.
#[derive(Debug)]
pub(crate) struct CompressedFile {
    /// Bytes of the content before compression and padding: the tar entry's size.
    pub size: u64,
    pub members: Vec<PathBuf>,
}

impl CompressedFile {
    /// Removes the member files (what is left of them once the archive has them).
    pub fn remove(&self) {
        for member in &self.members {
            let _ = std::fs::remove_file(member);
        }
    }
}

/// Ranges and files compressed at the same time ([`FollowingCompression`], [`compress_file`]):
/// one per core, so ranges of logs read together wait their turn instead of holding a
/// compressor's memory each for no gain.
pub(crate) static COMPRESSING: std::sync::LazyLock<tokio::sync::Semaphore> =
    std::sync::LazyLock::new(|| {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        tokio::sync::Semaphore::new(cores)
    });

/// Compresses `file` into member files beside it and removes it. Blocking: call it off the
/// async threads, holding a permit of [`COMPRESSING`].
pub(crate) fn compress_file(file: &Path, how: Compression) -> io::Result<CompressedFile> {
    let size = std::fs::metadata(file)?.len();
    let ranges = ranges(size, how.threads);
    let members: Vec<PathBuf> = (0..ranges.len()).map(|i| member_path(file, i)).collect();
    let padding = padding(size);
    let compressed = if ranges.len() == 1 {
        compress_range(file, ranges[0], padding, &members[0], how)
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = ranges
                .iter()
                .zip(&members)
                .enumerate()
                .map(|(i, (range, member))| {
                    let pad = if i + 1 == ranges.len() { padding } else { 0 };
                    scope.spawn(move || compress_range(file, *range, pad, member, how))
                })
                .collect();
            handles.into_iter().try_for_each(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(io::Error::other("a compression thread panicked")))
            })
        })
    };
    let done = CompressedFile { size, members };
    if let Err(e) = compressed {
        done.remove();
        return Err(e);
    }
    let _ = std::fs::remove_file(file);
    Ok(done)
}

/// `(start, length)` of each range `size` bytes are cut into for `threads`.
fn ranges(size: u64, threads: usize) -> Vec<(u64, u64)> {
    let count = (size / MIN_RANGE_BYTES).clamp(1, threads.max(1) as u64);
    let length = size.div_ceil(count);
    (0..count)
        .map(|i| {
            let start = i * length;
            (start, length.min(size.saturating_sub(start)))
        })
        .collect()
}

/// Zero bytes after `size` bytes of content, to the end of its last tar block.
fn padding(size: u64) -> u64 {
    (TAR_BLOCK_BYTES - size % TAR_BLOCK_BYTES) % TAR_BLOCK_BYTES
}

fn member_path(file: &Path, index: usize) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(format!(".{index}.gz"));
    PathBuf::from(name)
}

fn compress_range(
    file: &Path,
    (start, length): (u64, u64),
    padding: u64,
    member: &Path,
    how: Compression,
) -> io::Result<()> {
    let mut source = File::open(file)?;
    source.seek(SeekFrom::Start(start))?;
    let out = BufWriter::with_capacity(BUFFER_BYTES, File::create(member)?);
    let mut gz = GzEncoder::new(out, how.flate2());
    let mut buffer = vec![0u8; BUFFER_BYTES];
    let mut source = source.take(length);
    let mut copied = 0u64;
    loop {
        let n = source.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        gz.write_all(&buffer[..n])?;
        copied += n as u64;
    }
    if copied != length {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("{} ended after {copied} of {length} bytes", file.display()),
        ));
    }
    gz.write_all(&vec![0u8; padding as usize])?;
    gz.finish()?.flush()
}

/// A spool file compressed while another task still writes it (a log read into it): each
/// range the writer says is on disk for good is compressed on the blocking pool, holding a
/// permit of [`COMPRESSING`], while the writer goes on; what is left when the file is complete
/// is compressed by [`finish`](Self::finish). So a log's compression follows its reading
/// instead of starting when it ends (logs of equal size end together).
pub(crate) struct FollowingCompression {
    path: PathBuf,
    how: Compression,
    /// Bytes of a range handed over while the file is written.
    range_bytes: u64,
    /// Bytes handed over: where the next range starts.
    handed: u64,
    members: Vec<PathBuf>,
    running: Vec<tokio::task::JoinHandle<io::Result<()>>>,
}

impl FollowingCompression {
    pub fn new(path: &Path, how: Compression) -> Self {
        Self {
            path: path.to_path_buf(),
            how,
            range_bytes: FOLLOW_RANGE_BYTES,
            handed: 0,
            members: Vec::new(),
            running: Vec::new(),
        }
    }

    /// Whether `written` bytes make a range worth handing over.
    pub fn due(&self, written: u64) -> bool {
        written.saturating_sub(self.handed) >= self.range_bytes
    }

    /// The file's first `written` bytes are on disk (flushed) and will not change: the bytes
    /// after the last range are compressed from now on.
    pub fn hand_over(&mut self, written: u64) {
        if written <= self.handed {
            return;
        }
        let member = member_path(&self.path, self.members.len());
        self.members.push(member.clone());
        let (source, range, how) = (
            self.path.clone(),
            (self.handed, written - self.handed),
            self.how,
        );
        self.handed = written;
        self.running.push(tokio::spawn(compress_range_in_turn(
            source, range, 0, member, how,
        )));
    }

    /// The file is complete: compresses what is left after the last range (with the tar
    /// padding), waits for every range and removes the file. A file cut shorter than what
    /// was handed over (not expected) is compressed again whole.
    pub async fn finish(mut self) -> io::Result<CompressedFile> {
        let waited = self.wait().await;
        let size = match std::fs::metadata(&self.path) {
            Ok(meta) => meta.len(),
            Err(e) => {
                self.remove_members();
                return Err(e);
            }
        };
        if size < self.handed {
            // Its ranges may have failed reading what was cut: they are not used.
            self.remove_members();
            return self.compress_whole().await;
        }
        if let Err(e) = waited {
            self.remove_members();
            return Err(e);
        }
        let member = member_path(&self.path, self.members.len());
        self.members.push(member.clone());
        let (source, range, how) = (
            self.path.clone(),
            (self.handed, size - self.handed),
            self.how,
        );
        let last = compress_range_in_turn(source, range, padding(size), member, how).await;
        if let Err(e) = last {
            self.remove_members();
            return Err(e);
        }
        let _ = std::fs::remove_file(&self.path);
        Ok(CompressedFile {
            size,
            members: std::mem::take(&mut self.members),
        })
    }

    /// The file is not kept: waits for the ranges under way and removes their members.
    pub async fn discard(mut self) {
        let _ = self.wait().await;
        self.remove_members();
    }

    /// Waits for every range handed over; the first error any met.
    async fn wait(&mut self) -> io::Result<()> {
        let mut first = Ok(());
        for running in self.running.drain(..) {
            let done = running.await.unwrap_or_else(|e| Err(io::Error::other(e)));
            if first.is_ok() {
                first = done;
            }
        }
        first
    }

    async fn compress_whole(&mut self) -> io::Result<CompressedFile> {
        let (source, how) = (self.path.clone(), self.how);
        let _permit = COMPRESSING.acquire().await;
        tokio::task::spawn_blocking(move || compress_file(&source, how))
            .await
            .unwrap_or_else(|e| Err(io::Error::other(e)))
    }

    fn remove_members(&mut self) {
        for member in self.members.drain(..) {
            let _ = std::fs::remove_file(member);
        }
    }
}

/// [`compress_range`] on the blocking pool, once a permit of [`COMPRESSING`] is free.
async fn compress_range_in_turn(
    source: PathBuf,
    range: (u64, u64),
    padding: u64,
    member: PathBuf,
    how: Compression,
) -> io::Result<()> {
    let _permit = COMPRESSING.acquire().await;
    tokio::task::spawn_blocking(move || compress_range(&source, range, padding, &member, how))
        .await
        .unwrap_or_else(|e| Err(io::Error::other(e)))
}

impl Drop for FollowingCompression {
    /// Dropped unfinished (its bundle's steps were dropped): ranges waiting for a permit are
    /// called off and members made so far go; a range being compressed ends on its own and
    /// may leave one, removed with the spool folder.
    fn drop(&mut self) {
        for running in &self.running {
            running.abort();
        }
        self.remove_members();
    }
}

/// One range of a file to compress into a member.
struct RangeJob {
    start: u64,
    length: u64,
    padding: u64,
    member: PathBuf,
}

/// A spool file compressed while it is being written, in order: every
/// [`FOLLOW_RANGE_BYTES`] written are compressed on [`Compression::threads`] threads of its
/// own while the writer goes on, so one large file (Velero's log from the object store) is
/// redacted and compressed at the same time. The writer waits when the threads are behind.
pub(crate) struct CompressingWriter {
    file: BufWriter<File>,
    path: PathBuf,
    written: u64,
    range_start: u64,
    members: Vec<PathBuf>,
    jobs: Option<mpsc::SyncSender<RangeJob>>,
    workers: Vec<JoinHandle<io::Result<()>>>,
}

impl CompressingWriter {
    pub fn create(path: &Path, how: Compression) -> io::Result<Self> {
        let file = BufWriter::with_capacity(BUFFER_BYTES, File::create(path)?);
        let threads = how.threads.max(1);
        let (jobs, queue) = mpsc::sync_channel::<RangeJob>(threads);
        let queue = Arc::new(Mutex::new(queue));
        let workers = (0..threads)
            .map(|_| {
                let queue = Arc::clone(&queue);
                let source = path.to_path_buf();
                std::thread::spawn(move || {
                    loop {
                        let job = match queue.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => {
                                return Err(io::Error::other("a compression thread panicked"));
                            }
                        };
                        let Ok(job) = job else {
                            return Ok(());
                        };
                        compress_range(
                            &source,
                            (job.start, job.length),
                            job.padding,
                            &job.member,
                            how,
                        )?;
                    }
                })
            })
            .collect();
        Ok(Self {
            file,
            path: path.to_path_buf(),
            written: 0,
            range_start: 0,
            members: Vec::new(),
            jobs: Some(jobs),
            workers,
        })
    }

    /// Hands the bytes written since the last range to the threads.
    fn hand_over(&mut self, padding: u64) -> io::Result<()> {
        self.file.flush()?;
        let member = member_path(&self.path, self.members.len());
        self.members.push(member.clone());
        let job = RangeJob {
            start: self.range_start,
            length: self.written - self.range_start,
            padding,
            member,
        };
        self.range_start = self.written;
        let sent = self.jobs.as_ref().map(|jobs| jobs.send(job));
        match sent {
            Some(Ok(())) => Ok(()),
            // Every thread has stopped: the error is theirs, said by finish.
            _ => Err(self
                .stop()
                .err()
                .unwrap_or_else(|| io::Error::other("compression stopped"))),
        }
    }

    /// Stops the threads and says the first error one met.
    fn stop(&mut self) -> io::Result<()> {
        self.jobs = None;
        let mut first = Ok(());
        for worker in self.workers.drain(..) {
            let done = worker
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("a compression thread panicked")));
            if first.is_ok() {
                first = done;
            }
        }
        first
    }

    /// Compresses what is left and waits for the threads. The spooled file stays (a caller
    /// may still read it) until it is removed.
    pub fn finish(mut self) -> io::Result<CompressedFile> {
        let padding = padding(self.written);
        if self.members.is_empty() || self.written > self.range_start || padding > 0 {
            self.hand_over(padding)?;
        }
        self.stop()?;
        Ok(CompressedFile {
            size: self.written,
            members: std::mem::take(&mut self.members),
        })
    }
}

impl Write for CompressingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        if self.written - self.range_start >= FOLLOW_RANGE_BYTES {
            self.hand_over(0)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Drop for CompressingWriter {
    /// Not finished (an error on the way): the threads stop and the members go.
    fn drop(&mut self) {
        let _ = self.stop();
        for member in &self.members {
            let _ = std::fs::remove_file(member);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::MultiGzDecoder;

    fn content(size: usize) -> Vec<u8> {
        (0..size).map(|i| (i * 7 % 251) as u8).collect()
    }

    fn inflated(done: &CompressedFile) -> Vec<u8> {
        let mut bytes = Vec::new();
        for member in &done.members {
            bytes.extend(std::fs::read(member).unwrap());
        }
        let mut out = Vec::new();
        MultiGzDecoder::new(bytes.as_slice())
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn ranges_cover_the_file_once_in_order() {
        for (size, threads) in [
            (0, 4),
            (1, 1),
            (100 << 20, 3),
            ((8 << 20) + 1, 4),
            (50 << 20, 8),
        ] {
            let r = ranges(size, threads);
            assert!(!r.is_empty() && r.len() <= threads.max(1));
            let mut next = 0;
            for (start, length) in &r {
                assert_eq!(*start, next);
                next += length;
            }
            assert_eq!(next, size, "{size} {threads}");
        }
        // Small files are not cut.
        assert_eq!(ranges(MIN_RANGE_BYTES * 2 - 1, 8).len(), 1);
        assert_eq!(ranges(100 << 20, 2).len(), 2);
    }

    #[test]
    fn members_inflate_to_the_content_padded_to_a_tar_block() {
        let dir = tempfile::tempdir().unwrap();
        for (size, threads) in [(0usize, 1), (1000, 1), (512, 1), (25 << 20 | 3, 3)] {
            let file = dir.path().join(format!("f-{size}-{threads}"));
            let data = content(size);
            std::fs::write(&file, &data).unwrap();
            let done = compress_file(&file, Compression { level: 2, threads }).unwrap();
            assert!(!file.exists(), "the spooled file is removed");
            assert_eq!(done.size, size as u64);
            assert_eq!(
                done.members.len(),
                if size > 24 << 20 { threads } else { 1 }
            );
            let out = inflated(&done);
            assert_eq!(out.len() as u64 % TAR_BLOCK_BYTES, 0);
            assert_eq!(&out[..size], &data[..]);
            assert!(out[size..].iter().all(|b| *b == 0));
            assert!(out.len() - size < TAR_BLOCK_BYTES as usize);
            done.remove();
            assert!(done.members.iter().all(|m| !m.exists()));
        }
    }

    #[test]
    fn a_file_compressed_as_it_is_written_inflates_to_its_content() {
        let dir = tempfile::tempdir().unwrap();
        for (size, threads, members) in [
            (0usize, 1, 1),
            (700, 2, 1),
            (40 << 20 | 9, 2, 3),
            (32 << 20, 1, 2),
        ] {
            let file = dir.path().join(format!("w-{size}-{threads}"));
            let data = content(size);
            let mut w =
                CompressingWriter::create(&file, Compression { level: 1, threads }).unwrap();
            for chunk in data.chunks(100_003) {
                w.write_all(chunk).unwrap();
            }
            let done = w.finish().unwrap();
            assert_eq!(done.size, size as u64);
            assert_eq!(done.members.len(), members, "{size}");
            assert_eq!(
                std::fs::read(&file).unwrap(),
                data,
                "the spooled file stays"
            );
            let out = inflated(&done);
            assert_eq!(&out[..size], &data[..]);
            assert_eq!(out.len() as u64, size as u64 + padding(size as u64));
            done.remove();
        }
    }

    /// Writes `data` to `file` in chunks, handing over as a log's copy does (only below
    /// `hand_over_below`), then cuts the file to `cut` bytes and appends `after`.
    async fn follow(
        file: &Path,
        data: &[u8],
        hand_over_below: u64,
        cut: Option<u64>,
        after: &[u8],
    ) -> FollowingCompression {
        let mut compressing = FollowingCompression::new(file, Compression::default());
        // Ranges of 64 KiB: many of them in little time.
        compressing.range_bytes = 64 << 10;
        let mut out = File::create(file).unwrap();
        let mut written = 0u64;
        for chunk in data.chunks(10_000) {
            out.write_all(chunk).unwrap();
            written += chunk.len() as u64;
            if written <= hand_over_below && compressing.due(written) {
                out.flush().unwrap();
                compressing.hand_over(written);
            }
        }
        if let Some(cut) = cut {
            out.set_len(cut).unwrap();
            out.seek(SeekFrom::Start(cut)).unwrap();
        }
        out.write_all(after).unwrap();
        out.flush().unwrap();
        compressing
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_file_compressed_as_it_is_read_inflates_to_its_content() {
        let dir = tempfile::tempdir().unwrap();
        for size in [0usize, 700, (640 << 10) | 9] {
            let file = dir.path().join(format!("f-{size}"));
            let data = content(size);
            let done = follow(&file, &data, u64::MAX, None, b"")
                .await
                .finish()
                .await
                .unwrap();
            assert_eq!(done.size, size as u64);
            // Ranges handed over while written (each past 64 KiB at a 10,000-byte write), the
            // rest at the end.
            assert_eq!(done.members.len(), size / 70_000 + 1, "{size}");
            assert!(!file.exists(), "the spooled file is removed");
            let out = inflated(&done);
            assert_eq!(&out[..size], &data[..]);
            assert_eq!(out.len() as u64, size as u64 + padding(size as u64));
            done.remove();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_head_cut_after_its_ranges_keeps_them_and_the_new_end() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cut");
        let data = content(500_000);
        // Handed over up to 150,000 bytes (two ranges of 70,000), cut at 300,000, a tail
        // appended.
        let cut = 300_000;
        let tail = b"[... marker ...]\nlast line\n";
        let done = follow(&file, &data, 150_000, Some(cut), tail)
            .await
            .finish()
            .await
            .unwrap();
        let mut expected = data[..cut as usize].to_vec();
        expected.extend_from_slice(tail);
        assert_eq!(done.members.len(), 3);
        assert_eq!(done.size, expected.len() as u64);
        let out = inflated(&done);
        assert_eq!(&out[..expected.len()], &expected[..]);
        done.remove();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_file_cut_below_what_was_handed_over_is_compressed_again_whole() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("short");
        let data = content(400_000);
        let done = follow(&file, &data, u64::MAX, Some(1000), b"end")
            .await
            .finish()
            .await
            .unwrap();
        let mut expected = data[..1000].to_vec();
        expected.extend_from_slice(b"end");
        assert_eq!(done.size, 1003);
        assert_eq!(&inflated(&done)[..1003], &expected[..]);
        done.remove();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_discarded_file_leaves_no_member() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("gone");
        follow(&file, &content(400_000), u64::MAX, None, b"")
            .await
            .discard()
            .await;
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, [std::ffi::OsString::from("gone")]);
    }

    #[test]
    fn a_writer_dropped_unfinished_leaves_no_member() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("w");
        let mut w = CompressingWriter::create(&file, Compression::default()).unwrap();
        w.write_all(&content(20 << 20)).unwrap();
        drop(w);
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, [std::ffi::OsString::from("w")]);
    }

    #[test]
    fn a_missing_file_is_an_error_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let err = compress_file(&dir.path().join("gone"), Compression::default()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}

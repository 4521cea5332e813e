//! Velero's own files for the target, read straight from the object store and decompressed.
//! A missing file is a warning: logs and results exist only once an operation has finished.

use std::{
    fs::File,
    io::{BufRead, BufReader, Read, Write},
    path::{Path, PathBuf},
    sync::Arc,
};

use flate2::read::MultiGzDecoder;

use super::{
    CollectError, Found, Sink, Sources,
    budget::ContentBudget,
    lines::{CappedLine, CopyReport, LineCopy, read_line},
    tail_keeper::{Kept, Size, TailKeeper},
    velero_files,
};
use crate::{
    config::{Compression, size_text},
    findings::{LogRole, LogScan, LogSource, MissingLog},
    gzip_members::{CompressedFile, CompressingWriter},
    kubernetes,
    redact::{MaskCounts, Redactor},
    storage::StorageError,
    tar_gz::EntryPath,
    velero::{
        BACKUP_RESULTS_PATH, StoredArtifact, Target, backup_results_artifact, stored_artifacts,
    },
};

pub(super) async fn artifacts(
    src: &Sources<'_>,
    out: &mut Sink,
    found: &mut Found,
) -> Result<(), CollectError> {
    let mut artifacts = stored_artifacts(&src.plan.target);
    artifacts.extend(restore_backup_artifact(src, found));
    for artifact in artifacts {
        let key = src.location.key(&artifact.key);
        let raw = out.spool_path(&artifact.bundle_path);
        let downloaded = match download(src, out, found, &artifact, &key, &raw).await {
            Download::Done(n) => n,
            Download::Skipped => continue,
            Download::LocationUnreadable => break,
        };
        add_artifact(src, out, found, &artifact, &key, raw, downloaded).await?;
    }
    Ok(())
}

/// What became of one file's download.
enum Download {
    /// Bytes downloaded into the spool.
    Done(u64),
    /// The file is not had (a warning says why, unless it was optional).
    Skipped,
    /// The location's bucket is missing: every other file is too.
    LocationUnreadable,
}

/// Downloads one of Velero's files into `raw`; a failure is warned about (when it matters)
/// and nothing is left in the spool.
async fn download(
    src: &Sources<'_>,
    out: &mut Sink,
    found: &mut Found,
    artifact: &StoredArtifact,
    key: &str,
    raw: &Path,
) -> Download {
    // A compressed file larger than the inflated cap inflates beyond it (gzip adds a few
    // bytes at most), so no more than that is downloaded.
    match src
        .store
        .download(key, raw, src.limits.max_inflated_bytes)
        .await
    {
        Ok(n) => Download::Done(n),
        Err(StorageError::NotFound { .. }) if artifact.optional => {
            let _ = std::fs::remove_file(raw);
            Download::Skipped
        }
        Err(StorageError::NotFound { .. }) => {
            let _ = std::fs::remove_file(raw);
            // Velero uploads a file when the operation finishes: missing after that, it was
            // deleted or is looked for in the wrong place.
            let why = if found.summary.evidence.target.is_final() {
                "although the operation finished: it was deleted, or the location's bucket or prefix is not the one Velero wrote to"
            } else {
                "Velero uploads it only when the operation finishes"
            };
            out.warn(format!("{key} is not in the object store ({why})"));
            if artifact.bundle_path.ends_with(".log") {
                operation_log_missing(out, found, key, "not in the object store");
            }
            Download::Skipped
        }
        Err(e @ StorageError::BucketMissing { .. }) => {
            let _ = std::fs::remove_file(raw);
            // Every other file of the location is missing for the same reason: said once.
            out.warn(format!("Velero's files could not be read: {e}"));
            operation_log_missing(out, found, key, &e.to_string());
            Download::LocationUnreadable
        }
        Err(e) => {
            let _ = std::fs::remove_file(raw);
            out.warn(format!("{key} could not be read: {e}"));
            if artifact.bundle_path.ends_with(".log") {
                operation_log_missing(out, found, key, &e.to_string());
            }
            Download::Skipped
        }
    }
}

/// Decodes, redacts and compresses one downloaded file (`raw`, removed after) into the
/// bundle.
async fn add_artifact(
    src: &Sources<'_>,
    out: &mut Sink,
    found: &mut Found,
    artifact: &StoredArtifact,
    key: &str,
    raw: PathBuf,
    downloaded: u64,
) -> Result<(), CollectError> {
    let entry = entry_path(&artifact.bundle_path);
    let text = out.spool_path(&artifact.bundle_path);
    let work = redaction(
        src,
        out,
        artifact,
        &entry,
        raw.clone(),
        text.clone(),
        downloaded,
    );
    // Decompressing, redacting and compressing Velero's log (the bundle's largest file,
    // often) is seconds of CPU: on a blocking thread, so other bundles' reconciles run on.
    let decoded = work.run().await;
    let _ = std::fs::remove_file(&raw);
    match decoded {
        Ok(redacted) => keep_redacted(src, out, found, artifact, key, &text, redacted).await,
        Err(e) => {
            let _ = std::fs::remove_file(&text);
            out.warn(format!("{key} could not be decompressed: {e}"));
            Ok(())
        }
    }
}

/// The work of redacting one downloaded file into `text`, with the line cap of its kind.
fn redaction(
    src: &Sources<'_>,
    out: &Sink,
    artifact: &StoredArtifact,
    entry: &EntryPath,
    raw: PathBuf,
    text: PathBuf,
    downloaded: u64,
) -> Redaction {
    let is_log = artifact.bundle_path.ends_with(".log");
    let (max_line_bytes, line_cap) = if is_log {
        (src.limits.max_line_bytes, "MAX_LINE_BYTES")
    } else {
        (src.limits.max_json_line_bytes, "MAX_JSON_LINE_BYTES")
    };
    // The operation's own log goes through the findings as it is copied.
    let scan = is_log.then(|| {
        LogScan::new(LogSource {
            path: entry.to_string(),
            role: LogRole::Operation,
            pod: None,
            node: None,
            previous: false,
        })
    });
    let max_inflated_bytes = src.limits.max_inflated_bytes;
    Redaction {
        redactor: out.redactor.clone(),
        budget: out.budget.clone(),
        max_line_bytes,
        line_cap,
        raw,
        gzipped: artifact.gzipped,
        cut: downloaded > max_inflated_bytes,
        text,
        compression: out.compression,
        max_inflated_bytes,
        keep_end: is_log,
        scan,
    }
}

/// Adds a redacted file to the bundle with the warnings of what was cut, or leaves it out
/// when the bundle had no room for any of it; whole JSON goes to the findings too.
async fn keep_redacted(
    src: &Sources<'_>,
    out: &mut Sink,
    found: &mut Found,
    artifact: &StoredArtifact,
    key: &str,
    text: &Path,
    redacted: Redacted,
) -> Result<(), CollectError> {
    let entry = &entry_path(&artifact.bundle_path);
    let Redacted {
        cut,
        compressed,
        report,
        masks,
        scan,
    } = redacted;
    if report.written == 0 && report.out_of_budget {
        let _ = std::fs::remove_file(text);
        compressed.remove();
        out.warn_left_out(entry);
        return Ok(());
    }
    let cap = src.limits.max_inflated_bytes;
    match cut {
        Cut::Whole => {}
        Cut::End => out.warn(format!(
            "{entry}: {key} decompresses to more than the {} cap on one object-store file \
             (MAX_INFLATED_BYTES); kept its first {0}, redacted line by line",
            size_text(cap)
        )),
        Cut::Middle { lines } => out.warn(format!(
            "{entry}: {key} decompresses to more than the {} cap on one object-store file \
             (MAX_INFLATED_BYTES); kept its first and last {}, {lines} lines between them left \
             out (a marker line says where)",
            size_text(cap),
            size_text(cap / 2)
        )),
    }
    for warning in report.warnings(&entry.to_string(), &out.budget) {
        out.warn(warning);
    }
    let whole = cut == Cut::Whole && !report.out_of_budget && report.cut_lines == 0;
    if let Some(scan) = scan {
        found.summary.evidence.add_log_scan(scan);
    }
    // A cut file is no longer JSON; the warnings above already say what happened to it.
    if whole {
        feed_json(
            out,
            found,
            &artifact.bundle_path,
            &entry.to_string(),
            text,
            key,
        )
        .await;
    }
    let _ = std::fs::remove_file(text);
    out.add_compressed(entry, &compressed, &masks)
}

/// One downloaded object-store file to decode, redact and compress, owned whole so it can
/// go to a blocking thread.
struct Redaction {
    redactor: Arc<Redactor>,
    budget: ContentBudget,
    max_line_bytes: usize,
    line_cap: &'static str,
    /// The download.
    raw: PathBuf,
    gzipped: bool,
    /// The download stopped at the cap.
    cut: bool,
    /// Where the redacted text is compressed to.
    text: PathBuf,
    compression: Compression,
    max_inflated_bytes: u64,
    /// A log keeps its end too when over the cap.
    keep_end: bool,
    scan: Option<LogScan>,
}

/// What [`Redaction::run`] gives back.
struct Redacted {
    /// What the inflated cap left out.
    cut: Cut,
    compressed: CompressedFile,
    report: CopyReport,
    masks: MaskCounts,
    scan: Option<LogScan>,
}

impl Redaction {
    async fn run(self) -> std::io::Result<Redacted> {
        match tokio::task::spawn_blocking(move || self.run_blocking()).await {
            Ok(redacted) => redacted,
            // A panic is the reconcile's, failing this bundle alone (see `bundle::apply`).
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(std::io::Error::other(e)),
        }
    }

    fn run_blocking(mut self) -> std::io::Result<Redacted> {
        let mut copy = LineCopy::new(
            &self.redactor,
            self.budget.clone(),
            self.max_line_bytes,
            self.line_cap,
        );
        let source = Source {
            path: &self.raw,
            gzipped: self.gzipped,
            cut: self.cut,
            keep_end: self.keep_end.then_some(self.text.as_path()),
        };
        let mut out = CompressingWriter::create(&self.text, self.compression)?;
        let cut = decode_and_redact(
            &source,
            &mut out,
            &mut copy,
            self.max_inflated_bytes,
            self.scan.as_mut(),
        )?;
        let compressed = out.finish()?;
        Ok(Redacted {
            cut,
            compressed,
            masks: copy.masks().clone(),
            report: copy.report,
            scan: self.scan,
        })
    }
}

/// A Restore's backup's results file, so a backup that itself missed objects is shown with
/// its errors. The backup name comes from the restore's spec, so it must be a name before it
/// becomes part of a key.
fn restore_backup_artifact(src: &Sources<'_>, found: &Found) -> Option<StoredArtifact> {
    let Target::Restore(_) = src.plan.target else {
        return None;
    };
    let backup = found.summary.evidence.target.backup_name.as_deref()?;
    kubernetes::is_object_name(backup).then(|| backup_results_artifact(backup))
}

/// The operation's own log cannot be had (the warning just given says why): the logs step
/// puts the Velero server's lines for the operation in its place and adds that to the warning.
fn operation_log_missing(out: &Sink, found: &mut Found, key: &str, why: &str) {
    found.missing_operation_log = out.warnings.len().checked_sub(1);
    found.summary.evidence.operation_log_missing = Some(MissingLog {
        key: key.to_string(),
        why: why.to_string(),
        stand_in: None,
    });
}

/// Streams a results file or itemoperations.json (as redacted into the spool) into the
/// findings' evidence.
async fn feed_json(
    out: &mut Sink,
    found: &mut Found,
    bundle_path: &str,
    entry: &str,
    text: &Path,
    key: &str,
) {
    let Ok(file) = File::open(text) else {
        return;
    };
    // A results file is megabytes of JSON: parsed on a blocking thread, the evidence lent to
    // it and given back.
    let mut evidence = std::mem::take(&mut found.summary.evidence);
    let (bundle_path, entry) = (bundle_path.to_string(), entry.to_string());
    let fed = tokio::task::spawn_blocking(move || {
        let fed = if bundle_path == BACKUP_RESULTS_PATH {
            velero_files::feed_results(file, &entry, &mut evidence.backup_results)
        } else if bundle_path.ends_with("results.json") {
            velero_files::feed_results(file, &entry, &mut evidence.results)
        } else if bundle_path.ends_with("itemoperations.json") {
            velero_files::feed_item_operations(file, &entry, &mut evidence)
        } else {
            Ok(())
        };
        (evidence, fed)
    })
    .await;
    match fed {
        Ok((evidence, fed)) => {
            found.summary.evidence = evidence;
            if let Err(e) = fed {
                out.warn(format!("{key} is not valid JSON: {e}"));
            }
        }
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Only when the runtime shuts down, which cancels the collection too.
        Err(e) => out.warn(format!("{key} could not be parsed: {e}")),
    }
}

/// The entry of an artifact's bundle path (`object-store/results.json`, the code's own), split
/// into its components.
fn entry_path(bundle_path: &str) -> EntryPath {
    let (folders, file) = bundle_path.rsplit_once('/').unwrap_or(("", bundle_path));
    let folders: Vec<&str> = folders.split('/').filter(|f| !f.is_empty()).collect();
    let (stem, extension) = file.rsplit_once('.').unwrap_or((file, ""));
    EntryPath::new(&folders, stem, extension)
}

/// A downloaded object-store file.
struct Source<'a> {
    path: &'a Path,
    gzipped: bool,
    /// The download stopped at the cap: the file is only the start of the object.
    cut: bool,
    /// A log over the cap keeps its end too, in parts at this path (see [`Cut::Middle`]).
    keep_end: Option<&'a Path>,
}

/// A log over the inflated cap is read up to this many times the cap to reach its end (a
/// small gzip that inflates to gigabytes still stops, and only its head is kept).
const READ_PAST_CAP: u64 = 8;

/// What of a file over the inflated cap was left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    Whole,
    /// Only its start is kept: a JSON file, a download cut at its cap, a log past the read
    /// limit.
    End,
    /// Its first and last lines are kept, the cap in all (the end up to half of it, less when
    /// the download was large), with a marker line between for the lines left out.
    Middle {
        lines: u64,
    },
}

/// Renders one line into `out` (and the scan); false once the bundle's budget is spent.
fn write_line(
    out: &mut impl Write,
    copy: &mut LineCopy,
    scan: &mut Option<&mut LogScan>,
    line: &[u8],
    read: CappedLine,
) -> std::io::Result<bool> {
    let rendered = copy.render(line, read);
    if let Some(scan) = scan.as_deref_mut() {
        scan.offer(rendered);
    }
    out.write_all(rendered.as_bytes())?;
    Ok(!copy.report.out_of_budget)
}

/// Decompresses (when gzipped) at most `max_inflated_bytes` and copies it line by line
/// through `copy`, streaming from file to file; says what was left out past the cap. A log
/// (`keep_end`) is read on to its end and keeps its last half-cap of lines too.
fn decode_and_redact(
    from: &Source,
    out: &mut impl Write,
    copy: &mut LineCopy,
    max_inflated_bytes: u64,
    mut scan: Option<&mut LogScan>,
) -> std::io::Result<Cut> {
    let file = File::open(from.path)?;
    let downloaded = file.metadata()?.len();
    let decoded: Box<dyn Read> = if from.gzipped {
        Box::new(MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let Bounds {
        tail_room,
        keep_end,
        read_limit,
        head_room,
    } = Bounds::of(from, downloaded, max_inflated_bytes);
    let mut reader = BufReader::with_capacity(256 * 1024, decoded.take(read_limit));
    let mut line = Vec::new();
    let max_line_bytes = copy.max_line_bytes();
    let (mut head_bytes, mut tail) = (0u64, None);
    loop {
        // Lines redaction leaves as they are go on in one piece, within the head's room.
        if head_bytes < head_room {
            let buffered = match reader.fill_buf() {
                Ok(buffered) => buffered,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return read_failed(e, from, out),
            };
            if let Some(text) = copy.unchanged_lines(buffered, head_room - head_bytes) {
                if let Some(scan) = scan.as_deref_mut() {
                    scan.offer_lines(text);
                }
                out.write_all(text.as_bytes())?;
                let taken = text.len();
                reader.consume(taken);
                head_bytes += taken as u64;
                continue;
            }
        }
        let read = match read_line(&mut reader, &mut line, max_line_bytes) {
            Ok(Some(read)) => read,
            Ok(None) => break,
            Err(e) => return read_failed(e, from, out),
        };
        if head_bytes < head_room {
            head_bytes += read.bytes;
            if !write_line(out, copy, &mut scan, &line, read)? {
                return out.flush().map(|()| Cut::Whole);
            }
        } else if let Some(base) = keep_end {
            let keeper = match &mut tail {
                Some(keeper) => keeper,
                None => tail.insert(TailKeeper::beside(base, Size::raw_only(tail_room))),
            };
            // Kept without its newline: the keeper's records are lines of their own.
            let body = line.strip_suffix(b"\n").unwrap_or(&line);
            keeper.push(body, read.kept(), read.bytes)?;
        }
    }
    // At the limit: one more byte says whether the file goes on (decoding it costs at most one
    // deflate block, not the rest of the file); an error there is more too, past the limit.
    let decoded = reader.into_inner();
    let more = decoded.limit() == 0 && !matches!(decoded.into_inner().read(&mut [0]), Ok(0));
    let cut = match tail {
        None if more || from.cut => Cut::End,
        None => Cut::Whole,
        // Past the read limit the kept lines are not the end: the head alone is kept.
        Some(_) if more => Cut::End,
        Some(keeper) => end_after_head(out, copy, &mut scan, keeper, max_inflated_bytes)?,
    };
    out.flush()?;
    Ok(cut)
}

/// How much of a file is read and kept where.
struct Bounds<'a> {
    /// What the kept end may hold.
    tail_room: u64,
    /// Where the end's parts go, when the end is kept.
    keep_end: Option<&'a Path>,
    /// Inflated bytes read at most.
    read_limit: u64,
    /// Inflated bytes of the head: the lines starting within them are written.
    head_room: u64,
}

impl<'a> Bounds<'a> {
    fn of(from: &Source<'a>, downloaded: u64, max_inflated_bytes: u64) -> Self {
        // The end's two parts share the spool's room for one object-store file with the
        // download (spool.sizeLimit allows one cap per slot): each holds at most half of what
        // is left.
        let tail_room =
            (max_inflated_bytes / 2).min(max_inflated_bytes.saturating_sub(downloaded) / 2);
        // A download cut at its cap never reaches the end of the object.
        let keep_end = from.keep_end.filter(|_| !from.cut && tail_room > 0);
        let (read_limit, head_room) = match keep_end {
            // The head and the end together keep the cap: a file within it is whole.
            Some(_) => (
                max_inflated_bytes.saturating_mul(READ_PAST_CAP),
                max_inflated_bytes - tail_room,
            ),
            None => (max_inflated_bytes, u64::MAX),
        };
        Bounds {
            tail_room,
            keep_end,
            read_limit,
            head_room,
        }
    }
}

/// A read of `from` that failed: a download cut at the cap ends mid-stream, and what came
/// before it is kept.
fn read_failed(e: std::io::Error, from: &Source, out: &mut impl Write) -> std::io::Result<Cut> {
    match from.cut {
        true => out.flush().map(|()| Cut::End),
        false => Err(e),
    }
}

/// Writes the kept end of a log after its head, with a marker line for what was left out.
fn end_after_head(
    out: &mut impl Write,
    copy: &mut LineCopy,
    scan: &mut Option<&mut LogScan>,
    keeper: TailKeeper,
    max_inflated_bytes: u64,
) -> std::io::Result<Cut> {
    let kept = keeper.finish()?;
    let lines = kept.left_out_lines;
    if lines > 0 {
        let marker = super::markers::head_and_tail(
            &format!("{lines} lines of the log left out"),
            &format!(
                "it inflates to more than MAX_INFLATED_BYTES ({})",
                size_text(max_inflated_bytes)
            ),
        );
        let read = CappedLine::from_kept(
            Kept {
                newline: true,
                cut: false,
            },
            marker.len() as u64 + 1,
        );
        if !write_line(out, copy, scan, marker.as_bytes(), read)? {
            return Ok(Cut::Middle { lines });
        }
    }
    let mut kept_lines = kept.lines();
    while let Some(kept) = kept_lines.next()? {
        let read = CappedLine::from_kept(kept.how, kept.raw);
        if !write_line(out, copy, scan, kept.line, read)? {
            break;
        }
    }
    Ok(if lines > 0 {
        Cut::Middle { lines }
    } else {
        Cut::Whole
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compression, write::GzEncoder};
    use std::io::BufWriter;

    /// [`decode_and_redact`] into a plain file.
    fn decode_to(
        from: &Source,
        to: &Path,
        copy: &mut LineCopy,
        max_inflated_bytes: u64,
        scan: Option<&mut LogScan>,
    ) -> std::io::Result<Cut> {
        let mut out = BufWriter::new(File::create(to)?);
        let cut = decode_and_redact(from, &mut out, copy, max_inflated_bytes, scan);
        out.flush()?;
        cut
    }

    #[test]
    fn artifacts_keep_their_bundle_paths() {
        for target in [Target::Backup("b".into()), Target::Restore("r".into())] {
            for artifact in stored_artifacts(&target) {
                let entry = entry_path(&artifact.bundle_path);
                assert_eq!(entry.to_string(), artifact.bundle_path);
            }
        }
        let backup_results = backup_results_artifact("b");
        assert_eq!(
            entry_path(&backup_results.bundle_path).to_string(),
            BACKUP_RESULTS_PATH
        );
    }

    use crate::{collect::budget::ContentBudget, redact::Redactor};

    const MIB: u64 = 1024 * 1024;

    fn copy(redactor: &Redactor) -> LineCopy<'_> {
        LineCopy::new(
            redactor,
            ContentBudget::new(u64::MAX),
            MIB as usize,
            "MAX_LINE_BYTES",
        )
    }

    fn gzip(path: &Path, content: &[u8]) {
        let mut enc = GzEncoder::new(File::create(path).unwrap(), Compression::fast());
        enc.write_all(content).unwrap();
        enc.finish().unwrap();
    }

    #[test]
    fn gzipped_artifacts_are_decoded_and_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("in.gz");
        gzip(&gz, b"level=info msg=ok\npassword=hunter2\nlast line");
        let out = dir.path().join("out");
        let source = Source {
            path: &gz,
            gzipped: true,
            cut: false,
            keep_end: None,
        };
        let redactor = Redactor::new();
        let mut copy = copy(&redactor);
        let cut = decode_to(&source, &out, &mut copy, 4 * MIB, None).unwrap();
        assert_eq!(cut, Cut::Whole);
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "level=info msg=ok\npassword=***REDACTED***\nlast line"
        );
        // What was masked is counted for the manifest.
        assert_eq!(copy.masks().get("secret-named-key-value"), 1);
        assert_eq!(copy.masks().total(), 1);
    }

    #[test]
    fn a_file_of_exactly_the_cap_is_whole_and_one_byte_more_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("in.gz");
        gzip(&gz, &[b'a'; 100]);
        let out = dir.path().join("out");
        let source = Source {
            path: &gz,
            gzipped: true,
            cut: false,
            keep_end: None,
        };
        let redactor = Redactor::new();
        let cut = |cap| decode_to(&source, &out, &mut copy(&redactor), cap, None).unwrap();
        assert_eq!(cut(100), Cut::Whole);
        assert_eq!(cut(99), Cut::End);
        assert_eq!(std::fs::read(&out).unwrap(), [b'a'; 99]);
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_inflated_cap() {
        let dir = tempfile::tempdir().unwrap();
        // One gzip member of 1 MiB of short lines, repeated: 2 GiB inflated from a file of a
        // few megabytes, made without ever holding more than 1 MiB.
        let member = dir.path().join("member.gz");
        let mut lines = Vec::with_capacity(MIB as usize);
        while lines.len() < MIB as usize {
            let start = lines.len();
            lines.extend_from_slice(b"{\"password\":\"hunter2\"}");
            lines.resize(start + 1023, b' ');
            lines.push(b'\n');
        }
        lines.truncate(MIB as usize);
        gzip(&member, &lines);
        let member = std::fs::read(&member).unwrap();
        let bomb = dir.path().join("bomb.gz");
        let mut file = BufWriter::new(File::create(&bomb).unwrap());
        for _ in 0..2048 {
            file.write_all(&member).unwrap();
        }
        file.flush().unwrap();
        drop(file);

        let out = dir.path().join("out");
        let source = Source {
            path: &bomb,
            gzipped: true,
            cut: false,
            keep_end: None,
        };
        let redactor = Redactor::new();
        let mut copy = copy(&redactor);
        let cut = decode_to(&source, &out, &mut copy, MIB, None).unwrap();
        assert_eq!(cut, Cut::End, "the bomb was not reported as cut");
        let text = std::fs::read_to_string(&out).unwrap();
        // Exactly the lines of the first MiB inflated (each a little longer once masked).
        assert_eq!(text.lines().count(), 1024);
        assert_eq!(copy.report.written, text.len() as u64);
        assert!(!text.contains("hunter2"), "a secret passed unmasked");
        assert!(text.starts_with("{\"password\":\"***REDACTED***\"}"));
    }

    #[test]
    fn a_download_cut_at_the_cap_keeps_what_came_before() {
        let dir = tempfile::tempdir().unwrap();
        let whole = dir.path().join("whole.gz");
        let content: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
        gzip(&whole, content.as_bytes());
        let bytes = std::fs::read(&whole).unwrap();
        let half = dir.path().join("half.gz");
        std::fs::write(&half, &bytes[..bytes.len() / 2]).unwrap();
        let out = dir.path().join("out");
        let redactor = Redactor::new();
        let mut source = Source {
            path: &half,
            gzipped: true,
            cut: true,
            keep_end: None,
        };
        let cut = decode_to(&source, &out, &mut copy(&redactor), 4 * MIB, None).unwrap();
        assert_eq!(cut, Cut::End);
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(text.starts_with("line 0\nline 1\n"));
        assert!(content.starts_with(&text));
        // The same file not cut by the download is a broken gzip: an error.
        source.cut = false;
        assert!(decode_to(&source, &out, &mut copy(&redactor), 4 * MIB, None).is_err());
    }

    fn log_source<'a>(gz: &'a Path, base: &'a Path) -> Source<'a> {
        Source {
            path: gz,
            gzipped: true,
            cut: false,
            keep_end: Some(base),
        }
    }

    #[test]
    fn a_log_over_the_cap_keeps_its_head_and_its_end_and_the_scan_sees_both() {
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("restore.log.gz");
        let mut content: String = (0..10_000)
            .map(|i| format!("level=info msg=\"line {i:05}\"\n"))
            .collect();
        content.push_str(
            "level=error msg=\"timed out waiting for all PodVolumeRestores to complete: the end\"\n",
        );
        gzip(&gz, content.as_bytes());
        let out = dir.path().join("out");
        let redactor = Redactor::new();
        let mut scan = LogScan::new(LogSource {
            path: "object-store/restore.log".into(),
            role: LogRole::Operation,
            pod: None,
            node: None,
            previous: false,
        });
        let base = dir.path().join("text");
        let source = log_source(&gz, &base);
        let cut = decode_to(
            &source,
            &out,
            &mut copy(&redactor),
            64 * 1024,
            Some(&mut scan),
        )
        .unwrap();
        let Cut::Middle { lines } = cut else {
            panic!("{cut:?}")
        };
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(text.starts_with("level=info msg=\"line 00000\"\n"));
        assert!(
            text.ends_with("the end\"\n"),
            "the end was lost: {}",
            &text[text.len() - 300..]
        );
        let kept = text.lines().count() as u64;
        assert_eq!(
            kept - 1 + lines,
            10_001,
            "kept and left-out lines add up (one marker)"
        );
        let marker = text
            .lines()
            .find(|l| l.starts_with("----- velero-debug-operator:"))
            .unwrap();
        assert!(
            marker.contains(&format!("{lines} lines of the log left out")),
            "{marker}"
        );
        assert!(text.len() < 64 * 1024 + 1024, "{} bytes kept", text.len());
        // The parts are gone; the scan saw the line at the end.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
        let mut e = crate::findings::Evidence::default();
        e.add_log_scan(scan);
        let hit = e.log_hits.first().expect("the last line was scanned");
        assert_eq!(hit.hit.line, kept, "line numbers are the bundle file's");
    }

    #[test]
    fn a_log_within_the_cap_or_past_the_read_limit_keeps_no_marker() {
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("small.log.gz");
        let content: String = (0..100).map(|i| format!("line {i}\n")).collect();
        gzip(&gz, content.as_bytes());
        let (out, base) = (dir.path().join("out"), dir.path().join("text"));
        let redactor = Redactor::new();
        let source = log_source(&gz, &base);
        // Within the cap, though over half of it: whole, in order.
        let cut = decode_to(
            &source,
            &out,
            &mut copy(&redactor),
            content.len() as u64,
            None,
        );
        assert_eq!(cut.unwrap(), Cut::Whole);
        assert_eq!(std::fs::read_to_string(&out).unwrap(), content);
        // More than READ_PAST_CAP times the cap: the end is never reached, the head is kept.
        let cap = content.len() as u64 / (READ_PAST_CAP + 1);
        let cut = decode_to(&source, &out, &mut copy(&redactor), cap, None).unwrap();
        assert_eq!(cut, Cut::End);
        assert!(content.starts_with(&std::fs::read_to_string(&out).unwrap()));
    }
}

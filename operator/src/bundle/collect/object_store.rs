//! Velero's own files for the target, read straight from the object store and decompressed.
//! A missing file is a warning: logs and results exist only once an operation has finished.

use std::{
    fs::File,
    io::{BufRead, BufReader, BufWriter, Read, Write},
    path::Path,
};

use flate2::read::MultiGzDecoder;

use super::{
    CollectError, Collector,
    lines::{LineCopy, read_line},
};
use crate::{
    config::size_text, storage::StorageError, tar_gz::EntryPath, velero::stored_artifacts,
};

/// Results files are small; anything bigger is not parsed for the summary.
const MAX_RESULTS_BYTES: u64 = 16 * 1024 * 1024;

pub(super) async fn artifacts(c: &mut Collector<'_>) -> Result<(), CollectError> {
    let max_inflated_bytes = c.limits.max_inflated_bytes;
    for artifact in stored_artifacts(&c.plan.target) {
        let key = c.location.key(&artifact.key);
        let entry = entry_path(&artifact.bundle_path);
        let raw = c.spool_path(&artifact.bundle_path);
        // A compressed file larger than the inflated cap inflates beyond it (gzip adds a few
        // bytes at most), so no more than that is downloaded.
        let downloaded = match c.store.download(&key, &raw, max_inflated_bytes).await {
            Ok(n) => n,
            Err(StorageError::NotFound { .. }) if artifact.optional => {
                let _ = std::fs::remove_file(&raw);
                continue;
            }
            Err(StorageError::NotFound { .. }) => {
                let _ = std::fs::remove_file(&raw);
                c.warn(format!(
                    "{key} is not in the object store (Velero uploads it only when the operation finishes)"
                ));
                continue;
            }
            Err(e) => {
                let _ = std::fs::remove_file(&raw);
                c.warn(format!("{key} could not be read: {e}"));
                continue;
            }
        };
        let text = c.spool_path(&artifact.bundle_path);
        let is_log = artifact.bundle_path.ends_with(".log");
        let (max_line_bytes, line_cap) = if is_log {
            (c.limits.max_line_bytes, "MAX_LINE_BYTES")
        } else {
            (c.limits.max_json_line_bytes, "MAX_JSON_LINE_BYTES")
        };
        let mut copy = LineCopy::new(c.redactor, c.budget.clone(), max_line_bytes, line_cap);
        let source = Source {
            path: &raw,
            gzipped: artifact.gzipped,
            cut: downloaded > max_inflated_bytes,
        };
        let decoded = tokio::task::block_in_place(|| {
            decode_and_redact(&source, &text, &mut copy, max_inflated_bytes)
        });
        let _ = std::fs::remove_file(&raw);
        let inflated_cut = match decoded {
            Ok(cut) => cut,
            Err(e) => {
                let _ = std::fs::remove_file(&text);
                c.warn(format!("{key} could not be decompressed: {e}"));
                continue;
            }
        };
        let report = copy.report;
        if report.written == 0 && report.out_of_budget {
            let _ = std::fs::remove_file(&text);
            c.warn_left_out(&entry);
            continue;
        }
        if inflated_cut {
            c.warn(format!(
                "{entry}: {key} decompresses to more than the {} cap on one object-store file \
                 (MAX_INFLATED_BYTES); kept its first {0}, redacted line by line",
                size_text(max_inflated_bytes)
            ));
        }
        for warning in report.warnings(&entry.to_string(), &c.budget) {
            c.warn(warning);
        }
        let whole = !inflated_cut && !report.out_of_budget && report.cut_lines == 0;
        if is_log {
            // The operation's own log: its error lines go into summary.md.
            let summary = &mut c.summary;
            tokio::task::block_in_place(|| {
                if let Ok(f) = File::open(&text) {
                    for line in BufReader::new(f).lines().map_while(Result::ok) {
                        summary.offer_log_line(&line);
                    }
                }
            });
        }
        // A cut file is no longer JSON; the warnings above already say what happened to it.
        if whole
            && artifact.bundle_path.ends_with("results.json")
            && std::fs::metadata(&text).is_ok_and(|m| m.len() <= MAX_RESULTS_BYTES)
            && let Ok(results) = std::fs::read(&text)
        {
            match serde_json::from_slice(&results) {
                Ok(v) => c.summary.set_results(&v),
                Err(e) => c.warn(format!("{key} is not valid JSON: {e}")),
            }
        }
        let masks = copy.masks().clone();
        c.add_spooled(&entry, &text, &masks)?;
    }
    Ok(())
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
}

/// Decompresses (when gzipped) at most `max_inflated_bytes` and copies it line by line
/// through `copy`, streaming from file to file; true when there was more past the cap.
fn decode_and_redact(
    from: &Source,
    to: &Path,
    copy: &mut LineCopy,
    max_inflated_bytes: u64,
) -> std::io::Result<bool> {
    let file = File::open(from.path)?;
    let decoded: Box<dyn Read> = if from.gzipped {
        Box::new(MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut reader = BufReader::with_capacity(256 * 1024, decoded.take(max_inflated_bytes));
    let mut out = BufWriter::with_capacity(256 * 1024, File::create(to)?);
    let mut line = Vec::new();
    let max_line_bytes = copy.max_line_bytes();
    loop {
        let read = match read_line(&mut reader, &mut line, max_line_bytes) {
            Ok(Some(read)) => read,
            Ok(None) => break,
            // A download cut at the cap ends mid-stream: what came before it is kept.
            Err(_) if from.cut => return out.flush().map(|()| true),
            Err(e) => return Err(e),
        };
        out.write_all(copy.render(&line, read))?;
        if copy.report.out_of_budget {
            return out.flush().map(|()| false);
        }
    }
    out.flush()?;
    // At the cap: one more byte says whether the file goes on (decoding it costs at most one
    // deflate block, not the rest of the file); an error there is more too, past the cap.
    let decoded = reader.into_inner();
    let more = decoded.limit() == 0 && !matches!(decoded.into_inner().read(&mut [0]), Ok(0));
    Ok(more || from.cut)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::velero::Target;
    use flate2::{Compression, write::GzEncoder};

    #[test]
    fn artifacts_keep_their_bundle_paths() {
        for target in [Target::Backup("b".into()), Target::Restore("r".into())] {
            for artifact in stored_artifacts(&target) {
                let entry = entry_path(&artifact.bundle_path);
                assert_eq!(entry.to_string(), artifact.bundle_path);
            }
        }
    }

    use crate::{bundle::collect::budget::ContentBudget, redact::Redactor};

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
        };
        let redactor = Redactor::new();
        let mut copy = copy(&redactor);
        let cut = decode_and_redact(&source, &out, &mut copy, 4 * MIB).unwrap();
        assert!(!cut);
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
        };
        let redactor = Redactor::new();
        assert!(!decode_and_redact(&source, &out, &mut copy(&redactor), 100).unwrap());
        assert!(decode_and_redact(&source, &out, &mut copy(&redactor), 99).unwrap());
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
        };
        let redactor = Redactor::new();
        let mut copy = copy(&redactor);
        let cut = decode_and_redact(&source, &out, &mut copy, MIB).unwrap();
        assert!(cut, "the bomb was not reported as cut");
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
        };
        let cut = decode_and_redact(&source, &out, &mut copy(&redactor), 4 * MIB).unwrap();
        assert!(cut);
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(text.starts_with("line 0\nline 1\n"));
        assert!(content.starts_with(&text));
        // The same file not cut by the download is a broken gzip: an error.
        source.cut = false;
        assert!(decode_and_redact(&source, &out, &mut copy(&redactor), 4 * MIB).is_err());
    }
}

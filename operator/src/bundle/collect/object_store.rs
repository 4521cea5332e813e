//! Velero's own files for the target, read straight from the object store and decompressed.
//! A missing file is a warning: logs and results exist only once an operation has finished.

use std::{
    fs::File,
    io::{BufRead, BufReader, BufWriter, Read, Write},
    path::Path,
};

use flate2::read::MultiGzDecoder;

use super::{CollectError, Collector};
use crate::{
    redact::{MaskCounts, Redactor},
    storage::StorageError,
    tar_gz::EntryPath,
    velero::stored_artifacts,
};

/// Results files are small; anything bigger is not parsed for the summary.
const MAX_RESULTS_BYTES: u64 = 16 * 1024 * 1024;

pub(super) async fn artifacts(c: &mut Collector<'_>) -> Result<(), CollectError> {
    for artifact in stored_artifacts(&c.plan.target) {
        let key = c.location.key(&artifact.key);
        let entry = entry_path(&artifact.bundle_path);
        let raw = c.spool_path(&artifact.bundle_path);
        match c.store.download(&key, &raw).await {
            Ok(_) => {}
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
        }
        let text = c.spool_path(&artifact.bundle_path);
        let redactor = c.redactor;
        let decoded = tokio::task::block_in_place(|| {
            decode_and_redact(&raw, &text, artifact.gzipped, redactor)
        });
        let _ = std::fs::remove_file(&raw);
        let masks = match decoded {
            Ok(masks) => masks,
            Err(e) => {
                let _ = std::fs::remove_file(&text);
                c.warn(format!("{key} could not be decompressed: {e}"));
                continue;
            }
        };
        if artifact.bundle_path.ends_with(".log") {
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
        if artifact.bundle_path.ends_with("results.json")
            && std::fs::metadata(&text).is_ok_and(|m| m.len() <= MAX_RESULTS_BYTES)
            && let Ok(results) = std::fs::read(&text)
        {
            match serde_json::from_slice(&results) {
                Ok(v) => c.summary.set_results(&v),
                Err(e) => c.warn(format!("{key} is not valid JSON: {e}")),
            }
        }
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

/// Decompresses (when gzipped) and redacts line by line, streaming from file to file; what it
/// masked, by rule.
fn decode_and_redact(
    from: &Path,
    to: &Path,
    gzipped: bool,
    redactor: &Redactor,
) -> std::io::Result<MaskCounts> {
    let mut lines = redactor.stream();
    let file = File::open(from)?;
    let reader: Box<dyn Read> = if gzipped {
        Box::new(MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut reader = BufReader::with_capacity(256 * 1024, reader);
    let mut out = BufWriter::with_capacity(256 * 1024, File::create(to)?);
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let text = String::from_utf8_lossy(&line);
        let (body, newline) = match text.strip_suffix('\n') {
            Some(b) => (b, true),
            None => (text.as_ref(), false),
        };
        out.write_all(lines.redact(body).as_bytes())?;
        if newline {
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    Ok(lines.counts().clone())
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

    #[test]
    fn gzipped_artifacts_are_decoded_and_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("in.gz");
        let mut enc = GzEncoder::new(File::create(&gz).unwrap(), Compression::fast());
        enc.write_all(b"level=info msg=ok\npassword=hunter2\nlast line")
            .unwrap();
        enc.finish().unwrap();
        let out = dir.path().join("out");
        let masks = decode_and_redact(&gz, &out, true, &Redactor::new()).unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "level=info msg=ok\npassword=***REDACTED***\nlast line"
        );
        assert_eq!(masks.get("secret-named-key-value"), 1);
        assert_eq!(masks.total(), 1);
    }
}

//! When the operation's own log is not in the object store (not uploaded yet, deleted, or
//! looked for in the wrong bucket), the Velero server's log lines that name the operation
//! stand in for it: they are what Velero would have written into it. They are taken while the
//! server's logs are copied (no second read from the API), already redacted, bounded by their
//! own cap, and become one bundle file that the findings read as the operation's log.

use std::{
    io::{self, BufRead, BufReader, BufWriter, Read, Write},
    path::{Path, PathBuf},
};

use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use super::{LogOutcome, LogRead};
use crate::{
    collect::{CollectError, Found, Sink, Sources, budget::ContentBudget},
    config::size_text,
    findings::{LogRole, LogScan, LogSource, OperationScope},
    redact::MaskCounts,
    tar_gz::EntryPath,
};

const TEE_BUFFER: usize = 64 * 1024;

/// How far a tee had got: where to come back to when the server log's head is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct TeeMark {
    bytes: u64,
    lines: u64,
}

/// The lines of one server container log that name the operation, taken as it is copied.
pub(super) struct OperationLines<'s> {
    scope: &'s OperationScope,
    /// The stand-in's own cap, shared by every server log.
    room: ContentBudget,
    /// The bundle's.
    budget: ContentBudget,
    path: PathBuf,
    out: Option<tokio::io::BufWriter<tokio::fs::File>>,
    at: TeeMark,
    /// A line found no room: the stand-in is cut (later lines stay the server log's).
    cut: Cut,
    /// The file could not be written: later lines stay the server log's.
    failed: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Cut {
    #[default]
    No,
    AtItsCap,
    AtTheBundleLimit,
}

impl<'s> OperationLines<'s> {
    pub fn new(
        scope: &'s OperationScope,
        room: ContentBudget,
        budget: ContentBudget,
        path: PathBuf,
    ) -> Self {
        Self {
            scope,
            room,
            budget,
            path,
            out: None,
            at: TeeMark { bytes: 0, lines: 0 },
            cut: Cut::No,
            failed: None,
        }
    }

    /// Takes a line as written to the server's log in the bundle (redacted) when it names
    /// the operation and there is room for it; true when taken (its scan is then the
    /// stand-in's, not the server log's).
    pub async fn offer(&mut self, line: &[u8]) -> bool {
        if self.cut != Cut::No || self.failed.is_some() {
            return false;
        }
        let names = match std::str::from_utf8(line) {
            Ok(text) => self.scope.names_this(text),
            Err(_) => self.scope.names_this(&String::from_utf8_lossy(line)),
        };
        if !names {
            return false;
        }
        // Every line ends with a newline here: the stand-in joins several logs.
        let newline = !line.ends_with(b"\n");
        let len = line.len() as u64 + u64::from(newline);
        if !self.room.take_all(len) {
            self.cut = Cut::AtItsCap;
            return false;
        }
        if !self.budget.take_all(len) {
            self.room.give_back(len);
            self.cut = Cut::AtTheBundleLimit;
            return false;
        }
        if let Err(e) = self.write(line, newline).await {
            self.room.give_back(len);
            self.budget.give_back(len);
            self.failed = Some(e.to_string());
            return false;
        }
        self.at.bytes += len;
        self.at.lines += 1;
        true
    }

    async fn write(&mut self, line: &[u8], newline: bool) -> io::Result<()> {
        if self.out.is_none() {
            let file = tokio::fs::File::create(&self.path).await?;
            self.out = Some(tokio::io::BufWriter::with_capacity(TEE_BUFFER, file));
        }
        let Some(out) = self.out.as_mut() else {
            return Ok(());
        };
        out.write_all(line).await?;
        if newline {
            out.write_all(b"\n").await?;
        }
        Ok(())
    }

    pub fn mark(&self) -> TeeMark {
        self.at
    }

    /// Back to `mark`: the lines taken since are not in the server log's file after all (its
    /// head was cut to make room for its tail).
    pub async fn rewind(&mut self, mark: TeeMark) {
        let Some(out) = self.out.as_mut() else {
            return;
        };
        let rewound = async {
            out.flush().await?;
            let file = out.get_mut();
            file.set_len(mark.bytes).await?;
            file.seek(io::SeekFrom::Start(mark.bytes)).await?;
            io::Result::Ok(())
        };
        if let Err(e) = rewound.await {
            self.failed = Some(e.to_string());
        }
        let dropped = self.at.bytes - mark.bytes;
        self.room.give_back(dropped);
        self.budget.give_back(dropped);
        self.at = mark;
        self.cut = Cut::No;
    }

    /// What was taken, its file flushed.
    pub async fn finish(mut self) -> Teed {
        if let Some(out) = self.out.as_mut()
            && let Err(e) = out.flush().await
        {
            self.failed = Some(e.to_string());
        }
        Teed {
            path: self.path,
            lines: self.at.lines,
            bytes: self.at.bytes,
            cut: self.cut,
            failed: self.failed,
        }
    }
}

/// The lines one server log gave the stand-in.
#[derive(Debug)]
pub(super) struct Teed {
    pub path: PathBuf,
    pub lines: u64,
    pub bytes: u64,
    pub cut: Cut,
    pub failed: Option<String>,
}

/// One server log's part of the stand-in.
pub(super) struct Part<'a> {
    /// The server log's file in the bundle.
    pub source: &'a str,
    pub pod: &'a str,
    pub previous: bool,
    pub teed: &'a Teed,
}

/// Writes the stand-in to `to`: each server log's lines under a line naming the file they
/// come from, a pod's previous instance before its current one, every line offered to
/// `scan`. Header lines are taken from the budget (left out when it has no room); the lines
/// were taken as they were teed. Returns the bytes written.
pub(super) fn write(
    parts: &mut [Part<'_>],
    scope: &OperationScope,
    to: &Path,
    scan: &mut LogScan,
    budget: &ContentBudget,
) -> io::Result<u64> {
    parts.sort_by(|a, b| (a.pod, !a.previous, a.source).cmp(&(b.pod, !b.previous, b.source)));
    let mut out = BufWriter::with_capacity(TEE_BUFFER, std::fs::File::create(to)?);
    let mut written = 0;
    let mut line = Vec::new();
    for part in parts.iter().filter(|p| p.teed.lines > 0) {
        let header = crate::collect::markers::line(&format!(
            "the lines of {} that name {} {}",
            part.source, scope.field, scope.name
        )) + "\n";
        if budget.take_all(header.len() as u64) {
            out.write_all(header.as_bytes())?;
            scan.skip_line();
            written += header.len() as u64;
        }
        let mut reader =
            BufReader::new(std::fs::File::open(&part.teed.path)?).take(part.teed.bytes);
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            scan.offer_bytes(&line);
            out.write_all(&line)?;
            written += line.len() as u64;
        }
    }
    out.flush()?;
    Ok(written)
}

/// The server's lines naming the operation, as the bundle file that stands in for its log
/// (read by the findings as that log); the warning about the missing log says what stands in
/// for it, or that nothing does.
pub(super) fn add_stand_in(
    src: &Sources<'_>,
    out: &mut Sink,
    found: &mut Found,
    entry: &EntryPath,
    scope: &OperationScope,
    results: &[LogRead],
) -> Result<(), CollectError> {
    let Some(warning) = found.missing_operation_log else {
        return Ok(());
    };
    let kind = scope.field;
    let mut parts = stand_in_parts(results);
    if parts.is_empty() {
        return Ok(());
    }
    let notes = stand_in_notes(src, out, entry, kind, &parts);
    let note = if parts.iter().all(|p| p.teed.lines == 0) {
        format!("; no line of the Velero server's log names this {kind} either")
    } else {
        write_stand_in(out, found, entry, scope, &mut parts)?
    };
    if let Some(message) = out.warnings.get_mut(warning) {
        message.push_str(&note);
    }
    for note in notes {
        out.warn(note);
    }
    Ok(())
}

/// The server logs' teed lines, of the logs that are in the bundle only: the stand-in is a
/// view of them.
fn stand_in_parts(results: &[LogRead]) -> Vec<Part<'_>> {
    results
        .iter()
        .filter(|read| {
            matches!(
                read.outcome,
                LogOutcome::Written(..) | LogOutcome::Partial(..)
            )
        })
        .filter_map(|read| {
            read.teed.as_ref().map(|teed| Part {
                source: &read.job.source.path,
                pod: &read.job.pod,
                previous: read.job.previous,
                teed,
            })
        })
        .collect()
}

/// Warnings about what the stand-in could not take of each part.
fn stand_in_notes(
    src: &Sources<'_>,
    out: &Sink,
    entry: &EntryPath,
    kind: &str,
    parts: &[Part<'_>],
) -> Vec<String> {
    let mut notes = Vec::new();
    for part in parts {
        match part.teed.cut {
            Cut::No => {}
            Cut::AtItsCap => notes.push(format!(
                "{entry} reached its cap of {} (maxLogBytesPerContainer): later lines of {} naming the {kind} are only there",
                size_text(src.plan.max_log_bytes),
                part.source
            )),
            Cut::AtTheBundleLimit => notes.push(format!(
                "{entry}: cut where the bundle reached its size limit of {} (MAX_BUNDLE_BYTES)",
                size_text(out.budget.total())
            )),
        }
        if let Some(why) = &part.teed.failed {
            notes.push(format!(
                "{entry}: lines of {} could not be written: {why}",
                part.source
            ));
        }
    }
    notes
}

/// Writes the stand-in into the bundle and the findings; returns what the missing log's
/// warning adds about it.
fn write_stand_in(
    out: &mut Sink,
    found: &mut Found,
    entry: &EntryPath,
    scope: &OperationScope,
    parts: &mut [Part<'_>],
) -> Result<String, CollectError> {
    let kind = scope.field;
    let spool = out.spool_path(&entry.to_string());
    let mut scan = LogScan::new(LogSource {
        path: entry.to_string(),
        role: LogRole::Operation,
        pod: None,
        node: None,
        previous: false,
    });
    let budget = out.budget.clone();
    let written = tokio::task::block_in_place(|| write(parts, scope, &spool, &mut scan, &budget));
    match written {
        Ok(_) => {
            found.summary.evidence.add_log_scan(scan);
            if let Some(missing) = &mut found.summary.evidence.operation_log_missing {
                missing.stand_in = Some(entry.to_string());
            }
            // Its lines were counted as masked in the server's logs.
            out.add_spooled(entry, &spool, &MaskCounts::default())?;
            Ok(format!(
                "; the Velero server's lines for this {kind} stand in for its log: {entry}"
            ))
        }
        Err(e) => {
            let _ = std::fs::remove_file(&spool);
            Ok(format!(
                "; the Velero server's lines for this {kind} could not be put in its place: {e}"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::{LogRole, LogSource};

    fn scope() -> OperationScope {
        OperationScope {
            field: "backup",
            name: "velero/nightly-1".into(),
            location: None,
            window: None,
        }
    }

    const SERVER_LOG: &[&str] = &[
        "time=\"t\" level=info msg=\"Checking for existing backup locations ready to be verified\"\n",
        "time=\"t\" level=info msg=\"Setting up backup log\" backup=velero/nightly-1\n",
        "time=\"t\" level=info msg=\"Backing up item\" backup=velero/nightly-2 name=a\n",
        "{\"level\":\"error\",\"msg\":\"Error backing up item\",\"backup\":\"velero/nightly-1\",\"error.message\":\"boom\"}\n",
        "time=\"t\" level=info msg=\"restore started\" backup=velero/nightly-1 restore=velero/r1\n",
        "time=\"t\" level=info msg=\"Backup completed\" backup=velero/nightly-1",
    ];

    async fn tee_all(tee: &mut OperationLines<'_>, lines: &[&str]) -> Vec<bool> {
        let mut taken = Vec::new();
        for line in lines {
            taken.push(tee.offer(line.as_bytes()).await);
        }
        taken
    }

    #[tokio::test]
    async fn only_the_lines_naming_the_operation_are_taken() {
        let dir = tempfile::tempdir().unwrap();
        let scope = scope();
        let budget = ContentBudget::new(1 << 20);
        let mut tee = OperationLines::new(
            &scope,
            ContentBudget::new(1 << 20),
            budget.clone(),
            dir.path().join("tee"),
        );
        let taken = tee_all(&mut tee, SERVER_LOG).await;
        assert_eq!(taken, [false, true, false, true, false, true]);
        let teed = tee.finish().await;
        let text = std::fs::read_to_string(&teed.path).unwrap();
        // The last line got its newline.
        assert_eq!(
            text,
            [SERVER_LOG[1], SERVER_LOG[3], SERVER_LOG[5], "\n"].concat()
        );
        assert_eq!((teed.lines, teed.bytes), (3, text.len() as u64));
        assert_eq!(budget.take_up_to(u64::MAX), (1 << 20) - text.len() as u64);
    }

    #[tokio::test]
    async fn the_stand_in_stops_at_its_cap_and_rewinds_to_a_mark() {
        let dir = tempfile::tempdir().unwrap();
        let scope = scope();
        let room = ContentBudget::new(SERVER_LOG[3].len() as u64 + 10);
        let budget = ContentBudget::new(1 << 20);
        let mut tee =
            OperationLines::new(&scope, room.clone(), budget.clone(), dir.path().join("t"));
        let mark = tee.mark();
        assert_eq!(
            tee_all(&mut tee, &SERVER_LOG[..4]).await,
            [false, true, false, false]
        );
        assert_eq!(tee.cut, Cut::AtItsCap);
        // Back to before any line: the room and the budget are whole again.
        tee.rewind(mark).await;
        assert_eq!(room.take_up_to(u64::MAX), SERVER_LOG[3].len() as u64 + 10);
        room.give_back(u64::MAX);
        assert_eq!(budget.take_up_to(u64::MAX), 1 << 20);
        budget.give_back(u64::MAX);
        assert!(tee.offer(SERVER_LOG[3].as_bytes()).await);
        let teed = tee.finish().await;
        assert_eq!(std::fs::read_to_string(&teed.path).unwrap(), SERVER_LOG[3]);
        assert_eq!(teed.cut, Cut::No);
    }

    #[tokio::test]
    async fn the_bundle_limit_stops_the_stand_in_too() {
        let dir = tempfile::tempdir().unwrap();
        let scope = scope();
        let mut tee = OperationLines::new(
            &scope,
            ContentBudget::new(1 << 20),
            ContentBudget::new(10),
            dir.path().join("t"),
        );
        assert_eq!(tee_all(&mut tee, SERVER_LOG).await, [false; 6]);
        let teed = tee.finish().await;
        assert_eq!(teed.cut, Cut::AtTheBundleLimit);
        assert_eq!(teed.lines, 0);
    }

    #[tokio::test]
    async fn the_stand_in_file_joins_the_server_logs_previous_first_and_is_scanned() {
        let dir = tempfile::tempdir().unwrap();
        let scope = scope();
        let budget = ContentBudget::new(1 << 20);
        let mut teeds = Vec::new();
        for (name, lines) in [
            ("current", &SERVER_LOG[..2]),
            ("previous", &SERVER_LOG[3..4]),
        ] {
            let mut tee = OperationLines::new(
                &scope,
                ContentBudget::new(1 << 20),
                budget.clone(),
                dir.path().join(name),
            );
            tee_all(&mut tee, lines).await;
            teeds.push(tee.finish().await);
        }
        let mut empty = OperationLines::new(
            &scope,
            ContentBudget::new(1),
            budget.clone(),
            dir.path().join("none"),
        );
        tee_all(&mut empty, &SERVER_LOG[..1]).await;
        teeds.push(empty.finish().await);
        let mut parts = vec![
            Part {
                source: "logs/velero/velero-1/velero.log",
                pod: "velero-1",
                previous: false,
                teed: &teeds[0],
            },
            Part {
                source: "logs/velero/velero-1/velero.previous.log",
                pod: "velero-1",
                previous: true,
                teed: &teeds[1],
            },
            Part {
                source: "logs/velero/velero-1/plugins.log",
                pod: "velero-1",
                previous: false,
                teed: &teeds[2],
            },
        ];
        let mut scan = LogScan::new(LogSource {
            path: "logs/velero/backup-nightly-1.from-server-log.log".into(),
            role: LogRole::Operation,
            pod: None,
            node: None,
            previous: false,
        });
        let to = dir.path().join("stand-in");
        let written = write(&mut parts, &scope, &to, &mut scan, &budget).unwrap();
        let text = std::fs::read_to_string(&to).unwrap();
        assert_eq!(written, text.len() as u64);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "----- velero-debug-operator: the lines of logs/velero/velero-1/velero.previous.log that name backup velero/nightly-1 -----",
                SERVER_LOG[3].trim_end(),
                "----- velero-debug-operator: the lines of logs/velero/velero-1/velero.log that name backup velero/nightly-1 -----",
                SERVER_LOG[1].trim_end(),
            ]
        );
        assert_eq!(scan.lines(), 4);
        // The error line is the stand-in's line 2.
        let (_, hits, groups, _) = scan.into_parts();
        assert!(hits.is_empty());
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].first_line, 2);
    }
}

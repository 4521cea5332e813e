//! A container log over its bound (maxLogBytesPerContainer) keeps its head and its tail with a
//! marker line between, never only its head: a failure (a panic, the last error) is at the end.
//!
//! The head is the first request, read as any log is (limited to the bound by the server), so
//! a log within its bound still costs one request and one copy. Only when that request came
//! back full is the tail asked for, by a line count estimated from the head, and kept on disk
//! to its last bytes (the tail keeper, `tail_keeper.rs`); the head is then cut to half the bound
//! and the marker and the tail are written after it.
//!
//! Sizes are counted twice: as the API serves the log (`raw`: what `limitBytes` counts) and as
//! written to the bundle (`rendered`: redacted, long lines cut). The bound holds for both (the
//! written bytes pass it only when redaction made the head longer than it was: the tail keeps
//! at least a quarter of the bound), and the raw counts are what prove that the tail does not
//! repeat the head: the log is at least as long as either response, so a kept head and tail
//! shorter than that together cannot overlap.

use k8s_openapi::api::core::v1::Pod;
use kube::{Api, api::LogParams};
use tokio::io::{AsyncSeekExt, AsyncWriteExt, BufWriter};

use super::{
    LogJob, LogOutcome, LogParamsBase, OverBound, SPOOL_BUFFER, offer, since,
    stand_in::{OperationLines, TeeMark},
};
use crate::{
    collect::{
        budget::ContentBudget,
        lines::{LineCopy, read_line_async},
        markers,
        tail_keeper::{Kept, KeptTail, Size, TailKeeper, TailLines},
    },
    config::size_text,
    findings::LogScan,
    gzip_members::FollowingCompression,
    redact::{MaskCounts, Redactor},
};

/// The tail asks for this many times the lines the head's average line length says fill its
/// room: the last lines of a crashed container (a goroutine dump) are often shorter than the
/// rest. The keeper drops what is too much.
const TAIL_SAFETY: u64 = 2;

/// Follows the head as it is copied: where it is cut if the log turns out over its bound.
/// The cut is decided on raw bytes before a line is rendered, so the caller can save what it
/// must go back to (its scan, its mask counts) before the line changes them.
#[derive(Debug)]
pub(super) struct HeadCut {
    half: u64,
    raw: u64,
    lines: u64,
    kept_raw: Option<u64>,
}

impl HeadCut {
    pub fn new(bound: u64) -> Self {
        Self {
            half: bound / 2,
            raw: 0,
            lines: 0,
            kept_raw: None,
        }
    }

    /// Counts the next line of the head (its raw length); true for the first that does not
    /// fit in half the bound: the kept head ends before it.
    pub fn crosses(&mut self, raw: u64) -> bool {
        let next = self.raw.saturating_add(raw);
        let first = self.kept_raw.is_none() && next > self.half;
        if first {
            self.kept_raw = Some(self.raw);
        }
        self.raw = next;
        self.lines += 1;
        first
    }

    /// Raw bytes the next lines may take without one of them crossing (see
    /// [`crosses`](Self::crosses)): any number once one has.
    pub fn room(&self) -> u64 {
        match self.kept_raw {
            Some(_) => u64::MAX,
            None => self.half.saturating_sub(self.raw),
        }
    }

    /// Counts `lines` lines of `raw` bytes in all, within [`room`](Self::room).
    pub fn count(&mut self, raw: u64, lines: u64) {
        debug_assert!(raw <= self.room(), "lines counted past the cut");
        self.raw = self.raw.saturating_add(raw);
        self.lines += lines;
    }

    /// Raw bytes read so far: the bound when the log is over it.
    pub fn read(&self) -> u64 {
        self.raw
    }

    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Raw bytes of the head kept when the log is over its bound.
    pub fn kept(&self) -> u64 {
        self.kept_raw.unwrap_or(self.raw)
    }
}

/// The `tailLines` that should bring back about `wanted` bytes, from the average line of a
/// head of `head_raw` bytes.
fn tail_lines(wanted: u64, head_raw: u64, head_lines: u64) -> i64 {
    let average = (head_raw / head_lines.max(1)).max(1);
    let lines = wanted.saturating_mul(TAIL_SAFETY).div_ceil(average).max(1);
    i64::try_from(lines).unwrap_or(i64::MAX)
}

/// What is known of the part of a log between its kept head and its kept tail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Gap {
    /// At least this many bytes (as the API serves the log) are left out.
    AtLeast(u64),
    /// The two parts do not overlap, but nothing proves bytes are left out between them.
    Unknown,
    /// The tail may repeat lines of the head (the log is barely over its bound, or its kept
    /// lines are very long).
    MayRepeat,
}

impl Gap {
    /// From the raw counts: the log is at least as long as each response, so a head and a
    /// tail shorter than that together do not overlap.
    pub fn between(head_read: u64, head_kept: u64, tail_read: u64, tail_kept_at_most: u64) -> Gap {
        let log_at_least = head_read.max(tail_read);
        let kept = head_kept.saturating_add(tail_kept_at_most);
        match log_at_least.checked_sub(kept) {
            None => Gap::MayRepeat,
            Some(0) => Gap::Unknown,
            Some(n) => Gap::AtLeast(n),
        }
    }

    /// The words for the marker line and the bundle's warning.
    pub fn text(self) -> String {
        match self {
            Gap::AtLeast(n) => format!("at least {n} bytes of the log left out"),
            Gap::Unknown => "some bytes of the log may be left out".to_string(),
            Gap::MayRepeat => {
                "some bytes of the log may be left out, or the lines after it may repeat some before it"
                    .to_string()
            }
        }
    }
}

/// The line between the head and the tail (with its newline).
fn marker(gap: Gap, bound: u64) -> String {
    let why = format!(
        "the log is over maxLogBytesPerContainer ({})",
        size_text(bound)
    );
    markers::head_and_tail(&gap.text(), &why) + "\n"
}

/// Said of a line cut to fit the tail's room.
const CLIPPED: &[u8] = markers::LINE_CLIPPED.as_bytes();

/// A line cut to `room` bytes (at a character boundary), its newline kept, marked when there
/// is room for the mark.
fn clip(line: &[u8], room: usize) -> Vec<u8> {
    let newline = line.ends_with(b"\n");
    let body = &line[..line.len() - usize::from(newline)];
    let mark = if room > CLIPPED.len() * 2 {
        CLIPPED
    } else {
        b""
    };
    let mut end = room
        .saturating_sub(mark.len() + usize::from(newline))
        .min(body.len());
    // Back to the start of a UTF-8 character.
    while end > 0 && end < body.len() && (body[end] & 0xC0) == 0x80 {
        end -= 1;
    }
    let mut out = Vec::with_capacity(room);
    out.extend_from_slice(&body[..end]);
    out.extend_from_slice(mark);
    if newline {
        out.push(b'\n');
    }
    out
}

/// The head's copy: where it is cut should the log be over its bound, and its compression,
/// which follows it up to that point.
pub(super) struct Head<'c> {
    pub(super) cut: HeadCut,
    pub(super) at_cut: Option<AtCut>,
    pub(super) compressing: &'c mut FollowingCompression,
}

/// What the copy of a log had done where its head is cut: what to go back to.
pub(super) struct AtCut {
    /// Bytes written before it.
    pub(super) written: u64,
    pub(super) cut_lines: u64,
    pub(super) masks: MaskCounts,
    pub(super) scan: LogScan,
    pub(super) tee: Option<TeeMark>,
}

/// A log's tail as read: its last lines, and what was masked in them.
struct Tail {
    kept: KeptTail,
    masks: MaskCounts,
}

/// The budget a tail is written in after the head: its bytes, and the tail's bytes that do
/// not fit in them (its first lines are left out).
struct TailRoom {
    bytes: u64,
    skip: u64,
}

/// A log whose head filled its bound, and what it takes to read its tail.
pub(super) struct OverLog<'a, 'r> {
    pub(super) api: &'a Api<Pod>,
    pub(super) job: &'a LogJob,
    pub(super) base: &'a LogParamsBase,
    pub(super) redactor: &'r Redactor,
    pub(super) budget: &'a ContentBudget,
    pub(super) deadline: tokio::time::Instant,
    /// The head's copy.
    pub(super) lines: &'a LineCopy<'r>,
}

impl OverLog<'_, '_> {
    /// Reads the tail, then cuts the head to its half of the bound and writes the marker
    /// line and the tail after it; the scan and the tee go back to the cut and read on. When
    /// the tail cannot be read, the head is kept up to the bound, as before.
    pub(super) async fn keep_head_and_tail(
        &self,
        spool: tokio::fs::File,
        head: Head<'_>,
        scan: &mut LogScan,
        tee: Option<&mut OperationLines<'_>>,
    ) -> (LogOutcome, MaskCounts) {
        let Some(at_cut) = head.at_cut else {
            // Not reached: a head that filled the bound went past its half.
            return (
                LogOutcome::Written(self.lines.report, None),
                self.lines.masks().clone(),
            );
        };
        let kept = Size {
            rendered: at_cut.written,
            raw: head.cut.kept(),
        };
        let tail = match self.read_tail_in_time(&head.cut, kept).await {
            Ok(tail) => tail,
            Err(why) => return self.head_only(why),
        };
        let gap = Gap::between(
            head.cut.read(),
            kept.raw,
            tail.kept.read.raw,
            tail.kept.kept.raw,
        );
        self.write_after_head(spool, at_cut, tail, gap, scan, tee)
            .await
    }

    /// The outcome of a log over its bound kept as a log within it would be: its head, up to
    /// the bound, because its end could not be had (`why`).
    fn head_only(&self, why: String) -> (LogOutcome, MaskCounts) {
        (
            LogOutcome::Written(self.lines.report, Some(OverBound::HeadOnly(why))),
            self.lines.masks().clone(),
        )
    }

    /// The bound on the log's bytes, as rendered.
    fn bound(&self) -> u64 {
        self.base.max_bytes
    }

    /// Reads the tail within the log's deadline, into the room the head left; on failure
    /// (why), nothing of it is left on disk.
    async fn read_tail_in_time(&self, head: &HeadCut, kept: Size) -> Result<Tail, String> {
        let bound = self.bound();
        // The room the head left (at least a quarter of the bound, should redaction have made
        // the head longer than it was); never more raw bytes than the head left out, so the
        // two cannot overlap (see `Gap`).
        let cap = Size {
            rendered: bound.saturating_sub(kept.rendered).max(bound / 4),
            raw: head.read().saturating_sub(kept.raw),
        };
        let tail = tokio::time::timeout_at(self.deadline, self.read_tail(cap, head)).await;
        match tail {
            Ok(Ok(tail)) => Ok(tail),
            // The keeper's files went with it.
            Ok(Err(why)) => Err(why),
            Err(_) => Err(format!("timed out after {}s", self.base.timeout.as_secs())),
        }
    }

    /// Cuts the spool back to the head's cut and writes the marker and as much of the tail
    /// as the budget allows after it; the scan and the tee go back to the cut and read on.
    async fn write_after_head(
        &self,
        spool: tokio::fs::File,
        at_cut: AtCut,
        tail: Tail,
        gap: Gap,
        scan: &mut LogScan,
        mut tee: Option<&mut OperationLines<'_>>,
    ) -> (LogOutcome, MaskCounts) {
        let marker = marker(gap, self.bound());
        let Some(room) = self.take_room(at_cut.written, &marker, &tail.kept) else {
            return self.head_only(format!(
                "the bundle reached its size limit of {} (MAX_BUNDLE_BYTES)",
                size_text(self.budget.total())
            ));
        };
        *scan = at_cut.scan;
        if let (Some(tee), Some(mark)) = (tee.as_deref_mut(), at_cut.tee) {
            tee.rewind(mark).await;
        }
        let mut tail_lines = tail.kept.lines();
        tail_lines.skip_first(room.skip);
        let assembled = self
            .write_tail(spool, at_cut.written, &marker, tail_lines, scan, tee)
            .await;
        match assembled {
            Ok((written, cut_lines)) => {
                self.budget.give_back(room.bytes.saturating_sub(written));
                let mut report = self.lines.report;
                report.written = at_cut.written + written;
                report.cut_lines = at_cut.cut_lines + cut_lines;
                let mut masks = at_cut.masks;
                masks.merge(&tail.masks);
                (
                    LogOutcome::Written(report, Some(OverBound::HeadAndTail(gap))),
                    masks,
                )
            }
            Err(e) => {
                self.budget.give_back(room.bytes);
                (
                    LogOutcome::Failed(format!("writing its tail after its head: {e}")),
                    self.lines.masks().clone(),
                )
            }
        }
    }

    /// The room for the marker and the tail after the head's `head_bytes`: the head's bytes
    /// past the cut were taken from the budget, so the marker and the tail use them first
    /// and take only the rest. None (nothing taken) when not even the marker fits.
    fn take_room(&self, head_bytes: u64, marker: &str, tail: &KeptTail) -> Option<TailRoom> {
        let surplus = self.lines.report.written - head_bytes;
        let wanted = marker.len() as u64 + tail.kept.rendered;
        let got = self.budget.take_up_to(wanted.saturating_sub(surplus));
        let room = surplus + got;
        if room < marker.len() as u64 {
            self.budget.give_back(got);
            return None;
        }
        Some(TailRoom {
            bytes: room,
            skip: wanted.saturating_sub(room),
        })
    }

    /// The second request: the last lines, as many as should fill `cap` by the head's
    /// average line, with no byte limit (the end is what it is for; the log's timeout bounds
    /// it). Its lines are redacted as the head's and kept on disk to their last `cap`.
    /// What is masked in lines the keeper then drops is counted too.
    async fn read_tail(&self, cap: Size, head: &HeadCut) -> Result<Tail, String> {
        let params = LogParams {
            container: Some(self.job.container.clone()),
            previous: self.job.previous,
            since_time: since(self.job, self.base),
            tail_lines: Some(tail_lines(cap.rendered, head.read(), head.lines())),
            ..LogParams::default()
        };
        let reader = self
            .api
            .log_stream(&self.job.pod, &params)
            .await
            .map_err(|e| crate::kubernetes::message(&e))?;
        // The keeper bounds what sits on disk; what it keeps is taken from the bundle's budget
        // when it is written after the head.
        let mut lines = LineCopy::new(
            self.redactor,
            ContentBudget::new(u64::MAX),
            self.base.max_line_bytes,
            "MAX_LINE_BYTES",
        )
        .starting_mid_log();
        // Its files go when what it kept is dropped, or with it should the read fail.
        let mut keeper = TailKeeper::beside(&self.job.spool, cap);
        let mut reader = std::pin::pin!(reader);
        let mut line = Vec::with_capacity(8 * 1024);
        let io = |e: std::io::Error| e.to_string();
        while let Some(read) = read_line_async(&mut reader, &mut line, self.base.max_line_bytes)
            .await
            .map_err(io)?
        {
            let rendered = lines.render(&line, read);
            // The keeper writes through a buffer to the local spool disk: a tail is read once
            // per log over its bound, and the runtime thread waits no longer than a page copy.
            keep(&mut keeper, rendered.as_bytes(), read.bytes, cap.rendered).map_err(io)?;
        }
        let kept = keeper.finish().map_err(io)?;
        Ok(Tail {
            kept,
            masks: lines.masks().clone(),
        })
    }

    /// Cuts the spool to the head's `head_bytes` and writes the marker and the kept tail's
    /// `lines` after them, each line offered as the head's were. Returns the bytes written
    /// after the head and how many of them were lines cut at the line cap.
    async fn write_tail(
        &self,
        mut spool: tokio::fs::File,
        head_bytes: u64,
        marker: &str,
        mut lines: TailLines<'_>,
        scan: &mut LogScan,
        mut tee: Option<&mut OperationLines<'_>>,
    ) -> std::io::Result<(u64, u64)> {
        spool.set_len(head_bytes).await?;
        spool.seek(std::io::SeekFrom::Start(head_bytes)).await?;
        let mut out = BufWriter::with_capacity(SPOOL_BUFFER, spool);
        out.write_all(marker.as_bytes()).await?;
        scan.skip_line();
        let mut written = marker.len() as u64;
        let mut cut_lines = 0;
        let mut line = Vec::new();
        while let Some(kept) = lines.next()? {
            line.clear();
            line.extend_from_slice(kept.line);
            if kept.how.newline {
                line.push(b'\n');
            }
            cut_lines += u64::from(self.lines.is_cut(&line));
            offer(scan, tee.as_deref_mut(), &String::from_utf8_lossy(&line)).await;
            out.write_all(&line).await?;
            written += line.len() as u64;
        }
        out.flush().await?;
        Ok((written, cut_lines))
    }
}

/// Gives the keeper a rendered line (its newline, if any, at its end), cut to the keeper's
/// room when longer than all of it: its start is kept, as a log's first bytes would be.
fn keep(keeper: &mut TailKeeper, rendered: &[u8], raw: u64, room: u64) -> std::io::Result<()> {
    let clipped;
    let rendered = if rendered.len() as u64 > room {
        clipped = clip(rendered, usize::try_from(room).unwrap_or(usize::MAX));
        &clipped[..]
    } else {
        rendered
    };
    let body = rendered.strip_suffix(b"\n");
    let how = Kept {
        newline: body.is_some(),
        // Counted again from the text when the tail is written (LineCopy::is_cut).
        cut: false,
    };
    keeper.push(body.unwrap_or(rendered), how, raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_is_cut_before_the_first_line_past_half_the_bound() {
        let mut cut = HeadCut::new(100);
        assert!(!cut.crosses(30));
        assert!(!cut.crosses(20));
        // 50 + 1 > 50: this line is the first not kept.
        assert!(cut.crosses(1));
        assert!(!cut.crosses(40));
        assert!(!cut.crosses(u64::MAX));
        assert_eq!(cut.kept(), 50);
        assert_eq!((cut.read(), cut.lines()), (u64::MAX, 5));
        // A long line counts whole, though only its start is copied.
        let mut cut = HeadCut::new(100);
        assert!(!cut.crosses(10));
        assert!(cut.crosses(5000));
        assert_eq!(cut.kept(), 10);
        // A first line past the half keeps no head; a log within it keeps it all.
        let mut cut = HeadCut::new(100);
        assert!(cut.crosses(60));
        assert_eq!(cut.kept(), 0);
        let mut cut = HeadCut::new(100);
        assert!(!cut.crosses(50));
        assert_eq!(cut.kept(), 50);
    }

    #[test]
    fn tail_lines_are_estimated_from_the_heads_average_line() {
        let head = 1000;
        // 100-byte lines; 500 bytes wanted, twice over.
        assert_eq!(tail_lines(500, head, 10), 10);
        assert_eq!(tail_lines(501, head, 10), 11);
        // A head of one long line without end, or none at all: at least one line.
        assert_eq!(tail_lines(500, head, 0), 1);
        assert_eq!(tail_lines(0, 0, 0), 1);
        // One-byte lines and a huge room do not overflow.
        assert_eq!(tail_lines(u64::MAX, head, 1000), i64::MAX);
    }

    #[test]
    fn the_gap_is_proven_from_the_raw_counts() {
        // The head request brought 1000 bytes: the log is at least that long.
        assert_eq!(Gap::between(1000, 500, 600, 400), Gap::AtLeast(100));
        // The tail request says the log is longer still.
        assert_eq!(Gap::between(1000, 500, 3000, 400), Gap::AtLeast(2100));
        assert_eq!(Gap::between(1000, 500, 600, 500), Gap::Unknown);
        assert_eq!(Gap::between(1000, 500, 600, 501), Gap::MayRepeat);
        let line = marker(Gap::AtLeast(100), 16 * 1024 * 1024);
        assert_eq!(
            line,
            "----- velero-debug-operator: at least 100 bytes of the log left out here: the log is over maxLogBytesPerContainer (16 MiB), so its first lines are above and its last lines below -----\n"
        );
        // Not a line the findings take for a warning or an error.
        assert!(crate::findings::text::level_of(&line).is_none());
        assert!(marker(Gap::MayRepeat, 2048).contains("may repeat"));
    }

    #[test]
    fn a_clipped_line_without_room_for_the_mark_is_cut_plain() {
        assert_eq!(clip(b"abcdef\n", 4), b"abc\n");
        assert_eq!(clip(b"abcdef", 4), b"abcd");
        assert_eq!(clip("aé".as_bytes(), 2), b"a");
    }

    #[test]
    fn a_line_longer_than_the_tails_room_keeps_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let cap = Size {
            rendered: 200,
            raw: 200,
        };
        let mut keeper = TailKeeper::beside(&dir.path().join("log"), cap);
        keep(&mut keeper, b"before\n", 7, cap.rendered).unwrap();
        let long = format!("panic: {}\n", "é".repeat(300));
        keep(&mut keeper, long.as_bytes(), 10, cap.rendered).unwrap();
        let kept = keeper.finish().unwrap();
        let mut lines = kept.lines();
        let only = lines.next().unwrap().unwrap();
        let text = String::from_utf8(only.line.to_vec()).unwrap();
        // Alone: the line before it does not fit beside it.
        assert!(text.starts_with("panic: éé"), "{text}");
        assert!(
            text.ends_with(" … [line cut by velero-debug-operator to fit the log's bound]"),
            "{text}"
        );
        assert!(only.how.newline);
        assert!(text.len() < 200, "{}", text.len());
        assert!(lines.next().unwrap().is_none());
    }
}

//! Logs and object-store files copied line by line into the spool folder, redacted, with
//! every input bounded: a line longer than its cap keeps its first bytes and a marker while
//! the rest is read in the reader's own chunks and dropped (a 150 MB line never sits in
//! memory), and each byte written is first taken from the bundle's [`ContentBudget`].

use std::{
    borrow::Cow,
    io::{self, BufRead},
};

use futures::{AsyncBufRead, AsyncBufReadExt};

use super::budget::ContentBudget;
use crate::{
    config::size_text,
    redact::{LineStream, MaskCounts, Redactor},
};

use super::tail_keeper::Kept;

/// One line as read: its first bytes are in the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct CappedLine {
    /// It ended with `\n` (not in the buffer); false for a last line without one.
    newline: bool,
    /// It was longer than the cap: the buffer holds only its first bytes.
    cut: bool,
    /// Bytes it took in the input, its newline and any part past the cap included.
    pub bytes: u64,
}

impl CappedLine {
    /// How it ended, for a line kept to be rendered later (tail_keeper.rs).
    pub fn kept(self) -> Kept {
        Kept {
            newline: self.newline,
            cut: self.cut,
        }
    }

    /// A line kept earlier, rendered now.
    pub fn from_kept(kept: Kept, bytes: u64) -> CappedLine {
        CappedLine {
            newline: kept.newline,
            cut: kept.cut,
            bytes,
        }
    }
}

/// Moves what of `chunk` belongs to the current line into `line`, up to `max` bytes in all
/// and then its newline; how many bytes of `chunk` the line used, and whether it ended in
/// them.
fn take_chunk(chunk: &[u8], line: &mut Vec<u8>, max: usize, cut: &mut bool) -> (usize, bool) {
    let (body, used, ended) = match memchr::memchr(b'\n', chunk) {
        Some(end) => (&chunk[..end], end + 1, true),
        None => (chunk, chunk.len(), false),
    };
    let room = max.saturating_sub(line.len());
    *cut |= body.len() > room;
    line.extend_from_slice(&body[..body.len().min(room)]);
    if ended {
        line.push(b'\n');
    }
    (used, ended)
}

/// The first line of `buffered` when it is whole there and within `max` bytes (nearly every
/// line of a log read in 64 KiB chunks): its bytes with the newline, to be rendered where
/// they are instead of copied first.
pub(super) fn whole_line(buffered: &[u8], max: usize) -> Option<(&[u8], CappedLine)> {
    let end = memchr::memchr(b'\n', buffered).filter(|&end| end <= max)?;
    let line = &buffered[..=end];
    let read = CappedLine {
        newline: true,
        cut: false,
        bytes: line.len() as u64,
    };
    Some((line, read))
}

/// Reads the next line into `line` (cleared first), keeping at most `max` bytes of it and its
/// newline; None at the end.
pub(super) fn read_line(
    reader: &mut impl BufRead,
    line: &mut Vec<u8>,
    max: usize,
) -> io::Result<Option<CappedLine>> {
    line.clear();
    let (mut cut, mut started, mut bytes) = (false, false, 0);
    loop {
        let chunk = match reader.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok(started.then_some(CappedLine {
                newline: false,
                cut,
                bytes,
            }));
        }
        started = true;
        let (used, ended) = take_chunk(chunk, line, max, &mut cut);
        reader.consume(used);
        bytes += used as u64;
        if ended {
            return Ok(Some(CappedLine {
                newline: true,
                cut,
                bytes,
            }));
        }
    }
}

/// [`read_line`] for an async reader (a pod's log stream).
pub(super) async fn read_line_async(
    reader: &mut (impl AsyncBufRead + Unpin),
    line: &mut Vec<u8>,
    max: usize,
) -> io::Result<Option<CappedLine>> {
    line.clear();
    let (mut cut, mut started, mut bytes) = (false, false, 0);
    loop {
        let chunk = reader.fill_buf().await?;
        if chunk.is_empty() {
            return Ok(started.then_some(CappedLine {
                newline: false,
                cut,
                bytes,
            }));
        }
        started = true;
        let (used, ended) = take_chunk(chunk, line, max, &mut cut);
        reader.consume_unpin(used);
        bytes += used as u64;
        if ended {
            return Ok(Some(CappedLine {
                newline: true,
                cut,
                bytes,
            }));
        }
    }
}

/// Bytes of the reader's buffer looked at in one piece by [`LineCopy::unchanged_lines`]: the
/// prefilter's lowercased copy of them is this big at most.
const BLOCK_BYTES: usize = 64 * 1024;

/// What the caps did to one copied file, for its warnings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct CopyReport {
    /// The line cap and its name in warnings.
    max_line_bytes: usize,
    line_cap: &'static str,
    /// Lines cut at the line cap.
    pub cut_lines: u64,
    /// The bundle's budget ran out: the copy stopped there.
    pub out_of_budget: bool,
    /// Bytes written.
    pub written: u64,
}

impl CopyReport {
    /// The warnings of the file at `path`: one per cap it hit, naming the cap.
    pub fn warnings(&self, path: &str, budget: &ContentBudget) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.cut_lines > 0 {
            warnings.push(format!(
                "{path}: {} line(s) longer than the {} line cap were cut, the rest of each left out ({})",
                self.cut_lines,
                size_text(self.max_line_bytes as u64),
                self.line_cap,
            ));
        }
        if self.out_of_budget {
            warnings.push(format!(
                "{path}: cut where the bundle reached its size limit of {} (MAX_BUNDLE_BYTES); later lines left out",
                size_text(budget.total())
            ));
        }
        warnings
    }
}

/// Turns the lines of one file into what is spooled: redacted, cut lines marked, within the
/// budget.
pub(super) struct LineCopy<'r> {
    lines: LineStream<'r>,
    budget: ContentBudget,
    marker: String,
    out: String,
    pub report: CopyReport,
}

impl<'r> LineCopy<'r> {
    /// Lines longer than `max_line_bytes` are cut; warnings call that cap `line_cap`.
    pub fn new(
        redactor: &'r Redactor,
        budget: ContentBudget,
        max_line_bytes: usize,
        line_cap: &'static str,
    ) -> Self {
        Self {
            lines: redactor.stream(),
            budget,
            marker: super::markers::line_truncated(max_line_bytes as u64),
            out: String::new(),
            report: CopyReport {
                max_line_bytes,
                line_cap,
                cut_lines: 0,
                out_of_budget: false,
                written: 0,
            },
        }
    }

    /// For lines that start in the middle of a log (its tail): see
    /// [`LineStream::starting_mid_log`].
    pub fn starting_mid_log(mut self) -> Self {
        self.lines = self.lines.starting_mid_log();
        self
    }

    /// Whether a rendered line (with its newline, if any) is one cut at the line cap.
    pub fn is_cut(&self, rendered: &[u8]) -> bool {
        rendered
            .strip_suffix(b"\n")
            .unwrap_or(rendered)
            .ends_with(self.marker.as_bytes())
    }

    /// What the redactor masked in the lines rendered so far, by rule.
    pub fn masks(&self) -> &MaskCounts {
        self.lines.counts()
    }

    pub fn max_line_bytes(&self) -> usize {
        self.report.max_line_bytes
    }

    /// The whole lines at the start of `buffered`, up to `limit` bytes of them, when
    /// redaction leaves them as they are (see [`LineStream::unchanged_lines`]) and the budget
    /// has room for all of them: written as they were read, in one piece. None when the
    /// first line must be rendered on its own ([`render`](Self::render)).
    pub fn unchanged_lines<'b>(&mut self, buffered: &'b [u8], limit: u64) -> Option<&'b str> {
        // Within the line cap, every line of the window is whole within it too.
        let window = buffered
            .len()
            .min(BLOCK_BYTES)
            .min(self.report.max_line_bytes + 1);
        let window = &buffered[..window.min(usize::try_from(limit).unwrap_or(usize::MAX))];
        let block = &window[..=memchr::memrchr(b'\n', window)?];
        let unchanged = self.lines.unchanged_lines(block);
        // The prefilter vouches only for ASCII lines: the check cannot fail.
        let text = std::str::from_utf8(&block[..unchanged]).ok()?;
        if text.is_empty() || !self.budget.take_all(text.len() as u64) {
            return None;
        }
        self.report.written += text.len() as u64;
        Some(text)
    }

    /// The text to write for a line read into `raw` (with its newline, or without it when it
    /// was kept apart); shorter than the line's when the budget ran out, after which the copy
    /// must stop (see [`CopyReport::out_of_budget`]). A line left as it was is `raw` itself,
    /// not a copy.
    pub fn render<'s>(&'s mut self, raw: &'s [u8], read: CappedLine) -> &'s str {
        // Valid UTF-8 (nearly every line) is checked at memory speed; the lossy decoder is
        // several times slower even when it replaces nothing.
        let text = match std::str::from_utf8(raw) {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(raw),
        };
        // A line's body never holds a newline: one at the end is its ending.
        let body = text.strip_suffix('\n').unwrap_or(&text);
        let masked = self.lines.redact(body);
        // A line replayed from a keeper comes without its newline and gets it here.
        let ending_as_read = body.len() < text.len() || !read.newline;
        if !read.cut
            && ending_as_read
            && let (Cow::Borrowed(_), Cow::Borrowed(whole)) = (&masked, &text)
        {
            return granted_of(whole, &self.budget, &mut self.report);
        }
        self.out.clear();
        self.out.push_str(&masked);
        if read.cut {
            self.out.push_str(&self.marker);
            self.report.cut_lines += 1;
        }
        if read.newline {
            self.out.push('\n');
        }
        granted_of(&self.out, &self.budget, &mut self.report)
    }
}

/// What of `text` the budget grants, cut back to a whole character (the rest given back),
/// and counted as written.
fn granted_of<'t>(text: &'t str, budget: &ContentBudget, report: &mut CopyReport) -> &'t str {
    let granted = budget.take_up_to(text.len() as u64) as usize;
    let mut kept = granted;
    if granted < text.len() {
        report.out_of_budget = true;
        while !text.is_char_boundary(kept) {
            kept -= 1;
        }
        budget.give_back((granted - kept) as u64);
    }
    report.written += kept as u64;
    &text[..kept]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{
        io::Read,
        pin::Pin,
        task::{Context, Poll},
    };

    /// A reader of `head`, then `len` bytes of `x` with no newline, then `tail`, made as it is
    /// read: a line of any length without allocating it.
    struct LongLine {
        head: &'static [u8],
        len: u64,
        tail: &'static [u8],
        at: u64,
    }

    impl LongLine {
        fn new(head: &'static [u8], len: u64, tail: &'static [u8]) -> Self {
            Self {
                head,
                len,
                tail,
                at: 0,
            }
        }

        fn fill(&mut self, buf: &mut [u8]) -> usize {
            let head = self.head.len() as u64;
            let n = if self.at < head {
                let rest = &self.head[self.at as usize..];
                let n = rest.len().min(buf.len());
                buf[..n].copy_from_slice(&rest[..n]);
                n
            } else if self.at < head + self.len {
                let n = (head + self.len - self.at).min(buf.len() as u64) as usize;
                buf[..n].fill(b'x');
                n
            } else {
                let rest =
                    &self.tail[((self.at - head - self.len) as usize).min(self.tail.len())..];
                let n = rest.len().min(buf.len());
                buf[..n].copy_from_slice(&rest[..n]);
                n
            };
            self.at += n as u64;
            n
        }
    }

    impl Read for LongLine {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            Ok(self.fill(buf))
        }
    }

    impl futures::AsyncRead for LongLine {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Ready(Ok(self.get_mut().fill(buf)))
        }
    }

    const HUGE: u64 = 150 * 1000 * 1000;
    const CAP: usize = 1024 * 1024;

    /// Every line of a reader through a copy, as text, and the largest the line buffer grew.
    fn copy_all(reader: impl Read, budget: u64) -> (String, CopyReport, usize) {
        let redactor = Redactor::new();
        let mut copy = LineCopy::new(&redactor, ContentBudget::new(budget), CAP, "MAX_LINE_BYTES");
        let mut reader = io::BufReader::with_capacity(64 * 1024, reader);
        let mut line = Vec::new();
        let mut out = Vec::new();
        let mut largest = 0;
        while let Some(read) = read_line(&mut reader, &mut line, CAP).unwrap() {
            largest = largest.max(line.capacity());
            out.extend_from_slice(copy.render(&line, read).as_bytes());
            if copy.report.out_of_budget {
                break;
            }
        }
        (String::from_utf8(out).unwrap(), copy.report, largest)
    }

    #[test]
    fn a_150_mb_line_is_cut_at_the_cap_and_the_next_line_is_intact() {
        let reader = LongLine::new(b"first password=hunter2\n", HUGE, b"\nnext line\nlast");
        let (out, report, largest) = copy_all(reader, u64::MAX);
        let lines: Vec<&str> = out.split('\n').collect();
        assert_eq!(lines.len(), 4, "{:?}", &out[..100]);
        assert_eq!(lines[0], "first password=***REDACTED***");
        assert!(lines[1].starts_with(&"x".repeat(CAP)));
        assert!(lines[1].ends_with("[line truncated by velero-debug-operator: longer than 1 MiB]"));
        assert!(lines[1].len() < CAP + 100);
        assert_eq!(&lines[2..], ["next line", "last"]);
        assert_eq!(report.cut_lines, 1);
        assert!(largest <= 2 * CAP, "the line buffer grew to {largest}");
        let redactor = Redactor::new();
        let copy = LineCopy::new(&redactor, ContentBudget::new(1), CAP, "MAX_LINE_BYTES");
        assert!(copy.is_cut(format!("{}\n", lines[1]).as_bytes()));
        assert!(copy.is_cut(lines[1].as_bytes()));
        assert!(!copy.is_cut(b"next line\n"));
    }

    #[test]
    fn undecodable_bytes_are_replaced_and_a_secret_beside_them_is_still_masked() {
        let raw: &[u8] = b"ok \xff\xfe password=hunter2\nplain line\n";
        let (out, report, _) = copy_all(raw, u64::MAX);
        assert_eq!(
            out,
            "ok \u{FFFD}\u{FFFD} password=***REDACTED***\nplain line\n"
        );
        assert_eq!(report.written, out.len() as u64);
    }

    #[test]
    fn a_line_of_exactly_the_cap_is_kept_whole() {
        let reader = LongLine::new(b"", CAP as u64, b"\n");
        let (out, report, _) = copy_all(reader, u64::MAX);
        assert_eq!(out.len(), CAP + 1);
        assert_eq!(report.cut_lines, 0);
    }

    #[test]
    fn the_async_reader_cuts_the_same_way() {
        let mut reader = futures::io::BufReader::new(LongLine::new(b"a\n", HUGE, b"\nb"));
        let mut line = Vec::new();
        let lines = futures::executor::block_on(async {
            let mut lines = Vec::new();
            while let Some(read) = read_line_async(&mut reader, &mut line, CAP).await.unwrap() {
                lines.push((line.len(), read));
            }
            lines
        });
        let cut = |newline, bytes| CappedLine {
            newline,
            cut: true,
            bytes,
        };
        let whole = |newline, bytes| CappedLine {
            newline,
            cut: false,
            bytes,
        };
        // Each line's input bytes are counted whole, its newline and the part past the cap too;
        // the buffer holds what is kept of it and its newline.
        assert_eq!(
            lines,
            [
                (2, whole(true, 2)),
                (CAP + 1, cut(true, HUGE + 1)),
                (1, whole(false, 1))
            ]
        );
    }

    #[test]
    fn a_line_left_as_it_was_is_written_from_where_it_was_read() {
        let redactor = Redactor::new();
        let mut copy = LineCopy::new(&redactor, ContentBudget::new(100), CAP, "MAX_LINE_BYTES");
        let buffered = b"level=info msg=plain\nnext";
        let (raw, read) = whole_line(buffered, CAP).unwrap();
        let rendered = copy.render(raw, read);
        assert_eq!(rendered, "level=info msg=plain\n");
        assert!(std::ptr::eq(rendered.as_ptr(), buffered.as_ptr()), "copied");
        assert_eq!(copy.report.written, 21);
        // A masked line is a copy, with its newline.
        let (raw, read) = whole_line(b"password=hunter2\n", CAP).unwrap();
        assert_eq!(copy.render(raw, read), "password=***REDACTED***\n");
        // A line replayed without its newline gets it back.
        assert_eq!(copy.render(b"kept", read), "kept\n");
        assert_eq!(copy.report.written, 21 + 24 + 5);
    }

    #[test]
    fn plain_whole_lines_go_on_in_one_piece_up_to_the_first_to_mask() {
        let redactor = Redactor::new();
        let budget = ContentBudget::new(1000);
        let mut copy = LineCopy::new(&redactor, budget.clone(), CAP, "MAX_LINE_BYTES");
        let buffered = b"one\ntwo\npassword=hunter2\nthree\nfour";
        let block = copy.unchanged_lines(buffered, u64::MAX).unwrap();
        assert_eq!(block, "one\ntwo\n");
        assert!(std::ptr::eq(block.as_ptr(), buffered.as_ptr()), "copied");
        assert_eq!(copy.report.written, 8);
        // The line to mask goes on its own; the unfinished last line waits for its end.
        assert_eq!(copy.unchanged_lines(&buffered[8..], u64::MAX), None);
        assert_eq!(
            copy.unchanged_lines(&buffered[25..], u64::MAX),
            Some("three\n")
        );
        // Within the limit (whole lines only), and only when the budget holds all of them.
        assert_eq!(copy.unchanged_lines(buffered, 7), Some("one\n"));
        assert_eq!(budget.take_up_to(1000 - 8 - 6 - 4 - 4), 1000 - 22);
        assert_eq!(copy.unchanged_lines(buffered, u64::MAX), None);
        assert_eq!(copy.unchanged_lines(buffered, 4), Some("one\n"));
        // A line longer than the cap is never vouched for.
        let mut capped = LineCopy::new(&redactor, ContentBudget::new(1000), 3, "MAX_LINE_BYTES");
        assert_eq!(
            capped.unchanged_lines(b"ab\nabcd\n", u64::MAX),
            Some("ab\n")
        );
        assert_eq!(capped.unchanged_lines(b"abcd\n", u64::MAX), None);
    }

    #[test]
    fn only_a_line_whole_in_the_buffer_and_within_the_cap_is_taken_from_it() {
        assert_eq!(
            whole_line(b"ab\ncd\n", 2).map(|(l, _)| l),
            Some(&b"ab\n"[..])
        );
        assert_eq!(whole_line(b"abc\n", 2), None);
        assert_eq!(whole_line(b"no newline yet", 100), None);
        assert_eq!(whole_line(b"", 100), None);
    }

    #[test]
    fn a_budget_ending_inside_a_character_keeps_the_characters_before_it() {
        let redactor = Redactor::new();
        let budget = ContentBudget::new(2);
        let mut copy = LineCopy::new(&redactor, budget.clone(), CAP, "MAX_LINE_BYTES");
        let (raw, read) = whole_line("a\u{e9}\n".as_bytes(), CAP).unwrap();
        assert_eq!(copy.render(raw, read), "a");
        assert!(copy.report.out_of_budget);
        assert_eq!(copy.report.written, 1);
        // The byte of the character not written went back to the budget.
        assert_eq!(budget.take_up_to(u64::MAX), 1);
    }

    #[test]
    fn the_copy_stops_where_the_budget_runs_out() {
        let reader = LongLine::new(b"0123456789\n0123456789\n", 0, b"");
        let (out, report, _) = copy_all(reader, 15);
        assert_eq!(out, "0123456789\n0123");
        assert!(report.out_of_budget);
        assert_eq!(report.written, 15);
        let warnings = report.warnings("logs/x.log", &ContentBudget::new(15));
        assert_eq!(
            warnings,
            [
                "logs/x.log: cut where the bundle reached its size limit of 15 bytes (MAX_BUNDLE_BYTES); later lines left out"
            ]
        );
    }
}

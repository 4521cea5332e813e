//! A container log over its bound (maxLogBytesPerContainer) keeps its head and its tail with a
//! marker line between, never only its head: a failure (a panic, the last error) is at the end.
//!
//! The head is the first request, read as any log is (limited to the bound by the server), so
//! a log within its bound still costs one request and one copy. Only when that request came
//! back full is the tail asked for, by a line count estimated from the head, and kept on disk
//! to its last bytes; the head is then cut to half the bound and the marker and the tail are
//! written after it.
//!
//! Sizes are counted twice: as the API serves the log (`raw`: what `limitBytes` counts) and as
//! written to the bundle (`rendered`: redacted, long lines cut). The bound holds for both (the
//! written bytes pass it only when redaction made the head longer than it was: the tail keeps
//! at least a quarter of the bound), and the raw counts are what prove that the tail does not
//! repeat the head: the log is at least as long as either response, so a kept head and tail
//! shorter than that together cannot overlap.

use std::path::PathBuf;

use tokio::{
    fs::File,
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter},
};

use crate::config::size_text;

/// The tail asks for this many times the lines the head's average line length says fill its
/// room: the last lines of a crashed container (a goroutine dump) are often shorter than the
/// rest. The keeper drops what is too much.
const TAIL_SAFETY: u64 = 2;

/// Each of the keeper's files is written through a buffer this large.
const PART_BUFFER: usize = 256 * 1024;

/// A size in both counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Size {
    pub rendered: u64,
    pub raw: u64,
}

impl Size {
    fn plus(self, rendered: u64, raw: u64) -> Size {
        Size {
            rendered: self.rendered + rendered,
            raw: self.raw.saturating_add(raw),
        }
    }

    fn within(self, cap: Size) -> bool {
        self.rendered <= cap.rendered && self.raw <= cap.raw
    }

    fn half(self) -> Size {
        Size {
            rendered: (self.rendered / 2).max(1),
            raw: (self.raw / 2).max(1),
        }
    }
}

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
pub(super) fn tail_lines(wanted: u64, head_raw: u64, head_lines: u64) -> i64 {
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
pub(super) fn marker(gap: Gap, bound: u64) -> String {
    format!(
        "----- velero-debug-operator: {} here: the log is over maxLogBytesPerContainer ({}), so its first lines are above and its last lines below -----\n",
        gap.text(),
        size_text(bound)
    )
}

/// Said of a line cut to fit the tail's room.
const CLIPPED: &[u8] = " … [line cut by velero-debug-operator to fit the log's bound]".as_bytes();

/// One of the keeper's two files.
#[derive(Debug)]
struct Part {
    path: PathBuf,
    out: Option<BufWriter<File>>,
    size: Size,
    lines: u64,
}

impl Part {
    fn new(path: PathBuf) -> Self {
        Self {
            path,
            out: None,
            size: Size::default(),
            lines: 0,
        }
    }

    /// Empties the file (creating it the first time).
    async fn restart(&mut self) -> std::io::Result<()> {
        let file = File::create(&self.path).await?;
        self.out = Some(BufWriter::with_capacity(PART_BUFFER, file));
        self.size = Size::default();
        self.lines = 0;
        Ok(())
    }
}

/// The last lines of a stream, on disk, within a cap in both counts: two files written in
/// turn, each up to half the cap; when the one being written is full, the other (older) one
/// is emptied and written next. At most about the cap sits on disk, never the whole stream,
/// and what is left at the end is the last half to whole cap of the stream, in whole lines.
#[derive(Debug)]
pub(super) struct TailKeeper {
    parts: [Part; 2],
    current: usize,
    cap: Size,
    /// Everything offered.
    read: Size,
}

impl TailKeeper {
    /// Keeps at most `cap` in files at `paths` (created when the first line comes).
    pub fn new(cap: Size, paths: [PathBuf; 2]) -> Self {
        let [a, b] = paths;
        Self {
            parts: [Part::new(a), Part::new(b)],
            current: 0,
            cap,
            read: Size::default(),
        }
    }

    /// The next line as rendered (with its newline, if any) and its raw length. A line
    /// longer than the whole cap keeps its first bytes.
    pub async fn push(&mut self, line: &[u8], raw: u64) -> std::io::Result<()> {
        self.read = self.read.plus(line.len() as u64, raw);
        let clipped;
        let line = if line.len() as u64 > self.cap.rendered {
            clipped = clip(line, self.cap.rendered as usize);
            &clipped[..]
        } else {
            line
        };
        let half = self.cap.half();
        let part = &self.parts[self.current];
        let full = part.lines > 0 && !part.size.plus(line.len() as u64, raw).within(half);
        if full || part.out.is_none() {
            if full {
                self.current = 1 - self.current;
            }
            self.parts[self.current].restart().await?;
        }
        let part = &mut self.parts[self.current];
        if let Some(out) = part.out.as_mut() {
            out.write_all(line).await?;
        }
        part.size = part.size.plus(line.len() as u64, raw);
        part.lines += 1;
        Ok(())
    }

    /// What is kept: the older part's last lines and the newer part, within the cap.
    pub async fn finish(mut self) -> std::io::Result<KeptTail> {
        for part in &mut self.parts {
            if let Some(out) = part.out.as_mut() {
                out.flush().await?;
            }
        }
        let newer = &self.parts[self.current];
        let older = &self.parts[1 - self.current];
        let mut files = Vec::new();
        let mut kept = Size::default();
        let room = self.cap.rendered.saturating_sub(newer.size.rendered);
        if older.lines > 0 && room > 0 {
            // Whole lines are dropped from its start until the rest fits.
            let skip = older.size.rendered.saturating_sub(room);
            files.push((older.path.clone(), skip));
            kept.rendered += older.size.rendered - skip;
            kept.raw += older.size.raw;
        }
        if newer.lines > 0 {
            files.push((newer.path.clone(), 0));
            kept = kept.plus(newer.size.rendered, newer.size.raw);
        }
        Ok(KeptTail {
            files,
            kept_at_most: kept,
            read: self.read,
        })
    }
}

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

/// What a [`TailKeeper`] kept, read back line by line.
#[derive(Debug)]
pub(super) struct KeptTail {
    /// Files in order, each with the bytes to skip from its start (then to the end of the
    /// line they end in).
    files: Vec<(PathBuf, u64)>,
    /// The kept lines' size at most: the older part's first lines are skipped whole, so a
    /// little more of it may be left out than this says.
    pub kept_at_most: Size,
    /// Everything the tail request brought.
    pub read: Size,
}

impl KeptTail {
    /// The kept lines, in order.
    pub fn lines(&self) -> TailLines<'_> {
        TailLines {
            tail: self,
            next_file: 0,
            reader: None,
            skip: 0,
            skip_more: 0,
        }
    }
}

/// The kept lines of a [`KeptTail`], read one at a time into a caller's buffer.
pub(super) struct TailLines<'a> {
    tail: &'a KeptTail,
    next_file: usize,
    reader: Option<BufReader<File>>,
    /// Bytes of the current file still to skip.
    skip: u64,
    /// Bytes of the kept lines still to skip (see [`skip_first`](Self::skip_first)).
    skip_more: u64,
}

impl TailLines<'_> {
    /// Leaves out the first kept lines, at least `bytes` of them (the bundle has less room
    /// than the tail kept).
    pub fn skip_first(&mut self, bytes: u64) {
        self.skip_more = bytes;
    }

    /// The next kept line into `line` (cleared first); false at the end. Lines are as the
    /// keeper wrote them, so no longer than the cap.
    pub async fn next(&mut self, line: &mut Vec<u8>) -> std::io::Result<bool> {
        loop {
            let Some(reader) = self.reader.as_mut() else {
                let Some((path, skip)) = self.tail.files.get(self.next_file) else {
                    return Ok(false);
                };
                self.next_file += 1;
                self.skip = *skip;
                self.reader = Some(BufReader::with_capacity(
                    PART_BUFFER,
                    File::open(path).await?,
                ));
                continue;
            };
            line.clear();
            if reader.read_until(b'\n', line).await? == 0 {
                self.reader = None;
                continue;
            }
            if self.skip > 0 {
                self.skip = self.skip.saturating_sub(line.len() as u64);
                continue;
            }
            if self.skip_more > 0 {
                self.skip_more = self.skip_more.saturating_sub(line.len() as u64);
                continue;
            }
            return Ok(true);
        }
    }
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

    async fn kept_text(keeper: TailKeeper) -> (String, KeptTail) {
        let kept = keeper.finish().await.unwrap();
        let mut text = Vec::new();
        let mut lines = kept.lines();
        let mut line = Vec::new();
        while lines.next(&mut line).await.unwrap() {
            text.extend_from_slice(&line);
        }
        (String::from_utf8(text).unwrap(), kept)
    }

    fn keeper(dir: &tempfile::TempDir, rendered: u64, raw: u64) -> TailKeeper {
        TailKeeper::new(
            Size { rendered, raw },
            [dir.path().join("a"), dir.path().join("b")],
        )
    }

    /// `n` lines of 10 bytes: `line 0000\n`...
    fn numbered(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("line {i:04}\n")).collect()
    }

    #[tokio::test]
    async fn the_keeper_keeps_the_last_lines_within_its_cap() {
        let dir = tempfile::tempdir().unwrap();
        let mut keeper = keeper(&dir, 100, 1000);
        for line in numbered(1000) {
            keeper.push(line.as_bytes(), 10).await.unwrap();
        }
        let (text, kept) = kept_text(keeper).await;
        assert_eq!(kept.read.rendered, 10_000);
        // The last 5 to 10 lines, whole, ending with the last.
        assert!(text.ends_with("line 0999\n"), "{text}");
        assert!(text.len() <= 100 && text.len() >= 50, "{text}");
        assert!(text.starts_with("line "), "{text}");
        assert_eq!(
            kept.kept_at_most.rendered,
            text.len() as u64,
            "no line skipped"
        );
        let expected: String = numbered(1000)[1000 - text.len() / 10..].concat();
        assert_eq!(text, expected);
        // Never more than the cap and a line on disk.
        let on_disk: u64 = ["a", "b"]
            .iter()
            .map(|f| std::fs::metadata(dir.path().join(f)).unwrap().len())
            .sum();
        assert!(on_disk <= 110, "{on_disk}");
        // Less room in the bundle: the first kept lines go, the end stays.
        let mut lines = kept.lines();
        lines.skip_first(15);
        let mut line = Vec::new();
        let mut rest = Vec::new();
        while lines.next(&mut line).await.unwrap() {
            rest.extend_from_slice(&line);
        }
        assert_eq!(rest, text.as_bytes()[20..]);
    }

    #[tokio::test]
    async fn the_keeper_rotates_on_raw_bytes_too() {
        let dir = tempfile::tempdir().unwrap();
        // Each line is 10 bytes written but 100 in the log (say, cut when copied).
        let mut keeper = keeper(&dir, 1000, 400);
        for line in numbered(100) {
            keeper.push(line.as_bytes(), 100).await.unwrap();
        }
        let (text, kept) = kept_text(keeper).await;
        assert!(text.ends_with("line 0099\n"));
        assert!(kept.kept_at_most.raw <= 400, "{:?}", kept.kept_at_most);
        assert_eq!(kept.kept_at_most.raw, 100 * (text.len() as u64 / 10));
        assert_eq!(kept.read.raw, 100 * 100);
    }

    #[tokio::test]
    async fn a_line_longer_than_the_keeper_keeps_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let mut keeper = keeper(&dir, 200, 200);
        keeper.push(b"before\n", 7).await.unwrap();
        let long = format!("panic: {}\n", "é".repeat(300));
        keeper
            .push(long.as_bytes(), long.len() as u64)
            .await
            .unwrap();
        let (text, kept) = kept_text(keeper).await;
        // Alone: the line before it does not fit beside it.
        assert!(text.starts_with("panic: éé"), "{text}");
        assert!(
            text.ends_with(" … [line cut by velero-debug-operator to fit the log's bound]\n"),
            "{text}"
        );
        assert!(text.len() <= 200, "{}", text.len());
        assert!(kept.kept_at_most.rendered >= text.len() as u64);
        // A line after it pushes it out.
        let mut keeper = self::keeper(&dir, 200, 200);
        keeper.push(long.as_bytes(), 10).await.unwrap();
        keeper.push(b"after\n", 6).await.unwrap();
        let (text, _) = kept_text(keeper).await;
        assert!(text.ends_with("after\n"), "{text}");
        assert!(text.len() <= 200);
    }

    #[tokio::test]
    async fn an_empty_tail_keeps_nothing_and_a_last_line_without_newline_stays_last() {
        let dir = tempfile::tempdir().unwrap();
        let (text, kept) = kept_text(keeper(&dir, 100, 100)).await;
        assert_eq!(text, "");
        assert_eq!(kept.kept_at_most, Size::default());
        assert!(!dir.path().join("a").exists());
        let mut keeper = keeper(&dir, 100, 100);
        keeper.push(b"a\n", 2).await.unwrap();
        keeper.push(b"the end", 7).await.unwrap();
        let (text, _) = kept_text(keeper).await;
        assert_eq!(text, "a\nthe end");
    }

    #[test]
    fn a_clipped_line_without_room_for_the_mark_is_cut_plain() {
        assert_eq!(clip(b"abcdef\n", 4), b"abc\n");
        assert_eq!(clip(b"abcdef", 4), b"abcd");
        assert_eq!(clip("aé".as_bytes(), 2), b"a");
    }
}

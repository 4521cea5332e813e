//! The last lines of a stream read to its end but kept only in part, on disk: a container
//! log's tail (`logs/over_bound.rs`: the tail request brings more lines than the bound leaves
//! room for) and an operation's log over the inflated cap (`object_store.rs`: a gzip stream's
//! end is only known once it is over). Lines go to two files used in turn, each filled up to
//! the cap before the other (older) one is emptied and written next, so the last cap's worth
//! of lines is always in them and memory stays flat however long the stream; about twice the
//! cap sits on disk at most. The files go when the keeper (or what it kept) is dropped.

use std::{
    fs::File,
    io::{self, BufRead, BufReader, BufWriter, Write},
    path::{Path, PathBuf},
};

/// Each file is written and read back through a buffer this large.
const BUFFER: usize = 256 * 1024;

/// A size in two counts: the line as kept (its bytes and its newline) and as the stream
/// served it (`raw`: a line cut at the line cap, or redacted, took more or fewer bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Size {
    pub rendered: u64,
    pub raw: u64,
}

impl Size {
    /// A cap on the stream's bytes alone (lines kept as read, not rendered).
    pub fn raw_only(raw: u64) -> Size {
        Size {
            rendered: u64::MAX,
            raw,
        }
    }

    pub fn plus(self, other: Size) -> Size {
        Size {
            rendered: self.rendered.saturating_add(other.rendered),
            raw: self.raw.saturating_add(other.raw),
        }
    }

    fn minus(self, other: Size) -> Size {
        Size {
            rendered: self.rendered.saturating_sub(other.rendered),
            raw: self.raw.saturating_sub(other.raw),
        }
    }

    pub fn within(self, cap: Size) -> bool {
        self.rendered <= cap.rendered && self.raw <= cap.raw
    }

    fn reaches(self, cap: Size) -> bool {
        self.rendered >= cap.rendered || self.raw >= cap.raw
    }
}

/// How a line ended: with its newline or not (a stream's last line), cut at the line cap
/// or whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Kept {
    pub newline: bool,
    pub cut: bool,
}

/// One of the keeper's two files, created when its first line comes.
struct Part {
    path: PathBuf,
    out: Option<BufWriter<File>>,
    size: Size,
    lines: u64,
}

impl Part {
    fn new(path: PathBuf) -> Part {
        Part {
            path,
            out: None,
            size: Size::default(),
            lines: 0,
        }
    }

    /// Empties the file (creating it the first time).
    fn restart(&mut self) -> io::Result<&mut BufWriter<File>> {
        // The old buffer goes out before the file is truncated, or dropping its writer would
        // put stale lines into the emptied file.
        if let Some(mut old) = self.out.take() {
            old.flush()?;
        }
        self.size = Size::default();
        self.lines = 0;
        let file = File::create(&self.path)?;
        Ok(self.out.insert(BufWriter::with_capacity(BUFFER, file)))
    }
}

/// Keeps the last lines of a stream within `cap` (in both counts).
pub(super) struct TailKeeper {
    parts: [Part; 2],
    current: usize,
    cap: Size,
    /// Every line given, kept or not.
    read: Size,
    lines: u64,
}

impl TailKeeper {
    /// Parts at `<file>.tail-a` and `<file>.tail-b`.
    pub fn beside(file: &Path, cap: Size) -> TailKeeper {
        let part = |suffix: &str| {
            let mut path = file.as_os_str().to_owned();
            path.push(suffix);
            Part::new(PathBuf::from(path))
        };
        TailKeeper {
            parts: [part(".tail-a"), part(".tail-b")],
            current: 0,
            cap,
            read: Size::default(),
            lines: 0,
        }
    }

    /// Keeps `line` (no newline in it; `how` says whether one ended it), which took `raw`
    /// bytes of the stream.
    pub fn push(&mut self, line: &[u8], how: Kept, raw: u64) -> io::Result<()> {
        let size = Size {
            rendered: line.len() as u64 + u64::from(how.newline),
            raw,
        };
        self.read = self.read.plus(size);
        self.lines += 1;
        let part = &self.parts[self.current];
        let full = part.lines > 0 && part.size.reaches(self.cap);
        if full {
            // The other part's lines are all older than a cap's worth ago.
            self.current = 1 - self.current;
        }
        let part = &mut self.parts[self.current];
        let out = match part.out.as_mut() {
            Some(out) if !full => out,
            _ => part.restart()?,
        };
        write_record(out, line, how, raw)?;
        part.size = part.size.plus(size);
        part.lines += 1;
        Ok(())
    }

    /// Stops taking lines: the kept ones are the last that fit in the cap (the last line is
    /// kept even when it alone is over it).
    pub fn finish(mut self) -> io::Result<KeptTail> {
        for part in &mut self.parts {
            if let Some(out) = part.out.as_mut() {
                out.flush()?;
            }
        }
        let (older, newer) = self.in_order();
        let mut kept = older.size.plus(newer.size);
        let mut left = older.lines + newer.lines;
        let mut skip_lines = 0;
        let mut records = Records::of([&older.path, &newer.path]);
        // The oldest lines, whole, until the rest fits.
        while !kept.within(self.cap) && left > 1 {
            let Some(record) = records.next()? else { break };
            kept = kept.minus(record.size());
            skip_lines += 1;
            left -= 1;
        }
        let left_out_lines = self.lines - left;
        let read = self.read;
        Ok(KeptTail {
            keeper: self,
            skip_lines,
            kept,
            read,
            left_out_lines,
        })
    }

    /// The older part, then the newer.
    fn in_order(&self) -> (&Part, &Part) {
        (&self.parts[1 - self.current], &self.parts[self.current])
    }
}

impl Drop for TailKeeper {
    fn drop(&mut self) {
        for part in &self.parts {
            if part.out.is_some() {
                let _ = std::fs::remove_file(&part.path);
            }
        }
    }
}

/// A record: the raw size in decimal, a space, the flags, the line, a newline (lines hold
/// none).
fn write_record(out: &mut impl Write, line: &[u8], how: Kept, raw: u64) -> io::Result<()> {
    let flags = match (how.newline, how.cut) {
        (true, false) => b'n',
        (true, true) => b'N',
        (false, false) => b'e',
        (false, true) => b'E',
    };
    write!(out, "{raw} ")?;
    out.write_all(&[flags])?;
    out.write_all(line)?;
    out.write_all(b"\n")
}

/// What a [`TailKeeper`] kept; its files go when it is dropped.
pub(super) struct KeptTail {
    keeper: TailKeeper,
    /// Lines before the kept ones.
    skip_lines: u64,
    /// The kept lines' size.
    pub kept: Size,
    /// Every line given.
    pub read: Size,
    /// Lines given that are not kept.
    pub left_out_lines: u64,
}

impl KeptTail {
    /// The kept lines, oldest first.
    pub fn lines(&self) -> TailLines<'_> {
        let (older, newer) = self.keeper.in_order();
        TailLines {
            records: Records::of([&older.path, &newer.path]),
            skip_lines: self.skip_lines,
            skip_bytes: 0,
        }
    }
}

/// One kept line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct TailLine<'a> {
    /// Without its newline.
    pub line: &'a [u8],
    pub how: Kept,
    pub raw: u64,
}

impl TailLine<'_> {
    fn size(&self) -> Size {
        Size {
            rendered: self.line.len() as u64 + u64::from(self.how.newline),
            raw: self.raw,
        }
    }
}

/// The kept lines of a [`KeptTail`], one at a time.
pub(super) struct TailLines<'a> {
    records: Records<'a>,
    skip_lines: u64,
    skip_bytes: u64,
}

impl TailLines<'_> {
    /// Leaves out the first kept lines, whole, at least `bytes` of them as kept (the bundle
    /// has less room than the tail kept).
    pub fn skip_first(&mut self, bytes: u64) {
        self.skip_bytes = bytes;
    }

    /// The next kept line; None at the end.
    pub fn next(&mut self) -> io::Result<Option<TailLine<'_>>> {
        while self.skip_lines > 0 || self.skip_bytes > 0 {
            let Some(record) = self.records.next()? else {
                return Ok(None);
            };
            if self.skip_lines > 0 {
                self.skip_lines -= 1;
            } else {
                self.skip_bytes = self.skip_bytes.saturating_sub(record.size().rendered);
            }
        }
        self.records.next()
    }
}

/// The records of the files, in order (a file never written is skipped).
struct Records<'a> {
    files: [&'a Path; 2],
    next_file: usize,
    reader: Option<BufReader<File>>,
    record: Vec<u8>,
}

impl<'a> Records<'a> {
    fn of(files: [&'a Path; 2]) -> Records<'a> {
        Records {
            files,
            next_file: 0,
            reader: None,
            record: Vec::new(),
        }
    }

    fn next(&mut self) -> io::Result<Option<TailLine<'_>>> {
        loop {
            let Some(reader) = self.reader.as_mut() else {
                let Some(path) = self.files.get(self.next_file) else {
                    return Ok(None);
                };
                self.next_file += 1;
                match File::open(path) {
                    Ok(file) => self.reader = Some(BufReader::with_capacity(BUFFER, file)),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
                continue;
            };
            self.record.clear();
            if reader.read_until(b'\n', &mut self.record)? == 0 {
                self.reader = None;
                continue;
            }
            return record_of(&self.record).map(Some);
        }
    }
}

/// A record's raw size, line and flags.
fn record_of(record: &[u8]) -> io::Result<TailLine<'_>> {
    let bad = || io::Error::other("a tail part record without its size");
    let space = record.iter().position(|&b| b == b' ').ok_or_else(bad)?;
    let raw = std::str::from_utf8(&record[..space])
        .ok()
        .and_then(|n| n.parse().ok())
        .ok_or_else(bad)?;
    let rest = &record[space + 1..];
    let (&flags, rest) = rest.split_first().ok_or_else(bad)?;
    let line = rest.strip_suffix(b"\n").unwrap_or(rest);
    let how = Kept {
        newline: matches!(flags, b'n' | b'N'),
        cut: matches!(flags, b'N' | b'E'),
    };
    Ok(TailLine { line, how, raw })
}

#[cfg(test)]
#[path = "tail_keeper_tests.rs"]
mod tests;

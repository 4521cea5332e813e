//! The last lines of a stream that is read to its end but kept only in part: an operation's
//! log over the inflated cap keeps its head and its end, and the end is only known once the
//! stream is over. Lines go to two files on disk used in turn, each holding `room` bytes, so
//! the last `room` bytes are always in them and memory stays flat however long the stream.
//! (log_tail.rs keeps a container log's end by asking the API for it; a gzip stream from the
//! object store has no such request.)

use std::{
    fs::File,
    io::{self, BufRead, BufReader, BufWriter, Write},
    path::{Path, PathBuf},
};

/// One line as read: its bytes (no newline inside) and how it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Kept {
    pub newline: bool,
    pub cut: bool,
}

const BUFFER: usize = 256 * 1024;

struct Part {
    path: PathBuf,
    out: BufWriter<File>,
    bytes: u64,
    lines: u64,
}

impl Part {
    fn create(path: PathBuf) -> io::Result<Part> {
        let out = BufWriter::with_capacity(BUFFER, File::create(&path)?);
        Ok(Part {
            path,
            out,
            bytes: 0,
            lines: 0,
        })
    }
}

/// Keeps the last lines of at most `room` bytes (each line counted with one byte of flags and
/// its newline); the parts are removed when it is dropped.
pub(super) struct TailKeeper {
    parts: [Part; 2],
    current: usize,
    room: u64,
    /// Lines given and their bytes, kept or not.
    pub lines: u64,
    pub bytes: u64,
}

impl TailKeeper {
    /// Parts at `<base>.tail0` and `<base>.tail1`.
    pub fn create(base: &Path, room: u64) -> io::Result<TailKeeper> {
        let part = |n: u8| Part::create(base.with_extension(format!("tail{n}")));
        Ok(TailKeeper {
            parts: [part(0)?, part(1)?],
            current: 0,
            room: room.max(1),
            lines: 0,
            bytes: 0,
        })
    }

    /// Keeps `line`, which took `raw` bytes of the stream (its newline and any part past the
    /// line cap included): `room` counts those.
    pub fn push(&mut self, line: &[u8], how: Kept, raw: u64) -> io::Result<()> {
        if self.parts[self.current].bytes >= self.room {
            // The other part's lines are all older than `room` bytes ago: start it again.
            self.current = 1 - self.current;
            // Its buffer goes out before the file is truncated, or dropping the writer would
            // put stale lines into the new part.
            self.parts[self.current].out.flush()?;
            let path = self.parts[self.current].path.clone();
            self.parts[self.current] = Part::create(path)?;
        }
        let part = &mut self.parts[self.current];
        let flags = match (how.newline, how.cut) {
            (true, false) => b'n',
            (true, true) => b'N',
            (false, false) => b'e',
            (false, true) => b'E',
        };
        // A record: the raw size in decimal, the flags, the line, a newline (lines hold none).
        write!(part.out, "{raw} ")?;
        part.out.write_all(&[flags])?;
        part.out.write_all(line)?;
        part.out.write_all(b"\n")?;
        let size = raw;
        part.bytes += size;
        part.lines += 1;
        self.lines += 1;
        self.bytes += size;
        Ok(())
    }

    /// Stops taking lines: the kept ones are the last that fit in `room`.
    pub fn finish(mut self) -> io::Result<KeptTail> {
        for part in &mut self.parts {
            part.out.flush()?;
        }
        let (older, newer) = (&self.parts[1 - self.current], &self.parts[self.current]);
        let mut skip = (older.bytes + newer.bytes).saturating_sub(self.room);
        let mut skip_lines = 0;
        if skip > 0 {
            // The oldest lines of the older part, whole, until the rest fits.
            let mut reader = BufReader::with_capacity(BUFFER, File::open(&older.path)?);
            let mut record = Vec::new();
            while skip > 0 && reader.read_until(b'\n', &mut record)? > 0 {
                skip = skip.saturating_sub(record_of(&record)?.0);
                skip_lines += 1;
                record.clear();
            }
        }
        let left_out_lines = self.lines - older.lines - newer.lines + skip_lines;
        Ok(KeptTail {
            keeper: self,
            skip_lines,
            left_out_lines,
        })
    }
}

/// The lines a [`TailKeeper`] kept.
pub(super) struct KeptTail {
    keeper: TailKeeper,
    /// Lines of the older part before the kept ones.
    skip_lines: u64,
    /// Lines given that are not kept.
    pub left_out_lines: u64,
}

impl KeptTail {
    /// Calls `each` on the kept lines, oldest first.
    pub fn replay(
        self,
        mut each: impl FnMut(&[u8], Kept, u64) -> io::Result<()>,
    ) -> io::Result<()> {
        let k = &self.keeper;
        let (older, newer) = (&k.parts[1 - k.current], &k.parts[k.current]);
        let mut skip = self.skip_lines;
        for part in [older, newer] {
            if part.bytes == 0 {
                continue;
            }
            let mut reader = BufReader::with_capacity(BUFFER, File::open(&part.path)?);
            let mut record = Vec::new();
            while reader.read_until(b'\n', &mut record)? > 0 {
                if skip > 0 {
                    skip -= 1;
                } else {
                    let (raw, line, how) = record_of(&record)?;
                    each(line, how, raw)?;
                }
                record.clear();
            }
        }
        Ok(())
    }
}

/// A record's raw size, line and flags.
fn record_of(record: &[u8]) -> io::Result<(u64, &[u8], Kept)> {
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
    Ok((raw, line, how))
}

impl Drop for TailKeeper {
    fn drop(&mut self) {
        for part in &self.parts {
            let _ = std::fs::remove_file(&part.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: Kept = Kept {
        newline: true,
        cut: false,
    };

    fn replayed(keeper: TailKeeper) -> (Vec<String>, u64) {
        let kept = keeper.finish().unwrap();
        let left_out = kept.left_out_lines;
        let mut lines = Vec::new();
        kept.replay(|line, _, raw| {
            assert_eq!(raw, 11);
            lines.push(String::from_utf8(line.to_vec()).unwrap());
            Ok(())
        })
        .unwrap();
        (lines, left_out)
    }

    #[test]
    fn the_last_lines_within_the_room_are_kept_in_order() {
        let dir = tempfile::tempdir().unwrap();
        // Each line "line-NNNN" took 11 bytes of the stream (say, with a CRLF).
        let mut keeper = TailKeeper::create(&dir.path().join("log"), 110).unwrap();
        for i in 0..1000 {
            keeper
                .push(format!("line-{i:04}").as_bytes(), LINE, 11)
                .unwrap();
        }
        let (lines, left_out) = replayed(keeper);
        let expected: Vec<String> = (990..1000).map(|i| format!("line-{i:04}")).collect();
        assert_eq!(lines, expected);
        assert_eq!(left_out, 990);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "parts removed"
        );
    }

    #[test]
    fn a_stream_within_the_room_is_kept_whole_with_how_each_line_ended() {
        let dir = tempfile::tempdir().unwrap();
        let mut keeper = TailKeeper::create(&dir.path().join("log"), 1000).unwrap();
        let last = Kept {
            newline: false,
            cut: true,
        };
        keeper.push(b"a", LINE, 2).unwrap();
        keeper.push(b"", LINE, 1).unwrap();
        keeper.push(b"b\xff", last, 500).unwrap();
        let mut seen = Vec::new();
        let kept = keeper.finish().unwrap();
        assert_eq!(kept.left_out_lines, 0);
        kept.replay(|line, how, _| {
            seen.push((line.to_vec(), how));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            seen,
            [
                (b"a".to_vec(), LINE),
                (Vec::new(), LINE),
                (b"b\xff".to_vec(), last)
            ]
        );
    }
}

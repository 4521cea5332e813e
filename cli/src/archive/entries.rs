//! The one reader of a bundle's .tar.gz: `report`, `serve`, `download --extract`, `logs` and
//! `summary` all read archives through [`read_entries`]. A bundle may come from anyone, so
//! what reading it costs is bounded while it is read, not after: every byte the gzip inflates
//! counts against the budget (headers, GNU long names, PAX records, the data of entries read
//! or skipped), so the tar crate can never pull more than the budget; the headers of one
//! entry, which the tar crate holds in memory, have a bound of their own; and so does the
//! number of entries.

use std::{
    cell::Cell,
    io::{self, Read},
    ops::ControlFlow,
    rc::Rc,
};

use flate2::read::MultiGzDecoder;

/// The most bytes of headers one entry may have: its GNU long name and long link and its PAX
/// records, each read whole into memory by the tar crate. A path is a few KiB at most.
pub(crate) const MAX_ENTRY_HEADER_BYTES: u64 = 1 << 20;
/// The most entries an archive may hold (the operator writes a few thousand at most).
pub(crate) const MAX_ENTRIES: u64 = 100_000;
/// The most bytes an archive may inflate to, unless `--max-bytes` says otherwise.
pub(crate) const DEFAULT_MAX_BYTES: u64 = 4 << 30;

/// What reading one archive may cost at most.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    /// Bytes inflated, of every kind.
    pub bytes: u64,
    /// Entries, of every type.
    pub entries: u64,
    /// What set `bytes`, for the error that names it.
    pub bytes_named: &'static str,
}

impl Budget {
    /// `--max-bytes`' budget: that many bytes, [`MAX_ENTRIES`] entries.
    pub(crate) fn max_bytes(bytes: u64) -> Budget {
        Budget {
            bytes,
            entries: MAX_ENTRIES,
            bytes_named: "--max-bytes",
        }
    }
}

/// Which bound reading an archive reached, and the bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum LimitHit {
    #[error(
        "more than {limit} bytes unpacked ({named}; headers, names and data of every entry \
         count, read or skipped); refusing the rest"
    )]
    Bytes { limit: u64, named: &'static str },
    #[error(
        "more than {0} bytes of headers for one entry (a GNU long name or PAX records); \
         refusing the rest"
    )]
    EntryHeaders(u64),
    #[error("more than {0} entries; refusing the rest")]
    Entries(u64),
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ArchiveError {
    #[error("reading the archive: {0}")]
    Read(#[from] io::Error),
    #[error(transparent)]
    Limit(#[from] LimitHit),
    #[error("a GNU sparse entry, which the operator never writes; refused")]
    Sparse,
}

/// What the inflating reader and the loop over entries share.
#[derive(Default)]
struct Tally {
    /// Bytes inflated so far: the tar crate's position in the tar stream.
    inflated: Cell<u64>,
    /// Where the next entry's headers begin: the end of the last entry's data.
    headers_from: Cell<u64>,
    hit: Cell<Option<LimitHit>>,
}

/// The gzip decoder, refusing to inflate past the budget or past one entry's header bound;
/// the tar crate reads through it only.
pub(crate) struct Inflated<R: Read> {
    gzip: MultiGzDecoder<R>,
    tally: Rc<Tally>,
    budget: Budget,
}

impl<R: Read> Inflated<R> {
    /// Where reading must stop now, and which bound that is.
    fn bound(&self) -> (u64, LimitHit) {
        let headers_end = self
            .tally
            .headers_from
            .get()
            .saturating_add(MAX_ENTRY_HEADER_BYTES);
        if self.budget.bytes <= headers_end {
            let hit = LimitHit::Bytes {
                limit: self.budget.bytes,
                named: self.budget.bytes_named,
            };
            (self.budget.bytes, hit)
        } else {
            (headers_end, LimitHit::EntryHeaders(MAX_ENTRY_HEADER_BYTES))
        }
    }
}

impl<R: Read> Read for Inflated<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let (end, hit) = self.bound();
        let left = end.saturating_sub(self.tally.inflated.get());
        // One byte past what is left is asked for, so a stream ending right there ends cleanly.
        let asked = usize::try_from(left.saturating_add(1)).map_or(buf.len(), |a| a.min(buf.len()));
        let n = self.gzip.read(&mut buf[..asked])?;
        if n as u64 > left {
            self.tally.hit.set(Some(hit));
            return Err(io::Error::other(hit));
        }
        self.tally
            .inflated
            .set(self.tally.inflated.get() + n as u64);
        Ok(n)
    }
}

/// The entry type `read_entries` hands on.
pub(crate) type Entry<'a, R> = tar::Entry<'a, Inflated<R>>;

/// Hands each entry of the tar.gz `compressed` (every type, in archive order) to `each`,
/// within `budget`, until the archive ends or `each` breaks. An error `each` returns after a
/// bound was reached becomes that bound's error: the bound is why its read failed.
pub(crate) fn read_entries<R, E>(
    compressed: R,
    budget: Budget,
    mut each: impl FnMut(&mut Entry<'_, R>) -> Result<ControlFlow<()>, E>,
) -> Result<(), E>
where
    R: Read,
    E: From<ArchiveError>,
{
    let tally = Rc::new(Tally::default());
    let mut archive = tar::Archive::new(Inflated {
        gzip: MultiGzDecoder::new(compressed),
        tally: tally.clone(),
        budget,
    });
    // Whatever modes the archive asks for, what is written from it is for the user alone:
    // folders at most 0700, files at most 0600.
    archive.set_mask(0o077);
    let bounded = |e: E| match tally.hit.get() {
        Some(hit) => E::from(ArchiveError::Limit(hit)),
        None => e,
    };
    let entries = archive
        .entries()
        .map_err(|e| bounded(ArchiveError::Read(e).into()))?;
    let mut count = 0u64;
    for entry in entries {
        let mut entry = entry.map_err(|e| bounded(ArchiveError::Read(e).into()))?;
        count += 1;
        if count > budget.entries {
            return Err(ArchiveError::Limit(LimitHit::Entries(budget.entries)).into());
        }
        if entry.header().entry_type().is_gnu_sparse() {
            return Err(ArchiveError::Sparse.into());
        }
        // The next entry's headers begin where this one's data ends, padded to a block.
        tally.headers_from.set(data_end(&entry));
        if each(&mut entry).map_err(bounded)?.is_break() {
            break;
        }
    }
    Ok(())
}

/// Where `entry`'s data ends in the tar stream, padded to a block: reading it whole, or
/// skipping it, inflates the stream to there.
pub(crate) fn data_end<R: Read>(entry: &Entry<'_, R>) -> u64 {
    entry
        .raw_file_position()
        .saturating_add(entry.size())
        .saturating_add(511)
        & !511
}

#[cfg(test)]
#[path = "entries_tests.rs"]
mod tests;

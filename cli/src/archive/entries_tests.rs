use std::{
    io::Read,
    time::{Duration, Instant},
};

use super::*;

/// One tar entry as a hostile archive writes it: a header of type `kind` declaring
/// `declared` bytes, then `body` bytes of `a`, padded to a block.
fn raw_entry(kind: tar::EntryType, path: &str, declared: u64, body: u64) -> Vec<u8> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_size(declared);
    header.set_mode(0o644);
    header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
    header.set_cksum();
    let mut out = header.as_bytes().to_vec();
    std::io::repeat(b'a')
        .take(body)
        .read_to_end(&mut out)
        .unwrap();
    out.resize(out.len().next_multiple_of(512), 0);
    out
}

/// `tar` gzipped, with the end-of-archive marker.
fn tar_gz(mut tar: Vec<u8>) -> Vec<u8> {
    tar.extend([0u8; 1024]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    gz.finish().unwrap()
}

/// Reads every entry as `unpack` would (the data of files read, of the others skipped); the
/// entries read, or the error.
fn read_all(archive: &[u8], budget: Budget) -> Result<usize, ArchiveError> {
    let mut seen = 0;
    read_entries(archive, budget, |entry| {
        seen += 1;
        if entry.header().entry_type().is_file() {
            std::io::copy(entry, &mut std::io::sink())?;
        }
        Ok::<_, ArchiveError>(ControlFlow::Continue(()))
    })?;
    Ok(seen)
}

fn large() -> Budget {
    Budget::max_bytes(1 << 30)
}

/// The bound `result` stopped at, within a few seconds of `started`.
fn stopped_at(result: Result<usize, ArchiveError>, started: Instant) -> LimitHit {
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    match result {
        Err(ArchiveError::Limit(hit)) => hit,
        other => panic!("not stopped by a bound: {other:?}"),
    }
}

#[test]
fn a_gnu_long_name_bomb_stops_at_the_header_bound_whatever_the_budget() {
    let mut tar = raw_entry(
        tar::EntryType::GNULongName,
        "././@LongLink",
        16 << 20,
        16 << 20,
    );
    tar.extend(raw_entry(tar::EntryType::Regular, "b/x", 1, 1));
    let archive = tar_gz(tar);
    assert!(archive.len() < 1 << 20, "{} bytes of gzip", archive.len());
    let started = Instant::now();
    let hit = stopped_at(read_all(&archive, large()), started);
    assert_eq!(hit, LimitHit::EntryHeaders(MAX_ENTRY_HEADER_BYTES));
    assert!(
        hit.to_string().contains("1048576 bytes of headers"),
        "{hit}"
    );
}

#[test]
fn a_pax_bomb_stops_at_the_header_bound() {
    let mut tar = raw_entry(tar::EntryType::XHeader, "b/PaxHeader", 16 << 20, 16 << 20);
    tar.extend(raw_entry(tar::EntryType::Regular, "b/x", 1, 1));
    let started = Instant::now();
    let hit = stopped_at(read_all(&tar_gz(tar), large()), started);
    assert_eq!(hit, LimitHit::EntryHeaders(MAX_ENTRY_HEADER_BYTES));
}

#[test]
fn many_tiny_entries_stop_at_the_entry_bound() {
    let tar: Vec<u8> = (0..500)
        .flat_map(|i| raw_entry(tar::EntryType::Regular, &format!("b/{i}"), 0, 0))
        .collect();
    let archive = tar_gz(tar);
    let budget = Budget {
        entries: 100,
        ..large()
    };
    let started = Instant::now();
    let hit = stopped_at(read_all(&archive, budget), started);
    assert_eq!(hit, LimitHit::Entries(100));
    assert_eq!(hit.to_string(), "more than 100 entries; refusing the rest");
    // The default bound takes them all.
    assert_eq!(read_all(&archive, large()).unwrap(), 500);
}

#[test]
fn a_big_skipped_entry_counts_against_the_budget() {
    // A link is never written, so its data is skipped: it inflates all the same.
    let mut tar = raw_entry(tar::EntryType::Symlink, "b/link", 8 << 20, 8 << 20);
    tar.extend(raw_entry(tar::EntryType::Regular, "b/x", 1, 1));
    let started = Instant::now();
    let hit = stopped_at(read_all(&tar_gz(tar), Budget::max_bytes(1 << 20)), started);
    assert_eq!(
        hit,
        LimitHit::Bytes {
            limit: 1 << 20,
            named: "--max-bytes"
        }
    );
    assert!(
        hit.to_string()
            .contains("more than 1048576 bytes unpacked (--max-bytes"),
        "{hit}"
    );
}

#[test]
fn headers_are_counted_too_when_entries_are_small() {
    // 64 KiB of headers and no data at all: the budget is spent by the headers alone.
    let tar: Vec<u8> = (0..128)
        .flat_map(|i| raw_entry(tar::EntryType::Directory, &format!("b/{i}/"), 0, 0))
        .collect();
    let archive = tar_gz(tar);
    let hit = stopped_at(
        read_all(&archive, Budget::max_bytes(32 << 10)),
        Instant::now(),
    );
    assert!(
        matches!(hit, LimitHit::Bytes { limit: 32768, .. }),
        "{hit:?}"
    );
    // Its own size (and the end-of-archive block) is enough.
    assert_eq!(
        read_all(&archive, Budget::max_bytes(128 * 512 + 512)).unwrap(),
        128
    );
}

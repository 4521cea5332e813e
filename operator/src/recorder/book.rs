//! The recorded pods, bounded: at most [`MAX_RECORDS`], the oldest forgotten first, and as
//! stored (gzip'd JSON lines in one ConfigMap) at most [`MAX_STORED_BYTES`], so the record
//! fits a ConfigMap whatever the pods held (a record is cut to a bound: termination.rs).
//! What is read back is hostile (anyone who may edit ConfigMaps in Velero's namespace may
//! write it): inflated within a bound, each line parsed alone, the bad ones dropped.

use std::{
    collections::VecDeque,
    io::{BufRead, BufReader, Read, Write},
};

use flate2::{Compression, read::GzDecoder, write::GzEncoder};
use k8s_openapi::api::core::v1::Pod;

/// Records kept: the pods of the last failed volumes of a big restore (a few hundred) with
/// room to spare.
pub(crate) const MAX_RECORDS: usize = 1_000;
/// The stored record's bytes (gzip'd): a ConfigMap holds 1 MiB in all.
pub(crate) const MAX_STORED_BYTES: usize = 768 * 1024;
/// Bytes read back when inflating a stored record: far above what MAX_RECORDS records take.
const MAX_INFLATED_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Default)]
pub(crate) struct Book {
    /// Oldest first; one per pod uid.
    records: VecDeque<Pod>,
}

impl Book {
    /// Keeps `pod` (as termination.rs cut it) in place of an earlier record of the same pod;
    /// true when that changed the book.
    pub(crate) fn keep(&mut self, pod: Pod) -> bool {
        let uid = pod.metadata.uid.clone();
        if let Some(at) = self.records.iter().position(|p| p.metadata.uid == uid) {
            if same_end(&self.records[at], &pod) {
                return false;
            }
            self.records.remove(at);
        }
        self.records.push_back(pod);
        while self.records.len() > MAX_RECORDS {
            self.records.pop_front();
        }
        true
    }

    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    /// The records `wanted` chooses, oldest first.
    pub(crate) fn matching(&self, wanted: impl Fn(&Pod) -> bool) -> Vec<Pod> {
        self.records.iter().filter(|p| wanted(p)).cloned().collect()
    }

    /// The book as stored: the newest records whose gzip'd JSON lines fit MAX_STORED_BYTES.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut skip = 0;
        loop {
            let bytes = gzip_lines(self.records.iter().skip(skip));
            if bytes.len() <= MAX_STORED_BYTES || skip >= self.records.len() {
                return bytes;
            }
            // Records are alike: drop as many as the excess asks, at least one.
            let excess = bytes.len() - MAX_STORED_BYTES;
            let per_record = bytes.len() / (self.records.len() - skip).max(1);
            skip += (excess / per_record.max(1)).max(1);
        }
    }

    /// A book from what was stored, keeping what can be read of it; how many lines were not.
    pub(crate) fn decode(stored: &[u8]) -> (Book, usize) {
        let mut book = Book::default();
        let mut bad = 0;
        let lines = BufReader::new(GzDecoder::new(stored).take(MAX_INFLATED_BYTES)).split(b'\n');
        for line in lines {
            let Ok(line) = line else {
                bad += 1;
                break;
            };
            match serde_json::from_slice::<Pod>(&line) {
                Ok(pod) if pod.metadata.uid.is_some() => {
                    book.keep(pod);
                }
                _ => bad += 1,
            }
        }
        (book, bad)
    }
}

/// Whether two records of one pod say the same of how it ended (the recorded-at annotation
/// aside).
fn same_end(a: &Pod, b: &Pod) -> bool {
    a.status == b.status && a.spec == b.spec
}

fn gzip_lines<'a>(records: impl Iterator<Item = &'a Pod>) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    for pod in records {
        // Writing to memory does not fail; a Pod always serializes.
        let _ = serde_json::to_writer(&mut gz, pod);
        let _ = gz.write_all(b"\n");
    }
    gz.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(uid: usize, message: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": format!("pvb-{uid}"), "uid": format!("u{uid}"),
                         "labels": {"velero.io/pod-volume-backup": format!("pvb-{uid}")}},
            "status": {"phase": "Failed", "message": message},
        }))
        .unwrap()
    }

    #[test]
    fn a_pod_seen_again_replaces_its_record_and_the_oldest_go_beyond_the_bound() {
        let mut book = Book::default();
        assert!(book.keep(record(1, "a")));
        assert!(
            !book.keep(record(1, "a")),
            "the same end again changes nothing"
        );
        assert!(book.keep(record(1, "b")));
        assert_eq!(book.len(), 1);
        for uid in 2..=MAX_RECORDS + 5 {
            book.keep(record(uid, "x"));
        }
        assert_eq!(book.len(), MAX_RECORDS);
        let names = book.matching(|p| p.metadata.uid.as_deref() == Some("u1"));
        assert!(names.is_empty(), "the oldest is forgotten");
    }

    #[test]
    fn the_stored_book_reads_back_and_fits_its_bound_when_records_do_not_compress() {
        let mut book = Book::default();
        // Messages that do not compress (a record holds up to 16 of them, 1 KiB each: 8
        // containers, now and before a restart): each record ~2.5 KiB gzip'd.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        for uid in 0..MAX_RECORDS {
            let noise: String = (0..4096)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    char::from(b'!' + (state % 90) as u8)
                })
                .collect();
            book.keep(record(uid, &noise));
        }
        let stored = book.encode();
        assert!(stored.len() <= MAX_STORED_BYTES, "{} bytes", stored.len());
        let (back, bad) = Book::decode(&stored);
        assert_eq!(bad, 0);
        assert!(
            back.len() > 100 && back.len() < MAX_RECORDS,
            "{}",
            back.len()
        );
        let newest = format!("u{}", MAX_RECORDS - 1);
        assert_eq!(
            back.matching(|p| p.metadata.uid.as_deref() == Some(&newest))
                .len(),
            1,
            "the newest are kept"
        );
    }

    #[test]
    fn a_hostile_stored_book_keeps_what_can_be_read() {
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(b"not json\n\xff\xfe\n{\"metadata\":{}}\n")
            .unwrap();
        serde_json::to_writer(&mut gz, &record(7, "kept")).unwrap();
        let stored = gz.finish().unwrap();
        let (book, bad) = Book::decode(&stored);
        assert_eq!((book.len(), bad), (1, 3));
        assert_eq!(Book::decode(b"not gzip at all").0.len(), 0);
    }

    #[test]
    fn a_stored_book_that_inflates_without_end_is_read_within_its_bound() {
        let mut gz = GzEncoder::new(Vec::new(), Compression::best());
        let zeros = vec![b'0'; 1024 * 1024];
        for _ in 0..64 {
            gz.write_all(&zeros).unwrap();
        }
        let (book, bad) = Book::decode(&gz.finish().unwrap());
        assert_eq!((book.len(), bad), (0, 1));
    }
}

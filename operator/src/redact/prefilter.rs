//! The literal prefilter in front of the precheck. The precheck is one regex over the
//! union of the rules' triggers; a DFA reads one byte per dependent memory load, about
//! 2 ns a byte however it is built, and nearly every log line goes through it for nothing.
//! Every trigger needs one of a few literals (its rule's `needles`), so a SIMD search for
//! those literals in a lowercased copy of the line turns most lines away first, at a
//! fraction of that cost; only a line holding one goes on to the precheck.
//!
//! The claim "every text the trigger matches holds one of its needles" is proven for each
//! rule by `prefilter_tests`, which walks the trigger's automaton and the needles' together.

use aho_corasick::{AhoCorasick, MatchKind};

/// Bytes of a line lowercased at a time (on the stack, no allocation).
const WINDOW: usize = 512;

#[derive(Debug)]
pub(super) struct Prefilter {
    /// Needles of two bytes or more, lowercase.
    words: AhoCorasick,
    /// Needles of one byte (such as `@`), looked for with memchr.
    single_bytes: Vec<u8>,
    /// The longest needle's length: windows overlap by one less, so no needle is split.
    longest: usize,
}

impl Prefilter {
    /// Needles must be lowercase ASCII (letters are matched in either case).
    pub(super) fn new<'n>(needles: impl IntoIterator<Item = &'n str>) -> Prefilter {
        let mut words: Vec<&str> = Vec::new();
        let mut single_bytes = Vec::new();
        for needle in needles {
            // No newline either: a needle found in a block of lines is inside one line.
            assert!(
                !needle.is_empty()
                    && needle.is_ascii()
                    && !needle.bytes().any(|b| b.is_ascii_uppercase() || b == b'\n'),
                "needle {needle:?} must be non-empty lowercase ASCII on one line"
            );
            match needle.as_bytes() {
                [byte] if !single_bytes.contains(byte) => single_bytes.push(*byte),
                [_] => {}
                _ if !words.contains(&needle) => words.push(needle),
                _ => {}
            }
        }
        let longest = words.iter().map(|w| w.len()).max().unwrap_or(1);
        assert!(longest < WINDOW, "a needle is longer than the window");
        Prefilter {
            // Leftmost-first lets the search use its SIMD (Teddy) prefilter.
            words: AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostFirst)
                .build(&words)
                .expect("the needles build an automaton"),
            single_bytes,
            longest,
        }
    }

    /// False only when `text` holds no needle, ASCII case folded; then no trigger matches.
    pub(super) fn may_match(&self, text: &str) -> bool {
        // Unicode case folding maps some other characters onto ASCII letters (`K` KELVIN
        // SIGN is a `k`, `ſ` an `s`): text that is not all ASCII goes on to the precheck.
        if !text.is_ascii() {
            return true;
        }
        let bytes = text.as_bytes();
        if self
            .single_bytes
            .iter()
            .any(|&b| memchr::memchr(b, bytes).is_some())
        {
            return true;
        }
        let mut lower = [0u8; WINDOW];
        let mut start = 0;
        loop {
            let end = (start + WINDOW).min(bytes.len());
            let window = &mut lower[..end - start];
            window.copy_from_slice(&bytes[start..end]);
            window.make_ascii_lowercase();
            if self.words.is_match(&*window) {
                return true;
            }
            if end == bytes.len() {
                return false;
            }
            // The next window starts early enough to hold any needle cut by this one's end.
            start = end - (self.longest - 1);
        }
    }
}

/// Bytes of a block looked at a time by [`Prefilter::first_candidate`]: a block whose every
/// line passes is searched a window per line, not a whole block per line.
const BLOCK_WINDOW: usize = 4096;

impl Prefilter {
    /// Where in `block` (lines) the first byte is that [`may_match`](Self::may_match) would
    /// pass its line for: a byte that is not ASCII, a one-byte needle or the start of a
    /// needle; None when every line of it would be turned away. One search over many lines
    /// instead of one per line: the searches' set-up, not their bytes, was most of their
    /// cost on short log lines. `lower` is the caller's, reused for the lowercased copy.
    pub(super) fn first_candidate(&self, block: &[u8], lower: &mut Vec<u8>) -> Option<usize> {
        let mut start = 0;
        loop {
            let end = (start + BLOCK_WINDOW).min(block.len());
            if let Some(at) = self.first_in_window(&block[start..end], lower) {
                return Some(start + at);
            }
            if end == block.len() {
                return None;
            }
            // The next window starts early enough to hold any needle cut by this one's end.
            start = end - (self.longest - 1);
        }
    }

    fn first_in_window(&self, window: &[u8], lower: &mut Vec<u8>) -> Option<usize> {
        let mut end = match window.is_ascii() {
            true => window.len(),
            false => window.iter().position(|b| !b.is_ascii())?,
        };
        for &byte in &self.single_bytes {
            if let Some(at) = memchr::memchr(byte, &window[..end]) {
                end = at;
            }
        }
        // A needle starting before `end` ends in its own line: before `end`, or in `end`'s
        // line, which goes on to the precheck anyway.
        lower.clear();
        lower.extend_from_slice(&window[..end]);
        lower.make_ascii_lowercase();
        if let Some(found) = self.words.find(&lower[..]) {
            end = found.start();
        }
        (end < window.len()).then_some(end)
    }
}

#[cfg(test)]
#[path = "prefilter_tests.rs"]
mod tests;

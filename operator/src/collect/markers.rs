//! What the operator writes into the logs it keeps, in one place, so every cut reads the same:
//! a marker line `----- velero-debug-operator: WORDS -----` where lines were left out between a
//! log's head and its tail, or where the lines of another source begin, and a mark at the end
//! of a line that was cut. Where the head and tail come from is the cutters' own
//! (`logs/over_bound.rs` for a container log over its bound, `object_store.rs` for a file over
//! the inflated cap; both keep the tail with `tail_keeper.rs`).

use crate::config::size_text;

/// A marker line's words, framed (without its newline).
pub(super) fn line(words: &str) -> String {
    format!("----- velero-debug-operator: {words} -----")
}

/// The marker between a log's head and its tail: what was `left_out` here, and `why`.
pub(super) fn head_and_tail(left_out: &str, why: &str) -> String {
    line(&format!(
        "{left_out} here: {why}, so its first lines are above and its last lines below"
    ))
}

/// Said at the end of a line longer than the line cap, `max_line_bytes`.
pub(super) fn line_truncated(max_line_bytes: u64) -> String {
    format!(
        " … [line truncated by velero-debug-operator: longer than {}]",
        size_text(max_line_bytes)
    )
}

/// Said at the end of a line cut to fit what is left of a log's bound.
pub(super) const LINE_CLIPPED: &str =
    " … [line cut by velero-debug-operator to fit the log's bound]";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_marker_reads_the_same() {
        assert_eq!(
            head_and_tail("3 lines of the log left out", "it is long"),
            "----- velero-debug-operator: 3 lines of the log left out here: it is long, so its \
             first lines are above and its last lines below -----"
        );
        assert_eq!(
            line_truncated(1024 * 1024),
            " … [line truncated by velero-debug-operator: longer than 1 MiB]"
        );
    }
}

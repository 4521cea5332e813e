//! summary.md is read first and often pasted into tickets: every line is capped, and the file
//! stops at [`MAX_SUMMARY_BYTES`] with a marker saying where the rest is.

use velero_debug_crd::printable;

use crate::findings::text::cap;

pub(crate) const MAX_SUMMARY_BYTES: usize = 64 * 1024;
/// Longer lines keep their start and a `…`.
pub(crate) const MAX_LINE_BYTES: usize = 400;
pub(crate) const TRUNCATED: &str =
    "\n… summary.md stops here at 64 KiB; manifest.json and the bundle's files have the rest\n";

/// Markdown written a line at a time, within the caps.
#[derive(Debug, Default)]
pub(crate) struct Markdown {
    text: String,
    full: bool,
}

impl Markdown {
    /// Adds one line (cut at [`MAX_LINE_BYTES`]); once the file is full, nothing more is added
    /// and the marker ends it. Every line passes here, so none carries a control character from
    /// the cluster into summary.md (escaped before the cut, so the escapes count too).
    pub fn line(&mut self, line: &str) {
        if self.full {
            return;
        }
        let line = printable(line);
        // `cap` trims, which would eat the indentation of a list item's continuation lines.
        let body = line.trim_start_matches(' ');
        let indent = &line[..line.len() - body.len()];
        let line = format!(
            "{indent}{}",
            cap(body, MAX_LINE_BYTES - indent.len().min(8))
        );
        if self.text.len() + line.len() + 1 + TRUNCATED.len() > MAX_SUMMARY_BYTES {
            self.full = true;
            self.text.push_str(TRUNCATED);
            return;
        }
        self.text.push_str(&line);
        self.text.push('\n');
    }

    pub fn blank(&mut self) {
        if !self.full {
            self.text.push('\n');
        }
    }

    /// A section: a blank line before it unless it is the first.
    pub fn heading(&mut self, title: &str) {
        if !self.text.is_empty() {
            self.blank();
        }
        self.line(title);
        self.blank();
    }

    pub fn finish(self) -> String {
        self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_capped_and_the_file_is_bounded_with_a_marker() {
        let mut md = Markdown::default();
        md.line(&format!("   > {}", "x".repeat(10_000)));
        for _ in 0..1_000 {
            md.line(&"y".repeat(300));
        }
        let text = md.finish();
        assert!(text.starts_with("   > xxx"));
        assert!(text.lines().all(|l| l.len() <= MAX_LINE_BYTES));
        assert!(text.len() <= MAX_SUMMARY_BYTES, "{}", text.len());
        assert!(text.ends_with(TRUNCATED));
    }

    #[test]
    fn controls_from_the_cluster_are_escaped() {
        let mut md = Markdown::default();
        md.line("- Warning: \u{1b}]0;pwned\u{7}\u{1b}[2J\u{202e}fdp.exe\r done");
        let text = md.finish();
        assert_eq!(
            text,
            "- Warning: \\u{1b}]0;pwned\\u{7}\\u{1b}[2J\\u{202e}fdp.exe\\u{d} done\n"
        );
    }
}

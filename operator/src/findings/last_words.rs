//! A component's last words: what a container said last before it ended, read from the end of
//! its log. A Go program that cannot start usually prints one line and exits: cobra's
//! `<binary>: <error>` or `An error occurred: <error>`, logrus's `level=fatal`, or a panic's
//! first line. That line names the fix far better than the container's exit reason, so the
//! rules about a component that restarted or crash-loops quote it. Known lines get a cause and
//! a next step of their own ([`known`]). Pure.

use super::text::{LogLevel, cap, is_go_crash, level_of, log_message};

/// A quote of last words is cut to this many bytes.
const MAX_BYTES: usize = 400;

/// What a log ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LastWords {
    /// 1-based line in the log file.
    pub line: u64,
    /// The line's message (its `msg` and `error`), cut.
    pub text: String,
    pub kind: LastWordsKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LastWordsKind {
    /// The line a program printed as it exited (cobra's error line), ending the log.
    Exit,
    /// logrus `fatal`/`panic`, or a Go runtime crash.
    Fatal,
    /// The last error-level line.
    Error,
}

/// Lines kept of a log's end: a cobra error is followed by its usage text (some twenty lines
/// at most for Velero's commands), so the exit line is looked for among these.
const RECENT_LINES: usize = 32;

/// The end of a log as a scan sees it: its last non-empty lines and its last error or worse.
/// Buffers are reused, so keeping it costs no allocation per line once full.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct LogTail {
    /// The last lines, oldest first, with their line numbers.
    recent: std::collections::VecDeque<(u64, String)>,
    last_error: String,
    last_error_no: u64,
    last_error_fatal: bool,
}

impl LogTail {
    /// Line `no` of the log (without its newline).
    pub fn line(&mut self, no: u64, line: &str) {
        let line = line.trim();
        if line.is_empty() {
            return;
        }
        let mut slot = if self.recent.len() == RECENT_LINES {
            self.recent.pop_front().map(|(_, s)| s).unwrap_or_default()
        } else {
            String::new()
        };
        keep(&mut slot, line);
        self.recent.push_back((no, slot));
    }

    /// The last lines of `block` (whole lines, the last numbered `last_no`), oldest first:
    /// only as many as are kept, so a long block costs a look at its end only.
    pub fn block_end(&mut self, block: &str, last_no: u64) {
        let lines: Vec<&str> = block
            .strip_suffix('\n')
            .unwrap_or(block)
            .rsplit('\n')
            .take(RECENT_LINES)
            .collect();
        let first_no = (last_no + 1).saturating_sub(lines.len() as u64);
        for (i, line) in lines.iter().rev().enumerate() {
            self.line(first_no + i as u64, line.trim_end_matches('\r'));
        }
    }

    /// Line `no`, already known to be an error or worse.
    pub fn error(&mut self, no: u64, line: &str, level: LogLevel) {
        if level == LogLevel::Warning {
            return;
        }
        keep(&mut self.last_error, line.trim());
        self.last_error_no = no;
        self.last_error_fatal = level == LogLevel::Fatal;
    }

    /// The log's last words: the last exit line among its last lines (the program's own final
    /// word), else its last error or worse; None when it ended with neither.
    pub fn last_words(&self) -> Option<LastWords> {
        let exit = self
            .recent
            .iter()
            .rev()
            .find(|(no, line)| *no > self.last_error_no && is_exit_line(line));
        if let Some((no, line)) = exit {
            return Some(LastWords {
                line: *no,
                text: cap(line, MAX_BYTES),
                kind: LastWordsKind::Exit,
            });
        }
        if self.last_error.is_empty() {
            return None;
        }
        let text = if is_go_crash(&self.last_error) {
            self.last_error.clone()
        } else {
            log_message(&self.last_error)
        };
        Some(LastWords {
            line: self.last_error_no,
            text: cap(&text, MAX_BYTES),
            kind: if self.last_error_fatal {
                LastWordsKind::Fatal
            } else {
                LastWordsKind::Error
            },
        })
    }
}

/// Copies at most 4 KiB of `line` into `buffer`, reusing its allocation.
fn keep(buffer: &mut String, line: &str) {
    buffer.clear();
    let mut end = line.len().min(4096);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    buffer.push_str(&line[..end]);
}

/// A line a Go command prints as it exits on an error: cobra's `<binary>: <error>` (Velero's
/// `velero: ...`, a helper's `velero-helper: ...`) or Velero's `An error occurred: <error>`;
/// never a log line with a level, a klog line or JSON.
pub(crate) fn is_exit_line(line: &str) -> bool {
    if line.starts_with("An error occurred: ") || line.starts_with("Error: ") {
        return true;
    }
    let Some((binary, said)) = line.split_once(": ") else {
        return false;
    };
    let binary_like = (1..=40).contains(&binary.len())
        && binary.starts_with(|c: char| c.is_ascii_lowercase())
        && binary
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
    binary_like && !said.trim().is_empty() && level_of(line).is_none() && !is_go_crash(line)
}

/// A last word whose cause and fix are known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Known {
    /// The node-agent's `host-pods` volume is not the kubelet's pods folder.
    HostPodsFolder,
    /// The container's arguments name a flag this Velero binary does not have (an upgrade or
    /// a downgrade that kept the other version's flags).
    UnknownFlag,
}

/// What `words` are, when known: recognised by Velero's and cobra's own wording.
pub(crate) fn known(words: &str) -> Option<Known> {
    if words.contains("unexpected directory structure for host-pods volume") {
        Some(Known::HostPodsFolder)
    } else if words.contains("unknown flag: --") || words.contains("unknown shorthand flag") {
        Some(Known::UnknownFlag)
    } else {
        None
    }
}

/// The flag an unknown-flag line names (`--kubelet-root-dir`).
pub(crate) fn unknown_flag(words: &str) -> Option<&str> {
    let at = words.find("unknown flag: --")? + "unknown flag: ".len();
    words[at..].split_whitespace().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tail_of(log: &str) -> Option<LastWords> {
        let mut tail = LogTail::default();
        for (i, line) in log.lines().enumerate() {
            let no = i as u64 + 1;
            tail.line(no, line);
            if let Some(level) = level_of(line) {
                tail.error(no, line, level);
            }
        }
        tail.last_words()
    }

    #[test]
    fn a_cobra_exit_line_ending_the_log_is_the_last_word() {
        // Velero 1.18's node-agent on a kubelet whose root is not /var/lib/kubelet.
        let log = "time=\"2026-11-29T07:00:00Z\" level=info msg=\"Starting Velero node-agent server v1.18.3\"\n\
                   time=\"2026-11-29T07:00:00Z\" level=error msg=\"could not list pods\" error=\"x\"\n\
                   velero: unexpected directory structure for host-pods volume, ensure that the host-pods volume corresponds to the pods subdirectory of the kubelet root directory\n";
        let words = tail_of(log).unwrap();
        assert_eq!(words.kind, LastWordsKind::Exit);
        assert_eq!(words.line, 3);
        assert!(
            words
                .text
                .starts_with("velero: unexpected directory structure")
        );
        assert_eq!(known(&words.text), Some(Known::HostPodsFolder));
        // Velero's own CheckError wording, from another binary's command: same cause.
        let other =
            "An error occurred: unexpected directory structure for host-pods volume, ensure ...\n";
        let words = tail_of(other).unwrap();
        assert_eq!(
            (words.kind, known(&words.text)),
            (LastWordsKind::Exit, Some(Known::HostPodsFolder))
        );
    }

    #[test]
    fn an_unknown_flag_names_the_flag_whatever_the_binary() {
        for log in [
            "Error: unknown flag: --kubelet-root-dir\nUsage:\n  velero node-agent server [flags]\n\nFlags:\n  -h, --help   help for server\n\nvelero: unknown flag: --kubelet-root-dir\n",
            "velero-helper: unknown flag: --kubelet-root-dir\n",
            "An error occurred: unknown flag: --kubelet-root-dir\nUsage:\n  velero node-agent server [flags]\n\nFlags:\n  -h, --help   help for server\n",
        ] {
            let words = tail_of(log).unwrap();
            assert_eq!(words.kind, LastWordsKind::Exit, "{log}");
            assert_eq!(known(&words.text), Some(Known::UnknownFlag));
            assert_eq!(unknown_flag(&words.text), Some("--kubelet-root-dir"));
        }
    }

    #[test]
    fn a_fatal_or_a_panic_is_the_last_word_when_no_exit_line_ends_the_log() {
        let logrus = "level=info msg=start\nlevel=fatal msg=\"failed to start\" error=\"permission denied\"\n";
        let words = tail_of(logrus).unwrap();
        assert_eq!(
            (words.kind, words.text.as_str(), words.line),
            (
                LastWordsKind::Fatal,
                "failed to start: permission denied",
                2
            )
        );
        let json = "{\"level\":\"info\",\"msg\":\"x\"}\n{\"level\":\"fatal\",\"msg\":\"cannot open repository\",\"error\":\"wrong password\"}\n";
        assert_eq!(
            tail_of(json).unwrap().text,
            "cannot open repository: wrong password"
        );
        let panic = "level=info msg=start\npanic: runtime error: invalid memory address\n\ngoroutine 1 [running]:\nmain.main()\n\t/go/src/main.go:10 +0x1d\n";
        let words = tail_of(panic).unwrap();
        assert_eq!(
            (words.kind, words.text.as_str()),
            (
                LastWordsKind::Fatal,
                "panic: runtime error: invalid memory address"
            )
        );
        assert_eq!(known(&words.text), None);
    }

    #[test]
    fn a_block_end_is_numbered_as_its_lines_are() {
        let mut by_line = LogTail::default();
        let mut by_block = LogTail::default();
        let log: String = (1..=100)
            .map(|i| format!("level=info msg=\"line {i}\"\n"))
            .chain(["velero: it ended\n".to_string(), "\n".to_string()])
            .collect();
        for (i, line) in log.lines().enumerate() {
            by_line.line(i as u64 + 1, line);
        }
        by_block.block_end(&log, 102);
        assert_eq!(by_line.last_words(), by_block.last_words());
        assert_eq!(by_block.last_words().unwrap().line, 101);
    }

    #[test]
    fn log_lines_and_traces_are_no_exit_lines_and_a_quiet_log_has_no_last_words() {
        for line in [
            "time=\"t\" level=error msg=\"x: y\"",
            "{\"level\":\"error\",\"msg\":\"a: b\"}",
            "I1129 07:00:00.000000       1 server.go:10] starting: now",
            "goroutine 1 [running]:",
            "\t/go/src/main.go:10 +0x1d",
            "main.main()",
            "Velero: capitalised is a sentence",
            "velero:",
        ] {
            assert!(!is_exit_line(line), "{line}");
        }
        assert_eq!(tail_of("level=info msg=a\nlevel=warning msg=b\n"), None);
    }
}

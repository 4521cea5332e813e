//! One log file streamed through the patterns a line at a time, as it is copied into the
//! bundle: only warning-and-above lines are looked at (a substring search decides, so info
//! lines cost one scan), and only a few of them are kept, so a 1 GiB log costs a few KiB.

use super::{
    patterns::{self, Pattern},
    text::{LogLevel, cap, level_of, log_message, quote},
};

/// Groups of warning/error lines no pattern matched, kept per file.
const MAX_GROUPS: usize = 20;
/// A group's message is cut to this many bytes.
const MAX_GROUP_BYTES: usize = 300;

/// Which log a scan reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogSource {
    /// The file in the bundle.
    pub path: String,
    pub role: LogRole,
    pub pod: Option<String>,
    pub node: Option<String>,
    /// The previous instance of a container (the one that crashed).
    pub previous: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogRole {
    /// The Backup's or Restore's own log, from the object store.
    Operation,
    Server,
    NodeAgent,
    DataPath,
}

/// The lines that matched one pattern in one file: the first (where the trouble started), and
/// how many there were.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LogHit {
    pub pattern: Pattern,
    /// 1-based.
    pub line: u64,
    pub quote: String,
    pub count: u64,
}

/// Warning/error lines with one message: the first, and how many.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LogLineGroup {
    pub level: LogLevel,
    pub message: String,
    pub first_line: u64,
    pub count: u64,
}

#[derive(Debug)]
pub(crate) struct LogScan {
    source: LogSource,
    line: u64,
    hits: Vec<LogHit>,
    groups: Vec<LogLineGroup>,
    /// Lines of groups beyond [`MAX_GROUPS`].
    dropped: u64,
}

impl LogScan {
    pub fn new(source: LogSource) -> Self {
        Self {
            source,
            line: 0,
            hits: Vec::new(),
            groups: Vec::new(),
            dropped: 0,
        }
    }

    /// The next line of the file (its trailing newline, if any, is ignored).
    pub fn offer(&mut self, line: &str) {
        self.line += 1;
        let line = line.trim_end_matches(['\n', '\r']);
        let Some(level) = level_of(line) else {
            return;
        };
        let found = patterns::classify(line);
        if found.is_empty() {
            self.group(level, line);
            return;
        }
        for pattern in found {
            match self.hits.iter_mut().find(|h| h.pattern == pattern) {
                Some(hit) => hit.count += 1,
                None => self.hits.push(LogHit {
                    pattern,
                    line: self.line,
                    quote: quote(&log_message(line)),
                    count: 1,
                }),
            }
        }
    }

    /// [`offer`](Self::offer) for the bytes of a line as copied (lossy for invalid UTF-8, as
    /// the copy itself is).
    pub fn offer_bytes(&mut self, line: &[u8]) {
        match std::str::from_utf8(line) {
            Ok(text) => self.offer(text),
            Err(_) => self.offer(&String::from_utf8_lossy(line)),
        }
    }

    fn group(&mut self, level: LogLevel, line: &str) {
        let message = cap(&log_message(line), MAX_GROUP_BYTES);
        if let Some(g) = self
            .groups
            .iter_mut()
            .find(|g| g.level == level && g.message == message)
        {
            g.count += 1;
        } else if self.groups.len() < MAX_GROUPS {
            self.groups.push(LogLineGroup {
                level,
                message,
                first_line: self.line,
                count: 1,
            });
        } else {
            self.dropped += 1;
        }
    }

    /// Lines offered so far.
    pub fn lines(&self) -> u64 {
        self.line
    }

    pub fn into_parts(self) -> (LogSource, Vec<LogHit>, Vec<LogLineGroup>, u64) {
        (self.source, self.hits, self.groups, self.dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> LogSource {
        LogSource {
            path: "object-store/restore.log".into(),
            role: LogRole::Operation,
            pod: None,
            node: None,
            previous: false,
        }
    }

    #[test]
    fn hits_name_their_first_line_and_count_the_rest() {
        let mut scan = LogScan::new(source());
        scan.offer("time=\"t\" level=info msg=\"starting\"\n");
        scan.offer("time=\"t\" level=error msg=\"error restoring pods/shop/a\" error=\"exceeded quota: q\"\n");
        scan.offer(r#"{"level":"error","msg":"error restoring pods/shop/b","error.message":"exceeded quota: q"}"#);
        scan.offer(r#"{"level":"warning","msg":"slow","time":"t"}"#);
        scan.offer(r#"{"level":"warning","msg":"slow","time":"t2"}"#);
        let (_, hits, groups, dropped) = scan.into_parts();
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].pattern, Pattern::QuotaExceeded);
        assert_eq!(hits[0].line, 2);
        assert_eq!(hits[0].count, 2);
        assert_eq!(
            hits[0].quote,
            "error restoring pods/shop/a: exceeded quota: q"
        );
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].message, "slow");
        assert_eq!((groups[0].first_line, groups[0].count), (4, 2));
        assert_eq!(dropped, 0);
    }

    #[test]
    fn a_long_log_keeps_a_bounded_amount() {
        let mut scan = LogScan::new(source());
        for i in 0..100_000 {
            scan.offer(&format!(
                "time=\"t\" level=error msg=\"distinct failure {i}\""
            ));
        }
        assert_eq!(scan.lines(), 100_000);
        let (_, _, groups, dropped) = scan.into_parts();
        assert_eq!(groups.len(), MAX_GROUPS);
        assert_eq!(dropped, 100_000 - MAX_GROUPS as u64);
    }
}

//! One log file streamed through the patterns a line at a time, as it is copied into the
//! bundle: only warning-and-above lines are looked at (a substring search decides, so info
//! lines cost one scan), and only a few of them are kept, so a 1 GiB log costs a few KiB.

use super::{
    last_words::{LastWords, LogTail},
    patterns::{self, Pattern},
    text::{LogLevel, cap_borrowed, level_of, log_message, log_message_borrowed},
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

/// The Velero server's log serves every backup and restore at once: a line that names other
/// operations only (`restore=velero/other`, `"backup":"velero/other"`) is no evidence about
/// this bundle's target, or a quota refusal of another restore would be diagnosed here; nor is
/// a line about another storage location (its validation, its sync). Lines that name no
/// operation (start-up, plugins) stay when they were written while the operation ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OperationScope {
    /// `backup` or `restore`: the field Velero's logger adds.
    pub field: &'static str,
    /// `<namespace>/<name>`, as Velero writes it.
    pub name: String,
    /// `<namespace>/<name>` of the target's BackupStorageLocation.
    pub location: Option<String>,
    /// When the operation ran, with a margin: a line naming no operation from outside it
    /// (another hour's BSL errors, the server's start-up days ago) is noise in this bundle.
    /// Pattern hits are kept whenever they were written: a plugin that failed at start-up can
    /// be the cause.
    pub window: Option<(jiff::Timestamp, jiff::Timestamp)>,
}

/// Velero's fields naming a storage location, by controller.
const LOCATION_FIELDS: [&str; 2] = ["backup-storage-location", "backupLocation"];

impl OperationScope {
    /// Whether the line is about another operation or another storage location, and not about
    /// this operation.
    fn excludes(&self, line: &str) -> bool {
        let mut other = false;
        for key in ["backup", "restore"] {
            for value in field_values(line, key) {
                if key == self.field && self.is_this(value) {
                    return false;
                }
                other = true;
            }
        }
        if let Some(location) = &self.location {
            other |= LOCATION_FIELDS
                .iter()
                .flat_map(|key| field_values(line, key))
                .any(|value| value != location);
        }
        // A controller's error about an object it no longer finds names it only in
        // Kubernetes' words: `Restore.velero.io "other" not found`.
        other || self.quotes_another(line)
    }

    /// Whether the line quotes another object of this operation's kind by name, as
    /// Kubernetes' errors do (`Restore.velero.io "name"`, quotes escaped in a logfmt value).
    /// Only the same kind: a restore's line may quote the Backup it restores from.
    fn quotes_another(&self, line: &str) -> bool {
        let kind = if self.field == "restore" {
            "Restore.velero.io "
        } else {
            "Backup.velero.io "
        };
        line.match_indices(kind).any(|(at, _)| {
            let rest = &line[at + kind.len()..];
            let rest = rest.strip_prefix("\\\"").or_else(|| rest.strip_prefix('"'));
            let name = rest.and_then(|r| r.split(['"', '\\']).next());
            name.is_some_and(|name| !name.is_empty() && !self.is_this(name))
        })
    }

    /// Whether the line names no operation and was written outside the operation's window (a
    /// line without a readable time is kept).
    fn outside_window(&self, line: &str) -> bool {
        let Some((from, to)) = self.window else {
            return false;
        };
        if field_values(line, self.field)
            .into_iter()
            .any(|v| self.is_this(v))
        {
            return false;
        }
        let Some(at) = field_values(line, "time")
            .first()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        else {
            return false;
        };
        at < from || at > to
    }

    /// Whether the line is about this operation: it names it, and, for a backup, names no
    /// restore (a restore's lines may name the backup it restores from; they are the
    /// restore's).
    pub fn names_this(&self, line: &str) -> bool {
        let line = line.trim_end_matches(['\n', '\r']);
        let named = field_values(line, self.field)
            .into_iter()
            .any(|v| self.is_this(v));
        named && (self.field == "restore" || field_values(line, "restore").is_empty())
    }

    /// `<namespace>/<name>`, or the bare name: some of Velero's loggers (the restore hooks'
    /// waits) write `restore=<name>`, and Velero's operations all live in its namespace.
    fn is_this(&self, value: &str) -> bool {
        value == self.name
            || self
                .name
                .split_once('/')
                .is_some_and(|(_, bare)| value == bare)
    }
}

/// Values of `key` in a logrus text line (`key=value`, `key="value"`) or a JSON line
/// (`"key":"value"`); `podvolumebackup=` is not `backup=`.
fn field_values<'a>(line: &'a str, key: &str) -> Vec<&'a str> {
    let mut values = Vec::new();
    for (at, _) in line.match_indices(key) {
        let before = line[..at].chars().next_back();
        let rest = &line[at + key.len()..];
        let value = match (before, rest.as_bytes().first()) {
            (None | Some(' ' | '\t'), Some(b'=')) => {
                let v = &rest[1..];
                match v.strip_prefix('"') {
                    Some(quoted) => quoted.split('"').next(),
                    None => v.split([' ', '\t']).next(),
                }
            }
            (Some('"'), Some(b'"')) => rest[1..]
                .trim_start_matches([':', ' '])
                .strip_prefix('"')
                .and_then(|v| v.split('"').next()),
            _ => None,
        };
        values.extend(value);
    }
    values
}

/// Cloned once per log at most: the state where an over-long log's head is cut (see
/// `collect::logs::over_bound`).
#[derive(Debug, Clone)]
pub(crate) struct LogScan {
    source: LogSource,
    scope: Option<OperationScope>,
    line: u64,
    hits: Vec<LogHit>,
    groups: Vec<LogLineGroup>,
    /// Lines of groups beyond [`MAX_GROUPS`].
    dropped: u64,
    /// The log's end, for its component's last words.
    tail: LogTail,
    /// When the operation ran (with its margin): a pattern line written outside it, on a log
    /// that serves many operations (a node-agent's), is no cause of this one ([`Self::within`]).
    window: Option<(jiff::Timestamp, jiff::Timestamp)>,
    /// Pattern lines written outside `window`: earlier context, first of each pattern.
    earlier: Vec<LogHit>,
}

/// A searcher for the words every line [`level_of`] finds a warning or worse in holds: its
/// `level` field's value (`warn` begins `warning`) or a Go crash's first words (`panic: `,
/// `fatal error: `). Lines holding one otherwise (`msg="no error"`) are only looked at in
/// full. The proof that none is missed is `a_block_is_scanned_as_its_lines_are`.
struct WarningOrWorse {
    /// Teddy, searched directly: behind `AhoCorasick` these words got a rare-byte prefilter
    /// that stopped at nearly every byte of a log (twice the whole copy's time, measured).
    teddy: Option<aho_corasick::packed::Searcher>,
    /// Where Teddy is not available (no SSSE3).
    automaton: aho_corasick::AhoCorasick,
}

const WARNING_OR_WORSE_WORDS: [&str; 4] = ["warn", "error", "fatal", "panic"];

impl WarningOrWorse {
    fn new() -> Self {
        let mut teddy = aho_corasick::packed::Config::new().builder();
        teddy.extend(WARNING_OR_WORSE_WORDS);
        Self {
            teddy: teddy.build(),
            automaton: aho_corasick::AhoCorasick::new(WARNING_OR_WORSE_WORDS)
                .expect("the level words build an automaton"),
        }
    }

    /// Where the first word starts in `text`.
    fn find(&self, text: &[u8]) -> Option<usize> {
        match &self.teddy {
            Some(teddy) => teddy.find(text).map(|m| m.start()),
            None => self.automaton.find(text).map(|m| m.start()),
        }
    }
}

static WARNING_OR_WORSE: std::sync::LazyLock<WarningOrWorse> =
    std::sync::LazyLock::new(WarningOrWorse::new);

fn newlines(text: &str) -> u64 {
    memchr::memchr_iter(b'\n', text.as_bytes()).count() as u64
}

impl LogScan {
    pub fn new(source: LogSource) -> Self {
        Self {
            source,
            scope: None,
            line: 0,
            hits: Vec::new(),
            groups: Vec::new(),
            dropped: 0,
            tail: LogTail::default(),
            window: None,
            earlier: Vec::new(),
        }
    }

    /// Pattern lines whose time lies outside `window` become earlier context, never hits: a
    /// node-agent's error about an earlier operation (a repository password changed since, a
    /// pod gone) is no cause of this bundle's. A line without a readable time is judged as
    /// before.
    pub fn within(mut self, window: Option<(jiff::Timestamp, jiff::Timestamp)>) -> Self {
        self.window = window;
        self
    }

    /// Whether `line` says it was written outside the window.
    fn outside_window(&self, line: &str) -> bool {
        let Some((from, to)) = self.window else {
            return false;
        };
        let at = field_values(line, "time")
            .first()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok());
        at.is_some_and(|at| at < from || at > to)
    }

    /// Only lines about this operation (or about none) count: for the shared server log.
    pub fn scoped_to(mut self, scope: OperationScope) -> Self {
        self.scope = Some(scope);
        self
    }

    /// The next line of the file (its trailing newline, if any, is ignored).
    pub fn offer(&mut self, line: &str) {
        self.offer_line(line);
        self.tail
            .line(self.line, line.trim_end_matches(['\n', '\r']));
    }

    /// [`offer`](Self::offer) but for the log's end, which the caller keeps.
    fn offer_line(&mut self, line: &str) {
        self.line += 1;
        let line = line.trim_end_matches(['\n', '\r']);
        let Some(level) = level_of(line) else {
            return;
        };
        if self.scope.as_ref().is_some_and(|s| s.excludes(line)) {
            return;
        }
        self.tail.error(self.line, line, level);
        let found = patterns::classify(line);
        if found.is_empty() {
            if !self.scope.as_ref().is_some_and(|s| s.outside_window(line)) {
                self.group(level, line);
            }
            return;
        }
        if self.outside_window(line) {
            for pattern in found {
                if !self.earlier.iter().any(|h| h.pattern == pattern) {
                    self.earlier.push(LogHit {
                        pattern,
                        line: self.line,
                        quote: patterns::quote_of(&log_message(line), pattern),
                        count: 1,
                    });
                }
            }
            return;
        }
        for pattern in found {
            match self.hits.iter_mut().find(|h| h.pattern == pattern) {
                Some(hit) => hit.count += 1,
                None => self.hits.push(LogHit {
                    pattern,
                    line: self.line,
                    quote: patterns::quote_of(&log_message(line), pattern),
                    count: 1,
                }),
            }
        }
    }

    /// The next lines of the file at once: `block` is whole lines, each ending in `\n`. As
    /// [`offer`](Self::offer) of each, but one search finds the lines that may be warnings
    /// or worse (the rest are only counted), not one per line. Returns how many lines it had.
    pub fn offer_lines(&mut self, block: &str) -> u64 {
        let before = self.line;
        let mut counted = 0;
        let mut from = 0;
        while let Some(found) = WARNING_OR_WORSE.find(&block.as_bytes()[from..]) {
            let at = from + found;
            let start = block[..at].rfind('\n').map_or(0, |end| end + 1);
            let end = block[at..]
                .find('\n')
                .map_or(block.len(), |end| at + end + 1);
            self.line += newlines(&block[counted..start]);
            self.offer_line(&block[start..end]);
            (counted, from) = (end, end);
        }
        self.line += newlines(&block[counted..]);
        self.tail.block_end(block, self.line);
        self.line - before
    }

    /// The next line of the file is not this scan's to read (it went to another scan): only
    /// counted, so the line numbers stay those of the file.
    pub fn skip_line(&mut self) {
        self.line += 1;
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
        let full = log_message_borrowed(line);
        let message = cap_borrowed(&full, MAX_GROUP_BYTES);
        if let Some(g) = self
            .groups
            .iter_mut()
            .find(|g| g.level == level && g.message == *message)
        {
            g.count += 1;
        } else if self.groups.len() < MAX_GROUPS {
            self.groups.push(LogLineGroup {
                level,
                message: message.into_owned(),
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

    /// Pattern lines written outside the operation's window ([`Self::within`]).
    pub fn earlier(&self) -> &[LogHit] {
        &self.earlier
    }

    /// The log this scan reads.
    pub fn source(&self) -> &LogSource {
        &self.source
    }

    /// What the component said last in this log (last_words.rs).
    pub fn last_words(&self) -> Option<LastWords> {
        self.tail.last_words()
    }

    pub fn into_parts(self) -> (LogSource, Vec<LogHit>, Vec<LogLineGroup>, u64) {
        (self.source, self.hits, self.groups, self.dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A node-agent serves every operation on its node: its error about an earlier one is
    /// earlier context, not a hit; one inside the window, or without a time, is a hit.
    #[test]
    fn a_pattern_line_outside_the_window_is_earlier_context() {
        let window = Some((
            "2026-11-29T07:00:00Z".parse().unwrap(),
            "2026-11-29T08:00:00Z".parse().unwrap(),
        ));
        let password = |time: &str| {
            format!(
                "time=\"{time}\" level=error msg=\"Error to initialize data path\" error=\"error to connect to backup repo: error to connect repo with storage: error to connect to repository: repository not initialized in the provided storage\""
            )
        };
        let mut scan = LogScan::new(source()).within(window);
        scan.offer(&password("2026-11-28T07:00:00Z"));
        assert!(
            scan.clone().into_parts().1.is_empty(),
            "a day-old line is a hit"
        );
        assert_eq!(scan.earlier().len(), 1);
        assert_eq!(scan.earlier()[0].line, 1);
        scan.offer(&password("2026-11-29T07:30:00Z"));
        let (_, hits, _, _) = scan.clone().into_parts();
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].line, 2);
        // JSON time, outside; and a line with no time at all, kept as a hit.
        let mut scan = LogScan::new(source()).within(window);
        scan.offer(r#"{"level":"error","time":"2026-11-28T07:00:00Z","msg":"data path failed","error":"repository not initialized in the provided storage"}"#);
        assert!(scan.clone().into_parts().1.is_empty());
        scan.offer("level=error msg=\"repository not initialized in the provided storage\"");
        assert_eq!(scan.into_parts().1.len(), 1);
    }

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
    fn the_server_log_counts_only_lines_of_this_operation_or_of_none() {
        let scope = OperationScope {
            field: "restore",
            name: "velero/restore-1".into(),
            location: None,
            window: None,
        };
        let mut scan = LogScan::new(source()).scoped_to(scope);
        // Another restore's refusal, in both formats: not this bundle's evidence.
        scan.offer("level=error msg=\"error restoring configmaps/a/b\" error=\"exceeded quota: q\" restore=velero/restore-2");
        scan.offer(r#"{"level":"error","msg":"exceeded quota: q","restore":"velero/restore-2"}"#);
        // A backup's line while the target is a restore.
        scan.offer("level=error msg=\"exceeded quota: q\" backup=velero/nightly-1");
        // This restore's (it may also name its backup), and a line naming none.
        scan.offer("level=error msg=\"exceeded quota: q\" backup=velero/nightly-1 restore=velero/restore-1");
        scan.offer(r#"{"level":"error","msg":"exceeded quota: q","restore": "velero/restore-1"}"#);
        scan.offer("level=error msg=\"plugin process exited\" cmd=/plugins/velero-plugin-for-aws error=\"signal: killed\"");
        // podvolumerestore= is not restore=.
        scan.offer("level=error msg=\"exceeded quota: q\" podvolumerestore=velero/restore-2");
        // Another restore, named only in Kubernetes' NotFound error (logfmt escapes quotes).
        scan.offer(
            "level=error msg=\"error getting restore\" error=\"restore not found: Restore.velero.io \\\"restore-9\\\" not found\" controller=restore",
        );
        let (_, hits, _, _) = scan.into_parts();
        let quota = hits
            .iter()
            .find(|h| h.pattern == Pattern::QuotaExceeded)
            .unwrap();
        assert_eq!((quota.line, quota.count), (4, 3));
        assert!(
            hits.iter()
                .any(|h| h.pattern == Pattern::PluginExited && h.line == 6)
        );
    }

    #[test]
    fn a_line_quoting_another_operation_in_kubernetes_words_is_about_it() {
        let scope = OperationScope {
            field: "restore",
            name: "velero/restore-1".into(),
            location: None,
            window: None,
        };
        let other = "level=error msg=\"error getting restore\" error=\"restore not found: \
                     Restore.velero.io \\\"restore-9\\\" not found\" controller=restore";
        assert!(scope.excludes(other), "{other}");
        // A restore's line may quote its own backup: kept.
        let json = r#"{"level":"error","error":"Backup.velero.io \"nightly-9\" not found"}"#;
        assert!(!scope.excludes(json), "{json}");
        let backup_scope = OperationScope {
            field: "backup",
            name: "velero/nightly-1".into(),
            location: None,
            window: None,
        };
        assert!(backup_scope.excludes(json), "{json}");
        let this = "level=error msg=x error=\"Restore.velero.io \\\"restore-1\\\" is invalid\"";
        assert!(!scope.excludes(this), "{this}");
        assert!(!scope.excludes("level=error msg=\"plugin process exited\""));
    }

    #[test]
    fn server_lines_about_other_locations_or_from_other_hours_are_left_out() {
        let at = |t: &str| t.parse::<jiff::Timestamp>().unwrap();
        let scope = OperationScope {
            field: "restore",
            name: "velero/restore-1".into(),
            location: Some("velero/default".into()),
            window: Some((at("2026-11-23T04:00:00Z"), at("2026-11-23T05:00:00Z"))),
        };
        let mut scan = LogScan::new(source()).scoped_to(scope);
        // Another location's validation, in both of Velero's field names: left out.
        scan.offer("time=\"2026-11-23T04:10:00Z\" level=error msg=\"fail to validate backup store\" backup-storage-location=velero/tls-insecure");
        scan.offer("time=\"2026-11-23T04:10:00Z\" level=error msg=\"skip syncing\" backupLocation=velero/other");
        // The target's own location: kept.
        scan.offer("time=\"2026-11-23T04:10:00Z\" level=error msg=\"skip syncing\" backupLocation=velero/default");
        // Naming no operation, an hour before: left out; while it ran: kept; no time: kept.
        scan.offer("time=\"2026-11-23T03:00:00Z\" level=warning msg=\"node agent not found\"");
        scan.offer(r#"{"level":"warning","msg":"slow list","time":"2026-11-23T04:30:00Z"}"#);
        scan.offer("level=warning msg=\"no time here\"");
        // This restore's line from outside the window: kept (it names the operation).
        scan.offer(
            "time=\"2026-11-23T06:00:00Z\" level=error msg=\"late\" restore=velero/restore-1",
        );
        // A pattern hit from before the window is kept: a plugin dead since start-up matters.
        scan.offer("time=\"2026-11-23T03:00:00Z\" level=error msg=\"plugin process exited\" cmd=/plugins/velero-plugin-for-aws error=\"signal: killed\"");
        let (_, hits, groups, _) = scan.into_parts();
        let messages: Vec<&str> = groups.iter().map(|g| g.message.as_str()).collect();
        assert_eq!(
            messages,
            ["skip syncing", "slow list", "no time here", "late"]
        );
        assert!(hits.iter().any(|h| h.pattern == Pattern::PluginExited));
    }

    #[test]
    fn lines_naming_this_operation_are_told_apart_in_both_formats() {
        let restore = OperationScope {
            field: "restore",
            name: "velero/restore-1".into(),
            location: None,
            window: None,
        };
        let backup = OperationScope {
            field: "backup",
            name: "velero/nightly-1".into(),
            location: None,
            window: None,
        };
        let this_restore = [
            "level=info msg=\"starting restore\" restore=velero/restore-1",
            r#"{"level":"info","msg":"starting restore","restore":"velero/restore-1"}"#,
            // The hooks' waits name the restore without its namespace.
            "level=info msg=\"Waiting for restore exec hooks starts\" restore=restore-1",
            // A restore's line naming its backup too.
            "level=error msg=\"exceeded quota: q\" backup=velero/nightly-1 restore=velero/restore-1",
        ];
        for line in this_restore {
            assert!(restore.names_this(line), "{line}");
        }
        let not_this_restore = [
            "level=info msg=x restore=velero/restore-2",
            "level=info msg=x restore=velero/restore-10",
            "level=info msg=x podvolumerestore=velero/restore-1",
            "level=info msg=\"Checking for expired DeleteBackupRequests\"",
            "level=info msg=x backup=velero/restore-1",
        ];
        for line in not_this_restore {
            assert!(!restore.names_this(line), "{line}");
        }
        assert!(
            backup.names_this("level=info msg=\"Setting up backup log\" backup=velero/nightly-1")
        );
        assert!(backup.names_this(r#"{"level":"info","backup":"velero/nightly-1","msg":"x"}"#));
        // As copied, with its line ending.
        assert!(backup.names_this("level=info msg=x backup=velero/nightly-1\r\n"));
        // The restore's line, not the backup's.
        assert!(!backup.names_this(
            "level=error msg=\"exceeded quota: q\" backup=velero/nightly-1 restore=velero/restore-1"
        ));
        assert!(!backup.names_this("level=info msg=x backup=velero/nightly-10"));
    }

    #[test]
    fn a_block_is_scanned_as_its_lines_are() {
        let lines = [
            "time=\"t\" level=info msg=\"starting\"",
            "time=\"t\" level=error msg=\"error restoring pods/shop/a\" error=\"exceeded quota: q\"",
            r#"{"level":"error","msg":"error restoring pods/shop/b","error.message":"exceeded quota: q"}"#,
            r#"{"level":"warning","msg":"slow","time":"t"}"#,
            "time=\"t\" level=\"warning\" msg=\"quoted level\"",
            "time=\"t\" level=fatal msg=\"gone\"",
            "level=panic msg=\"panicked\"",
            "panic: runtime error: invalid memory address or nil pointer dereference",
            "fatal error: concurrent map writes",
            "goroutine 1 [running]:",
            "x @level=error msg=\"not a level\"",
            r#"{"@level":"error","level":"info"}"#,
            "level=warn msg=slow level=info",
            "level=info msg=\"a message about level=error\"",
            "",
            "time=\"t\" level=error msg=\"last, with\r\"",
        ];
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let by_line = |scan: &mut LogScan| lines.iter().for_each(|l| scan.offer(&format!("{l}\n")));
        // Every cut of the text into two blocks: the same hits, groups and line numbers.
        let mut expected = LogScan::new(source());
        by_line(&mut expected);
        let expected = (expected.lines(), expected.into_parts());
        let cuts = text.match_indices('\n').map(|(at, _)| at + 1);
        for cut in std::iter::once(0).chain(cuts) {
            let mut scan = LogScan::new(source());
            let offered = scan.offer_lines(&text[..cut]) + scan.offer_lines(&text[cut..]);
            assert_eq!(offered, lines.len() as u64);
            assert_eq!((scan.lines(), scan.into_parts()), expected, "cut at {cut}");
        }
        // And each line on its own is found or not as `level_of` finds it.
        for line in lines {
            let found = WARNING_OR_WORSE.find(line.as_bytes()).is_some();
            assert!(found || level_of(line).is_none(), "missed {line:?}");
        }
    }

    #[test]
    fn skipped_lines_keep_the_line_numbers_of_the_file() {
        let mut scan = LogScan::new(source());
        scan.skip_line();
        scan.offer("level=error msg=\"exceeded quota: q\"");
        assert_eq!(scan.lines(), 2);
        let (_, hits, _, _) = scan.into_parts();
        assert_eq!(hits[0].line, 2);
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

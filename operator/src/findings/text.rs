//! Small text helpers shared by the rules and summary.md: bounded quotes, and reading the level,
//! message and error of one Velero log line in either of its formats (logrus text, the
//! default, or JSON with the server flag `--log-format=json`).

use std::{borrow::Cow, sync::LazyLock};

/// A finding quotes at most this many bytes of its evidence (so also at most this many chars).
pub(crate) const MAX_QUOTE_BYTES: usize = 200;

/// `text` on one line, cut at a char boundary so that it stays within `max` bytes, with `…`
/// marking a cut.
/// [`cap`], borrowing when the text is one line within `max` (the common case).
pub(crate) fn cap_borrowed(text: &str, max: usize) -> Cow<'_, str> {
    let trimmed = text.trim();
    if trimmed.len() <= max && !trimmed.contains(['\n', '\r']) {
        Cow::Borrowed(trimmed)
    } else {
        Cow::Owned(cap(text, max))
    }
}

pub(crate) fn cap(text: &str, max: usize) -> String {
    let one_line: Cow<str> = if text.contains(['\n', '\r']) {
        Cow::Owned(text.replace(['\n', '\r'], " "))
    } else {
        Cow::Borrowed(text)
    };
    let trimmed = one_line.trim();
    if trimmed.len() <= max {
        return trimmed.to_string();
    }
    let ellipsis = "…";
    let mut end = max.saturating_sub(ellipsis.len());
    while !trimmed.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ellipsis}", &trimmed[..end])
}

/// A quote of evidence, within [`MAX_QUOTE_BYTES`].
pub(crate) fn quote(text: &str) -> String {
    cap(text, MAX_QUOTE_BYTES)
}

/// The levels worth a look; info and debug lines are the bulk of every log and are skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogLevel {
    Warning,
    Error,
    /// logrus `fatal`/`panic`, or a Go runtime panic printed outside the logger.
    Fatal,
}

impl LogLevel {
    pub fn name(self) -> &'static str {
        match self {
            LogLevel::Warning => "warning",
            LogLevel::Error => "error",
            LogLevel::Fatal => "fatal",
        }
    }
}

/// The level of a log line: `level=error` (text), `"level":"error"` (JSON; `"@level"` of
/// hclog-style lines does not match), or a Go runtime crash (`panic: `, `fatal error: ` at the
/// start of a line, printed by the runtime, not by logrus). None for anything below warning.
pub(crate) fn level_of(line: &str) -> Option<LogLevel> {
    if is_go_crash(line) {
        return Some(LogLevel::Fatal);
    }
    let value = field_value(line, "level")?;
    match value.as_ref() {
        "warning" | "warn" => Some(LogLevel::Warning),
        "error" => Some(LogLevel::Error),
        "fatal" | "panic" => Some(LogLevel::Fatal),
        _ => None,
    }
}

/// A Go runtime crash line (the start of a panic's trace).
pub(crate) fn is_go_crash(line: &str) -> bool {
    line.starts_with("panic: ") || line.starts_with("fatal error: ")
}

/// What a log line says: its `msg`, followed by its error (`error=` in text, `error.message`
/// or `error` in JSON) when it has one; the whole line when it has no `msg`.
pub(crate) fn log_message(line: &str) -> String {
    log_message_borrowed(line).into_owned()
}

/// [`log_message`], borrowing from the line when it can (no error, nothing unescaped): the
/// per-line path of the log scan allocates only for a message it keeps.
pub(crate) fn log_message_borrowed(line: &str) -> Cow<'_, str> {
    let Some(msg) = field_value(line, "msg") else {
        return Cow::Borrowed(line.trim());
    };
    let error = field_value(line, "error.message").or_else(|| field_value(line, "error"));
    match error {
        Some(e) if !e.is_empty() => Cow::Owned(format!("{msg}: {e}")),
        _ => msg,
    }
}

/// The value of `key` in a logrus text line (`key=value` or `key="quoted \"value\""`) or a
/// flat JSON line (`"key":"value"`).
pub(crate) fn field_value<'a>(line: &'a str, key: &str) -> Option<Cow<'a, str>> {
    let trimmed = line.trim_start();
    if trimmed.starts_with('{') {
        let needle = format!("\"{key}\":\"");
        let start = trimmed.find(&needle)? + needle.len();
        return Some(quoted_until_end(&trimmed[start..]));
    }
    // No needle is built: this runs on every line of every log.
    let mut from = 0;
    // The key must start a field (at the line's start or after a space, so `level=` does not
    // match inside `@level=` or `loglevel=`) and be followed by `=`.
    let finder = key_finder(key);
    while let Some(found) = finder.find(&line.as_bytes()[from..]) {
        let at = from + found;
        let after = at + key.len();
        if (at == 0 || line.as_bytes()[at - 1] == b' ') && line.as_bytes().get(after) == Some(&b'=')
        {
            let rest = &line[after + 1..];
            return Some(match rest.strip_prefix('"') {
                Some(quoted) => quoted_until_end(quoted),
                None => Cow::Borrowed(rest.split(' ').next().unwrap_or_default()),
            });
        }
        from = after;
    }
    None
}

/// A searcher for `key`, built once for the keys every line is searched for (building one
/// costs more than searching a line: `memmem::find` and `str::find` build one per call).
fn key_finder(key: &str) -> Cow<'static, memchr::memmem::Finder<'static>> {
    static KEYS: LazyLock<[memchr::memmem::Finder<'static>; 4]> = LazyLock::new(|| {
        ["level", "msg", "error", "error.message"].map(memchr::memmem::Finder::new)
    });
    match KEYS.iter().find(|f| f.needle() == key.as_bytes()) {
        Some(finder) => Cow::Borrowed(finder),
        None => Cow::Owned(memchr::memmem::Finder::new(key.as_bytes()).into_owned()),
    }
}

/// The text of a quoted value up to its closing quote, with `\"` and `\\` unescaped.
fn quoted_until_end(rest: &str) -> Cow<'_, str> {
    let bytes = rest.as_bytes();
    let mut i = 0;
    let mut escaped = false;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => {
                escaped = true;
                i += 2;
                continue;
            }
            b'"' => break,
            _ => i += 1,
        }
    }
    let raw = &rest[..i.min(rest.len())];
    if escaped {
        Cow::Owned(raw.replace("\\\"", "\"").replace("\\\\", "\\"))
    } else {
        Cow::Borrowed(raw)
    }
}

/// A duration in words for summary.md and events ("40s", "35m", "2h5m").
pub(crate) fn duration_words(d: std::time::Duration) -> String {
    let minutes = d.as_secs() / 60;
    match (minutes / 60, minutes % 60) {
        (0, 0) => format!("{}s", d.as_secs()),
        (0, m) => format!("{m}m"),
        (h, 0) => format!("{h}h"),
        (h, m) => format!("{h}h{m}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_is_char_boundary_safe_and_bounded() {
        let text = "é".repeat(300);
        let capped = quote(&text);
        assert!(capped.len() <= MAX_QUOTE_BYTES, "{}", capped.len());
        assert!(capped.ends_with('…'));
        assert_eq!(quote("  short\nline "), "short line");
    }

    #[test]
    fn levels_of_text_and_json_lines() {
        let text = r#"time="2026-01-01T00:00:00Z" level=error msg="boom" logSource="x.go:1""#;
        let json = r#"{"level":"warning","msg":"careful","time":"2026-01-01T00:00:00Z"}"#;
        assert_eq!(level_of(text), Some(LogLevel::Error));
        assert_eq!(level_of(json), Some(LogLevel::Warning));
        assert_eq!(level_of(r#"time="t" level=info msg="fine""#), None);
        assert_eq!(level_of(r#"{"@level":"error","level":"info"}"#), None);
        assert_eq!(level_of("x @level=error msg=y"), None);
        assert_eq!(
            level_of("panic: runtime error: invalid memory address"),
            Some(LogLevel::Fatal)
        );
    }

    #[test]
    fn messages_join_msg_and_error() {
        let text = r#"time="t" level=error msg="Error backing up item" error="pod volume backup failed: \"x\" gone" logSource="a""#;
        assert_eq!(
            log_message(text),
            r#"Error backing up item: pod volume backup failed: "x" gone"#
        );
        let json = r#"{"error.message":"rpc error: code = Unavailable","level":"error","msg":"plugin failed"}"#;
        assert_eq!(
            log_message(json),
            "plugin failed: rpc error: code = Unavailable"
        );
        assert_eq!(log_message("panic: boom"), "panic: boom");
    }
}

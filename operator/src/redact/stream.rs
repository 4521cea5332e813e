//! Redaction of the lines of one stream (a log, a file, a multi-line string) in order, for
//! values that go on over several lines: a PEM private key's body, a base64-encoded private
//! key wrapped over lines (`base64` output), a YAML block scalar under a secret-like key
//! (`password: |`) or the last-applied annotation, and an env entry written as YAML
//! (`- name: DB_PASSWORD` then `value: ...`).

use super::{
    MARKER, MaskCounts, Redactor, Rule,
    rules::{decodes_to_private_key, secret_name},
};
use regex::Regex;
use std::{borrow::Cow, sync::LazyLock};

/// A value that began on an earlier line.
#[derive(Debug, Clone, Copy)]
enum Open {
    Nothing,
    /// Lines up to and including the END marker; how many were masked so far.
    PemKey {
        lines: usize,
    },
    /// Lines all of base64, up to one with padding or another kind of line; how many were
    /// masked so far.
    Base64Key {
        lines: usize,
    },
    /// Lines indented deeper than the key's line (blank lines too).
    Block {
        indent: usize,
        rule: &'static str,
        counted: bool,
    },
    /// The next line, when it is `value: ...`.
    EnvValue,
    /// The first lines of a stream that starts in the middle of a log (its tail): lines of
    /// base64 alone may be the body of a key whose BEGIN line was left out.
    MaybeKeyBody,
}

/// Lines masked after a BEGIN line (or the first line of a base64 key) at most: a missing END
/// line must not mask the rest of a huge log. The largest keys (RSA 16384 bits, PGP keys
/// with subkeys) take a few hundred lines.
pub(super) const MAX_KEY_LINES: usize = 1000;

/// Replaces the line where masking stopped for want of an END line, so the reader knows.
fn key_cut_note() -> Cow<'static, str> {
    Cow::Owned(format!(
        "{MARKER} (no END line within {MAX_KEY_LINES} lines: masking stops here)"
    ))
}

#[derive(Debug)]
struct Patterns {
    pem_begin: Regex,
    pem_end: Regex,
    /// A base64-encoded PEM that runs to the end of its line without padding: it goes on.
    base64_pem_open: Regex,
    /// A line of base64 alone (with its indentation).
    base64_line: Regex,
    /// `key: |` or `- key: >-`: the indentation and the key.
    block_key: Regex,
    /// `- name: X`: the name.
    env_name: Regex,
    env_value: Rule,
}

static PATTERNS: LazyLock<Patterns> = LazyLock::new(|| {
    let re = |p: &str| Regex::new(p).expect("stream pattern compiles");
    Patterns {
        pem_begin: re(r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"),
        pem_end: re(r"-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"),
        base64_pem_open: re(r"(?-u:\b)(LS0tLS1CRUdJTi[A-Za-z0-9+/]*)[ \t]*$"),
        base64_line: re(r"^[ \t]*[A-Za-z0-9+/]+(={0,2})[ \t]*$"),
        block_key: re(
            r#"^([ \t]*)(?:-[ \t]+)?["']?([A-Za-z0-9_./-]+)["']?[ \t]*:[ \t]*[|>][-+0-9]*[ \t]*$"#,
        ),
        env_name: re(
            r#"^[ \t]*(?:-[ \t]+)?name:[ \t]*["']?([A-Za-z_][A-Za-z0-9_.-]*)["']?[ \t]*$"#,
        ),
        env_value: Rule {
            name: Cow::Borrowed("env-secret"),
            re: re(
                r#"^[ \t]*value:[ \t]*(?:"((?:[^"\\]|\\.)*)"|'((?:[^']|'')*)'|([^\s|>].*?))[ \t]*$"#,
            ),
            min_len: 1,
            confirm: None,
            whole: false,
        },
    }
});

/// Masks the lines of one stream in order and counts the masks by rule. A line comes back
/// borrowed exactly when it is unchanged.
pub(crate) struct LineStream<'r> {
    redactor: &'r Redactor,
    patterns: &'static Patterns,
    open: Open,
    counts: MaskCounts,
    /// The lowercased copy of a block the prefilter searches (see [`Self::unchanged_lines`]).
    lower: Vec<u8>,
}

impl<'r> LineStream<'r> {
    pub(super) fn new(redactor: &'r Redactor) -> Self {
        LineStream {
            redactor,
            patterns: &PATTERNS,
            open: Open::Nothing,
            counts: MaskCounts::default(),
            lower: Vec::new(),
        }
    }

    /// How many bytes of `block` (whole lines, each ending in `\n`), from its start, are
    /// lines that [`redact`](Self::redact) would give back as they are and that open no
    /// value: those before the first line the prefilter passes. 0 while a value is open or
    /// when the site has patterns of its own (they are tried on every line).
    pub fn unchanged_lines(&mut self, block: &[u8]) -> usize {
        if !matches!(self.open, Open::Nothing) || !self.redactor.site.is_empty() {
            return 0;
        }
        let prefilter = &self.redactor.builtin.prefilter;
        match prefilter.first_candidate(block, &mut self.lower) {
            None => block.len(),
            Some(at) => memchr::memrchr(b'\n', &block[..at]).map_or(0, |end| end + 1),
        }
    }

    /// For a stream that starts in the middle of a log: its leading lines of base64 alone
    /// are masked, as the body of a key that began before them would be.
    pub fn starting_mid_log(mut self) -> Self {
        self.open = Open::MaybeKeyBody;
        self
    }

    /// What this stream masked so far.
    pub fn counts(&self) -> &MaskCounts {
        &self.counts
    }

    /// Masks one line (without its line ending).
    pub fn redact<'a>(&mut self, line: &'a str) -> Cow<'a, str> {
        match std::mem::replace(&mut self.open, Open::Nothing) {
            Open::Nothing => {}
            Open::PemKey { lines } => return self.pem_body(line, lines),
            Open::Base64Key { lines } => {
                if let Some(masked) = self.base64_line(line, lines) {
                    return masked;
                }
            }
            Open::Block {
                indent,
                rule,
                counted,
            } => {
                if let Some(masked) = self.block_line(line, indent, rule, counted) {
                    return masked;
                }
            }
            Open::MaybeKeyBody => {
                if let Some(masked) = self.base64_line(line, 0) {
                    self.counts.add("pem-private-key", 1);
                    return masked;
                }
            }
            Open::EnvValue => {
                if let Some(open) = self.block_opened(line, Some("env-secret")) {
                    self.open = open;
                    return Cow::Borrowed(line);
                }
                let masked = self
                    .patterns
                    .env_value
                    .apply(Cow::Borrowed(line), &mut self.counts);
                if let Cow::Owned(_) = masked {
                    return masked;
                }
            }
        }
        let (masked, checked) = self.redactor.mask(line, &mut self.counts);
        // Every line that opens a value passes the precheck.
        if checked {
            self.open = self.opened(line);
        }
        masked
    }

    /// Masks every line of a text, keeping `\n` / `\r\n` endings; borrowed when unchanged.
    pub(super) fn redact_text<'a>(&mut self, text: &'a str) -> Cow<'a, str> {
        let mut out: Option<String> = None;
        let mut offset = 0;
        for chunk in text.split_inclusive('\n') {
            let body = chunk.trim_end_matches(['\n', '\r']);
            let masked = self.redact(body);
            if out.is_none() && matches!(masked, Cow::Owned(_)) {
                let mut start = String::with_capacity(text.len());
                start.push_str(&text[..offset]);
                out = Some(start);
            }
            if let Some(out) = &mut out {
                out.push_str(&masked);
                out.push_str(&chunk[body.len()..]);
            }
            offset += chunk.len();
        }
        out.map_or(Cow::Borrowed(text), Cow::Owned)
    }

    fn pem_body<'a>(&mut self, line: &'a str, lines: usize) -> Cow<'a, str> {
        match self.patterns.pem_end.find(line) {
            Some(end) => Cow::Owned(format!("{MARKER}{}", self.redact(&line[end.end()..]))),
            None if lines + 1 >= MAX_KEY_LINES => key_cut_note(),
            None => {
                self.open = Open::PemKey { lines: lines + 1 };
                Cow::Owned(MARKER.to_string())
            }
        }
    }

    /// A line of a wrapped base64 key: masked (keeping its indentation), or None when the
    /// key ended before it.
    fn base64_line<'a>(&mut self, line: &'a str, lines: usize) -> Option<Cow<'a, str>> {
        let caps = self.patterns.base64_line.captures(line)?;
        if lines + 1 >= MAX_KEY_LINES {
            return Some(key_cut_note());
        }
        // Padding ends the base64.
        if caps[1].is_empty() {
            self.open = Open::Base64Key { lines: lines + 1 };
        }
        let depth = line.len() - line.trim_start_matches([' ', '\t']).len();
        Some(Cow::Owned(format!("{}{MARKER}", &line[..depth])))
    }

    /// A line of an open block: masked (keeping its indentation), or None when the block ended
    /// before it.
    fn block_line<'a>(
        &mut self,
        line: &'a str,
        indent: usize,
        rule: &'static str,
        counted: bool,
    ) -> Option<Cow<'a, str>> {
        let depth = line.len() - line.trim_start_matches([' ', '\t']).len();
        let blank = depth == line.len();
        if !blank && depth <= indent {
            return None;
        }
        self.open = Open::Block {
            indent,
            rule,
            counted: counted || !blank,
        };
        if blank || &line[depth..] == MARKER {
            return Some(Cow::Borrowed(line));
        }
        if !counted {
            self.counts.add(rule, 1);
        }
        Some(Cow::Owned(format!("{}{MARKER}", &line[..depth])))
    }

    /// What value this line opens for the next lines.
    fn opened(&self, line: &str) -> Open {
        let p = self.patterns;
        let pem_open = p
            .pem_begin
            .find_iter(line)
            .last()
            .is_some_and(|begin| !p.pem_end.is_match(&line[begin.end()..]));
        if pem_open {
            return Open::PemKey { lines: 0 };
        }
        let base64_open = p
            .base64_pem_open
            .captures(line)
            .is_some_and(|caps| decodes_to_private_key(&caps[1]));
        if base64_open {
            return Open::Base64Key { lines: 0 };
        }
        if let Some(open) = self.block_opened(line, None) {
            return open;
        }
        let env_name = p.env_name.is_match(line)
            && p.env_name
                .captures(line)
                .is_some_and(|caps| secret_name(&caps[1]));
        if env_name {
            Open::EnvValue
        } else {
            Open::Nothing
        }
    }

    /// A block scalar under the last-applied annotation or a secret-like key (any key when
    /// `rule` is given: the value of an env entry with a secret-like name).
    fn block_opened(&self, line: &str, rule: Option<&'static str>) -> Option<Open> {
        let key = &self.patterns.block_key;
        if !key.is_match(line) {
            return None;
        }
        let caps = key.captures(line)?;
        let name = &caps[2];
        let rule = match rule {
            Some(rule) if name == "value" => rule,
            Some(_) => return None,
            None if name.ends_with("last-applied-configuration") => "last-applied-configuration",
            None if secret_name(name) => "secret-named-key-value",
            None => return None,
        };
        Some(Open::Block {
            indent: caps[1].len(),
            rule,
            counted: false,
        })
    }
}

//! Masks credentials in everything the bundle collects: log lines, free text and Kubernetes
//! objects (as JSON). Gigabytes of logs go through [`Redactor::redact_line`], so one cheap
//! keyword scan decides first whether any rule can apply at all; such a line (nearly every
//! line) comes back borrowed, without allocating.
//!
//! Limitations, chosen to fail towards masking: `redact_line` sees one line, so of a PEM
//! private key spread over several lines it masks only the BEGIN line's remainder
//! ([`LineStream`] keeps state and masks the following lines up to the END marker; a JSON
//! string is masked whole). A secret-like word followed by `:` in prose (`get secret: secrets
//! "x" not found`) has its next word masked, since it cannot be told from `secret: value`.

use regex::Regex;
use serde_json::Value;
use std::borrow::Cow;

pub const MARKER: &str = "***REDACTED***";

/// Words that make a JSON key or an env var name secret-like (matched on the lowercased name).
const SECRET_WORDS: &str = "password|passwd|secret|token|apikey|api_key|api-key|access_key|accesskey|credential|private_key|privatekey|auth";
/// Suffixes of keys that name or select a Secret rather than hold one (`secretName`, `...Ref`).
const REFERENCE_SUFFIXES: &[&str] = &["ref", "name", "names", "selector", "namespace"];

/// Any line some rule below could match contains one of these; anything else is left alone.
const PRECHECK: &str = r"(?i)passw|pwd|secret|token|api[_-]?key|access[_-]?key|credential|private[_ -]?key|auth|bearer|signature|://[^\s/@]*@|(?-i:AKIA|ASIA|eyJ)";

/// Rules as (pattern, shortest secret worth masking). The secret is the first capture group
/// that took part in the match, or the whole match when the pattern has no group; only it is
/// replaced, so the key, the scheme word, quotes and the host stay readable.
const RULES: &[(&str, usize)] = &[
    // PEM private key: the whole block, or from BEGIN to the end when the END is elsewhere.
    (
        r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY-----(?s:.*?)(?:-----END[A-Z0-9 ]*PRIVATE KEY-----|\z)",
        1,
    ),
    // JWT: three base64url segments, the header always starts `{"` = `eyJ`.
    (
        r"(?-u:\b)eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*",
        30,
    ),
    // AWS access key id (long-term AKIA, temporary ASIA).
    (r"(?-u:\b)(?:AKIA|ASIA)[A-Z0-9]{16}(?-u:\b)", 1),
    // Password in URL userinfo, up to the last `@` (an unescaped `@` in it must not leak the
    // rest); a bare `token@host` has no colon and is kept.
    (
        r#"(?i)(?-u:\b)[a-z][a-z0-9+.-]*://[^\s/?#@:"']*:([^\s/?#"']+)@"#,
        1,
    ),
    // Authorization header (any token length), or a lone bearer token long enough not to be prose.
    (
        r#"(?i)authorization["']?\s*[:=][\s"'\[]*(?:bearer|basic)\s+([^\s"',\]]+)|(?-u:\b)bearer\s+([A-Za-z0-9._~+/-]{16,}=*)"#,
        1,
    ),
    // Presigned URL query values (SigV4 and SigV2); also `Signature=` in a SigV4 header.
    (
        r#"(?i)(?-u:\b)(?:x-amz-credential|x-amz-security-token|signature|awsaccesskeyid)=([^&\s"',]+)"#,
        1,
    ),
    // key=value, key: value, key => value for secret-like keys (also `db_password`, `X-Api-Key`,
    // `secret-access-key`, `accessKeyId`).
    // The key must be followed directly by the separator, so `msg="token refreshed"` is prose;
    // it must not follow `/`, so `https://token:pw@host` is left to the URL rule. A space after
    // `=` only counts when one comes before it too: logrus writes an empty value as `key= `.
    (
        r#"(?i)(?:^|[^/A-Za-z0-9_.-])[A-Za-z0-9_.-]*?(?:passw(?:or)?d|pwd|secret|token|(?:secret[_-]?access|secret|private|access|api)[_-]?key(?:[_-]?id)?)(?:\\?["'])?(?:\s*(?:=>|:)\s*|\s+=\s*|=)(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|\\"((?:[^"\\]|\\[^"])*)\\"|([^\s"',&]+))"#,
        1,
    ),
    // Env entry printed as JSON text: {"name":"AWS_SECRET_ACCESS_KEY","value":"..."}.
    (
        r#"(?i)"name"\s*:\s*"[^"]*(?:passw|secret|token|api[_-]?key|access_?key|credential|private_?key|auth)[^"]*"\s*,\s*"value"\s*:\s*"((?:[^"\\]|\\.)*)""#,
        1,
    ),
];

#[derive(Debug)]
struct Rule {
    re: Regex,
    min_len: usize,
}

impl Rule {
    /// Masks every secret; stays borrowed when none (an empty value or MARKER itself is no
    /// secret, which keeps redaction idempotent).
    fn apply<'a>(&self, text: Cow<'a, str>) -> Cow<'a, str> {
        let mut out = String::new();
        let mut last = None;
        for caps in self.re.captures_iter(&text) {
            let whole = caps.get(0).expect("group 0 always matches");
            let secret = caps.iter().skip(1).flatten().next().unwrap_or(whole);
            if secret.len() < self.min_len || secret.as_str() == MARKER {
                continue;
            }
            out.push_str(&text[last.unwrap_or(0)..secret.start()]);
            out.push_str(MARKER);
            last = Some(secret.end());
        }
        match last {
            None => text,
            Some(end) => {
                out.push_str(&text[end..]);
                Cow::Owned(out)
            }
        }
    }
}

/// Masks the lines of one stream (a log, a file) in order, so the body lines of a PEM private
/// key spread over several lines are masked too, not only its BEGIN line.
pub struct LineStream<'r> {
    redactor: &'r Redactor,
    in_pem: bool,
}

impl LineStream<'_> {
    /// Masks one line (without its line ending).
    pub fn redact<'a>(&mut self, line: &'a str) -> Cow<'a, str> {
        let r = self.redactor;
        if self.in_pem {
            return match r.pem_end.find(line) {
                Some(end) => {
                    self.in_pem = false;
                    Cow::Owned(format!("{MARKER}{}", r.redact_line(&line[end.end()..])))
                }
                None => Cow::Borrowed(MARKER),
            };
        }
        let masked = r.redact_line(line);
        // A BEGIN line always passes the keyword precheck, so untouched lines open no block.
        if matches!(masked, Cow::Owned(_)) {
            self.in_pem = r
                .pem_begin
                .find_iter(line)
                .last()
                .is_some_and(|begin| !r.pem_end.is_match(&line[begin.end()..]));
        }
        masked
    }
}

/// Compiled once; `Regex` is `Send + Sync`, so one `Redactor` serves every task by reference.
#[derive(Debug)]
pub struct Redactor {
    precheck: Regex,
    rules: Vec<Rule>,
    pem_begin: Regex,
    pem_end: Regex,
}

// Checked at compile time: the controller shares one Redactor across its tasks.
const _: () = {
    const fn shareable<T: Send + Sync>() {}
    shareable::<Redactor>()
};

impl Default for Redactor {
    fn default() -> Self {
        Self::new()
    }
}

impl Redactor {
    pub fn new() -> Redactor {
        let re = |p: &str| Regex::new(p).expect("redaction pattern compiles");
        Redactor {
            precheck: re(PRECHECK),
            rules: RULES
                .iter()
                .map(|&(p, min_len)| Rule { re: re(p), min_len })
                .collect(),
            pem_begin: re(r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY-----"),
            pem_end: re(r"-----END[A-Z0-9 ]*PRIVATE KEY-----"),
        }
    }

    /// Masks the secrets in one line (or any string: a PEM block inside is masked whole).
    pub fn redact_line<'a>(&self, line: &'a str) -> Cow<'a, str> {
        if !self.precheck.is_match(line) {
            return Cow::Borrowed(line);
        }
        self.rules
            .iter()
            .fold(Cow::Borrowed(line), |text, rule| rule.apply(text))
    }

    /// Masks every line, keeping `\n` / `\r\n` endings; the lines of a multi-line PEM private
    /// key after its BEGIN line are each replaced by MARKER up to and including its END marker
    /// (to the end of the text when no END comes).
    #[cfg(test)]
    pub fn redact_text(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut lines = self.stream();
        for chunk in text.split_inclusive('\n') {
            let body = chunk.trim_end_matches(['\n', '\r']);
            out.push_str(&lines.redact(body));
            out.push_str(&chunk[body.len()..]);
        }
        out
    }

    /// A redactor for the lines of one log or file, in order: it remembers an open PEM block.
    pub fn stream(&self) -> LineStream<'_> {
        LineStream {
            redactor: self,
            in_pem: false,
        }
    }

    /// Masks a Kubernetes object in place; returns how many values were masked. Every string
    /// goes through `redact_line`; the value of an env entry with a secret-like name, and a
    /// string or number under a secret-like key (not a reference such as `secretName` or
    /// `credentialsSecretRef`), becomes MARKER; objects and arrays are walked.
    pub fn redact_json(&self, value: &mut Value) -> usize {
        match value {
            Value::String(s) => match self.redact_line(s) {
                Cow::Borrowed(_) => 0,
                Cow::Owned(masked) => {
                    *s = masked;
                    1
                }
            },
            Value::Array(items) => items.iter_mut().map(|v| self.redact_json(v)).sum(),
            Value::Object(map) => {
                // An env entry {"name": "AWS_SECRET_ACCESS_KEY", "value": "..."}.
                let env_secret = map.contains_key("value")
                    && map
                        .get("name")
                        .and_then(Value::as_str)
                        .is_some_and(secret_like);
                // Defence in depth: a Secret's data is all secret, whatever its keys.
                let secret_obj = map.get("kind").and_then(Value::as_str) == Some("Secret");
                let mut n = 0;
                for (key, v) in map.iter_mut() {
                    if secret_obj
                        && (key == "data" || key == "stringData")
                        && let Value::Object(data) = v
                    {
                        n += data.values_mut().map(mask).filter(|&m| m).count();
                        continue;
                    }
                    let holds_secret = (env_secret && key == "value")
                        || (secret_like(key) && !names_a_secret(key));
                    if holds_secret && mask(v) {
                        n += 1;
                    } else {
                        n += self.redact_json(v);
                    }
                }
                n
            }
            _ => 0,
        }
    }
}

fn secret_like(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_WORDS.split('|').any(|w| name.contains(w))
}

fn names_a_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    REFERENCE_SUFFIXES.iter().any(|s| key.ends_with(s))
}

/// Replaces a string or number by MARKER; true when that changed it.
fn mask(v: &mut Value) -> bool {
    let maskable = v.is_number() || v.as_str().is_some_and(|s| s != MARKER);
    if maskable {
        *v = Value::String(MARKER.into());
    }
    maskable
}

#[cfg(test)]
mod tests;

//! Masks credentials in everything the bundle collects: log lines, object-store files and
//! Kubernetes objects (as JSON). The rules are a table (rules.rs), each with a name, and
//! [`MaskCounts`] says how many values each rule masked, for the bundle's manifest.
//!
//! Gigabytes of logs go through here, so one cheap keyword scan (the union of the rules'
//! triggers, behind a SIMD search for the literals they need: prefilter.rs) decides first
//! whether any rule can apply at all; such a line (nearly every line) comes back borrowed,
//! without allocating, and nothing is counted or locked for it.
//!
//! Limitations, chosen to fail towards masking: `redact_line_counted` sees one line, so of a
//! value spread over several lines (a PEM or base64 private key, a YAML block under a
//! secret-like key, an env `name:` / `value:` pair) it masks only what that line shows; a
//! [`LineStream`] keeps state and masks the rest (a JSON string goes through both). A key
//! whose END line never comes is masked for 1000 lines at most (a log must not vanish
//! behind one), and the line where masking stops says so. A secret-like word
//! followed by `:` in prose (`get secret: secrets "x" not found`) has its next word masked,
//! since it cannot be told from `secret: value`.

mod json;
mod prefilter;
mod rules;
mod stream;

pub(crate) use stream::LineStream;

use regex::Regex;
use std::{borrow::Cow, collections::BTreeMap, sync::LazyLock};

pub(crate) const MARKER: &str = "***REDACTED***";

/// The rule name of the site's patterns ([`Redactor::with_extra_patterns`]): the first is
/// `site-pattern-1`, and so on, in the order given.
pub(crate) const SITE_PATTERN: &str = "site-pattern";

/// How many values each rule masked, by rule name; a bundle's manifest lists them.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub(crate) struct MaskCounts(BTreeMap<RuleName, u64>);

/// Built-in rules are named by the table; site patterns get their names at start.
type RuleName = Cow<'static, str>;

impl MaskCounts {
    /// Counts `n` masks of a built-in rule (the redactor's, or a collector's structural one).
    pub(crate) fn add(&mut self, rule: &'static str, n: u64) {
        self.add_rule(&Cow::Borrowed(rule), n);
    }

    /// Clones the name only the first time it is counted.
    fn add_rule(&mut self, rule: &RuleName, n: u64) {
        match self.0.get_mut(rule.as_ref()) {
            Some(count) => *count += n,
            None => {
                self.0.insert(rule.clone(), n);
            }
        }
    }

    pub fn merge(&mut self, other: &MaskCounts) {
        for (rule, &n) in &other.0 {
            self.add_rule(rule, n);
        }
    }

    #[cfg(test)]
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    #[cfg(test)]
    pub fn get(&self, rule: &str) -> u64 {
        self.0.get(rule).copied().unwrap_or(0)
    }
}

#[derive(Debug)]
struct Rule {
    name: RuleName,
    re: Regex,
    min_len: usize,
    confirm: Option<fn(&str) -> bool>,
    /// Mask the whole match, whatever groups the pattern has (site patterns).
    whole: bool,
}

impl Rule {
    /// Masks every secret and counts them; stays borrowed when none (an empty value or MARKER
    /// itself is no secret, which keeps redaction idempotent).
    fn apply<'a>(&self, text: Cow<'a, str>, counts: &mut MaskCounts) -> Cow<'a, str> {
        // `is_match` first: `captures_iter` allocates its slots even when nothing matches.
        if !self.re.is_match(&text) {
            return text;
        }
        let mut out = String::new();
        let mut last = None;
        let mut masked = 0;
        for caps in self.re.captures_iter(&text) {
            let whole = caps.get(0).expect("group 0 always matches");
            let secret = if self.whole {
                whole
            } else {
                caps.iter().skip(1).flatten().next().unwrap_or(whole)
            };
            if secret.len() < self.min_len
                || secret.as_str() == MARKER
                || self
                    .confirm
                    .is_some_and(|confirm| !confirm(secret.as_str()))
            {
                continue;
            }
            out.push_str(&text[last.unwrap_or(0)..secret.start()]);
            out.push_str(MARKER);
            last = Some(secret.end());
            masked += 1;
        }
        match last {
            None => text,
            Some(end) => {
                out.push_str(&text[end..]);
                counts.add_rule(&self.name, masked);
                Cow::Owned(out)
            }
        }
    }
}

/// The built-in rules, compiled once per process.
#[derive(Debug)]
struct Builtin {
    /// Turns away text that holds none of the needles, before the precheck.
    prefilter: prefilter::Prefilter,
    precheck: Regex,
    rules: Vec<Rule>,
}

impl Builtin {
    /// Whether any built-in rule may apply to `text`.
    fn triggered(&self, text: &str) -> bool {
        self.prefilter.may_match(text) && self.precheck.is_match(text)
    }
}

static BUILTIN: LazyLock<Builtin> = LazyLock::new(|| Builtin {
    prefilter: prefilter::Prefilter::new(
        rules::RULES
            .iter()
            .flat_map(|spec| spec.needles.iter().copied()),
    ),
    precheck: Regex::new(&rules::precheck()).expect("precheck compiles"),
    rules: rules::RULES
        .iter()
        .map(|spec| {
            let pattern: Vec<String> = spec.parts.iter().map(rules::Part::regex).collect();
            Rule {
                name: Cow::Borrowed(spec.name),
                re: Regex::new(&pattern.join("|"))
                    .unwrap_or_else(|e| panic!("rule {} compiles: {e}", spec.name)),
                min_len: spec.min_len,
                confirm: spec.confirm,
                whole: false,
            }
        })
        .collect(),
});

/// `Regex` is `Send + Sync`, so one `Redactor` serves every task by reference.
#[derive(Debug)]
pub(crate) struct Redactor {
    builtin: &'static Builtin,
    /// Checked on every line: the precheck knows nothing of them.
    site: Vec<Rule>,
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
        Redactor {
            builtin: &BUILTIN,
            site: Vec::new(),
        }
    }

    /// The built-in rules and these regexes (a site's own token formats, host names...),
    /// each masked whole and counted as `site-pattern-<n>` (n from 1, in this order).
    pub fn with_extra_patterns(patterns: &[String]) -> Result<Redactor, regex::Error> {
        let site = patterns
            .iter()
            .enumerate()
            .map(|(i, pattern)| {
                Ok(Rule {
                    name: Cow::Owned(format!("{SITE_PATTERN}-{}", i + 1)),
                    re: Regex::new(pattern)?,
                    min_len: 1,
                    confirm: None,
                    whole: true,
                })
            })
            .collect::<Result<_, regex::Error>>()?;
        Ok(Redactor {
            builtin: &BUILTIN,
            site,
        })
    }

    /// Masks the secrets in one line (or any string: a PEM block inside is masked whole).
    #[cfg(test)]
    pub fn redact_line<'a>(&self, line: &'a str) -> Cow<'a, str> {
        self.redact_line_counted(line, &mut MaskCounts::default())
    }

    /// Masks one line that stands alone (a line of its own record, as an event's), adding
    /// what it masked to `counts`.
    pub fn redact_line_counted<'a>(&self, line: &'a str, counts: &mut MaskCounts) -> Cow<'a, str> {
        self.mask(line, counts).0
    }

    /// A redactor for the lines of one log or file, in order: it remembers a value that
    /// goes on over the next lines, and counts what it masks.
    pub fn stream(&self) -> LineStream<'_> {
        stream::LineStream::new(self)
    }

    /// Masks every line, keeping `\n` / `\r\n` endings, as a stream does.
    #[cfg(test)]
    pub fn redact_text(&self, text: &str) -> String {
        self.stream().redact_text(text).into_owned()
    }

    /// The rules' pass over one line: the masked line, and whether it passed the precheck
    /// (only then can it open a value that goes on over the next lines).
    fn mask<'a>(&self, line: &'a str, counts: &mut MaskCounts) -> (Cow<'a, str>, bool) {
        let text = self
            .site
            .iter()
            .fold(Cow::Borrowed(line), |text, rule| rule.apply(text, counts));
        if !self.builtin.triggered(line) {
            return (text, false);
        }
        let text = self
            .builtin
            .rules
            .iter()
            .fold(text, |text, rule| rule.apply(text, counts));
        (text, true)
    }
}

#[cfg(test)]
#[path = "redact_tests.rs"]
mod tests;

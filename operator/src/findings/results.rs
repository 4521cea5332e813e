//! The results file's messages, grouped by what they say (names left out) with counts, and
//! bounded: a restore of 100,000 objects that all "already exist" costs one group.

use std::collections::{BTreeMap, HashMap};

use super::{
    patterns::{self, Mention, Pattern},
    text::{cap, quote},
};

/// Distinct groups kept; messages of further groups are only counted.
const MAX_GROUPS: usize = 200;
/// Mentions kept per pattern (each rule needs a quote or two, not all of them).
const MAX_MENTIONS_PER_PATTERN: usize = 5;
/// A group's example message is cut to this many bytes.
const MAX_EXAMPLE_BYTES: usize = 400;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ResultGroup {
    /// `error` or `warning`.
    pub severity: String,
    /// What the messages share: the first message with quoted names replaced by `*`.
    pub key: String,
    /// The first message of the group, as written.
    pub example: String,
    /// Where the first one was: `velero`, `cluster` or `namespace <ns>`.
    pub scope: String,
    pub count: u64,
}

#[derive(Debug, Default)]
pub(crate) struct ResultGroups {
    pub path: String,
    pub groups: Vec<ResultGroup>,
    /// (severity, key) -> index in `groups`: a large file is grouped without a scan per line.
    index: HashMap<(String, String), usize>,
    /// Messages of groups beyond [`MAX_GROUPS`], by severity.
    pub left_out: BTreeMap<String, u64>,
    pub totals: BTreeMap<String, u64>,
    mentions: BTreeMap<Pattern, Vec<Mention>>,
    /// Messages per pattern, kept as mentions or not.
    pattern_counts: BTreeMap<Pattern, u64>,
    /// Restores: how many objects of each kind already existed and differ.
    pub already_existing: BTreeMap<String, u64>,
}

impl ResultGroups {
    pub fn add(&mut self, path: &str, severity: &str, scope: &str, message: &str) {
        let severity = severity.trim_end_matches('s').to_string();
        self.path = path.to_string();
        *self.totals.entry(severity.clone()).or_default() += 1;
        for pattern in patterns::classify(message) {
            *self.pattern_counts.entry(pattern).or_default() += 1;
            if pattern == Pattern::AlreadyExists
                && let Some(kind) = patterns::already_existing_kind(message)
                && (self.already_existing.len() < MAX_GROUPS
                    || self.already_existing.contains_key(&kind))
            {
                *self.already_existing.entry(kind).or_default() += 1;
            }
            let kept = self.mentions.entry(pattern).or_default();
            if kept.len() < MAX_MENTIONS_PER_PATTERN {
                kept.push(Mention {
                    pattern,
                    quote: quote(message),
                    file: path.to_string(),
                    line: None,
                    operation: None,
                    node: patterns::node_named(message),
                });
            }
        }
        let key = group_key(message);
        if let Some(&i) = self.index.get(&(severity.clone(), key.clone())) {
            self.groups[i].count += 1;
        } else if self.groups.len() < MAX_GROUPS {
            self.index
                .insert((severity.clone(), key.clone()), self.groups.len());
            self.groups.push(ResultGroup {
                severity,
                key,
                example: cap(message, MAX_EXAMPLE_BYTES),
                scope: scope.to_string(),
                count: 1,
            });
        } else {
            *self.left_out.entry(severity).or_default() += 1;
        }
    }

    pub fn mentions(&self, pattern: Pattern) -> &[Mention] {
        self.mentions.get(&pattern).map_or(&[], Vec::as_slice)
    }

    pub fn count(&self, pattern: Pattern) -> u64 {
        self.pattern_counts.get(&pattern).copied().unwrap_or(0)
    }

    pub fn total(&self, severity: &str) -> u64 {
        self.totals.get(severity).copied().unwrap_or(0)
    }
}

/// A message with what names one object taken out: quoted text (`"name"`) and the
/// `resource/namespace/name` after `error restoring ` or `error preparing `, so messages about
/// different objects of the same failure group together.
fn group_key(message: &str) -> String {
    let mut key = String::with_capacity(message.len().min(MAX_EXAMPLE_BYTES));
    let mut in_quotes = false;
    for c in message.chars() {
        if c == '"' {
            in_quotes = !in_quotes;
            if in_quotes {
                key.push_str("\"*\"");
            }
            continue;
        }
        if !in_quotes {
            key.push(c);
        }
        if key.len() >= MAX_EXAMPLE_BYTES {
            break;
        }
    }
    for verb in ["error restoring ", "error preparing "] {
        if let Some(rest) = key.strip_prefix(verb)
            && let Some((id, tail)) = rest.split_once(": ")
        {
            let resource = id.split('/').next().unwrap_or(id);
            return format!("{verb}{resource}/*: {tail}");
        }
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_about_different_objects_group_together() {
        let mut r = ResultGroups::default();
        for name in ["a", "b", "c"] {
            r.add(
                "object-store/results.json",
                "warnings",
                "namespace shop",
                &format!("could not restore, ConfigMap \"{name}\" already exists. Warning: the in-cluster version is different than the backed-up version"),
            );
        }
        r.add(
            "object-store/results.json",
            "errors",
            "namespace shop",
            "error restoring pods/shop/web-1: pods \"web-1\" is forbidden: exceeded quota: q",
        );
        r.add(
            "object-store/results.json",
            "errors",
            "namespace shop",
            "error restoring pods/shop/web-2: pods \"web-2\" is forbidden: exceeded quota: q",
        );
        assert_eq!(r.groups.len(), 2);
        assert_eq!(r.groups[0].count, 3);
        assert_eq!(r.groups[1].count, 2);
        assert_eq!(
            r.groups[1].key,
            "error restoring pods/*: pods \"*\" is forbidden: exceeded quota: q"
        );
        assert_eq!(r.already_existing["ConfigMap"], 3);
        assert_eq!(r.mentions(Pattern::QuotaExceeded).len(), 2);
        assert_eq!(r.total("warning"), 3);
    }

    #[test]
    fn groups_and_mentions_stay_bounded() {
        let mut r = ResultGroups::default();
        for i in 0..10_000 {
            r.add(
                "r",
                "errors",
                "velero",
                &format!("unique failure {i}: exceeded quota: q{i}"),
            );
        }
        assert_eq!(r.groups.len(), MAX_GROUPS);
        assert_eq!(r.left_out["error"], 10_000 - MAX_GROUPS as u64);
        assert_eq!(
            r.mentions(Pattern::QuotaExceeded).len(),
            MAX_MENTIONS_PER_PATTERN
        );
    }
}

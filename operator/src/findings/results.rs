//! The results file's messages, grouped by what they say (names left out) with counts, and
//! bounded: a restore of 100,000 objects that all "already exist" costs one group.

use std::collections::{BTreeMap, HashMap};

use super::{
    patterns::{self, Mention, Pattern},
    text::cap,
};

/// Distinct groups kept; messages of further groups are only counted.
const MAX_GROUPS: usize = 200;
/// Mentions kept per pattern (each rule needs a quote or two, not all of them).
const MAX_MENTIONS_PER_PATTERN: usize = 5;
/// A group's example message is cut to this many bytes.
const MAX_EXAMPLE_BYTES: usize = 400;
/// Messages about a namespace's objects kept one by one (for the damage by application);
/// further ones are only counted.
const MAX_ITEMS: usize = 2000;
/// An object's name is at most 253 bytes; a resource name 63.
const MAX_NAME_BYTES: usize = 253;

/// One message about an object of a namespace (or the namespace, when it names none).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ResultItem {
    /// `error` or `warning`.
    pub severity: String,
    pub namespace: String,
    /// As the message names it: a resource (`configmaps`) or a kind (`ConfigMap`).
    pub resource: Option<String>,
    pub name: Option<String>,
    /// Its group in [`ResultGroups::groups`], when that was kept.
    pub group: Option<usize>,
}

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
    /// Messages about namespaced objects, at most [`MAX_ITEMS`].
    pub items: Vec<ResultItem>,
    pub items_left_out: u64,
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
                    quote: patterns::quote_of(message, pattern),
                    file: path.to_string(),
                    line: None,
                    operation: None,
                    node: patterns::node_named(message),
                });
            }
        }
        let key = group_key(message);
        let group = self.group(severity.clone(), key, scope, message);
        if let Some((namespace, resource, name)) = object_named(scope, message) {
            if self.items.len() < MAX_ITEMS {
                self.items.push(ResultItem {
                    severity,
                    namespace,
                    resource,
                    name,
                    group,
                });
            } else {
                self.items_left_out += 1;
            }
        }
    }

    /// Counts the message in its group (made when there is room); the group's index.
    fn group(
        &mut self,
        severity: String,
        key: String,
        scope: &str,
        message: &str,
    ) -> Option<usize> {
        if let Some(&i) = self.index.get(&(severity.clone(), key.clone())) {
            self.groups[i].count += 1;
            Some(i)
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
            Some(self.groups.len() - 1)
        } else {
            *self.left_out.entry(severity).or_default() += 1;
            None
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

/// The namespace, resource and name of the object a message is about: Velero's `error
/// restoring <resource>/<namespace>/<name>: ...`, else in a namespace's list `could not
/// restore, <Kind>:<name> already exists` or the first `<Kind> "<name>"` (older Velero's
/// `ConfigMap "x" already exists`), else only the namespace. None for the messages of no
/// namespace.
fn object_named(scope: &str, message: &str) -> Option<(String, Option<String>, Option<String>)> {
    let short = |s: &str| cap(s, MAX_NAME_BYTES);
    for verb in ["error restoring ", "error preparing "] {
        if let Some((_, rest)) = message.split_once(verb)
            && let Some((id, _)) = rest.split_once(": ")
            && let [resource, namespace, name] = id.split('/').collect::<Vec<_>>()[..]
        {
            return Some((short(namespace), Some(short(resource)), Some(short(name))));
        }
    }
    let namespace = scope.strip_prefix("namespace ")?;
    // Velero 1.18: `could not restore, ConfigMap:kube-root-ca.crt already exists. ...`.
    if let Some((_, rest)) = message.split_once("could not restore, ")
        && let Some((id, _)) = rest.split_once(' ')
        && let Some((kind, name)) = id.split_once(':')
        && !kind.is_empty()
        && !name.is_empty()
    {
        return Some((short(namespace), Some(short(kind)), Some(short(name))));
    }
    let quoted = message.split_once('"').and_then(|(before, rest)| {
        let kind = before.trim_end().rsplit([' ', ',']).next()?;
        let (name, _) = rest.split_once('"')?;
        // A Kind is PascalCase: `said "no"` names nothing.
        let is_kind = kind.chars().next()?.is_ascii_uppercase()
            && kind.chars().all(|c| c.is_ascii_alphanumeric() || c == '.');
        (is_kind && !name.is_empty()).then(|| (short(kind), short(name)))
    });
    let (resource, name) = quoted.unzip();
    Some((short(namespace), resource, name))
}

/// A message with what names one object taken out: quoted text (`"name"`) and the
/// `resource/namespace/name` after `error restoring ` or `error preparing `, so messages about
/// different objects of the same failure group together.
pub(crate) fn group_key(message: &str) -> String {
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
    fn each_message_names_its_object_or_only_its_namespace() {
        let named = |scope: &str, message: &str| object_named(scope, message);
        let some = |s: &str| Some(s.to_string());
        assert_eq!(
            named(
                "namespace shop",
                "error restoring configmaps/shop/api-settings: configmaps \"api-settings\" is forbidden"
            ),
            Some(("shop".into(), some("configmaps"), some("api-settings")))
        );
        assert_eq!(
            named(
                "namespace shop",
                "could not restore, Secret \"loose\" already exists. Warning: differs"
            ),
            Some(("shop".into(), some("Secret"), some("loose")))
        );
        assert_eq!(
            named(
                "namespace shop",
                "could not restore, ConfigMap:kube-root-ca.crt already exists. Warning: differs"
            ),
            Some(("shop".into(), some("ConfigMap"), some("kube-root-ca.crt")))
        );
        assert_eq!(
            named("namespace shop", "a plugin said \"no\" and more"),
            Some(("shop".into(), None, None))
        );
        assert_eq!(
            named("namespace shop", "no object at all"),
            Some(("shop".into(), None, None))
        );
        assert_eq!(
            named("velero", "could not restore, Secret \"x\" already exists"),
            None
        );
        let mut r = ResultGroups::default();
        r.add(
            "r",
            "errors",
            "namespace shop",
            "error restoring pods/shop/a: boom \"a\"",
        );
        r.add(
            "r",
            "errors",
            "namespace shop",
            "error restoring pods/shop/b: boom \"b\"",
        );
        assert_eq!(r.items.len(), 2);
        assert_eq!(r.items[1].group, Some(0));
        assert_eq!(r.items[1].name.as_deref(), Some("b"));
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

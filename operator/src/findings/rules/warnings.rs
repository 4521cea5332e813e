//! Warnings: what did not fail the operation but may surprise its user.

use super::{Evidence, Finding, Layer, Severity, plural};
use crate::findings::{next_steps, patterns::Pattern};

/// Objects a restore left as they were because they already existed and differ from the
/// backup: grouped by kind, most frequent first.
pub(super) fn already_exists(e: &Evidence) -> Vec<Finding> {
    let by_kind = &e.results.already_existing;
    let Some(first) = e.results.mentions(Pattern::AlreadyExists).first() else {
        return Vec::new();
    };
    let mut kinds: Vec<(&String, &u64)> = by_kind.iter().collect();
    kinds.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let total: u64 = by_kind.values().sum();
    let listed: Vec<String> = kinds
        .iter()
        .take(4)
        .map(|(kind, n)| format!("{kind} {n}"))
        .collect();
    let more = if kinds.len() > 4 { ", ..." } else { "" };
    vec![
        Finding::new(
            Severity::Warning,
            Layer::Warnings,
            "already-exists",
            format!(
                "{} already existed and {} from the backup, left as {} ({}{more})",
                plural(total, "object", "objects"),
                if total == 1 { "differs" } else { "differ" },
                if total == 1 { "it is" } else { "they are" },
                listed.join(", ")
            ),
            &first.quote,
            &first.file,
        )
        .next_step(next_steps::already_exists()),
    ]
}

/// Warnings no rule recognised, when nothing else was found: the most frequent group.
pub(super) fn unclassified_warnings(e: &Evidence, found: &[Finding]) -> Vec<Finding> {
    if !found.is_empty() {
        return Vec::new();
    }
    let Some(top) = e
        .results
        .groups
        .iter()
        .filter(|g| g.severity == "warning")
        .max_by_key(|g| g.count)
    else {
        return Vec::new();
    };
    vec![
        Finding::new(
            Severity::Warning,
            Layer::Warnings,
            "unclassified-warnings",
            format!(
                "{} in the results; the most frequent ({}) is not one a rule knows",
                plural(e.results.total("warning"), "warning", "warnings"),
                top.count
            ),
            &top.example,
            &e.results.path,
        )
        .next_step(next_steps::unclassified(&e.target.kind, &e.target.name)),
    ]
}

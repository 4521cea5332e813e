//! The rules, one small function each, grouped by the layer they diagnose. A rule reads the
//! evidence and returns its findings (usually none or one); ranking is done afterwards.

mod data_path;
mod ended_pods;
mod exposes;
mod items;
mod platform;
mod pods;
mod refusals;
mod stalled;
mod volumes;
mod warnings;

use super::{
    Evidence, Finding, Layer, Severity, SiteRules,
    patterns::{Mention, Pattern},
};

type Rule = fn(&Evidence) -> Vec<Finding>;
/// A rule that also sees what the others found.
type Fallback = fn(&Evidence, &[Finding]) -> Vec<Finding>;

/// In order of preference within a layer and severity.
const RULES: &[Rule] = &[
    stalled::operation_stalled,
    platform::velero_server_restarted,
    platform::bsl_unavailable,
    platform::failed_validation,
    platform::plugin_crashed,
    platform::operation_log_missing,
    data_path::node_agent_missing,
    data_path::node_agent_restarted,
    data_path::repository_not_initialized,
    data_path::repository_locked,
    data_path::repository_password_invalid,
    data_path::data_path_pod_rejected,
    exposes::data_path_pod_unschedulable,
    ended_pods::data_path_pod_ended,
    data_path::repository_not_ready,
    data_path::repository_maintenance_failed,
    volumes::volume_operation_failed,
    volumes::pod_volume_restore_blocked,
    volumes::pod_volume_restore_stuck,
    volumes::volume_snapshot_content_error,
    volumes::no_snapshot_class,
    volumes::snapshot_not_reconciled,
    volumes::csi_snapshot_timeout,
    volumes::pod_volume_timeout,
    volumes::item_operation_failed,
    volumes::expose_diagnosis,
    items::quota_exceeded,
    refusals::limit_range_refused,
    refusals::pod_security_refused,
    refusals::policy_denied,
    items::webhook_denied,
    refusals::namespace_terminating,
    refusals::immutable_field,
    refusals::rbac_forbidden,
    items::api_missing,
    refusals::admission_refused,
    refusals::object_invalid,
    items::item_action_error,
    items::pvc_not_found,
    items::restored_pod_not_ready,
    items::hooks_failed,
    items::backup_not_whole,
    warnings::already_exists,
];

/// Rules that only speak when no other rule explained the outcome.
const FALLBACKS: &[Fallback] = &[
    items::failure_reason,
    items::unclassified_errors,
    warnings::unclassified_warnings,
];

pub(crate) fn run(evidence: &Evidence, site: &SiteRules) -> Vec<Finding> {
    let mut found: Vec<Finding> = RULES.iter().flat_map(|rule| rule(evidence)).collect();
    found.extend(site.run(evidence));
    for fallback in FALLBACKS {
        let more = fallback(evidence, &found);
        found.extend(more);
    }
    found
}

/// How many times a pattern was seen (counted in full, beyond what was kept): by the results
/// file when it has them, else by the logs. Not their sum: Velero logs the failure of an item
/// and also records it in the results.
/// The results file has one entry per object; a log says the same refusal more than once
/// (Velero logs each failed item twice in the restore's log), so lines count only when the
/// results file does not have the pattern.
fn times_seen(e: &Evidence, pattern: Pattern) -> u64 {
    match e.results.count(pattern) {
        0 => e.log_hit_counts.get(&pattern).copied().unwrap_or(0),
        in_results => in_results,
    }
}

/// The finding of a rule that keys on one pattern: the first place it shows is the quote;
/// the operations whose status says it are what it explains.
fn from_mentions(
    e: &Evidence,
    pattern: Pattern,
    severity: Severity,
    layer: Layer,
    rule: &'static str,
    title: impl FnOnce(&[Mention], u64) -> String,
) -> Option<Finding> {
    let mentions = e.mentions(pattern);
    let first = mentions.first()?;
    let seen = times_seen(e, pattern).max(1);
    Some(
        Finding::new(
            severity,
            layer,
            rule,
            title(&mentions, seen),
            &first.quote,
            &first.file,
        )
        .at_line(first.line)
        .explaining(mentions.iter().filter_map(|m| m.operation.clone())),
    )
}

/// "1 object" / "3 objects".
fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// Puts `item` in the group of the first item it is `same` as, or in a new group while there
/// are fewer than `max` (further kinds of items are left to the summary's lists).
fn group_into<T>(groups: &mut Vec<Vec<T>>, item: T, max: usize, same: impl Fn(&T, &T) -> bool) {
    if let Some(i) = groups.iter().position(|g| same(&g[0], &item)) {
        groups[i].push(item);
    } else if groups.len() < max {
        groups.push(vec![item]);
    }
}

#[cfg(test)]
#[path = "rules_tests.rs"]
pub(super) mod tests;

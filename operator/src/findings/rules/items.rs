//! Items: single objects the API server or a plugin refused, hooks, and a restore's backup that
//! was not whole; and the fallbacks that name the outcome when no rule explained it.

use super::{Evidence, Finding, Layer, Severity, from_mentions, plural};
use crate::findings::{
    CSI_SNAPSHOTS_KEY, PLUGIN_KEY, TARGET_KEY,
    patterns::{self, Pattern},
};

fn objects_rule(
    e: &Evidence,
    pattern: Pattern,
    rule: &'static str,
    what: &'static str,
) -> Vec<Finding> {
    from_mentions(e, pattern, Severity::Error, Layer::Items, rule, |_, n| {
        format!("{}: {what}", plural(n, "object", "objects"))
    })
    .into_iter()
    .collect()
}

pub(super) fn quota_exceeded(e: &Evidence) -> Vec<Finding> {
    objects_rule(
        e,
        Pattern::QuotaExceeded,
        "quota-exceeded",
        "refused by a ResourceQuota (exceeded quota)",
    )
}

pub(super) fn webhook_denied(e: &Evidence) -> Vec<Finding> {
    objects_rule(
        e,
        Pattern::WebhookDenied,
        "webhook-denied",
        "denied by an admission webhook",
    )
}

pub(super) fn api_missing(e: &Evidence) -> Vec<Finding> {
    objects_rule(
        e,
        Pattern::ApiMissing,
        "api-missing",
        "of an API the cluster does not serve (CRD missing?)",
    )
}

pub(super) fn pvc_not_found(e: &Evidence) -> Vec<Finding> {
    objects_rule(
        e,
        Pattern::PvcNotFound,
        "pvc-not-found",
        "pod volume(s) whose PersistentVolumeClaim was not found",
    )
}

/// A backup/restore item action (a plugin) returned an error; when the call failed because the
/// plugin was gone, the plugin's crash explains it; when a CSI snapshot timed out, the
/// timeout (or the snapshot content's error) does.
pub(super) fn item_action_error(e: &Evidence) -> Vec<Finding> {
    objects_rule(
        e,
        Pattern::ItemActionError,
        "item-action-error",
        "a plugin's item action failed",
    )
    .into_iter()
    .map(|f| {
        if f.quote.contains("code = Unavailable") {
            f.about([PLUGIN_KEY.to_string()])
        } else if is_about_csi_snapshots(&f.quote) {
            f.about([CSI_SNAPSHOTS_KEY.to_string()])
        } else {
            f
        }
    })
    .collect()
}

/// An item action error of a VolumeSnapshot (named early in Velero's message, so a cut quote
/// still says it), or one that says a CSI snapshot timed out.
fn is_about_csi_snapshots(quote: &str) -> bool {
    quote.contains("groupResource=volumesnapshots.snapshot.storage.k8s.io")
        || patterns::classify(quote).contains(&Pattern::CsiSnapshotTimeout)
}

pub(super) fn hooks_failed(e: &Evidence) -> Vec<Finding> {
    let t = &e.target;
    if t.hooks_failed == 0 {
        return Vec::new();
    }
    vec![Finding::new(
        Severity::Warning,
        Layer::Items,
        "hooks-failed",
        format!("{} of {} hooks failed", t.hooks_failed, t.hooks_attempted),
        &format!(
            "status.hookStatus: hooksAttempted {}, hooksFailed {}",
            t.hooks_attempted, t.hooks_failed
        ),
        &t.path,
    )]
}

/// A restore can only bring back what its backup holds: a backup that is PartiallyFailed or
/// Failed, or whose results file has errors, is named with the most frequent of them.
pub(super) fn backup_not_whole(e: &Evidence) -> Vec<Finding> {
    let t = &e.target;
    let results = &e.backup_results;
    let errors = results.total("error");
    let phase = t
        .backup_phase
        .as_deref()
        .filter(|p| matches!(*p, "PartiallyFailed" | "Failed"));
    let backup = t.backup_name.as_deref().unwrap_or("<unknown>");
    let top_error = results
        .groups
        .iter()
        .filter(|g| g.severity == "error")
        .max_by_key(|g| g.count);
    let (quote, file) = match (top_error, phase, &t.backup_path) {
        (Some(top), ..) => (top.example.clone(), results.path.clone()),
        (None, Some(phase), Some(path)) => (
            format!("backup {backup} status.phase: {phase}"),
            path.clone(),
        ),
        _ => return Vec::new(),
    };
    let state = match phase {
        Some(phase) => format!("is {phase}"),
        None => "had errors".to_string(),
    };
    let counted = if errors > 0 {
        format!(" ({} in its results)", plural(errors, "error", "errors"))
    } else {
        String::new()
    };
    vec![Finding::new(
        Severity::Warning,
        Layer::Items,
        "backup-not-whole",
        format!(
            "The restore's backup {backup} {state}{counted}: what it missed cannot be restored"
        ),
        &quote,
        &file,
    )]
}

fn has_error(found: &[Finding]) -> bool {
    found.iter().any(|f| f.severity == Severity::Error)
}

/// The target's own failure reason, when no rule explained the failure.
pub(super) fn failure_reason(e: &Evidence, found: &[Finding]) -> Vec<Finding> {
    let t = &e.target;
    let Some(reason) = &t.failure_reason else {
        return Vec::new();
    };
    if has_error(found) {
        return Vec::new();
    }
    vec![
        Finding::new(
            Severity::Error,
            Layer::Platform,
            "failure-reason",
            format!("{} {}: {reason}", t.kind, t.phase),
            reason,
            &t.path,
        )
        .about([TARGET_KEY.to_string()]),
    ]
}

/// Errors no rule recognised: the most frequent group of the results file.
pub(super) fn unclassified_errors(e: &Evidence, found: &[Finding]) -> Vec<Finding> {
    if has_error(found) {
        return Vec::new();
    }
    let top = e
        .results
        .groups
        .iter()
        .filter(|g| g.severity == "error")
        .max_by_key(|g| g.count);
    let Some(top) = top else {
        return Vec::new();
    };
    let total = e.results.total("error");
    vec![Finding::new(
        Severity::Error,
        Layer::Items,
        "unclassified-errors",
        format!(
            "{} in the results; the most frequent ({}) is not one a rule knows",
            plural(total, "error", "errors"),
            top.count
        ),
        &top.example,
        &e.results.path,
    )]
}

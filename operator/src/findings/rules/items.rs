//! Items: single objects the API server or a plugin refused, hooks, and a restore's backup that
//! was not whole; and the fallbacks that name the outcome when no rule explained it.

use std::collections::BTreeSet;

use super::{Evidence, Finding, Layer, Severity, from_mentions, plural, pods};
use crate::findings::{
    CSI_SNAPSHOTS_KEY, PLUGIN_KEY, TARGET_KEY,
    evidence::QuotaEvidence,
    next_steps,
    patterns::{self, Pattern},
    text::cap,
};

/// `(namespace, quota)` of Velero's `error restoring <resource>/<namespace>/<name>: ...
/// exceeded quota: <quota>, ...`.
fn quota_of_refusal(message: &str) -> Option<(&str, &str)> {
    let (_, object) = message.split_once("error restoring ")?;
    let mut parts = object.split(['/', ':']);
    let (_resource, namespace) = (parts.next()?, parts.next()?);
    let (_, rest) = message.split_once("exceeded quota: ")?;
    let quota = rest.split([',', ' ']).next()?;
    (!namespace.is_empty() && !quota.is_empty()).then_some((namespace, quota))
}

/// The resource names of a refusal's `requested: <resource>=<n>,...`, up to three.
fn requested_in(message: &str) -> Vec<String> {
    message
        .split_once("requested: ")
        .map(|(_, rest)| rest.split(", used").next().unwrap_or_default())
        .into_iter()
        .flat_map(|list| list.split(','))
        .filter_map(|pair| pair.split_once('=').map(|(k, _)| k.trim().to_string()))
        .take(3)
        .collect()
}

/// The quota's resources a refusal requested, up to three (the quota's own when the message
/// does not say).
fn requested_resources(quota: &QuotaEvidence, message: &str) -> Vec<String> {
    let requested: Vec<String> = requested_in(message)
        .into_iter()
        .filter(|k| quota.hard.contains_key(k))
        .collect();
    if requested.is_empty() {
        quota.hard.keys().take(3).cloned().collect()
    } else {
        requested.into_iter().take(3).collect()
    }
}

/// Restored pods that are not Ready, named one by one; the summary lists them all.
const MAX_RESTORED_POD_FINDINGS: usize = 5;

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

/// Objects the API server refused for a ResourceQuota; the quota itself (what it allows and
/// what is used now) when it was collected.
pub(super) fn quota_exceeded(e: &Evidence) -> Vec<Finding> {
    let mut found = objects_rule(
        e,
        Pattern::QuotaExceeded,
        "quota-exceeded",
        "refused by a ResourceQuota (exceeded quota)",
    );
    for f in &mut found {
        if let Some(quota) = quota_named_in(e, &f.quote) {
            let n = f.title.split(':').next().unwrap_or_default().to_string();
            f.title = cap(
                &format!(
                    "{n}: refused by ResourceQuota {}/{} ({})",
                    quota.namespace,
                    quota.name,
                    quota_usage(quota, &f.quote)
                ),
                160,
            );
            f.next_step = Some(next_steps::quota_exceeded(
                &quota.namespace,
                &quota.name,
                &requested_resources(quota, &f.quote),
                e.target.backup_name.as_deref(),
            ));
        } else if let Some((namespace, name)) = quota_of_refusal(&f.quote) {
            // Not collected (no grant to read it there): the refusal names it all the same.
            f.next_step = Some(next_steps::quota_exceeded(
                namespace,
                name,
                &requested_in(&f.quote),
                e.target.backup_name.as_deref(),
            ));
        }
    }
    found
}

/// The collected ResourceQuota a refusal names: Kubernetes' message is `exceeded quota:
/// <name>, requested: <resource>=<n>,..., used: ..., limited: ...`.
fn quota_named_in<'a>(e: &'a Evidence, message: &str) -> Option<&'a QuotaEvidence> {
    let (_, rest) = message.split_once("exceeded quota: ")?;
    let name = rest.split([',', ' ']).next()?;
    e.quotas.iter().find(|q| q.name == name)
}

/// `requests.storage: used 95Gi, hard 100Gi` for the resources the refusal requested (all the
/// quota's, up to three, when the message does not say).
fn quota_usage(quota: &QuotaEvidence, message: &str) -> String {
    let resources = requested_resources(quota, message);
    resources
        .iter()
        .map(|r| {
            let used = quota.used.get(r).map(String::as_str).unwrap_or("?");
            format!("{r}: used {used}, hard {}", quota.hard[r])
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Restored pods that are not Ready (those a PodVolumeRestore still waits for are
/// pod_volume_restore_blocked's), with what keeps each from running: the restore may be
/// Completed while its workloads are not. A pod whose volume restore ended without it (Velero
/// canceled or failed it when its wait ran out) is an error: its volume's data never came.
pub(super) fn restored_pod_not_ready(e: &Evidence) -> Vec<Finding> {
    if e.target.kind != "Restore" {
        return Vec::new();
    }
    let waited_for: BTreeSet<&str> = super::volumes::waiting_restores(e)
        .filter_map(|o| o.pod.as_deref())
        .collect();
    let with_volumes: BTreeSet<&str> = e
        .operations
        .iter()
        .filter_map(|o| o.pod.as_deref())
        .collect();
    e.workload_pods
        .iter()
        .filter(|p| !p.is_fine() && !waited_for.contains(p.key().as_str()))
        .filter_map(|p| {
            let pod = p.key();
            let blocked = pods::why_blocked(e, &pod)?;
            let severity = if with_volumes.contains(pod.as_str()) && e.target.is_final() {
                Severity::Error
            } else {
                Severity::Warning
            };
            Some(
                Finding::new(
                    severity,
                    Layer::Items,
                    blocked.rule,
                    format!("Restored pod {}", blocked.describe(&pod)),
                    &blocked.quote,
                    &blocked.file,
                )
                .explaining([pods::pod_key(&pod)])
                .about([pods::pod_key(&pod)])
                .next_step(blocked.next_step),
            )
        })
        .take(MAX_RESTORED_POD_FINDINGS)
        .collect()
}

pub(super) fn webhook_denied(e: &Evidence) -> Vec<Finding> {
    let mut found = objects_rule(
        e,
        Pattern::WebhookDenied,
        "webhook-denied",
        "denied by an admission webhook",
    );
    for f in &mut found {
        let webhook = webhook_named_in(&f.quote);
        if let Some(name) = webhook {
            let n = f.title.split(':').next().unwrap_or_default().to_string();
            f.title = cap(&format!("{n}: denied by admission webhook {name}"), 160);
        }
        f.next_step = Some(next_steps::webhook_denied(webhook));
    }
    found
}

/// Kubernetes' refusal: `admission webhook "<name>" denied the request`.
fn webhook_named_in(message: &str) -> Option<&str> {
    let (_, rest) = message.split_once("admission webhook \"")?;
    let name = rest.split('"').next()?;
    (!name.is_empty()).then_some(name)
}

pub(super) fn api_missing(e: &Evidence) -> Vec<Finding> {
    let mut found = objects_rule(
        e,
        Pattern::ApiMissing,
        "api-missing",
        "of an API the cluster does not serve (CRD missing?)",
    );
    for f in &mut found {
        let resource = refused_resource(&f.quote);
        if let Some(resource) = resource {
            let n = f.title.split(':').next().unwrap_or_default().to_string();
            let what =
                format!("{n}: of {resource}, an API the cluster does not serve (CRD missing?)");
            f.title = cap(&what, 160);
        }
        f.next_step = Some(next_steps::api_missing(
            resource,
            e.target.backup_name.as_deref(),
        ));
    }
    found
}

/// The resource of Velero's `error restoring <resource>/<namespace>/<name>: ...` (or
/// `<resource>/<name>` for a cluster-scoped object).
fn refused_resource(message: &str) -> Option<&str> {
    let (_, object) = message.split_once("error restoring ")?;
    let resource = object.split(['/', ':', ' ']).next()?;
    (!resource.is_empty()).then_some(resource)
}

pub(super) fn pvc_not_found(e: &Evidence) -> Vec<Finding> {
    objects_rule(
        e,
        Pattern::PvcNotFound,
        "pvc-not-found",
        "pod volume(s) whose PersistentVolumeClaim was not found",
    )
    .into_iter()
    .map(|f| f.next_step(next_steps::pvc_not_found()))
    .collect()
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
            let step = next_steps::plugin_crashed(None, e.target.velero_namespace());
            f.about([PLUGIN_KEY.to_string()]).next_step(step)
        } else if !e.mentions(Pattern::NoSnapshotClass).is_empty() && is_about_claims(&f.quote) {
            // The claim's action found no class: that finding has the step.
            f.about([CSI_SNAPSHOTS_KEY.to_string()])
        } else if is_about_csi_snapshots(&f.quote, e) {
            f.about([CSI_SNAPSHOTS_KEY.to_string()])
                .next_step(next_steps::csi_snapshot_timeout())
        } else {
            let restoring = e.target.kind == "Restore";
            let backup = e.target.backup_name.as_deref().filter(|_| restoring);
            let step = next_steps::item_action_error(acted_on(&f.quote), backup);
            f.next_step(step)
        }
    })
    .collect()
}

/// The object of Velero's `error preparing <resource>/<namespace>/<name>: ...`.
fn acted_on(message: &str) -> Option<String> {
    let (_, rest) = message.split_once("error preparing ")?;
    let object = rest.split([':', ' ']).next()?;
    (!object.is_empty()).then(|| object.to_string())
}

/// An item action error of a VolumeSnapshot (named early in Velero's message, so a cut quote
/// still says it), or one that says a CSI snapshot timed out.
/// Whether an item action failed on CSI snapshots: the VolumeSnapshot action of the CSI plugin
/// (Velero before 1.14), a CSI timeout in its words, or (1.14+, seen on 1.18.3) the claim's
/// action that waited for its snapshot and failed (with only `context deadline exceeded`,
/// often cut from the quote) while Velero said a CSI snapshot timed out.
fn is_about_csi_snapshots(quote: &str, e: &Evidence) -> bool {
    quote.contains("groupResource=volumesnapshots.snapshot.storage.k8s.io")
        || patterns::classify(quote).contains(&Pattern::CsiSnapshotTimeout)
        || (is_about_claims(quote) && !e.mentions(Pattern::CsiSnapshotTimeout).is_empty())
}

/// An item action on claims: Velero 1.14+'s CSI action.
fn is_about_claims(quote: &str) -> bool {
    quote.contains("groupResource=persistentvolumeclaims")
}

pub(super) fn hooks_failed(e: &Evidence) -> Vec<Finding> {
    let t = &e.target;
    if t.hooks_failed == 0 {
        return Vec::new();
    }
    vec![
        Finding::new(
            Severity::Warning,
            Layer::Items,
            "hooks-failed",
            format!("{} of {} hooks failed", t.hooks_failed, t.hooks_attempted),
            &format!(
                "status.hookStatus: hooksAttempted {}, hooksFailed {}",
                t.hooks_attempted, t.hooks_failed
            ),
            &t.path,
        )
        .next_step(next_steps::hooks_failed(&t.kind, &t.name)),
    ]
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
    vec![
        Finding::new(
            Severity::Warning,
            Layer::Items,
            "backup-not-whole",
            format!(
                "The restore's backup {backup} {state}{counted}: what it missed cannot be restored"
            ),
            &quote,
            &file,
        )
        .with_next_step(t.backup_name.as_deref().map(next_steps::backup_not_whole)),
    ]
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
        .about([TARGET_KEY.to_string()])
        .next_step(next_steps::failure_reason(&t.kind, &t.name)),
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
    vec![
        Finding::new(
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
        )
        .next_step(next_steps::unclassified(&e.target.kind, &e.target.name)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quota_refusal_names_its_namespace_quota_and_resources() {
        let message = "error restoring configmaps/shop-copy/banner: configmaps \"banner\" is \
                       forbidden: exceeded quota: no-configmaps, requested: count/configmaps=1, \
                       used: count/configmaps=0, limited: count/configmaps=0";
        assert_eq!(
            quota_of_refusal(message),
            Some(("shop-copy", "no-configmaps"))
        );
        assert_eq!(requested_in(message), ["count/configmaps"]);
        assert_eq!(quota_of_refusal("exceeded quota: q"), None);
    }

    #[test]
    fn an_api_refusal_names_the_resource_to_install_or_exclude() {
        let message = "error restoring widgets.example.com/shop/w1: the server could not find \
                       the requested resource";
        assert_eq!(refused_resource(message), Some("widgets.example.com"));
        let step = next_steps::api_missing(refused_resource(message), Some("nightly"));
        assert!(
            step.contains("serves widgets.example.com")
                && step.contains("--from-backup nightly --exclude-resources widgets.example.com"),
            "{step}"
        );
        assert_eq!(refused_resource("the server could not find it"), None);
    }

    #[test]
    fn the_webhook_is_named_from_kubernetes_refusal() {
        let message = "error restoring configmaps/shop/a: admission webhook \"deny.example.com\" \
                       denied the request: no";
        assert_eq!(webhook_named_in(message), Some("deny.example.com"));
        assert_eq!(webhook_named_in("admission webhook \"\" denied"), None);
        assert_eq!(webhook_named_in("exceeded quota"), None);
        let step = next_steps::webhook_denied(webhook_named_in(message));
        assert!(
            step.starts_with("Admission webhook deny.example.com refused"),
            "{step}"
        );
    }
}

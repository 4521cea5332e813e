//! Platform: the Velero server itself, its plugins, the storage location, validation. When
//! one of these fails, everything the operation did after is a consequence.

use super::{Evidence, Finding, Layer, Severity, from_mentions};
use crate::findings::{
    PLUGIN_KEY, TARGET_KEY,
    evidence::{PodEvidence, PodRole},
    last_words::{self, LastWords, LastWordsKind},
    log_scan::LogSource,
    next_steps,
    patterns::Pattern,
    text,
};

/// The server restarted: Velero marks what was InProgress as Failed (failureReason) or
/// canceled (the operations' messages); the pod status says why it died.
pub(super) fn velero_server_restarted(e: &Evidence) -> Vec<Finding> {
    let mid_operation = e.mentions(Pattern::ServerRestartedMidOperation);
    let restarted = e
        .pods
        .iter()
        .filter(|p| p.role == PodRole::Server)
        .flat_map(|p| p.containers.iter().map(move |c| (p, c)))
        .filter(|(_, c)| c.restarts > 0)
        .max_by_key(|(_, c)| c.restarts);
    let why = restarted.map(|(pod, c)| {
        let last = c
            .last_terminated
            .as_ref()
            .map(|(reason, code)| format!("; last exit: {reason}, code {code}"))
            .unwrap_or_default();
        (
            pod,
            format!(
                "container {} of pod {} restarted {} time(s){last}",
                c.name, pod.name, c.restarts
            ),
            c.last_terminated.as_ref().map(|(r, _)| r.clone()),
        )
    });
    let finding = match (mid_operation.first(), &why) {
        (Some(m), _) => {
            let reason = why
                .as_ref()
                .and_then(|(_, _, r)| r.as_deref())
                .map(|r| format!(" (last exit: {r})"))
                .unwrap_or_default();
            Finding::new(
                Severity::Error,
                Layer::Platform,
                "velero-server-restarted",
                format!(
                    "The Velero server restarted while the {} was running{reason}",
                    e.target.kind.to_lowercase()
                ),
                &m.quote,
                &m.file,
            )
        }
        (None, Some((pod, text, reason))) => restart_without_trace(e, pod, text, reason),
        (None, None) => return Vec::new(),
    };
    let explains = mid_operation
        .iter()
        .filter_map(|m| m.operation.clone())
        .chain([TARGET_KEY.to_string()]);
    let (pod, reason) = match &why {
        Some((pod, _, reason)) => (Some(pod.name.as_str()), reason.as_deref()),
        None => (None, None),
    };
    let finding = finding.next_step(server_restart_step(e, pod, reason));
    vec![finding.explaining(explains)]
}

/// A restart without a trace on this operation: old news, a warning unless it was killed for
/// memory, told by the server's own last words when its log ends with them, else by the
/// container's state.
fn restart_without_trace(
    e: &Evidence,
    pod: &PodEvidence,
    state: &str,
    reason: &Option<String>,
) -> Finding {
    let reason_text = reason.as_deref().unwrap_or("reason unknown");
    if let Some((source, words)) = fatal_words(e, pod, reason) {
        return Finding::new(
            Severity::Warning,
            Layer::Platform,
            "velero-server-restarted",
            format!(
                "The Velero server restarted ({reason_text}): {}",
                text::cap(&words.text, 100)
            ),
            &words.text,
            &source.path,
        )
        .at_line(Some(words.line));
    }
    let severity = if reason.as_deref() == Some("OOMKilled") {
        Severity::Error
    } else {
        Severity::Warning
    };
    Finding::new(
        severity,
        Layer::Platform,
        "velero-server-restarted",
        format!("The Velero server restarted ({reason_text})"),
        state,
        &pod.path,
    )
}

/// The exit line or fatal line the server's previous log ends with (last_words.rs); none
/// when it was killed for memory, which its words do not explain.
fn fatal_words<'a>(
    e: &'a Evidence,
    pod: &PodEvidence,
    reason: &Option<String>,
) -> Option<(&'a LogSource, &'a LastWords)> {
    if reason.as_deref() == Some("OOMKilled") {
        return None;
    }
    e.last_words_of(&pod.name, true)
        .filter(|(_, w)| w.kind != LastWordsKind::Error)
}

/// What to do after the server restarted: memory when it was OOMKilled, the flag when its own
/// words name one it does not have.
fn server_restart_step(e: &Evidence, pod: Option<&str>, reason: Option<&str>) -> String {
    let ns = e.target.velero_namespace();
    let words = pod.and_then(|p| e.last_words_of(p, true)).map(|(_, w)| w);
    if let Some(flag) = words
        .filter(|w| last_words::known(&w.text) == Some(last_words::Known::UnknownFlag))
        .and_then(|w| last_words::unknown_flag(&w.text))
    {
        return next_steps::unknown_flag(flag, "deployment velero", ns);
    }
    if reason == Some("OOMKilled") {
        next_steps::velero_server_oom(ns)
    } else {
        next_steps::velero_server_restarted(&e.target.kind, &e.target.name, pod, ns)
    }
}

/// The target's storage location is Unavailable (or a restore's validation says so): no
/// files can be read or written.
pub(super) fn bsl_unavailable(e: &Evidence) -> Vec<Finding> {
    let wanted = e.target.storage_location.as_deref();
    let unavailable = e
        .storage_locations
        .iter()
        .find(|l| l.phase == "Unavailable" && wanted.is_none_or(|w| w == l.name));
    let finding = match unavailable {
        Some(l) => {
            let quote = if l.message.is_empty() {
                "status.phase: Unavailable"
            } else {
                &l.message
            };
            Finding::new(
                Severity::Error,
                Layer::Platform,
                "bsl-unavailable",
                format!("BackupStorageLocation {} is Unavailable", l.name),
                quote,
                &l.path,
            )
        }
        None => match from_mentions(
            e,
            Pattern::BslUnavailable,
            Severity::Error,
            Layer::Platform,
            "bsl-unavailable",
            |_, _| "A BackupStorageLocation was Unavailable".to_string(),
        ) {
            Some(f) => f,
            None => return Vec::new(),
        },
    };
    let name = unavailable
        .map(|l| l.name.as_str())
        .or(wanted)
        .map(str::to_string);
    let finding = match name {
        Some(name) => finding.next_step(next_steps::bsl_unavailable(
            &name,
            e.target.velero_namespace(),
        )),
        None => finding,
    };
    vec![finding.explaining([TARGET_KEY.to_string()])]
}

/// Velero refused the operation before starting it.
pub(super) fn failed_validation(e: &Evidence) -> Vec<Finding> {
    if e.target.phase != "FailedValidation" {
        return Vec::new();
    }
    let first = e
        .target
        .validation_errors
        .first()
        .map(String::as_str)
        .unwrap_or("no validationErrors in status");
    vec![
        Finding::new(
            Severity::Error,
            Layer::Platform,
            "failed-validation",
            format!("{} failed validation: {first}", e.target.kind),
            &e.target.validation_errors.join("; "),
            &e.target.path,
        )
        .about([TARGET_KEY.to_string()])
        .next_step(next_steps::failed_validation(
            &e.target.kind,
            &e.target.name,
            e.target.velero_namespace(),
        )),
    ]
}

/// A plugin process died (killed, crashed): every call into it fails with rpc Unavailable.
pub(super) fn plugin_crashed(e: &Evidence) -> Vec<Finding> {
    let title =
        |_: &[_], n: u64| format!("A Velero plugin process exited ({n} time(s) in the logs)");
    let found = from_mentions(
        e,
        Pattern::PluginExited,
        Severity::Error,
        Layer::Platform,
        "plugin-crashed",
        title,
    )
    .or_else(|| {
        from_mentions(
            e,
            Pattern::RpcUnavailable,
            Severity::Error,
            Layer::Platform,
            "plugin-crashed",
            |_, n| format!("Calls into a Velero plugin failed: rpc Unavailable ({n} time(s))"),
        )
    });
    found
        .map(|f| {
            let step =
                next_steps::plugin_crashed(plugin_path(&f.quote), e.target.velero_namespace());
            f.explaining([PLUGIN_KEY.to_string()]).next_step(step)
        })
        .into_iter()
        .collect()
}

/// The plugin binary go-plugin's exit line names (`path=/plugins/velero-plugin-for-aws`).
fn plugin_path(line: &str) -> Option<&str> {
    let (_, rest) = line.split_once("path=")?;
    let path = rest.trim_start_matches(['"', '\\']);
    let path = path.split([' ', '"', '\\']).next()?;
    (!path.is_empty()).then_some(path)
}

/// The operation finished but its own log is not in the object store: deleted (by hand, by a
/// bucket lifecycle rule) or looked for where Velero did not write it (another bucket or
/// prefix). Everything the log would have shown is missing from the diagnosis; the server's
/// lines for the operation stand in when it had any. While the operation runs its log is not
/// there yet: no finding.
pub(super) fn operation_log_missing(e: &Evidence) -> Vec<Finding> {
    let Some(missing) = &e.operation_log_missing else {
        return Vec::new();
    };
    if !e.target.is_final() {
        return Vec::new();
    }
    let kind = e.target.kind.to_lowercase();
    let (then, file) = match &missing.stand_in {
        Some(path) => ("; the Velero server's lines for it stand in", path.clone()),
        None => ("; nothing stands in for it", "manifest.json".to_string()),
    };
    vec![
        Finding::new(
            Severity::Warning,
            // A gap in the evidence, not a cause: after every cause found without it.
            Layer::Warnings,
            "operation-log-missing",
            format!(
                "The {kind}'s own log is missing from the object store although it finished{then}"
            ),
            &format!(
                "{}: {} (deleted, or not where Velero wrote it)",
                missing.key, missing.why
            ),
            &file,
        )
        .about([TARGET_KEY.to_string()])
        .next_step(next_steps::operation_log_missing(
            &e.target.kind,
            &e.target.name,
            e.target.storage_location.as_deref(),
        )),
    ]
}

#[cfg(test)]
#[path = "platform_tests.rs"]
mod tests;

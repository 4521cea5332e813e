//! `describe`: the bundle in detail, for people (json/yaml go through output.rs).

use std::fmt::Write;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Event;
use velero_debug_crd::{ArchiveStatus, DebugBundle, DebugBundleStatus, event_time::last_seen};

use super::{
    age::{age, age_or_unknown},
    output::{finding_line, human_bytes},
};

pub(crate) fn describe(bundle: &DebugBundle, events: &[Event], now: Timestamp) -> String {
    let mut out = String::new();
    let meta = &bundle.metadata;
    let status = bundle.status.clone().unwrap_or_default();
    line(&mut out, "Name", meta.name.as_deref().unwrap_or(""));
    line(
        &mut out,
        "Namespace",
        meta.namespace.as_deref().unwrap_or(""),
    );
    let target = match (&bundle.spec.restore, &bundle.spec.backup) {
        (Some(r), _) => format!("restore/{r}"),
        (_, Some(b)) => format!("backup/{b}"),
        _ => String::new(),
    };
    line(&mut out, "Target", &target);
    let phase = format!("{:?}", status.phase.unwrap_or_default());
    line(&mut out, "Phase", &phase);
    if let Some(attempts) = status.attempts {
        line(&mut out, "Attempts", &attempts.to_string());
    }
    if let Some(t) = &status.start_time {
        line(&mut out, "Started", &t.0.to_string());
    }
    if let Some(t) = &status.completion_time {
        line(&mut out, "Finished", &t.0.to_string());
    }
    if let Some(archive) = &status.archive {
        write_archive(&mut out, archive);
    }
    if let Some(expires) = &status.download_url_expires_at {
        write_url_expiry(&mut out, expires.0, now);
    }
    write_conditions(&mut out, &status);
    write_findings(&mut out, &status);
    write_warnings(&mut out, &status);
    write_events(&mut out, events, now);
    out
}

/// One `Key:  value` line, the values aligned.
fn line(out: &mut String, key: &str, value: &str) {
    let _ = writeln!(out, "{:<18}{value}", format!("{key}:"));
}

fn write_archive(out: &mut String, archive: &ArchiveStatus) {
    out.push_str("Archive:\n");
    line(out, "  Location", &archive.storage_location);
    line(
        out,
        "  Object",
        &format!("s3://{}/{}", archive.bucket, archive.key),
    );
    line(
        out,
        "  Size",
        &format!(
            "{} ({} files)",
            human_bytes(archive.size_bytes),
            archive.file_count
        ),
    );
    line(out, "  SHA256", &archive.sha256);
}

/// When the download URL expires, or that it did and how to get a new one.
fn write_url_expiry(out: &mut String, expires: Timestamp, now: Timestamp) {
    let when = if expires > now {
        format!("{} (in {})", expires, age(now, expires))
    } else {
        format!("{} (expired; `kubectl velero-debug refresh-url`)", expires)
    };
    line(out, "URL Expires", &when);
}

fn write_conditions(out: &mut String, status: &DebugBundleStatus) {
    if status.conditions.is_empty() {
        return;
    }
    out.push_str("Conditions:\n  TYPE               STATUS  REASON                  MESSAGE\n");
    for c in &status.conditions {
        let _ = writeln!(
            out,
            "  {:<18} {:<7} {:<23} {}",
            c.type_, c.status, c.reason, c.message
        );
    }
}

/// The probable cause first, as the operator ordered them.
fn write_findings(out: &mut String, status: &DebugBundleStatus) {
    if status.findings.is_empty() {
        return;
    }
    out.push_str("Findings:\n");
    for f in &status.findings {
        let _ = writeln!(out, "  - {}", finding_line(f));
    }
}

fn write_warnings(out: &mut String, status: &DebugBundleStatus) {
    if status.warnings.is_empty() {
        return;
    }
    out.push_str("Warnings:\n");
    for w in &status.warnings {
        let _ = writeln!(out, "  - {w}");
    }
}

fn write_events(out: &mut String, events: &[Event], now: Timestamp) {
    out.push_str("Events:");
    if events.is_empty() {
        out.push_str(" <none>\n");
        return;
    }
    out.push_str("\n  TYPE      REASON                  AGE    MESSAGE\n");
    for e in events {
        let when = age_or_unknown(last_seen(e), now);
        let _ = writeln!(
            out,
            "  {:<9} {:<23} {:<6} {}",
            e.type_.as_deref().unwrap_or(""),
            e.reason.as_deref().unwrap_or(""),
            when,
            e.message.as_deref().unwrap_or("")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::print::output::fixtures;

    #[test]
    fn shows_archive_url_conditions_findings_warnings_and_events() {
        let mut bundle = fixtures::completed();
        let status = bundle.status.as_mut().unwrap();
        status.warnings = vec!["no node-agent pods".into()];
        status.findings = serde_yaml::from_str(
            "[{severity: error, rule: pvr-stuck, title: PodVolumeRestore r1-x is stuck, \
             file: resources/podvolumerestores.yaml}]",
        )
        .unwrap();
        let event: Event = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "e1"},
            "involvedObject": {},
            "type": "Normal",
            "reason": "Completed",
            "message": "archive uploaded",
            "lastTimestamp": "2026-11-22T11:58:00Z"
        }))
        .unwrap();
        let now: Timestamp = "2026-11-22T12:00:00Z".parse().unwrap();
        let text = describe(&bundle, &[event], now);
        for expected in [
            "Target:           restore/restore-1",
            "Phase:            Completed",
            "  Object:         s3://velero/plugins/velero-debug-operator/bundles/velero/why-restore-failed-u1.tar.gz",
            "  Size:           13.8 KiB (19 files)",
            "  SHA256:         a38dc53a",
            "URL Expires:      2026-11-23T11:56:00Z (in 23h)",
            "  DownloadURLValid   True    URLValid",
            "  - no node-agent pods",
            "Findings:\n  - [error] PodVolumeRestore r1-x is stuck (resources/podvolumerestores.yaml)",
            "  Normal    Completed               2m     archive uploaded",
        ] {
            assert!(text.contains(expected), "{expected:?} not in\n{text}");
        }
        // An events.k8s.io recorder (the operator's) sets only eventTime.
        let recorded: Event = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "e2"},
            "involvedObject": {},
            "type": "Normal",
            "reason": "Started",
            "message": "collecting",
            "eventTime": "2026-11-22T11:55:00.000000Z"
        }))
        .unwrap();
        assert!(
            describe(&bundle, &[recorded], now)
                .contains("  Normal    Started                 5m     collecting"),
            "{}",
            describe(&bundle, &[], now)
        );
        let later: Timestamp = "2026-11-24T00:00:00Z".parse().unwrap();
        assert!(describe(&bundle, &[], later).contains("(expired;"));
        assert!(describe(&bundle, &[], later).ends_with("Events: <none>\n"));
    }
}

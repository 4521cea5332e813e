//! The findings where users already look, built here without I/O: the short list in
//! `status.findings` (and with it the `Finding` column), the note of the Warning event on the
//! Backup or Restore itself, and the metric's labels. summary.md and manifest.json keep every
//! finding with its quote (archive.rs).

use k8s_openapi::api::core::v1::ObjectReference;
use velero_debug_crd::{MAX_STATUS_FINDING_TITLE, MAX_STATUS_FINDINGS, StatusFinding, printable};

use crate::findings::{Finding, text::cap};

/// The reason of the Warning event on the target that names the first finding.
pub(crate) const PROBABLE_CAUSE: &str = "ProbableCause";

/// What the diagnosis of this attempt's archive found, and the Backup or Restore it is about.
#[derive(Debug, Clone)]
pub(crate) struct Diagnosis {
    /// Ranked, most probable cause first (findings::diagnose).
    pub findings: Vec<Finding>,
    /// The Backup or Restore, where the first finding is announced.
    pub target: ObjectReference,
}

/// The top findings, short: no quote; a consequence says of which cause.
pub(crate) fn for_status(findings: &[Finding]) -> Vec<StatusFinding> {
    findings
        .iter()
        .take(MAX_STATUS_FINDINGS)
        .map(|f| {
            let title = match f.consequence_of {
                Some(cause) => format!("{} (consequence of #{cause})", f.title),
                None => f.title.clone(),
            };
            StatusFinding {
                severity: f.severity.as_str().to_string(),
                rule: f.rule.to_string(),
                // Read with kubectl on a terminal: no control character from the evidence.
                title: cap(&printable(&title), MAX_STATUS_FINDING_TITLE),
                file: (!f.file.is_empty()).then(|| cap(&printable(&f.file), 1024)),
                line: f.line.map(|l| i64::try_from(l).unwrap_or(i64::MAX)),
                next_step: f.next_step.as_ref().map(|s| cap(&printable(s), 512)),
            }
        })
        .collect()
}

/// The note of the Warning event on the target: the first finding's title and where to read
/// more. None when nothing was found.
pub(crate) fn probable_cause_note(
    findings: &[Finding],
    bundle_namespace: &str,
    bundle_name: &str,
) -> Option<String> {
    let first = findings.first()?;
    Some(format!(
        "{} (DebugBundle {bundle_namespace}/{bundle_name}, summary.md)",
        printable(&first.title)
    ))
}

/// `(rule, severity)` of every finding, for the metric: each counted once per bundle.
pub(crate) fn metric_labels(findings: &[Finding]) -> impl Iterator<Item = (&str, &str)> {
    findings.iter().map(|f| (f.rule, f.severity.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::{Layer, Severity};

    fn finding(rule: &'static str, title: &str) -> Finding {
        Finding::new(
            Severity::Error,
            Layer::DataPath,
            rule,
            title,
            "a long quote that status never shows",
            "logs/velero/velero-abc/velero.log",
        )
    }

    #[test]
    fn status_keeps_the_top_five_short_with_file_and_line() {
        let mut findings: Vec<Finding> = (0..7)
            .map(|i| finding("pvr-failed", &format!("PodVolumeRestore p{i} failed")))
            .collect();
        findings[0] =
            finding("repository-locked", "the repository of ns1 is locked").at_line(Some(42));
        findings[1].consequence_of = Some(1);
        findings[1].severity = Severity::Warning;
        let status = for_status(&findings);
        assert_eq!(status.len(), MAX_STATUS_FINDINGS);
        assert_eq!(
            status[0],
            StatusFinding {
                severity: "error".into(),
                rule: "repository-locked".into(),
                title: "the repository of ns1 is locked".into(),
                file: Some("logs/velero/velero-abc/velero.log".into()),
                line: Some(42),
                next_step: None,
            }
        );
        assert_eq!(status[1].severity, "warning");
        assert_eq!(
            status[1].title,
            "PodVolumeRestore p1 failed (consequence of #1)"
        );
        assert_eq!(status[4].title, "PodVolumeRestore p4 failed");
        assert!(status.iter().all(|f| !f.title.contains("quote")));
        assert!(for_status(&[]).is_empty());
    }

    #[test]
    fn a_status_title_stays_within_its_bound_with_its_consequence() {
        let mut long = finding("quota-exceeded", "short");
        long.title = "x".repeat(500);
        long.consequence_of = Some(3);
        long.file = String::new();
        let status = for_status(&[long]);
        assert!(status[0].title.chars().count() <= MAX_STATUS_FINDING_TITLE);
        assert!(status[0].title.ends_with('…'), "{}", status[0].title);
        assert_eq!(status[0].file, None);
    }

    #[test]
    fn a_status_title_and_the_event_show_controls_escaped() {
        let hostile = finding("pvr-failed", "PodVolumeRestore \u{1b}[8mp1\u{202e} failed");
        let status = for_status(std::slice::from_ref(&hostile));
        assert_eq!(
            status[0].title,
            "PodVolumeRestore \\u{1b}[8mp1\\u{202e} failed"
        );
        let note = probable_cause_note(&[hostile], "velero", "b1").unwrap();
        assert!(!note.contains(['\u{1b}', '\u{202e}']), "{note:?}");
    }

    #[test]
    fn the_event_names_the_first_finding_and_the_bundle() {
        let findings = [
            finding(
                "bsl-unavailable",
                "BackupStorageLocation default is Unavailable",
            ),
            finding("pvr-failed", "PodVolumeRestore p1 failed"),
        ];
        assert_eq!(
            probable_cause_note(&findings, "velero", "b1").as_deref(),
            Some(
                "BackupStorageLocation default is Unavailable (DebugBundle velero/b1, summary.md)"
            )
        );
        assert_eq!(probable_cause_note(&[], "velero", "b1"), None);
    }

    #[test]
    fn every_finding_is_counted_by_rule_and_severity() {
        let mut warning = finding("already-exists", "3 objects already existed");
        warning.severity = Severity::Warning;
        let findings = [
            finding("pvr-failed", "a"),
            finding("pvr-failed", "b"),
            warning,
        ];
        let labels: Vec<_> = metric_labels(&findings).collect();
        assert_eq!(
            labels,
            [
                ("pvr-failed", "error"),
                ("pvr-failed", "error"),
                ("already-exists", "warning")
            ]
        );
    }
}

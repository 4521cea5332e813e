//! `wait`: follows one DebugBundle (kube's `watch_object`) with a progress bar until it
//! finished. What the bar says and the exit status are pure functions of the status.

use std::time::Duration;

use futures::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use kube::{Api, runtime::watcher::watch_object};
use velero_debug_crd::{CONDITION_READY, DebugBundle, DebugBundleStatus, Phase, printable};

use crate::{exit::ExitStatus, print::output::stderr_is_terminal};

#[derive(Debug, thiserror::Error)]
pub(crate) enum WaitError {
    #[error("DebugBundle {0} not found")]
    NotFound(String),
    #[error("DebugBundle {0} was deleted before it finished")]
    Deleted(String),
    #[error("watching DebugBundle {name}: {source}")]
    Watch {
        name: String,
        source: kube::runtime::watcher::Error,
    },
}

/// How a finished wait ends.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    Completed(Box<DebugBundle>),
    Failed(Box<DebugBundle>),
    TimedOut,
}

impl Outcome {
    pub(crate) fn exit_status(&self) -> ExitStatus {
        match self {
            Outcome::Completed(_) => ExitStatus::Success,
            Outcome::Failed(_) => ExitStatus::BundleFailed,
            Outcome::TimedOut => ExitStatus::TimedOut,
        }
    }
}

/// The finished outcome of a bundle, `None` while it is still under way.
pub(crate) fn finished(bundle: &DebugBundle) -> Option<Outcome> {
    match bundle.status.as_ref()?.phase? {
        Phase::Completed => Some(Outcome::Completed(Box::new(bundle.clone()))),
        Phase::Failed => Some(Outcome::Failed(Box::new(bundle.clone()))),
        _ => None,
    }
}

/// One line for the progress bar: the phase, the Ready condition's reason where it adds to
/// it (Queued, WaitingForTarget, a retry) and the items collected so far.
pub(crate) fn progress_text(status: Option<&DebugBundleStatus>) -> String {
    let Some(status) = status else {
        return "Pending: waiting for the operator".into();
    };
    let phase = format!("{:?}", status.phase.unwrap_or_default());
    let mut text = phase.clone();
    if let Some(reason) = ready_condition(status).map(|c| c.reason.as_str())
        && reason != phase
    {
        text.push_str(&format!(": {reason}"));
    }
    if let Some(p) = &status.progress {
        if let (Some(sent), Some(total)) = (p.bytes_uploaded, p.bytes_total)
            && status.phase == Some(Phase::Uploading)
        {
            text.push_str(&format!(" ({sent}/{total} bytes)"));
        } else if p.items_total > 0 {
            match &p.step {
                Some(step) => text.push_str(&format!(
                    " ({step}, {}/{} steps done)",
                    p.items_done, p.items_total
                )),
                None => text.push_str(&format!(" ({}/{} steps done)", p.items_done, p.items_total)),
            }
        }
    }
    if let Some(attempts) = status.attempts
        && attempts > 1
    {
        text.push_str(&format!(", attempt {attempts}"));
    }
    text
}

fn ready_condition(
    status: &DebugBundleStatus,
) -> Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == CONDITION_READY)
}

/// What `wait` prints for a Failed bundle: reason, message, the findings (a bundle that could
/// not be stored may still have diagnosed its target), then the warnings (what could not be
/// collected).
pub(crate) fn failure_report(bundle: &DebugBundle) -> String {
    let name = bundle.metadata.name.as_deref().unwrap_or("?");
    let mut out = format!("DebugBundle {name} Failed\n");
    if let Some(status) = &bundle.status {
        if let Some(ready) = ready_condition(status) {
            out.push_str(&format!("  reason:  {}\n", ready.reason));
            out.push_str(&format!("  message: {}\n", ready.message));
        }
        if !status.findings.is_empty() {
            out.push_str("  findings:\n");
            for finding in &status.findings {
                out.push_str(&format!(
                    "  - {}\n",
                    crate::print::output::finding_line(finding)
                ));
            }
        }
        if !status.warnings.is_empty() {
            out.push_str("  warnings:\n");
            for warning in &status.warnings {
                out.push_str(&format!("  - {warning}\n"));
            }
        }
    }
    out
}

/// Follows `name` until it finished or `timeout` passed; the bar is drawn on stderr only
/// when stderr is a terminal.
pub(crate) async fn follow(
    api: &Api<DebugBundle>,
    name: &str,
    timeout: Duration,
) -> Result<Outcome, WaitError> {
    let bar = ProgressBar::with_draw_target(Some(1), draw_target());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed:>4} [{bar:30}] {msg}")
            .expect("the template is valid")
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let result = tokio::time::timeout(timeout, watch_until_finished(api, name, &bar)).await;
    bar.finish_and_clear();
    result.unwrap_or(Ok(Outcome::TimedOut))
}

fn draw_target() -> ProgressDrawTarget {
    if stderr_is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}

async fn watch_until_finished(
    api: &Api<DebugBundle>,
    name: &str,
    bar: &ProgressBar,
) -> Result<Outcome, WaitError> {
    let mut seen = false;
    // Without a terminal there is no bar: each new state is one line on stderr, for logs.
    let lines = bar.is_hidden();
    let mut last_text = String::new();
    let mut stream = watch_object(api.clone(), name).boxed();
    while let Some(event) = stream.next().await {
        let event = event.map_err(|source| WaitError::Watch {
            name: name.to_string(),
            source,
        })?;
        let Some(bundle) = event else {
            // The first answer of watch_object is the initial list: None there means absent.
            return Err(if seen {
                WaitError::Deleted(name.to_string())
            } else {
                WaitError::NotFound(name.to_string())
            });
        };
        seen = true;
        if let Some(outcome) = finished(&bundle) {
            return Ok(outcome);
        }
        let status = bundle.status.as_ref();
        if let Some(p) = status.and_then(|s| s.progress.as_ref()) {
            // Steps while collecting, bytes while uploading.
            match (p.bytes_uploaded, p.bytes_total) {
                (Some(sent), Some(total)) if total > 0 => {
                    bar.set_length(total as u64);
                    bar.set_position(sent.max(0) as u64);
                }
                _ if p.items_total > 0 => {
                    bar.set_length(p.items_total as u64);
                    bar.set_position(p.items_done.max(0) as u64);
                }
                _ => {}
            }
        }
        // The reason and step come from the status: shown escaped.
        let text = printable(&progress_text(status)).into_owned();
        if lines && text != last_text {
            eprintln!("{name}: {text}");
        }
        bar.set_message(text.clone());
        last_text = text;
    }
    Err(WaitError::Deleted(name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{cluster::api_mock, print::output::fixtures};

    #[test]
    fn progress_text_follows_the_status() {
        assert_eq!(progress_text(None), "Pending: waiting for the operator");
        let mut status = fixtures::completed().status.unwrap();
        status.phase = Some(Phase::Pending);
        status.conditions[0].reason = "Queued".into();
        status.progress = None;
        assert_eq!(progress_text(Some(&status)), "Pending: Queued");
        status.phase = Some(Phase::Collecting);
        status.conditions[0].reason = "Collecting".into();
        status.progress = Some(velero_debug_crd::Progress {
            items_done: 3,
            items_total: 7,
            step: Some("cluster-state".into()),
            ..Default::default()
        });
        status.attempts = Some(2);
        assert_eq!(
            progress_text(Some(&status)),
            "Collecting (cluster-state, 3/7 steps done), attempt 2"
        );
        status.phase = Some(Phase::Uploading);
        status.conditions[0].reason = "Uploading".into();
        status.attempts = None;
        status.progress = Some(velero_debug_crd::Progress {
            items_done: 7,
            items_total: 7,
            step: Some("upload".into()),
            bytes_uploaded: Some(8_388_608),
            bytes_total: Some(20_000_000),
        });
        assert_eq!(
            progress_text(Some(&status)),
            "Uploading (8388608/20000000 bytes)"
        );
    }

    #[test]
    fn exit_status_from_the_phase() {
        let mut bundle = fixtures::completed();
        assert_eq!(
            finished(&bundle).unwrap().exit_status(),
            ExitStatus::Success
        );
        bundle.status.as_mut().unwrap().phase = Some(Phase::Failed);
        assert_eq!(
            finished(&bundle).unwrap().exit_status(),
            ExitStatus::BundleFailed
        );
        for phase in [Phase::Pending, Phase::Collecting, Phase::Uploading] {
            bundle.status.as_mut().unwrap().phase = Some(phase);
            assert_eq!(finished(&bundle), None, "{phase:?}");
        }
        bundle.status = None;
        assert_eq!(finished(&bundle), None);
        assert_eq!(Outcome::TimedOut.exit_status(), ExitStatus::TimedOut);
    }

    fn bundle_json(phase: &str, resource_version: &str) -> serde_json::Value {
        let mut bundle = fixtures::completed();
        bundle.metadata.resource_version = Some(resource_version.into());
        let mut value = serde_json::to_value(bundle).unwrap();
        value["status"]["phase"] = phase.into();
        value
    }

    fn api(client: kube::Client) -> Api<DebugBundle> {
        Api::namespaced(client, "velero")
    }

    #[tokio::test]
    async fn follows_a_bundle_to_its_end() {
        let (client, server) = api_mock::client(
            vec![bundle_json("Collecting", "11")],
            vec![
                api_mock::event("MODIFIED", bundle_json("Uploading", "12")),
                api_mock::event("MODIFIED", bundle_json("Failed", "13")),
            ],
        );
        let outcome = follow(&api(client), "why-restore-failed", Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(outcome.exit_status(), ExitStatus::BundleFailed);
        server.abort();
    }

    #[tokio::test]
    async fn times_out_when_nothing_changes() {
        let (client, _server) = api_mock::client(vec![bundle_json("Collecting", "11")], vec![]);
        let outcome = follow(
            &api(client),
            "why-restore-failed",
            Duration::from_millis(300),
        )
        .await
        .unwrap();
        assert_eq!(outcome, Outcome::TimedOut);
    }

    #[tokio::test]
    async fn a_missing_bundle_is_not_found() {
        let (client, _server) = api_mock::client(vec![], vec![]);
        let err = follow(&api(client), "nope", Duration::from_secs(10))
            .await
            .unwrap_err();
        assert!(
            matches!(err, WaitError::NotFound(ref n) if n == "nope"),
            "{err}"
        );
    }

    #[test]
    fn a_failure_report_names_reason_message_findings_and_warnings() {
        let mut bundle = fixtures::completed();
        let status = bundle.status.as_mut().unwrap();
        status.phase = Some(Phase::Failed);
        status.conditions[0].reason = "StorageLocationReadOnly".into();
        status.conditions[0].message = "BSL default is ReadOnly".into();
        status.warnings = vec!["no restore log".into()];
        status.findings = serde_yaml::from_str(
            "[{severity: error, rule: bsl-unavailable, title: BSL default is Unavailable, \
             file: logs/velero/velero.log, line: 12}]",
        )
        .unwrap();
        assert_eq!(
            failure_report(&bundle),
            "DebugBundle why-restore-failed Failed\n  reason:  StorageLocationReadOnly\n  \
             message: BSL default is ReadOnly\n  findings:\n  - [error] BSL default is \
             Unavailable (logs/velero/velero.log:12)\n  warnings:\n  - no restore log\n"
        );
    }
}

//! The server rule read from the server's own last words, on shapes it was not written from:
//! a flag of another Velero version (the env's 1.14 server given 1.18's
//! `--repo-maintenance-job-configmap` says so, cobra's wording), a JSON fatal line, and a kill
//! for memory, which its words do not explain.

use serde_json::json;

use crate::findings::{
    Evidence, Severity, diagnose,
    evidence::PodRole,
    log_scan::{LogRole, LogScan, LogSource},
};

const POD: &str = "velero-7d9c6b5f4-x2x9q";

fn restarted_server(last: serde_json::Value, previous: &str) -> Evidence {
    let mut e = Evidence::default();
    e.set_target(
        "resources/backup.yaml",
        &json!({"kind": "Backup", "metadata": {"name": "b1", "namespace": "velero"},
                "status": {"phase": "Failed"}}),
    );
    e.add_pod(
        &format!("pods/{POD}.yaml"),
        PodRole::Server,
        &json!({"metadata": {"name": POD}, "spec": {"nodeName": "node-1"},
                "status": {"phase": "Running", "containerStatuses": [
                    {"name": "velero", "restartCount": 3, "lastState": {"terminated": last}}]}}),
    );
    let mut scan = LogScan::new(LogSource {
        path: format!("logs/velero/{POD}/velero.previous.log"),
        role: LogRole::Server,
        pod: Some(POD.into()),
        node: Some("node-1".into()),
        previous: true,
    });
    scan.offer_lines(previous);
    e.add_log_scan(scan);
    e
}

#[test]
fn a_server_that_names_a_flag_it_does_not_have_is_told_to_match_image_and_arguments() {
    let e = restarted_server(
        json!({"reason": "Error", "exitCode": 1}),
        "Error: unknown flag: --repo-maintenance-job-configmap\nUsage:\n  velero server [flags]\n",
    );
    let found = diagnose(&e);
    let first = &found[0];
    assert_eq!(first.rule, "velero-server-restarted");
    // No trace on this operation: old news, however clear its words.
    assert_eq!(first.severity, Severity::Warning);
    assert!(
        first
            .title
            .ends_with("(Error): Error: unknown flag: --repo-maintenance-job-configmap"),
        "{}",
        first.title
    );
    assert_eq!(first.line, Some(1));
    let step = first.next_step.as_deref().unwrap_or_default();
    assert!(
        step.contains("`--repo-maintenance-job-configmap`") && step.contains("deployment velero"),
        "{step}"
    );
}

#[test]
fn a_fatal_json_line_is_quoted_and_a_kill_for_memory_keeps_its_reason() {
    let fatal = "{\"level\":\"info\",\"msg\":\"starting\"}\n{\"level\":\"fatal\",\"msg\":\"failed to get the backup storage location client\",\"error\":\"no credentials\"}\n";
    let found = diagnose(&restarted_server(
        json!({"reason": "Error", "exitCode": 1}),
        fatal,
    ));
    assert_eq!(
        found[0].quote,
        "failed to get the backup storage location client: no credentials"
    );
    assert_eq!(
        found[0].file,
        format!("logs/velero/{POD}/velero.previous.log")
    );
    let oom = restarted_server(json!({"reason": "OOMKilled", "exitCode": 137}), fatal);
    let found = diagnose(&oom);
    assert_eq!(found[0].title, "The Velero server restarted (OOMKilled)");
    assert!(
        found[0]
            .next_step
            .as_deref()
            .is_some_and(|s| s.contains("memory"))
    );
}

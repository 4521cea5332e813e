//! Data-path rules on evidence built in the test. The node-agent rule read from the
//! component's own last words, on shapes other than the one
//! it was written from (Velero 1.18's cobra line for the host-pods folder): the same cause in
//! Velero's `An error occurred:` wording, another cause (a flag of another version, as a 1.14
//! node-agent given 1.17's `--kubelet-root-dir` says it), an unknown fatal in JSON, a restart
//! that interrupted work, and a kill for memory, which its words do not explain.

use serde_json::json;

use crate::findings::rules::tests::rules_of;
use crate::findings::{
    Evidence, Severity, diagnose,
    evidence::PodRole,
    log_scan::{LogRole, LogScan, LogSource},
};

const POD: &str = "node-agent-x7k2p";

/// A Backup InProgress with a PodVolumeBackup on node-real, and the node-agent pod there in
/// `state`, whose previous log is `previous`.
fn evidence(state: serde_json::Value, previous: &str) -> Evidence {
    let mut e = Evidence::default();
    e.set_target(
        "resources/backup.yaml",
        &json!({"kind": "Backup", "metadata": {"name": "b1", "namespace": "velero"},
                "status": {"phase": "InProgress"}}),
    );
    e.add_operation(
        "resources/podvolumebackup/b1-x.yaml",
        "PodVolumeBackup",
        &json!({"kind": "PodVolumeBackup", "metadata": {"name": "b1-x", "namespace": "velero"},
                "spec": {"node": "node-real"}, "status": {}}),
    );
    let mut container = json!({"name": "node-agent", "restartCount": 4});
    for (k, v) in state.as_object().unwrap() {
        container[k] = v.clone();
    }
    e.add_pod(
        &format!("pods/{POD}.yaml"),
        PodRole::NodeAgent,
        &json!({"metadata": {"name": POD}, "spec": {"nodeName": "node-real"},
                "status": {"phase": "Running", "containerStatuses": [container]}}),
    );
    let mut scan = LogScan::new(LogSource {
        path: format!("logs/node-agent/{POD}/node-agent.previous.log"),
        role: LogRole::NodeAgent,
        pod: Some(POD.into()),
        node: Some("node-real".into()),
        previous: true,
    });
    scan.offer_lines(previous);
    e.add_log_scan(scan);
    e
}

fn crash_looping() -> serde_json::Value {
    json!({"state": {"waiting": {"reason": "CrashLoopBackOff"}},
           "lastState": {"terminated": {"reason": "Error", "exitCode": 1}}})
}

const START: &str = "time=\"2026-11-29T07:00:00Z\" level=info msg=\"Starting Velero node-agent server v1.18.3 (abc)\" logSource=\"pkg/cmd/cli/nodeagent/server.go:190\"\n";

#[test]
fn the_host_pods_folder_is_named_in_either_wording() {
    for exit in [
        "velero: unexpected directory structure for host-pods volume, ensure that the host-pods volume corresponds to the pods subdirectory of the kubelet root directory\n",
        "An error occurred: unexpected directory structure for host-pods volume, ensure that the host-pods volume corresponds to the pods subdirectory of the kubelet root directory\n",
    ] {
        let found = diagnose(&evidence(crash_looping(), &format!("{START}{exit}")));
        let first = &found[0];
        assert_eq!(first.rule, "node-agent-restarted", "{found:#?}");
        assert_eq!(
            first.title,
            "node-agent on node node-real cannot start: its host-pods volume is not the kubelet's pods folder"
        );
        assert_eq!(first.quote, exit.trim());
        assert_eq!(first.line, Some(2));
        assert_eq!(first.severity, Severity::Error);
        let step = first.next_step.as_deref().unwrap_or_default();
        assert!(
            step.contains("--kubelet-root-dir") && step.contains("host-pods"),
            "{step}"
        );
        assert!(!step.contains("were canceled"), "{step}");
    }
}

#[test]
fn a_flag_of_another_version_is_named_with_the_flag() {
    let log = "Error: unknown flag: --kubelet-root-dir\nUsage:\n  velero node-agent server [flags]\n\nFlags:\n  -h, --help   help for server\n      --log-level   the level\n";
    let found = diagnose(&evidence(crash_looping(), log));
    assert!(
        found[0]
            .title
            .ends_with("its arguments name a flag its Velero does not have (--kubelet-root-dir)"),
        "{}",
        found[0].title
    );
    assert_eq!(found[0].quote, "Error: unknown flag: --kubelet-root-dir");
    let step = found[0].next_step.as_deref().unwrap_or_default();
    assert!(
        step.contains("`--kubelet-root-dir`") && step.contains("image"),
        "{step}"
    );
}

#[test]
fn an_unknown_fatal_is_quoted_as_a_crash_loop_not_a_restart() {
    let log = concat!(
        "{\"level\":\"info\",\"msg\":\"Starting\"}\n",
        "{\"level\":\"fatal\",\"msg\":\"failed to create the data path manager\",\"error\":\"open /host_plugins: permission denied\"}\n"
    );
    let found = diagnose(&evidence(crash_looping(), log));
    assert_eq!(
        found[0].title,
        "node-agent on node node-real crash-loops: failed to create the data path manager: open /host_plugins: permission denied"
    );
    let step = found[0].next_step.as_deref().unwrap_or_default();
    assert!(
        step.contains("exits as it starts") && step.contains("logs node-agent-x7k2p --previous"),
        "{step}"
    );
}

#[test]
fn a_restart_that_interrupted_work_and_a_kill_for_memory_keep_their_own_words() {
    let running = json!({"state": {"running": {}},
        "lastState": {"terminated": {"reason": "Error", "exitCode": 2}}});
    let panic = format!(
        "{START}panic: runtime error: index out of range [3] with length 3\n\ngoroutine 812 [running]:\n"
    );
    let found = diagnose(&evidence(running, &panic));
    assert_eq!(
        found[0].title,
        "node-agent on node node-real restarted after a panic"
    );
    assert!(
        found[0]
            .quote
            .starts_with("panic: runtime error: index out of range")
    );
    assert!(
        found[0]
            .next_step
            .as_deref()
            .is_some_and(|s| s.contains("were canceled"))
    );
    // Killed for memory: its log's last error is no explanation; the termination is.
    let oom = json!({"state": {"running": {}},
        "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}});
    let log = format!("{START}time=\"t\" level=error msg=\"an old error\"\n");
    let found = diagnose(&evidence(oom, &log));
    assert_eq!(rules_of(&found)[0], "node-agent-restarted");
    assert_eq!(
        found[0].title,
        "node-agent on node node-real restarted after OOMKilled"
    );
    assert!(
        found[0]
            .next_step
            .as_deref()
            .is_some_and(|s| s.contains("more memory"))
    );
}

//! Data-path rules: on the fixtures (operator/testdata/findings/), and on evidence built in the
//! test. The node-agent rule read from the component's own last words, on shapes other than the one
//! it was written from (Velero 1.18's cobra line for the host-pods folder): the same cause in
//! Velero's `An error occurred:` wording, another cause (a flag of another version, as a 1.14
//! node-agent given 1.17's `--kubelet-root-dir` says it), an unknown fatal in JSON, a restart
//! that interrupted work, and a kill for memory, which its words do not explain.

use serde_json::json;

use crate::findings::{
    Evidence, Severity, diagnose,
    evidence::PodRole,
    infrastructure::tests::load_infrastructure,
    log_scan::{LogRole, LogScan, LogSource},
    rules::tests::{load, rules_of},
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

#[test]
fn a_node_agent_panic_explains_the_failed_volume_on_its_node() {
    let found = diagnose(&load("node-agent-panic"));
    assert_eq!(
        rules_of(&found),
        ["node-agent-restarted", "volume-operation-failed"]
    );
    let panic = &found[0];
    assert!(panic.title.contains("node-1") && panic.title.contains("panic"));
    assert!(panic.quote.starts_with("panic: runtime error"));
    assert_eq!(
        panic.file,
        "logs/node-agent/node-agent-abcde/node-agent.previous.log"
    );
    assert_eq!(panic.line, Some(3));
    assert!(
        panic
            .explains
            .contains(&"PodVolumeRestore/after-panic-x1".to_string())
    );
    assert_eq!(found[1].consequence_of, Some(1));
}

#[test]
fn an_uninitialized_repository_explains_the_failed_pod_volume_backup() {
    let found = diagnose(&load("repository-not-initialized"));
    assert_eq!(
        rules_of(&found),
        ["repository-not-initialized", "volume-operation-failed"]
    );
    assert_eq!(found[0].file, "resources/podvolumebackup/fsb-q8x7z.yaml");
    assert_eq!(found[1].consequence_of, Some(1));
}

#[test]
fn a_changed_repository_password_names_the_repository_and_its_secret() {
    let found = diagnose(&load_infrastructure("repository-password-invalid"));
    assert_eq!(
        rules_of(&found),
        ["repository-password-invalid", "volume-operation-failed"]
    );
    assert_eq!(
        found[0].title,
        "BackupRepository pw1-real-node-kopia refuses the repository password (1 mention)"
    );
    let step = found[0].next_step.as_deref().unwrap_or_default();
    assert!(
        step.contains("velero-repo-credentials")
            && step.contains("repository-password")
            && step.contains("delete backuprepository pw1-real-node-kopia"),
        "{step}"
    );
    assert_eq!(found[1].consequence_of, Some(1));
}

/// A restic repository (Velero 1.14 to 1.16 still run them) says it in restic's words; the next
/// step names the repository's own folder.
#[test]
fn restic_s_wrong_password_names_the_repository_and_its_restic_folder() {
    let mut e = crate::findings::Evidence::default();
    e.set_target(
        "resources/backup.yaml",
        &serde_json::json!({"kind": "Backup", "metadata": {"name": "b1", "namespace": "velero"},
            "status": {"phase": "PartiallyFailed"}}),
    );
    e.add_operation(
        "resources/podvolumebackup/b1-x.yaml",
        "PodVolumeBackup",
        &serde_json::json!({"kind": "PodVolumeBackup",
            "metadata": {"name": "b1-x", "namespace": "velero"},
            "spec": {"node": "node-a", "pod": {"namespace": "shop", "name": "db-0"}},
            "status": {"phase": "Failed", "message": "error running restic backup command \
                restic backup --repo=s3:http://s3/velero/restic/shop with error: exit status 1 \
                stderr: Fatal: wrong password or no key found\n"}}),
    );
    e.infra.add_repository(
        "resources/backuprepository/shop-default-restic.yaml",
        &serde_json::json!({"metadata": {"name": "shop-default-restic"},
            "spec": {"volumeNamespace": "shop", "backupStorageLocation": "default",
                     "repositoryType": "restic"},
            "status": {"phase": "Ready"}}),
    );
    let found = diagnose(&e);
    assert_eq!(found[0].rule, "repository-password-invalid", "{found:?}");
    let step = found[0].next_step.as_deref().unwrap_or_default();
    assert!(
        step.contains("delete backuprepository shop-default-restic")
            && step.contains("its folder (restic/VOLUME-NAMESPACE"),
        "{step}"
    );
}

#[test]
fn a_data_path_pod_the_node_rejects_is_named_before_velero_s_diagnosis() {
    let found = diagnose(&load_infrastructure("data-path-pod-rejected"));
    assert_eq!(found[0].rule, "data-path-pod-rejected", "{found:?}");
    assert_eq!(
        found[0].title,
        "A data-path pod was rejected by its node node-real: Node didn't have enough resource: cpu (3 mentions)"
    );
    assert!(
        found[0]
            .explains
            .contains(&"PodVolumeBackup/cpu1-a-5v5nw".to_string()),
        "{:?}",
        found[0].explains
    );
    let step = found[0].next_step.as_deref().unwrap_or_default();
    assert!(
        step.contains("edit configmap vdo-node-agent-config")
            && step.contains("kubectl describe node node-real"),
        "{step}"
    );
    assert!(rules_of(&found).contains(&"expose-diagnosis"));
}

#[test]
fn a_missing_node_agent_is_named_from_text_and_json_logs() {
    let e = load("node-agent-missing");
    let found = diagnose(&e);
    // The log's plain timeout line also says no content answered the snapshot: that is a
    // second cause, and the timeout is its consequence.
    assert_eq!(
        rules_of(&found),
        [
            "node-agent-missing",
            "volume-snapshot-not-reconciled",
            "csi-snapshot-timeout"
        ]
    );
    assert_eq!(found[0].title, "No running node-agent on node worker-3");
    assert!(found[0].explains.contains(&"node/worker-3".to_string()));
    // Nothing says why node-agent is missing there: no next step rather than a guess.
    assert_eq!(found[0].next_step, None);
    let step = found[2].next_step.as_deref().unwrap_or_default();
    assert!(step.contains("finding 2"), "{step}");
    // From the JSON-format log, with its line.
    assert_eq!(found[1].file, "object-store/backup.log");
    assert_eq!(found[1].line, Some(3));
    // The warning line no rule knows is kept for the summary.
    assert_eq!(e.log_lines.len(), 1);
    assert_eq!(
        e.log_lines[0].1.message,
        "Volume snapshot class not found, using default"
    );
}

#[test]
fn a_node_agent_missing_is_named_by_the_node_the_line_names_not_the_node_of_its_log() {
    // The Velero server's pod runs on node-0; its line is about the volume's node.
    let mut e = load("node-agent-missing");
    let mut scan = LogScan::new(LogSource {
        path: "logs/velero/velero-abc/velero.log".into(),
        role: LogRole::Server,
        pod: Some("velero-abc".into()),
        node: Some("node-0".into()),
        previous: false,
    });
    scan.offer(r#"time="2026-11-27T19:35:49Z" level=warning msg="Skip pod volume data" error="daemonset pod not found in running state in node worker-3" logSource="pkg/podvolume/backupper.go:300""#);
    e.add_log_scan(scan);
    let found = diagnose(&e);
    let missing: Vec<&str> = found
        .iter()
        .filter(|f| f.rule == "node-agent-missing")
        .map(|f| f.title.as_str())
        .collect();
    assert_eq!(missing, ["No running node-agent on node worker-3"]);
}

#[test]
fn a_node_without_a_node_agent_pod_is_named_from_the_operations() {
    let mut e = load("repository-not-initialized");
    e.set_node_agent_nodes(["node-1".to_string()]);
    let found = diagnose(&e);
    assert_eq!(found[0].rule, "node-agent-missing");
    assert!(
        found[0].quote.contains("PodVolumeBackup/fsb-q8x7z"),
        "{}",
        found[0].quote
    );
}

/// Velero's message about a failed operation that stops at its colon (1.17+'s `data path
/// backup failed: ` when its data-path pod died) is completed by the data-path pod's own last
/// words; a DataUpload's pod (another kind, another wording) the same way.
#[test]
fn a_message_cut_at_its_colon_is_completed_by_the_data_path_pods_last_words() {
    for (kind, name, message, log, said) in [
        (
            "PodVolumeBackup",
            "b1-x",
            "data path backup failed: ",
            "time=\"t\" level=info msg=\"Running data path\"\ntime=\"t\" level=error msg=\"Failed to run data path\" error=\"error to open source: open /host_pods/abc/volumes: no such file or directory\"\n",
            "Failed to run data path: error to open source: open /host_pods/abc/volumes: no such file or directory",
        ),
        (
            "DataUpload",
            "b1-du",
            "",
            "{\"level\":\"info\",\"msg\":\"start\"}\n{\"level\":\"fatal\",\"msg\":\"cannot create the uploader\",\"error\":\"unsupported uploader type\"}\n",
            "cannot create the uploader: unsupported uploader type",
        ),
    ] {
        let mut e = Evidence::default();
        e.set_target(
            "resources/backup.yaml",
            &json!({"kind": "Backup", "metadata": {"name": "b1", "namespace": "velero"},
                    "status": {"phase": "PartiallyFailed"}}),
        );
        e.add_operation(
            &format!("resources/{}/{name}.yaml", kind.to_lowercase()),
            kind,
            &json!({"kind": kind, "metadata": {"name": name, "namespace": "velero"},
                    "spec": {"node": "node-real"},
                    "status": {"phase": "Failed", "message": message, "node": "node-real"}}),
        );
        let mut scan = LogScan::new(LogSource {
            path: format!("logs/data-path/{name}/{name}.log"),
            role: LogRole::DataPath,
            pod: Some(name.into()),
            node: Some("node-real".into()),
            previous: false,
        });
        scan.offer_lines(log);
        e.add_log_scan(scan);
        let found = diagnose(&e);
        let failed = found
            .iter()
            .find(|f| f.rule == "volume-operation-failed")
            .expect("the failed operation");
        assert!(
            failed
                .quote
                .ends_with(&format!("its data-path pod's last words: {said}")),
            "{kind}: {}",
            failed.quote
        );
        assert_eq!(failed.file, format!("logs/data-path/{name}/{name}.log"));
        assert_eq!(failed.line, Some(2));
    }
}

/// When the previous instance's log was not read, the current log's exit line (the same start
/// failing) still explains a node-agent that restarted.
#[test]
fn the_current_logs_exit_line_stands_in_for_a_previous_log_not_read() {
    let mut e = evidence(
        json!({"state": {"running": {}},
               "lastState": {"terminated": {"reason": "Error", "exitCode": 1}}}),
        "",
    );
    let mut scan = LogScan::new(LogSource {
        path: format!("logs/node-agent/{POD}/node-agent.log"),
        role: LogRole::NodeAgent,
        pod: Some(POD.into()),
        node: Some("node-real".into()),
        previous: false,
    });
    scan.offer_lines(&format!(
        "{START}An error occurred: unexpected directory structure for host-pods volume, ensure ...\n"
    ));
    e.add_log_scan(scan);
    let found = diagnose(&e);
    assert!(
        found[0].title.contains("host-pods volume"),
        "{}",
        found[0].title
    );
    assert_eq!(
        found[0].file,
        format!("logs/node-agent/{POD}/node-agent.log")
    );
}

/// A kubelet of 1.36 shows a crash loop's back-off as the container terminated in error (not
/// waiting in CrashLoopBackOff): still a crash loop, told apart from a restart.
#[test]
fn a_container_terminated_in_error_after_restarts_is_a_crash_loop() {
    let log = concat!(
        "{\"level\":\"info\",\"msg\":\"Starting\"}\n",
        "{\"level\":\"fatal\",\"msg\":\"failed to start\",\"error\":\"no route to host\"}\n"
    );
    let ended = json!({"state": {"terminated": {"reason": "Error", "exitCode": 1}},
                       "lastState": {"terminated": {"reason": "Error", "exitCode": 1}}});
    let found = diagnose(&evidence(ended, log));
    assert!(
        found[0]
            .title
            .contains("crash-loops: failed to start: no route to host"),
        "{}",
        found[0].title
    );
}

//! Rule tests on the data-path infrastructure: nodes and the node-agent DaemonSet, backup
//! repositories and their maintenance, VolumeSnapshotContents, a restore's backup's results.
//! Each case (operator/testdata/findings/<case>/) is loaded as [`load`] loads it, with the
//! infrastructure files fed as the collect step feeds them: the DaemonSet before the nodes,
//! jobs before their pods. Then what the evidence keeps of each object, before any rule reads
//! it.

use std::path::Path;

use serde_json::{Value, json};

use super::maintenance_error;
use crate::findings::{
    rules::tests::{case_dir, load, rules_of, yaml_docs},
    *,
};

fn name(obj: &Value) -> &str {
    obj["metadata"]["name"].as_str().unwrap()
}

/// The results of a restore's backup, as object-store/backup-results.json.
fn feed_backup_results(e: &mut Evidence, file: &Path) {
    let Ok(text) = std::fs::read_to_string(file) else {
        return;
    };
    let results: Value = serde_json::from_str(&text).unwrap();
    for (severity, scopes) in results.as_object().into_iter().flatten() {
        for (ns, messages) in scopes["namespaces"].as_object().into_iter().flatten() {
            for m in messages.as_array().into_iter().flatten() {
                e.backup_results.add(
                    "object-store/backup-results.json",
                    severity,
                    &format!("namespace {ns}"),
                    m.as_str().unwrap(),
                );
            }
        }
    }
}

pub(in crate::findings) fn load_infrastructure(case: &str) -> Evidence {
    let mut e = load(case);
    let dir = case_dir(case);
    if let Some(ds) = yaml_docs(&dir.join("daemonset.yaml")).first() {
        e.infra
            .set_node_agent_daemonset("resources/daemonset-node-agent.yaml", ds);
    }
    for pod in yaml_docs(&dir.join("pods.yaml")) {
        if pod["metadata"]["labels"]["role"] == "node-agent" {
            e.infra.add_node_agent_pod(&pod);
        }
    }
    let nodes = yaml_docs(&dir.join("nodes.yaml"));
    for node in &nodes {
        let path = if e.involved_nodes.contains(name(node)) {
            format!("resources/node/{}.yaml", name(node))
        } else {
            NODES_TABLE.to_string()
        };
        e.infra.add_node(&path, node);
    }
    e.infra.all_nodes_listed = !nodes.is_empty();
    for repo in yaml_docs(&dir.join("repositories.yaml")) {
        let path = format!("resources/backuprepository/{}.yaml", name(&repo));
        e.infra.add_repository(&path, &repo);
    }
    for job in yaml_docs(&dir.join("jobs.yaml")) {
        e.infra
            .add_maintenance_job(&format!("resources/job/{}.yaml", name(&job)), &job);
    }
    for pod in yaml_docs(&dir.join("maintenance-pods.yaml")) {
        e.infra
            .add_maintenance_pod(&format!("pods/{}.yaml", name(&pod)), &pod);
    }
    for content in yaml_docs(&dir.join("snapshotcontents.yaml")) {
        let path = format!("resources/volumesnapshotcontent/{}.yaml", name(&content));
        e.infra.add_snapshot_content(&path, &content);
    }
    feed_backup_results(&mut e, &dir.join("backup-results.json"));
    e
}

#[test]
fn a_node_agent_kept_off_a_node_by_a_taint_is_named_with_the_taint() {
    let e = load_infrastructure("node-agent-tainted");
    let found = diagnose(&e);
    assert_eq!(rules_of(&found), ["node-agent-missing"]);
    let missing = &found[0];
    assert_eq!(
        missing.title,
        "No running node-agent on node worker-3: DaemonSet node-agent cannot run there: taint dedicated=db:NoSchedule is not tolerated"
    );
    // The proof of the symptom is Velero's own word.
    assert_eq!(
        missing.quote,
        "daemonset pod not found in running state in node worker-3"
    );
    assert_eq!(missing.file, "object-store/results.json");
    assert!(missing.explains.contains(&"node/worker-3".to_string()));
    // The fix for a taint: a toleration, where the Helm chart and the DaemonSet take it.
    let step = missing.next_step.as_deref().unwrap_or_default();
    assert!(
        step.starts_with("Let DaemonSet velero/node-agent tolerate the taint of node worker-3")
            && step.contains("nodeAgent.tolerations")
            && step.contains("kubectl -n velero edit daemonset node-agent"),
        "{step}"
    );
    // worker-1's taint is tolerated by the template, worker-2 has none.
    for fine in ["worker-1", "worker-2"] {
        assert!(e.infra.nodes[fine].agent_blockers.is_empty(), "{fine}");
    }
}

#[test]
fn a_node_without_node_agent_says_whether_it_is_not_ready_gone_or_its_pod_failing() {
    let title = |e: &Evidence| diagnose(e)[0].title.clone();
    let mut e = load_infrastructure("node-agent-tainted");
    // NotReady comes before the taint: the node itself is down.
    let worker3 = e.infra.nodes.get_mut("worker-3").unwrap();
    worker3.ready = "False".into();
    worker3.ready_detail = "KubeletNotReady: PLEG is not healthy".into();
    assert!(
        title(&e)
            .ends_with("worker-3: the node is NotReady (KubeletNotReady: PLEG is not healthy)"),
        "{}",
        title(&e)
    );
    // Its pod is there but crashing.
    e.infra.nodes.get_mut("worker-3").unwrap().ready = "True".into();
    e.infra.add_node_agent_pod(&serde_json::json!({
        "metadata": {"name": "node-agent-zz9xk"}, "spec": {"nodeName": "worker-3"},
        "status": {"phase": "Running", "containerStatuses": [
            {"state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}
    }));
    // Velero counts a Running pod as running even when its container crash-loops: the
    // node-agent pod is not what failed here, the taint still is.
    assert!(
        title(&e).contains("taint dedicated=db:NoSchedule"),
        "{}",
        title(&e)
    );
    e.infra.node_agent_pods.get_mut("worker-3").unwrap().running = false;
    e.infra.node_agent_pods.get_mut("worker-3").unwrap().phase = "Pending".into();
    assert!(
        title(&e).ends_with(
            "worker-3: its node-agent pod node-agent-zz9xk is Pending, CrashLoopBackOff"
        ),
        "{}",
        title(&e)
    );
    // Gone from a complete list of nodes.
    e.infra.nodes.remove("worker-3");
    assert!(
        title(&e).ends_with("worker-3: the node no longer exists"),
        "{}",
        title(&e)
    );
    // Not listed at all (no right to list nodes, say): nothing is claimed.
    e.infra.all_nodes_listed = false;
    e.infra.node_agent_pods.clear();
    assert_eq!(title(&e), "No running node-agent on node worker-3");
}

/// A node-agent pod the kubelet cannot make is explained by the kubelet's message, not by
/// its reason alone: a mount that is not shared (containerd's wording on the real node), and
/// on another shape, a Secret its template names that does not exist.
#[test]
fn a_node_agent_pod_that_cannot_be_made_is_explained_by_the_kubelets_message() {
    let cases = [
        (
            "CreateContainerError",
            "failed to generate container \"0f1e\" spec: failed to apply OCI options: path \"/var/lib/kubelet/pods\" is mounted on \"/\" but it is not a shared or slave mount",
            "mount --make-rshared /",
        ),
        (
            "CreateContainerConfigError",
            "secret \"cloud-credentials\" not found",
            "names secret cloud-credentials, which does not exist",
        ),
    ];
    for (reason, message, fix) in cases {
        let mut e = load_infrastructure("node-agent-tainted");
        e.infra
            .nodes
            .get_mut("worker-3")
            .unwrap()
            .agent_blockers
            .clear();
        e.infra.add_node_agent_pod(&serde_json::json!({
            "metadata": {"name": "node-agent-zz9xk"}, "spec": {"nodeName": "worker-3"},
            "status": {"phase": "Pending", "containerStatuses": [
                {"state": {"waiting": {"reason": reason, "message": message}}}]}
        }));
        let found = diagnose(&e);
        let first = &found[0];
        assert_eq!(first.rule, "node-agent-missing");
        // The title is cut at its length; the quote says the message whole.
        let said = format!("its node-agent pod node-agent-zz9xk is Pending, {reason}: ");
        assert!(first.title.contains(&said), "{}", first.title);
        // Within the quote's 200 bytes, the cause the message ends with, after Velero's words.
        let cause = message.rsplit(": ").next().unwrap_or(message);
        assert!(
            first
                .quote
                .starts_with("daemonset pod not found in running state in node worker-3; ")
                && first.quote.ends_with(cause),
            "{}",
            first.quote
        );
        let step = first.next_step.as_deref().unwrap_or_default();
        assert!(step.contains(fix), "{step}");
        assert!(!step.contains("describe pod"), "{step}");
    }
}

#[test]
fn a_node_that_ran_a_volume_without_node_agent_points_at_the_nodes_table() {
    let mut e = load_infrastructure("node-agent-tainted");
    e.add_operation(
        "resources/podvolumerestore/r-1.yaml",
        "PodVolumeRestore",
        &serde_json::json!({"metadata": {"name": "r-1"},
            "spec": {"pod": {"namespace": "shop", "name": "db-0"}, "volume": "data"},
            "status": {"phase": "InProgress", "node": "worker-3"}}),
    );
    e.node_agent_nodes = Some(["worker-1".to_string(), "worker-2".to_string()].into());
    // No Velero message this time: the operations and the nodes say it.
    e.results = Default::default();
    let found = diagnose(&e);
    assert_eq!(found[0].rule, "node-agent-missing");
    assert!(
        found[0].quote.starts_with(
            "DaemonSet node-agent cannot run there: taint dedicated=db:NoSchedule is not tolerated; no node-agent pod runs on node worker-3"
        ),
        "{}",
        found[0].quote
    );
    assert_eq!(found[0].file, NODES_TABLE);
}

#[test]
fn a_not_ready_repository_is_quoted_from_its_status() {
    let found = diagnose(&load_infrastructure("repository-not-ready"));
    assert_eq!(rules_of(&found), ["repository-not-ready"]);
    let repo = &found[0];
    assert_eq!(repo.severity, Severity::Error);
    assert_eq!(
        repo.title,
        "BackupRepository shop-default-kopia-x7d2m (kopia repository of namespace shop) is NotReady"
    );
    assert!(repo.quote.ends_with("Access Denied"), "{}", repo.quote);
    assert_eq!(
        repo.file,
        "resources/backuprepository/shop-default-kopia-x7d2m.yaml"
    );
}

#[test]
fn a_repository_not_ready_of_no_concern_to_the_target_is_a_warning() {
    let mut e = load_infrastructure("repository-not-ready");
    e.results = Default::default();
    let found = diagnose(&e);
    assert_eq!(found[0].rule, "repository-not-ready");
    assert_eq!(found[0].severity, Severity::Warning);
}

#[test]
fn a_failed_maintenance_is_named_beside_the_lock_it_left() {
    let found = diagnose(&load_infrastructure("repository-maintenance-failed"));
    assert_eq!(
        rules_of(&found),
        [
            "repository-locked",
            "repository-maintenance-failed",
            "volume-operation-failed"
        ]
    );
    let maintenance = &found[1];
    assert_eq!(maintenance.severity, Severity::Warning);
    assert_eq!(
        maintenance.title,
        "Maintenance of BackupRepository shop-default-restic-5ktbx failed (job shop-default-restic-5ktbx-maintain-job-1777604400000: OOMKilled, exit code 137)"
    );
    // The termination message is the log's last lines: its last one is quoted.
    assert!(
        maintenance.quote.contains("Start pruning repository"),
        "{}",
        maintenance.quote
    );
    assert_eq!(
        maintenance.file,
        "pods/shop-default-restic-5ktbx-maintain-job-1777604400000-b6w2r.yaml"
    );
    assert_eq!(found[2].consequence_of, Some(1));
}

#[test]
fn a_maintenance_that_failed_without_its_job_is_quoted_from_the_repository() {
    let mut e = load_infrastructure("repository-maintenance-failed");
    e.infra.maintenance_jobs.clear();
    let found = diagnose(&e);
    let maintenance = found
        .iter()
        .find(|f| f.rule == "repository-maintenance-failed")
        .unwrap();
    assert_eq!(
        maintenance.title,
        "Maintenance of BackupRepository shop-default-restic-5ktbx failed"
    );
    assert_eq!(
        maintenance.quote,
        "Repo maintenance failed but result is not retrieveable"
    );
    // A later success clears it.
    let repo = &mut e.infra.repositories[0];
    repo.latest_maintenance.as_mut().unwrap().result = "Succeeded".into();
    assert!(!rules_of(&diagnose(&e)).contains(&"repository-maintenance-failed"));
}

/// Velero 1.14 keeps a failed maintenance in a Ready repository's status.message (no
/// recentMaintenance): the same finding, quoted from there, and the resources named where 1.14
/// takes them (the server's flags, not the ConfigMap of 1.15 on).
#[test]
fn a_velero_1_14_maintenance_failure_is_found_in_the_repository_message() {
    let mut e = load_infrastructure("repository-maintenance-failed");
    e.infra.maintenance_jobs.clear();
    let message = "Maintenance job shop-default-restic-5ktbx-maintain-job-1 failed: An error \
                   occurred: failed to prune repo: blob not found";
    let v1_14 = json!({"metadata": {"name": "shop-default-restic-5ktbx"},
        "spec": {"volumeNamespace": "shop", "backupStorageLocation": "default",
                 "repositoryType": "restic"},
        "status": {"phase": "Ready", "message": message,
                   "lastMaintenanceTime": "2026-11-20T10:00:00Z"}});
    e.infra.repositories.clear();
    e.infra.add_repository(
        "resources/backuprepository/shop-default-restic-5ktbx.yaml",
        &v1_14,
    );
    let found = diagnose(&e);
    let maintenance = found
        .iter()
        .find(|f| f.rule == "repository-maintenance-failed")
        .unwrap();
    assert_eq!(maintenance.quote, message);
    let step = maintenance.next_step.as_deref().unwrap();
    assert!(step.contains("--maintenance-job-mem-limit"), "{step}");
    assert!(!step.contains("configmap"), "{step}");
    // The 1.18 shape of the same failure names the ConfigMap.
    let recent = e.infra.repositories[0].latest_maintenance.as_mut().unwrap();
    recent.from_status_message = false;
    let found = diagnose(&e);
    let step = found
        .iter()
        .find(|f| f.rule == "repository-maintenance-failed")
        .and_then(|f| f.next_step.clone())
        .unwrap();
    assert!(step.contains("--repo-maintenance-job-configmap"), "{step}");
    // Once maintenance succeeds, 1.14 clears the message: nothing is found.
    e.infra.repositories.clear();
    let mut cleared = v1_14.clone();
    cleared["status"]["message"] = json!("");
    e.infra.add_repository(
        "resources/backuprepository/shop-default-restic-5ktbx.yaml",
        &cleared,
    );
    assert!(!rules_of(&diagnose(&e)).contains(&"repository-maintenance-failed"));
}

#[test]
fn a_snapshot_content_error_explains_the_csi_timeout_and_the_item_action() {
    let found = diagnose(&load_infrastructure("snapshot-content-error"));
    assert_eq!(
        rules_of(&found),
        [
            "volume-snapshot-content-error",
            "csi-snapshot-timeout",
            "item-action-error"
        ]
    );
    let content = &found[0];
    assert_eq!(
        content.title,
        "VolumeSnapshotContent snapcontent-5d1e0f7a-2b3c-4d5e-8f90-a1b2c3d4e5f6 has an error (driver ebs.csi.aws.com, VolumeSnapshot shop/velero-data-db-0-tk5wq)"
    );
    assert!(
        content
            .quote
            .starts_with("Failed to check and update snapshot content")
    );
    assert_eq!(
        content.file,
        "resources/volumesnapshotcontent/snapcontent-5d1e0f7a-2b3c-4d5e-8f90-a1b2c3d4e5f6.yaml"
    );
    assert_eq!(found[1].consequence_of, Some(1));
    assert_eq!(found[2].consequence_of, Some(1));
}

/// Velero 1.18.3's results with the snapshot controller stopped (made on the real node): no
/// content ever answered the VolumeSnapshot. The stuck snapshot comes first with the check of
/// both controllers that make one; the timeout and the item action it failed follow it, and
/// the timeout no longer advises waiting longer.
#[test]
fn a_snapshot_nothing_reconciled_comes_before_velero_s_timeout() {
    let found = diagnose(&load_infrastructure("snapshot-not-reconciled"));
    let mut rules = rules_of(&found);
    rules[1..].sort();
    assert_eq!(
        rules,
        [
            "volume-snapshot-not-reconciled",
            "csi-snapshot-timeout",
            "item-action-error"
        ]
    );
    assert_eq!(
        found[0].title,
        "VolumeSnapshot sc1/velero-data-web-0-hcdh6 never got a snapshot: nothing reconciled it"
    );
    let step = found[0].next_step.as_deref().unwrap_or_default();
    assert!(
        step.contains("snapshot-controller")
            && step.contains("kubectl -n sc1 get events --field-selector involvedObject.name=velero-data-web-0-hcdh6")
            && step.contains("csi-snapshotter"),
        "{step}"
    );
    assert_eq!(found[1].consequence_of, Some(1));
    assert_eq!(found[2].consequence_of, Some(1));
    let timeout = found.iter().find(|f| f.rule == "csi-snapshot-timeout");
    let timeout_step = timeout
        .and_then(|f| f.next_step.as_deref())
        .unwrap_or_default();
    assert!(
        !timeout_step.contains("--csi-snapshot-timeout"),
        "{timeout_step}"
    );
}

/// Velero 1.18.3's results with two classes for the driver and neither labelled (made on the
/// real node): the claim's item action failed, and Velero's own words past its 200-byte
/// prefix name the class and driver.
#[test]
fn no_snapshot_class_for_the_driver_is_named_with_the_label_to_set() {
    let found = diagnose(&load_infrastructure("no-snapshot-class"));
    assert_eq!(
        rules_of(&found),
        ["no-volume-snapshot-class", "item-action-error"]
    );
    assert_eq!(
        found[0].title,
        "No VolumeSnapshotClass Velero may use for hostpath.csi.vdo.local (StorageClass vdo-csi): 1 claim failed"
    );
    assert!(
        found[0]
            .quote
            .starts_with("… failed to get VolumeSnapshotClass for StorageClass vdo-csi"),
        "{}",
        found[0].quote
    );
    let step = found[0].next_step.as_deref().unwrap_or_default();
    assert!(
        step.contains("velero.io/csi-volumesnapshot-class=true")
            && step.contains("hostpath.csi.vdo.local"),
        "{step}"
    );
    assert_eq!(found[1].consequence_of, Some(1));
}

#[test]
fn a_restore_of_a_partial_backup_quotes_the_backups_own_errors() {
    let e = load_infrastructure("restore-backup-partial");
    let found = diagnose(&e);
    assert_eq!(rules_of(&found), ["backup-not-whole"]);
    let backup = &found[0];
    assert_eq!(
        backup.title,
        "The restore's backup nightly-34 is PartiallyFailed (2 errors in its results): what it missed cannot be restored"
    );
    assert!(
        backup
            .quote
            .starts_with("pod volume backup failed: data path backup failed")
    );
    assert_eq!(backup.file, "object-store/backup-results.json");
    assert_eq!(
        backup.next_step.as_deref(),
        Some(
            "What backup nightly-34 missed cannot come back from it: `kubectl velero-debug \
             create backup nightly-34 --wait` diagnoses that backup; back up again once it is \
             fixed."
        )
    );
    // The backup's errors are not the restore's.
    assert_eq!(e.results.total("error"), 0);
    let md = crate::summary::Summary {
        evidence: e,
        server_version: None,
    }
    .render(&found, &[]);
    assert!(
        md.contains("- Backup: nightly-34 (PartiallyFailed); its results: 2 errors, 0 warnings"),
        "{md}"
    );
}

#[test]
fn the_summary_header_shows_velero_and_node_agent_flags_and_plugins() {
    let mut e = load_infrastructure("node-agent-tainted");
    e.infra.set_velero_deployment(
        "resources/deployment-velero.yaml",
        &serde_json::json!({"spec": {"template": {"spec": {
            "initContainers": [{"name": "velero-plugin-for-aws", "image": "velero/velero-plugin-for-aws:v1.14.3"}],
            "containers": [{"name": "velero", "args": ["server", "--uploader-type=kopia", "--fs-backup-timeout=4h"]}]
        }}}}),
    );
    let found = diagnose(&e);
    let md = crate::summary::Summary {
        evidence: e,
        server_version: Some("v1.18.3".into()),
    }
    .render(&found, &[]);
    assert!(
        md.contains(
            "- Server flags: `--uploader-type=kopia --fs-backup-timeout=4h`; plugins: velero/velero-plugin-for-aws:v1.14.3\n- node-agent flags: `--log-format=json`\n"
        ),
        "{md}"
    );
    let findings_at = md.lines().position(|l| l == "## Findings").unwrap();
    assert!(findings_at < 12, "{md}");
}

/// Velero 1.14's PodVolumeRestore names no node (1.18's `status.node`): one that ran is placed
/// on its pod's node, so the node and its node-agent are looked at; one still New is not, and
/// one that names its node keeps it.
#[test]
fn a_velero_1_14_pod_volume_restore_is_placed_on_its_pods_node() {
    let mut e = Evidence::default();
    let pvr = |name: &str, pod: &str, status: Value| {
        json!({"metadata": {"name": name},
            "spec": {"pod": {"kind": "Pod", "namespace": "shop", "name": pod}, "volume": "data"},
            "status": status})
    };
    let failed = json!({"phase": "Failed", "message": "pod volume restore failed: data path"});
    for (name, pod, status) in [
        ("pvr-1-14", "app-0", failed.clone()),
        ("pvr-new", "app-0", json!({"phase": "New"})),
        (
            "pvr-1-18",
            "app-0",
            json!({"phase": "Failed", "node": "node-9"}),
        ),
        ("pvr-other", "app-1", failed),
    ] {
        let path = format!("resources/podvolumerestore/{name}.yaml");
        e.add_operation(&path, "PodVolumeRestore", &pvr(name, pod, status));
    }
    assert!(!e.involved_nodes.contains("node-1"));
    e.place_pod_volume_restores("shop/app-0", "node-1");
    let node_of = |name: &str| {
        let op = e.operations.iter().find(|o| o.name == name).unwrap();
        op.node.clone()
    };
    assert_eq!(node_of("pvr-1-14").as_deref(), Some("node-1"));
    assert_eq!(node_of("pvr-new"), None);
    assert_eq!(node_of("pvr-1-18").as_deref(), Some("node-9"));
    assert_eq!(node_of("pvr-other"), None);
    assert!(e.involved_nodes.contains("node-1"));
    assert!(restore_placed_by_its_pod("Completed") && !restore_placed_by_its_pod("Accepted"));
}

// What the evidence keeps of each object, before any rule reads it.

#[test]
fn a_node_is_kept_with_its_readiness_taints_and_blockers() {
    let mut e = Evidence::default();
    e.infra.set_node_agent_daemonset(
        "resources/daemonset-node-agent.yaml",
        &json!({"spec": {"template": {"spec": {"containers": [
            {"name": "node-agent", "args": ["node-agent", "server", "--log-format=json"]}
        ]}}}}),
    );
    e.infra.add_node(
        "resources/nodes.txt",
        &json!({"metadata": {"name": "worker-3"},
            "spec": {"unschedulable": true, "taints": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]},
            "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "KubeletNotReady", "message": "PLEG is not healthy"}]}}),
    );
    let n = &e.infra.nodes["worker-3"];
    assert_eq!(n.ready, "False");
    assert_eq!(n.ready_detail, "KubeletNotReady: PLEG is not healthy");
    assert!(n.unschedulable);
    assert_eq!(n.taints, ["dedicated=db:NoSchedule"]);
    assert_eq!(
        n.agent_blockers,
        ["taint dedicated=db:NoSchedule is not tolerated"]
    );
    assert_eq!(
        e.infra.node_agent_arguments.as_ref().unwrap().flags_line(),
        "--log-format=json"
    );
}

#[test]
fn the_running_node_agent_pod_of_a_node_is_the_one_kept() {
    let mut e = Evidence::default();
    let pod = |name: &str, phase: &str, waiting: Option<&str>| {
        json!({"metadata": {"name": name}, "spec": {"nodeName": "n1"},
        "status": {"phase": phase, "containerStatuses": [
            {"name": "node-agent", "state": waiting.map(|r| json!({"waiting": {"reason": r}})).unwrap_or(json!({"running": {}}))}
        ]}})
    };
    e.infra
        .add_node_agent_pod(&pod("old", "Pending", Some("ImagePullBackOff")));
    assert_eq!(
        e.infra.node_agent_pods["n1"].reason.as_deref(),
        Some("ImagePullBackOff")
    );
    e.infra.add_node_agent_pod(&pod("new", "Running", None));
    e.infra.add_node_agent_pod(&pod("other", "Failed", None));
    assert_eq!(e.infra.node_agent_pods["n1"].name, "new");
    assert!(e.infra.node_agent_pods["n1"].running);
}

#[test]
fn a_maintenance_job_names_its_repository_and_its_pods_error() {
    let mut e = Evidence::default();
    e.infra.add_repository(
        "resources/backuprepository/shop-default-kopia.yaml",
        &json!({"metadata": {"name": "shop-default-kopia"},
            "spec": {"volumeNamespace": "shop", "backupStorageLocation": "default", "repositoryType": "kopia"},
            "status": {"phase": "Ready", "recentMaintenance": [
                {"result": "Succeeded", "message": ""},
                {"result": "Failed", "message": "error to prune backup repo: blob not found"}
            ]}}),
    );
    e.infra.add_maintenance_job(
        "resources/job/shop-default-kopia-maintain-job-1.yaml",
        &json!({"metadata": {"name": "shop-default-kopia-maintain-job-1"},
            "spec": {"template": {"spec": {"containers": [{"args": [
                "repo-maintenance", "--repo-name=shop", "--repo-type=kopia", "--backup-storage-location=default"
            ]}]}}},
            "status": {"failed": 1, "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}}),
    );
    e.infra.add_maintenance_pod(
        "pods/shop-default-kopia-maintain-job-1-x.yaml",
        &json!({"metadata": {"name": "shop-default-kopia-maintain-job-1-x",
                "labels": {"job-name": "shop-default-kopia-maintain-job-1"}},
            "status": {"containerStatuses": [{"state": {"terminated": {
                "reason": "Error", "exitCode": 1,
                "message": "time=\"t\" level=info msg=\"start\"\nRepo maintenance error: error to prune backup repo: blob not found"
            }}}]}}),
    );
    let job = &e.infra.maintenance_jobs[0];
    assert!(job.failed && !job.succeeded);
    assert_eq!(job.failure_reason.as_deref(), Some("BackoffLimitExceeded"));
    let pod = job.pod.as_ref().unwrap();
    assert_eq!(
        (pod.reason.as_deref(), pod.exit_code),
        (Some("Error"), Some(1))
    );
    assert_eq!(
        pod.error.as_deref(),
        Some("error to prune backup repo: blob not found")
    );
    let repo = &e.infra.repositories[0];
    assert_eq!(repo.identity(), job.repository);
    assert_eq!(repo.latest_maintenance.as_ref().unwrap().result, "Failed");
    // Without Velero's marker, the message's last line is what it said.
    assert_eq!(
        maintenance_error("a\nkilled by signal 9\n\n").as_deref(),
        Some("killed by signal 9")
    );
}

/// The same failed maintenance as each Velero version shows it: 1.15 on in
/// `status.recentMaintenance`, 1.14 in `status.message` of a Ready repository, and the
/// pod's termination message with each version's marker.
#[test]
fn a_failed_maintenance_is_read_from_velero_1_14_and_1_18_shapes() {
    let repo = |status: Value| {
        json!({"metadata": {"name": "shop-default-kopia"},
            "spec": {"volumeNamespace": "shop", "backupStorageLocation": "default", "repositoryType": "kopia"},
            "status": status})
    };
    let latest = |status: Value| {
        let mut e = Evidence::default();
        e.infra.add_repository("r.yaml", &repo(status));
        e.infra.repositories[0].latest_maintenance.clone()
    };
    let v1_18 = latest(json!({"phase": "Ready", "lastMaintenanceTime": "t",
        "recentMaintenance": [{"result": "Failed", "message": "blob not found"}]}))
    .unwrap();
    assert_eq!(
        (v1_18.result.as_str(), v1_18.message.as_str()),
        ("Failed", "blob not found")
    );
    assert!(!v1_18.from_status_message);
    let message = "Maintenance job shop-default-kopia-maintain-job-1 failed: An error occurred: failed to prune repo: blob not found";
    let v1_14 = latest(json!({"phase": "Ready", "message": message})).unwrap();
    assert_eq!(
        (v1_14.result.as_str(), v1_14.message.as_str()),
        ("Failed", message)
    );
    assert!(v1_14.from_status_message);
    // Not a maintenance: a repository that is NotReady, one with no message, and one whose
    // recentMaintenance (1.15 on) says how its maintenance went.
    assert_eq!(
        latest(json!({"phase": "NotReady", "message": "no bucket"})),
        None
    );
    assert_eq!(
        latest(json!({"phase": "Ready", "lastMaintenanceTime": "t"})),
        None
    );
    let ok = latest(json!({"phase": "Ready", "message": "x",
        "recentMaintenance": [{"result": "Succeeded"}]}));
    assert_eq!(ok.map(|r| r.result), Some("Succeeded".to_string()));
    // The pod's termination message: 1.18 marks the error in its output, 1.14 writes it
    // alone after its own words.
    assert_eq!(
        maintenance_error("An error occurred: failed to prune repo: blob not found").as_deref(),
        Some("failed to prune repo: blob not found")
    );
    assert_eq!(
        maintenance_error("log line\nRepo maintenance error: blob not found").as_deref(),
        Some("blob not found")
    );
}

#[test]
fn only_snapshot_contents_in_trouble_are_kept() {
    let mut e = Evidence::default();
    e.infra.add_snapshot_content(
        "resources/volumesnapshotcontent/ok.yaml",
        &json!({"metadata": {"name": "ok"}, "status": {"readyToUse": true}}),
    );
    e.infra.add_snapshot_content(
        "resources/volumesnapshotcontent/bad.yaml",
        &json!({"metadata": {"name": "bad"},
            "spec": {"driver": "ebs.csi.aws.com", "volumeSnapshotClassName": "csi-aws",
                "volumeSnapshotRef": {"namespace": "shop", "name": "velero-data-abcde"}},
            "status": {"readyToUse": false, "error": {"message": "Failed to check and update snapshot content: throttled"}}}),
    );
    assert_eq!(e.infra.snapshot_contents_seen, 2);
    assert_eq!(e.infra.snapshot_contents.len(), 1);
    let bad = &e.infra.snapshot_contents[0];
    assert_eq!(bad.snapshot, "shop/velero-data-abcde");
    assert_eq!(bad.ready, Some(false));
    assert!(bad.error.as_deref().unwrap().ends_with("throttled"));
}

/// A maintenance job killed for memory quotes the limit where Velero takes it from: the
/// repository's own key in the server's maintenance ConfigMap, else `global`; a ConfigMap the
/// operator may not read is said to be unread. Another component than the data-path pod the
/// quoting was written for, and the maintenance ConfigMap's own layout.
#[test]
fn a_maintenance_job_killed_for_memory_quotes_its_config_maps_limit() {
    use crate::findings::velero_config::{ConfigMapRead, VeleroConfigMap};
    let with = |data: serde_json::Value| {
        let mut e = load_infrastructure("repository-maintenance-failed");
        e.infra.add_velero_config_map(
            VeleroConfigMap::RepositoryMaintenance,
            "maint".into(),
            ConfigMapRead::Read {
                path: "resources/configmap/maint.yaml".into(),
                data,
            },
        );
        let found = diagnose(&e);
        let f = found
            .iter()
            .find(|f| f.rule == "repository-maintenance-failed")
            .unwrap()
            .clone();
        f.quote
    };
    let own = with(json!({
        "global": r#"{"podResources":{"memoryLimit":"1Gi"}}"#,
        "shop-default-restic": r#"{"podResources":{"memoryLimit":"12Mi"}}"#,
    }));
    assert!(
        own.ends_with(
            "ConfigMap velero/maint, key shop-default-restic: podResources.memoryLimit 12Mi"
        ),
        "{own}"
    );
    let global = with(json!({"global": r#"{"podResources":{"memoryLimit":"32Mi"}}"#}));
    assert!(
        global.ends_with("key global: podResources.memoryLimit 32Mi"),
        "{global}"
    );
    let mut e = load_infrastructure("repository-maintenance-failed");
    e.infra.add_velero_config_map(
        VeleroConfigMap::RepositoryMaintenance,
        "maint".into(),
        ConfigMapRead::Refused("forbidden; rbac.veleroConfigMaps does not list it".into()),
    );
    let refused = diagnose(&e)
        .into_iter()
        .find(|f| f.rule == "repository-maintenance-failed")
        .unwrap();
    assert!(
        refused.quote.contains("could not be read (forbidden"),
        "{}",
        refused.quote
    );
}

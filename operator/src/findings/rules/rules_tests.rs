//! Rule tests on fixtures (operator/testdata/findings/<case>/): Velero objects as YAML, results
//! and itemoperations.json as Velero writes them, logs in its text and JSON formats. Each case
//! is loaded the way the collect step feeds the evidence.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::findings::*;

pub(in crate::findings) fn case_dir(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/findings")
        .join(case)
}

pub(in crate::findings) fn yaml_docs(path: &Path) -> Vec<Value> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.split("\n---\n")
        .map(|doc| serde_yaml::from_str(doc).unwrap())
        .collect()
}

fn feed_results(e: &mut Evidence, results: &Value) {
    for (severity, scopes) in results.as_object().into_iter().flatten() {
        for (scope, messages) in scopes.as_object().into_iter().flatten() {
            if scope == "namespaces" {
                for (ns, list) in messages.as_object().into_iter().flatten() {
                    for m in list.as_array().into_iter().flatten() {
                        let path = "object-store/results.json";
                        e.results.add(
                            path,
                            severity,
                            &format!("namespace {ns}"),
                            m.as_str().unwrap(),
                        );
                    }
                }
            } else {
                for m in messages.as_array().into_iter().flatten() {
                    e.results.add(
                        "object-store/results.json",
                        severity,
                        scope,
                        m.as_str().unwrap(),
                    );
                }
            }
        }
    }
}

fn scan_log(e: &mut Evidence, file: &Path, source: LogSource) {
    let Ok(text) = std::fs::read_to_string(file) else {
        return;
    };
    let mut scan = LogScan::new(source);
    for line in text.lines() {
        scan.offer(line);
    }
    e.add_log_scan(scan);
}

/// A case's evidence: every file the case has.
pub(crate) fn load(case: &str) -> Evidence {
    let dir = case_dir(case);
    assert!(dir.is_dir(), "no fixture {dir:?}");
    let mut e = Evidence::default();
    let target = &yaml_docs(&dir.join("target.yaml"))[0];
    let kind = target["kind"].as_str().unwrap().to_lowercase();
    e.set_target(&format!("resources/{kind}.yaml"), target);
    if let Some(backup) = yaml_docs(&dir.join("backup.yaml")).first() {
        e.set_restore_backup("resources/backup.yaml", backup);
    }
    for op in yaml_docs(&dir.join("operations.yaml")) {
        let kind = op["kind"].as_str().unwrap();
        let path = format!(
            "resources/{}/{}.yaml",
            kind.to_lowercase(),
            op["metadata"]["name"].as_str().unwrap()
        );
        e.add_operation(&path, kind, &op);
    }
    for bsl in yaml_docs(&dir.join("bsls.yaml")) {
        let path = format!(
            "resources/backupstoragelocation/{}.yaml",
            bsl["metadata"]["name"].as_str().unwrap()
        );
        e.add_storage_location(&path, &bsl);
    }
    let pods = yaml_docs(&dir.join("pods.yaml"));
    let agents: Vec<&Value> = pods
        .iter()
        .filter(|p| p["metadata"]["labels"]["role"] == "node-agent")
        .collect();
    if !agents.is_empty() {
        e.set_node_agent_nodes(
            agents
                .iter()
                .filter_map(|p| p["spec"]["nodeName"].as_str().map(str::to_string)),
        );
    }
    for pod in &pods {
        let role = if pod["metadata"]["labels"]["role"] == "node-agent" {
            PodRole::NodeAgent
        } else {
            PodRole::Server
        };
        let path = format!("pods/{}.yaml", pod["metadata"]["name"].as_str().unwrap());
        e.add_pod(&path, role, pod);
    }
    // Workload objects as the workloads step writes them, before the events.
    let workloads = yaml_docs(&dir.join("workloads.yaml"));
    let mut storage_classes = Vec::new();
    for obj in &workloads {
        let kind = obj["kind"].as_str().unwrap();
        let name = obj["metadata"]["name"].as_str().unwrap();
        let ns = obj["metadata"]["namespace"].as_str().unwrap_or_default();
        let path = format!(
            "resources/workloads/{ns}/{}/{name}.yaml",
            kind.to_lowercase()
        );
        match kind {
            "Pod" => e.add_workload_pod(&path, obj),
            "PersistentVolumeClaim" => e.add_claim(&path, obj),
            "ResourceQuota" => e.add_quota(&path, obj),
            "StorageClass" => storage_classes.push(obj.clone()),
            "Deployment" | "StatefulSet" | "DaemonSet" | "Job" => e.add_application(kind, obj),
            other => panic!("no workload kind {other} in the fixtures"),
        }
    }
    if !storage_classes.is_empty() {
        e.set_storage_classes(&storage_classes);
    }
    if let Some(events) = yaml_docs(&dir.join("events.yaml")).first() {
        e.add_events("events/warnings-shop.yaml", events);
    }
    if let Ok(text) = std::fs::read_to_string(dir.join("results.json")) {
        feed_results(&mut e, &serde_json::from_str(&text).unwrap());
    }
    if let Ok(text) = std::fs::read_to_string(dir.join("itemoperations.json")) {
        let ops: Value = serde_json::from_str(&text).unwrap();
        for op in ops.as_array().unwrap() {
            e.add_item_operation("object-store/itemoperations.json", op);
        }
    }
    let log_name = if kind == "restore" {
        "object-store/restore.log"
    } else {
        "object-store/backup.log"
    };
    scan_log(
        &mut e,
        &dir.join("operation.log"),
        LogSource {
            path: log_name.into(),
            role: LogRole::Operation,
            pod: None,
            node: None,
            previous: false,
        },
    );
    scan_log(
        &mut e,
        &dir.join("server.log"),
        LogSource {
            path: "logs/velero/velero-abc/velero.log".into(),
            role: LogRole::Server,
            pod: Some("velero-abc".into()),
            node: None,
            previous: false,
        },
    );
    // A node-agent log belongs to the case's first node-agent pod.
    let agent = agents.first().map(|p| {
        (
            p["metadata"]["name"].as_str().unwrap().to_string(),
            p["spec"]["nodeName"].as_str().map(str::to_string),
        )
    });
    for previous in [false, true] {
        let file = if previous {
            "node-agent.previous.log"
        } else {
            "node-agent.log"
        };
        let (pod, node) = agent.clone().unwrap_or(("node-agent-x".into(), None));
        let suffix = if previous { ".previous" } else { "" };
        scan_log(
            &mut e,
            &dir.join(file),
            LogSource {
                path: format!("logs/node-agent/{pod}/node-agent{suffix}.log"),
                role: LogRole::NodeAgent,
                pod: Some(pod),
                node,
                previous,
            },
        );
    }
    e
}

pub(in crate::findings) fn rules_of(found: &[Finding]) -> Vec<&'static str> {
    found.iter().map(|f| f.rule).collect()
}

#[test]
fn quota_refusals_are_the_first_finding_of_a_restore() {
    let found = diagnose(&load("restore-quota"));
    assert_eq!(rules_of(&found), ["quota-exceeded", "already-exists"]);
    // One object: singular words.
    assert!(
        found[1]
            .title
            .starts_with("1 object already existed and differs from the backup, left as it is"),
        "{}",
        found[1].title
    );
    assert!(
        found[1]
            .next_step
            .as_deref()
            .is_some_and(|s| s.contains("`--existing-resource-policy=update`")),
        "{:?}",
        found[1].next_step
    );
    let quota = &found[0];
    assert_eq!(quota.severity, Severity::Error);
    // The quota was collected: what it allows and what is used.
    assert_eq!(
        quota.title,
        "2 objects: refused by ResourceQuota shop/storage-quota (requests.storage: used 95Gi, hard 100Gi)"
    );
    assert!(quota.quote.contains("exceeded quota: storage-quota"));
    assert_eq!(quota.file, "object-store/results.json");
    // What to do: the quota by name, and the restore filter for what it refused.
    assert_eq!(
        quota.next_step.as_deref(),
        Some(
            "Raise spec.hard of ResourceQuota shop/storage-quota (`kubectl -n shop edit \
             resourcequota storage-quota`), or restore without those objects: `velero restore \
             create --from-backup shop-backup --exclude-resources persistentvolumeclaims`."
        )
    );
}

#[test]
fn a_quota_not_collected_is_named_from_the_refusal_alone() {
    let mut e = load("restore-quota");
    e.quotas.clear();
    let found = diagnose(&e);
    assert_eq!(
        found[0].title,
        "2 objects: refused by a ResourceQuota (exceeded quota)"
    );
    // Without the quota object, the refusal still names it, its namespace and the resource.
    let step = found[0].next_step.as_deref().unwrap_or_default();
    assert!(
        step.starts_with("Raise spec.hard of ResourceQuota shop/storage-quota")
            && step.contains("--exclude-resources persistentvolumeclaims"),
        "{step}"
    );
}

#[test]
fn a_warnings_only_restore_says_completed_with_warnings() {
    let e = load("restore-warnings-only");
    let found = diagnose(&e);
    assert_eq!(rules_of(&found), ["already-exists"]);
    assert_eq!(found[0].severity, Severity::Warning);
    assert!(
        found[0].title.contains("3 objects") && found[0].title.contains("ConfigMap 2, Secret 1"),
        "{}",
        found[0].title
    );
    let summary = crate::summary::Summary {
        evidence: e,
        server_version: None,
    };
    let md = summary.render(&found, &[]);
    assert!(
        md.contains("- Phase: **Completed with 3 warnings**"),
        "{md}"
    );
    assert!(md.contains("- Errors: 0, warnings: 3"), "{md}");
}

#[test]
fn a_stuck_pod_volume_restore_is_explained_by_its_pods_multi_attach_event() {
    let found = diagnose(&load("pvr-stuck-multi-attach"));
    assert_eq!(
        rules_of(&found),
        [
            "volume-attach-failed",
            "pod-volume-restore-stuck",
            "pod-volume-timeout"
        ]
    );
    let cause = &found[0];
    assert_eq!(cause.severity, Severity::Error);
    assert!(
        cause.title.starts_with(
            "PodVolumeRestore stuck-abcde is stuck: its pod shop/web-0 is Pending: Multi-Attach error for volume \"pvc-123\""
        ),
        "{}",
        cause.title
    );
    assert!(
        cause
            .quote
            .starts_with("FailedAttachVolume: Multi-Attach error")
    );
    assert_eq!(cause.file, "events/warnings-shop.yaml");
    // The stuck PVR and Velero's timeout waiting for all PVRs are what the pod caused.
    assert_eq!(found[1].consequence_of, Some(1));
    assert_eq!(found[2].consequence_of, Some(1));
}

#[test]
fn a_stuck_restore_whose_namespace_was_refused_says_so_and_names_the_chart_value() {
    // What a bundle holds when the operator may not read namespace shop: neither the pod nor
    // the events there; the refusal recorded.
    let mut e = load("pvr-stuck-multi-attach");
    e.workload_pods.clear();
    e.events.clear();
    let refused = "forbidden; rbac.workloadNamespaces does not list this namespace";
    e.not_allowed.insert(
        "shop".into(),
        [("events", refused), ("pods", refused)]
            .map(|(r, why)| (r.to_string(), why.to_string()))
            .into(),
    );
    e.not_allowed.insert(
        "default".into(),
        [(
            "events".to_string(),
            "forbidden; rbac.persistentVolumeEvents grants it".to_string(),
        )]
        .into(),
    );
    let found = diagnose(&e);
    assert_eq!(found[0].rule, "pod-volume-restore-stuck");
    assert!(
        found[0]
            .title
            .ends_with(": the operator may not read its pod shop/web-0"),
        "{}",
        found[0].title
    );
    let step = found[0].next_step.as_deref().unwrap_or_default();
    assert!(
        step.contains("may not read namespace shop")
            && step.contains("rbac.workloadNamespaces")
            && step.contains("kubectl -n shop describe pod web-0"),
        "{step}"
    );
    let summary = crate::summary::Summary {
        evidence: e,
        server_version: None,
    };
    let md = summary.render(&found, &[]);
    let section = md
        .split("## Not allowed to read\n\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no section:\n{md}"));
    assert!(
        section.starts_with(
            "- events in namespace default: forbidden; rbac.persistentVolumeEvents grants it\n\
             - events, pods in namespace shop: forbidden; rbac.workloadNamespaces does not list this namespace\n"
        ),
        "{md}"
    );
    assert!(
        md.find("## Findings") < md.find("## Not allowed to read"),
        "{md}"
    );

    // Refused elsewhere only: the finding is as before, and nothing is said of shop.
    let mut e = load("pvr-stuck-multi-attach");
    e.workload_pods.clear();
    e.events.clear();
    e.not_allowed.insert(
        "other".into(),
        [("pods".to_string(), "forbidden".to_string())].into(),
    );
    let found = diagnose(&e);
    assert!(
        found[0]
            .title
            .ends_with("never ran its restore init container"),
        "{}",
        found[0].title
    );
}

#[test]
fn a_pod_running_again_does_not_explain_a_stuck_restore_by_its_old_events() {
    let mut e = load("pvr-stuck-multi-attach");
    let pod = &mut e.workload_pods[0];
    pod.phase = "Running".into();
    pod.ready = true;
    let found = diagnose(&e);
    assert_eq!(
        rules_of(&found),
        ["pod-volume-restore-stuck", "pod-volume-timeout"]
    );
    assert!(
        found[0]
            .title
            .contains("pod shop/web-0 never ran its restore init container")
    );
    // The timeout waited on the stuck restore: raising it would only wait longer.
    assert_eq!(found[1].consequence_of, Some(1));
    let step = found[1].next_step.as_deref().unwrap_or_default();
    assert!(
        step.contains("finding 1") && !step.contains("--fs-backup-timeout"),
        "{step}"
    );
}

#[test]
fn without_its_pods_yaml_the_events_still_name_the_cause() {
    let mut e = load("pvr-stuck-multi-attach");
    e.workload_pods.clear();
    let found = diagnose(&e);
    assert_eq!(found[0].rule, "volume-attach-failed");
    assert!(
        found[0]
            .title
            .contains("its pod shop/web-0: Multi-Attach error"),
        "{}",
        found[0].title
    );
}

#[test]
fn an_unschedulable_pod_explains_its_stuck_restore_while_the_restore_runs() {
    let found = diagnose(&load("pvr-stuck-unschedulable"));
    assert_eq!(
        rules_of(&found),
        ["pod-unschedulable", "pod-volume-restore-stuck"]
    );
    let cause = &found[0];
    // The restore still runs: worth a look, not yet its failure.
    assert_eq!(cause.severity, Severity::Warning);
    assert!(
        cause.title.starts_with(
            "PodVolumeRestore shop-restore-7hx2q is stuck: its pod shop/db-0 is Pending: not scheduled (Unschedulable): 0/3 nodes"
        ),
        "{}",
        cause.title
    );
    assert!(
        cause
            .quote
            .starts_with("condition PodScheduled False, Unschedulable: 0/3 nodes are available")
    );
    assert_eq!(cause.file, "resources/workloads/shop/pod/db-0.yaml");
    assert_eq!(found[1].consequence_of, Some(1));
}

#[test]
fn an_init_container_failing_before_restore_wait_is_named_as_what_the_restore_waits_for() {
    let found = diagnose(&load("pvr-stuck-init-before-restore-wait"));
    assert_eq!(
        rules_of(&found),
        [
            "init-container-before-restore-wait",
            "pod-volume-restore-stuck"
        ]
    );
    let cause = &found[0];
    // The restore is over: its volume will not come back.
    assert_eq!(cause.severity, Severity::Error);
    assert_eq!(
        cause.title,
        "PodVolumeRestore shop-restore-9kq2d is stuck: its pod shop/db-0 is Pending: init \
         container mesh-init, before Velero's restore-wait, CrashLoopBackOff"
    );
    assert!(
        cause
            .quote
            .starts_with("init containers mesh-init run before restore-wait; mesh-init CrashLoopBackOff: back-off 40s"),
        "{}",
        cause.quote
    );
    let step = cause.next_step.as_deref().unwrap_or_default();
    assert!(
        step.contains("`kubectl -n shop logs db-0 -c mesh-init --previous`")
            && step.contains("mutatingwebhookconfigurations"),
        "{step}"
    );
    assert_eq!(found[1].consequence_of, Some(1));
}

#[test]
fn an_init_container_caught_between_restarts_is_named_by_its_exit() {
    let mut e = load("pvr-stuck-init-before-restore-wait");
    let path = "resources/workloads/shop/pod/db-0.yaml";
    let mut pod =
        yaml_docs(&case_dir("pvr-stuck-init-before-restore-wait").join("workloads.yaml")).remove(0);
    pod["status"]["initContainerStatuses"][0]["state"] =
        serde_json::json!({"terminated": {"exitCode": 1, "reason": "Error"}});
    e.workload_pods.clear();
    e.add_workload_pod(path, &pod);
    let found = diagnose(&e);
    assert_eq!(found[0].rule, "init-container-before-restore-wait");
    assert!(
        found[0]
            .title
            .ends_with("mesh-init, before Velero's restore-wait, Error")
            && found[0].quote.ends_with("mesh-init Error: exit code 1"),
        "{} / {}",
        found[0].title,
        found[0].quote
    );
}

/// A pod restored with the restic-era name of the init container (Velero reads both
/// restore-wait and restic-wait, pkg/restorehelper) is read the same way.
#[test]
fn an_init_container_before_restic_wait_is_named_too() {
    let mut e = load("pvr-stuck-init-before-restore-wait");
    let text = std::fs::read_to_string(
        case_dir("pvr-stuck-init-before-restore-wait").join("workloads.yaml"),
    )
    .unwrap()
    .replace("restore-wait", "restic-wait");
    let pod: Value = serde_yaml::from_str(text.split("\n---").next().unwrap()).unwrap();
    e.workload_pods.clear();
    e.add_workload_pod("resources/workloads/shop/pod/db-0.yaml", &pod);
    let found = diagnose(&e);
    assert_eq!(
        found[0].rule, "init-container-before-restore-wait",
        "{found:?}"
    );
    assert!(
        found[0]
            .quote
            .starts_with("init containers mesh-init run before restore-wait"),
        "{}",
        found[0].quote
    );
}

/// The pod of case pvr-stuck-init-before-restore-wait, its mesh-init status replaced, with the
/// kubelet's BackOff event about it: the evidence a stall bundle reads at any moment of
/// mesh-init's crash loop.
fn crash_loop_read_at(status: Value) -> Vec<Finding> {
    let mut e = load("pvr-stuck-init-before-restore-wait");
    let mut pod =
        yaml_docs(&case_dir("pvr-stuck-init-before-restore-wait").join("workloads.yaml")).remove(0);
    pod["status"]["initContainerStatuses"][0] = status;
    e.workload_pods.clear();
    e.add_workload_pod("resources/workloads/shop/pod/db-0.yaml", &pod);
    add_mesh_init_back_off(&mut e, "2026-11-28T10:00:00Z");
    diagnose(&e)
}

/// The kubelet's BackOff event about init container mesh-init of pod shop/db-0, at `time`.
pub(in crate::findings) fn add_mesh_init_back_off(e: &mut Evidence, time: &str) {
    e.add_events(
        "resources/events.json",
        &serde_json::json!([{"type": "Warning", "reason": "BackOff",
            "message": "Back-off restarting failed container mesh-init in pod db-0_shop(5b0c)",
            "involvedObject": {"kind": "Pod", "namespace": "shop", "name": "db-0"},
            "lastTimestamp": time}]),
    );
}

#[test]
fn an_init_container_running_again_after_it_failed_is_named_by_its_last_exit() {
    let found = crash_loop_read_at(serde_json::json!({"name": "mesh-init", "restartCount": 3,
        "state": {"running": {"startedAt": "2026-11-28T10:00:01Z"}},
        "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}}));
    assert_eq!(found[0].rule, "init-container-before-restore-wait");
    assert!(
        found[0]
            .title
            .ends_with("mesh-init, before Velero's restore-wait, Error")
            && found[0]
                .quote
                .ends_with("mesh-init Error: last exit code 1 (3 restarts), now running again"),
        "{} / {}",
        found[0].title,
        found[0].quote
    );
}

#[test]
fn an_init_container_about_to_restart_after_it_failed_is_named_by_its_last_exit() {
    let found = crash_loop_read_at(serde_json::json!({"name": "mesh-init", "restartCount": 2,
        "state": {"waiting": {"reason": "PodInitializing"}},
        "lastState": {"terminated": {"exitCode": 1}}}));
    assert_eq!(found[0].rule, "init-container-before-restore-wait");
    assert!(
        found[0]
            .quote
            .ends_with("mesh-init Error: last exit code 1 (2 restarts), now PodInitializing"),
        "{}",
        found[0].quote
    );
}

#[test]
fn an_init_container_that_ended_well_after_failures_is_not_a_cause() {
    let found = crash_loop_read_at(serde_json::json!({"name": "mesh-init", "restartCount": 2,
        "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
        "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}}));
    assert!(
        found
            .iter()
            .all(|f| f.rule != "init-container-before-restore-wait"),
        "{:?}",
        rules_of(&found)
    );
}

#[test]
fn an_init_container_after_restore_wait_is_only_a_pod_that_is_not_ready() {
    let mut e = load("pvr-stuck-init-before-restore-wait");
    let pod = &mut e.workload_pods[0];
    pod.before_restore_wait.clear();
    let found = diagnose(&e);
    assert_eq!(found[0].rule, "pod-not-ready");
    assert!(
        found[0]
            .title
            .ends_with("init container mesh-init waiting: CrashLoopBackOff"),
        "{}",
        found[0].title
    );
}

#[test]
fn a_pending_claim_comes_before_the_scheduling_failure_it_causes() {
    let found = diagnose(&load("pvr-stuck-pvc-pending"));
    assert_eq!(
        rules_of(&found),
        ["pvc-pending", "pod-volume-restore-stuck"]
    );
    let cause = &found[0];
    assert!(
        cause.title.contains(
            "its pod shop-copy/web-0 is Pending: PVC data-web-0 is Pending: ProvisioningFailed"
        ),
        "{}",
        cause.title
    );
    assert_eq!(
        cause.quote,
        "ProvisioningFailed: storageclass.storage.k8s.io \"fast\" not found"
    );
    assert!(cause.explains.contains(&"pod/shop-copy/web-0".to_string()));
}

#[test]
fn a_pending_claim_without_events_is_explained_by_the_storage_classes() {
    let mut e = load("pvr-stuck-pvc-pending");
    e.events.clear();
    let found = diagnose(&e);
    assert_eq!(found[0].rule, "pvc-pending");
    assert!(
        found[0]
            .title
            .ends_with("PVC data-web-0 is Pending: StorageClass fast does not exist"),
        "{}",
        found[0].title
    );
    assert_eq!(
        found[0].file,
        "resources/workloads/shop-copy/persistentvolumeclaim/data-web-0.yaml"
    );
    // No class named and no default one.
    e.claims[0].storage_class = None;
    e.storage_classes.as_mut().unwrap().default = None;
    let found = diagnose(&e);
    assert!(
        found[0]
            .title
            .ends_with("PVC data-web-0 is Pending: no StorageClass named and no default one"),
        "{}",
        found[0].title
    );
}

#[test]
fn a_restored_pod_that_cannot_start_is_named_though_the_restore_completed() {
    let found = diagnose(&load("restored-pod-not-ready"));
    assert_eq!(rules_of(&found), ["pod-not-ready"]);
    let f = &found[0];
    assert_eq!(f.severity, Severity::Warning);
    assert_eq!(
        f.title,
        "Restored pod api/api-5c9f7d8b6-x2x4q is Pending: container api waiting: ImagePullBackOff"
    );
    assert_eq!(
        f.quote,
        "container api waiting, ImagePullBackOff: Back-off pulling image \"registry.example.com/api:1.2\""
    );
    assert_eq!(
        f.file,
        "resources/workloads/api/pod/api-5c9f7d8b6-x2x4q.yaml"
    );
}

#[test]
fn an_unavailable_bsl_explains_the_failed_validation() {
    let found = diagnose(&load("bsl-unavailable"));
    assert_eq!(rules_of(&found), ["bsl-unavailable", "failed-validation"]);
    assert_eq!(
        found[0].title,
        "BackupStorageLocation default is Unavailable"
    );
    assert!(found[0].quote.contains("NoSuchBucket"));
    assert_eq!(
        found[0].file,
        "resources/backupstoragelocation/default.yaml"
    );
    let step = found[0].next_step.as_deref().unwrap_or_default();
    assert!(
        step.starts_with("Correct BackupStorageLocation default ")
            && step.contains("`kubectl -n velero get bsl default -o yaml`")
            && step.contains("`velero backup-location get default`"),
        "{step}"
    );
    assert_eq!(found[1].consequence_of, Some(1));
}

#[test]
fn a_canceled_data_upload_explains_its_item_operation() {
    let e = load("dataupload-canceled");
    let found = diagnose(&e);
    assert_eq!(
        rules_of(&found),
        [
            "volume-operation-failed",
            "expose-diagnosis",
            "item-operation-failed"
        ]
    );
    assert!(
        found[0]
            .title
            .starts_with("DataUpload dm-7xk2p Canceled (volume data, node node-2)")
    );
    assert!(found[0].quote.contains("with expose error"));
    assert_eq!(found[1].line, Some(2));
    assert_eq!(found[1].file, "logs/node-agent/node-agent-x/node-agent.log");
    assert_eq!(found[2].consequence_of, Some(1));
    assert_eq!(found[2].quote, "DataUpload is canceled");
}

#[test]
fn a_server_restart_mid_backup_names_the_oom_kill() {
    let found = diagnose(&load("server-restarted"));
    assert_eq!(rules_of(&found), ["velero-server-restarted"]);
    assert!(found[0].title.contains("OOMKilled"), "{}", found[0].title);
    let step = found[0].next_step.as_deref().unwrap_or_default();
    assert!(
        step.contains("--velero-pod-mem-limit") && step.contains("resources.limits.memory"),
        "{step}"
    );
    assert!(found[0].quote.starts_with("found a backup with status"));
    assert_eq!(found[0].file, "resources/backup.yaml");
}

#[test]
fn a_crashed_plugin_explains_the_item_action_error() {
    let found = diagnose(&load("plugin-crashed"));
    assert_eq!(rules_of(&found), ["plugin-crashed", "item-action-error"]);
    assert_eq!(found[0].file, "logs/velero/velero-abc/velero.log");
    assert_eq!(found[0].line, Some(2));
    assert_eq!(found[0].quote, "plugin process exited: signal: killed");
    assert_eq!(found[1].consequence_of, Some(1));
}

#[test]
fn nothing_is_found_for_a_clean_backup() {
    let mut e = Evidence::default();
    e.set_target(
        "resources/backup.yaml",
        &serde_json::json!({"kind": "Backup", "metadata": {"name": "ok"}, "status": {"phase": "Completed"}}),
    );
    assert!(diagnose(&e).is_empty());
}

#[test]
fn the_summary_lists_the_workload_pods_not_running_and_their_claims() {
    let e = load("pvr-stuck-pvc-pending");
    let found = diagnose(&e);
    let summary = crate::summary::Summary {
        evidence: e,
        server_version: None,
    };
    let md = summary.render(&found, &[]);
    assert!(md.contains("## Workload pods not running"), "{md}");
    assert!(
        md.contains(
            "- shop-copy/web-0: Pending; node -; PodScheduled False, Unschedulable: 0/3 nodes are available"
        ),
        "{md}"
    );
    assert!(md.contains("; PVCs data-web-0\n"), "{md}");
    assert!(
        md.contains("- PVC shop-copy/data-web-0: Pending (StorageClass fast)"),
        "{md}"
    );
    // The cause is the first finding, within the first 40 lines.
    let head: Vec<&str> = md.lines().take(40).collect();
    assert!(
        head.iter()
            .any(|l| l.starts_with("1. **PodVolumeRestore shop-restore-k2m9d is stuck")),
        "{md}"
    );
}

#[test]
fn a_finished_operation_without_its_log_says_so_and_what_stands_in() {
    let mut e = load("dataupload-canceled");
    e.operation_log_missing = Some(crate::findings::MissingLog {
        key: "velero/backups/b1/b1-logs.gz".into(),
        why: "not in the object store".into(),
        stand_in: Some("logs/velero/backup-b1.from-server-log.log".into()),
    });
    let found = diagnose(&e);
    let missing = found
        .iter()
        .find(|f| f.rule == "operation-log-missing")
        .expect("an operation-log-missing finding");
    assert_eq!(missing.severity, Severity::Warning);
    // A gap in the evidence ranks after the cause found without it.
    assert_eq!(found[0].rule, "volume-operation-failed", "{found:#?}");
    assert!(missing.title.contains("stand in"), "{}", missing.title);
    assert_eq!(missing.file, "logs/velero/backup-b1.from-server-log.log");
    assert!(missing.quote.starts_with("velero/backups/b1/b1-logs.gz"));

    // While the operation runs, its log is not uploaded yet: no finding.
    e.target.phase = "InProgress".into();
    assert!(
        !rules_of(&diagnose(&e)).contains(&"operation-log-missing"),
        "a running operation's log is not missing"
    );
}

#[test]
fn an_unavailable_location_explains_the_missing_log() {
    let mut e = load("bsl-unavailable");
    e.operation_log_missing = Some(crate::findings::MissingLog {
        key: "velero/backups/b1/b1-logs.gz".into(),
        why: "the bucket does not exist".into(),
        stand_in: None,
    });
    let found = diagnose(&e);
    assert_eq!(found[0].rule, "bsl-unavailable");
    let missing = found
        .iter()
        .find(|f| f.rule == "operation-log-missing")
        .expect("an operation-log-missing finding");
    // 1-based, as summary.md numbers findings ("consequence of #1").
    assert_eq!(missing.consequence_of, Some(1), "{found:#?}");
}

#[test]
fn the_summary_shows_the_damage_by_application_right_after_the_findings() {
    let e = load("damage-three-apps");
    let found = diagnose(&e);
    let summary = crate::summary::Summary {
        evidence: e,
        server_version: None,
    };
    let md = summary.render(&found, &[]);
    let at = md.find("## Damage by application").expect(&md);
    assert!(md.find("## Findings").unwrap() < at, "{md}");
    let section: Vec<&str> = md[at..]
        .lines()
        .skip(2)
        .take_while(|l| !l.is_empty())
        .collect();
    let rules: Vec<&str> = found.iter().map(|f| f.rule).collect();
    let n = |rule: &str| 1 + rules.iter().position(|r| *r == rule).expect(rule);
    assert_eq!(
        section,
        [
            format!(
                "- Helm release shop/api: 1 item failed (#{} `quota-exceeded`)",
                n("quota-exceeded")
            ),
            format!(
                "- StatefulSet shop/db: 1 of 2 volumes not restored (#{} `volume-operation-failed`)",
                n("volume-operation-failed")
            ),
            format!(
                "- namespace shop (no owner): 1 item warned (#{} `already-exists`)",
                n("already-exists")
            ),
            "- Deployment shop/web: restored whole".to_string(),
        ],
        "{md}"
    );
}

use super::*;
use crate::findings::{StalledEvidence, diagnose, rules::tests::add_mesh_init_back_off};

fn running(phase: &str) -> Evidence {
    let mut e = Evidence::default();
    e.set_target(
        "resources/restore.yaml",
        &serde_json::json!({"kind": "Restore", "metadata": {"name": "r1", "namespace": "velero"},
            "status": {"phase": phase, "restoreItemOperationsAttempted": 2,
                "restoreItemOperationsCompleted": 1}}),
    );
    e.target.stalled = Some(StalledEvidence {
        since: "2026-11-28T10:00:00Z".into(),
        still_for: std::time::Duration::from_secs(40 * 60),
        taken_at: "2026-11-28T10:40:00Z".parse().unwrap(),
        withheld: None,
    });
    e
}

fn restore_of(e: &mut Evidence, name: &str, phase: &str, pod: &str) {
    e.add_operation(
        &format!("resources/podvolumerestore/{name}.yaml"),
        "PodVolumeRestore",
        &serde_json::json!({"metadata": {"name": name},
            "spec": {"volume": "data", "pod": {"namespace": "shop", "name": pod}},
            "status": {"phase": phase}}),
    );
}

#[test]
fn the_least_advanced_volume_operation_is_named_first_with_why() {
    let mut e = running("InProgress");
    restore_of(&mut e, "pvr-moving", "InProgress", "web-1");
    restore_of(&mut e, "pvr-waiting", "New", "web-0");
    let found = diagnose(&e);
    let first = &found[0];
    assert_eq!(first.rule, "operation-stalled");
    assert_eq!(
        first.title,
        "Restore has not moved for 40m: pod shop/web-0 never ran its restore-wait init container, which PodVolumeRestore pvr-waiting waits for"
    );
    assert!(
        first
            .quote
            .contains("PodVolumeRestore pvr-waiting: status.phase New")
    );
    assert!(first.quote.contains("since 2026-11-28T10:00:00Z"));
    assert!(first.next_step.as_deref().unwrap().contains("shop/web-0"));
    assert!(
        first
            .explains
            .contains(&"PodVolumeRestore/pvr-waiting".to_string())
    );
}

fn backup_of(e: &mut Evidence, name: &str, phase: &str) {
    e.add_operation(
        &format!("resources/podvolumebackup/{name}.yaml"),
        "PodVolumeBackup",
        &serde_json::json!({"metadata": {"name": name},
            "spec": {"volume": "data", "node": "node-1", "pod": {"namespace": "shop", "name": "db-0"}},
            "status": {"phase": phase}}),
    );
}

#[test]
fn a_data_path_pod_that_does_not_start_is_named_with_its_event_and_the_timeout_to_come() {
    let mut e = running("InProgress");
    backup_of(&mut e, "b1-x7k2p", "Accepted");
    e.add_pod(
        "pods/b1-x7k2p.yaml",
        PodRole::DataPath,
        &serde_json::json!({"metadata": {"name": "b1-x7k2p"}, "spec": {"nodeName": "node-1"},
            "status": {"phase": "Pending", "containerStatuses": [{"name": "c",
                "state": {"waiting": {"reason": "ContainerCreating"}}}]}}),
    );
    e.add_events(
        "events/related.yaml",
        &serde_json::json!([{"type": "Warning", "reason": "FailedMount",
            "involvedObject": {"kind": "Pod", "namespace": "velero", "name": "b1-x7k2p"},
            "message": "MountVolume.SetUp failed for volume \"ca\" : secret \"ca-bundle\" not found",
            "lastTimestamp": "2026-11-28T10:01:00Z"}]),
    );
    let found = operation_stalled(&e);
    assert_eq!(
        found[0].title,
        "Restore has not moved for 40m: its data-path pod is Pending: MountVolume.SetUp failed for volume \"ca\" : secret \"ca-bundle\" not found (PodVolumeBackup b1-x7k2p)"
    );
    assert!(
        found[0]
            .quote
            .contains("waits for data-path pod velero/b1-x7k2p (Pending)"),
        "{}",
        found[0].quote
    );
    assert_eq!(found[0].file, "events/related.yaml");
    let step = found[0].next_step.as_deref().unwrap();
    assert!(step.contains("prepare timeout (30m)"), "{step}");
    assert!(
        step.contains("kubectl -n velero describe pod b1-x7k2p"),
        "{step}"
    );
    assert!(step.contains("get ds node-agent"), "{step}");
    assert!(
        found[0]
            .explains
            .contains(&"pod/velero/b1-x7k2p".to_string())
    );

    // Without an event, its container's state speaks; node-agent's own timeout is told.
    let mut quiet = running("InProgress");
    backup_of(&mut quiet, "b1-x7k2p", "Accepted");
    quiet.add_pod(
        "pods/b1-x7k2p.yaml",
        PodRole::DataPath,
        &serde_json::json!({"metadata": {"name": "b1-x7k2p"}, "status": {"phase": "Pending",
            "containerStatuses": [{"name": "c", "state": {"waiting": {"reason": "ContainerCreating"}}}]}}),
    );
    quiet.infra.node_agent_arguments = Some(crate::findings::WorkloadArguments::of_workload(
        "resources/node-agent.yaml",
        &serde_json::json!({"spec": {"template": {"spec": {"containers": [{"name": "node-agent",
            "args": ["server", "--data-mover-prepare-timeout=5m"]}]}}}}),
        "node-agent",
    ));
    let found = operation_stalled(&quiet);
    assert!(
        found[0]
            .title
            .ends_with("Pending: ContainerCreating (PodVolumeBackup b1-x7k2p)"),
        "{}",
        found[0].title
    );
    let step = found[0].next_step.as_deref().unwrap();
    assert!(step.contains("prepare timeout (5m)"), "{step}");

    // A data-path pod that runs holds nothing up: the operation itself is named.
    let mut moving = running("InProgress");
    backup_of(&mut moving, "b1-x7k2p", "InProgress");
    moving.add_pod(
        "pods/b1-x7k2p.yaml",
        PodRole::DataPath,
        &serde_json::json!({"metadata": {"name": "b1-x7k2p"}, "status": {"phase": "Running"}}),
    );
    let found = operation_stalled(&moving);
    assert!(
        found[0]
            .title
            .contains("PodVolumeBackup b1-x7k2p does not move"),
        "{}",
        found[0].title
    );
}

#[test]
fn a_repository_not_ready_is_named_for_the_volume_that_waits_on_it() {
    let mut e = running("InProgress");
    backup_of(&mut e, "b1-x7k2p", "Accepted");
    e.infra.add_repository(
        "resources/backuprepository/shop-default-kopia.yaml",
        &serde_json::json!({"metadata": {"name": "shop-default-kopia-x1"},
            "spec": {"volumeNamespace": "shop", "backupStorageLocation": "default",
                "repositoryType": "kopia"},
            "status": {"phase": "NotReady", "message": "error to connect repo: access denied"}}),
    );
    let found = operation_stalled(&e);
    assert_eq!(
        found[0].title,
        "Restore has not moved for 40m: its repository shop-default-kopia-x1 is NotReady: error to connect repo: access denied (PodVolumeBackup b1-x7k2p)"
    );
    assert_eq!(
        found[0].file,
        "resources/backuprepository/shop-default-kopia.yaml"
    );
    // Another namespace's repository holds nothing of this volume up.
    let mut other = running("InProgress");
    backup_of(&mut other, "b1-x7k2p", "Accepted");
    other.infra.add_repository(
        "r.yaml",
        &serde_json::json!({"metadata": {"name": "web-default-kopia-x2"},
            "spec": {"volumeNamespace": "web"}, "status": {"phase": "NotReady"}}),
    );
    assert!(operation_stalled(&other)[0].title.contains("does not move"));
}

#[test]
fn a_plugin_operation_is_named_by_plugin_id_and_age() {
    let mut e = running("WaitingForPluginOperations");
    for (id, created, phase) in [
        ("du-late", "2026-11-28T10:20:00Z", "InProgress"),
        ("du-done", "2026-11-28T09:00:00Z", "Completed"),
        ("du-first", "2026-11-28T09:40:00Z", "InProgress"),
    ] {
        e.add_item_operation(
            "object-store/itemoperations.json",
            &serde_json::json!({"spec": {"backupItemAction": "velero.io/csi-pvc-backupper",
                "operationID": id, "resourceIdentifier": {"Group": "", "Resource": "persistentvolumeclaims",
                    "Namespace": "shop", "Name": "data-db-0"}},
                "status": {"phase": phase, "created": created, "description": "Accepted",
                    "nCompleted": 3, "nTotal": 10, "operationUnits": "GiB"}}),
        );
    }
    let found = operation_stalled(&e);
    assert_eq!(
        found[0].title,
        "Restore has not moved for 40m: plugin velero.io/csi-pvc-backupper's asynchronous operation du-first is InProgress, running for 1h (Accepted, 3 of 10 GiB)"
    );
    assert!(
        found[0]
            .quote
            .contains("for persistentvolumeclaims/shop/data-db-0"),
        "{}",
        found[0].quote
    );
    assert_eq!(found[0].file, "object-store/itemoperations.json");
    let step = found[0].next_step.as_deref().unwrap();
    assert!(
        step.contains("operation du-first of plugin velero.io/csi-pvc-backupper"),
        "{step}"
    );
}

#[test]
fn a_restore_finalizing_names_the_pod_its_post_restore_hook_waits_for() {
    let mut e = running("Finalizing");
    let pod = |name: &str, annotations: serde_json::Value, phase: &str| {
        serde_json::json!({"metadata": {"name": name, "namespace": "shop", "annotations": annotations},
            "spec": {"containers": [{"name": "app"}, {"name": "sidecar"}]},
            "status": {"phase": phase, "containerStatuses": [{"name": "app",
                "state": {"waiting": {"reason": "CreateContainerConfigError",
                    "message": "secret \"db-password\" not found"}}}]}})
    };
    // Not ready, but no hook of its own: not what Finalizing waits for.
    e.add_workload_pod(
        "w/a.yaml",
        &pod("cache-0", serde_json::json!({}), "Pending"),
    );
    e.add_workload_pod(
        "w/b.yaml",
        &pod(
            "db-0",
            serde_json::json!({"post.hook.restore.velero.io/command": "[\"/bin/check\"]",
                "post.hook.restore.velero.io/container": "app"}),
            "Pending",
        ),
    );
    let found = operation_stalled(&e);
    assert_eq!(
        found[0].title,
        "Restore has not moved for 40m: its post-restore hook in container app waits: shop/db-0 is Pending: container app waiting: CreateContainerConfigError"
    );
    assert!(
        found[0].quote.contains("secret \"db-password\" not found"),
        "{}",
        found[0].quote
    );
    let step = found[0].next_step.as_deref().unwrap();
    assert!(
        step.contains("container app of pod shop/db-0 is up"),
        "{step}"
    );
    assert!(step.contains("waitTimeout"), "{step}");

    // Hooks in the restore's spec: any restored pod that does not run; a hook's container
    // by annotation defaults to the pod's first.
    let mut by_spec = running("Finalizing");
    by_spec.set_target(
        "resources/restore.yaml",
        &serde_json::json!({"kind": "Restore", "metadata": {"name": "r1", "namespace": "velero"},
            "spec": {"hooks": {"resources": [{"name": "check", "postHooks": [{"exec": {"command": ["true"]}}]}]}},
            "status": {"phase": "Finalizing"}}),
    );
    by_spec.target.stalled = e.target.stalled.clone();
    by_spec.add_workload_pod(
        "w/a.yaml",
        &pod("cache-0", serde_json::json!({}), "Pending"),
    );
    assert!(
        operation_stalled(&by_spec)[0]
            .title
            .contains("waits: shop/cache-0 is Pending")
    );
    let mut first = running("Finalizing");
    first.add_workload_pod(
        "w/c.yaml",
        &pod(
            "web-0",
            serde_json::json!({"post.hook.restore.velero.io/command": "x"}),
            "Pending",
        ),
    );
    assert_eq!(
        first.workload_pods[0].post_restore_hook.as_deref(),
        Some("app")
    );

    // Without a pod to wait for, the phase alone speaks.
    let bare = running("Finalizing");
    assert!(
        operation_stalled(&bare)[0]
            .title
            .contains("does not finish finalizing")
    );
}

#[test]
fn without_volume_operations_the_phase_says_what_it_waits_on() {
    let e = running("WaitingForPluginOperations");
    let found = operation_stalled(&e);
    assert_eq!(
        found[0].title,
        "Restore has not moved for 40m: it waits on its plugins' asynchronous operations, 1 of 2 completed"
    );
    assert!(found[0].next_step.as_deref().unwrap().contains("--details"));
    assert!(
        operation_stalled(&running("New"))[0]
            .title
            .contains("no Velero server")
    );
}

#[test]
fn a_bundle_not_taken_for_a_stall_or_an_operation_that_ended_gets_none() {
    let mut ended = running("Failed");
    restore_of(&mut ended, "pvr", "New", "web-0");
    assert!(operation_stalled(&ended).is_empty());
    let mut not_stalled = running("InProgress");
    not_stalled.target.stalled = None;
    assert!(operation_stalled(&not_stalled).is_empty());
}

/// The kubelet's BackOff event is there from mesh-init's second failure; whichever state its
/// crash loop shows when the pod is read, the headline names the init container that holds
/// restore-wait back, not the event.
#[test]
fn a_crash_looping_init_container_before_restore_wait_is_named_at_every_moment_of_its_loop() {
    let states = [
        serde_json::json!({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 20s"}}),
        serde_json::json!({"terminated": {"exitCode": 1, "reason": "Error"}}),
        serde_json::json!({"waiting": {"reason": "PodInitializing"}}),
        serde_json::json!({"running": {"startedAt": "2026-11-28T10:39:59Z"}}),
    ];
    for state in states {
        let mut e = running("InProgress");
        restore_of(&mut e, "pvr-db", "New", "db-0");
        e.add_workload_pod(
            "resources/workloads/shop/pod/db-0.yaml",
            &serde_json::json!({"metadata": {"namespace": "shop", "name": "db-0"},
                "spec": {"initContainers": [{"name": "mesh-init"}, {"name": "restore-wait"}]},
                "status": {"phase": "Pending", "initContainerStatuses": [
                    {"name": "mesh-init", "restartCount": 2, "state": state,
                     "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}},
                    {"name": "restore-wait", "state": {"waiting": {"reason": "PodInitializing"}}}]}}),
        );
        add_mesh_init_back_off(&mut e, "2026-11-28T10:39:00Z");
        let first = &diagnose(&e)[0];
        assert_eq!(first.rule, "operation-stalled");
        assert!(
            first.title.starts_with(
                "Restore has not moved for 40m: shop/db-0 is Pending: init container mesh-init, before Velero's restore-wait,"
            ) && first.quote.contains("PodVolumeRestore pvr-db (New) waits for pod shop/db-0"),
            "{state}: {} / {}",
            first.title,
            first.quote
        );
    }
}

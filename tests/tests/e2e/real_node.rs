//! Issue 55: the data path on the real node (tests/env/lifecycle/real-node/node-up.sh). Velero's own node-agent
//! runs there in a container, moves real bytes through kopia into the S3 store, and its
//! bundles are read from what it really wrote.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::{
    apps::v1::DaemonSet,
    batch::v1::Job,
    core::v1::{ConfigMap, Node, Pod, Secret},
};
use kube::{
    Api, ResourceExt,
    api::{ListParams, LogParams, Patch, PatchParams},
    core::ApiResource,
};
use velero_debug_e2e::{
    archives::text,
    backups::backup_phase,
    bundles::completed_bundle,
    context::{TestCtx, create_namespace, unique_name},
    findings::{assert_first_finding, first_next_step},
    polling::eventually,
    rbac::grant_workload_reads,
    real_node::{
        backed_up_volume, backup_repository_of, data_path_lines_of, failed_fs_backup_bundle,
        fs_backup, operation_phases, real_node_agent, real_node_agent_back,
        real_node_agent_with_config_map, stateful_set_on_real_node, volume_sums,
    },
    restores::{real_restore, real_restore_annotated},
    velero_cli::velero,
    webhook::AdmissionWebhook,
};

fn is_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// `make env-up` brings the real node Ready beside the kwok nodes, and the node-agent
/// DaemonSet's pod there runs Velero's server for real: its log, read from the kubelet through
/// the API server, is the server's own.
#[tokio::test]
async fn the_real_node_is_ready_beside_the_kwok_nodes_and_runs_velero_s_node_agent() -> Result<()> {
    let t = &TestCtx::new().await?;
    let real = t.env.real_node()?;
    let nodes: Api<Node> = Api::all(t.client.clone());
    let node = nodes.get(&real.name).await?;
    ensure!(
        is_ready(&node),
        "{} is not Ready: {:?}",
        real.name,
        node.status
    );
    let info = node
        .status
        .as_ref()
        .and_then(|s| s.node_info.clone())
        .context("no nodeInfo")?;
    ensure!(
        info.container_runtime_version.starts_with("containerd://"),
        "runtime {}",
        info.container_runtime_version
    );
    let kwok = nodes
        .list(&ListParams::default().labels("type=kwok"))
        .await?;
    ensure!(
        kwok.items.len() >= 3 && kwok.items.iter().all(is_ready),
        "the kwok nodes are not all there and Ready"
    );
    let agent = real_node_agent(t).await?;
    let pods: Api<Pod> = Api::namespaced(t.client.clone(), &t.env.namespace);
    let log = eventually(
        "the real node-agent's controllers started",
        Duration::from_secs(60),
        || async {
            let log = pods.logs(&agent.name_any(), &LogParams::default()).await?;
            Ok(log.contains("controller=podvolumebackup").then_some(log))
        },
    )
    .await?;
    ensure!(
        log.contains(&format!(
            "Starting Velero node-agent server {}",
            t.env.velero.version
        )),
        "the node-agent's log is not Velero's server starting:\n{}",
        &log[..log.len().min(2000)]
    );
    Ok(())
}

const VOLUMES: &[&str] = &["data", "wal"];

/// Scenario 1: a healthy fs-backup and restore of a StatefulSet with two volumes. Both
/// PodVolumeBackups and both PodVolumeRestores Complete, the restored bytes equal the backed-up
/// ones, and the restore's bundle holds the real node-agent's log (with its data-path pods' own
/// lines, which the node-agent copies into it between its markers), draws a bar per volume
/// operation, and finds no error.
#[tokio::test]
async fn a_healthy_fs_backup_and_restore_moves_real_bytes_and_its_bundle_draws_each_volume()
-> Result<()> {
    let t = &TestCtx::new().await?;
    let ns = create_namespace(&t.client, &t.cleanup, "fs-src").await?;
    stateful_set_on_real_node(t, &ns, "db", VOLUMES, serde_json::json!([])).await?;
    let written = volume_sums(t, &ns, "db-0", VOLUMES).await?;

    let backup = fs_backup(t, &ns).await?;
    let phase = backup_phase(t, &backup).await?;
    let pvbs = operation_phases(t, "PodVolumeBackup", "velero.io/backup-name", &backup).await?;
    ensure!(
        phase == "Completed" && pvbs.len() == 2 && pvbs.values().all(|p| p == "Completed"),
        "backup {backup} {phase}, PodVolumeBackups {pvbs:?}"
    );

    let to = unique_name("fs-dst");
    let restore = real_restore(t, &backup, &ns, &to).await?;
    let name = restore.name_any();
    let pvrs = operation_phases(t, "PodVolumeRestore", "velero.io/restore-name", &name).await?;
    ensure!(
        restore.data["status"]["phase"] == "Completed"
            && pvrs.len() == 2
            && pvrs.values().all(|p| p == "Completed"),
        "restore {name} {}, PodVolumeRestores {pvrs:?}",
        restore.data["status"]
    );
    let restored = volume_sums(t, &to, "db-0", VOLUMES).await?;
    ensure!(
        restored == written,
        "restored bytes differ: written {written:?}, restored {restored:?}"
    );

    let (bundle, files) = completed_bundle(t, serde_json::json!({"restore": name})).await?;
    let findings = bundle.status.clone().unwrap_or_default().findings;
    ensure!(
        !findings.iter().any(|f| f.severity == "error"),
        "a healthy restore got error findings: {findings:?}"
    );
    let agent = real_node_agent(t).await?.name_any();
    let agent_log = text(&files, &format!("logs/node-agent/{agent}/node-agent.log"))?;
    for pvr in pvrs.keys() {
        data_path_lines_of(&t.env.velero, &agent_log, pvr)?;
    }
    let report = text(&files, "report.html")?;
    let bars = report.matches(r#"data-kind="PodVolumeRestore""#).count();
    ensure!(
        bars == 2,
        "report.html draws {bars} PodVolumeRestore bars, not 2"
    );
    Ok(())
}

/// Scenario 2: the repository password (Secret velero-repo-credentials) changed after the
/// repository was made. The next backup's volume fails on the repository, and the bundle names
/// the BackupRepository and the Secret first. Serial: every repository reads that Secret.
#[tokio::test]
async fn serial_real_node_a_changed_repository_password_is_named_before_the_failed_volume()
-> Result<()> {
    let t = &TestCtx::new().await?;
    let (ns, _) = backed_up_volume(t, "fs-pw").await?;

    let secrets: Api<Secret> = Api::namespaced(t.client.clone(), &t.env.namespace);
    let secret = secrets.get("velero-repo-credentials").await?;
    let original = secret
        .data
        .as_ref()
        .and_then(|d| d.get("repository-password"))
        .context("no repository-password")?;
    t.cleanup.merge_patch(
        &ApiResource::erase::<Secret>(&()),
        Some(&t.env.namespace),
        "velero-repo-credentials",
        serde_json::json!({"data": {"repository-password": original}}),
    );
    secrets
        .patch(
            "velero-repo-credentials",
            &PatchParams::default(),
            &Patch::Merge(
                serde_json::json!({"stringData": {"repository-password": unique_name("changed")}}),
            ),
        )
        .await?;

    // Started without `--wait`, so the password goes back whatever happens, but only after the
    // volume met it.
    let second = async {
        let location = t.env.real_node()?.storage_location.clone();
        let name = unique_name("bk-pw");
        velero(
            &t.env,
            &[
                "backup",
                "create",
                &name,
                "--include-namespaces",
                &ns,
                "--default-volumes-to-fs-backup",
                "--storage-location",
                &location,
            ],
        )
        .await?;
        eventually(
            &format!("backup {name} to finish"),
            Duration::from_secs(300),
            || async {
                let phase = backup_phase(t, &name).await?;
                Ok(matches!(
                    phase.as_str(),
                    Some("Completed" | "PartiallyFailed" | "Failed")
                )
                .then(|| name.clone()))
            },
        )
        .await
    }
    .await;
    // The password goes back before anything else can fail.
    secrets
        .patch(
            "velero-repo-credentials",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"data": {"repository-password": original}})),
        )
        .await?;
    let second = second?;
    let pvbs = operation_phases(t, "PodVolumeBackup", "velero.io/backup-name", &second).await?;
    ensure!(
        backup_phase(t, &second).await? == "PartiallyFailed"
            && !pvbs.is_empty()
            && pvbs.values().all(|p| p == "Failed"),
        "backup {second}: PodVolumeBackups {pvbs:?}"
    );
    // The BackupRepository object of the namespace, as Velero named it.
    let (_, repository) = backup_repository_of(t, &ns).await?;
    let (bundle, files) = completed_bundle(t, serde_json::json!({"backup": second})).await?;
    assert_first_finding(
        &bundle,
        &files,
        "repository-password-invalid",
        &[&repository, "refuses the repository password"],
    )?;
    let step = bundle
        .status
        .as_ref()
        .and_then(|s| s.findings[0].next_step.clone());
    ensure!(
        step.as_deref()
            .is_some_and(|s| s.contains("velero-repo-credentials")
                && s.contains(&format!("delete backuprepository {repository}"))),
        "next step {step:?}"
    );
    Ok(())
}

/// Scenario 3: the node-agent kept off the real node by its DaemonSet's nodeSelector while a
/// backup wants a volume of a pod there. Velero refuses the volume; the bundle's first finding
/// names the node and why no node-agent runs there. Serial: it takes the node-agent away.
#[tokio::test]
async fn serial_real_node_a_node_agent_kept_off_the_volume_s_node_is_named_with_why() -> Result<()>
{
    let t = &TestCtx::new().await?;
    let real = t.env.real_node()?.name.clone();
    let ns = create_namespace(&t.client, &t.cleanup, "fs-noagent").await?;
    stateful_set_on_real_node(t, &ns, "db", &["data"], serde_json::json!([])).await?;
    let daemon_sets: Api<DaemonSet> = Api::namespaced(t.client.clone(), &t.env.namespace);
    let undo = serde_json::json!({"spec": {"template": {"spec": {"nodeSelector": null}}}});
    t.cleanup.merge_patch(
        &ApiResource::erase::<DaemonSet>(&()),
        Some(&t.env.namespace),
        "node-agent",
        undo.clone(),
    );
    daemon_sets
        .patch(
            "node-agent",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"template": {"spec": {"nodeSelector": {"type": "kwok"}}}}})),
        )
        .await?;
    let pods: Api<Pod> = Api::namespaced(t.client.clone(), &t.env.namespace);
    let on_real = ListParams::default()
        .labels("name=node-agent")
        .fields(&format!("spec.nodeName={real}"));
    eventually(
        "no node-agent pod on the real node",
        Duration::from_secs(90),
        || async { Ok(pods.list(&on_real).await?.items.is_empty().then_some(())) },
    )
    .await?;

    // The backup and its bundle while the node-agent is kept off: the bundle reads why.
    let found = async {
        let (bundle, files) = failed_fs_backup_bundle(t, &ns).await?;
        assert_first_finding(
            &bundle,
            &files,
            "node-agent-missing",
            &[&real, "nodeSelector"],
        )?;
        let step = first_next_step(&bundle);
        ensure!(
            step.contains(&format!("be placed on node {real}"))
                && step.contains("edit daemonset node-agent"),
            "next step: {step}"
        );
        Ok(())
    }
    .await;
    daemon_sets
        .patch("node-agent", &PatchParams::default(), &Patch::Merge(undo))
        .await?;
    real_node_agent_back(t).await?;
    found
}

/// Scenario 4: a data-path pod that cannot start. node-agent's ConfigMap gives data-path pods
/// more CPU than the real node has; the kubelet rejects the pod (OutOfcpu), Velero cancels the
/// volume and the backup ends PartiallyFailed. The bundle names the node, why, and the
/// ConfigMap to edit. Serial: it restarts the real node's node-agent with that ConfigMap.
#[tokio::test]
async fn serial_real_node_a_data_path_pod_the_node_rejects_is_named_with_the_config_map()
-> Result<()> {
    let t = &TestCtx::new().await?;
    let real = t.env.real_node()?.name.clone();
    let ns = create_namespace(&t.client, &t.cleanup, "fs-cpu").await?;
    stateful_set_on_real_node(t, &ns, "db", &["data"], serde_json::json!([])).await?;

    let config_map = unique_name("na-cpu");
    let resources = r#"{"podResources":{"cpuRequest":"64","cpuLimit":"64","memoryRequest":"64Mi","memoryLimit":"256Mi"}}"#;
    let node_agent = real_node_agent_with_config_map(t, &config_map, resources).await?;

    let found = async {
        let backup = fs_backup(t, &ns).await?;
        let pvbs = operation_phases(t, "PodVolumeBackup", "velero.io/backup-name", &backup).await?;
        ensure!(
            backup_phase(t, &backup).await? == "PartiallyFailed"
                && !pvbs.is_empty()
                && pvbs.values().all(|p| p == "Canceled"),
            "backup {backup}: PodVolumeBackups {pvbs:?}"
        );
        let (bundle, files) = completed_bundle(t, serde_json::json!({"backup": backup})).await?;
        assert_first_finding(
            &bundle,
            &files,
            "data-path-pod-rejected",
            &[&real, "enough resource: cpu"],
        )?;
        let step = bundle
            .status
            .as_ref()
            .and_then(|s| s.findings[0].next_step.clone());
        ensure!(
            step.as_deref().is_some_and(|s| s.contains(&format!(
                "kubectl -n {} edit configmap {config_map}",
                t.env.namespace
            ))),
            "next step {step:?}"
        );
        Ok(())
    }
    .await;
    node_agent.undo(t).await?;
    found
}

/// Scenario 5: a restored pod that never reaches Velero's restore-wait init container. A
/// mutating webhook (as a mesh's injector does) puts a failing init container before it, so no
/// node-agent ever accepts the PodVolumeRestore and Velero gives up at the restore's
/// `velero.io/pod-volume-timeout`. The bundle names the init container, and that it runs
/// before restore-wait, first.
#[tokio::test]
async fn a_failing_init_container_before_restore_wait_is_named_before_the_stuck_volume()
-> Result<()> {
    let t = &TestCtx::new().await?;
    let (ns, backup) = backed_up_volume(t, "fs-init").await?;

    let to = unique_name("fs-init-dst");
    let webhook = AdmissionWebhook::failing_mesh_init(&t.env).await?;
    webhook.inject_into(t, &to).await?;
    let restore = real_restore_annotated(
        t,
        &backup,
        (&ns, &to),
        serde_json::json!({"velero.io/pod-volume-timeout": "60s"}),
        Duration::from_secs(240),
    )
    .await?;
    let name = restore.name_any();
    let pvrs = operation_phases(t, "PodVolumeRestore", "velero.io/restore-name", &name).await?;
    ensure!(
        restore.data["status"]["phase"] == "PartiallyFailed"
            && pvrs.len() == 1
            && pvrs.values().all(|p| p.is_empty() || p == "New"),
        "restore {name} {}, PodVolumeRestores {pvrs:?}",
        restore.data["status"]
    );
    let pod = Api::<Pod>::namespaced(t.client.clone(), &to)
        .get("db-0")
        .await?;
    let init: Vec<String> = pod
        .spec
        .as_ref()
        .and_then(|s| s.init_containers.as_ref())
        .into_iter()
        .flatten()
        .map(|c| c.name.clone())
        .collect();
    ensure!(
        init == ["mesh-init", "restore-wait"],
        "the restored pod's init containers: {init:?}"
    );

    // The pod is the evidence: the operator reads it where rbac.workloadNamespaces lets it.
    grant_workload_reads(t, &to).await?;
    let (bundle, files) = completed_bundle(t, serde_json::json!({"restore": name})).await?;
    assert_first_finding(
        &bundle,
        &files,
        "init-container-before-restore-wait",
        &["mesh-init", "restore-wait"],
    )?;
    let step = bundle
        .status
        .as_ref()
        .and_then(|s| s.findings[0].next_step.clone());
    ensure!(
        step.as_deref()
            .is_some_and(|s| s.contains(&format!("kubectl -n {to} logs db-0 -c mesh-init"))),
        "next step {step:?}"
    );
    Ok(())
}

/// Scenario 6: a repository maintenance Job killed for memory. The Velero server's maintenance
/// ConfigMap gives this repository's jobs 12 MiB and the real node; the job's container is
/// OOMKilled and the BackupRepository records a failed maintenance. The bundle of the backup
/// that made the repository names it first. Serial: it changes the server's ConfigMap.
#[tokio::test]
async fn serial_real_node_a_maintenance_job_killed_for_memory_is_named_first() -> Result<()> {
    let t = &TestCtx::new().await?;
    let real = t.env.real_node()?.clone();
    let (ns, backup) = backed_up_volume(t, "fs-maint").await?;

    let (repositories, repository) = backup_repository_of(t, &ns).await?;
    // The repository and its failed jobs go with the test: a later bundle of the location would
    // name them.
    t.cleanup.delete(
        &velero_debug_operator::velero::resource("BackupRepository"),
        Some(&t.env.namespace),
        &repository,
    );
    // Velero's key for this repository: VOLUME-NAMESPACE-LOCATION-TYPE.
    let key = format!("{ns}-{}-kopia", real.storage_location);
    let job_config = serde_json::json!({
        "podResources": {"cpuRequest": "0", "cpuLimit": "1", "memoryRequest": "12Mi", "memoryLimit": "12Mi"},
        "loadAffinity": [{"nodeSelector": {"matchLabels": {"kubernetes.io/hostname": real.name}}}],
    });
    let config_maps: Api<ConfigMap> = Api::namespaced(t.client.clone(), &t.env.namespace);
    let undo = serde_json::json!({"data": {&key: null}});
    t.cleanup.merge_patch(
        &ApiResource::erase::<ConfigMap>(&()),
        Some(&t.env.namespace),
        &real.maintenance_config_map,
        undo.clone(),
    );
    config_maps
        .patch(
            &real.maintenance_config_map,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"data": {&key: job_config.to_string()}})),
        )
        .await?;
    // Due at once: Velero runs it on the spec change and waits for the job.
    repositories
        .patch(
            &repository,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"maintenanceFrequency": "1s"}})),
        )
        .await?;
    let failed = eventually(
        &format!("a failed maintenance of BackupRepository {repository}"),
        Duration::from_secs(240),
        || async {
            let repo = repositories.get(&repository).await?;
            let last = repo.data["status"]["recentMaintenance"]
                .as_array()
                .and_then(|runs| runs.last().cloned());
            Ok(last.filter(|run| run["result"] == "Failed"))
        },
    )
    .await;
    // Maintenance goes back to hourly whatever happened, so no other test meets it again.
    repositories
        .patch(
            &repository,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"maintenanceFrequency": "1h"}})),
        )
        .await?;
    config_maps
        .patch(
            &real.maintenance_config_map,
            &PatchParams::default(),
            &Patch::Merge(undo),
        )
        .await?;
    failed?;
    let jobs: Api<Job> = Api::namespaced(t.client.clone(), &t.env.namespace);
    for job in jobs
        .list(&ListParams::default().labels(&format!("velero.io/repo-name={repository}")))
        .await?
    {
        t.cleanup.delete(
            &ApiResource::erase::<Job>(&()),
            Some(&t.env.namespace),
            &job.name_any(),
        );
    }

    let (bundle, files) = completed_bundle(t, serde_json::json!({"backup": backup})).await?;
    assert_first_finding(
        &bundle,
        &files,
        "repository-maintenance-failed",
        &[&repository, "OOMKilled"],
    )?;
    // The ConfigMap and this repository's key in it, which gave the job its 12 MiB.
    let step = first_next_step(&bundle);
    ensure!(
        step.contains(&format!(
            "ConfigMap {}, under key {key}",
            real.maintenance_config_map
        )) && step.contains(&format!(
            "kubectl -n {} edit configmap {}",
            t.env.namespace, real.maintenance_config_map
        )),
        "next step: {step}"
    );
    Ok(())
}

//! Issue 55: the data path on the real node (tests/env/node-up.sh). Velero's own node-agent
//! runs there in a container, moves real bytes through kopia into the S3 store, and its
//! bundles are read from what it really wrote.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::{
    Api, ResourceExt,
    api::{ListParams, LogParams},
};
use velero_debug_e2e::{
    TestCtx, create_namespace, eventually,
    fixtures::{backup_namespace, backup_phase, completed_bundle, real_restore, text},
    real_node::{operation_phases, real_node_agent, stateful_set_on_real_node, volume_sums},
    unique_name,
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
        log.contains(&format!("node={}", real.name)) || log.contains(&real.name),
        "the node-agent's log does not name its node {}:\n{}",
        real.name,
        &log[..log.len().min(2000)]
    );
    Ok(())
}

const VOLUMES: &[&str] = &["data", "wal"];

/// Scenario 1: a healthy fs-backup and restore of a StatefulSet with two volumes. Both
/// PodVolumeBackups and both PodVolumeRestores Complete, the restored bytes equal the backed-up
/// ones, and the restore's bundle holds the real node-agent's log (with its data-path pods'
/// logs, which the node-agent copies into it), draws a bar per volume operation, and finds no
/// error.
#[tokio::test]
async fn a_healthy_fs_backup_and_restore_moves_real_bytes_and_its_bundle_draws_each_volume()
-> Result<()> {
    let t = &TestCtx::new().await?;
    let location = t.env.real_node()?.storage_location.clone();
    let ns = create_namespace(&t.client, &t.cleanup, "fs-src").await?;
    stateful_set_on_real_node(t, &ns, "db", VOLUMES, serde_json::json!([])).await?;
    let written = volume_sums(t, &ns, "db-0", VOLUMES).await?;

    let (backup, _) = backup_namespace(
        t,
        &ns,
        &[
            "--default-volumes-to-fs-backup",
            "--storage-location",
            &location,
        ],
    )
    .await?;
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
        ensure!(
            agent_log.contains(&format!("collect data mover pod log for {pvr}")),
            "the node-agent's log in the bundle lacks the data-path pod of {pvr}"
        );
    }
    let report = text(&files, "report.html")?;
    let bars = report.matches(r#"data-kind="PodVolumeRestore""#).count();
    ensure!(
        bars == 2,
        "report.html draws {bars} PodVolumeRestore bars, not 2"
    );
    Ok(())
}

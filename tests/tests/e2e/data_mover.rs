//! Issue 73: CSI snapshots and Velero's data mover on the real node, every part real: the
//! upstream snapshot controller, csi-snapshotter and csi-provisioner over our hostpath driver
//! (tests/env/csi-driver), the kubelet's CSI volume plugin, Velero's CSI support and its
//! node-agent's data mover pods, which move the snapshots' bytes into the S3 store.

use anyhow::{Context, Result, ensure};
use kube::{Api, ResourceExt, api::ListParams, core::DynamicObject};
use velero_debug_e2e::{
    archives::text,
    backups::backup_phase,
    bundles::completed_bundle,
    context::{TestCtx, unique_name},
    data_mover::{csi_workload, data_mover_backup},
    real_node::{data_path_lines_of, real_node_agent, volume_sums},
    restores::real_restore,
};
use velero_debug_operator::velero::resource as velero_resource;

/// Velero's `kind` objects (DataUpload, DataDownload) labelled `label=value`.
async fn operations(
    t: &TestCtx,
    kind: &str,
    label: &str,
    value: &str,
) -> Result<Vec<DynamicObject>> {
    let api = Api::<DynamicObject>::namespaced_with(
        t.client.clone(),
        &t.env.namespace,
        &velero_resource(kind),
    );
    let list = api
        .list(&ListParams::default().labels(&format!("{label}={value}")))
        .await?;
    Ok(list.items)
}

/// Each operation's phase and bytes done, by name.
fn phases_and_bytes(ops: &[DynamicObject]) -> Vec<(String, String, u64)> {
    ops.iter()
        .map(|o| {
            let status = &o.data["status"];
            (
                o.name_any(),
                status["phase"].as_str().unwrap_or_default().to_string(),
                status["progress"]["bytesDone"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

/// Scenario 1 of the data mover: a backup with `--snapshot-move-data` of a StatefulSet on the
/// CSI class. The real snapshot controller and csi-snapshotter make its VolumeSnapshot, the
/// node-agent's data mover pod moves it (DataUpload Completed, bytes > 0), and a restore
/// through a DataDownload gives the same bytes back. The restore's bundle holds the data mover
/// pods' own lines (the node-agent copies them into its log), draws a bar per DataDownload, and
/// finds no error; the backup's bundle draws its DataUpload.
#[tokio::test]
async fn a_healthy_data_mover_backup_and_restore_moves_real_bytes_and_its_bundles_draw_each_volume()
-> Result<()> {
    let t = &TestCtx::new().await?;
    let ns = csi_workload(t, "dm-src", &["data"]).await?;
    let written = volume_sums(t, &ns, "db-0", &["data"]).await?;

    let (backup, _) = data_mover_backup(t, &ns, &[]).await?;
    let phase = backup_phase(t, &backup).await?;
    let uploads = operations(t, "DataUpload", "velero.io/backup-name", &backup).await?;
    let up = phases_and_bytes(&uploads);
    ensure!(
        phase == "Completed"
            && up.len() == 1
            && up.iter().all(|(_, p, b)| p == "Completed" && *b > 0),
        "backup {backup} {phase}, DataUploads (name, phase, bytes) {up:?}"
    );

    let to = unique_name("dm-dst");
    let restore = real_restore(t, &backup, &ns, &to).await?;
    let name = restore.name_any();
    let downloads = operations(t, "DataDownload", "velero.io/restore-name", &name).await?;
    let down = phases_and_bytes(&downloads);
    ensure!(
        restore.data["status"]["phase"] == "Completed"
            && down.len() == 1
            && down.iter().all(|(_, p, b)| p == "Completed" && *b > 0),
        "restore {name} {}, DataDownloads {down:?}",
        restore.data["status"]
    );
    let restored = volume_sums(t, &to, "db-0", &["data"]).await?;
    ensure!(
        restored == written,
        "restored bytes differ: written {written:?}, restored {restored:?}"
    );

    let (bundle, files) = completed_bundle(t, serde_json::json!({"restore": name})).await?;
    let findings = bundle.status.clone().unwrap_or_default().findings;
    ensure!(
        !findings.iter().any(|f| f.severity == "error"),
        "a healthy data mover restore got error findings: {findings:?}"
    );
    let agent = real_node_agent(t).await?.name_any();
    let agent_log = text(&files, &format!("logs/node-agent/{agent}/node-agent.log"))?;
    for (dd, _, _) in &down {
        data_path_lines_of(&t.env.velero, &agent_log, dd)?;
    }
    let report = text(&files, "report.html")?;
    let bars = report.matches(r#"data-kind="DataDownload""#).count();
    ensure!(
        bars == 1,
        "report.html draws {bars} DataDownload bars, not 1"
    );

    let (_, files) = completed_bundle(t, serde_json::json!({"backup": backup})).await?;
    let report = text(&files, "report.html")?;
    let bars = report.matches(r#"data-kind="DataUpload""#).count();
    ensure!(
        bars == 1,
        "the backup's report.html draws {bars} DataUpload bars, not 1"
    );
    let agent_log = text(&files, &format!("logs/node-agent/{agent}/node-agent.log"))
        .context("the backup's bundle lacks the real node-agent's log")?;
    for (du, _, _) in &up {
        data_path_lines_of(&t.env.velero, &agent_log, du)?;
    }
    Ok(())
}

//! Issue 73: failures of the data mover and of CSI snapshots made by the real components on the
//! real node (the snapshot controller, csi-snapshotter, csi-provisioner, the kubelet and
//! Velero's node-agent), each named by its cause first with a next step naming the real
//! object. Serial: each changes the real node's node-agent or stops a CSI process.

use anyhow::{Context, Result, ensure};
use velero_debug_e2e::{
    bundles::completed_bundle,
    data_mover::{
        StoppedCsiProcess, UnlabelledSnapshotClasses, csi_workload, data_mover_backup,
        data_path_pods_gone, termination_record_written,
    },
    findings::{assert_first_finding, first_next_step, said_first, status_findings},
    real_node::{
        operation_phases, real_node_agent_with_config_map, real_node_agent_with_config_map_and_args,
    },
};

/// node-agent's ConfigMap gives data mover pods 16 MiB; the kubelet kills the DataUpload's
/// pod for memory, Velero fails the DataUpload and deletes the pod. The bundle, made after the
/// pod is gone, names `OOMKilled` and the ConfigMap's key first (from the operator's record of
/// the pod's end), with the edit that raises it.
#[tokio::test]
async fn serial_real_node_a_data_mover_pod_killed_for_memory_is_named_after_velero_deleted_it()
-> Result<()> {
    let t = &velero_debug_e2e::context::TestCtx::new().await?;
    let ns = csi_workload(t, "dm-oom", &["data"]).await?;
    let config_map = "node-agent-config";
    let resources = r#"{"podResources":{"cpuRequest":"0","cpuLimit":"1","memoryRequest":"16Mi","memoryLimit":"16Mi"}}"#;
    let node_agent = real_node_agent_with_config_map(t, config_map, resources).await?;
    let found = async {
        let (backup, _) = data_mover_backup(t, &ns, &[]).await?;
        let uploads = operation_phases(t, "DataUpload", "velero.io/backup-name", &backup).await?;
        ensure!(
            !uploads.is_empty() && uploads.values().all(|p| p == "Failed" || p == "Canceled"),
            "backup {backup}: DataUploads {uploads:?}"
        );
        data_path_pods_gone(t, "velero.io/data-upload", &uploads).await?;
        termination_record_written(t).await?;
        let (bundle, files) = completed_bundle(t, serde_json::json!({"backup": backup})).await?;
        assert_first_finding(
            &bundle,
            &files,
            "data-path-pod-out-of-memory",
            &["OOMKilled", "limit 16Mi"],
        )?;
        said_first(
            &files,
            &format!("ConfigMap {}/{config_map}, key node-agent-config.json: podResources.memoryLimit 16Mi", t.env.namespace),
        )?;
        let step = first_next_step(&bundle);
        ensure!(
            step.contains(&format!(
                "kubectl -n {} edit configmap {config_map}",
                t.env.namespace
            )),
            "next step: {step}"
        );
        let du = uploads.keys().next().context("a DataUpload")?;
        let recorded = format!("pods/recorded/{du}.yaml");
        let file = status_findings(&bundle).first().and_then(|f| f.file.clone());
        ensure!(
            files.contains_key(&recorded) && file.as_deref() == Some(recorded.as_str()),
            "the first finding's file {file:?}, not the recorded pod {recorded}"
        );
        Ok(())
    }
    .await;
    node_agent.undo(t).await?;
    found
}

/// The snapshot controller not running (a common install gap: it ships with the CSI
/// external-snapshotter, neither with Velero nor with most drivers). The backup's VolumeSnapshot
/// never gets a content, and Velero gives up at the Backup's `csiSnapshotTimeout`. The bundle
/// names the stuck snapshot first with the check of the snapshot controller; the timeout is
/// its consequence and no longer advises waiting longer.
#[tokio::test]
async fn serial_real_node_a_backup_without_a_snapshot_controller_names_the_stuck_snapshot_first()
-> Result<()> {
    let t = &velero_debug_e2e::context::TestCtx::new().await?;
    let ns = csi_workload(t, "dm-nosc", &["data"]).await?;
    let stopped = StoppedCsiProcess::stop("snapshot-controller").await?;
    let backup = data_mover_backup(t, &ns, &["--csi-snapshot-timeout", "15s"]).await;
    stopped.start().await?;
    let (backup, _) = backup?;
    let (bundle, files) = completed_bundle(t, serde_json::json!({"backup": backup})).await?;
    assert_first_finding(
        &bundle,
        &files,
        "volume-snapshot-not-reconciled",
        &[&format!("VolumeSnapshot {ns}/velero-data-db-0-")],
    )?;
    let step = first_next_step(&bundle);
    ensure!(
        step.contains("kubectl get pods -A | grep snapshot-controller"),
        "next step: {step}"
    );
    said_first(&files, "grep snapshot-controller")?;
    let findings = status_findings(&bundle);
    let timeout = findings
        .iter()
        .find(|f| f.rule == "csi-snapshot-timeout")
        .context("no csi-snapshot-timeout finding")?;
    let timeout_step = timeout.next_step.as_deref().unwrap_or_default();
    ensure!(
        timeout_step.contains("finding 1") && !timeout_step.contains("--csi-snapshot-timeout"),
        "the timeout is not the stuck snapshot's consequence: {timeout:?}"
    );
    Ok(())
}

/// No VolumeSnapshotClass Velero may use for the driver: its class lost Velero's label and a
/// second class of the same driver exists (Velero takes a lone class unlabelled). The claim's
/// CSI action fails; the bundle names the driver and the label to set.
#[tokio::test]
async fn serial_real_node_no_snapshot_class_velero_may_use_is_named_with_the_label_to_set()
-> Result<()> {
    let t = &velero_debug_e2e::context::TestCtx::new().await?;
    let csi = t.env.real_node()?.csi.clone();
    let ns = csi_workload(t, "dm-nocl", &["data"]).await?;
    let classes = UnlabelledSnapshotClasses::make(t, &csi.snapshot_class, &csi.driver).await?;
    let backup = data_mover_backup(t, &ns, &[]).await;
    classes.undo(t).await?;
    let (backup, _) = backup?;
    let (bundle, files) = completed_bundle(t, serde_json::json!({"backup": backup})).await?;
    assert_first_finding(
        &bundle,
        &files,
        "no-volume-snapshot-class",
        &[&format!(
            "for {} (StorageClass {})",
            csi.driver, csi.storage_class
        )],
    )?;
    let step = first_next_step(&bundle);
    ensure!(
        step.contains("velero.io/csi-volumesnapshot-class=true") && step.contains(&csi.driver),
        "next step: {step}"
    );
    said_first(&files, "failed to get VolumeSnapshotClass for StorageClass")?;
    Ok(())
}

/// A data mover pod that cannot start: node-agent's ConfigMap keeps data mover pods to nodes
/// with a label none has (`loadAffinity`), so the DataUpload's pod stays Pending until the
/// node-agent's prepare timeout cancels the DataUpload. The bundle names the pod's reason and
/// the ConfigMap.
#[tokio::test]
async fn serial_real_node_a_data_mover_pod_that_cannot_be_placed_names_its_reason_and_config_map()
-> Result<()> {
    let t = &velero_debug_e2e::context::TestCtx::new().await?;
    let ns = csi_workload(t, "dm-noplace", &["data"]).await?;
    let config_map = "node-agent-config";
    let affinity =
        r#"{"loadAffinity":[{"nodeSelector":{"matchLabels":{"vdo.test/data-mover":"nowhere"}}}]}"#;
    let node_agent = real_node_agent_with_config_map_and_args(
        t,
        config_map,
        affinity,
        &["--data-mover-prepare-timeout=20s"],
    )
    .await?;
    let found = async {
        let (backup, _) = data_mover_backup(t, &ns, &[]).await?;
        let uploads = operation_phases(t, "DataUpload", "velero.io/backup-name", &backup).await?;
        ensure!(
            !uploads.is_empty() && uploads.values().all(|p| p == "Canceled" || p == "Failed"),
            "backup {backup}: DataUploads {uploads:?}"
        );
        let (bundle, files) = completed_bundle(t, serde_json::json!({"backup": backup})).await?;
        assert_first_finding(
            &bundle,
            &files,
            "data-path-pod-unschedulable",
            &[
                "could not be scheduled",
                "didn't match Pod's node affinity/selector",
            ],
        )?;
        said_first(
            &files,
            &format!(
                "ConfigMap {}/{config_map}, key node-agent-config.json: loadAffinity",
                t.env.namespace
            ),
        )?;
        let step = first_next_step(&bundle);
        ensure!(
            step.contains(&format!(
                "kubectl -n {} edit configmap {config_map}",
                t.env.namespace
            )),
            "next step: {step}"
        );
        Ok(())
    }
    .await;
    node_agent.undo(t).await?;
    found
}

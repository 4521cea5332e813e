//! CSI snapshots and Velero's data mover on the real node (tests/env/lifecycle/real-node/csi.sh):
//! workloads on the CSI StorageClass, backups that move their snapshots' data into the real
//! node's storage location, and the CSI processes a test stops to make the failure their
//! absence causes.

use anyhow::{Result, ensure};

use crate::{
    backups::backup_namespace,
    context::{TestCtx, create_namespace},
    env::tests_dir,
    real_node::stateful_set_of_class,
};

/// A namespace `prefix-...` whose StatefulSet `db` runs on the real node with one volume per
/// entry of `volumes`, each a claim of the CSI StorageClass (our driver's, made by the real
/// csi-provisioner): the namespace.
pub async fn csi_workload(t: &TestCtx, prefix: &str, volumes: &[&str]) -> Result<String> {
    let ns = create_namespace(&t.client, &t.cleanup, prefix).await?;
    let class = t.env.real_node()?.csi.storage_class.clone();
    stateful_set_of_class(t, &ns, "db", volumes, serde_json::json!([]), Some(&class)).await?;
    Ok(ns)
}

/// A backup of namespace `ns` whose CSI snapshots' data the node-agent moves into the real
/// node's storage location (`--snapshot-move-data`), with `extra` arguments; its name and uid
/// once finished.
pub async fn data_mover_backup(t: &TestCtx, ns: &str, extra: &[&str]) -> Result<(String, String)> {
    let location = t.env.real_node()?.storage_location.clone();
    let mut args = vec!["--snapshot-move-data", "--storage-location", &location];
    args.extend(extra);
    backup_namespace(t, ns, &args).await
}

/// Stops or starts one of CSI's processes (`snapshot-controller`, `driver`, `provisioner`,
/// `snapshotter`) through csi.sh, as the environment starts them.
pub async fn csi_process(action: &str, component: &str) -> Result<()> {
    let script = tests_dir().join("env/lifecycle/real-node/csi.sh");
    let out = tokio::process::Command::new("bash")
        .arg(&script)
        .args([action, component])
        .output()
        .await?;
    ensure!(
        out.status.success(),
        "csi.sh {action} {component} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

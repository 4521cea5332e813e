//! CSI snapshots and Velero's data mover on the real node (tests/env/lifecycle/real-node/csi.sh):
//! workloads on the CSI StorageClass, backups that move their snapshots' data into the real
//! node's storage location, and the CSI processes a test stops to make the failure their
//! absence causes.

use std::{collections::BTreeMap, time::Duration};

use anyhow::{Result, ensure};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::{
    Api, ResourceExt,
    api::{DynamicObject, ListParams, Patch, PatchParams, PostParams},
    core::{ApiResource, GroupVersionKind},
};
use velero_debug_crd::TERMINATION_RECORD;

use crate::{
    backups::backup_namespace,
    context::{TestCtx, create_namespace},
    env::tests_dir,
    polling::eventually,
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

/// One of CSI's processes a test stopped; started again by [`StoppedCsiProcess::start`], or
/// when dropped should the test fail first, so the next test finds it running.
pub struct StoppedCsiProcess {
    component: &'static str,
    started: bool,
}

impl StoppedCsiProcess {
    /// Stops `component` (`snapshot-controller`, `driver`, `provisioner`, `snapshotter`).
    pub async fn stop(component: &'static str) -> Result<StoppedCsiProcess> {
        csi_process("stop", component).await?;
        Ok(StoppedCsiProcess {
            component,
            started: false,
        })
    }

    pub async fn start(mut self) -> Result<()> {
        self.started = true;
        csi_process("start", self.component).await
    }
}

impl Drop for StoppedCsiProcess {
    fn drop(&mut self) {
        if !self.started {
            let script = tests_dir().join("env/lifecycle/real-node/csi.sh");
            let _ = std::process::Command::new("bash")
                .arg(script)
                .args(["start", self.component])
                .status();
        }
    }
}

/// The environment's VolumeSnapshotClass without Velero's label, beside a second class of the
/// same driver: Velero then has no class it may use. Put back by [`Self::undo`], or by the
/// test's cleanup (the second class) and on drop (the label) should the test fail first.
pub struct UnlabelledSnapshotClasses {
    class: String,
    undone: bool,
}

const VELERO_CLASS_LABEL: &str = "velero.io/csi-volumesnapshot-class";

impl UnlabelledSnapshotClasses {
    pub async fn make(t: &TestCtx, class: &str, driver: &str) -> Result<Self> {
        let api = Api::<DynamicObject>::all_with(t.client.clone(), &snapshot_class_resource());
        let second = format!("{class}-retain");
        t.cleanup.delete(&snapshot_class_resource(), None, &second);
        let retained: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotClass",
            "metadata": {"name": second}, "driver": driver, "deletionPolicy": "Retain",
        }))?;
        api.create(&PostParams::default(), &retained).await?;
        let unlabel = serde_json::json!({"metadata": {"labels": {VELERO_CLASS_LABEL: null}}});
        api.patch(class, &PatchParams::default(), &Patch::Merge(&unlabel))
            .await?;
        Ok(UnlabelledSnapshotClasses {
            class: class.to_string(),
            undone: false,
        })
    }

    pub async fn undo(mut self, t: &TestCtx) -> Result<()> {
        self.undone = true;
        let api = Api::<DynamicObject>::all_with(t.client.clone(), &snapshot_class_resource());
        let label = serde_json::json!({"metadata": {"labels": {VELERO_CLASS_LABEL: "true"}}});
        api.patch(&self.class, &PatchParams::default(), &Patch::Merge(&label))
            .await?;
        let _ = api
            .delete(&format!("{}-retain", self.class), &Default::default())
            .await;
        Ok(())
    }
}

impl Drop for UnlabelledSnapshotClasses {
    fn drop(&mut self) {
        if !self.undone {
            let _ = std::process::Command::new("kubectl")
                .args(["label", "--overwrite", "volumesnapshotclass", &self.class])
                .arg(format!("{VELERO_CLASS_LABEL}=true"))
                .status();
        }
    }
}

fn snapshot_class_resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "snapshot.storage.k8s.io",
        "v1",
        "VolumeSnapshotClass",
    ))
}

/// Stops or starts one of CSI's processes (`snapshot-controller`, `driver`, `provisioner`,
/// `snapshotter`) through csi.sh, as the environment starts them.
async fn csi_process(action: &str, component: &str) -> Result<()> {
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

/// Waits until Velero deleted the data-path pods of `ops` (keys: the operations' names, which
/// 1.17+ gives their pods), found by their operation's label `label`
/// (`velero.io/pod-volume-backup`, `velero.io/data-upload`, ...).
pub async fn data_path_pods_gone(
    t: &TestCtx,
    label: &str,
    ops: &BTreeMap<String, String>,
) -> Result<()> {
    let pods: Api<Pod> = Api::namespaced(t.client.clone(), &t.env.namespace);
    eventually(
        "Velero deleting the data-path pods",
        Duration::from_secs(180),
        || async {
            let listed = pods.list(&ListParams::default().labels(label)).await?;
            let left = listed
                .items
                .iter()
                .filter(|p| ops.contains_key(&p.name_any()))
                .count();
            Ok((left == 0).then_some(()))
        },
    )
    .await
}

/// Waits until the operator wrote its record of ended pods (it writes every 10 s).
pub async fn termination_record_written(t: &TestCtx) -> Result<()> {
    let config_maps: Api<ConfigMap> = Api::namespaced(t.client.clone(), &t.env.namespace);
    eventually(
        "the operator's record of ended pods written",
        Duration::from_secs(60),
        || async {
            let map = config_maps.get(TERMINATION_RECORD).await?;
            Ok(map.binary_data.filter(|d| !d.is_empty()).map(drop))
        },
    )
    .await
}

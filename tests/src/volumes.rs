//! Volumes for the kwok tests' workloads: a claim bound to a static volume that nothing
//! attaches. Velero with CSI on (as the environment runs it) fails an unbound claim's backup
//! (`PVC ... has no volume backing this claim`), so a claim a test backs up is bound.

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::PersistentVolume;
use kube::{Api, ResourceExt, api::PostParams, core::ApiResource};

use crate::context::TestCtx;

/// The StorageClass of the tests' static volumes: no provisioner serves it.
pub const STATIC_CLASS: &str = "velerodebug-e2e-none";

/// A PersistentVolume named `name` for claim `namespace/claim` (static, of [`STATIC_CLASS`],
/// never attached by anything here); its uid.
pub async fn static_volume(
    t: &TestCtx,
    name: &str,
    namespace: &str,
    claim: &str,
) -> Result<String> {
    let pv: PersistentVolume = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": STATIC_CLASS,
            "hostPath": {"path": "/tmp/velerodebug-e2e"},
            "claimRef": {"namespace": namespace, "name": claim},
        },
    }))?;
    t.cleanup
        .delete(&ApiResource::erase::<PersistentVolume>(&()), None, name);
    let created = Api::<PersistentVolume>::all(t.client.clone())
        .create(&PostParams::default(), &pv)
        .await?;
    created.uid().context("the PV has no uid")
}

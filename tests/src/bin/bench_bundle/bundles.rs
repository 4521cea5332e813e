//! The bundles the scenarios time: applied and watched until Completed, their manifest read,
//! and deleted after; and the PodVolumeBackups a bundle of a backup covers.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use kube::{Api, Client, api::PostParams};
use velero_debug_crd::{DebugBundle, Phase};
use velero_debug_e2e::{
    archives::untar,
    context::{TestCtx, unique_name},
    operations::operation_object,
};

/// Applies a bundle and waits for Completed; returns it and the wall time.
pub(crate) async fn bundle(
    t: &TestCtx,
    spec: serde_json::Value,
) -> Result<(DebugBundle, Duration)> {
    let (env, client) = (&t.env, &t.client);
    let name = unique_name("bench-vdb");
    let obj: DebugBundle = serde_json::from_value(serde_json::json!({
        "apiVersion": "velerodebug.io/v1alpha1", "kind": "DebugBundle",
        "metadata": {"name": name, "namespace": env.namespace}, "spec": spec
    }))?;
    let api: Api<DebugBundle> = Api::namespaced(client.clone(), &env.namespace);
    let start = Instant::now();
    api.create(&PostParams::default(), &obj).await?;
    // Watched, not polled: a poll each second added up to a second (half on average) to every
    // bundle's wall time, and nothing to the baselines'.
    let finished = |b: Option<&DebugBundle>| {
        let phase = b.and_then(|b| b.status.as_ref()).and_then(|s| s.phase);
        matches!(phase, Some(Phase::Completed | Phase::Failed))
    };
    let done = tokio::time::timeout(
        Duration::from_secs(1800),
        kube::runtime::wait::await_condition(api.clone(), &name, finished),
    )
    .await
    .context("bench bundle not finished after 30 minutes")??
    .context("bench bundle deleted")?;
    let wall = start.elapsed();
    ensure!(
        done.status.as_ref().and_then(|s| s.phase) == Some(Phase::Completed),
        "bundle failed: {:?}",
        done.status
    );
    Ok((done, wall))
}

pub(crate) async fn manifest(b: &DebugBundle) -> Result<serde_json::Value> {
    let url = b
        .status
        .as_ref()
        .and_then(|s| s.download_url.clone())
        .context("no URL")?;
    let bytes = reqwest::get(&url).await?.bytes().await?;
    let files = untar(&bytes)?;
    let (_, m) = files
        .iter()
        .find(|(k, _)| k.ends_with("/manifest.json"))
        .context("no manifest")?;
    Ok(serde_json::from_slice(m)?)
}

/// Deletes a measured bundle (its archive goes with it: the finalizer), so rounds do not fill
/// the bucket; not waited for.
pub(crate) async fn forget(client: &Client, namespace: &str, bundle: &DebugBundle) -> Result<()> {
    let name = bundle.metadata.name.as_deref().context("no name")?;
    Api::<DebugBundle>::namespaced(client.clone(), namespace)
        .delete(name, &Default::default())
        .await?;
    Ok(())
}

/// A PodVolumeBackup of `backup` on node-0.
pub(crate) async fn pvb(t: &TestCtx, backup: &str, uid: &str) -> Result<String> {
    operation_object(t, "PodVolumeBackup",
        serde_json::json!({"velero.io/backup-name": backup, "velero.io/backup-uid": uid}),
        serde_json::json!({"node": "node-0", "backupStorageLocation": "default", "repoIdentifier": "",
                           "uploaderType": "kopia", "volume": "data", "tags": {},
                           "pod": {"kind": "Pod", "namespace": "default", "name": "app"}}),
        serde_json::json!({"phase": "Completed"}),
    )
    .await
}

//! Backups by the real Velero server (of a namespace of the test's own, into a given storage
//! location, or with any `velero backup create` arguments), and a Backup's phase.

use std::time::Duration;

use anyhow::Result;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api, ResourceExt,
    api::{DynamicObject, PostParams},
};
use velero_debug_operator::velero::resource as velero_resource;

use crate::{
    context::{TestCtx, create_namespace, unique_name},
    velero_cli::{in_final_phase, velero},
};

/// A namespace of the test's own with a ConfigMap, backed up by the real Velero server;
/// returns the namespace, the backup's name and its uid. (The Backup stays: deleting its object
/// alone would not delete it, Velero syncs it back from the bucket.)
pub async fn real_backup(t: &TestCtx, prefix: &str) -> Result<(String, String, String)> {
    real_backup_in(t, prefix, None).await
}

/// [`real_backup`] into the storage location `location` (None: the default one).
pub async fn real_backup_in(
    t: &TestCtx,
    prefix: &str,
    location: Option<&str>,
) -> Result<(String, String, String)> {
    let (client, cleanup) = (&t.client, &t.cleanup);
    let ns = create_namespace(client, cleanup, prefix).await?;
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "settings"}, "data": {"greeting": "hello"}
    }))?;
    Api::<ConfigMap>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &cm)
        .await?;
    let extra = location.map(|l| vec!["--storage-location", l]);
    let (backup, uid) = backup_namespace(t, &ns, &extra.unwrap_or_default()).await?;
    Ok((ns, backup, uid))
}

/// A backup of namespace `ns` by the real Velero server, with more `args` to `velero backup
/// create`; waits until it finished and returns its name and uid.
pub async fn backup_namespace(t: &TestCtx, ns: &str, args: &[&str]) -> Result<(String, String)> {
    let mut all = vec!["--include-namespaces", ns];
    all.extend(args);
    real_backup_with(t, &all).await
}

/// Held while the API types Velero's discovery knows may go away (a test that deletes a CRD
/// Velero has seen, until Velero has read its discovery again): a backup listing every type
/// then fails on the one gone (`no matches for kind`), so backups wait for it to end. Shared:
/// backups run beside each other.
static API_TYPES: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// Taken by a test for as long as a type Velero's discovery knows is gone from the API server;
/// [`real_backup_with`] waits until it is dropped.
pub async fn api_types_changing() -> tokio::sync::RwLockWriteGuard<'static, ()> {
    API_TYPES.write().await
}

/// A backup by the real Velero server with `args` to `velero backup create`; waits until it
/// finished and returns its name and uid.
pub async fn real_backup_with(t: &TestCtx, args: &[&str]) -> Result<(String, String)> {
    let env = &t.env;
    let _steady = API_TYPES.read().await;
    let backup = unique_name("bk");
    let mut all = vec!["backup", "create", &backup, "--wait"];
    all.extend(args);
    velero(env, &all).await?;
    let uid = in_final_phase(t, "Backup", &backup, Duration::from_secs(120))
        .await?
        .uid()
        .unwrap_or_default();
    Ok((backup, uid))
}

/// The phase the Velero server gave Backup `name` (JSON null while it has none).
pub async fn backup_phase(t: &TestCtx, name: &str) -> Result<serde_json::Value> {
    let backups = Api::<DynamicObject>::namespaced_with(
        t.client.clone(),
        &t.env.namespace,
        &velero_resource("Backup"),
    );
    Ok(backups.get(name).await?.data["status"]["phase"].clone())
}

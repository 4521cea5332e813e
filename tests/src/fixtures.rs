//! Objects the end-to-end tests and the bench make: real backups by the real Velero server,
//! operation objects labelled as Velero labels them, and DebugBundles.

use std::time::Duration;

use anyhow::Result;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api, Client, ResourceExt,
    api::{DynamicObject, Patch, PatchParams, PostParams},
    core::{ApiResource, GroupVersionKind},
};
use velero_debug_crd::DebugBundle;

use crate::{Env, create_namespace, eventually, unique_name, velero};

pub fn velero_resource(kind: &str) -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk("velero.io", "v1", kind))
}

/// kwok's log-serving rules; "Logs" is already plural.
pub fn kwok_logs_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kwok.x-k8s.io", "v1alpha1", "Logs"),
        "logs",
    )
}

/// A namespace of the test's own with a ConfigMap, backed up by the real Velero server;
/// returns the namespace, the backup's name and its uid.
pub async fn real_backup(
    env: &Env,
    client: &Client,
    prefix: &str,
) -> Result<(String, String, String)> {
    let ns = create_namespace(client, prefix).await?;
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "settings"}, "data": {"greeting": "hello"}
    }))?;
    Api::<ConfigMap>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &cm)
        .await?;
    let backup = unique_name("bk");
    velero(
        env,
        &[
            "backup",
            "create",
            &backup,
            "--include-namespaces",
            &ns,
            "--wait",
        ],
    )
    .await?;
    let uid = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        &env.namespace,
        &velero_resource("Backup"),
    )
    .get(&backup)
    .await?
    .uid()
    .unwrap_or_default();
    Ok((ns, backup, uid))
}

pub async fn apply_bundle(env: &Env, client: &Client, spec: serde_json::Value) -> Result<String> {
    let name = unique_name("vdb");
    let bundle: DebugBundle = serde_json::from_value(serde_json::json!({
        "apiVersion": "velerodebug.io/v1alpha1", "kind": "DebugBundle",
        "metadata": {"name": name, "namespace": env.namespace},
        "spec": spec,
    }))?;
    Api::<DebugBundle>::namespaced(client.clone(), &env.namespace)
        .create(&PostParams::default(), &bundle)
        .await?;
    Ok(name)
}

pub async fn wait_finished(
    env: &Env,
    client: &Client,
    name: &str,
    timeout: Duration,
) -> Result<DebugBundle> {
    let api: Api<DebugBundle> = Api::namespaced(client.clone(), &env.namespace);
    eventually(
        &format!("DebugBundle {name} to finish"),
        timeout,
        || async {
            let b = api.get(name).await?;
            let done = b
                .status
                .as_ref()
                .and_then(|s| s.phase)
                .is_some_and(|p| p.is_finished());
            Ok(done.then_some(b))
        },
    )
    .await
}

/// A PodVolumeBackup/Restore made by hand, labelled to its target as Velero labels them.
pub async fn operation_object(
    env: &Env,
    client: &Client,
    kind: &str,
    labels: serde_json::Value,
    spec: serde_json::Value,
    status: serde_json::Value,
) -> Result<String> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &env.namespace, &velero_resource(kind));
    let name = unique_name(&kind.to_lowercase());
    let mut obj = DynamicObject::new(&name, &velero_resource(kind))
        .within(&env.namespace)
        .data(serde_json::json!({"spec": spec, "status": status.clone()}));
    obj.metadata.labels = serde_json::from_value(labels)?;
    api.create(&PostParams::default(), &obj).await?;
    // Velero's CRDs have no status subresource today (status is kept from the create); should
    // a later version add one, set it through it.
    let patch = serde_json::json!({"status": status});
    match api
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(patch))
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => {}
        Err(e) => return Err(e.into()),
    }
    Ok(name)
}

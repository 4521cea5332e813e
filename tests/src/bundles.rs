//! DebugBundles: applying one, waiting until it finished, Completed or gone, and reading its
//! Ready condition (typed, or untyped where the typed client cannot read the object).

use std::{collections::BTreeMap, time::Duration};

use anyhow::{Context, Result, ensure};
use kube::{
    Api,
    api::{DynamicObject, PostParams},
    core::{ApiResource, GroupVersionKind},
};
use velero_debug_crd::{DebugBundle, Phase};

use crate::{
    archives::download,
    context::{TestCtx, unique_name},
    polling::eventually,
};

pub async fn apply_bundle(t: &TestCtx, spec: serde_json::Value) -> Result<String> {
    let (env, client, cleanup) = (&t.env, &t.client, &t.cleanup);
    let name = unique_name("vdb");
    let bundle: DebugBundle = serde_json::from_value(serde_json::json!({
        "apiVersion": "velerodebug.io/v1alpha1", "kind": "DebugBundle",
        "metadata": {"name": name, "namespace": env.namespace},
        "spec": spec,
    }))?;
    Api::<DebugBundle>::namespaced(client.clone(), &env.namespace)
        .create(&PostParams::default(), &bundle)
        .await?;
    cleanup.object::<DebugBundle>(&env.namespace, &name);
    Ok(name)
}

pub async fn wait_finished(t: &TestCtx, name: &str, timeout: Duration) -> Result<DebugBundle> {
    let (env, client) = (&t.env, &t.client);
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

/// A bundle of `spec` applied and waited for (three minutes at most) until it finished.
pub async fn finished_bundle(t: &TestCtx, spec: serde_json::Value) -> Result<DebugBundle> {
    let name = apply_bundle(t, spec).await?;
    wait_finished(t, &name, Duration::from_secs(180)).await
}

/// [`finished_bundle`], Completed, and its files.
pub async fn completed_bundle(
    t: &TestCtx,
    spec: serde_json::Value,
) -> Result<(DebugBundle, BTreeMap<String, Vec<u8>>)> {
    let bundle = finished_bundle(t, spec).await?;
    ensure!(
        bundle.status.as_ref().and_then(|s| s.phase) == Some(Phase::Completed),
        "bundle not Completed: {}",
        condition_reason(&bundle)
    );
    let files = download(&bundle).await?;
    Ok((bundle, files))
}

/// [`wait_finished`], and Completed: the reason in the error otherwise.
pub async fn wait_completed(t: &TestCtx, name: &str, timeout: Duration) -> Result<DebugBundle> {
    let b = wait_finished(t, name, timeout).await?;
    ensure!(
        b.status.as_ref().and_then(|s| s.phase) == Some(Phase::Completed),
        "{name}: {}",
        condition_reason(&b)
    );
    Ok(b)
}

/// A bundle of `spec` applied and waited for until Completed (two minutes at most); its name
/// and its archive's key.
pub async fn completed_archive(t: &TestCtx, spec: serde_json::Value) -> Result<(String, String)> {
    let name = apply_bundle(t, spec).await?;
    let done = wait_completed(t, &name, Duration::from_secs(120)).await?;
    let key = done
        .status
        .and_then(|s| s.archive)
        .with_context(|| format!("{name}: Completed without an archive"))?
        .key;
    Ok((name, key))
}

/// Waits until the DebugBundle is gone (deleted, its finalizer done).
pub async fn bundle_gone(t: &TestCtx, name: &str, timeout: Duration) -> Result<()> {
    let (env, client) = (&t.env, &t.client);
    let api: Api<DebugBundle> = Api::namespaced(client.clone(), &env.namespace);
    eventually(
        &format!("DebugBundle {name} to be gone"),
        timeout,
        || async { Ok(api.get_opt(name).await?.is_none().then_some(())) },
    )
    .await
}

/// The Ready condition's reason and message, for failure messages.
pub fn condition_reason(b: &DebugBundle) -> String {
    b.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
        .map(|c| format!("{}: {}", c.reason, c.message))
        .unwrap_or_default()
}

/// DebugBundles as untyped objects: for those the typed client cannot say or read.
pub fn debug_bundles_resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "velerodebug.io",
        "v1alpha1",
        "DebugBundle",
    ))
}

/// The Ready condition's reason and message of an untyped DebugBundle.
pub fn ready_condition(b: &DynamicObject) -> (String, String) {
    let c = b.data["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready").cloned())
        .unwrap_or_default();
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    (text(&c["reason"]), text(&c["message"]))
}

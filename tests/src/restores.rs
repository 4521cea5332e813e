//! Restores: real ones by the Velero server (a PartiallyFailed one too, refused by a quota),
//! ones made by hand as already finished, and restored pods with their claims and volumes.

use std::time::Duration;

use anyhow::{Result, ensure};
use k8s_openapi::api::core::v1::{Namespace, ResourceQuota};
use kube::{
    Api, ResourceExt,
    api::{DynamicObject, PostParams},
    core::ApiResource,
};
use velero_debug_operator::velero::resource as velero_resource;

use crate::{
    backups::real_backup,
    context::{TestCtx, unique_name},
    polling::eventually,
    storage_locations::merge,
    velero_cli::{in_final_phase, velero},
};

/// A Restore that the real Velero server ends PartiallyFailed: a namespace with a ConfigMap is
/// backed up, then restored into a namespace whose ResourceQuota admits no ConfigMap, so the
/// API server refuses it and Velero records the error. (A custom resource whose CRD is deleted
/// before the restore does not work here: Velero refreshes its discovery only every few
/// minutes, so a type created by the test is not in the backup.) Returns the restore's name.
pub async fn partially_failed_restore(t: &TestCtx) -> Result<String> {
    let (ns, backup, _) = real_backup(t, "pf-src").await?;
    let restored_ns = format!("{ns}-r");
    quota_refusing_configmaps(t, &restored_ns).await?;
    let restore = real_restore(t, &backup, &ns, &restored_ns).await?;
    let name = restore.name_any();
    let phase = restore.data["status"]["phase"].as_str().unwrap_or_default();
    ensure!(
        phase == "PartiallyFailed",
        "restore {name} ended {phase}, not PartiallyFailed"
    );
    Ok(name)
}

/// Makes namespace `namespace` with a ResourceQuota `no-configmaps` that admits no ConfigMap,
/// in force when this returns.
pub async fn quota_refusing_configmaps(t: &TestCtx, namespace: &str) -> Result<()> {
    let target: Namespace = serde_json::from_value(serde_json::json!({
        "metadata": {"name": namespace, "labels": {"velerodebug.io/e2e": "true"}}
    }))?;
    Api::<Namespace>::all(t.client.clone())
        .create(&PostParams::default(), &target)
        .await?;
    t.cleanup.namespace(namespace);
    let quota: ResourceQuota = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "no-configmaps"},
        "spec": {"hard": {"count/configmaps": "0"}},
    }))?;
    let quotas = Api::<ResourceQuota>::namespaced(t.client.clone(), namespace);
    quotas.create(&PostParams::default(), &quota).await?;
    // Admission enforces a quota once the quota controller has computed its status.
    eventually(
        "the quota to be in force",
        Duration::from_secs(60),
        || async {
            let q = quotas.get("no-configmaps").await?;
            Ok(q.status.and_then(|s| s.hard).map(|_| ()))
        },
    )
    .await?;
    Ok(())
}

/// A restore of `backup` by the real Velero server, the namespace `from` restored as `to`;
/// waits until it finished and returns the Restore.
pub async fn real_restore(
    t: &TestCtx,
    backup: &str,
    from: &str,
    to: &str,
) -> Result<DynamicObject> {
    // Registered first: the CLI may fail after Velero made it.
    t.cleanup.namespace(to);
    let mapping = format!("{from}:{to}");
    real_restore_with(t, backup, &["--namespace-mappings", &mapping]).await
}

/// A restore of `backup` by the real Velero server with `args` to `velero restore create`;
/// waits until it finished and returns the Restore.
pub async fn real_restore_with(t: &TestCtx, backup: &str, args: &[&str]) -> Result<DynamicObject> {
    let (env, cleanup) = (&t.env, &t.cleanup);
    let restore = unique_name("rs");
    cleanup.delete(&velero_resource("Restore"), Some(&env.namespace), &restore);
    let mut all = vec![
        "restore",
        "create",
        &restore,
        "--from-backup",
        backup,
        "--wait",
    ];
    all.extend(args);
    velero(env, &all).await?;
    in_final_phase(t, "Restore", &restore, Duration::from_secs(120)).await
}

/// A Restore of `backup` from namespace `from` into `to`, made through the API with
/// `annotations` (which `velero restore create` has no flag for); waits up to `limit` until it
/// finished and returns it.
pub async fn real_restore_annotated(
    t: &TestCtx,
    backup: &str,
    (from, to): (&str, &str),
    annotations: serde_json::Value,
    limit: Duration,
) -> Result<DynamicObject> {
    let restore = start_restore_annotated(t, backup, (from, to), annotations).await?;
    in_final_phase(t, "Restore", &restore, limit).await
}

/// [`real_restore_annotated`], started and not waited for: its name.
pub async fn start_restore_annotated(
    t: &TestCtx,
    backup: &str,
    (from, to): (&str, &str),
    annotations: serde_json::Value,
) -> Result<String> {
    let (env, cleanup) = (&t.env, &t.cleanup);
    cleanup.namespace(to);
    let restore = unique_name("rs");
    cleanup.delete(&velero_resource("Restore"), Some(&env.namespace), &restore);
    let api = Api::<DynamicObject>::namespaced_with(
        t.client.clone(),
        &env.namespace,
        &velero_resource("Restore"),
    );
    let object: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "velero.io/v1", "kind": "Restore",
        "metadata": {"name": restore, "annotations": annotations},
        "spec": {"backupName": backup, "includedNamespaces": [from],
                 "namespaceMapping": {from: to}},
    }))?;
    api.create(&PostParams::default(), &object).await?;
    Ok(restore)
}

/// A hand-made Restore that ended PartiallyFailed just now, without annotations: the kind
/// that gets an automatic bundle.
pub async fn partially_failed_now(t: &TestCtx, backup: &str) -> Result<(String, String)> {
    let none = serde_json::json!({});
    finished_restore(t, backup, "PartiallyFailed", Duration::ZERO, none).await
}

/// A Restore made by hand as already finished (`phase`, ended `ended_ago`), which the Velero
/// server leaves alone; returns its name and uid. Its automatic bundle, owned by it, goes with
/// it at cleanup.
pub async fn finished_restore(
    t: &TestCtx,
    backup: &str,
    phase: &str,
    ended_ago: Duration,
    annotations: serde_json::Value,
) -> Result<(String, String)> {
    let (env, client, cleanup) = (&t.env, &t.client, &t.cleanup);
    let name = unique_name("rs-made");
    let ended = jiff::Timestamp::now() - jiff::SignedDuration::try_from(ended_ago)?;
    let started = ended - jiff::SignedDuration::from_secs(5);
    let restore: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "velero.io/v1", "kind": "Restore",
        "metadata": {"name": name, "namespace": env.namespace, "annotations": annotations},
        "spec": {"backupName": backup},
        "status": {
            "phase": phase, "errors": 1,
            "startTimestamp": started.to_string(), "completionTimestamp": ended.to_string(),
        },
    }))?;
    let created = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        &env.namespace,
        &velero_resource("Restore"),
    )
    .create(&PostParams::default(), &restore)
    .await?;
    cleanup.delete(&velero_resource("Restore"), Some(&env.namespace), &name);
    Ok((name, created.uid().unwrap_or_default()))
}

/// A restored pod (Velero's `labels` on it and its claim) placed by `placement` (its spec's
/// `nodeName`, or a `nodeSelector`), using the claim `claim` bound to the PV `volume`; all
/// three made here, the PV removed by the cleanup (the namespace's go with it).
pub async fn restored_pod_with_volume(
    t: &TestCtx,
    ns: &str,
    (pod, claim, volume): (&str, &str, &str),
    labels: serde_json::Value,
    placement: serde_json::Value,
) -> Result<()> {
    use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
    let class = "velerodebug-e2e-none";
    let pv: PersistentVolume = serde_json::from_value(serde_json::json!({
        "metadata": {"name": volume, "labels": labels},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                 "hostPath": {"path": format!("/data/{volume}")},
                 "claimRef": {"namespace": ns, "name": claim}, "storageClassName": class},
    }))?;
    Api::<PersistentVolume>::all(t.client.clone())
        .create(&PostParams::default(), &pv)
        .await?;
    t.cleanup
        .delete(&ApiResource::erase::<PersistentVolume>(&()), None, volume);
    let pvc: PersistentVolumeClaim = serde_json::from_value(serde_json::json!({
        "metadata": {"name": claim, "labels": labels},
        "spec": {"accessModes": ["ReadWriteOnce"], "volumeName": volume, "storageClassName": class,
                 "resources": {"requests": {"storage": "1Gi"}}},
    }))?;
    Api::<PersistentVolumeClaim>::namespaced(t.client.clone(), ns)
        .create(&PostParams::default(), &pvc)
        .await?;
    let mut spec = serde_json::json!({
        "containers": [{"name": "app", "image": "registry.example.com/app:1.0"}],
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}],
    });
    merge(&mut spec, placement);
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": pod, "labels": labels}, "spec": spec,
    }))?;
    let pods = Api::<Pod>::namespaced(t.client.clone(), ns);
    // A namespace made a moment ago may not have its default ServiceAccount yet.
    eventually(
        "the pod to be admitted",
        Duration::from_secs(60),
        || async { Ok(Some(pods.create(&PostParams::default(), &pod).await?)) },
    )
    .await?;
    Ok(())
}

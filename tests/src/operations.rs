//! Velero's volume operations made by hand (PodVolumeBackups, PodVolumeRestores,
//! DataDownloads), labelled to their Backup or Restore as Velero labels them, and the pod a
//! PodVolumeRestore ran for where Velero 1.14 needs it.

use std::time::Duration;

use anyhow::Result;
use kube::{
    Api,
    api::{DynamicObject, Patch, PatchParams, PostParams},
};
use velero_debug_operator::velero::resource as velero_resource;

use crate::{
    context::{TestCtx, unique_name},
    polling::eventually,
    rbac::grant_workload_reads,
};

/// A PodVolumeBackup/Restore made by hand, labelled to its target as Velero labels them.
pub async fn operation_object(
    t: &TestCtx,
    kind: &str,
    labels: serde_json::Value,
    spec: serde_json::Value,
    status: serde_json::Value,
) -> Result<String> {
    let (env, client, cleanup) = (&t.env, &t.client, &t.cleanup);
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &env.namespace, &velero_resource(kind));
    let name = unique_name(&kind.to_lowercase());
    let mut obj = DynamicObject::new(&name, &velero_resource(kind))
        .within(&env.namespace)
        .data(serde_json::json!({"spec": spec, "status": status.clone()}));
    obj.metadata.labels = serde_json::from_value(labels)?;
    api.create(&PostParams::default(), &obj).await?;
    cleanup.delete(&velero_resource(kind), Some(&env.namespace), &name);
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

/// A Failed PodVolumeBackup of `backup` for pod `namespace`/app on `node`, made by hand: the
/// node is involved, so its node-agent's logs go into the backup's bundle. Returns its name.
pub async fn failed_pod_volume_backup_on(
    t: &TestCtx,
    backup: &str,
    backup_uid: &str,
    namespace: &str,
    node: &str,
) -> Result<String> {
    operation_object(
        t,
        "PodVolumeBackup",
        serde_json::json!({"velero.io/backup-name": backup, "velero.io/backup-uid": backup_uid}),
        serde_json::json!({
            "node": node, "backupStorageLocation": "default", "repoIdentifier": "", "uploaderType": "kopia",
            "pod": {"kind": "Pod", "namespace": namespace, "name": "app"}, "volume": "data", "tags": {}
        }),
        serde_json::json!({"phase": "Failed", "message": "data path failed"}),
    )
    .await
}

/// A PodVolumeRestore of `restore` (name, uid) for volume `data` of pod `pod` (namespace,
/// name), with `status`, labelled as Velero labels it.
pub async fn pod_volume_restore(
    t: &TestCtx,
    (restore, restore_uid): (&str, &str),
    (namespace, pod): (&str, &str),
    status: serde_json::Value,
) -> Result<String> {
    if let Some(node) = status["node"].as_str() {
        place_restore_pod(t, namespace, pod, node).await?;
    }
    operation_object(t, "PodVolumeRestore",
        serde_json::json!({"velero.io/restore-name": restore, "velero.io/restore-uid": restore_uid}),
        serde_json::json!({
            "backupStorageLocation": "default", "repoIdentifier": "", "uploaderType": "kopia",
            "pod": {"kind": "Pod", "namespace": namespace, "name": pod}, "volume": "data",
            "snapshotID": "5d2c0e1f", "sourceNamespace": namespace,
        }),
        status,
    )
    .await
}

/// Where a PodVolumeRestore ran, as Velero 1.14 says it: its CRD has no `status.node` (the API
/// server prunes it), and the node-agent of its pod's node serves it. On 1.14 the pod is made on
/// `node`, in `namespace`, readable by the operator; on later Velero `status.node` says it and
/// nothing is made.
pub async fn place_restore_pod(t: &TestCtx, namespace: &str, pod: &str, node: &str) -> Result<()> {
    use k8s_openapi::api::core::v1::Pod;
    if t.env.velero.minor() > 14 {
        return Ok(());
    }
    match grant_workload_reads(t, namespace).await {
        Err(e) if is_conflict(&e) => {}
        other => other?,
    }
    let made: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": pod},
        "spec": {"nodeName": node, "containers": [{"name": "app", "image": "busybox"}]},
    }))?;
    let pods = Api::<Pod>::namespaced(t.client.clone(), namespace);
    // The namespace's default ServiceAccount, which admission wants, comes a moment later; a
    // pod of that name already there (restored) stays.
    eventually("the restored pod made", Duration::from_secs(30), || async {
        Ok(match pods.create(&PostParams::default(), &made).await {
            Ok(_) => Some(()),
            Err(kube::Error::Api(s)) if s.code == 409 => Some(()),
            Err(_) => None,
        })
    })
    .await
}

/// The API server answered 409: it exists already.
fn is_conflict(e: &anyhow::Error) -> bool {
    matches!(e.downcast_ref::<kube::Error>(), Some(kube::Error::Api(s)) if s.code == 409)
}

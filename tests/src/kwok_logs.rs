//! Container logs that kwok serves from CRI log files: its Logs resource, the files' format,
//! and data-path pods of a PodVolumeBackup with such logs.

use std::time::Duration;

use anyhow::Result;
use kube::{
    Api,
    api::{DynamicObject, PostParams},
    core::{ApiResource, GroupVersionKind},
};

use crate::{
    context::{TestCtx, unique_name},
    operations::operation_object,
    polling::eventually,
};

/// kwok's log-serving rules; "Logs" is already plural.
pub fn kwok_logs_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kwok.x-k8s.io", "v1alpha1", "Logs"),
        "logs",
    )
}

/// `lines` as a CRI log file holds them (kwok serves such files as pod logs).
pub fn cri_lines(lines: &[String]) -> String {
    let now = jiff::Timestamp::now();
    lines
        .iter()
        .map(|l| format!("{now} stdout F {l}\n"))
        .collect()
}

/// A data-path pod of a hand-made PodVolumeBackup of `backup` (in Velero's namespace) whose
/// container log holds about `bytes` of varied lines, served by kwok from a CRI log file in
/// the environment's pod-log folder; so a bundle of the backup takes a while to collect and
/// upload. Returns the log file (the caller removes it) once its last line is served.
pub async fn data_path_log(
    t: &TestCtx,
    (backup, backup_uid, namespace): (&str, &str, &str),
    bytes: usize,
) -> Result<std::path::PathBuf> {
    let pvb = operation_object(t, "PodVolumeBackup",
        serde_json::json!({"velero.io/backup-name": backup, "velero.io/backup-uid": backup_uid}),
        serde_json::json!({
            "node": "node-0", "backupStorageLocation": "default", "repoIdentifier": "", "uploaderType": "kopia",
            "pod": {"kind": "Pod", "namespace": namespace, "name": "app"}, "volume": "data", "tags": {}
        }),
        serde_json::json!({"phase": "InProgress"}),
    )
    .await?;
    let pod_name = unique_name("datapath");
    let now = jiff::Timestamp::now();
    // Lines that compress like real ones (a counter and a pseudo-random digest), not to nothing.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut lines = Vec::new();
    let mut size = 0;
    let mut i = 0u64;
    while size < bytes {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let line = format!(
            "time=\"{now}\" level=info msg=\"uploaded chunk {i} digest {state:016x}{:016x}\" logSource=\"pkg/uploader/kopia/progress.go:100\"",
            state.rotate_left(29)
        );
        size += line.len() + 48; // and the CRI prefix
        lines.push(line);
        i += 1;
    }
    lines.push(format!("last line of {pod_name}"));
    data_path_pod(t, &pvb, &pod_name, &lines, serde_json::json!([])).await
}

/// Pod `pod_name` of PodVolumeBackup `pvb` on node-0, its container `data-mover` run with
/// `container_env`, whose log is `lines` (a CRI log file kwok serves). Returns the log file
/// (the caller removes it) once the last line is served.
pub async fn data_path_pod(
    t: &TestCtx,
    pvb: &str,
    pod_name: &str,
    lines: &[String],
    container_env: serde_json::Value,
) -> Result<std::path::PathBuf> {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::LogParams;
    let (env, client, cleanup) = (&t.env, &t.client, &t.cleanup);
    let log_path = env.pod_logs_dir.join(format!("{pod_name}.log"));
    let now = jiff::Timestamp::now();
    let content: String = lines
        .iter()
        .map(|l| format!("{now} stdout F {l}\n"))
        .collect();
    std::fs::write(&log_path, content)?;
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": pod_name, "labels": {"velero.io/pod-volume-backup": pvb}},
        "spec": {"nodeName": "node-0", "containers": [{
            "name": "data-mover", "image": "velero/velero", "env": container_env
        }]}
    }))?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &env.namespace);
    pods.create(&PostParams::default(), &pod).await?;
    cleanup.object::<Pod>(&env.namespace, pod_name);
    let logs_api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &env.namespace, &kwok_logs_resource());
    let logs_obj = DynamicObject::new(pod_name, &kwok_logs_resource())
        .within(&env.namespace)
        .data(serde_json::json!({"spec": {"logs": [{"containers": ["data-mover"], "logsFile": log_path}]}}));
    logs_api.create(&PostParams::default(), &logs_obj).await?;
    cleanup.delete(&kwok_logs_resource(), Some(&env.namespace), pod_name);
    // kwok serves the tail by line count, as the bundle asks for it.
    let last = LogParams {
        tail_lines: Some(1),
        ..LogParams::default()
    };
    let want = lines.last().map(|l| l.trim_end()).unwrap_or_default();
    eventually(
        "data-path pod log served",
        Duration::from_secs(60),
        || async {
            Ok(pods
                .logs(pod_name, &last)
                .await
                .ok()
                .filter(|l| l.trim_end() == want)
                .map(|_| ()))
        },
    )
    .await?;
    Ok(log_path)
}

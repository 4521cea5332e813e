//! Kubernetes objects: the target, its operation objects, and the state of the Velero install.

use std::{collections::BTreeSet, time::Duration};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use kube::{
    Api, ResourceExt,
    api::{ListParams, PostParams},
    core::DynamicObject,
};

use super::{
    CollectError, Found, Sink, Sources, TargetObjects, infrastructure, repositories, snapshots,
    velero_config_maps, workloads::PodRef,
};
use crate::{
    findings::restore_placed_by_its_pod,
    kubernetes,
    tar_gz::EntryPath,
    velero::{self, operation_node},
};

pub(super) async fn target_yaml(
    src: &Sources<'_>,
    out: &mut Sink,
    found: &mut Found,
    objects: &TargetObjects,
) -> Result<(), CollectError> {
    let kind = src.plan.target.kind().to_lowercase();
    let path = EntryPath::new(&["resources"], &kind, "yaml");
    let target = out.add_object_seen(&path, &objects.target)?;
    found
        .summary
        .evidence
        .set_target(&path.to_string(), &target);
    if found.summary.evidence.target.kind.is_empty() {
        found.summary.evidence.target.kind = src.plan.target.kind().to_string();
    }
    if let Some(backup) = &objects.backup {
        let path = EntryPath::new(&["resources"], "backup", "yaml");
        let backup = out.add_object_seen(&path, backup)?;
        found
            .summary
            .evidence
            .set_restore_backup(&path.to_string(), &backup);
    } else if let velero::Target::Restore(_) = &src.plan.target {
        let backup = objects.target.data["spec"]["backupName"]
            .as_str()
            .unwrap_or("<none>");
        out.warn(format!(
            "the restore's backup {backup} does not exist any more; its YAML is not in the bundle"
        ));
    }
    Ok(())
}

/// PodVolumeBackups/Restores and DataUploads/Downloads of the target, found by the uid label
/// and the name label (Velero shortens long names in labels). Each is written as its page
/// comes: a restore of thousands holds one page of them, not all (twice, one a selector).
pub(super) async fn operations(
    src: &Sources<'_>,
    out: &mut Sink,
    found: &mut Found,
    objects: &TargetObjects,
) -> Result<(), CollectError> {
    let uid = objects.target.uid().unwrap_or_default();
    // (completed, pod): the pods of operations that did not complete come first.
    let mut named_pods: Vec<(bool, PodRef)> = Vec::new();
    let selector = src.plan.target.operation_selector(&uid);
    for kind in src.plan.target.operation_kinds() {
        let api = src.dynamic_api(kind);
        let resource = velero::resource(kind);
        let what = format!("{kind} ({selector})");
        let lp = ListParams::default().labels(&selector);
        let each = |out: &mut Sink, obj: DynamicObject| {
            let obj = kubernetes::with_types(obj, &resource);
            add_operation(out, found, kind, &obj, &mut named_pods)
        };
        src.list_each(out, &api, lp, &what, each).await?;
    }
    named_pods.sort();
    let mut seen = BTreeSet::new();
    found.operation_pods = named_pods
        .into_iter()
        .map(|(_, pod)| pod)
        .filter(|pod| seen.insert(pod.clone()))
        .collect();
    Ok(())
}

/// One operation object: written, into the evidence, its node and pod remembered.
fn add_operation(
    out: &mut Sink,
    found: &mut Found,
    kind: &str,
    obj: &DynamicObject,
    named_pods: &mut Vec<(bool, PodRef)>,
) -> Result<(), CollectError> {
    let node = operation_node(obj);
    found.operation_names.insert(obj.name_any());
    if let Some(pod) = PodRef::named_by(&obj.data) {
        let phase = obj.data["status"]["phase"].as_str().unwrap_or_default();
        if node.is_none() && kind == "PodVolumeRestore" && restore_placed_by_its_pod(phase) {
            found.unplaced_restore_pods.insert(pod.clone());
        }
        named_pods.push((phase == "Completed", pod));
    }
    found.involved_nodes.extend(node);
    let path = EntryPath::new(
        &["resources", &kind.to_lowercase()],
        &obj.name_any(),
        "yaml",
    );
    let seen = out.add_object_seen(&path, obj)?;
    found
        .summary
        .evidence
        .add_operation(&path.to_string(), kind, &seen);
    Ok(())
}

/// Storage locations, the Velero workloads and their flags, the nodes, the repositories and
/// snapshot contents of the data path, and the server's version.
pub(super) async fn cluster_state(
    src: &Sources<'_>,
    out: &mut Sink,
    found: &mut Found,
) -> Result<(), CollectError> {
    for kind in ["BackupStorageLocation", "VolumeSnapshotLocation"] {
        let api = src.dynamic_api(kind);
        if let Some(items) = src.list_all(out, &api, ListParams::default(), kind).await {
            for obj in items {
                let path = EntryPath::new(
                    &["resources", &kind.to_lowercase()],
                    &obj.name_any(),
                    "yaml",
                );
                let seen = out.add_object_seen(&path, &obj)?;
                if kind == "BackupStorageLocation" {
                    found
                        .summary
                        .evidence
                        .add_storage_location(&path.to_string(), &seen);
                }
            }
        }
    }
    let deployments: Api<Deployment> = src.namespaced();
    match src.timed(deployments.get_opt("velero")).await {
        Ok(Some(d)) => {
            let path = EntryPath::new(&["resources"], "deployment-velero", "yaml");
            let seen = out.add_object_seen(&path, &d)?;
            found
                .summary
                .evidence
                .infra
                .set_velero_deployment(&path.to_string(), &seen);
        }
        Ok(None) => out.warn("Deployment velero not found"),
        Err(e) => out.warn(format!("Deployment velero: {e}")),
    }
    let daemonsets: Api<DaemonSet> = src.namespaced();
    match src.timed(daemonsets.get_opt("node-agent")).await {
        Ok(Some(d)) => {
            let path = EntryPath::new(&["resources"], "daemonset-node-agent", "yaml");
            let seen = out.add_object_seen(&path, &d)?;
            found
                .summary
                .evidence
                .infra
                .set_node_agent_daemonset(&path.to_string(), &seen);
        }
        Ok(None) => {
            out.warn("DaemonSet node-agent not found (no file-system backup or data mover)")
        }
        Err(e) => out.warn(format!("DaemonSet node-agent: {e}")),
    }
    // After the workloads, whose flags name them.
    velero_config_maps::all(src, out, found).await?;
    // After DaemonSet node-agent: the nodes table says why it cannot run on a node.
    infrastructure::nodes(src, out, found).await?;
    repositories::all(src, out, found).await?;
    snapshots::all(src, out, found).await?;
    server_version(src, out, found).await
}

/// Asks the server itself, as `velero version` does, with a ServerStatusRequest; falls back to
/// the image tag of the Deployment when the server does not answer in time.
async fn server_version(
    src: &Sources<'_>,
    out: &mut Sink,
    found: &mut Found,
) -> Result<(), CollectError> {
    let api = src.dynamic_api("ServerStatusRequest");
    let mut request = DynamicObject::new("", &velero::resource("ServerStatusRequest"))
        .within(&src.namespace)
        .data(serde_json::json!({"spec": {}}));
    request.metadata.name = None;
    request.metadata.generate_name = Some("velero-debug-".into());
    request.metadata.labels = Some(
        [(
            "app.kubernetes.io/managed-by".to_string(),
            "velero-debug-operator".to_string(),
        )]
        .into(),
    );
    let created = match src
        .timed(api.create(&PostParams::default(), &request))
        .await
    {
        Ok(r) => r,
        Err(e) => {
            out.warn(format!("ServerStatusRequest could not be created: {e}"));
            return image_version(src, out, found).await;
        }
    };
    let name = created.name_any();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut answer = None;
    // The server answers within milliseconds: a fixed half-second wait held every bundle up
    // by that much; the wait doubles up to it for a server that is slow.
    let mut wait = Duration::from_millis(20);
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(wait).await;
        if let Ok(Some(r)) = src.timed(api.get_opt(&name)).await
            && r.data["status"]["phase"] == "Processed"
        {
            answer = Some(r);
            break;
        }
        wait = (wait * 2).min(Duration::from_millis(500));
    }
    // The server deletes answered requests itself after a minute; this is only tidier.
    let _ = src.timed(kubernetes::delete_if_present(&api, &name)).await;
    match answer {
        Some(r) => {
            let status = &r.data["status"];
            found.summary.server_version = status["serverVersion"].as_str().map(str::to_string);
            out.add_object(&server_status_path(), status)
        }
        None => {
            out.warn("the Velero server did not answer a ServerStatusRequest within 20s");
            image_version(src, out, found).await
        }
    }
}

fn server_status_path() -> EntryPath {
    EntryPath::new(&["velero"], "server-status", "yaml")
}

async fn image_version(
    src: &Sources<'_>,
    out: &mut Sink,
    found: &mut Found,
) -> Result<(), CollectError> {
    let deployments: Api<Deployment> = src.namespaced();
    if let Ok(Some(d)) = src.timed(deployments.get_opt("velero")).await {
        let image = d
            .spec
            .and_then(|s| s.template.spec)
            .and_then(|s| s.containers.into_iter().find(|c| c.name == "velero"))
            .and_then(|c| c.image);
        if let Some(image) = image {
            let version = image.rsplit_once(':').map(|(_, tag)| tag.to_string());
            found.summary.server_version = version.clone();
            out.add_text(
                &server_status_path(),
                &format!(
                    "source: image tag of Deployment velero\nimage: {image}\nserverVersion: {}\n",
                    version.unwrap_or_default()
                ),
            )?;
        }
    }
    Ok(())
}

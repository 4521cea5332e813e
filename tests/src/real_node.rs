//! The real node (tests/env/lifecycle/real-node/node-up.sh): a kubelet with containerd on this machine, where
//! Velero's node-agent and its data-path pods run for real. Workloads placed there with real
//! volumes (local-path-provisioner), and what they wrote, read back through their logs.

use std::{collections::BTreeMap, time::Duration};

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::{
    apps::v1::{DaemonSet, StatefulSet},
    core::v1::{ConfigMap, Pod},
};
use kube::{
    Api, ResourceExt,
    api::{DynamicObject, ListParams, LogParams, Patch, PatchParams, PostParams},
    core::ApiResource,
};
use serde::Deserialize;
use velero_debug_operator::velero::resource as velero_resource;

use crate::{context::TestCtx, polling::eventually};

/// env.json's `realNode`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RealNodeEnv {
    /// The Node's name (`node-real`).
    pub name: String,
    /// Its InternalIP: the pods' bridge gateway on this machine.
    pub address: String,
    /// The NoSchedule taint that keeps every other test's pods off it.
    pub taint_key: String,
    /// The kubelet's root folder (the node-agent mounts its `pods`).
    pub kubelet_dir: String,
    /// The BackupStorageLocation whose s3Url the node's pods reach.
    pub storage_location: String,
    pub velero_image: String,
    /// A busybox image imported on the node (sh, dd, sha256sum).
    pub busybox_image: String,
    /// The default StorageClass, whose volumes are made on the real node.
    pub storage_class: String,
    /// The Velero server's `--repo-maintenance-job-configmap` (only `global: {}` in it).
    pub maintenance_config_map: String,
    /// CSI on the real node (tests/env/lifecycle/real-node/csi.sh).
    pub csi: CsiEnv,
}

/// env.json's `realNode.csi`: our hostpath driver under the upstream snapshot controller and
/// sidecars, and the classes users make for it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CsiEnv {
    pub driver: String,
    /// The driver's StorageClass (WaitForFirstConsumer, on the real node only).
    pub storage_class: String,
    /// Its VolumeSnapshotClass, labelled `velero.io/csi-volumesnapshot-class: "true"`.
    pub snapshot_class: String,
}

/// The script of a workload pod: each volume gets 1 MiB of random bytes once (a restored pod
/// finds them restored and keeps them), then their SHA-256 sums go to the log, one
/// `<sum>  /<volume>/blob` line each.
fn workload_script(volumes: &[&str]) -> String {
    let dirs: Vec<String> = volumes.iter().map(|v| format!("/{v}")).collect();
    let blobs: Vec<String> = dirs.iter().map(|d| format!("{d}/blob")).collect();
    format!(
        "for d in {}; do [ -f $d/blob ] || dd if=/dev/urandom of=$d/blob bs=64k count=16 2>/dev/null; done; \
         sha256sum {}; exec sleep 86400",
        dirs.join(" "),
        blobs.join(" ")
    )
}

/// A StatefulSet `name` of one replica on the real node in namespace `ns`, one claim of the
/// default StorageClass per entry of `volumes` (mounted at `/<volume>`), with `init` as its
/// init containers; returns once its pod is Ready.
pub async fn stateful_set_on_real_node(
    t: &TestCtx,
    ns: &str,
    name: &str,
    volumes: &[&str],
    init: serde_json::Value,
) -> Result<()> {
    stateful_set_of_class(t, ns, name, volumes, init, None).await
}

/// [`stateful_set_on_real_node`] with claims of StorageClass `class` (the default when None).
pub async fn stateful_set_of_class(
    t: &TestCtx,
    ns: &str,
    name: &str,
    volumes: &[&str],
    init: serde_json::Value,
    class: Option<&str>,
) -> Result<()> {
    let node = t.env.real_node()?;
    let mounts: Vec<serde_json::Value> = volumes
        .iter()
        .map(|v| serde_json::json!({"name": v, "mountPath": format!("/{v}")}))
        .collect();
    let claims: Vec<serde_json::Value> = volumes
        .iter()
        .map(|v| {
            serde_json::json!({"metadata": {"name": v}, "spec": {
                "accessModes": ["ReadWriteOnce"], "storageClassName": class,
                "resources": {"requests": {"storage": "64Mi"}}}})
        })
        .collect();
    let set: StatefulSet = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {
            "serviceName": name, "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "nodeSelector": {"kubernetes.io/hostname": node.name},
                    "tolerations": [{"key": node.taint_key, "operator": "Exists", "effect": "NoSchedule"}],
                    "terminationGracePeriodSeconds": 0,
                    "initContainers": init,
                    "containers": [{
                        "name": "app", "image": node.busybox_image, "imagePullPolicy": "Never",
                        "command": ["sh", "-c", workload_script(volumes)],
                        "volumeMounts": mounts,
                    }],
                },
            },
            "volumeClaimTemplates": claims,
        },
    }))?;
    Api::<StatefulSet>::namespaced(t.client.clone(), ns)
        .create(&PostParams::default(), &set)
        .await?;
    let pods: Api<Pod> = Api::namespaced(t.client.clone(), ns);
    let pod = format!("{name}-0");
    eventually(
        &format!("pod {ns}/{pod} Ready on the real node"),
        Duration::from_secs(120),
        || async {
            let Some(p) = pods.get_opt(&pod).await? else {
                return Ok(None);
            };
            Ok(is_ready(&p).then_some(()))
        },
    )
    .await
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The SHA-256 of each volume's blob, by volume, as pod `ns`/`pod` logged it (waiting up to
/// a minute for the line of every volume).
pub async fn volume_sums(
    t: &TestCtx,
    ns: &str,
    pod: &str,
    volumes: &[&str],
) -> Result<BTreeMap<String, String>> {
    let pods: Api<Pod> = Api::namespaced(t.client.clone(), ns);
    let params = LogParams {
        container: Some("app".into()),
        ..LogParams::default()
    };
    eventually(
        &format!("the sums of {volumes:?} in {ns}/{pod}'s log"),
        Duration::from_secs(60),
        || async {
            let log = pods.logs(pod, &params).await?;
            let sums: BTreeMap<String, String> = log
                .lines()
                .filter_map(|l| l.split_once("  "))
                .filter_map(|(sum, path)| {
                    let volume = path.strip_prefix('/')?.strip_suffix("/blob")?;
                    Some((volume.to_string(), sum.to_string()))
                })
                .collect();
            Ok((sums.len() == volumes.len()).then_some(sums))
        },
    )
    .await
}

/// The phase of each of Velero's `kind` (PodVolumeBackup, PodVolumeRestore, ...) labelled
/// `label=value`, by name.
pub async fn operation_phases(
    t: &TestCtx,
    kind: &str,
    label: &str,
    value: &str,
) -> Result<BTreeMap<String, String>> {
    let api = Api::<kube::api::DynamicObject>::namespaced_with(
        t.client.clone(),
        &t.env.namespace,
        &velero_debug_operator::velero::resource(kind),
    );
    let listed = api
        .list(&ListParams::default().labels(&format!("{label}={value}")))
        .await?;
    Ok(listed
        .items
        .into_iter()
        .map(|o| {
            let phase = o.data["status"]["phase"].as_str().unwrap_or("").to_string();
            (o.name_any(), phase)
        })
        .collect())
}

/// The node-agent pod on the real node, Running.
pub async fn real_node_agent(t: &TestCtx) -> Result<Pod> {
    let pod = real_node_agent_pod(t).await?;
    let node = t.env.real_node()?;
    ensure!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"),
        "the node-agent on {} is not Running: {:?}",
        node.name,
        pod.status
    );
    Ok(pod)
}

/// The node-agent pod on the real node, whatever its state.
pub async fn real_node_agent_pod(t: &TestCtx) -> Result<Pod> {
    let node = t.env.real_node()?;
    let pods: Api<Pod> = Api::namespaced(t.client.clone(), &t.env.namespace);
    let listed = pods
        .list(
            &ListParams::default()
                .labels("name=node-agent")
                .fields(&format!("spec.nodeName={}", node.name)),
        )
        .await?;
    listed
        .items
        .into_iter()
        .next()
        .with_context(|| format!("no node-agent pod on {}", node.name))
}

/// A Backup of namespace `ns` whose volumes go through the real node's node-agent, started and
/// not waited for: its name and uid.
pub async fn start_fs_backup(t: &TestCtx, ns: &str, prefix: &str) -> Result<(String, String)> {
    let backups = Api::<DynamicObject>::namespaced_with(
        t.client.clone(),
        &t.env.namespace,
        &velero_resource("Backup"),
    );
    let name = crate::context::unique_name(prefix);
    let backup: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "velero.io/v1", "kind": "Backup",
        "metadata": {"name": name},
        "spec": {"includedNamespaces": [ns], "defaultVolumesToFsBackup": true,
                 "storageLocation": t.env.real_node()?.storage_location},
    }))?;
    let uid = backups
        .create(&PostParams::default(), &backup)
        .await?
        .uid()
        .context("the backup has no uid")?;
    // Not deleted at cleanup: Velero's one backup worker would wait on a deleted backup's
    // volumes for its whole fs-backup timeout, and every later backup behind it.
    Ok((name, uid))
}

/// A backup of namespace `ns` whose volumes go file by file through the node-agent into the
/// real node's storage location; its name once finished.
pub async fn fs_backup(t: &TestCtx, ns: &str) -> Result<String> {
    let location = t.env.real_node()?.storage_location.clone();
    let (backup, _) = crate::backups::backup_namespace(
        t,
        ns,
        &[
            "--default-volumes-to-fs-backup",
            "--storage-location",
            &location,
        ],
    )
    .await?;
    Ok(backup)
}

/// A namespace `prefix-...` whose StatefulSet `db` (one volume, `data`) runs on the real node,
/// backed up with fs-backup: the namespace and the backup, which ended Completed.
pub async fn backed_up_volume(t: &TestCtx, prefix: &str) -> Result<(String, String)> {
    let ns = crate::context::create_namespace(&t.client, &t.cleanup, prefix).await?;
    stateful_set_on_real_node(t, &ns, "db", &["data"], serde_json::json!([])).await?;
    let backup = fs_backup(t, &ns).await?;
    let phase = crate::backups::backup_phase(t, &backup).await?;
    ensure!(
        phase == "Completed",
        "backup {backup} of {ns} ended {phase}"
    );
    Ok((ns, backup))
}

/// The node-agent DaemonSet as a test changed it (on the real node only: its pod there was
/// restarted), and how to put it back.
pub struct ChangedNodeAgent {
    undo: serde_json::Value,
}

/// ConfigMap `name` of Velero's namespace made anew with `resources` (node-agent's
/// `podResources`, JSON) under key node-agent-config.json, and the real node's node-agent
/// restarted with `--node-agent-configmap` naming it; both go with the test's cleanup.
pub async fn real_node_agent_with_config_map(
    t: &TestCtx,
    name: &str,
    resources: &str,
) -> Result<ChangedNodeAgent> {
    real_node_agent_with_config_map_and_args(t, name, resources, &[]).await
}

/// [`real_node_agent_with_config_map`] with `args` added to node-agent's own.
pub async fn real_node_agent_with_config_map_and_args(
    t: &TestCtx,
    name: &str,
    resources: &str,
    args: &[&str],
) -> Result<ChangedNodeAgent> {
    let config_maps: Api<ConfigMap> = Api::namespaced(t.client.clone(), &t.env.namespace);
    let _ = config_maps.delete(name, &Default::default()).await;
    t.cleanup.object::<ConfigMap>(&t.env.namespace, name);
    config_maps
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({
                "metadata": {"name": name},
                "data": {"node-agent-config.json": resources},
            }))?,
        )
        .await?;
    let flag = format!("--node-agent-configmap={name}");
    let ops: Vec<serde_json::Value> = std::iter::once(flag.as_str())
        .chain(args.iter().copied())
        .map(|arg| {
            serde_json::json!({
                "op": "add", "path": "/spec/template/spec/containers/0/args/-", "value": arg,
            })
        })
        .collect();
    change_real_node_agent(t, serde_json::Value::Array(ops)).await
}

/// Changes the node-agent DaemonSet's pod template by the JSON patch `ops` and restarts the
/// real node's node-agent with it; the test's cleanup puts the template back should the test
/// fail before [`ChangedNodeAgent::undo`].
pub async fn change_real_node_agent(
    t: &TestCtx,
    ops: serde_json::Value,
) -> Result<ChangedNodeAgent> {
    let changed = patch_node_agent(t, ops).await?;
    restart_real_node_agent(t).await?;
    Ok(changed)
}

/// [`change_real_node_agent`] for a change that keeps the node-agent from running: its pod on
/// the real node is replaced and the new one waited for (up to two minutes), not its
/// readiness.
pub async fn break_real_node_agent(
    t: &TestCtx,
    ops: serde_json::Value,
) -> Result<ChangedNodeAgent> {
    let changed = patch_node_agent(t, ops).await?;
    let old = real_node_agent_pod(t).await?;
    let pods: Api<Pod> = Api::namespaced(t.client.clone(), &t.env.namespace);
    pods.delete(&old.name_any(), &Default::default()).await?;
    eventually(
        "a new node-agent pod on the real node",
        Duration::from_secs(120),
        || async {
            let Ok(pod) = real_node_agent_pod(t).await else {
                return Ok(None);
            };
            Ok(
                (pod.metadata.uid != old.metadata.uid && pod.metadata.deletion_timestamp.is_none())
                    .then_some(()),
            )
        },
    )
    .await?;
    Ok(changed)
}

/// Patches the node-agent DaemonSet's template by `ops`, the undo registered first.
async fn patch_node_agent(t: &TestCtx, ops: serde_json::Value) -> Result<ChangedNodeAgent> {
    let daemon_sets: Api<DaemonSet> = Api::namespaced(t.client.clone(), &t.env.namespace);
    let original = daemon_sets.get("node-agent").await?;
    let template = original
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .context("no pod template")?;
    // A merge patch replaces lists whole: the lists a test may change, as they were.
    let undo = serde_json::json!({"spec": {"template": {"spec": {
        "containers": template.containers,
        "volumes": template.volumes,
    }}}});
    t.cleanup.merge_patch(
        &ApiResource::erase::<DaemonSet>(&()),
        Some(&t.env.namespace),
        "node-agent",
        undo.clone(),
    );
    daemon_sets
        .patch(
            "node-agent",
            &PatchParams::default(),
            &Patch::<()>::Json(serde_json::from_value(ops)?),
        )
        .await?;
    Ok(ChangedNodeAgent { undo })
}

impl ChangedNodeAgent {
    /// The DaemonSet's template as it was, and the real node's node-agent restarted with it.
    pub async fn undo(self, t: &TestCtx) -> Result<()> {
        Api::<DaemonSet>::namespaced(t.client.clone(), &t.env.namespace)
            .patch(
                "node-agent",
                &PatchParams::default(),
                &Patch::Merge(self.undo),
            )
            .await?;
        restart_real_node_agent(t).await
    }
}

/// Waits (up to two minutes) until the node-agent on the real node is Ready again, after a
/// test changed its DaemonSet: the next test needs it there.
pub async fn real_node_agent_back(t: &TestCtx) -> Result<()> {
    ready_real_node_agent(t, "the node-agent on the real node Ready again", None).await
}

/// Deletes the node-agent pod on the real node and waits (up to two minutes) for its
/// successor to be Ready: the env's DaemonSet is updated OnDelete, so a changed template reaches
/// the real node only this way, and the kwok nodes' pods keep their logs.
pub async fn restart_real_node_agent(t: &TestCtx) -> Result<()> {
    let old = real_node_agent_pod(t).await?;
    let pods: Api<Pod> = Api::namespaced(t.client.clone(), &t.env.namespace);
    pods.delete(&old.name_any(), &Default::default()).await?;
    ready_real_node_agent(
        t,
        "a new node-agent on the real node Ready",
        old.metadata.uid.as_deref(),
    )
    .await
}

/// Waits (up to two minutes) for a Ready node-agent pod on the real node that is not being
/// deleted and is not the pod of uid `not`.
async fn ready_real_node_agent(t: &TestCtx, what: &str, not: Option<&str>) -> Result<()> {
    eventually(what, Duration::from_secs(120), || async {
        let Ok(pod) = real_node_agent(t).await else {
            return Ok(None);
        };
        let ready = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .is_some_and(|c| c.iter().all(|c| c.ready));
        let other = not.is_none() || pod.metadata.uid.as_deref() != not;
        Ok((ready && other && pod.metadata.deletion_timestamp.is_none()).then_some(()))
    })
    .await
}

/// The BackupRepositories of Velero's namespace, and the name of the one Velero made for the
/// volumes of namespace `ns`.
pub async fn backup_repository_of(
    t: &TestCtx,
    ns: &str,
) -> Result<(Api<kube::api::DynamicObject>, String)> {
    let repositories = Api::<kube::api::DynamicObject>::namespaced_with(
        t.client.clone(),
        &t.env.namespace,
        &velero_debug_operator::velero::resource("BackupRepository"),
    );
    let name = repositories
        .list(&ListParams::default().labels(&format!("velero.io/volume-namespace={ns}")))
        .await?
        .items
        .first()
        .map(|r| r.name_any())
        .with_context(|| format!("no BackupRepository of namespace {ns}"))?;
    Ok((repositories, name))
}

/// An fs backup of `ns` that Velero ends PartiallyFailed (its volume refused or failed), and
/// its bundle, Completed, with its files.
pub async fn failed_fs_backup_bundle(
    t: &TestCtx,
    ns: &str,
) -> Result<(velero_debug_crd::DebugBundle, BTreeMap<String, Vec<u8>>)> {
    let backup = fs_backup(t, ns).await?;
    let phase = crate::backups::backup_phase(t, &backup).await?;
    ensure!(
        phase == "PartiallyFailed",
        "backup {backup} did not fail its volume: {phase}"
    );
    crate::bundles::completed_bundle(t, serde_json::json!({"backup": backup})).await
}

/// Checks that the node-agent's log in a bundle holds the data path's own lines about `op`.
/// Velero 1.17+ runs it in a data-path pod, whose lines the node-agent copies between its
/// markers once the pod ends (Velero deletes the pod after); before, the node-agent runs kopia
/// itself and names the operation on its own lines.
pub fn data_path_lines_of(velero: &crate::env::VeleroEnv, agent_log: &str, op: &str) -> Result<()> {
    if !velero.data_path_pods() {
        let own = agent_log
            .lines()
            .filter(|l| l.contains(op) && l.contains("kopia"))
            .count();
        ensure!(
            own > 0,
            "the node-agent's log in the bundle has no kopia line of {op} (Velero {})",
            velero.version
        );
        return Ok(());
    }
    let begin = format!("begin pod logs[{op}/");
    let at = agent_log.find(&begin).with_context(|| {
        format!("the node-agent's log in the bundle lacks the data-path pod of {op}")
    })?;
    let copied = &agent_log[at..];
    let copied = &copied[..copied.find("end pod logs[").unwrap_or(copied.len())];
    let own = copied.lines().skip(1).filter(|l| l.contains(op)).count();
    ensure!(
        own > 0,
        "the data-path pod of {op} said nothing of it in the node-agent's log: {copied}"
    );
    Ok(())
}

//! Scenario 6's cluster, made: the fake nodes and their node-agent pods and logs, the
//! PartiallyFailed restore with its PodVolumeRestores and DataDownloads over the nodes, the
//! restored namespaces, pods, claims, events and results file (big_cluster.rs measures it).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Result;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::{
    Api, ResourceExt,
    api::{ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams},
};
use velero_debug_e2e::{
    backups::real_backup,
    context::{TestCtx, create_namespace},
    kwok_logs::kwok_logs_resource,
    nodes::fake_node,
    operations::{operation_object, pod_volume_restore},
    polling::eventually,
    restores::{finished_restore, restored_pod_with_volume},
    stores::put_gzipped,
};

use super::log_files::write_logs;

/// Objects made at once: the API server takes them faster so, and kwok keeps up.
const IN_FLIGHT: usize = 32;
const NAMESPACES: usize = 50;
const RESTORES_PER_NODE: usize = 10;
const EVENTS_PER_NODE: usize = 100;
const RESULTS_PER_NODE: usize = 25;

/// The state the scenario made: its nodes' node-agent pods, the restore, the log files.
pub(crate) struct BigRestore {
    pub restore: String,
    pub agents: Vec<String>,
    files: Vec<PathBuf>,
}

impl Drop for BigRestore {
    fn drop(&mut self) {
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
    }
}

pub(crate) async fn make(
    t: &TestCtx,
    work: &Path,
    nodes: usize,
    agent_mib: u64,
) -> Result<BigRestore> {
    let node_names: Vec<String> = futures::stream::iter(0..nodes)
        .map(|_| fake_node(&t.client, &t.cleanup, "big", serde_json::json!([])))
        .buffer_unordered(IN_FLIGHT)
        .try_collect()
        .await?;
    eprintln!("bench: scenario 6: {nodes} nodes Ready");
    let agents = node_agents(t, &node_names).await?;
    // The log files go whatever happens from here on.
    let mut state = BigRestore {
        restore: String::new(),
        agents: agents.values().cloned().collect(),
        files: vec![],
    };
    agent_logs(t, work, &agents, agent_mib, &mut state.files).await?;
    let (_, backup, _) = real_backup(t, "bench-big").await?;
    let no_auto = serde_json::json!({"velerodebug.io/auto-bundle": "false"});
    let (restore, uid) =
        finished_restore(t, &backup, "PartiallyFailed", Duration::ZERO, no_auto).await?;
    let mut namespaces = vec![];
    for _ in 0..NAMESPACES {
        namespaces.push(create_namespace(&t.client, &t.cleanup, "big-ns").await?);
    }
    restore_namespaces(t, &restore, &namespaces).await?;
    grant_workload_reads_everywhere(t).await?;
    operations(t, (&restore, &uid), &node_names, &namespaces).await?;
    restored_pods(t, (&restore, &uid), &node_names, &namespaces).await?;
    events(t, &node_names, &namespaces).await?;
    results(t, &restore, &namespaces, nodes).await?;
    state.restore = restore;
    Ok(state)
}

/// The node-agent pod of each node, once the DaemonSet has placed them all and kwok runs them.
async fn node_agents(t: &TestCtx, nodes: &[String]) -> Result<BTreeMap<String, String>> {
    let pods: Api<Pod> = Api::namespaced(t.client.clone(), &t.env.namespace);
    eventually(
        &format!("a Running node-agent on each of {} nodes", nodes.len()),
        Duration::from_secs(600),
        || async {
            let listed = pods
                .list(&ListParams::default().labels("name=node-agent"))
                .await?;
            let running: BTreeMap<String, String> = listed
                .items
                .iter()
                .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
                .filter_map(|p| {
                    let node = p.spec.as_ref()?.node_name.clone()?;
                    nodes.contains(&node).then(|| (node, p.name_any()))
                })
                .collect();
            Ok((running.len() == nodes.len()).then_some(running))
        },
    )
    .await
}

/// Each node-agent's log (kwok serves it), the first with a previous instance's too.
async fn agent_logs(
    t: &TestCtx,
    work: &Path,
    agents: &BTreeMap<String, String>,
    mib: u64,
    files: &mut Vec<PathBuf>,
) -> Result<()> {
    let logs_api: Api<DynamicObject> =
        Api::namespaced_with(t.client.clone(), &t.env.namespace, &kwok_logs_resource());
    let plain = work.join("big-agent.plain");
    files.push(plain.clone());
    for (i, agent) in agents.values().enumerate() {
        let current = work.join(format!("{agent}.log"));
        files.push(current.clone());
        write_logs(&current, &plain, mib << 20, 1000 + i as u64)?;
        let mut spec = serde_json::json!({"containers": ["node-agent"], "logsFile": current});
        if i == 0 {
            let previous = work.join(format!("{agent}.previous.log"));
            files.push(previous.clone());
            write_logs(&previous, &plain, mib << 20, 99)?;
            spec["previousLogsFile"] = serde_json::json!(previous);
            restarted(t, agent).await?;
        }
        let logs: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Logs",
            "metadata": {"name": agent, "namespace": t.env.namespace},
            "spec": {"logs": [spec]},
        }))?;
        logs_api.create(&PostParams::default(), &logs).await?;
        t.cleanup
            .delete(&kwok_logs_resource(), Some(&t.env.namespace), agent);
    }
    std::fs::remove_file(&plain)?;
    Ok(())
}

/// The kubelet's record of a restart, as a crashed container leaves it.
async fn restarted(t: &TestCtx, agent: &str) -> Result<()> {
    let restarted = serde_json::json!({"status": {"containerStatuses": [{
        "name": "node-agent", "ready": true, "restartCount": 1,
        "image": "velero/velero", "imageID": "", "started": true,
        "state": {"running": {"startedAt": jiff::Timestamp::now().to_string()}},
        "lastState": {"terminated": {"exitCode": 2, "reason": "Error",
                                     "startedAt": "2026-11-23T03:00:00Z",
                                     "finishedAt": "2026-11-23T04:00:30Z"}},
    }]}});
    Api::<Pod>::namespaced(t.client.clone(), &t.env.namespace)
        .patch_status(agent, &PatchParams::default(), &Patch::Strategic(restarted))
        .await?;
    Ok(())
}

/// The restore's PodVolumeRestores and DataDownloads over the nodes: most Completed, one in
/// twenty Failed, one in fifty still InProgress.
async fn operations(
    t: &TestCtx,
    (restore, uid): (&str, &str),
    nodes: &[String],
    namespaces: &[String],
) -> Result<()> {
    let phase = |i: usize| match i {
        _ if i % 20 == 7 => "Failed",
        _ if i % 50 == 3 => "InProgress",
        _ => "Completed",
    };
    let status = |i: usize| {
        let start = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(600);
        serde_json::json!({
            "phase": phase(i), "node": nodes[i % nodes.len()], "progress": {},
            "startTimestamp": start.to_string(),
            "completionTimestamp": (start + jiff::SignedDuration::from_secs(60 + (i % 9) as i64 * 30)).to_string(),
            "message": if phase(i) == "Failed" { "data path restore failed: context deadline exceeded" } else { "" },
        })
    };
    let restores = futures::stream::iter(0..nodes.len() * RESTORES_PER_NODE)
        .map(|i| {
            let ns = &namespaces[i % namespaces.len()];
            let (pod, status) = (format!("app-{i}"), status(i));
            async move { pod_volume_restore(t, (restore, uid), (ns, &pod), status).await }
        })
        .buffer_unordered(IN_FLIGHT)
        .try_collect::<Vec<_>>();
    restores.await?;
    let labels =
        serde_json::json!({"velero.io/restore-name": restore, "velero.io/restore-uid": uid});
    futures::stream::iter(0..nodes.len())
        .map(|i| {
            let spec = serde_json::json!({
                "backupStorageLocation": "default", "snapshotID": format!("snap-{i}"),
                "sourceNamespace": namespaces[i % namespaces.len()], "operationTimeout": "10m",
                "targetVolume": {"pvc": format!("data-{i}"), "pv": "", "namespace": namespaces[i % namespaces.len()]},
            });
            operation_object(t, "DataDownload", labels.clone(), spec, status(i))
        })
        .buffer_unordered(IN_FLIGHT)
        .try_collect::<Vec<_>>()
        .await?;
    eprintln!("bench: scenario 6: operations made");
    Ok(())
}

/// The restore restored the 50 namespaces (made before them, it names them after).
async fn restore_namespaces(t: &TestCtx, restore: &str, namespaces: &[String]) -> Result<()> {
    let api: Api<DynamicObject> = Api::namespaced_with(
        t.client.clone(),
        &t.env.namespace,
        &velero_debug_operator::velero::resource("Restore"),
    );
    let patch = serde_json::json!({"spec": {"includedNamespaces": namespaces}});
    api.patch(restore, &PatchParams::default(), &Patch::Merge(patch))
        .await?;
    Ok(())
}

/// The chart's rbac.workloadNamespaces ["*"]: its workload reader bound cluster-wide.
async fn grant_workload_reads_everywhere(t: &TestCtx) -> Result<()> {
    use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
    use velero_debug_e2e::rbac::RELEASE;
    let name = format!("{RELEASE}-workload-reader-bench");
    let binding: ClusterRoleBinding = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": format!("{RELEASE}-workload-reader")},
        "subjects": [{"kind": "ServiceAccount", "name": RELEASE, "namespace": t.env.namespace}],
    }))?;
    Api::<ClusterRoleBinding>::all(t.client.clone())
        .create(&PostParams::default(), &binding)
        .await?;
    t.cleanup
        .delete(&ApiResource::erase::<ClusterRoleBinding>(&()), None, &name);
    Ok(())
}

/// Each PodVolumeRestore's pod `app-<i>`, restored on its node, Running, with its claim
/// `data-<i>` bound to its PV.
async fn restored_pods(
    t: &TestCtx,
    (restore, uid): (&str, &str),
    nodes: &[String],
    namespaces: &[String],
) -> Result<()> {
    let labels =
        serde_json::json!({"velero.io/restore-name": restore, "velero.io/restore-uid": uid});
    let count = nodes.len() * RESTORES_PER_NODE;
    futures::stream::iter(0..count)
        .map(|i| {
            let ns = &namespaces[i % namespaces.len()];
            let (labels, node) = (labels.clone(), &nodes[i % nodes.len()]);
            let (pod, claim, volume) = (
                format!("app-{i}"),
                format!("data-{i}"),
                format!("{ns}-data-{i}"),
            );
            let placement = serde_json::json!({"nodeName": node});
            async move {
                restored_pod_with_volume(t, ns, (&pod, &claim, &volume), labels, placement).await
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .try_collect::<Vec<_>>()
        .await?;
    let pods: Api<Pod> = Api::all(t.client.clone());
    let selector = format!("velero.io/restore-name={restore}");
    eventually(
        &format!("{count} restored pods Running"),
        Duration::from_secs(600),
        || async {
            let listed = pods.list(&ListParams::default().labels(&selector)).await?;
            let running = listed
                .items
                .iter()
                .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
                .count();
            Ok((running == count).then_some(()))
        },
    )
    .await?;
    eprintln!("bench: scenario 6: {count} restored pods Running, each with its claim and PV");
    Ok(())
}

/// Events about the restored pods, one in ten a Warning, spread over the namespaces.
async fn events(t: &TestCtx, nodes: &[String], namespaces: &[String]) -> Result<()> {
    let now = jiff::Timestamp::now().to_string();
    futures::stream::iter(0..nodes.len() * EVENTS_PER_NODE)
        .map(|i| {
            let ns = &namespaces[i % namespaces.len()];
            let warning = i % 10 == 0;
            let event = serde_json::from_value::<Event>(serde_json::json!({
                "metadata": {"name": format!("big-{i}"), "namespace": ns},
                "involvedObject": {"kind": "Pod", "namespace": ns, "name": format!("app-{}", i % 2000)},
                "reason": if warning { "FailedMount" } else { "Scheduled" },
                "message": if warning { format!("MountVolume.SetUp failed for volume \"data\" on {}", nodes[i % nodes.len()]) } else { "Successfully assigned".to_string() },
                "type": if warning { "Warning" } else { "Normal" },
                "firstTimestamp": now, "lastTimestamp": now, "count": 1,
                "source": {"component": "kubelet"},
            }));
            let api: Api<Event> = Api::namespaced(t.client.clone(), ns);
            async move { anyhow::Ok(api.create(&PostParams::default(), &event?).await?) }
        })
        .buffer_unordered(IN_FLIGHT)
        .try_collect::<Vec<_>>()
        .await?;
    eprintln!("bench: scenario 6: events made");
    Ok(())
}

/// The restore's results file: warnings and a few errors per namespace.
async fn results(t: &TestCtx, restore: &str, namespaces: &[String], nodes: usize) -> Result<()> {
    let mut warnings: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut errors: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for i in 0..nodes * RESULTS_PER_NODE {
        let ns = namespaces[i % namespaces.len()].as_str();
        if i % 25 == 0 {
            errors.entry(ns).or_default().push(format!(
                "error restoring configmaps/{ns}/cm-{i}: configmaps \"cm-{i}\" is forbidden: exceeded quota: q, requested: count/configmaps=1, used: count/configmaps=5, limited: count/configmaps=5"
            ));
        } else {
            warnings.entry(ns).or_default().push(format!(
                "could not restore, ConfigMap:cm-{i} already exists. Warning: the in-cluster version is different than the backed-up version"
            ));
        }
    }
    let file = serde_json::json!({
        "errors": {"namespaces": errors}, "warnings": {"namespaces": warnings},
    });
    put_gzipped(
        &t.env,
        &format!("restores/{restore}/restore-{restore}-results.gz"),
        &file.to_string(),
    )
    .await?;
    Ok(())
}

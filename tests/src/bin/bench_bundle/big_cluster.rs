//! Scenario 6 (issue 38): a restore the size of a big cluster, on kwok. `--big-nodes` (200)
//! fake nodes, each with the node-agent pod the DaemonSet places there and a log of
//! `--big-agent-mib` (3) MiB (the first one with a previous instance too); a PartiallyFailed
//! restore with 10 PodVolumeRestores and one DataDownload per node, 50 restored namespaces,
//! 100 events per node (one in ten a Warning), and a results file of 25 messages per node.
//! Each PodVolumeRestore's pod exists, restored (Velero's label), on its node, with its claim
//! bound to its PV; the operator may read workloads everywhere (rbac.workloadNamespaces
//! ["*"], as a big cluster's admins grant it), so a kind is one list, not one a namespace.
//! Bundled with `nodeAgentLogs: Involved`, `All` and `None` (what the bundle costs beside the
//! node-agent logs), and `velero debug --restore` on the same state, in rounds (each round the
//! source floor, the bundles and `velero debug`, side by side); per bundle its API requests,
//! summary.md's size and first section, and the steps' timings; once, the control plane's
//! CPU at rest.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, Result};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::{
    Api, ResourceExt,
    api::{ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams},
};
use velero_debug_crd::DebugBundle;
use velero_debug_e2e::{
    archives::untar,
    backups::real_backup,
    context::{TestCtx, create_namespace},
    kwok_logs::kwok_logs_resource,
    nodes::fake_node,
    operations::{operation_object, pod_volume_restore},
    polling::eventually,
    restores::{finished_restore, restored_pod_with_volume},
    stores::put_gzipped,
};

use super::{
    baselines::{read_logs_only, velero_debug_seconds},
    bundles::bundle,
    log_files::write_logs,
    measures::{cpu_seconds, each, median, peak_rss_kib, rss_kib, status_kib},
};

/// Objects made at once: the API server takes them faster so, and kwok keeps up.
const IN_FLIGHT: usize = 32;
const NAMESPACES: usize = 50;
const RESTORES_PER_NODE: usize = 10;
const EVENTS_PER_NODE: usize = 100;
const RESULTS_PER_NODE: usize = 25;

/// The state the scenario made: its nodes' node-agent pods, the restore, the log files.
struct BigRestore {
    restore: String,
    agents: Vec<String>,
    files: Vec<PathBuf>,
}

impl Drop for BigRestore {
    fn drop(&mut self) {
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
    }
}

/// The scenario's sizes and how it is measured.
pub(crate) struct BigCluster {
    pub nodes: usize,
    pub agent_mib: u64,
    pub rounds: usize,
    pub log_concurrency: usize,
    /// Also read the node-agent logs 4, 8, 16 and 32 at once (`--log-concurrency-sweep`).
    pub concurrency_sweep: bool,
    pub operator_pid: u32,
}

pub(crate) async fn big_cluster(
    t: &TestCtx,
    work: &Path,
    args: &BigCluster,
) -> Result<Vec<String>> {
    let rounds = args.rounds;
    let state = make(t, work, args.nodes, args.agent_mib).await?;
    let rss_before = peak_rss_kib(args.operator_pid)?;
    eprintln!(
        "bench: scenario 6: {} node-agents, restore {}",
        state.agents.len(),
        state.restore
    );
    // The floor reads with the operator's log client, as scenario 1's does.
    let log_client = velero_debug_operator::log_client::builder(
        &t.env.config().await?,
        velero_debug_operator::log_client::LOW_WATER,
    )?
    .build();
    let pods: Api<Pod> = Api::namespaced(log_client, &t.env.namespace);
    // Each round measures the floor, the bundles and `velero debug` one after the other: the
    // machine's speed drifts within the hour the scenario runs, and the ratios are of
    // measurements made side by side.
    // None: what the bundle costs beside the node-agent logs.
    let modes = ["Involved", "All", "None"];
    let at_rest = at_rest(AT_REST).await?;
    let (mut floor, mut peer) = (vec![], vec![]);
    let (mut floor_cpu, mut peer_cpu) = (vec![], vec![]);
    let mut walls = vec![vec![]; modes.len()];
    let mut cpus = vec![vec![]; modes.len()];
    let mut last: Vec<Option<(DebugBundle, String)>> = modes.iter().map(|_| None).collect();
    for round in 1..=rounds {
        eprintln!("bench: scenario 6, round {round} of {rounds}");
        let (machine, reader) = (MachineCpu::now()?, cpu_seconds(std::process::id())?);
        let read = read_logs_only(&pods, &state.agents, args.log_concurrency).await?;
        floor.push(read.as_secs_f64());
        floor_cpu.push(Cpu::since(
            reader,
            cpu_seconds(std::process::id())?,
            machine,
        )?);
        for (i, mode) in modes.iter().enumerate() {
            let spec = serde_json::json!({"restore": state.restore, "nodeAgentLogs": mode});
            let sampler = RssSampler::start(args.operator_pid);
            let (machine, operator) = (MachineCpu::now()?, cpu_seconds(args.operator_pid)?);
            let (done, wall) = bundle(t, spec).await?;
            cpus[i].push(Cpu::since(
                operator,
                cpu_seconds(args.operator_pid)?,
                machine,
            )?);
            walls[i].push(wall.as_secs_f64());
            last[i] = Some((done, sampler.stop().await));
        }
        let machine = MachineCpu::now()?;
        let (seconds, cpu, _) = velero_debug_seconds(&t.env, ("--restore", &state.restore), work)?;
        peer.push(seconds);
        peer_cpu.push(Cpu::since(0.0, cpu, machine)?);
    }
    let mut rows = vec![
        "| bundle of | wall (median; each) | CPU: the process's s, the control plane's s (API server, etcd, kwok), the machine's busy cores (each) | API requests: objects + container logs | summary.md | files | steps (ms, last round) |".to_string(),
        "| --- | --- | --- | --- | --- | --- | --- |".to_string(),
    ];
    let mut by_kind = vec![];
    for (((mode, walls), cpus), last) in modes.iter().zip(&walls).zip(&cpus).zip(last) {
        let (done, profile) = last.context("no round")?;
        by_kind.push(format!("RSS of {mode} (last round): {profile}"));
        let facts = BundleFacts::read(&done).await?;
        rows.push(format!(
            "| nodeAgentLogs: {mode} | {:.1} s ({}) | {} | {} + {} | {} KiB, first section: {} | {} | {} |",
            median(walls),
            each(walls),
            Cpu::each(cpus),
            facts.object_requests(),
            facts.log_requests(),
            facts.summary_bytes / 1024,
            facts.first_section(),
            facts.files,
            facts.timings
        ));
        by_kind.push(format!(
            "API requests of {mode}, by kind: {}",
            facts.by_kind()
        ));
    }
    rows.push(format!(
        "| source floor: the {} node-agent logs, {} at once | {:.1} s ({}) | {} | | | | |",
        state.agents.len(),
        args.log_concurrency,
        median(&floor),
        each(&floor),
        Cpu::each(&floor_cpu)
    ));
    for concurrency in [4, 8, 16, 32]
        .into_iter()
        .filter(|_| args.concurrency_sweep)
    {
        let read = read_logs_only(&pods, &state.agents, concurrency).await?;
        rows.push(format!(
            "| the same logs, {concurrency} at once | {:.1} s | | | | | |",
            read.as_secs_f64()
        ));
    }
    rows.push(format!(
        "| `velero debug --restore` | {:.1} s ({}) | {} | | | | |",
        median(&peer),
        each(&peer),
        Cpu::each(&peer_cpu)
    ));
    rows.push(format!(
        "| the control plane at rest, {} s without a request | | {:.1} s, {:.2} of a core; the machine's busy cores {:.2} | | | | |",
        AT_REST.as_secs(),
        at_rest.control_plane,
        at_rest.control_plane / AT_REST.as_secs_f64(),
        at_rest.busy_cores
    ));
    rows.push(format!(
        "| ratios of the medians: Involved / floor, Involved / `velero debug` | {:.2}, {:.2} | | | | | |",
        median(&walls[0]) / median(&floor),
        median(&walls[0]) / median(&peer)
    ));
    rows.push(format!(
        "| operator peak RSS (VmHWM) before / after | {} / {} MiB | | | | | |",
        rss_before / 1024,
        peak_rss_kib(args.operator_pid)? / 1024
    ));
    rows.push(String::new());
    rows.extend(by_kind);
    Ok(rows)
}

/// The machine's CPU time so far (`/proc/stat`'s first line), in clock ticks: how busy its
/// cores were while something was measured says whether that thing waited for CPU.
struct MachineCpu {
    busy: u64,
    total: u64,
    /// CPU seconds of the control plane's processes so far (see [`control_plane_seconds`]).
    control_plane: f64,
}

/// How long the control plane's CPU is measured at rest.
const AT_REST: Duration = Duration::from_secs(10);

/// The CPU the control plane and the machine spend while nothing is asked of them (kwok's
/// node heartbeats, the controllers): what every second of a measurement pays whatever it does.
async fn at_rest(how_long: Duration) -> Result<Cpu> {
    let machine = MachineCpu::now()?;
    tokio::time::sleep(how_long).await;
    Cpu::since(0.0, 0.0, machine)
}

/// The processes that serve the bundle's requests and the logs: the API server, etcd and kwok
/// (which stands in for every kubelet).
const CONTROL_PLANE: [&str; 3] = ["kube-apiserver", "etcd", "kwok-controller"];

/// CPU seconds (user + system) of every running process named in [`CONTROL_PLANE`].
fn control_plane_seconds() -> Result<f64> {
    let mut seconds = 0.0;
    for entry in std::fs::read_dir("/proc")? {
        let Some(pid) = entry?.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let Ok(comm) = std::fs::read_to_string(format!("/proc/{pid}/comm")) else {
            continue; // gone meanwhile
        };
        if CONTROL_PLANE.contains(&comm.trim()) {
            seconds += cpu_seconds(pid).unwrap_or(0.0);
        }
    }
    Ok(seconds)
}

impl MachineCpu {
    fn now() -> Result<Self> {
        let stat = std::fs::read_to_string("/proc/stat")?;
        let ticks: Vec<u64> = stat
            .lines()
            .next()
            .context("empty /proc/stat")?
            .split_whitespace()
            .skip(1)
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        // user nice system idle iowait irq softirq steal ...: idle and iowait are not busy.
        let total: u64 = ticks.iter().take(8).sum();
        let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
        Ok(MachineCpu {
            busy: total - idle,
            total,
            control_plane: control_plane_seconds()?,
        })
    }
}

/// What one measured thing cost in CPU: its process's seconds, and the machine's cores busy
/// on average meanwhile (all of them: a number near the core count says the CPU was the
/// bound, whoever used it).
#[derive(Clone, Copy)]
struct Cpu {
    process: f64,
    busy_cores: f64,
    control_plane: f64,
}

impl Cpu {
    fn since(before: f64, after: f64, machine: MachineCpu) -> Result<Self> {
        let now = MachineCpu::now()?;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let total = (now.total - machine.total).max(1) as f64;
        Ok(Cpu {
            process: after - before,
            busy_cores: cores * (now.busy - machine.busy) as f64 / total,
            control_plane: now.control_plane - machine.control_plane,
        })
    }

    fn each(all: &[Cpu]) -> String {
        let each: Vec<String> = all
            .iter()
            .map(|c| {
                format!(
                    "{:.1} s, {:.1} s, {:.2}",
                    c.process, c.control_plane, c.busy_cores
                )
            })
            .collect();
        each.join(" / ")
    }
}

/// The operator's resident set sampled every 100 ms while a bundle is made: where in the
/// bundle its peak is.
struct RssSampler {
    stop: tokio::sync::oneshot::Sender<()>,
    /// (seconds since the start, VmRSS, RssFile: the binary's pages), KiB.
    samples: tokio::task::JoinHandle<Vec<(f64, u64, u64)>>,
}

impl RssSampler {
    fn start(pid: u32) -> Self {
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let samples = tokio::spawn(async move {
            let start = std::time::Instant::now();
            let mut samples = vec![];
            while stopped.try_recv().is_err() {
                if let (Ok(kib), Ok(file)) = (rss_kib(pid), status_kib(pid, "RssFile:")) {
                    samples.push((start.elapsed().as_secs_f64(), kib, file));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            samples
        });
        RssSampler { stop, samples }
    }

    /// The peak and when, then the resident set at each tenth of the bundle (MiB).
    async fn stop(self) -> String {
        let _ = self.stop.send(());
        let samples = self.samples.await.unwrap_or_default();
        let Some(&(at, peak, file)) = samples.iter().max_by_key(|(_, kib, _)| *kib) else {
            return "no sample".to_string();
        };
        let end = samples.last().map_or(0.0, |(t, _, _)| *t);
        let tenths: Vec<String> = (1..=10)
            .filter_map(|i| {
                let when = end * f64::from(i) / 10.0;
                let kib = samples.iter().rev().find(|(t, _, _)| *t <= when)?.1;
                Some((kib / 1024).to_string())
            })
            .collect();
        format!(
            "peak {} MiB ({} MiB of them the binary's pages, RssFile) at {at:.1} s of {end:.1} s; at each tenth: {}",
            peak / 1024,
            file / 1024,
            tenths.join(" ")
        )
    }
}

/// What a finished bundle's manifest and summary say of its cost.
struct BundleFacts {
    /// manifest.json's apiRequestsByKind.
    requests: BTreeMap<String, u64>,
    summary_bytes: usize,
    /// summary.md's sections (`## ` headings) in order: the findings must come first.
    sections: Vec<String>,
    files: usize,
    timings: String,
}

impl BundleFacts {
    async fn read(b: &velero_debug_crd::DebugBundle) -> Result<Self> {
        let url = b
            .status
            .as_ref()
            .and_then(|s| s.download_url.clone())
            .context("no URL")?;
        let files = untar(&reqwest::get(&url).await?.bytes().await?)?;
        let find = |name: &str| {
            files
                .iter()
                .find(|(k, _)| k.ends_with(name))
                .map(|(_, v)| v)
                .with_context(|| format!("no {name}"))
        };
        let manifest: serde_json::Value = serde_json::from_slice(find("/manifest.json")?)?;
        let timings = manifest["timingsMs"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        let summary = find("/summary.md")?;
        let sections = String::from_utf8_lossy(summary)
            .lines()
            .filter_map(|l| l.strip_prefix("## "))
            .map(str::to_string)
            .collect();
        Ok(BundleFacts {
            requests: serde_json::from_value(manifest["apiRequestsByKind"].clone())
                .context("apiRequestsByKind")?,
            summary_bytes: summary.len(),
            sections,
            files: files.len(),
            timings,
        })
    }
}

impl BundleFacts {
    /// Container log reads: one request a log, as `velero debug` makes (the API reads one
    /// container's log a request).
    fn log_requests(&self) -> u64 {
        self.requests
            .iter()
            .filter(|(kind, _)| kind.starts_with("pods/log "))
            .map(|(_, n)| n)
            .sum()
    }

    fn object_requests(&self) -> u64 {
        self.requests.values().sum::<u64>() - self.log_requests()
    }

    /// summary.md's first section, of how many.
    fn first_section(&self) -> String {
        match self.sections.first() {
            Some(first) => format!("{first} (of {})", self.sections.len()),
            None => "none".to_string(),
        }
    }

    /// The kinds, the most asked first.
    fn by_kind(&self) -> String {
        let mut kinds: Vec<(&String, &u64)> = self.requests.iter().collect();
        kinds.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
        kinds.join(", ")
    }
}

async fn make(t: &TestCtx, work: &Path, nodes: usize, agent_mib: u64) -> Result<BigRestore> {
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

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

use std::{collections::BTreeMap, path::Path, time::Duration};

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use velero_debug_crd::DebugBundle;
use velero_debug_e2e::{archives::untar, context::TestCtx};

use super::{
    baselines::{read_logs_only, velero_debug_seconds},
    big_cluster_made::make,
    bundles::bundle,
    measures::{cpu_seconds, each, median, peak_rss_kib, rss_kib, status_kib},
};

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

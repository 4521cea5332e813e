//! `make bench`: how a bundle over a large amount of logs behaves, on the local environment,
//! with the release-built operator whose pid is given.
//!
//! 0. Velero's own log of a backup, `--total-mib` MiB, read from the object store (where the
//!    log source is not the bottleneck): wall time and the operator's CPU time against
//!    `gzip -6` over the same bytes, and its peak RSS.
//! 1. Throughput and memory: data-path pods whose logs total `--total-mib` MiB are bundled;
//!    reported: wall time from apply to Completed against the source floor (the same logs read
//!    through the API, doing nothing with them) and `velero debug` on the same state, the CPU
//!    times of all three, the operator's peak RSS (VmHWM), and the time of `gzip -6` over the
//!    same log bytes on this machine.
//!
//! Scenarios 0 and 1 run `--rounds` (3) rounds, each measuring the bundle and its baselines
//! back to back, and report medians with each round's figure.
//! 2. API requests: bundles of a backup with few and with many PodVolumeBackups; the manifest's
//!    `apiRequests` should not grow with the number of objects.
//! 3. Load (`--scenarios 3` alone): `--load-bundles` (1,000) DebugBundles of one small backup
//!    created at once; reported: the time until all are Completed and the operator's RSS,
//!    sampled each second meanwhile, and its VmHWM; the bundles (and so their archives) are
//!    deleted after.
//! 4. Storage providers (`--scenarios 4`): the same `--total-mib` MiB file (incompressible,
//!    as an archive is) uploaded by the operator's storage port to BSLs default (S3, s3s-fs),
//!    gcs (fake-gcs-server) and azure (Azurite), round after round; medians and each one's
//!    ratio to S3's.
//! 5. The report (`--scenarios 5`): report.html of bundles of 200 and 2,000 volume operations,
//!    its size against its cap and its load time in headless Chromium (report_render.rs).
//! 6. A big cluster (`--scenarios 6`): a restore over 200 nodes with 2,000 PodVolumeRestores,
//!    20,000 events and 5,000 results, bundled with `nodeAgentLogs` Involved, All and None,
//!    against `velero debug --restore` and the node-agent logs' source floor (big_cluster.rs).
//! 7. Serve (`--scenarios 7`): `kubectl velero-debug serve` on a bundle of 1 GiB of content,
//!    its time to ready and its peak RSS (serve_bundle.rs).

mod big_cluster;
mod report_render;
mod serve_bundle;

use std::{
    io::Write,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, ensure};
use clap::Parser;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::{
    Api, Client,
    api::{DynamicObject, PostParams},
};
use velero_debug_crd::{DebugBundle, Phase};
use velero_debug_e2e::{
    archives::untar,
    backups::real_backup,
    context::{TestCtx, unique_name},
    env::Env,
    kwok_logs::kwok_logs_resource,
    operations::operation_object,
    polling::eventually,
};
use velero_debug_operator::velero::resource as velero_resource;

#[derive(clap::Parser)]
struct Args {
    /// MiB of logs in all data-path pods together.
    #[arg(long, default_value_t = 1100)]
    total_mib: u64,
    #[arg(long, default_value_t = 8)]
    pods: u64,
    /// The operator process whose peak RSS is read.
    #[arg(long)]
    operator_pid: u32,
    /// Where the log files are written (kwok reads them from there).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// The scenarios to run, by number (`--scenarios 0,1`): all by default.
    #[arg(long, value_delimiter = ',', default_values_t = [0u8, 1, 2, 4, 5, 6, 7, 3])]
    scenarios: Vec<u8>,
    /// Rounds of scenarios 0 and 1, each measuring the bundle and its baselines back to back
    /// (scenario 1: source floor, bundle, `velero debug`); the ratios reported are those of
    /// the medians. The machine's speed drifts by tens of percent within an hour, so one
    /// round alone can say anything.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Logs the operator reads at the same time (its LOG_CONCURRENCY; bench.sh passes the same
    /// to both): the source floor reads as many at once.
    #[arg(long, default_value_t = 8)]
    log_concurrency: usize,
    /// Before scenario 1's bundle, read its logs through the API at 1, 2, 4 and 8 at once and
    /// print the times (how LOG_CONCURRENCY's default was chosen; adds a few minutes).
    #[arg(long)]
    log_concurrency_sweep: bool,
    /// Scenario 1 measures only its source floor, this many rounds, each reading the logs with
    /// kube's default client, then with the operator's log client without and with its
    /// `SO_RCVLOWAT` (how the log client was chosen).
    #[arg(long)]
    floor_readers: Option<usize>,
    /// Leave out `velero debug` on scenario 1's state.
    #[arg(long)]
    no_velero_debug: bool,
    /// Scenario 6's nodes (each with a node-agent, 10 PodVolumeRestores, 100 events).
    #[arg(long, default_value_t = 200)]
    big_nodes: usize,
    /// MiB of log of each of scenario 6's node-agents.
    #[arg(long, default_value_t = 3)]
    big_agent_mib: u64,
    /// DebugBundles the load scenario creates at once.
    #[arg(long, default_value_t = 1000)]
    load_bundles: usize,
}

/// Reads the logs of `pods` through the API, `concurrency` at once, discarding the bytes: the
/// floor the log source sets.
async fn read_logs_only(api: &Api<Pod>, pods: &[String], concurrency: usize) -> Result<Duration> {
    let start = Instant::now();
    let reads = futures::stream::iter(pods.iter().map(|n| {
        let api = api.clone();
        async move {
            let mut stream = api.log_stream(n, &Default::default()).await?;
            let mut sink = futures::io::sink();
            futures::io::copy(&mut stream, &mut sink).await?;
            anyhow::Ok(())
        }
    }))
    .buffer_unordered(concurrency.max(1))
    .collect::<Vec<_>>()
    .await;
    for r in reads {
        r?;
    }
    Ok(start.elapsed())
}

/// The source floor read with each of the readers `--floor-readers` compares, round after
/// round; the rows give the median wall and CPU time of each.
async fn floor_readers(
    t: &TestCtx,
    state: &DataPathLogs,
    concurrency: usize,
    rounds: usize,
) -> Result<Vec<String>> {
    let (env, client) = (&t.env, &t.client);
    let config = env.config().await?;
    let low_water = velero_debug_operator::log_client::LOW_WATER;
    let readers = [
        ("kube's default client", client.clone()),
        (
            "log client, no SO_RCVLOWAT",
            velero_debug_operator::log_client::builder(&config, 0)?.build(),
        ),
        (
            "log client, SO_RCVLOWAT",
            velero_debug_operator::log_client::builder(&config, low_water)?.build(),
        ),
    ];
    let mut times = vec![(Vec::new(), Vec::new()); readers.len()];
    for round in 1..=rounds {
        for (i, (name, reader)) in readers.iter().enumerate() {
            let api: Api<Pod> = Api::namespaced(reader.clone(), &env.namespace);
            let cpu_before = cpu_seconds(std::process::id())?;
            let wall = read_logs_only(&api, &state.pods, concurrency).await?;
            let cpu = cpu_seconds(std::process::id())? - cpu_before;
            eprintln!(
                "bench: round {round} of {rounds}, {name}: {:.1} s, CPU {cpu:.1} s",
                wall.as_secs_f64()
            );
            times[i].0.push(wall.as_secs_f64());
            times[i].1.push(cpu);
        }
    }
    Ok(readers
        .iter()
        .zip(&times)
        .map(|((name, _), (walls, cpus))| {
            format!(
                "| source floor, {name}: wall / reader CPU, median | {:.1} s ({}) / {:.1} s ({}) |",
                median(walls),
                each(walls),
                median(cpus),
                each(cpus)
            )
        })
        .collect())
}

/// Times Velero's own `velero debug --backup <backup>` on the same state (it collects every pod
/// log of Velero's namespace, the data-path pods' among them) and returns the time, its CPU
/// time and the size of its tarball.
fn velero_debug_seconds(
    env: &Env,
    (flag, target): (&str, &str),
    work: &Path,
) -> Result<(f64, f64, u64)> {
    let output = work.join(format!("{}.tar.gz", unique_name("velero-debug")));
    let cpu_before = children_cpu_seconds()?;
    let start = Instant::now();
    let run = std::process::Command::new(&env.velero.cli)
        .args([
            "debug",
            flag,
            target,
            "--namespace",
            &env.namespace,
            "--output",
        ])
        .arg(&output)
        .env("KUBECONFIG", &env.kubeconfig)
        .current_dir(work)
        .output()
        .context("running velero debug")?;
    let seconds = start.elapsed().as_secs_f64();
    let cpu = children_cpu_seconds()? - cpu_before;
    let size = std::fs::metadata(&output).map(|m| m.len()).unwrap_or(0);
    let _ = std::fs::remove_file(&output);
    ensure!(
        size > 0,
        "velero debug wrote no tarball (exit {:?}): {}",
        run.status.code(),
        String::from_utf8_lossy(&run.stderr)
    );
    Ok((seconds, cpu, size))
}

/// Times `gzip -6 -c` over the files, discarding the output.
fn gzip_seconds(files: &[PathBuf]) -> Result<f64> {
    let start = Instant::now();
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "gzip -6 -c {} > /dev/null",
            files
                .iter()
                .map(|p| format!("'{}'", p.display()))
                .collect::<Vec<_>>()
                .join(" ")
        ))
        .status()?;
    ensure!(status.success(), "gzip failed");
    Ok(start.elapsed().as_secs_f64())
}

/// Scenario 0: a hand-made Completed backup whose Velero log in the object store is
/// `bytes` long; returns the table rows.
async fn object_store_log(
    t: &TestCtx,
    work: &Path,
    bytes: u64,
    operator_pid: u32,
    rounds: usize,
) -> Result<Vec<String>> {
    let (env, client) = (&t.env, &t.client);
    let backup = unique_name("bench-oslog");
    let plain = work.join(format!("{backup}.plain"));
    let cri = work.join(format!("{backup}.cri"));
    eprintln!(
        "bench: writing a {} MiB Velero log for backup {backup}",
        bytes >> 20
    );
    write_logs(&cri, &plain, bytes, 99)?;
    let _ = std::fs::remove_file(&cri);
    let gz = work.join(format!("{backup}-logs.gz"));
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "gzip -1 -c '{}' > '{}'",
            plain.display(),
            gz.display()
        ))
        .status()?;
    ensure!(status.success(), "gzip -1 failed");
    let bsl = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        &env.namespace,
        &velero_resource("BackupStorageLocation"),
    )
    .get("default")
    .await?;
    let prefix = bsl.data["spec"]["objectStorage"]["prefix"]
        .as_str()
        .map(|p| format!("{}/", p.trim_matches('/')))
        .unwrap_or_default();
    env.s3_client(&env.s3.endpoint)
        .put_object()
        .bucket(&env.s3.bucket)
        .key(format!("{prefix}backups/{backup}/{backup}-logs.gz"))
        .body(aws_sdk_s3::primitives::ByteStream::from_path(&gz).await?)
        .send()
        .await?;
    let _ = std::fs::remove_file(&gz);
    let now = jiff::Timestamp::now().to_string();
    let obj: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "velero.io/v1", "kind": "Backup",
        "metadata": {"name": backup, "namespace": env.namespace},
        "spec": {"storageLocation": "default", "ttl": "720h0m0s"},
        "status": {"phase": "Completed", "startTimestamp": now, "completionTimestamp": now,
                   "expiration": "2099-01-01T00:00:00Z"},
    }))?;
    Api::<DynamicObject>::namespaced_with(
        client.clone(),
        &env.namespace,
        &velero_resource("Backup"),
    )
    .create(&PostParams::default(), &obj)
    .await?;

    let rss_before = peak_rss_kib(operator_pid)?;
    let (mut walls, mut cpus, mut gzips) = (Vec::new(), Vec::new(), Vec::new());
    let mut measured = None;
    for round in 1..=rounds {
        eprintln!("bench: scenario 0, round {round} of {rounds}: bundling backup {backup}");
        let cpu_before = cpu_seconds(operator_pid)?;
        let (done, elapsed) = bundle(
            t,
            serde_json::json!({"backup": backup, "events": false, "nodeAgentLogs": "None"}),
        )
        .await?;
        cpus.push(cpu_seconds(operator_pid)? - cpu_before);
        walls.push(elapsed.as_secs_f64());
        let m = manifest(&done).await?;
        let log_bytes = m["files"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|f| f["path"] == "object-store/backup.log")
            .and_then(|f| f["size"].as_u64())
            .context("object-store/backup.log not in the bundle")?;
        let archive = done
            .status
            .as_ref()
            .and_then(|s| s.archive.clone())
            .context("no archive")?;
        measured = Some((log_bytes, archive.size_bytes));
        forget(client, &env.namespace, &done).await?;
        eprintln!("bench: gzip -6 over the same bytes");
        gzips.push(gzip_seconds(std::slice::from_ref(&plain))?);
    }
    let rss_after = peak_rss_kib(operator_pid)?;
    let _ = std::fs::remove_file(&plain);
    let (log_bytes, archive_bytes) = measured.context("no rounds")?;
    let (wall, gzip, cpu) = (median(&walls), median(&gzips), median(&cpus));
    Ok(vec![
        format!(
            "| Velero backup log bundled from the object store | {} MiB |",
            log_bytes >> 20
        ),
        format!("| archive size | {} MiB |", archive_bytes >> 20),
        format!(
            "| bundle wall time (apply to Completed), median | {wall:.1} s ({}) |",
            each(&walls)
        ),
        format!(
            "| `gzip -6` over the same bytes, median | {gzip:.1} s ({}) |",
            each(&gzips)
        ),
        format!(
            "| ratio bundle wall time / gzip (medians) | {:.2} |",
            wall / gzip
        ),
        format!(
            "| operator CPU time for the bundle (user+sys), median | {cpu:.1} s ({}) |",
            each(&cpus)
        ),
        format!(
            "| ratio operator CPU / gzip (medians) | {:.2} |",
            cpu / gzip
        ),
        peak_rss_row(rss_before, rss_after),
    ])
}

/// The median of a round's measurements.
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// Each round's value, in order, for the table: `16.1 / 15.8 / 17.0`.
fn each(values: &[f64]) -> String {
    values
        .iter()
        .map(|v| format!("{v:.1}"))
        .collect::<Vec<_>>()
        .join(" / ")
}

/// Deletes a measured bundle (its archive goes with it: the finalizer), so rounds do not fill
/// the bucket; not waited for.
async fn forget(client: &Client, namespace: &str, bundle: &DebugBundle) -> Result<()> {
    let name = bundle.metadata.name.as_deref().context("no name")?;
    Api::<DebugBundle>::namespaced(client.clone(), namespace)
        .delete(name, &Default::default())
        .await?;
    Ok(())
}

/// A cheap deterministic generator, so every run compresses the same bytes.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// Writes `bytes` of Velero-like log lines twice: in CRI format for kwok to serve, and as
/// plain content (what the operator receives) for the gzip baseline.
fn write_logs(cri: &Path, plain: &Path, bytes: u64, seed: u64) -> Result<()> {
    let mut rng = Lcg(seed);
    let mut cri_out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(cri)?);
    let mut plain_out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(plain)?);
    let levels = ["info", "info", "info", "debug", "warning", "error"];
    let messages = [
        "Processing item",
        "Backed up 1 items out of an estimated total of 240",
        "Executing post hooks",
        "Got volume dir",
        "PodVolumeBackup progress updated",
        "data path failed: context deadline exceeded",
        "Found associated CRD to add to backup",
    ];
    let mut written = 0u64;
    let mut second = 0u64;
    // kwok filters by the CRI timestamp; the bundle's window starts just before the backup.
    let stamp = jiff::Timestamp::now().to_string();
    while written < bytes {
        let r = rng.next();
        second += r % 3;
        let line = format!(
            "time=\"2026-11-22T{:02}:{:02}:{:02}Z\" level={} msg=\"{}\" backup=velero/nightly-{} logSource=\"pkg/backup/item_backupper.go:{}\" name=pod-{:x} namespace=ns-{} progress={}/{} resource=pods",
            (second / 3600) % 24,
            (second / 60) % 60,
            second % 60,
            levels[(r % 6) as usize],
            messages[((r >> 8) % 7) as usize],
            (r >> 12) % 30,
            (r >> 16) % 900,
            r.wrapping_mul(2654435761) & 0xffff_ffff,
            (r >> 20) % 64,
            (r >> 24) % 100_000,
            100_000
        );
        writeln!(cri_out, "{stamp} stdout F {line}")?;
        writeln!(plain_out, "{line}")?;
        written += line.len() as u64 + 1;
    }
    cri_out.flush()?;
    plain_out.flush()?;
    Ok(())
}

/// CPU seconds (user + system) a process has used so far.
fn cpu_seconds(pid: u32) -> Result<f64> {
    stat_seconds(pid, 11)
}

/// CPU seconds (user + system) of this process's children that ended: `velero debug`'s.
fn children_cpu_seconds() -> Result<f64> {
    stat_seconds(std::process::id(), 13)
}

/// Two clock-tick fields of `/proc/<pid>/stat` (user, system) summed, in seconds; `at` is the
/// first one's index among the fields after the command name.
fn stat_seconds(pid: u32, at: usize) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')').context("bad stat")? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[at].parse::<u64>()? + fields[at + 1].parse::<u64>()?;
    Ok(ticks as f64 / 100.0)
}

fn peak_rss_kib(pid: u32) -> Result<u64> {
    status_kib(pid, "VmHWM:")
}

/// The table row of the operator's peak RSS before and after a scenario (both in KiB).
fn peak_rss_row(before_kib: u64, after_kib: u64) -> String {
    format!(
        "| operator peak RSS (VmHWM) before / after | {} / {} MiB |",
        before_kib / 1024,
        after_kib / 1024
    )
}

/// The resident set now: sampled during the load scenario, whose peak VmHWM may predate.
fn rss_kib(pid: u32) -> Result<u64> {
    status_kib(pid, "VmRSS:")
}

/// A `kB` field of `/proc/<pid>/status`.
fn status_kib(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .with_context(|| format!("no {field}"))?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .with_context(|| format!("bad {field}"))?
        .parse()?)
}

/// Label of the load scenario's bundles, so they are counted and deleted by one selector.
const LOAD_LABEL: &str = "velerodebug.io/bench-load";

/// Scenario 3: `count` bundles of one small backup created at once; returns the table rows.
async fn load(t: &TestCtx, operator_pid: u32, count: usize) -> Result<Vec<String>> {
    let (env, client) = (&t.env, &t.client);
    let (_, backup, _) = real_backup(t, "bench-load").await?;
    let run = unique_name("load");
    let selector = format!("{LOAD_LABEL}={run}");
    let api: Api<DebugBundle> = Api::namespaced(client.clone(), &env.namespace);
    let rss_before = peak_rss_kib(operator_pid)?;
    eprintln!("bench: creating {count} DebugBundles of backup {backup}");
    let start = Instant::now();
    let created = futures::stream::iter(0..count)
        .map(|i| {
            let api = api.clone();
            let obj = serde_json::from_value::<DebugBundle>(serde_json::json!({
                "apiVersion": "velerodebug.io/v1alpha1", "kind": "DebugBundle",
                "metadata": {"name": format!("{run}-{i}"), "namespace": env.namespace,
                             "labels": {LOAD_LABEL: run}},
                "spec": {"backup": backup},
            }));
            async move {
                api.create(&PostParams::default(), &obj?).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(50)
        .collect::<Vec<_>>()
        .await;
    let created_in = start.elapsed();
    let waited = match created.into_iter().collect::<Result<Vec<()>>>() {
        Ok(_) => wait_all_completed(&api, &selector, count, operator_pid).await,
        Err(e) => Err(e),
    };
    let took = start.elapsed();
    let rss_after = peak_rss_kib(operator_pid)?;
    // Deleted whatever happened: each takes its archive with it (the finalizer).
    eprintln!("bench: deleting the load's bundles");
    let deleted = delete_all(&api, &selector).await;
    let (completed, max_rss) = waited?;
    deleted?;
    let secs = took.as_secs_f64();
    Ok(vec![
        format!("| bundles of one small backup, created at once | {completed} |"),
        format!(
            "| time to create them all | {:.1} s |",
            created_in.as_secs_f64()
        ),
        format!("| time from the first create to all Completed | {secs:.1} s |"),
        format!(
            "| bundles Completed per second | {:.2} |",
            completed as f64 / secs
        ),
        format!(
            "| operator RSS, highest sample (each second) | {} MiB |",
            max_rss / 1024
        ),
        peak_rss_row(rss_before, rss_after),
    ])
}

/// Waits until `count` bundles of `selector` are Completed (two hours at most: 1,000 bundles
/// go through 4 collection slots); fails at the first Failed one. Returns how many and the
/// operator's highest RSS sampled meanwhile.
async fn wait_all_completed(
    api: &Api<DebugBundle>,
    selector: &str,
    count: usize,
    operator_pid: u32,
) -> Result<(usize, u64)> {
    let deadline = Instant::now() + Duration::from_secs(2 * 3600);
    let mut max_rss = rss_kib(operator_pid)?;
    let mut last_report = Instant::now();
    loop {
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            max_rss = max_rss.max(rss_kib(operator_pid)?);
        }
        let listed = api
            .list(&kube::api::ListParams::default().labels(selector))
            .await?;
        let phase = |b: &DebugBundle| b.status.as_ref().and_then(|s| s.phase);
        if let Some(failed) = listed
            .items
            .iter()
            .find(|b| phase(b) == Some(Phase::Failed))
        {
            anyhow::bail!(
                "bundle {} failed: {:?}",
                failed.metadata.name.as_deref().unwrap_or_default(),
                failed.status.as_ref().map(|s| &s.conditions)
            );
        }
        let completed = listed
            .items
            .iter()
            .filter(|b| phase(b) == Some(Phase::Completed))
            .count();
        if completed >= count {
            return Ok((completed, max_rss));
        }
        ensure!(
            Instant::now() < deadline,
            "{completed} of {count} bundles Completed after two hours"
        );
        if last_report.elapsed() >= Duration::from_secs(30) {
            eprintln!(
                "bench: {completed} of {count} Completed (operator RSS {} MiB)",
                rss_kib(operator_pid)? / 1024
            );
            last_report = Instant::now();
        }
    }
}

/// Deletes every bundle of `selector` and waits until they are gone (their archives with
/// them).
async fn delete_all(api: &Api<DebugBundle>, selector: &str) -> Result<()> {
    let lp = kube::api::ListParams::default().labels(selector);
    api.delete_collection(&kube::api::DeleteParams::default(), &lp)
        .await?;
    eventually("the load's bundles gone", Duration::from_secs(1800), || {
        let lp = lp.clone();
        async move {
            let left = api.list_metadata(&lp).await?.items.len();
            Ok((left == 0).then_some(()))
        }
    })
    .await
}

/// A PodVolumeBackup of `backup` on node-0.
async fn pvb(t: &TestCtx, backup: &str, uid: &str) -> Result<String> {
    operation_object(t, "PodVolumeBackup",
        serde_json::json!({"velero.io/backup-name": backup, "velero.io/backup-uid": uid}),
        serde_json::json!({"node": "node-0", "backupStorageLocation": "default", "repoIdentifier": "",
                           "uploaderType": "kopia", "volume": "data", "tags": {},
                           "pod": {"kind": "Pod", "namespace": "default", "name": "app"}}),
        serde_json::json!({"phase": "Completed"}),
    )
    .await
}

/// Applies a bundle and waits for Completed; returns it and the wall time.
async fn bundle(t: &TestCtx, spec: serde_json::Value) -> Result<(DebugBundle, Duration)> {
    let (env, client) = (&t.env, &t.client);
    let name = unique_name("bench-vdb");
    let obj: DebugBundle = serde_json::from_value(serde_json::json!({
        "apiVersion": "velerodebug.io/v1alpha1", "kind": "DebugBundle",
        "metadata": {"name": name, "namespace": env.namespace}, "spec": spec
    }))?;
    let api: Api<DebugBundle> = Api::namespaced(client.clone(), &env.namespace);
    let start = Instant::now();
    api.create(&PostParams::default(), &obj).await?;
    // Watched, not polled: a poll each second added up to a second (half on average) to every
    // bundle's wall time, and nothing to the baselines'.
    let finished = |b: Option<&DebugBundle>| {
        let phase = b.and_then(|b| b.status.as_ref()).and_then(|s| s.phase);
        matches!(phase, Some(Phase::Completed | Phase::Failed))
    };
    let done = tokio::time::timeout(
        Duration::from_secs(1800),
        kube::runtime::wait::await_condition(api.clone(), &name, finished),
    )
    .await
    .context("bench bundle not finished after 30 minutes")??
    .context("bench bundle deleted")?;
    let wall = start.elapsed();
    ensure!(
        done.status.as_ref().and_then(|s| s.phase) == Some(Phase::Completed),
        "bundle failed: {:?}",
        done.status
    );
    Ok((done, wall))
}

async fn manifest(b: &DebugBundle) -> Result<serde_json::Value> {
    let url = b
        .status
        .as_ref()
        .and_then(|s| s.download_url.clone())
        .context("no URL")?;
    let bytes = reqwest::get(&url).await?.bytes().await?;
    let files = untar(&bytes)?;
    let (_, m) = files
        .iter()
        .find(|(k, _)| k.ends_with("/manifest.json"))
        .context("no manifest")?;
    Ok(serde_json::from_slice(m)?)
}

/// Scenario 1's state: the data-path pods of a real backup, whose logs kwok serves from files.
struct DataPathLogs {
    backup: String,
    per_pod: u64,
    /// The logs' plain content (for gzip) and CRI files (for kwok).
    plain_files: Vec<PathBuf>,
    cri_files: Vec<PathBuf>,
    pods: Vec<String>,
}

impl DataPathLogs {
    async fn write(t: &TestCtx, work: &Path, total_mib: u64, pods: u64) -> Result<Self> {
        let (env, client, cleanup) = (&t.env, &t.client, &t.cleanup);
        let (_, backup, uid) = real_backup(t, "bench").await?;
        let per_pod = total_mib * 1024 * 1024 / pods;
        let mut state = DataPathLogs {
            backup,
            per_pod,
            plain_files: Vec::new(),
            cri_files: Vec::new(),
            pods: Vec::new(),
        };
        eprintln!("bench: writing {total_mib} MiB of logs for {pods} data-path pods");
        for i in 0..pods {
            let pvb_name = pvb(t, &state.backup, &uid).await?;
            let pod_name = unique_name("bench-datapath");
            let cri = work.join(format!("{pod_name}.log"));
            let plain = work.join(format!("{pod_name}.plain"));
            write_logs(&cri, &plain, per_pod, i + 1)?;
            state.plain_files.push(plain);
            let pod: Pod = serde_json::from_value(serde_json::json!({
                "metadata": {"name": pod_name, "labels": {"velero.io/pod-volume-backup": pvb_name}},
                "spec": {"nodeName": "node-0", "containers": [{"name": "data-mover", "image": "velero/velero"}]}
            }))?;
            Api::<Pod>::namespaced(client.clone(), &env.namespace)
                .create(&PostParams::default(), &pod)
                .await?;
            // Gone when the bench ends: a later run's `velero debug` reads every pod log of
            // the namespace, so pods left over would count against it.
            cleanup.object::<Pod>(&env.namespace, &pod_name);
            let logs = DynamicObject::new(&pod_name, &kwok_logs_resource())
                .within(&env.namespace)
                .data(serde_json::json!({"spec": {"logs": [{"containers": ["data-mover"], "logsFile": cri}]}}));
            Api::<DynamicObject>::namespaced_with(
                client.clone(),
                &env.namespace,
                &kwok_logs_resource(),
            )
            .create(&PostParams::default(), &logs)
            .await?;
            cleanup.delete(&kwok_logs_resource(), Some(&env.namespace), &pod_name);
            state.cri_files.push(cri);
            state.pods.push(pod_name);
        }
        tokio::time::sleep(Duration::from_secs(3)).await; // kwok picks up the Logs objects
        Ok(state)
    }
}

impl Drop for DataPathLogs {
    fn drop(&mut self) {
        for p in self.plain_files.iter().chain(&self.cri_files) {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Scenario 1; returns the table rows.
async fn data_path_logs(
    t: &TestCtx,
    state: &DataPathLogs,
    work: &Path,
    args: &Args,
) -> Result<Vec<String>> {
    let (env, client) = (&t.env, &t.client);
    // The floor's reader reads with the operator's log client (`--floor-readers` compares it
    // with kube's default one).
    let log_client = velero_debug_operator::log_client::builder(
        &env.config().await?,
        velero_debug_operator::log_client::LOW_WATER,
    )?
    .build();
    let pods_api: Api<Pod> = Api::namespaced(log_client, &env.namespace);
    let mut sweep = Vec::new();
    if args.log_concurrency_sweep {
        for concurrency in [1, 2, 4, 8] {
            eprintln!("bench: reading the logs {concurrency} at once");
            sweep.push((
                concurrency,
                read_logs_only(&pods_api, &state.pods, concurrency).await?,
            ));
        }
    }
    if let Some(rounds) = args.floor_readers {
        return floor_readers(t, state, args.log_concurrency, rounds).await;
    }
    let rounds = args.rounds;
    let rss_before = peak_rss_kib(args.operator_pid)?;
    let (mut floors, mut floor_cpus, mut walls, mut cpus, mut peers) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut measured = None;
    for round in 1..=rounds {
        // The floor set by the log source: the same logs read through the API, as many at
        // once as the operator reads them, doing nothing with the bytes.
        eprintln!("bench: scenario 1, round {round} of {rounds}: the source floor");
        let reader_before = cpu_seconds(std::process::id())?;
        floors.push(
            read_logs_only(&pods_api, &state.pods, args.log_concurrency)
                .await?
                .as_secs_f64(),
        );
        floor_cpus.push(cpu_seconds(std::process::id())? - reader_before);
        eprintln!("bench: scenario 1, round {round} of {rounds}: bundling");
        let cpu_before = cpu_seconds(args.operator_pid)?;
        let (big, elapsed) = bundle(t, serde_json::json!({"backup": state.backup, "maxLogBytesPerContainer": state.per_pod * 2, "events": false}),
        )
        .await?;
        cpus.push(cpu_seconds(args.operator_pid)? - cpu_before);
        walls.push(elapsed.as_secs_f64());
        let archive = big
            .status
            .as_ref()
            .and_then(|s| s.archive.clone())
            .context("no archive")?;
        let m = manifest(&big).await?;
        eprintln!(
            "bench: scenario 1, round {round}: {elapsed:.1?}; collection steps (ms): {}",
            m["timingsMs"]
        );
        let log_bytes: u64 = m["files"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|f| {
                f["path"]
                    .as_str()
                    .is_some_and(|p| p.starts_with("logs/data-path/"))
            })
            .map(|f| f["size"].as_u64().unwrap_or(0))
            .sum();
        measured = Some((log_bytes, archive.size_bytes));
        forget(client, &env.namespace, &big).await?;
        if !args.no_velero_debug {
            eprintln!("bench: scenario 1, round {round} of {rounds}: velero debug");
            peers.push(velero_debug_seconds(
                env,
                ("--backup", &state.backup),
                work,
            )?);
        }
    }
    let rss_after = peak_rss_kib(args.operator_pid)?;
    eprintln!("bench: gzip -6 over the same bytes");
    let gzip = gzip_seconds(&state.plain_files)?;
    let (log_bytes, archive_bytes) = measured.context("no rounds")?;
    let (wall, floor, cpu) = (median(&walls), median(&floors), median(&cpus));
    let mut rows = vec![
        format!(
            "| data-path logs bundled | {} MiB in {} containers |",
            log_bytes / (1024 * 1024),
            state.pods.len()
        ),
        format!("| archive size | {} MiB |", archive_bytes / (1024 * 1024)),
        format!(
            "| bundle wall time (apply to Completed), median of {rounds} | {wall:.1} s ({}) |",
            each(&walls)
        ),
        format!(
            "| reading the same logs through the API only, {} at once (source floor), median | {floor:.1} s ({}) |",
            args.log_concurrency,
            each(&floors)
        ),
        format!(
            "| ratio bundle wall time / source floor (medians) | {:.2} |",
            wall / floor
        ),
    ];
    if !peers.is_empty() {
        let seconds: Vec<f64> = peers.iter().map(|(s, _, _)| *s).collect();
        let peer_cpus: Vec<f64> = peers.iter().map(|(_, c, _)| *c).collect();
        let peer = median(&seconds);
        let size = peers.last().map(|(_, _, size)| *size).unwrap_or(0);
        rows.push(format!(
            "| `velero debug --backup` on the same state, median (its tarball) | {peer:.1} s ({}; {} MiB) |",
            each(&seconds),
            size / (1024 * 1024)
        ));
        rows.push(format!(
            "| ratio bundle wall time / `velero debug` (medians) | {:.2} |",
            wall / peer
        ));
        rows.push(format!(
            "| `velero debug`'s CPU time, median | {:.1} s ({}) |",
            median(&peer_cpus),
            each(&peer_cpus)
        ));
    }
    rows.push(format!(
        "| the source floor's reader's own CPU time (the bench process), median | {:.1} s ({}) |",
        median(&floor_cpus),
        each(&floor_cpus)
    ));
    rows.push(format!("| `gzip -6` over the same bytes | {gzip:.1} s |"));
    for (concurrency, took) in &sweep {
        rows.push(format!(
            "| the logs through the API only, {concurrency} at once | {:.1} s |",
            took.as_secs_f64()
        ));
    }
    rows.push(format!(
        "| operator CPU time for the bundle (user+sys), median | {cpu:.1} s ({}) |",
        each(&cpus)
    ));
    rows.push(format!("| ratio operator CPU / gzip | {:.2} |", cpu / gzip));
    rows.push(peak_rss_row(rss_before, rss_after));
    Ok(rows)
}

/// Scenario 2; returns the table rows.
async fn api_requests(t: &TestCtx) -> Result<Vec<String>> {
    let mut rows = Vec::new();
    for count in [10usize, 200] {
        let (_, b, u) = real_backup(t, "bench").await?;
        for _ in 0..count {
            pvb(t, &b, &u).await?;
        }
        let (done, _) = bundle(t, serde_json::json!({"backup": b})).await?;
        let m = manifest(&done).await?;
        let files = m["files"].as_array().map(|f| f.len()).unwrap_or(0);
        let requests = m["apiRequests"].as_u64().unwrap_or(0);
        rows.push(format!(
            "| API requests, backup with {count} PodVolumeBackups | {requests} ({files} files) |"
        ));
    }
    Ok(rows)
}

/// Scenario 4; returns the table rows. Each store takes one untimed upload first: the
/// emulators' first large upload pays for memory they keep for the next ones. Each round ends
/// with the floor: Microsoft's own SDK uploading the same file to the same Azurite in the same
/// blocks, as many at once, each with its MD5.
async fn upload_per_provider(
    t: &TestCtx,
    work: &Path,
    mib: u64,
    rounds: usize,
) -> Result<Vec<String>> {
    let file = work.join("bench-upload.bin");
    write_incompressible(&file, mib << 20)?;
    let stores = [("S3", "default"), ("GCS", "gcs"), ("Azure", "azure")];
    let mut times = vec![Vec::new(); stores.len()];
    let mut sdk = Vec::new();
    for round in 0..=rounds {
        for (i, (provider, name)) in stores.iter().enumerate() {
            let took = upload_to(t, name, &file).await?;
            eprintln!("bench: scenario 4, round {round} of {rounds}: {provider} {took:.1?}");
            if round > 0 {
                times[i].push(took.as_secs_f64());
            }
        }
        if round > 0 {
            let path = file.to_string_lossy();
            let (block_mib, in_flight) = velero_debug_operator::AZURE_UPLOAD_SHAPE;
            let took: f64 = velero_debug_e2e::stores::azure_blob(
                &t.env,
                &[
                    "timed-upload",
                    &unique_name("bench-upload-sdk"),
                    &path,
                    &block_mib.to_string(),
                    &in_flight.to_string(),
                ],
            )
            .await?
            .parse()?;
            eprintln!("bench: scenario 4, round {round} of {rounds}: Azure SDK {took:.1}s");
            sdk.push(took);
        }
    }
    std::fs::remove_file(&file)?;
    let s3 = median(&times[0]);
    let mut rows: Vec<String> = stores
        .iter()
        .zip(&times)
        .map(|((provider, name), t)| {
            format!(
                "| {provider} (BSL {name}), {mib} MiB | {:.1} s median ({}); {:.2}x S3 |",
                median(t),
                each(t),
                median(t) / s3
            )
        })
        .collect();
    rows.push(format!(
        "| Azure floor: Microsoft's SDK (azure-storage-blob), same file, blocks and Azurite | \
         {:.1} s median ({}); {:.2}x S3 |",
        median(&sdk),
        each(&sdk),
        median(&sdk) / s3
    ));
    Ok(rows)
}

/// Uploads `file` once to BSL `name`'s store as the operator uploads an archive; its time.
async fn upload_to(t: &TestCtx, name: &str, file: &Path) -> Result<Duration> {
    use k8s_openapi::api::core::v1::Secret;
    let bsls: Api<DynamicObject> = Api::namespaced_with(
        t.client.clone(),
        &t.env.namespace,
        &velero_resource("BackupStorageLocation"),
    );
    let secrets: Api<Secret> = Api::namespaced(t.client.clone(), &t.env.namespace);
    let bsl = bsls.get(name).await?;
    let credential = &bsl.data["spec"]["credential"];
    let secret = credential["name"].as_str().unwrap_or("cloud-credentials");
    let key = credential["key"].as_str().unwrap_or("cloud");
    let text = secrets
        .get_opt(secret)
        .await?
        .and_then(|s| s.data)
        .and_then(|mut d| d.remove(key))
        .map(|b| String::from_utf8_lossy(&b.0).into_owned());
    let object = unique_name("bench-upload");
    velero_debug_operator::measure_upload(&bsl, text.as_deref(), file, &object).await
}

/// `bytes` of xorshift output: an archive's bytes do not compress further either.
fn write_incompressible(path: &Path, bytes: u64) -> Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut chunk = vec![0u8; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        for word in chunk.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let n = left.min(chunk.len() as u64) as usize;
        out.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    out.flush()?;
    Ok(())
}

/// A two-column table of measures.
fn print_table(title: &str, rows: &[String]) {
    let header = [
        "| measure | value |".to_string(),
        "| --- | --- |".to_string(),
    ];
    print_rows(title, &[&header[..], rows].concat());
}

/// A table whose rows bring their own header.
fn print_rows(title: &str, rows: &[String]) {
    println!("{title}\n");
    for row in rows {
        println!("{row}");
    }
    println!();
}

// One runtime thread, as the operator has by default: the source floor's reader costs least so
// (every chunk of a log wakes a thread), and the floor is the fastest a reader gets the logs.
#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() -> Result<()> {
    let args = Args::parse();
    // What the fixtures make goes when the bench ends.
    let t = &TestCtx::new().await?;
    let env = &t.env;
    let work = args
        .work_dir
        .clone()
        .unwrap_or_else(|| env.pod_logs_dir.clone());
    let runs = |n: u8| args.scenarios.contains(&n);
    ensure!(args.rounds > 0, "--rounds must be at least 1");

    if runs(0) {
        let rows = object_store_log(
            t,
            &work,
            args.total_mib << 20,
            args.operator_pid,
            args.rounds,
        )
        .await?;
        print_table("Scenario 0: Velero's own log, from the object store", &rows);
    }
    if runs(1) {
        let state = DataPathLogs::write(t, &work, args.total_mib, args.pods).await?;
        let rows = data_path_logs(t, &state, &work, &args).await?;
        drop(state);
        print_table(
            "Scenario 1: data-path pod logs through the API server (kwok)",
            &rows,
        );
    }
    if runs(2) {
        let rss_before = peak_rss_kib(args.operator_pid)?;
        let mut rows = api_requests(t).await?;
        rows.push(peak_rss_row(rss_before, peak_rss_kib(args.operator_pid)?));
        print_table(
            "Scenario 2: API requests against the number of objects",
            &rows,
        );
    }
    if runs(4) {
        let rows = upload_per_provider(t, &work, args.total_mib, args.rounds).await?;
        print_table("Scenario 4: one archive uploaded to each store", &rows);
    }
    if runs(5) {
        let rows = report_render::report_render(t, args.rounds).await?;
        print_rows("Scenario 5: report.html in headless Chromium", &rows);
    }
    if runs(6) {
        let big = big_cluster::BigCluster {
            nodes: args.big_nodes,
            agent_mib: args.big_agent_mib,
            rounds: args.rounds,
            log_concurrency: args.log_concurrency,
            concurrency_sweep: args.log_concurrency_sweep,
            operator_pid: args.operator_pid,
        };
        let rows = big_cluster::big_cluster(t, &work, &big).await?;
        print_rows(
            &format!("Scenario 6: a restore on {} nodes", args.big_nodes),
            &rows,
        );
    }
    if runs(7) {
        let rows = serve_bundle::serve_bundle(env, args.rounds).await?;
        print_table("Scenario 7: kubectl velero-debug serve, 1 GiB", &rows);
    }
    if runs(3) {
        let rows = load(t, args.operator_pid, args.load_bundles).await?;
        print_table(
            &format!("Scenario 3: load, {} bundles at once", args.load_bundles),
            &rows,
        );
    }
    Ok(())
}

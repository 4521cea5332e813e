//! Scenario 1: data-path pods whose logs kwok serves from files, bundled in rounds against the
//! source floor, `velero debug` on the same state and `gzip -6` over the same bytes; and, with
//! `--floor-readers`, the source floor alone read by each log client compared.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::Pod;
use kube::{
    Api,
    api::{DynamicObject, PostParams},
};
use velero_debug_e2e::{
    backups::real_backup,
    context::{TestCtx, unique_name},
    kwok_logs::kwok_logs_resource,
};

use super::{
    Args,
    baselines::{gzip_seconds, read_logs_only, velero_debug_seconds},
    bundles::{bundle, forget, manifest, pvb},
    log_files::write_logs,
    measures::{cpu_seconds, each, median, peak_rss_kib, peak_rss_row},
};

/// Scenario 1's state: the data-path pods of a real backup, whose logs kwok serves from files.
pub(crate) struct DataPathLogs {
    backup: String,
    per_pod: u64,
    /// The logs' plain content (for gzip) and CRI files (for kwok).
    plain_files: Vec<PathBuf>,
    cri_files: Vec<PathBuf>,
    pods: Vec<String>,
}

impl DataPathLogs {
    pub(crate) async fn write(t: &TestCtx, work: &Path, total_mib: u64, pods: u64) -> Result<Self> {
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
pub(crate) async fn data_path_logs(
    t: &TestCtx,
    state: &DataPathLogs,
    work: &Path,
    args: &Args,
) -> Result<Vec<String>> {
    let env = &t.env;
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
    let rss_before = peak_rss_kib(args.operator_pid)?;
    let mut rounds = Rounds::default();
    for round in 1..=args.rounds {
        rounds
            .measure(t, (state, work, args), &pods_api, round)
            .await?;
    }
    let rss_after = peak_rss_kib(args.operator_pid)?;
    eprintln!("bench: gzip -6 over the same bytes");
    let gzip = gzip_seconds(&state.plain_files)?;
    rounds.rows((state, args), gzip, &sweep, (rss_before, rss_after))
}

/// Scenario 1's figures, one of each list per round.
#[derive(Default)]
struct Rounds {
    /// The source floor's wall time, and its reader's CPU time (this process's).
    floors: Vec<f64>,
    floor_cpus: Vec<f64>,
    /// The bundle's wall time, and the operator's CPU time for it.
    walls: Vec<f64>,
    cpus: Vec<f64>,
    /// `velero debug`'s time, CPU time and tarball size (none with `--no-velero-debug`).
    peers: Vec<(f64, f64, u64)>,
    /// The last round's data-path log bytes in the bundle and its archive's size.
    measured: Option<(u64, i64)>,
}

impl Rounds {
    /// One round: the source floor, the bundle, and `velero debug`, back to back.
    async fn measure(
        &mut self,
        t: &TestCtx,
        (state, work, args): (&DataPathLogs, &Path, &Args),
        pods_api: &Api<Pod>,
        round: usize,
    ) -> Result<()> {
        let (env, client) = (&t.env, &t.client);
        let rounds = args.rounds;
        // The floor set by the log source: the same logs read through the API, as many at
        // once as the operator reads them, doing nothing with the bytes.
        eprintln!("bench: scenario 1, round {round} of {rounds}: the source floor");
        let reader_before = cpu_seconds(std::process::id())?;
        self.floors.push(
            read_logs_only(pods_api, &state.pods, args.log_concurrency)
                .await?
                .as_secs_f64(),
        );
        self.floor_cpus
            .push(cpu_seconds(std::process::id())? - reader_before);
        eprintln!("bench: scenario 1, round {round} of {rounds}: bundling");
        let cpu_before = cpu_seconds(args.operator_pid)?;
        let (big, elapsed) = bundle(t, serde_json::json!({"backup": state.backup, "maxLogBytesPerContainer": state.per_pod * 2, "events": false}),
        )
        .await?;
        self.cpus.push(cpu_seconds(args.operator_pid)? - cpu_before);
        self.walls.push(elapsed.as_secs_f64());
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
        self.measured = Some((log_bytes, archive.size_bytes));
        forget(client, &env.namespace, &big).await?;
        if !args.no_velero_debug {
            eprintln!("bench: scenario 1, round {round} of {rounds}: velero debug");
            self.peers.push(velero_debug_seconds(
                env,
                ("--backup", &state.backup),
                work,
            )?);
        }
        Ok(())
    }

    /// The table rows: medians with each round's figure, and the ratios of the medians.
    fn rows(
        &self,
        (state, args): (&DataPathLogs, &Args),
        gzip: f64,
        sweep: &[(usize, Duration)],
        (rss_before, rss_after): (u64, u64),
    ) -> Result<Vec<String>> {
        let Rounds {
            floors,
            floor_cpus,
            walls,
            cpus,
            ..
        } = self;
        let rounds = args.rounds;
        let (log_bytes, archive_bytes) = self.measured.context("no rounds")?;
        let (wall, floor, cpu) = (median(walls), median(floors), median(cpus));
        let mut rows = vec![
            format!(
                "| data-path logs bundled | {} MiB in {} containers |",
                log_bytes / (1024 * 1024),
                state.pods.len()
            ),
            format!("| archive size | {} MiB |", archive_bytes / (1024 * 1024)),
            format!(
                "| bundle wall time (apply to Completed), median of {rounds} | {wall:.1} s ({}) |",
                each(walls)
            ),
            format!(
                "| reading the same logs through the API only, {} at once (source floor), median | {floor:.1} s ({}) |",
                args.log_concurrency,
                each(floors)
            ),
            format!(
                "| ratio bundle wall time / source floor (medians) | {:.2} |",
                wall / floor
            ),
        ];
        rows.extend(self.peer_rows(wall));
        rows.push(format!(
            "| the source floor's reader's own CPU time (the bench process), median | {:.1} s ({}) |",
            median(floor_cpus),
            each(floor_cpus)
        ));
        rows.push(format!("| `gzip -6` over the same bytes | {gzip:.1} s |"));
        for (concurrency, took) in sweep {
            rows.push(format!(
                "| the logs through the API only, {concurrency} at once | {:.1} s |",
                took.as_secs_f64()
            ));
        }
        rows.push(format!(
            "| operator CPU time for the bundle (user+sys), median | {cpu:.1} s ({}) |",
            each(cpus)
        ));
        rows.push(format!("| ratio operator CPU / gzip | {:.2} |", cpu / gzip));
        rows.push(peak_rss_row(rss_before, rss_after));
        Ok(rows)
    }

    /// `velero debug`'s rows against the bundle's median wall time (none without its rounds).
    fn peer_rows(&self, wall: f64) -> Vec<String> {
        let peers = &self.peers;
        if peers.is_empty() {
            return Vec::new();
        }
        let seconds: Vec<f64> = peers.iter().map(|(s, _, _)| *s).collect();
        let peer_cpus: Vec<f64> = peers.iter().map(|(_, c, _)| *c).collect();
        let peer = median(&seconds);
        let size = peers.last().map(|(_, _, size)| *size).unwrap_or(0);
        vec![
            format!(
                "| `velero debug --backup` on the same state, median (its tarball) | {peer:.1} s ({}; {} MiB) |",
                each(&seconds),
                size / (1024 * 1024)
            ),
            format!(
                "| ratio bundle wall time / `velero debug` (medians) | {:.2} |",
                wall / peer
            ),
            format!(
                "| `velero debug`'s CPU time, median | {:.1} s ({}) |",
                median(&peer_cpus),
                each(&peer_cpus)
            ),
        ]
    }
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

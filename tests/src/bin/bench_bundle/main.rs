//! `make bench`: how a bundle over a large amount of logs behaves, on the local environment,
//! with the release-built operator whose pid is given.
//!
//! 0. Velero's own log of a backup, `--total-mib` MiB, read from the object store (where the
//!    log source is not the bottleneck): wall time and the operator's CPU time against
//!    `gzip -6` over the same bytes, and its peak RSS (object_store_log.rs).
//! 1. Throughput and memory: data-path pods whose logs total `--total-mib` MiB are bundled;
//!    reported: wall time from apply to Completed against the source floor (the same logs read
//!    through the API, doing nothing with them) and `velero debug` on the same state, the CPU
//!    times of all three, the operator's peak RSS (VmHWM), and the time of `gzip -6` over the
//!    same log bytes on this machine (data_path_logs.rs).
//!
//! Scenarios 0 and 1 run `--rounds` (3) rounds, each measuring the bundle and its baselines
//! back to back, and report medians with each round's figure.
//! 2. API requests: bundles of a backup with few and with many PodVolumeBackups; the manifest's
//!    `apiRequests` should not grow with the number of objects (api_requests.rs).
//! 3. Load (`--scenarios 3` alone): `--load-bundles` (1,000) DebugBundles of one small backup
//!    created at once; reported: the time until all are Completed and the operator's RSS,
//!    sampled each second meanwhile, and its VmHWM; the bundles (and so their archives) are
//!    deleted after (load.rs).
//! 4. Storage providers (`--scenarios 4`): the same `--total-mib` MiB file (incompressible,
//!    as an archive is) uploaded by the operator's storage port to BSLs default (S3, s3s-fs),
//!    gcs (fake-gcs-server) and azure (Azurite), round after round; medians and each one's
//!    ratio to S3's (upload_per_provider.rs).
//! 5. The report (`--scenarios 5`): report.html of bundles of 200 and 2,000 volume operations,
//!    its size against its cap and its load time in headless Chromium (report_render.rs).
//! 6. A big cluster (`--scenarios 6`): a restore over 200 nodes with 2,000 PodVolumeRestores,
//!    20,000 events and 5,000 results, bundled with `nodeAgentLogs` Involved, All and None,
//!    against `velero debug --restore` and the node-agent logs' source floor (big_cluster.rs).
//! 7. Serve (`--scenarios 7`): `kubectl velero-debug serve` on a bundle of 1 GiB of content,
//!    its time to ready and its peak RSS (serve_bundle.rs).
//! 8. The recorder (`--scenarios 8`): `--recorder-pods` (10,000) data-path pods ended
//!    OOMKilled; the records kept and stored against their bounds, and the operator's RSS
//!    (recorder_load.rs).

mod api_requests;
mod baselines;
mod big_cluster;
mod big_cluster_made;
mod bundles;
mod data_path_logs;
mod load;
mod log_files;
mod measures;
mod object_store_log;
mod recorder_load;
mod report_render;
mod serve_bundle;
mod upload_per_provider;

use std::path::PathBuf;

use anyhow::{Result, ensure};
use clap::Parser;
use velero_debug_e2e::context::TestCtx;

use measures::{peak_rss_kib, peak_rss_row};

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
    #[arg(long, value_delimiter = ',', default_values_t = [0u8, 1, 2, 4, 5, 6, 7, 8, 3])]
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
    /// Data-path pods the recorder scenario ends (scenario 8).
    #[arg(long, default_value_t = 10_000)]
    recorder_pods: usize,
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
        let rows = object_store_log::object_store_log(
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
        let state =
            data_path_logs::DataPathLogs::write(t, &work, args.total_mib, args.pods).await?;
        let rows = data_path_logs::data_path_logs(t, &state, &work, &args).await?;
        drop(state);
        print_table(
            "Scenario 1: data-path pod logs through the API server (kwok)",
            &rows,
        );
    }
    if runs(2) {
        let rss_before = peak_rss_kib(args.operator_pid)?;
        let mut rows = api_requests::api_requests(t).await?;
        rows.push(peak_rss_row(rss_before, peak_rss_kib(args.operator_pid)?));
        print_table(
            "Scenario 2: API requests against the number of objects",
            &rows,
        );
    }
    if runs(4) {
        let rows =
            upload_per_provider::upload_per_provider(t, &work, args.total_mib, args.rounds).await?;
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
    if runs(8) {
        let rows = recorder_load::recorder_load(t, args.operator_pid, args.recorder_pods).await?;
        print_table(
            &format!(
                "Scenario 8: the recorder, {} data-path pods ended",
                args.recorder_pods
            ),
            &rows,
        );
    }
    if runs(3) {
        let rows = load::load(t, args.operator_pid, args.load_bundles).await?;
        print_table(
            &format!("Scenario 3: load, {} bundles at once", args.load_bundles),
            &rows,
        );
    }
    Ok(())
}

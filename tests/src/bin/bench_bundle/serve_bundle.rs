//! Scenario 7: `kubectl velero-debug serve` on a bundle of 1 GiB of content (a Velero server
//! log of varied lines, as most of a large bundle is, plus 2,000 pods): the time from start
//! until the kubeconfig is printed (goal: under 5 s), and the server's peak RSS (VmHWM) after
//! `kubectl get pods -A` and `kubectl logs` of the whole 1 GiB log (goal: under 100 MiB).

use std::{
    io::{BufWriter, Write},
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, ensure};
use velero_debug_e2e::{
    plugin,
    served::{Served, run},
};

use super::measures::{each, median, status_kib};

const LOG_BYTES: u64 = 1 << 30;
const PODS: usize = 2_000;

/// A Velero-like log line; the counter and a hash-like field keep it from compressing to
/// nothing, as real logs do not.
fn log_line(i: u64) -> String {
    let hash = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!(
        "time=\"2026-01-01T00:{:02}:{:02}Z\" level=info msg=\"Processing item {i}\" backup=velero/b \
         logSource=\"pkg/backup/item_backupper.go:{}\" resource=pods item={hash:016x}\n",
        (i / 60) % 60,
        i % 60,
        100 + i % 900
    )
}

/// The bundle: manifest.json, a Restore, PODS pods, and the log, as the operator lays them.
fn write_bundle(dir: &Path) -> Result<std::path::PathBuf> {
    let log = dir.join("velero.log");
    let mut w = BufWriter::new(std::fs::File::create(&log)?);
    let (mut written, mut i) = (0u64, 0u64);
    while written < LOG_BYTES {
        let line = log_line(i);
        w.write_all(line.as_bytes())?;
        written += line.len() as u64;
        i += 1;
    }
    w.flush()?;
    drop(w);
    let archive = dir.join("bench-serve.tar.gz");
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&archive)?,
        flate2::Compression::fast(),
    );
    let mut tar = tar::Builder::new(gz);
    let mut add = |path: &str, data: &[u8]| -> Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        tar.append_data(&mut h, format!("bench-serve/{path}"), data)?;
        Ok(())
    };
    let manifest = serde_json::json!({"formatVersion": 1,
        "target": {"kind": "Restore", "name": "r-bench"}, "rootFolder": "bench-serve"});
    add("manifest.json", manifest.to_string().as_bytes())?;
    add(
        "resources/restore.yaml",
        b"apiVersion: velero.io/v1\nkind: Restore\nmetadata: {name: r-bench, namespace: velero}\n",
    )?;
    for p in 0..PODS {
        let pod = format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: app-{p}, namespace: shop, labels: {{app: a{p}}}}}\n\
             spec: {{containers: [{{name: app}}]}}\nstatus: {{phase: Pending}}\n"
        );
        add(
            &format!("resources/workloads/shop/pods/app-{p}.yaml"),
            pod.as_bytes(),
        )?;
    }
    add(
        "pods/velero-bench.yaml",
        b"apiVersion: v1\nkind: Pod\nmetadata: {name: velero-bench, namespace: velero}\nspec: {containers: [{name: velero}]}\n",
    )?;
    tar.append_path_with_name(&log, "bench-serve/logs/velero/velero-bench/velero.log")?;
    tar.into_inner()?.finish()?;
    std::fs::remove_file(&log)?;
    Ok(archive)
}

/// One round: seconds until the kubeconfig, and the peak RSS in KiB after the reads.
async fn round(env: &velero_debug_e2e::env::Env, archive: &Path) -> Result<(f64, u64)> {
    let start = Instant::now();
    let served = Served::start(env, &archive.display().to_string()).await?;
    let ready = start.elapsed().as_secs_f64();
    let kubectl = Path::new("kubectl");
    let pods = run(
        kubectl,
        &served.kubeconfig,
        &["get", "pods", "-A", "--no-headers"],
    )
    .await?;
    ensure!(
        String::from_utf8_lossy(&pods.stdout).lines().count() == PODS + 1,
        "kubectl get pods -A: {}",
        String::from_utf8_lossy(&pods.stderr)
    );
    let logs = tokio::process::Command::new(kubectl)
        .args(["logs", "-n", "velero", "velero-bench"])
        .env("KUBECONFIG", &served.kubeconfig)
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let out = tokio::time::timeout(Duration::from_secs(300), logs.wait_with_output()).await??;
    ensure!(
        out.stdout.len() as u64 >= LOG_BYTES,
        "kubectl logs: {} bytes",
        out.stdout.len()
    );
    let rss = status_kib(served.pid().context("serve exited")?, "VmHWM:")?;
    served.stop().await?;
    Ok((ready, rss))
}

pub(crate) async fn serve_bundle(
    env: &velero_debug_e2e::env::Env,
    rounds: usize,
) -> Result<Vec<String>> {
    ensure!(plugin::binary().is_file(), "build the plugin first");
    let dir = tempfile::tempdir()?;
    let archive = write_bundle(dir.path())?;
    let size = std::fs::metadata(&archive)?.len();
    let (mut starts, mut peaks) = (vec![], vec![]);
    for r in 1..=rounds {
        let (ready, rss) = round(env, &archive).await?;
        eprintln!(
            "bench: scenario 7, round {r} of {rounds}: ready in {ready:.2}s, VmHWM {rss} KiB"
        );
        starts.push(ready);
        peaks.push(rss as f64 / 1024.0);
    }
    Ok(vec![
        format!(
            "| bundle | {} MiB of content, {:.0} MiB archived, {PODS} pods |",
            LOG_BYTES >> 20,
            size as f64 / 1048576.0
        ),
        format!(
            "| start to kubeconfig (s, median; each; goal < 5) | {:.2}; {} |",
            median(&starts),
            each(&starts)
        ),
        format!(
            "| peak RSS after get -A and logs of 1 GiB (MiB, median; each; goal < 100) | {:.1}; {} |",
            median(&peaks),
            each(&peaks)
        ),
    ])
}

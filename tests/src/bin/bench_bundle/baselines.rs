//! What a bundle's time is set against: the source floor (the logs read through the API, doing
//! nothing with them), Velero's own `velero debug` on the same state, and `gzip -6` over the
//! same bytes.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, ensure};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use velero_debug_e2e::{context::unique_name, env::Env};

use super::measures::children_cpu_seconds;

/// Reads the logs of `pods` through the API, `concurrency` at once, discarding the bytes: the
/// floor the log source sets.
pub(crate) async fn read_logs_only(
    api: &Api<Pod>,
    pods: &[String],
    concurrency: usize,
) -> Result<Duration> {
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

/// Times Velero's own `velero debug --backup <backup>` on the same state (it collects every pod
/// log of Velero's namespace, the data-path pods' among them) and returns the time, its CPU
/// time and the size of its tarball.
pub(crate) fn velero_debug_seconds(
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
pub(crate) fn gzip_seconds(files: &[PathBuf]) -> Result<f64> {
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

//! Scenario 0: Velero's own log of a backup, read from the object store (where the log source is
//! not the bottleneck), bundled in rounds against `gzip -6` over the same bytes.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use kube::{
    Api,
    api::{DynamicObject, PostParams},
};
use velero_debug_e2e::context::{TestCtx, unique_name};
use velero_debug_operator::velero::resource as velero_resource;

use super::{
    baselines::gzip_seconds,
    bundles::{bundle, forget, manifest},
    log_files::write_logs,
    measures::{cpu_seconds, each, median, peak_rss_kib, peak_rss_row},
};

/// Scenario 0: a hand-made Completed backup whose Velero log in the object store is
/// `bytes` long; returns the table rows.
pub(crate) async fn object_store_log(
    t: &TestCtx,
    work: &Path,
    bytes: u64,
    operator_pid: u32,
    rounds: usize,
) -> Result<Vec<String>> {
    let (env, client) = (&t.env, &t.client);
    let (backup, plain) = backup_with_log(t, work, bytes).await?;
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

/// A hand-made Completed Backup whose Velero log, `bytes` of it gzipped, is in the default
/// location's bucket; its name and the log's plain file (for the gzip baseline; the caller
/// removes it).
async fn backup_with_log(t: &TestCtx, work: &Path, bytes: u64) -> Result<(String, PathBuf)> {
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
    Ok((backup, plain))
}

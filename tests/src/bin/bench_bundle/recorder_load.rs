//! Scenario 8: the recorder of what Velero deletes (operator/src/recorder/) under 10,000
//! data-path pods that end killed for memory, each with a 1 KiB termination message that does
//! not compress (the worst a record holds of one container). The pods are made in Velero's
//! namespace with the PodVolumeBackup label Velero gives them, never scheduled (a scheduler
//! that does not exist), and their status written Failed as the kubelet would. Reported: the
//! records kept against the bound, the stored record's bytes against its cap, how long after
//! the last pod ended the record held the newest, and the operator's RSS.

use std::{
    io::{BufRead, BufReader},
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use flate2::read::GzDecoder;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::{
    Api,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
};
use velero_debug_crd::TERMINATION_RECORD;
use velero_debug_e2e::{
    context::{TestCtx, unique_name},
    polling::eventually,
};

use super::measures::{peak_rss_kib, peak_rss_row, rss_kib};

const RUN_LABEL: &str = "velerodebug.io/bench-recorder";
/// Requests in flight while making the pods and ending them.
const IN_FLIGHT: usize = 50;

pub(crate) async fn recorder_load(
    t: &TestCtx,
    operator_pid: u32,
    count: usize,
) -> Result<Vec<String>> {
    let pods: Api<Pod> = Api::namespaced(t.client.clone(), &t.env.namespace);
    let run = unique_name("rec");
    let rss_before = peak_rss_kib(operator_pid)?;
    let mut max_rss = rss_kib(operator_pid)?;
    eprintln!("bench: making {count} data-path pods and ending them OOMKilled");
    let start = Instant::now();
    let made = all(count, |i| make_and_end(&pods, &run, i)).await;
    let ended_in = start.elapsed();
    let newest = format!("{run}-{}", count - 1);
    let waited = Instant::now();
    let record = async {
        made?;
        eventually(
            "the record holding the newest pod",
            Duration::from_secs(300),
            || async {
                Ok(stored(t)
                    .await?
                    .filter(|(_, names)| names.contains(&newest)))
            },
        )
        .await
    }
    .await;
    let recorded_in = waited.elapsed();
    max_rss = max_rss.max(rss_kib(operator_pid)?);
    let rss_after = peak_rss_kib(operator_pid)?;
    eprintln!("bench: deleting the recorder's pods");
    let lp = ListParams::default().labels(&format!("{RUN_LABEL}={run}"));
    pods.delete_collection(&DeleteParams::default(), &lp)
        .await?;
    let (bytes, names) = record?;
    Ok(vec![
        format!("| data-path pods ended OOMKilled (1 KiB incompressible message each) | {count} |"),
        format!(
            "| time to make and end them ({IN_FLIGHT} requests in flight) | {:.1} s |",
            ended_in.as_secs_f64()
        ),
        format!("| records kept (the bound: 1,000) | {} |", names.len()),
        format!(
            "| stored record, gzip'd (the cap: 768 KiB) | {} KiB |",
            bytes / 1024
        ),
        format!(
            "| from the last pod ended to the record holding it (written every 10 s) | {:.1} s |",
            recorded_in.as_secs_f64()
        ),
        format!("| operator RSS after | {} MiB |", max_rss / 1024),
        peak_rss_row(rss_before, rss_after),
    ])
}

/// Runs `each(0..count)` with IN_FLIGHT at once; the first error.
async fn all<F, Fut>(count: usize, each: F) -> Result<()>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    futures::stream::iter(0..count)
        .map(each)
        .buffer_unordered(IN_FLIGHT)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

async fn make_and_end(pods: &Api<Pod>, run: &str, i: usize) -> Result<()> {
    let name = format!("{run}-{i}");
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": {RUN_LABEL: run, "velero.io/pod-volume-backup": name}},
        "spec": {"schedulerName": "vdo-bench-nobody", "containers": [{
            "name": name, "image": "velero/velero:bench",
            "resources": {"limits": {"memory": "64Mi"}}}]},
    }))?;
    pods.create(&PostParams::default(), &pod).await?;
    let status = serde_json::json!({"status": {"phase": "Failed", "containerStatuses": [{
        "name": name, "ready": false, "restartCount": 0, "image": "velero/velero:bench", "imageID": "",
        "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled", "message": noise(i)}}}]}});
    pods.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    Ok(())
}

/// 1 KiB that gzip cannot shrink much: printable pseudo-random bytes (xorshift) seeded by `i`.
fn noise(i: usize) -> String {
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ (i as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    (0..1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(b'!' + (state % 90) as u8)
        })
        .collect()
}

/// The stored record: its bytes and the names of the pods in it.
async fn stored(t: &TestCtx) -> Result<Option<(usize, Vec<String>)>> {
    let maps: Api<ConfigMap> = Api::namespaced(t.client.clone(), &t.env.namespace);
    let map = maps.get(TERMINATION_RECORD).await?;
    let Some(bytes) = map.binary_data.and_then(|d| d.into_values().next()) else {
        return Ok(None);
    };
    let mut names = Vec::new();
    for line in BufReader::new(GzDecoder::new(&bytes.0[..])).lines() {
        let pod: Pod = serde_json::from_str(&line.context("the stored record")?)?;
        names.extend(pod.metadata.name);
    }
    Ok(Some((bytes.0.len(), names)))
}

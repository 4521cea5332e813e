//! Scenario 3: many DebugBundles of one small backup created at once; the time until all are
//! Completed and the operator's RSS meanwhile; the bundles (and so their archives) deleted after.

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use futures::StreamExt;
use kube::{Api, api::PostParams};
use velero_debug_crd::{DebugBundle, Phase};
use velero_debug_e2e::{
    backups::real_backup,
    context::{TestCtx, unique_name},
    polling::eventually,
};

use super::measures::{peak_rss_kib, peak_rss_row, rss_kib};

/// Label of the load scenario's bundles, so they are counted and deleted by one selector.
const LOAD_LABEL: &str = "velerodebug.io/bench-load";

/// Scenario 3: `count` bundles of one small backup created at once; returns the table rows.
pub(crate) async fn load(t: &TestCtx, operator_pid: u32, count: usize) -> Result<Vec<String>> {
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

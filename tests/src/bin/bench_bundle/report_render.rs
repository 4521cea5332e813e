//! Scenario 5: report.html of real bundles rendered in headless Chromium (Debian's, driven by
//! tests/browser/report-check.cjs): a hand-made PartiallyFailed restore with 200 PodVolumeRestores
//! on 20 nodes, and one with 2,000 on 200 nodes; for each, the page's size against its cap and
//! its load time from disk in rounds (the goal: under 2 s), with what was drawn.

use std::time::Duration;

use anyhow::{Context, Result};
use futures::StreamExt;
use velero_debug_e2e::{
    archives::download, backups::real_backup, browser, context::TestCtx,
    operations::pod_volume_restore, restores::finished_restore,
};

use super::{
    bundles::bundle,
    measures::{each, median},
};

/// The report's cap (operator/src/report/mod.rs).
const CAP_BYTES: usize = 2 * 1024 * 1024;

pub(crate) async fn report_render(t: &TestCtx, rounds: usize) -> Result<Vec<String>> {
    let (_, backup, _) = real_backup(t, "bench-report").await?;
    let mut rows = vec![
        "| report of | size / cap | load in Chromium (median; each) | bars drawn | console errors, requests |".to_string(),
        "| --- | --- | --- | --- | --- |".to_string(),
    ];
    for (operations, nodes) in [(200usize, 20usize), (2_000, 200)] {
        let no_auto = serde_json::json!({"velerodebug.io/auto-bundle": "false"});
        let (restore, uid) =
            finished_restore(t, &backup, "PartiallyFailed", Duration::ZERO, no_auto).await?;
        eprintln!("bench: scenario 5: {operations} PodVolumeRestores on {nodes} nodes");
        let made: Vec<Result<String>> = futures::stream::iter(0..operations)
            .map(|i| {
                let (restore, uid) = (restore.clone(), uid.clone());
                async move {
                    let pod = format!("app-{i}");
                    pod_volume_restore(
                        t,
                        (&restore, &uid),
                        ("bench-report", &pod),
                        status(i, nodes),
                    )
                    .await
                }
            })
            .buffer_unordered(16)
            .collect()
            .await;
        made.into_iter().collect::<Result<Vec<_>>>()?;
        let (done, _) = bundle(t, serde_json::json!({"restore": restore})).await?;
        let files = download(&done).await?;
        let (_, page) = files
            .iter()
            .find(|(k, _)| k.ends_with("report.html"))
            .context("no report.html in the bundle")?;
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("report.html");
        std::fs::write(&path, page)?;
        let mut loads = vec![];
        let mut last = serde_json::Value::Null;
        for round in 1..=rounds {
            last =
                browser::report_check(&t.env, &path, &dir.path().join(format!("shot-{round}.png")))
                    .await?;
            loads.push(last["loadMs"].as_f64().context("no loadMs")?);
        }
        rows.push(format!(
            "| {operations} operations, {nodes} nodes | {} KiB / {} KiB | {:.0} ms ({}) | {} | {}, {} |",
            page.len() / 1024,
            CAP_BYTES / 1024,
            median(&loads),
            each(&loads),
            last["bars"].as_array().map_or(0, Vec::len),
            last["consoleErrors"].as_array().map_or(0, Vec::len),
            last["requests"].as_array().map_or(0, Vec::len),
        ));
    }
    Ok(rows)
}

/// Operation `i` of a restore on `nodes` nodes: every tenth Failed, the rest Completed, their
/// times spread over ten minutes.
fn status(i: usize, nodes: usize) -> serde_json::Value {
    let at = |s: i64| {
        jiff::Timestamp::now()
            .checked_sub(jiff::SignedDuration::from_secs(600 - s))
            .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_default()
    };
    let start = (i % 300) as i64;
    let phase = if i.is_multiple_of(10) {
        "Failed"
    } else {
        "Completed"
    };
    serde_json::json!({
        "phase": phase, "node": format!("node-{}", i % nodes), "progress": {},
        "startTimestamp": at(start), "completionTimestamp": at(start + 60 + (i % 7) as i64 * 20),
        "message": if phase == "Failed" { "data path restore failed: context deadline exceeded" } else { "" },
    })
}

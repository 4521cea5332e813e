//! The chart's alerts and dashboard against the operator's real /metrics: every metric and label
//! they query is one the operator serves, after a bundle of a partially failed restore made
//! samples of them all.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result, ensure};
use velero_debug_e2e::{
    bundles::completed_bundle, context::TestCtx, restores::partially_failed_restore,
};

/// Labels Prometheus adds to every scraped series (the target's), and histograms' `le`.
const SCRAPE_LABELS: [&str; 5] = ["namespace", "job", "pod", "instance", "le"];

/// The files whose queries are checked.
const QUERIES: [&str; 2] = [
    "charts/velero-debug-operator/files/prometheus-rules.yaml",
    "charts/velero-debug-operator/files/grafana-dashboard.json",
];

fn is_metric_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'
}

/// The metrics a text of PromQL names (ours and the process's), each with the labels its
/// selectors and the `by (...)` clauses of the text name.
fn queried(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut found: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for start in ["velero_debug_", "process_"] {
        for (at, _) in text.match_indices(start) {
            if text[..at].ends_with(is_metric_char) {
                continue;
            }
            let name: String = text[at..]
                .chars()
                .take_while(|&c| is_metric_char(c))
                .collect();
            let rest = &text[at + name.len()..];
            let labels = found.entry(name).or_default();
            if let Some(selector) = rest.strip_prefix('{').and_then(|r| r.split_once('}')) {
                labels.extend(label_names(selector.0));
            }
        }
    }
    // A `by (...)` clause's labels must be on the metrics of the same query line.
    for line in text.lines() {
        for (at, _) in line.match_indices("by (") {
            let Some((list, _)) = line[at + 4..].split_once(')') else {
                continue;
            };
            let names: Vec<String> = list.split(',').map(|l| l.trim().to_string()).collect();
            for (metric, labels) in found.iter_mut() {
                if line.contains(metric.as_str()) {
                    labels.extend(names.iter().cloned());
                }
            }
        }
    }
    for labels in found.values_mut() {
        labels.retain(|l| !l.is_empty() && !SCRAPE_LABELS.contains(&l.as_str()));
    }
    found
}

/// The label names of a selector's body, `a="x",b=~"y"`.
fn label_names(selector: &str) -> Vec<String> {
    selector
        .split(',')
        .filter_map(|m| {
            let name: String = m
                .trim()
                .chars()
                .take_while(|&c| is_metric_char(c))
                .collect();
            (!name.is_empty()).then_some(name)
        })
        .collect()
}

/// Samples of `metric` in an exposition: its own lines, or its histogram's `_bucket` lines.
fn samples<'a>(exposition: &'a str, metric: &str) -> Vec<&'a str> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            let name = l.split(['{', ' ']).next().unwrap_or_default();
            name == metric || name.strip_suffix("_bucket") == Some(metric)
        })
        .collect()
}

#[test]
fn queries_are_read_with_their_labels() {
    let q = queried(
        "sum by (namespace, reason) (increase(velero_debug_bundles_total{result=\"failed\"}[1h]))\n\
         rate(process_cpu_seconds_total{namespace=~\"$namespace\",job=~\"$job\"}[5m])",
    );
    let labels = |m: &str| q[m].iter().cloned().collect::<Vec<_>>();
    assert_eq!(labels("velero_debug_bundles_total"), ["reason", "result"]);
    assert!(labels("process_cpu_seconds_total").is_empty());
    assert_eq!(q.len(), 2, "{q:?}");
}

#[tokio::test]
async fn every_metric_and_label_the_alerts_and_dashboard_query_is_served() -> Result<()> {
    let t = &TestCtx::new().await?;
    let restore = partially_failed_restore(t).await?;
    let (bundle, _) = completed_bundle(t, serde_json::json!({"restore": restore})).await?;
    ensure!(
        !bundle
            .status
            .as_ref()
            .context("no status")?
            .findings
            .is_empty(),
        "the bundle found nothing: no findings sample to check"
    );
    let port = std::fs::read_to_string(t.env.state_dir()?.join("operator-0.metrics-port"))?;
    let exposition = reqwest::get(format!("http://127.0.0.1:{}/metrics", port.trim()))
        .await?
        .text()
        .await?;
    let root = velero_debug_e2e::env::tests_dir().join("..");
    let mut missing = Vec::new();
    for file in QUERIES {
        let text = std::fs::read_to_string(root.join(file))?;
        let queried = queried(&text);
        ensure!(!queried.is_empty(), "{file} queries no metric of ours");
        for (metric, labels) in queried {
            let lines = samples(&exposition, &metric);
            if lines.is_empty() {
                missing.push(format!("{file}: metric {metric}"));
                continue;
            }
            for label in labels {
                if !lines.iter().any(|l| l.contains(&format!("{label}=\""))) {
                    missing.push(format!("{file}: label {label} of {metric}"));
                }
            }
        }
    }
    ensure!(
        missing.is_empty(),
        "queried but not served: {missing:?}\n{exposition}"
    );
    Ok(())
}

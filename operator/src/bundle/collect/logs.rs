//! Container logs: the Velero server (its plugins run as its children, so their logs are in
//! it), the node-agent pods per policy, and the target's data-path pods. Current and previous
//! instances, within the window and the size limit, redacted line by line into spool files.

use std::path::PathBuf;

use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::Pod;
use kube::{
    Api, ResourceExt,
    api::{ListParams, LogParams},
};
use tokio::io::AsyncWriteExt;
use velero_debug_crd::NodeAgentLogs;

use super::{
    CollectError, Collector,
    budget::ContentBudget,
    lines::{CopyReport, LineCopy, read_line_async},
};
use crate::{
    findings::{LogRole, LogScan, LogSource, OperationScope, PodRole, TargetEvidence},
    redact::{MaskCounts, Redactor},
    tar_gz::EntryPath,
    velero::{self, Target},
};

const SPOOL_BUFFER: usize = 1024 * 1024;

/// One container log to read.
struct LogJob {
    pod: String,
    container: String,
    previous: bool,
    bundle_path: EntryPath,
    spool: PathBuf,
    /// What the findings know the log as.
    source: LogSource,
}

enum LogOutcome {
    Written(CopyReport),
    /// No previous instance: normal for a container that never restarted.
    NoPrevious,
    Partial(String, CopyReport),
    Failed(String),
}

pub(super) async fn all(c: &mut Collector<'_>) -> Result<(), CollectError> {
    let pods_api: Api<Pod> = c.namespaced();
    let mut pods = server_pods(c, &pods_api).await;
    pods.extend(node_agent_pods(c, &pods_api).await);
    pods.extend(data_path_pods(c, &pods_api).await);
    for (group, pod) in &pods {
        let path = EntryPath::new(&["pods"], &pod.name_any(), "yaml");
        let seen = c.add_object_seen(&path, pod)?;
        c.summary
            .evidence
            .add_pod(&path.to_string(), pod_role(group), &seen);
    }
    read_logs_of(c, &pods, Some(c.plan.since)).await
}

/// Reads every container log of `pods`, a few at a time, into `logs/<group>/<pod>/` and the
/// findings; also for pods other parts found (repository-maintenance pods). `since` None:
/// from the start (within the size limit), for pods that ran before the window.
pub(super) async fn read_logs_of(
    c: &mut Collector<'_>,
    pods: &GroupedPods,
    since: Option<jiff::Timestamp>,
) -> Result<(), CollectError> {
    let pods_api: Api<Pod> = c.namespaced();
    let jobs = log_jobs(c, pods);
    let params = LogParamsBase {
        since,
        max_bytes: c.plan.max_log_bytes,
        timeout: c.limits.log_timeout,
        max_line_bytes: c.limits.max_line_bytes,
    };
    let budget = &c.budget;
    let redactor = c.redactor;
    let api = &pods_api;
    let scope = OperationScope {
        field: match c.plan.target {
            Target::Backup(_) => "backup",
            Target::Restore(_) => "restore",
        },
        name: format!("{}/{}", c.namespace, c.plan.target.name()),
        location: Some(format!("{}/{}", c.namespace, c.location.name)),
        window: operation_window(&c.summary.evidence.target),
    };
    let scope = &scope;
    let mut results: Vec<(LogJob, LogOutcome, MaskCounts, LogScan)> = stream::iter(jobs)
        .map(|job| async move {
            let mut scan = LogScan::new(job.source.clone());
            if job.source.role == LogRole::Server {
                scan = scan.scoped_to(scope.clone());
            }
            let (outcome, masks) =
                read_log(api, &job, &params, redactor, budget.clone(), &mut scan).await;
            (job, outcome, masks, scan)
        })
        .buffer_unordered(c.limits.log_concurrency.max(1))
        .collect()
        .await;
    // By path, then by what was read: paths of different containers may be equal once
    // sanitized, and the archive names them in the order they come.
    results.sort_by(|(a, ..), (b, ..)| {
        (&a.bundle_path, &a.pod, &a.container, a.previous).cmp(&(
            &b.bundle_path,
            &b.pod,
            &b.container,
            b.previous,
        ))
    });
    for (job, outcome, masks, scan) in results {
        if scan.lines() > 0 {
            c.summary.evidence.add_log_scan(scan);
        }
        add_outcome(c, job, outcome, &masks)?;
    }
    Ok(())
}

/// How long before its start and after its end a line of the server log still belongs to an
/// operation: clocks differ, and what led up to a failure starts before it.
const WINDOW_MARGIN: jiff::SignedDuration = jiff::SignedDuration::from_secs(5 * 60);

/// When the target ran, with a margin; open-ended while it still runs. None before it started.
fn operation_window(target: &TargetEvidence) -> Option<(jiff::Timestamp, jiff::Timestamp)> {
    let started: jiff::Timestamp = target.started.as_deref()?.parse().ok()?;
    let ended = target
        .completed
        .as_deref()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map_or(jiff::Timestamp::MAX, |t| {
            t.checked_add(WINDOW_MARGIN).unwrap_or(jiff::Timestamp::MAX)
        });
    let from = started
        .checked_sub(WINDOW_MARGIN)
        .unwrap_or(jiff::Timestamp::MIN);
    Some((from, ended))
}

/// Pods by the folder their logs go to: velero, node-agent, data-path (and those of other
/// parts: repo-maintenance).
pub(super) type GroupedPods = Vec<(&'static str, Pod)>;

async fn server_pods(c: &mut Collector<'_>, api: &Api<Pod>) -> GroupedPods {
    let selector = ListParams::default().labels(velero::SERVER_POD_SELECTOR);
    let Some(server) = c.list_all(api, selector, "Velero server pods").await else {
        return Vec::new();
    };
    if server.is_empty() {
        c.warn("no Velero server pod (label deploy=velero) found");
    }
    server.into_iter().map(|p| ("velero", p)).collect()
}

/// The node-agent pods the plan asks for: all, or those on the nodes that ran the target's
/// volume operations.
async fn node_agent_pods(c: &mut Collector<'_>, api: &Api<Pod>) -> GroupedPods {
    if c.plan.node_agent_logs == NodeAgentLogs::None {
        return Vec::new();
    }
    let selector = ListParams::default().labels(velero::NODE_AGENT_POD_SELECTOR);
    let Some(agents) = c.list_all(api, selector, "node-agent pods").await else {
        return Vec::new();
    };
    // Every node with a running node-agent, so a node that ran a volume without one is named.
    c.summary.evidence.set_node_agent_nodes(
        agents
            .iter()
            .filter(|pod| pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .filter_map(|pod| pod.spec.as_ref().and_then(|s| s.node_name.clone())),
    );
    agents
        .into_iter()
        .filter(|pod| {
            let node = pod.spec.as_ref().and_then(|s| s.node_name.as_ref());
            c.plan.node_agent_logs == NodeAgentLogs::All
                || node.is_some_and(|n| c.involved_nodes.contains(n))
        })
        .map(|p| ("node-agent", p))
        .collect()
}

/// The pods that moved the target's data, found by the label naming their operation.
async fn data_path_pods(c: &mut Collector<'_>, api: &Api<Pod>) -> GroupedPods {
    let mut pods = Vec::new();
    for label in velero::DATA_PATH_POD_LABELS {
        let selector = ListParams::default().labels(label);
        let Some(items) = c.list_all(api, selector, "data-path pods").await else {
            continue;
        };
        pods.extend(
            items
                .into_iter()
                .filter(|pod| {
                    pod.labels()
                        .get(label)
                        .is_some_and(|serves| c.operation_names.contains(serves))
                })
                .map(|p| ("data-path", p)),
        );
    }
    pods
}

/// One job per container (init containers too) and instance (current, previous).
fn log_jobs(c: &mut Collector<'_>, pods: &GroupedPods) -> Vec<LogJob> {
    let mut jobs = Vec::new();
    let instances: &[bool] = if c.plan.previous_logs {
        &[false, true]
    } else {
        &[false]
    };
    for (group, pod) in pods {
        let name = pod.name_any();
        let spec = pod.spec.clone().unwrap_or_default();
        let containers: Vec<String> = spec
            .init_containers
            .clone()
            .unwrap_or_default()
            .into_iter()
            .chain(spec.containers.clone())
            .map(|c| c.name)
            .collect();
        for container in containers {
            for &previous in instances {
                let suffix = if previous { ".previous" } else { "" };
                let bundle_path = EntryPath::new(
                    &["logs", group, &name],
                    &format!("{container}{suffix}"),
                    "log",
                );
                let spool = c.spool_path(&bundle_path.to_string());
                let source = LogSource {
                    path: bundle_path.to_string(),
                    role: log_role(group),
                    pod: Some(name.clone()),
                    node: spec.node_name.clone(),
                    previous,
                };
                jobs.push(LogJob {
                    pod: name.clone(),
                    container: container.clone(),
                    previous,
                    bundle_path,
                    spool,
                    source,
                });
            }
        }
    }
    jobs
}

fn add_outcome(
    c: &mut Collector<'_>,
    job: LogJob,
    outcome: LogOutcome,
    masks: &MaskCounts,
) -> Result<(), CollectError> {
    let path = job.bundle_path.to_string();
    match outcome {
        LogOutcome::Written(report) if report.written == 0 && report.out_of_budget => {
            let _ = std::fs::remove_file(&job.spool);
            c.warn_left_out(&job.bundle_path);
        }
        LogOutcome::Written(report) => {
            for warning in report.warnings(&path, &c.budget) {
                c.warn(format!("log {warning}"));
            }
            c.add_spooled(&job.bundle_path, &job.spool, masks)?;
        }
        LogOutcome::NoPrevious => {
            let _ = std::fs::remove_file(&job.spool);
        }
        LogOutcome::Partial(why, report) => {
            c.warn(format!("log {path}: {why}; kept what was read"));
            for warning in report.warnings(&path, &c.budget) {
                c.warn(format!("log {warning}"));
            }
            c.add_spooled(&job.bundle_path, &job.spool, masks)?;
        }
        LogOutcome::Failed(why) => {
            let _ = std::fs::remove_file(&job.spool);
            c.warn(format!("log {} could not be read: {why}", job.bundle_path));
        }
    }
    Ok(())
}

#[derive(Clone, Copy)]
struct LogParamsBase {
    /// None: the whole log (within `max_bytes`).
    since: Option<jiff::Timestamp>,
    max_bytes: i64,
    timeout: std::time::Duration,
    max_line_bytes: usize,
}

/// The findings' name for a folder of pods.
fn pod_role(group: &str) -> PodRole {
    match group {
        "velero" => PodRole::Server,
        "node-agent" => PodRole::NodeAgent,
        _ => PodRole::DataPath,
    }
}

fn log_role(group: &str) -> LogRole {
    match pod_role(group) {
        PodRole::Server => LogRole::Server,
        PodRole::NodeAgent => LogRole::NodeAgent,
        PodRole::DataPath => LogRole::DataPath,
    }
}

/// Copies one container log into its spool file, each line (as written: redacted) also
/// offered to `scan`.
async fn read_log(
    api: &Api<Pod>,
    job: &LogJob,
    base: &LogParamsBase,
    redactor: &Redactor,
    budget: ContentBudget,
    scan: &mut LogScan,
) -> (LogOutcome, MaskCounts) {
    let params = LogParams {
        container: Some(job.container.clone()),
        previous: job.previous,
        // A previous instance died before now, often before the window opened; its last
        // lines are the crash, so the window does not apply to it.
        since_time: base.since.filter(|_| !job.previous),
        // The server cuts the log, so a huge one is never transferred whole.
        limit_bytes: Some(base.max_bytes),
        ..LogParams::default()
    };
    // Outside the copy, so what it did is known even when it times out.
    let mut lines = LineCopy::new(redactor, budget, base.max_line_bytes, "MAX_LINE_BYTES");
    let copy = async {
        let reader = match api.log_stream(&job.pod, &params).await {
            Ok(r) => r,
            Err(e) => return Err(crate::kubernetes::message(&e)),
        };
        let file = tokio::fs::File::create(&job.spool)
            .await
            .map_err(|e| e.to_string())?;
        // A large buffer: each flush of a tokio file is a trip to the blocking pool.
        let mut out = tokio::io::BufWriter::with_capacity(SPOOL_BUFFER, file);
        let mut reader = std::pin::pin!(reader);
        // One line buffer reused for the whole log: no allocation per line.
        let mut line = Vec::with_capacity(8 * 1024);
        loop {
            let read = read_line_async(&mut reader, &mut line, base.max_line_bytes)
                .await
                .map_err(|e| e.to_string())?;
            let Some(read) = read else { break };
            let rendered = lines.render(&line, read);
            scan.offer_bytes(rendered);
            out.write_all(rendered).await.map_err(|e| e.to_string())?;
            if lines.report.out_of_budget {
                break;
            }
        }
        out.flush().await.map_err(|e| e.to_string())?;
        Ok(())
    };
    let copied = tokio::time::timeout(base.timeout, copy).await;
    let report = lines.report;
    let outcome = match copied {
        Ok(Ok(())) => LogOutcome::Written(report),
        Ok(Err(e)) if job.previous => {
            // Asking for the previous log of a container that never restarted is refused with
            // 400 by the kubelet; that is not a problem worth a warning.
            let _ = e;
            LogOutcome::NoPrevious
        }
        Ok(Err(e)) => LogOutcome::Failed(e),
        Err(_) => {
            let why = format!("timed out after {}s", base.timeout.as_secs());
            // What was written but still buffered when the copy was dropped is lost.
            if std::fs::metadata(&job.spool).is_ok_and(|m| m.len() > 0) {
                LogOutcome::Partial(why, report)
            } else {
                LogOutcome::Failed(why)
            }
        }
    };
    (outcome, lines.masks().clone())
}

//! Container logs: the Velero server (its plugins run as its children, so their logs are in
//! it), the node-agent pods per policy, and the target's data-path pods. Current and previous
//! instances, within the window and the size limit, redacted line by line into spool files.
//! A log over the limit keeps its head and its tail (see [`log_tail`](super::log_tail)); the
//! server's lines naming the operation stand in for the operation's log when the object store
//! has none (see [`stand_in`](super::stand_in)).

use std::{path::PathBuf, sync::Arc};

use futures::{AsyncBufReadExt, StreamExt, stream};
use k8s_openapi::api::core::v1::Pod;
use kube::{
    Api, ResourceExt,
    api::{ListParams, LogParams},
};
use tokio::io::{AsyncSeekExt, AsyncWriteExt, BufWriter};
use velero_debug_crd::NodeAgentLogs;

use super::{
    CollectError, Found, Sink, Sources,
    budget::ContentBudget,
    lines::{CopyReport, LineCopy, read_line_async, whole_line},
    log_tail::{self, Gap, HeadCut, KeptTail, Size, TailKeeper},
    stand_in::{self, OperationLines, TeeMark, Teed},
};
use crate::{
    config::size_text,
    findings::{LogRole, LogScan, LogSource, OperationScope, PodRole, TargetEvidence},
    gzip_members::{CompressedFile, Compression, FollowingCompression},
    redact::{MaskCounts, Redactor},
    tar_gz::EntryPath,
    velero::{self, Target},
};

/// What a log's copy buffers before it writes to its spool file (a trip to the blocking pool,
/// whose file copies it once more): a few hundred trips a second at 64 KiB, and the logs read
/// at once hold a quarter of what 256 KiB held (BENCHMARKS.md, issue 38).
const SPOOL_BUFFER: usize = 64 * 1024;

/// One container log to read.
struct LogJob {
    pod: String,
    container: String,
    previous: bool,
    bundle_path: EntryPath,
    spool: PathBuf,
    /// What the findings know the log as.
    source: LogSource,
    /// Where its lines naming the operation go, when they stand in for the operation's log.
    tee: Option<PathBuf>,
}

enum LogOutcome {
    /// Read to its end, or to its bound (what was kept of it then).
    Written(CopyReport, Option<OverBound>),
    /// No previous instance: normal for a container that never restarted.
    NoPrevious,
    Partial(String, CopyReport),
    Failed(String),
}

/// What was kept of a log over its bound.
enum OverBound {
    HeadAndTail(Gap),
    /// Its end could not be read (why): its head is kept, up to the bound, as a log within
    /// its bound would be.
    HeadOnly(String),
}

/// One log as read: what the rest of the step needs of it.
struct LogRead {
    job: LogJob,
    outcome: LogOutcome,
    masks: MaskCounts,
    scan: LogScan,
    /// Its lines naming the operation, when they stand in for the operation's log.
    teed: Option<Teed>,
    compressed: Compressed,
}

/// A log's spool file compressed as it was read (see [`FollowingCompression`]); None when the
/// outcome keeps no file.
type Compressed = Option<std::io::Result<CompressedFile>>;

impl LogOutcome {
    /// Whether the log's spool file goes into the bundle.
    fn keeps_file(&self) -> bool {
        match self {
            LogOutcome::Written(report, _) => !(report.written == 0 && report.out_of_budget),
            LogOutcome::Partial(..) => true,
            LogOutcome::NoPrevious | LogOutcome::Failed(_) => false,
        }
    }
}

/// Lists the pods whose logs the step reads and writes them into the bundle (before the
/// events part, which looks for the events of every object written); their logs are read by
/// [`Planned::read`], while other parts go on.
pub(super) async fn plan(
    src: &Sources<'_>,
    out: &mut Sink,
    found: &mut Found,
) -> Result<Planned, CollectError> {
    let pods_api: Api<Pod> = src.namespaced();
    let mut pods = server_pods(src, out, &pods_api).await;
    pods.extend(node_agent_pods(src, out, found, &pods_api).await);
    pods.extend(data_path_pods(src, out, found, &pods_api).await);
    for (group, pod) in &pods {
        let path = EntryPath::new(&["pods"], &pod.name_any(), "yaml");
        let seen = out.add_object_seen(&path, pod)?;
        found
            .summary
            .evidence
            .add_pod(&path.to_string(), pod_role(group), &seen);
    }
    Ok(plan_reads(src, out, found, &pods, Some(src.plan.since)))
}

/// Reads every container log of `pods`, a few at a time, into `logs/<group>/<pod>/` and the
/// findings; also for pods other parts found (repository-maintenance pods). `since` None:
/// from the start (within the size limit), for pods that ran before the window.
pub(super) async fn read_logs_of(
    src: &Sources<'_>,
    out: &mut Sink,
    found: &mut Found,
    pods: &GroupedPods,
    since: Option<jiff::Timestamp>,
) -> Result<(), CollectError> {
    let read = plan_reads(src, out, found, pods, since).read().await;
    read.add(src, out, found)
}

/// The logs to read and all that reading them takes, owned: nothing in it borrows the sink,
/// so they are read while other parts write into it.
pub(super) struct Planned {
    jobs: Vec<LogJob>,
    api: Api<Pod>,
    params: LogParamsBase,
    redactor: Arc<Redactor>,
    budget: ContentBudget,
    scope: OperationScope,
    /// Where the server's lines naming the operation go, when they stand in for its log.
    stand_in: Option<EntryPath>,
    concurrency: usize,
}

fn plan_reads(
    src: &Sources<'_>,
    out: &mut Sink,
    found: &Found,
    pods: &GroupedPods,
    since: Option<jiff::Timestamp>,
) -> Planned {
    let scope = operation_scope(src, found);
    let stand_in = found.missing_operation_log.map(|_| {
        EntryPath::new(
            &["logs", "velero"],
            &format!("{}-{}.from-server-log", scope.field, src.plan.target.name()),
            "log",
        )
    });
    Planned {
        jobs: log_jobs(src, out, pods, stand_in.is_some()),
        api: Api::namespaced(src.log_client.clone(), &src.namespace),
        params: LogParamsBase {
            since,
            max_bytes: src.plan.max_log_bytes,
            timeout: src.limits.log_timeout,
            max_line_bytes: src.limits.max_line_bytes,
            compression: out.compression,
        },
        redactor: out.redactor.clone(),
        budget: out.budget.clone(),
        scope,
        stand_in,
        concurrency: src.limits.log_concurrency,
    }
}

impl Planned {
    /// Reads every log into its spool file and compresses it; nothing goes into the bundle
    /// yet ([`Read::add`] puts it there).
    pub(super) async fn read(self) -> Read {
        let reader = LogReader {
            api: &self.api,
            params: self.params,
            redactor: &self.redactor,
            budget: &self.budget,
            scope: &self.scope,
            // The stand-in's own cap, shared by the server's logs: one container log's bound.
            stand_in_room: ContentBudget::new(self.params.max_bytes),
        };
        let results = read_all(&reader, self.jobs, self.concurrency).await;
        Read {
            results,
            scope: self.scope,
            stand_in: self.stand_in,
        }
    }
}

/// The logs as read, to be added to the bundle.
pub(super) struct Read {
    results: Vec<LogRead>,
    scope: OperationScope,
    stand_in: Option<EntryPath>,
}

impl Read {
    /// Adds each log, its warnings and its scan, in the order of their paths, and the
    /// stand-in for the operation's log.
    pub(super) fn add(
        self,
        src: &Sources<'_>,
        out: &mut Sink,
        found: &mut Found,
    ) -> Result<(), CollectError> {
        let Read {
            mut results,
            scope,
            stand_in,
        } = self;
        // By path, then by what was read: paths of different containers may be equal once
        // sanitized, and the archive names them in the order they come.
        results.sort_by(|a, b| a.job.order().cmp(&b.job.order()));
        if let Some(entry) = &stand_in {
            add_stand_in(src, out, found, entry, &scope, &results)?;
        }
        for read in results {
            let LogRead {
                job,
                outcome,
                masks,
                scan,
                teed,
                compressed,
            } = read;
            if let Some(teed) = teed {
                let _ = std::fs::remove_file(&teed.path);
            }
            if scan.lines() > 0 {
                found.summary.evidence.add_log_scan(scan);
            }
            add_outcome(src, out, job, outcome, compressed, &masks)?;
        }
        Ok(())
    }
}

/// Reads every job, `concurrency` logs at a time, in the order they end. A log's slot is free
/// once the log is on disk: the compression of its last range (all of a log shorter than a
/// range) waits for a compressor while the next log is read, as the source floor's reader
/// would go on (BENCHMARKS.md, issue 38). A backlog of twice the slots holds the reading back.
async fn read_all(reader: &LogReader<'_>, jobs: Vec<LogJob>, concurrency: usize) -> Vec<LogRead> {
    let concurrency = concurrency.max(1);
    stream::iter(jobs)
        .map(|job| reader.read(job))
        .buffer_unordered(concurrency)
        .map(SpooledLog::finish)
        .buffer_unordered(2 * concurrency)
        .collect()
        .await
}

/// The target as the server's log lines name it, for the findings and the stand-in.
fn operation_scope(src: &Sources<'_>, found: &Found) -> OperationScope {
    OperationScope {
        field: match src.plan.target {
            Target::Backup(_) => "backup",
            Target::Restore(_) => "restore",
        },
        name: format!("{}/{}", src.namespace, src.plan.target.name()),
        location: Some(format!("{}/{}", src.namespace, src.location.name)),
        window: operation_window(&found.summary.evidence.target),
    }
}

impl LogJob {
    /// The order logs go into the archive in.
    fn order(&self) -> (&EntryPath, &String, &String, bool) {
        (&self.bundle_path, &self.pod, &self.container, self.previous)
    }
}

/// What reading each container log of a step shares.
struct LogReader<'a> {
    api: &'a Api<Pod>,
    params: LogParamsBase,
    redactor: &'a Redactor,
    budget: &'a ContentBudget,
    scope: &'a OperationScope,
    /// The stand-in's cap, shared by the server's logs.
    stand_in_room: ContentBudget,
}

impl LogReader<'_> {
    /// Reads one log to its spool file, its scan and (a server's) its tee.
    async fn read(&self, job: LogJob) -> SpooledLog {
        let mut scan = LogScan::new(job.source.clone());
        if job.source.role == LogRole::Server {
            scan = scan.scoped_to(self.scope.clone());
        }
        let mut tee = job.tee.clone().map(|path| {
            OperationLines::new(
                self.scope,
                self.stand_in_room.clone(),
                self.budget.clone(),
                path,
            )
        });
        let (outcome, masks, compressing) = read_log(
            self.api,
            &job,
            &self.params,
            self.redactor,
            self.budget.clone(),
            &mut scan,
            tee.as_mut(),
        )
        .await;
        let teed = match tee {
            Some(tee) => Some(tee.finish().await),
            None => None,
        };
        SpooledLog {
            job,
            outcome,
            masks,
            scan,
            teed,
            compressing,
        }
    }
}

/// One log read to its spool file, its compression maybe still under way.
struct SpooledLog {
    job: LogJob,
    outcome: LogOutcome,
    masks: MaskCounts,
    scan: LogScan,
    teed: Option<Teed>,
    compressing: FollowingCompression,
}

impl SpooledLog {
    /// Finishes or discards the compression by whether the outcome keeps the file.
    async fn finish(self) -> LogRead {
        let compressed = match self.outcome.keeps_file() {
            true => Some(self.compressing.finish().await),
            false => {
                self.compressing.discard().await;
                None
            }
        };
        LogRead {
            job: self.job,
            outcome: self.outcome,
            masks: self.masks,
            scan: self.scan,
            teed: self.teed,
            compressed,
        }
    }
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

/// The server's lines naming the operation, as the bundle file that stands in for its log
/// (read by the findings as that log); the warning about the missing log says what stands in
/// for it, or that nothing does.
fn add_stand_in(
    src: &Sources<'_>,
    out: &mut Sink,
    found: &mut Found,
    entry: &EntryPath,
    scope: &OperationScope,
    results: &[LogRead],
) -> Result<(), CollectError> {
    let Some(warning) = found.missing_operation_log else {
        return Ok(());
    };
    let kind = scope.field;
    let mut parts = stand_in_parts(results);
    if parts.is_empty() {
        return Ok(());
    }
    let notes = stand_in_notes(src, out, entry, kind, &parts);
    let note = if parts.iter().all(|p| p.teed.lines == 0) {
        format!("; no line of the Velero server's log names this {kind} either")
    } else {
        write_stand_in(out, found, entry, scope, &mut parts)?
    };
    if let Some(message) = out.warnings.get_mut(warning) {
        message.push_str(&note);
    }
    for note in notes {
        out.warn(note);
    }
    Ok(())
}

/// The server logs' teed lines, of the logs that are in the bundle only: the stand-in is a
/// view of them.
fn stand_in_parts(results: &[LogRead]) -> Vec<stand_in::Part<'_>> {
    results
        .iter()
        .filter(|read| {
            matches!(
                read.outcome,
                LogOutcome::Written(..) | LogOutcome::Partial(..)
            )
        })
        .filter_map(|read| {
            read.teed.as_ref().map(|teed| stand_in::Part {
                source: &read.job.source.path,
                pod: &read.job.pod,
                previous: read.job.previous,
                teed,
            })
        })
        .collect()
}

/// Warnings about what the stand-in could not take of each part.
fn stand_in_notes(
    src: &Sources<'_>,
    out: &Sink,
    entry: &EntryPath,
    kind: &str,
    parts: &[stand_in::Part<'_>],
) -> Vec<String> {
    let mut notes = Vec::new();
    for part in parts {
        match part.teed.cut {
            stand_in::Cut::No => {}
            stand_in::Cut::AtItsCap => notes.push(format!(
                "{entry} reached its cap of {} (maxLogBytesPerContainer): later lines of {} naming the {kind} are only there",
                size_text(src.plan.max_log_bytes),
                part.source
            )),
            stand_in::Cut::AtTheBundleLimit => notes.push(format!(
                "{entry}: cut where the bundle reached its size limit of {} (MAX_BUNDLE_BYTES)",
                size_text(out.budget.total())
            )),
        }
        if let Some(why) = &part.teed.failed {
            notes.push(format!(
                "{entry}: lines of {} could not be written: {why}",
                part.source
            ));
        }
    }
    notes
}

/// Writes the stand-in into the bundle and the findings; returns what the missing log's
/// warning adds about it.
fn write_stand_in(
    out: &mut Sink,
    found: &mut Found,
    entry: &EntryPath,
    scope: &OperationScope,
    parts: &mut [stand_in::Part<'_>],
) -> Result<String, CollectError> {
    let kind = scope.field;
    let spool = out.spool_path(&entry.to_string());
    let mut scan = LogScan::new(LogSource {
        path: entry.to_string(),
        role: LogRole::Operation,
        pod: None,
        node: None,
        previous: false,
    });
    let budget = out.budget.clone();
    let written =
        tokio::task::block_in_place(|| stand_in::write(parts, scope, &spool, &mut scan, &budget));
    match written {
        Ok(_) => {
            found.summary.evidence.add_log_scan(scan);
            if let Some(missing) = &mut found.summary.evidence.operation_log_missing {
                missing.stand_in = Some(entry.to_string());
            }
            // Its lines were counted as masked in the server's logs.
            out.add_spooled(entry, &spool, &MaskCounts::default())?;
            Ok(format!(
                "; the Velero server's lines for this {kind} stand in for its log: {entry}"
            ))
        }
        Err(e) => {
            let _ = std::fs::remove_file(&spool);
            Ok(format!(
                "; the Velero server's lines for this {kind} could not be put in its place: {e}"
            ))
        }
    }
}

/// Pods by the folder their logs go to: velero, node-agent, data-path (and those of other
/// parts: repo-maintenance).
pub(super) type GroupedPods = Vec<(&'static str, Pod)>;

async fn server_pods(src: &Sources<'_>, out: &mut Sink, api: &Api<Pod>) -> GroupedPods {
    let selector = ListParams::default().labels(velero::SERVER_POD_SELECTOR);
    let Some(server) = src.list_all(out, api, selector, "Velero server pods").await else {
        return Vec::new();
    };
    if server.is_empty() {
        out.warn("no Velero server pod (label deploy=velero) found");
    }
    server.into_iter().map(|p| ("velero", p)).collect()
}

/// The node-agent pods the plan asks for: all, or those on the nodes that ran the target's
/// volume operations.
async fn node_agent_pods(
    src: &Sources<'_>,
    out: &mut Sink,
    found: &mut Found,
    api: &Api<Pod>,
) -> GroupedPods {
    if src.plan.node_agent_logs == NodeAgentLogs::None {
        return Vec::new();
    }
    let selector = ListParams::default().labels(velero::NODE_AGENT_POD_SELECTOR);
    let Some(agents) = src.list_all(out, api, selector, "node-agent pods").await else {
        return Vec::new();
    };
    // Every node with a running node-agent, so a node that ran a volume without one is named.
    found.summary.evidence.set_node_agent_nodes(
        agents
            .iter()
            .filter(|pod| pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .filter_map(|pod| pod.spec.as_ref().and_then(|s| s.node_name.clone())),
    );
    agents
        .into_iter()
        .filter(|pod| {
            let node = pod.spec.as_ref().and_then(|s| s.node_name.as_ref());
            src.plan.node_agent_logs == NodeAgentLogs::All
                || node.is_some_and(|n| found.involved_nodes.contains(n))
        })
        .map(|p| ("node-agent", p))
        .collect()
}

/// The pods that moved the target's data, found by the label naming their operation.
async fn data_path_pods(
    src: &Sources<'_>,
    out: &mut Sink,
    found: &Found,
    api: &Api<Pod>,
) -> GroupedPods {
    let mut pods = Vec::new();
    for label in velero::DATA_PATH_POD_LABELS {
        let selector = ListParams::default().labels(label);
        let Some(items) = src.list_all(out, api, selector, "data-path pods").await else {
            continue;
        };
        pods.extend(
            items
                .into_iter()
                .filter(|pod| {
                    pod.labels()
                        .get(label)
                        .is_some_and(|serves| found.operation_names.contains(serves))
                })
                .map(|p| ("data-path", p)),
        );
    }
    pods
}

/// One job per container (init containers too) and instance (current, previous); the
/// server's tee their lines naming the operation when those stand in for its log.
fn log_jobs(src: &Sources<'_>, out: &mut Sink, pods: &GroupedPods, stand_in: bool) -> Vec<LogJob> {
    let mut jobs = Vec::new();
    let instances: &[bool] = if src.plan.previous_logs {
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
            let may_have_previous = may_have_previous(pod, &container);
            for &previous in instances.iter().filter(|&&p| !p || may_have_previous) {
                let suffix = if previous { ".previous" } else { "" };
                let bundle_path = EntryPath::new(
                    &["logs", group, &name],
                    &format!("{container}{suffix}"),
                    "log",
                );
                let spool = out.spool_path(&bundle_path.to_string());
                let tee = (stand_in && *group == "velero")
                    .then(|| out.spool_path(&format!("{bundle_path}.tee")));
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
                    tee,
                });
            }
        }
    }
    jobs
}

/// Whether a container may have a previous instance whose log the kubelet keeps: its status
/// says it restarted or ended before, or the pod has no status for it to say otherwise. One
/// request a container that never restarted (most of them) would only be refused.
fn may_have_previous(pod: &Pod, container: &str) -> bool {
    let Some(status) = pod.status.as_ref() else {
        return true;
    };
    let statuses = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten());
    let mut of_container = statuses.filter(|s| s.name == container).peekable();
    if of_container.peek().is_none() {
        return true;
    }
    of_container.any(|s| {
        s.restart_count > 0
            || s.last_state
                .as_ref()
                .is_some_and(|l| l.terminated.is_some())
    })
}

fn add_outcome(
    src: &Sources<'_>,
    out: &mut Sink,
    job: LogJob,
    outcome: LogOutcome,
    compressed: Compressed,
    masks: &MaskCounts,
) -> Result<(), CollectError> {
    let path = job.bundle_path.to_string();
    match outcome {
        LogOutcome::Written(report, _) if report.written == 0 && report.out_of_budget => {
            let _ = std::fs::remove_file(&job.spool);
            out.warn_left_out(&job.bundle_path);
        }
        LogOutcome::Written(report, over) => {
            let bound = size_text(src.plan.max_log_bytes);
            match over {
                Some(OverBound::HeadAndTail(gap)) => out.warn(format!(
                    "log {path}: over maxLogBytesPerContainer ({bound}): its first and its last lines are kept, {} between them (a marked line says where)",
                    gap.text()
                )),
                Some(OverBound::HeadOnly(why)) => out.warn(format!(
                    "log {path}: over maxLogBytesPerContainer ({bound}) and its end could not be read ({why}): only its first {bound} are kept"
                )),
                None => {}
            }
            for warning in report.warnings(&path, &out.budget) {
                out.warn(format!("log {warning}"));
            }
            add_log_file(out, &job, compressed, masks)?;
        }
        LogOutcome::NoPrevious => {
            let _ = std::fs::remove_file(&job.spool);
        }
        LogOutcome::Partial(why, report) => {
            out.warn(format!("log {path}: {why}; kept what was read"));
            for warning in report.warnings(&path, &out.budget) {
                out.warn(format!("log {warning}"));
            }
            add_log_file(out, &job, compressed, masks)?;
        }
        LogOutcome::Failed(why) => {
            let _ = std::fs::remove_file(&job.spool);
            out.warn(format!("log {} could not be read: {why}", job.bundle_path));
        }
    }
    Ok(())
}

/// A log kept: compressed where it was read, or (never expected) as spooled.
fn add_log_file(
    out: &mut Sink,
    job: &LogJob,
    compressed: Compressed,
    masks: &MaskCounts,
) -> Result<(), CollectError> {
    match compressed {
        Some(content) => out.add_compressed(&job.bundle_path, &content?, masks),
        None => out.add_spooled(&job.bundle_path, &job.spool, masks),
    }
}

#[derive(Clone, Copy)]
struct LogParamsBase {
    /// None: the whole log (within `max_bytes`).
    since: Option<jiff::Timestamp>,
    max_bytes: u64,
    timeout: std::time::Duration,
    max_line_bytes: usize,
    compression: Compression,
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

/// The window's start, for the current instance: a previous instance died before now, often
/// before the window opened; its last lines are the crash, so the window does not apply to it.
fn since(job: &LogJob, base: &LogParamsBase) -> Option<jiff::Timestamp> {
    base.since.filter(|_| !job.previous)
}

/// A line as written goes to the stand-in when it takes it, else to the log's own scan.
async fn offer(scan: &mut LogScan, tee: Option<&mut OperationLines<'_>>, line: &str) {
    let teed = match tee {
        Some(tee) => tee.offer(line.as_bytes()).await,
        None => false,
    };
    if teed {
        scan.skip_line();
    } else {
        scan.offer(line);
    }
}

/// Copies one container log into its spool file, each line (as written: redacted) also
/// offered to `scan` (or to `tee`, which may take it). A log that fills its bound keeps its
/// head and its tail.
async fn read_log(
    api: &Api<Pod>,
    job: &LogJob,
    base: &LogParamsBase,
    redactor: &Redactor,
    budget: ContentBudget,
    scan: &mut LogScan,
    mut tee: Option<&mut OperationLines<'_>>,
) -> (LogOutcome, MaskCounts, FollowingCompression) {
    // One deadline for the head and, when there is one, the tail.
    let deadline = tokio::time::Instant::now() + base.timeout;
    // Outside the copy, so what it did is known even when it times out.
    let mut lines = LineCopy::new(
        redactor,
        budget.clone(),
        base.max_line_bytes,
        "MAX_LINE_BYTES",
    );
    let mut compressing = FollowingCompression::new(&job.spool, base.compression);
    let mut head = Head {
        cut: HeadCut::new(base.max_bytes),
        at_cut: None,
        compressing: &mut compressing,
    };
    let copy = copy_head(
        api,
        job,
        base,
        &mut lines,
        &mut head,
        scan,
        tee.as_deref_mut(),
    );
    let copied = tokio::time::timeout_at(deadline, copy).await;
    let report = lines.report;
    let outcome = match copied {
        Ok(Ok(spool)) if head.cut.read() >= base.max_bytes && !report.out_of_budget => {
            let over = OverLog {
                api,
                job,
                base,
                redactor,
                budget: &budget,
                deadline,
                lines: &lines,
            };
            let (outcome, masks) = over.keep_head_and_tail(spool, head, scan, tee).await;
            return (outcome, masks, compressing);
        }
        Ok(Ok(_)) => LogOutcome::Written(report, None),
        // Only a previous instance's request is ever answered so (see copy_head).
        Ok(Err(CopyError::NoPrevious)) => LogOutcome::NoPrevious,
        Ok(Err(CopyError::Refused(why))) => LogOutcome::Failed(why),
        // A previous instance's log is often a crash's only evidence: what was read stays.
        Ok(Err(CopyError::Cut(why))) if report.written > 0 => {
            LogOutcome::Partial(format!("the read broke off ({why})"), report)
        }
        Ok(Err(CopyError::Cut(why))) => LogOutcome::Failed(why),
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
    (outcome, lines.masks().clone(), compressing)
}

/// The head's copy: where it is cut should the log be over its bound, and its compression,
/// which follows it up to that point.
struct Head<'c> {
    cut: HeadCut,
    at_cut: Option<AtCut>,
    compressing: &'c mut FollowingCompression,
}

/// What the copy of a log had done where its head is cut: what to go back to.
struct AtCut {
    /// Bytes written before it.
    written: u64,
    cut_lines: u64,
    masks: MaskCounts,
    scan: LogScan,
    tee: Option<TeeMark>,
}

/// Why the first request of a log got no log, or not all of it.
#[derive(Debug)]
enum CopyError {
    /// The kubelet's answer for a previous instance that does not exist.
    NoPrevious,
    /// Refused before any byte was read.
    Refused(String),
    /// Broken off after the copy began (the stream or the spool failed): what was written up
    /// to there is flushed to the spool file and stays.
    Cut(String),
}

/// Whether an answer to a log request says there is no previous instance: the kubelet's words
/// (400 `previous terminated container "c" in pod "p" not found`), or kwok's, which stands in
/// for the kubelet on the local environment (400 `failed to read log file "."`, no file named).
/// Any other refusal (403, 429, 5xx) is a failure worth a warning.
fn is_no_previous(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(status) if status.code == 400 => {
            let m = &status.message;
            (m.contains("previous terminated container") && m.contains("not found"))
                || m.starts_with("failed to read log file \".\"")
        }
        _ => false,
    }
}

/// The first request: the log from the window's start, cut by the server at the bound (so a
/// huge one is never transferred whole). Returns the spool file, flushed.
async fn copy_head(
    api: &Api<Pod>,
    job: &LogJob,
    base: &LogParamsBase,
    lines: &mut LineCopy<'_>,
    head: &mut Head<'_>,
    scan: &mut LogScan,
    tee: Option<&mut OperationLines<'_>>,
) -> Result<tokio::fs::File, CopyError> {
    let params = LogParams {
        container: Some(job.container.clone()),
        previous: job.previous,
        since_time: since(job, base),
        // The plan bounds it to 1 GiB: it fits.
        limit_bytes: Some(i64::try_from(base.max_bytes).unwrap_or(i64::MAX)),
        ..LogParams::default()
    };
    let reader = match api.log_stream(&job.pod, &params).await {
        Ok(r) => r,
        Err(e) if job.previous && is_no_previous(&e) => return Err(CopyError::NoPrevious),
        Err(e) => return Err(CopyError::Refused(crate::kubernetes::message(&e))),
    };
    let file = tokio::fs::File::create(&job.spool)
        .await
        .map_err(|e| CopyError::Refused(format!("spool file: {e}")))?;
    // Buffered (see SPOOL_BUFFER): each flush of a tokio file is a trip to the blocking pool.
    let mut out = BufWriter::with_capacity(SPOOL_BUFFER, file);
    let copied = copy_lines(reader, &mut out, base, lines, head, scan, tee).await;
    // Flushed whatever happened: a copy broken off keeps every line it wrote.
    let flushed = out.flush().await;
    copied.map_err(CopyError::Cut)?;
    flushed.map_err(|e| CopyError::Cut(format!("spool file: {e}")))?;
    Ok(out.into_inner())
}

/// The lines of `reader` rendered into `out` (see [`copy_head`]).
async fn copy_lines(
    reader: impl futures::AsyncBufRead,
    out: &mut BufWriter<tokio::fs::File>,
    base: &LogParamsBase,
    lines: &mut LineCopy<'_>,
    head: &mut Head<'_>,
    scan: &mut LogScan,
    mut tee: Option<&mut OperationLines<'_>>,
) -> Result<(), String> {
    let mut reader = std::pin::pin!(reader);
    // For a line not whole in the reader's buffer: one buffer reused for the whole log.
    let mut line = Vec::with_capacity(8 * 1024);
    let io = |e: std::io::Error| e.to_string();
    loop {
        let buffered = reader.fill_buf().await.map_err(io)?;
        // Lines redaction leaves as they are go on in one piece (the stand-in reads each line
        // of the server's log on its own), within what the head may hold before its cut.
        let unchanged = match tee {
            None => lines.unchanged_lines(buffered, head.cut.room()),
            Some(_) => None,
        };
        if let Some(text) = unchanged {
            let count = scan.offer_lines(text);
            head.cut.count(text.len() as u64, count);
            out.write_all(text.as_bytes()).await.map_err(io)?;
            let taken = text.len();
            reader.consume_unpin(taken);
        } else {
            // A line whole in the buffer is rendered where it is; any other is read into `line`.
            let (raw, read, in_buffer) = match whole_line(buffered, base.max_line_bytes) {
                Some((raw, read)) => (raw, read, true),
                None => match read_line_async(&mut reader, &mut line, base.max_line_bytes)
                    .await
                    .map_err(io)?
                {
                    Some(read) => (&line[..], read, false),
                    None => break,
                },
            };
            // Before the line is rendered: its masks and its scan are not yet counted.
            if head.cut.crosses(read.bytes) {
                head.at_cut = Some(AtCut {
                    written: lines.report.written,
                    cut_lines: lines.report.cut_lines,
                    masks: lines.masks().clone(),
                    scan: scan.clone(),
                    tee: tee.as_ref().map(|t| t.mark()),
                });
            }
            let rendered = lines.render(raw, read);
            offer(scan, tee.as_deref_mut(), rendered).await;
            out.write_all(rendered.as_bytes()).await.map_err(io)?;
            if in_buffer {
                reader.consume_unpin(read.bytes as usize);
            }
            if lines.report.out_of_budget {
                break;
            }
        }
        // Compressed while the rest is read; never past where the head may be cut, as what
        // follows that point may be replaced by the tail.
        if head.at_cut.is_none() && head.compressing.due(lines.report.written) {
            out.flush().await.map_err(io)?;
            head.compressing.hand_over(lines.report.written);
        }
    }
    Ok(())
}

/// A log's tail as read: its last lines, and what was masked in them.
struct Tail {
    kept: KeptTail,
    masks: MaskCounts,
}

/// The budget a tail is written in after the head: its bytes, and the tail's bytes that do
/// not fit in them (its first lines are left out).
struct TailRoom {
    bytes: u64,
    skip: u64,
}

/// A log whose head filled its bound, and what it takes to read its tail.
struct OverLog<'a, 'r> {
    api: &'a Api<Pod>,
    job: &'a LogJob,
    base: &'a LogParamsBase,
    redactor: &'r Redactor,
    budget: &'a ContentBudget,
    deadline: tokio::time::Instant,
    /// The head's copy.
    lines: &'a LineCopy<'r>,
}

impl OverLog<'_, '_> {
    /// Reads the tail, then cuts the head to its half of the bound and writes the marker
    /// line and the tail after it; the scan and the tee go back to the cut and read on. When
    /// the tail cannot be read, the head is kept up to the bound, as before.
    async fn keep_head_and_tail(
        &self,
        spool: tokio::fs::File,
        head: Head<'_>,
        scan: &mut LogScan,
        tee: Option<&mut OperationLines<'_>>,
    ) -> (LogOutcome, MaskCounts) {
        let Some(at_cut) = head.at_cut else {
            // Not reached: a head that filled the bound went past its half.
            return (
                LogOutcome::Written(self.lines.report, None),
                self.lines.masks().clone(),
            );
        };
        let kept = Size {
            rendered: at_cut.written,
            raw: head.cut.kept(),
        };
        let tail = match self.read_tail_in_time(&head.cut, kept).await {
            Ok(tail) => tail,
            Err(why) => return self.head_only(why),
        };
        let gap = Gap::between(
            head.cut.read(),
            kept.raw,
            tail.kept.read.raw,
            tail.kept.kept_at_most.raw,
        );
        self.write_after_head(spool, at_cut, tail, gap, scan, tee)
            .await
    }

    /// The outcome of a log over its bound kept as a log within it would be: its head, up to
    /// the bound, because its end could not be had (`why`).
    fn head_only(&self, why: String) -> (LogOutcome, MaskCounts) {
        (
            LogOutcome::Written(self.lines.report, Some(OverBound::HeadOnly(why))),
            self.lines.masks().clone(),
        )
    }

    /// The bound on the log's bytes, as rendered.
    fn bound(&self) -> u64 {
        self.base.max_bytes
    }

    /// Reads the tail within the log's deadline, into the room the head left; on failure
    /// (why), nothing of it is left on disk.
    async fn read_tail_in_time(&self, head: &HeadCut, kept: Size) -> Result<Tail, String> {
        let bound = self.bound();
        // The room the head left (at least a quarter of the bound, should redaction have made
        // the head longer than it was); never more raw bytes than the head left out, so the
        // two cannot overlap (see `Gap`).
        let cap = Size {
            rendered: bound.saturating_sub(kept.rendered).max(bound / 4),
            raw: head.read().saturating_sub(kept.raw),
        };
        let tail = tokio::time::timeout_at(self.deadline, self.read_tail(cap, head)).await;
        match tail {
            Ok(Ok(tail)) => Ok(tail),
            Ok(Err(why)) => {
                self.remove_tail_files();
                Err(why)
            }
            Err(_) => {
                self.remove_tail_files();
                Err(format!("timed out after {}s", self.base.timeout.as_secs()))
            }
        }
    }

    /// Cuts the spool back to the head's cut and writes the marker and as much of the tail
    /// as the budget allows after it; the scan and the tee go back to the cut and read on.
    async fn write_after_head(
        &self,
        spool: tokio::fs::File,
        at_cut: AtCut,
        tail: Tail,
        gap: Gap,
        scan: &mut LogScan,
        mut tee: Option<&mut OperationLines<'_>>,
    ) -> (LogOutcome, MaskCounts) {
        let marker = log_tail::marker(gap, self.bound());
        let Some(room) = self.take_room(at_cut.written, &marker, &tail.kept) else {
            self.remove_tail_files();
            return self.head_only(format!(
                "the bundle reached its size limit of {} (MAX_BUNDLE_BYTES)",
                size_text(self.budget.total())
            ));
        };
        *scan = at_cut.scan;
        if let (Some(tee), Some(mark)) = (tee.as_deref_mut(), at_cut.tee) {
            tee.rewind(mark).await;
        }
        let mut tail_lines = tail.kept.lines();
        tail_lines.skip_first(room.skip);
        let assembled = self
            .write_tail(spool, at_cut.written, &marker, tail_lines, scan, tee)
            .await;
        self.remove_tail_files();
        match assembled {
            Ok((written, cut_lines)) => {
                self.budget.give_back(room.bytes.saturating_sub(written));
                let mut report = self.lines.report;
                report.written = at_cut.written + written;
                report.cut_lines = at_cut.cut_lines + cut_lines;
                let mut masks = at_cut.masks;
                masks.merge(&tail.masks);
                (
                    LogOutcome::Written(report, Some(OverBound::HeadAndTail(gap))),
                    masks,
                )
            }
            Err(e) => {
                self.budget.give_back(room.bytes);
                (
                    LogOutcome::Failed(format!("writing its tail after its head: {e}")),
                    self.lines.masks().clone(),
                )
            }
        }
    }

    /// The room for the marker and the tail after the head's `head_bytes`: the head's bytes
    /// past the cut were taken from the budget, so the marker and the tail use them first
    /// and take only the rest. None (nothing taken) when not even the marker fits.
    fn take_room(&self, head_bytes: u64, marker: &str, tail: &KeptTail) -> Option<TailRoom> {
        let surplus = self.lines.report.written - head_bytes;
        let wanted = marker.len() as u64 + tail.kept_at_most.rendered;
        let got = self.budget.take_up_to(wanted.saturating_sub(surplus));
        let room = surplus + got;
        if room < marker.len() as u64 {
            self.budget.give_back(got);
            return None;
        }
        Some(TailRoom {
            bytes: room,
            skip: wanted.saturating_sub(room),
        })
    }

    /// The second request: the last lines, as many as should fill `cap` by the head's
    /// average line, with no byte limit (the end is what it is for; the log's timeout bounds
    /// it). Its lines are redacted as the head's and kept on disk to their last `cap`.
    /// What is masked in lines the keeper then drops is counted too.
    async fn read_tail(&self, cap: Size, head: &HeadCut) -> Result<Tail, String> {
        let params = LogParams {
            container: Some(self.job.container.clone()),
            previous: self.job.previous,
            since_time: since(self.job, self.base),
            tail_lines: Some(log_tail::tail_lines(
                cap.rendered,
                head.read(),
                head.lines(),
            )),
            ..LogParams::default()
        };
        let reader = self
            .api
            .log_stream(&self.job.pod, &params)
            .await
            .map_err(|e| crate::kubernetes::message(&e))?;
        // The keeper bounds what sits on disk; what it keeps is taken from the bundle's budget
        // when it is written after the head.
        let mut lines = LineCopy::new(
            self.redactor,
            ContentBudget::new(u64::MAX),
            self.base.max_line_bytes,
            "MAX_LINE_BYTES",
        )
        .starting_mid_log();
        let mut keeper = TailKeeper::new(cap, self.tail_files());
        let mut reader = std::pin::pin!(reader);
        let mut line = Vec::with_capacity(8 * 1024);
        let io = |e: std::io::Error| e.to_string();
        while let Some(read) = read_line_async(&mut reader, &mut line, self.base.max_line_bytes)
            .await
            .map_err(io)?
        {
            let rendered = lines.render(&line, read);
            keeper
                .push(rendered.as_bytes(), read.bytes)
                .await
                .map_err(io)?;
        }
        let kept = keeper.finish().await.map_err(io)?;
        Ok(Tail {
            kept,
            masks: lines.masks().clone(),
        })
    }

    /// Cuts the spool to the head's `head_bytes` and writes the marker and the kept tail's
    /// `lines` after them, each line offered as the head's were. Returns the bytes written
    /// after the head and how many of them were lines cut at the line cap.
    async fn write_tail(
        &self,
        mut spool: tokio::fs::File,
        head_bytes: u64,
        marker: &str,
        mut lines: log_tail::TailLines<'_>,
        scan: &mut LogScan,
        mut tee: Option<&mut OperationLines<'_>>,
    ) -> std::io::Result<(u64, u64)> {
        spool.set_len(head_bytes).await?;
        spool.seek(std::io::SeekFrom::Start(head_bytes)).await?;
        let mut out = BufWriter::with_capacity(SPOOL_BUFFER, spool);
        out.write_all(marker.as_bytes()).await?;
        scan.skip_line();
        let mut written = marker.len() as u64;
        let mut cut_lines = 0;
        let mut line = Vec::new();
        while lines.next(&mut line).await? {
            cut_lines += u64::from(self.lines.is_cut(&line));
            offer(scan, tee.as_deref_mut(), &String::from_utf8_lossy(&line)).await;
            out.write_all(&line).await?;
            written += line.len() as u64;
        }
        out.flush().await?;
        Ok((written, cut_lines))
    }

    fn tail_files(&self) -> [PathBuf; 2] {
        ["tail-a", "tail-b"].map(|part| {
            let mut path = self.job.spool.clone().into_os_string();
            path.push(format!(".{part}"));
            PathBuf::from(path)
        })
    }

    fn remove_tail_files(&self) {
        for path in self.tail_files() {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
#[path = "logs_tests.rs"]
mod tests;

//! Container logs: the Velero server (its plugins run as its children, so their logs are in
//! it), the node-agent pods per policy, and the target's data-path pods. Current and previous
//! instances, within the window and the size limit, redacted line by line into spool files.
//!
//! This file plans the reads and adds what they brought to the bundle; the parts:
//! - `pods.rs`: which pods, and one read per container and instance;
//! - `copy.rs`: one log copied into its spool file (the first request);
//! - `over_bound.rs`: a log over its bound keeps its head and its tail, a marked line between;
//! - `stand_in.rs`: the server's lines naming the operation, standing in for the operation's
//!   log when the object store has none.

mod copy;
mod over_bound;
mod pods;
mod stand_in;

use std::{path::PathBuf, sync::Arc};

use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::Pod;
use kube::{Api, ResourceExt};

pub(super) use pods::GroupedPods;

use super::{CollectError, Found, Sink, Sources, budget::ContentBudget, lines::CopyReport};
use crate::{
    config::size_text,
    findings::{LogRole, LogScan, LogSource, OperationScope, PodRole, TargetEvidence},
    gzip_members::{CompressedFile, Compression, FollowingCompression},
    redact::{MaskCounts, Redactor},
    tar_gz::EntryPath,
    velero::Target,
};
use copy::read_log;
use over_bound::Gap;
use pods::{data_path_pods, log_jobs, node_agent_pods, pod_role, server_pods};
use stand_in::{OperationLines, Teed, add_stand_in};

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
    for pod in pods::recorded_and_gone(src, found, &pods) {
        let path = EntryPath::new(&["pods", "recorded"], &pod.name_any(), "yaml");
        let seen = out.add_object_seen(&path, &pod)?;
        found
            .summary
            .evidence
            .add_pod(&path.to_string(), PodRole::DataPath, &seen);
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
        } else if job.source.role == LogRole::NodeAgent && !job.source.previous {
            // A node-agent serves every operation on its node: a line of an earlier one is no
            // cause of this one. Its previous instance's log is how it ended, kept whole.
            scan = scan.within(self.scope.window);
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

#[cfg(test)]
#[path = "logs_tests.rs"]
mod tests;

//! Prometheus metrics of the operator, served on `/metrics` (see http.rs). Ours are named
//! `velero_debug_*` (this operator's, not Velero's own `velero_*`); the process's are the
//! conventional `process_*`.

mod process;

use std::sync::atomic::AtomicI64;

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::{Registry, Unit},
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ResultLabels {
    /// completed or failed
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct FinishedLabels {
    /// completed or failed
    pub result: String,
    /// The Ready condition's reason (a bounded set: crd's `reasons`)
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
    revision: String,
}

/// The operator's version, and the git revision a build was made from when the build said
/// (`VDO_GIT_REVISION`, set by the image and release builds).
pub(crate) const REVISION: &str = match option_env!("VDO_GIT_REVISION") {
    Some(revision) => revision,
    None => "unknown",
};

/// A gauge registered as `name`.
fn gauge(registry: &mut Registry, name: &str, help: &str) -> Gauge<i64, AtomicI64> {
    let gauge = Gauge::<i64, AtomicI64>::default();
    registry.register(name, help, gauge.clone());
    gauge
}

/// A counter registered as `name`.
fn counter(registry: &mut Registry, name: &str, help: &str) -> Counter {
    let counter = Counter::default();
    registry.register(name, help, counter.clone());
    counter
}

/// `build_info{version,revision} 1`.
fn register_build_info(registry: &mut Registry) {
    let build_info = Family::<BuildLabels, Gauge<i64, AtomicI64>>::default();
    registry.register(
        "build_info",
        "1, labelled with the operator's version and git revision",
        build_info.clone(),
    );
    build_info
        .get_or_create(&BuildLabels {
            version: env!("CARGO_PKG_VERSION").to_string(),
            revision: REVISION.to_string(),
        })
        .set(1);
}

fn duration_histogram() -> Histogram {
    // From a second to two hours.
    Histogram::new(exponential_buckets(1.0, 2.0, 14))
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ControllerLabels {
    /// debugbundle, restore or backup
    pub controller: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct FindingLabels {
    /// The rule's stable id, such as repository-locked
    pub rule: String,
    /// error or warning
    pub severity: String,
}

/// A running operation that has not moved for `stallAfter`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct StalledLabels {
    /// Backup or Restore
    pub kind: String,
    /// volumes, plugin-operations, finalizing, items or server (auto_bundles/stall_decision.rs)
    pub waiting_on: String,
}

/// What stall detection reports: the operations stalled now, and the bundles made for them.
pub(crate) struct StallMetrics {
    pub stalled: Family<StalledLabels, Gauge<i64, AtomicI64>>,
    pub bundles_created: Counter,
    /// Stalls whose bundle the bound on stall bundles an hour withheld, each counted once.
    pub bundles_withheld: Counter,
}

impl StallMetrics {
    fn register(registry: &mut Registry) -> Self {
        let stalled = Family::<StalledLabels, Gauge<i64, AtomicI64>>::default();
        registry.register(
            "operations_stalled",
            "Backups and Restores running that have not moved for stallAfter, by kind and by what they wait on",
            stalled.clone(),
        );
        let bundles_created = counter(
            registry,
            "stall_bundles_created",
            "DebugBundles the operator made by itself for Backups and Restores that stopped moving",
        );
        let bundles_withheld = counter(
            registry,
            "stall_bundles_withheld",
            "Stalls of Backups and Restores that got no bundle because autoBundles.maxStallBundlesPerHour were made within the hour (named in the next stall bundle)",
        );
        Self {
            stalled,
            bundles_created,
            bundles_withheld,
        }
    }
}

pub(crate) struct Metrics {
    pub bundles: Family<FinishedLabels, Counter>,
    pub duration: Family<ResultLabels, Histogram, fn() -> Histogram>,
    /// Bundles waiting for a collection slot (Pending, Queued).
    pub waiting: Gauge<i64, AtomicI64>,
    pub size: Histogram,
    pub in_flight: Gauge<i64, AtomicI64>,
    pub reconcile_errors: Family<ControllerLabels, Counter>,
    pub auto_bundles_created: Counter,
    pub stalls: StallMetrics,
    pub findings: Family<FindingLabels, Counter>,
    pub orphans_deleted: Counter,
    /// 1 while this process leads (runs the controllers), else 0.
    pub leader: Gauge<i64, AtomicI64>,
    /// Pods of Velero's data path recorded as they ended (recorder/).
    pub recorded_pods: Gauge<i64, AtomicI64>,
    registry: Registry,
    /// Unprefixed: `process_*`.
    process_registry: Registry,
    process: process::ProcessMetrics,
}

/// Gauges of what this process does besides bundles: leading, and the pods it recorded.
fn process_gauges(registry: &mut Registry) -> (Gauge<i64, AtomicI64>, Gauge<i64, AtomicI64>) {
    let leader = gauge(
        registry,
        "leader",
        "1 while this process leads (holds the Lease and runs the controllers), else 0",
    );
    let recorded_pods = gauge(
        registry,
        "recorded_pods",
        "Pods of Velero's data path that ended badly, recorded before Velero deletes them",
    );
    (leader, recorded_pods)
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("velero_debug");
        let bundles = Family::<FinishedLabels, Counter>::default();
        registry.register(
            "bundles",
            "DebugBundles finished, by result and the Ready condition's reason",
            bundles.clone(),
        );
        let duration = Family::new_with_constructor(duration_histogram as fn() -> Histogram);
        registry.register_with_unit(
            "bundle_duration",
            "Time from collection start to the end of finished bundles, by result",
            Unit::Seconds,
            duration.clone(),
        );
        let waiting = gauge(
            &mut registry,
            "bundles_waiting",
            "Bundles waiting for a collection slot (maxConcurrentBundles are collecting)",
        );
        register_build_info(&mut registry);
        let mut process_registry = Registry::default();
        let process = process::ProcessMetrics::register(&mut process_registry);
        // From 16 KiB to 64 GiB.
        let size = Histogram::new(exponential_buckets(16384.0, 4.0, 12));
        registry.register_with_unit(
            "bundle_size",
            "Archive size of completed bundles",
            Unit::Bytes,
            size.clone(),
        );
        let in_flight = gauge(
            &mut registry,
            "bundles_in_flight",
            "Bundles collecting or uploading now",
        );
        let reconcile_errors = Family::<ControllerLabels, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Reconciles that ended in an error (retried)",
            reconcile_errors.clone(),
        );
        let auto_bundles_created = counter(
            &mut registry,
            "auto_bundles_created",
            "DebugBundles the operator made by itself for failed Backups and Restores",
        );
        let findings = Family::<FindingLabels, Counter>::default();
        registry.register(
            "findings",
            "Findings of completed bundles, by rule and severity (each finding counted once per bundle)",
            findings.clone(),
        );
        let orphans_deleted = counter(
            &mut registry,
            "orphans_deleted",
            "Archives and open uploads no DebugBundle referred to, deleted by the garbage collector",
        );
        let (leader, recorded_pods) = process_gauges(&mut registry);
        Self {
            recorded_pods,
            orphans_deleted,
            leader,
            bundles,
            duration,
            waiting,
            process_registry,
            process,
            size,
            in_flight,
            reconcile_errors,
            auto_bundles_created,
            stalls: StallMetrics::register(&mut registry),
            findings,
            registry,
        }
    }

    /// A bundle finished `result` (completed or failed) with the condition's `reason`,
    /// `took` seconds after its collection started (None when it never started).
    pub fn finished(&self, result: &str, reason: &str, took: Option<f64>) {
        self.bundles
            .get_or_create(&FinishedLabels {
                result: result.into(),
                reason: reason.into(),
            })
            .inc();
        if let Some(took) = took {
            self.duration
                .get_or_create(&ResultLabels {
                    result: result.into(),
                })
                .observe(took.max(0.0));
        }
    }

    /// Counts the findings of one completed bundle, given as `(rule, severity)`.
    pub fn found<'f>(&self, findings: impl IntoIterator<Item = (&'f str, &'f str)>) {
        for (rule, severity) in findings {
            self.findings
                .get_or_create(&FindingLabels {
                    rule: rule.into(),
                    severity: severity.into(),
                })
                .inc();
        }
    }

    pub fn reconcile_error(&self, controller: &str) {
        self.reconcile_errors
            .get_or_create(&ControllerLabels {
                controller: controller.into(),
            })
            .inc();
    }

    /// The OpenMetrics text exposition (the process's read now).
    pub fn encode(&self) -> String {
        use prometheus_client::encoding::text;
        self.process.refresh();
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = text::encode_registry(&mut out, &self.registry);
        let _ = text::encode_registry(&mut out, &self.process_registry);
        let _ = text::encode_eof(&mut out);
        out
    }
}

/// Counts a bundle in a gauge (in flight, waiting) while it lives.
pub(crate) struct InFlight<'a>(&'a Gauge<i64, AtomicI64>);

impl<'a> InFlight<'a> {
    pub fn new(gauge: &'a Gauge<i64, AtomicI64>) -> Self {
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names_and_counts() {
        let m = Metrics::new();
        m.finished("completed", "Completed", Some(3.0));
        m.finished("completed", "Completed", None);
        m.finished("failed", "BucketNotFound", Some(1.0));
        {
            let _a = InFlight::new(&m.in_flight);
            let text = m.encode();
            assert!(text.contains("velero_debug_bundles_in_flight 1"), "{text}");
        }
        let text = m.encode();
        assert!(
            text.contains(
                "velero_debug_bundles_total{result=\"completed\",reason=\"Completed\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "velero_debug_bundles_total{result=\"failed\",reason=\"BucketNotFound\"} 1"
            )
        );
        assert!(text.contains("velero_debug_bundles_in_flight 0"));
        assert!(text.contains("velero_debug_bundles_waiting 0"));
        assert!(
            text.contains("velero_debug_bundle_duration_seconds_count{result=\"completed\"} 1")
        );
        assert!(text.contains("velero_debug_bundle_duration_seconds_count{result=\"failed\"} 1"));
        assert!(text.contains("velero_debug_leader 0"), "{text}");
        let version = env!("CARGO_PKG_VERSION");
        assert!(text.contains(&format!(
            "velero_debug_build_info{{version=\"{version}\",revision=\"{REVISION}\"}} 1"
        )));
        // The process's own, unprefixed, read from /proc at each scrape; one EOF at the end.
        let rss = sample(&text, "process_resident_memory_bytes");
        assert!(rss > 1_000_000.0, "{text}");
        assert!(sample(&text, "process_open_fds") >= 3.0);
        assert!(sample(&text, "process_threads") >= 1.0);
        assert!(text.contains("process_cpu_seconds_total "));
        assert_eq!(text.matches("# EOF").count(), 1);
        assert!(text.ends_with("# EOF\n"));
    }

    fn sample(text: &str, name: &str) -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {name} in {text}"))
            .parse()
            .unwrap()
    }

    #[test]
    fn findings_are_counted_by_rule_and_severity() {
        let m = Metrics::new();
        let text = m.encode();
        assert!(!text.contains("velero_debug_findings_total{"), "{text}");
        m.found([("repository-locked", "error"), ("pvr-failed", "error")]);
        m.found([
            ("repository-locked", "error"),
            ("already-exists", "warning"),
        ]);
        m.found([]);
        let text = m.encode();
        assert!(
            text.contains(
                "velero_debug_findings_total{rule=\"repository-locked\",severity=\"error\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains("velero_debug_findings_total{rule=\"pvr-failed\",severity=\"error\"} 1")
        );
        assert!(text.contains(
            "velero_debug_findings_total{rule=\"already-exists\",severity=\"warning\"} 1"
        ));
    }
}

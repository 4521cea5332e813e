//! Prometheus metrics of the operator, served on `/metrics` (see http.rs).

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

pub(crate) struct Metrics {
    pub bundles: Family<ResultLabels, Counter>,
    pub duration: Histogram,
    pub size: Histogram,
    pub in_flight: Gauge<i64, AtomicI64>,
    pub reconcile_errors: Family<ControllerLabels, Counter>,
    pub auto_bundles_created: Counter,
    pub findings: Family<FindingLabels, Counter>,
    pub orphans_deleted: Counter,
    /// 1 while this process leads (runs the controllers), else 0.
    pub leader: Gauge<i64, AtomicI64>,
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("velero_debug");
        let bundles = Family::<ResultLabels, Counter>::default();
        registry.register(
            "bundles",
            "DebugBundles finished, by result",
            bundles.clone(),
        );
        // From a second to two hours.
        let duration = Histogram::new(exponential_buckets(1.0, 2.0, 14));
        registry.register_with_unit(
            "bundle_duration",
            "Time from collection start to upload end of completed bundles",
            Unit::Seconds,
            duration.clone(),
        );
        // From 16 KiB to 64 GiB.
        let size = Histogram::new(exponential_buckets(16384.0, 4.0, 12));
        registry.register_with_unit(
            "bundle_size",
            "Archive size of completed bundles",
            Unit::Bytes,
            size.clone(),
        );
        let in_flight = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "bundles_in_flight",
            "Bundles collecting or uploading now",
            in_flight.clone(),
        );
        let reconcile_errors = Family::<ControllerLabels, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Reconciles that ended in an error (retried)",
            reconcile_errors.clone(),
        );
        let auto_bundles_created = Counter::default();
        registry.register(
            "auto_bundles_created",
            "DebugBundles the operator made by itself for failed Backups and Restores",
            auto_bundles_created.clone(),
        );
        let findings = Family::<FindingLabels, Counter>::default();
        registry.register(
            "findings",
            "Findings of completed bundles, by rule and severity (each finding counted once per bundle)",
            findings.clone(),
        );
        let orphans_deleted = Counter::default();
        registry.register(
            "orphans_deleted",
            "Archives and open uploads no DebugBundle referred to, deleted by the garbage collector",
            orphans_deleted.clone(),
        );
        let leader = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "leader",
            "1 while this process leads (holds the Lease and runs the controllers), else 0",
            leader.clone(),
        );
        Self {
            orphans_deleted,
            leader,
            bundles,
            duration,
            size,
            in_flight,
            reconcile_errors,
            auto_bundles_created,
            findings,
            registry,
        }
    }

    pub fn finished(&self, result: &str) {
        self.bundles
            .get_or_create(&ResultLabels {
                result: result.into(),
            })
            .inc();
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

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Counts a bundle as in flight while it lives.
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
        m.finished("completed");
        m.finished("completed");
        m.finished("failed");
        m.duration.observe(3.0);
        {
            let _a = InFlight::new(&m.in_flight);
            let text = m.encode();
            assert!(text.contains("velero_debug_bundles_in_flight 1"), "{text}");
        }
        let text = m.encode();
        assert!(
            text.contains("velero_debug_bundles_total{result=\"completed\"} 2"),
            "{text}"
        );
        assert!(text.contains("velero_debug_bundles_total{result=\"failed\"} 1"));
        assert!(text.contains("velero_debug_bundles_in_flight 0"));
        assert!(text.contains("velero_debug_bundle_duration_seconds_count 1"));
        assert!(text.contains("velero_debug_leader 0"), "{text}");
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

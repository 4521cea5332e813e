//! Step 2, plan: from the DebugBundle and what it names to everything the later steps need,
//! with every default resolved and every rule checked. Pure, so it is unit-tested on YAML
//! fixtures.
//!
//! Each spec field is checked here again, though the CRD checks it too: a cluster may run an
//! older CRD, and a value the operator cannot use must fail the bundle (InvalidSpec, naming
//! the field) rather than be guessed at. The names in the spec are checked before anything is
//! read (dereference::named_target).

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use kube::{ResourceExt, core::DynamicObject};
use velero_debug_crd::{
    DEFAULT_MAX_LOG_BYTES_PER_CONTAINER, DEFAULT_URL_TTL, DebugBundle, DebugBundleSpec,
    NodeAgentLogs,
};

use super::dereference::Dereferenced;
use crate::{duration, velero::Target};

/// Logs are collected from this long before the target started.
pub(crate) const WINDOW_MARGIN: SignedDuration = SignedDuration::from_mins(10);
const MIN_URL_TTL: SignedDuration = SignedDuration::from_mins(1);
const MAX_URL_TTL: SignedDuration = SignedDuration::from_hours(7 * 24);

#[derive(Debug, thiserror::Error, PartialEq)]
pub(crate) enum PlanError {
    #[error("spec.{field}: {problem}")]
    InvalidSpec {
        /// The field as written in the spec ("urlTTL").
        field: &'static str,
        problem: String,
    },
    #[error("BackupStorageLocation {0} is ReadOnly; the bundle cannot be written to it")]
    ReadOnly(String),
}

fn invalid(field: &'static str, problem: impl ToString) -> PlanError {
    PlanError::InvalidSpec {
        field,
        problem: problem.to_string(),
    }
}

/// What to collect, with every default resolved.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CollectPlan {
    pub target: Target,
    /// Logs written at or after this time.
    pub since: Timestamp,
    pub max_log_bytes: i64,
    pub previous_logs: bool,
    pub node_agent_logs: NodeAgentLogs,
    pub events: bool,
}

/// The whole plan of one bundle.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BundlePlan {
    pub collect: CollectPlan,
    /// Where the archive goes in the storage location.
    pub key: String,
    pub url_ttl: Duration,
}

pub(crate) fn bundle(bundle: &DebugBundle, found: &Dereferenced) -> Result<BundlePlan, PlanError> {
    let collect = collect(&bundle.spec, found.target.clone(), &found.objects.target);
    let url_ttl = url_ttl(&bundle.spec)?;
    // Read again once the bundle finished (lifecycle.rs); checked now so a bad one fails it.
    ttl_after_finished(&bundle.spec)?;
    if found.location.read_only {
        return Err(PlanError::ReadOnly(found.location.name.clone()));
    }
    let key = found.location.archive_key(
        &bundle.namespace().unwrap_or_default(),
        &bundle.name_any(),
        &bundle.uid().unwrap_or_default(),
    );
    Ok(BundlePlan {
        collect,
        key,
        url_ttl,
    })
}

fn collect(spec: &DebugBundleSpec, target: Target, target_obj: &DynamicObject) -> CollectPlan {
    let since = match &spec.since {
        Some(t) => t.0,
        None => operation_start(target_obj)
            .map(|t| t - WINDOW_MARGIN)
            .unwrap_or(Timestamp::UNIX_EPOCH),
    };
    CollectPlan {
        target,
        since,
        max_log_bytes: spec
            .max_log_bytes_per_container
            .unwrap_or(DEFAULT_MAX_LOG_BYTES_PER_CONTAINER),
        previous_logs: spec.previous_logs.unwrap_or(true),
        node_agent_logs: spec.node_agent_logs.unwrap_or_default(),
        events: spec.events.unwrap_or(true),
    }
}

/// When the operation started: `status.startTimestamp`, else its creation.
fn operation_start(obj: &DynamicObject) -> Option<Timestamp> {
    obj.data["status"]["startTimestamp"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| obj.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// The URL validity of a spec: a duration between 1m and 168h, as the CRD's CEL rule enforces.
pub(crate) fn url_ttl(spec: &DebugBundleSpec) -> Result<Duration, PlanError> {
    let text = spec.url_ttl.as_deref().unwrap_or(DEFAULT_URL_TTL);
    let ttl = duration::parse(text).map_err(|e| invalid("urlTTL", e))?;
    if !(MIN_URL_TTL..=MAX_URL_TTL).contains(&ttl) {
        return Err(invalid(
            "urlTTL",
            format!("{text:?} is not between 1m and 168h"),
        ));
    }
    Ok(ttl.unsigned_abs())
}

/// The spec's retention, if it sets one: a duration of 0s or more.
pub(crate) fn ttl_after_finished(spec: &DebugBundleSpec) -> Result<Option<Duration>, PlanError> {
    let Some(text) = spec.ttl_after_finished.as_deref() else {
        return Ok(None);
    };
    let ttl = duration::parse(text).map_err(|e| invalid("ttlAfterFinished", e))?;
    Duration::try_from(ttl)
        .map(Some)
        .map_err(|_| invalid("ttlAfterFinished", format!("{text:?} is negative")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        bundle::dereference::TargetObjects,
        storage::{Credentials, StorageLocation},
    };

    fn obj(yaml: &str) -> DynamicObject {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn found(location: StorageLocation, target: &str) -> Dereferenced {
        Dereferenced {
            target: Target::Backup("b1".into()),
            objects: TargetObjects {
                target: obj(target),
                backup: None,
            },
            location,
            credentials: Credentials::DefaultChain,
        }
    }

    fn debug_bundle(spec: &str) -> DebugBundle {
        serde_yaml::from_str(&format!(
            "apiVersion: velerodebug.io/v1alpha1\nkind: DebugBundle\nmetadata: {{name: vdb, namespace: velero, uid: 1234abcd-0000}}\nspec: {spec}\n"
        ))
        .unwrap()
    }

    const BACKUP: &str = "apiVersion: velero.io/v1\nkind: Backup\nmetadata: {name: b1}\nstatus: {startTimestamp: \"2026-11-20T10:00:00Z\"}\n";

    fn location() -> StorageLocation {
        StorageLocation {
            name: "default".into(),
            bucket: "velero".into(),
            prefix: Some("cluster-a".into()),
            ..StorageLocation::default()
        }
    }

    #[test]
    fn window_starts_before_the_operation_and_defaults_apply() {
        let plan = bundle(&debug_bundle("{backup: b1}"), &found(location(), BACKUP)).unwrap();
        assert_eq!(plan.collect.since.to_string(), "2026-11-20T09:50:00Z");
        assert_eq!(plan.url_ttl, Duration::from_secs(24 * 3600));
        assert!(plan.collect.previous_logs && plan.collect.events);
        assert_eq!(plan.collect.node_agent_logs, NodeAgentLogs::Involved);
        assert_eq!(
            plan.key,
            "cluster-a/plugins/velero-debug-operator/bundles/velero/vdb-1234abcd.tar.gz"
        );
    }

    #[test]
    fn a_read_only_location_is_refused() {
        let ro = StorageLocation {
            read_only: true,
            ..location()
        };
        assert_eq!(
            bundle(&debug_bundle("{backup: b1}"), &found(ro, BACKUP)),
            Err(PlanError::ReadOnly("default".into()))
        );
    }

    fn spec(yaml: &str) -> DebugBundleSpec {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn field_of(result: Result<impl std::fmt::Debug, PlanError>) -> &'static str {
        match result {
            Err(PlanError::InvalidSpec { field, .. }) => field,
            other => panic!("not InvalidSpec: {other:?}"),
        }
    }

    #[test]
    fn url_ttl_is_any_go_duration_from_1m_to_168h() {
        let ttl = |t: &str| url_ttl(&spec(&format!("urlTTL: '{t}'")));
        for (text, secs) in [
            ("1h30m", 5400),
            ("90000ms", 90),
            ("1.5h", 5400),
            ("1m", 60),
            ("60000000000ns", 60),
            ("168h", 168 * 3600),
            ("167h59m59.999s", 168 * 3600 - 1),
        ] {
            assert_eq!(ttl(text).map(|d| d.as_secs()), Ok(secs), "{text}");
        }
        for bad in [
            "169h",
            "168h0.001s",
            "59s",
            "59.999s",
            "-1h",
            "0",
            "",
            "10",
            "1d",
            "24 h",
        ] {
            assert_eq!(field_of(ttl(bad)), "urlTTL", "{bad}");
        }
        assert_eq!(url_ttl(&spec("{}")), Ok(Duration::from_secs(24 * 3600)));
    }

    #[test]
    fn ttl_after_finished_is_a_duration_of_0s_or_more() {
        let ttl = |t: &str| ttl_after_finished(&spec(&format!("ttlAfterFinished: '{t}'")));
        assert_eq!(ttl("1.5h"), Ok(Some(Duration::from_secs(5400))));
        assert_eq!(ttl("0"), Ok(Some(Duration::ZERO)));
        assert_eq!(ttl("-0s"), Ok(Some(Duration::ZERO)));
        for bad in ["-1h", "-1ns", "1.5", "forever", "never", ""] {
            assert_eq!(field_of(ttl(bad)), "ttlAfterFinished", "{bad}");
        }
        assert_eq!(ttl_after_finished(&spec("{}")), Ok(None));
    }

    #[test]
    fn a_bad_field_fails_the_plan_naming_it() {
        let plan = |s: &str| bundle(&debug_bundle(s), &found(location(), BACKUP));
        assert_eq!(
            field_of(plan("{backup: b1, ttlAfterFinished: '-1h'}")),
            "ttlAfterFinished"
        );
        assert_eq!(field_of(plan("{backup: b1, urlTTL: 2d}")), "urlTTL");
        let e = plan("{backup: b1, urlTTL: 2d}").unwrap_err();
        assert!(e.to_string().starts_with("spec.urlTTL: \"2d\""), "{e}");
    }
}

//! Step 2, plan: from the DebugBundle and what it names to everything the later steps need,
//! with every default resolved and every rule checked. Pure, so it is unit-tested on YAML
//! fixtures.

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
pub(crate) const MAX_URL_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Debug, thiserror::Error, PartialEq)]
pub(crate) enum PlanError {
    #[error("urlTTL {0:?} is not a duration between 1m and 168h")]
    InvalidUrlTtl(String),
    #[error("BackupStorageLocation {0} is ReadOnly; the bundle cannot be written to it")]
    ReadOnly(String),
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
    if found.location.read_only {
        return Err(PlanError::ReadOnly(found.location.name.clone()));
    }
    let key = found.location.archive_key(
        &bundle.namespace().unwrap_or_default(),
        &bundle.name_any(),
        &bundle.uid().unwrap_or_default(),
    );
    Ok(BundlePlan {
        collect: collect(&bundle.spec, found.target.clone(), &found.objects.target),
        key,
        url_ttl: url_ttl(&bundle.spec)?,
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
    match duration::parse(text) {
        Some(d) if d.as_secs() >= 60 && d <= MAX_URL_TTL => Ok(d),
        _ => Err(PlanError::InvalidUrlTtl(text.to_string())),
    }
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

    #[test]
    fn url_ttl_parses_go_durations_within_bounds() {
        let ttl = |t: &str| {
            url_ttl(&DebugBundleSpec {
                url_ttl: Some(t.into()),
                ..Default::default()
            })
        };
        assert_eq!(ttl("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(ttl("168h").unwrap(), MAX_URL_TTL);
        for bad in ["169h", "30s", "", "10", "5ms", "1d"] {
            assert!(ttl(bad).is_err(), "{bad} accepted");
        }
    }
}

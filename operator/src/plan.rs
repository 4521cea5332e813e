//! Pure planning of a bundle: from the DebugBundle, its target and the storage location to
//! everything the collect and upload steps need. No I/O, so it is unit-tested on YAML fixtures.

use std::{collections::BTreeMap, time::Duration};

use jiff::{SignedDuration, Timestamp};
use kube::core::DynamicObject;
use velero_debug_crd::{
    DEFAULT_MAX_LOG_BYTES_PER_CONTAINER, DEFAULT_URL_TTL, DebugBundleSpec, NodeAgentLogs,
};

use crate::velero::{Target, prefixed_key};

/// Logs are collected from this long before the target started.
pub const WINDOW_MARGIN: SignedDuration = SignedDuration::from_mins(10);
pub const MAX_URL_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PlanError {
    #[error("spec must name exactly one of backup or restore")]
    NoSingleTarget,
    #[error("urlTTL {0:?} is not a duration between 1m and 168h")]
    InvalidUrlTtl(String),
    #[error("BackupStorageLocation {0} has no objectStorage.bucket")]
    NoBucket(String),
    #[error(
        "BackupStorageLocation {name} uses provider {provider:?}; only aws (S3-compatible) is supported"
    )]
    UnsupportedProvider { name: String, provider: String },
    #[error("BackupStorageLocation {0} is ReadOnly; the bundle cannot be written to it")]
    ReadOnly(String),
    #[error("{kind} {name} names no storage location and there is no default one")]
    NoStorageLocation { kind: String, name: String },
    #[error("BackupStorageLocation {0}: caCert is unusable: {1}")]
    InvalidCaCert(String, String),
}

/// The target named by a spec.
pub fn target(spec: &DebugBundleSpec) -> Result<Target, PlanError> {
    match (&spec.backup, &spec.restore) {
        (Some(b), None) => Ok(Target::Backup(b.clone())),
        (None, Some(r)) => Ok(Target::Restore(r.clone())),
        _ => Err(PlanError::NoSingleTarget),
    }
}

/// What to collect, with every default resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectPlan {
    pub target: Target,
    /// Logs written at or after this time.
    pub since: Timestamp,
    pub max_log_bytes: i64,
    pub previous_logs: bool,
    pub node_agent_logs: NodeAgentLogs,
    pub events: bool,
    pub url_ttl: Duration,
}

pub fn collect_plan(
    spec: &DebugBundleSpec,
    target_obj: &DynamicObject,
) -> Result<CollectPlan, PlanError> {
    let target = target(spec)?;
    let since = match &spec.since {
        Some(t) => t.0,
        None => operation_start(target_obj)
            .map(|t| t - WINDOW_MARGIN)
            .unwrap_or(Timestamp::UNIX_EPOCH),
    };
    let ttl_text = spec.url_ttl.as_deref().unwrap_or(DEFAULT_URL_TTL);
    Ok(CollectPlan {
        target,
        since,
        max_log_bytes: spec
            .max_log_bytes_per_container
            .unwrap_or(DEFAULT_MAX_LOG_BYTES_PER_CONTAINER),
        previous_logs: spec.previous_logs.unwrap_or(true),
        node_agent_logs: spec.node_agent_logs.unwrap_or_default(),
        events: spec.events.unwrap_or(true),
        url_ttl: parse_url_ttl(ttl_text)?,
    })
}

/// When the operation started: `status.startTimestamp`, else its creation.
pub fn operation_start(obj: &DynamicObject) -> Option<Timestamp> {
    obj.data["status"]["startTimestamp"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| obj.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// Parses Go-style durations of whole seconds ("24h", "90m", "1h30m", "0s"), as the CRD's CEL
/// rules and the operator's settings accept them.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let mut total = 0u64;
    let mut digits = String::new();
    let mut chars = text.chars().peekable();
    if text.is_empty() {
        return None;
    }
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match (c, chars.peek()) {
            ('m', Some('s')) => return None, // sub-second units make no sense here
            ('h', _) => 3600,
            ('m', _) => 60,
            ('s', _) => 1,
            _ => return None,
        };
        let n: u64 = digits.parse().ok()?;
        total = total.checked_add(n.checked_mul(unit)?)?;
        digits.clear();
    }
    digits.is_empty().then_some(Duration::from_secs(total))
}

/// The URL validity: a duration between 1m and 168h, as the CRD's CEL rule enforces.
pub fn parse_url_ttl(text: &str) -> Result<Duration, PlanError> {
    match parse_duration(text) {
        Some(d) if d.as_secs() >= 60 && d <= MAX_URL_TTL => Ok(d),
        _ => Err(PlanError::InvalidUrlTtl(text.to_string())),
    }
}

/// The storage location to read the target's files from and write the bundle to.
pub fn storage_location_name(
    spec: &DebugBundleSpec,
    target: &Target,
    target_obj: &DynamicObject,
    backup_of_restore: Option<&DynamicObject>,
    default_bsl: Option<&str>,
) -> Result<String, PlanError> {
    if let Some(name) = &spec.storage_location {
        return Ok(name.clone());
    }
    let backup = match target {
        Target::Backup(_) => Some(target_obj),
        Target::Restore(_) => backup_of_restore,
    };
    backup
        .and_then(|b| b.data["spec"]["storageLocation"].as_str())
        .filter(|s| !s.is_empty())
        .or(default_bsl)
        .map(str::to_string)
        .ok_or_else(|| PlanError::NoStorageLocation {
            kind: target.kind().into(),
            name: target.name().into(),
        })
}

/// The S3 side of a BackupStorageLocation, read from its spec.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StorageLocation {
    pub name: String,
    pub bucket: String,
    pub prefix: Option<String>,
    pub read_only: bool,
    pub config: BTreeMap<String, String>,
    /// `spec.credential`: (secret name, key).
    pub credential: Option<(String, String)>,
    /// `objectStorage.caCert`, base64 PEM.
    pub ca_cert: Option<String>,
}

impl StorageLocation {
    pub fn config(&self, key: &str) -> Option<&str> {
        self.config
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn flag(&self, key: &str) -> bool {
        self.config(key)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    pub fn key(&self, relative: &str) -> String {
        prefixed_key(self.prefix.as_deref(), relative)
    }
}

pub fn storage_location(bsl: &DynamicObject) -> Result<StorageLocation, PlanError> {
    let name = bsl.metadata.name.clone().unwrap_or_default();
    let spec = &bsl.data["spec"];
    let provider = spec["provider"].as_str().unwrap_or_default();
    if !matches!(provider, "aws" | "velero.io/aws") {
        return Err(PlanError::UnsupportedProvider {
            name,
            provider: provider.into(),
        });
    }
    let bucket = spec["objectStorage"]["bucket"]
        .as_str()
        .filter(|b| !b.is_empty())
        .ok_or_else(|| PlanError::NoBucket(name.clone()))?;
    let config = spec["config"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let v = v.as_str().map(str::to_string).unwrap_or(v.to_string());
                    (k.clone(), v)
                })
                .collect()
        })
        .unwrap_or_default();
    let credential = spec["credential"]["name"].as_str().map(|n| {
        let key = spec["credential"]["key"].as_str().unwrap_or("cloud");
        (n.to_string(), key.to_string())
    });
    Ok(StorageLocation {
        bucket: bucket.into(),
        prefix: spec["objectStorage"]["prefix"]
            .as_str()
            .filter(|p| !p.is_empty())
            .map(str::to_string),
        read_only: spec["accessMode"] == "ReadOnly",
        config,
        credential,
        ca_cert: spec["objectStorage"]["caCert"]
            .as_str()
            .filter(|c| !c.is_empty())
            .map(str::to_string),
        name,
    })
    .and_then(|location| {
        crate::s3_tls::ca_pem(&location)?;
        Ok(location)
    })
}

/// A location the bundle may be written to.
pub fn writable(location: StorageLocation) -> Result<StorageLocation, PlanError> {
    if location.read_only {
        return Err(PlanError::ReadOnly(location.name));
    }
    Ok(location)
}

/// Key of a bundle's archive: under `plugins/`, the only top-level folder of a BSL that Velero
/// tolerates and that is not its own, so the BSL stays Available.
pub fn archive_key(location: &StorageLocation, namespace: &str, name: &str, uid: &str) -> String {
    let short_uid: String = uid.chars().filter(|c| *c != '-').take(8).collect();
    location.key(&format!(
        "plugins/velero-debug-operator/bundles/{namespace}/{name}-{short_uid}.tar.gz"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(yaml: &str) -> DynamicObject {
        serde_yaml::from_str(yaml).unwrap()
    }

    const BSL: &str = r#"
apiVersion: velero.io/v1
kind: BackupStorageLocation
metadata: {name: default, namespace: velero}
spec:
  provider: aws
  objectStorage: {bucket: velero, prefix: cluster-a}
  credential: {name: bsl-creds, key: cloud}
  config: {region: minio, s3ForcePathStyle: "true", s3Url: "http://127.0.0.1:9000", checksumAlgorithm: ""}
"#;

    #[test]
    fn bsl_is_read_with_its_config_and_credential() {
        let loc = storage_location(&obj(BSL)).unwrap();
        assert_eq!(loc.bucket, "velero");
        assert_eq!(loc.prefix.as_deref(), Some("cluster-a"));
        assert!(loc.flag("s3ForcePathStyle"));
        assert_eq!(loc.config("checksumAlgorithm"), None, "empty means unset");
        assert_eq!(loc.config("s3Url"), Some("http://127.0.0.1:9000"));
        assert_eq!(loc.credential, Some(("bsl-creds".into(), "cloud".into())));
        assert!(!loc.read_only);
    }

    #[test]
    fn archive_key_sits_under_plugins() {
        let loc = storage_location(&obj(BSL)).unwrap();
        let key = archive_key(&loc, "velero", "b1", "1234abcd-ef00-0000-0000-000000000000");
        assert_eq!(
            key,
            "cluster-a/plugins/velero-debug-operator/bundles/velero/b1-1234abcd.tar.gz"
        );
        let top = key.strip_prefix("cluster-a/").unwrap().split('/').next();
        assert!(crate::velero::ALLOWED_TOP_LEVEL_DIRS.contains(&top.unwrap()));
    }

    #[test]
    fn read_only_and_foreign_providers_are_refused() {
        let ro = obj(&BSL.replace("provider: aws", "provider: aws\n  accessMode: ReadOnly"));
        assert_eq!(
            writable(storage_location(&ro).unwrap()),
            Err(PlanError::ReadOnly("default".into()))
        );
        let gcp = obj(&BSL.replace("provider: aws", "provider: gcp"));
        assert!(matches!(
            storage_location(&gcp),
            Err(PlanError::UnsupportedProvider { .. })
        ));
    }

    #[test]
    fn ca_cert_is_read_from_object_storage_and_validated() {
        use base64::Engine;
        let b64 = |t: &str| base64::engine::general_purpose::STANDARD.encode(t);
        let ca = include_str!("../testdata/unit-test-ca.pem");
        let with = |ca_cert: &str| {
            obj(&BSL.replace(
                "prefix: cluster-a}",
                &format!("prefix: cluster-a, caCert: \"{ca_cert}\"}}"),
            ))
        };
        let loc = storage_location(&with(&b64(ca))).unwrap();
        assert_eq!(loc.ca_cert, Some(b64(ca)));
        assert_eq!(storage_location(&with("")).unwrap().ca_cert, None);
        for bad in ["not base64!", &b64("not a certificate")] {
            let err = storage_location(&with(bad)).unwrap_err();
            assert!(
                matches!(&err, PlanError::InvalidCaCert(name, _) if name == "default"),
                "{err}"
            );
            assert!(err.to_string().contains("caCert is unusable"), "{err}");
        }
    }

    #[test]
    fn restore_uses_the_storage_location_of_its_backup() {
        let spec = DebugBundleSpec {
            restore: Some("r1".into()),
            ..Default::default()
        };
        let restore = obj(
            "apiVersion: velero.io/v1\nkind: Restore\nmetadata: {name: r1}\nspec: {backupName: b1}\n",
        );
        let backup = obj(
            "apiVersion: velero.io/v1\nkind: Backup\nmetadata: {name: b1}\nspec: {storageLocation: secondary}\n",
        );
        let t = target(&spec).unwrap();
        assert_eq!(
            storage_location_name(&spec, &t, &restore, Some(&backup), Some("default")).unwrap(),
            "secondary"
        );
        assert_eq!(
            storage_location_name(&spec, &t, &restore, None, Some("default")).unwrap(),
            "default"
        );
        assert!(storage_location_name(&spec, &t, &restore, None, None).is_err());
    }

    #[test]
    fn window_starts_before_the_operation() {
        let spec = DebugBundleSpec {
            backup: Some("b1".into()),
            ..Default::default()
        };
        let backup = obj(
            "apiVersion: velero.io/v1\nkind: Backup\nmetadata: {name: b1}\nstatus: {startTimestamp: \"2026-11-20T10:00:00Z\"}\n",
        );
        let plan = collect_plan(&spec, &backup).unwrap();
        assert_eq!(plan.since.to_string(), "2026-11-20T09:50:00Z");
        assert_eq!(plan.url_ttl, Duration::from_secs(24 * 3600));
        assert!(plan.previous_logs && plan.events);
        assert_eq!(plan.node_agent_logs, NodeAgentLogs::Involved);
    }

    #[test]
    fn url_ttl_parses_go_durations_within_bounds() {
        assert_eq!(parse_url_ttl("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_url_ttl("168h").unwrap(), MAX_URL_TTL);
        for bad in ["169h", "30s", "", "10", "5ms", "1d"] {
            assert!(parse_url_ttl(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn durations_parse_go_style_whole_seconds() {
        assert_eq!(parse_duration("0s"), Some(Duration::ZERO));
        assert_eq!(parse_duration("72h"), Some(Duration::from_secs(72 * 3600)));
        assert_eq!(parse_duration("1h1m1s"), Some(Duration::from_secs(3661)));
        for bad in ["", "h", "10", "5ms", "1d", "-1h", "99999999999999999999h"] {
            assert_eq!(parse_duration(bad), None, "{bad} accepted");
        }
    }

    #[test]
    fn exactly_one_target() {
        let both = DebugBundleSpec {
            backup: Some("b".into()),
            restore: Some("r".into()),
            ..Default::default()
        };
        assert_eq!(target(&both), Err(PlanError::NoSingleTarget));
        assert_eq!(
            target(&DebugBundleSpec::default()),
            Err(PlanError::NoSingleTarget)
        );
    }
}

//! The DebugBundle that `create` sends, built from the flags (pure). Values are checked here
//! as the CRD checks them, so a mistake is reported before anything reaches the cluster.

use jiff::{SignedDuration, Timestamp};
use kube::api::ObjectMeta;
use velero_debug_crd::{
    DebugBundle, DebugBundleSpec, MAX_LOG_BYTES_PER_CONTAINER, MIN_LOG_BYTES_PER_CONTAINER,
    URL_TTL_MAX, URL_TTL_MAX_TEXT, URL_TTL_MIN, URL_TTL_MIN_TEXT, duration,
};

use super::since::{SinceError, resolve_since};
use crate::args::SpecArgs;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TargetKind {
    Restore,
    Backup,
}

impl TargetKind {
    /// Velero's kind name.
    pub(crate) fn velero_kind(self) -> &'static str {
        match self {
            TargetKind::Restore => "Restore",
            TargetKind::Backup => "Backup",
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            TargetKind::Restore => "restore",
            TargetKind::Backup => "backup",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CreateError {
    #[error(transparent)]
    Since(#[from] SinceError),
    #[error(
        "--max-log-bytes must be between {MIN_LOG_BYTES_PER_CONTAINER} and {MAX_LOG_BYTES_PER_CONTAINER}, not {0}"
    )]
    MaxLogBytes(i64),
    #[error(
        "--url-ttl must be a Go duration between {URL_TTL_MIN_TEXT} and {URL_TTL_MAX_TEXT}, not {0:?}"
    )]
    UrlTtl(String),
    #[error("--ttl-after-finished must be a Go duration of 0s or more (such as 72h), not {0:?}")]
    TtlAfterFinished(String),
}

/// The DebugBundle for `target`; without `name` the API server generates one from the target's.
pub(crate) fn build_bundle(
    namespace: &str,
    kind: TargetKind,
    target: &str,
    name: Option<&str>,
    flags: &SpecArgs,
    now: Timestamp,
) -> Result<DebugBundle, CreateError> {
    let since = flags
        .since
        .as_deref()
        .map(|text| resolve_since(text, now))
        .transpose()?;
    if let Some(bytes) = flags.max_log_bytes
        && !(MIN_LOG_BYTES_PER_CONTAINER..=MAX_LOG_BYTES_PER_CONTAINER).contains(&bytes)
    {
        return Err(CreateError::MaxLogBytes(bytes));
    }
    if let Some(ttl) = &flags.url_ttl {
        let ok = duration::parse(ttl).is_ok_and(|d| (URL_TTL_MIN..=URL_TTL_MAX).contains(&d));
        if !ok {
            return Err(CreateError::UrlTtl(ttl.clone()));
        }
    }
    if let Some(ttl) = &flags.ttl_after_finished
        && !duration::parse(ttl).is_ok_and(|d| d >= SignedDuration::ZERO)
    {
        return Err(CreateError::TtlAfterFinished(ttl.clone()));
    }
    let spec = DebugBundleSpec {
        backup: (kind == TargetKind::Backup).then(|| target.to_string()),
        restore: (kind == TargetKind::Restore).then(|| target.to_string()),
        since,
        max_log_bytes_per_container: flags.max_log_bytes,
        previous_logs: flags.previous_logs,
        node_agent_logs: flags.node_agent_logs.map(Into::into),
        events: flags.events,
        storage_location: flags.storage_location.clone(),
        url_ttl: flags.url_ttl.clone(),
        ttl_after_finished: flags.ttl_after_finished.clone(),
    };
    let metadata = ObjectMeta {
        namespace: Some(namespace.to_string()),
        name: name.map(str::to_string),
        generate_name: name.is_none().then(|| generated_name_prefix(kind, target)),
        ..ObjectMeta::default()
    };
    Ok(DebugBundle {
        metadata,
        spec,
        status: None,
    })
}

/// "restore-<target>-": the API server appends 5 characters and cuts the prefix to 58, and a
/// prefix cut there must still end with a letter or digit before the suffix (the '-' is ours).
fn generated_name_prefix(kind: TargetKind, target: &str) -> String {
    const MAX_PREFIX: usize = 57;
    let mut base = format!("{}-{target}", kind.as_str());
    base.truncate(MAX_PREFIX);
    let trimmed = base.trim_end_matches(['-', '.']);
    format!("{trimmed}-")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::NodeAgentLogsArg;
    use velero_debug_crd::NodeAgentLogs;

    fn now() -> Timestamp {
        "2026-11-22T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn every_flag_lands_in_its_spec_field() {
        let flags = SpecArgs {
            since: Some("2h".into()),
            max_log_bytes: Some(4096),
            previous_logs: Some(false),
            node_agent_logs: Some(NodeAgentLogsArg::All),
            events: Some(false),
            storage_location: Some("secondary".into()),
            url_ttl: Some("90m".into()),
            ttl_after_finished: Some("0s".into()),
        };
        let bundle = build_bundle(
            "velero",
            TargetKind::Restore,
            "r1",
            Some("b1"),
            &flags,
            now(),
        )
        .unwrap();
        assert_eq!(bundle.metadata.name.as_deref(), Some("b1"));
        assert_eq!(bundle.metadata.generate_name, None);
        assert_eq!(bundle.metadata.namespace.as_deref(), Some("velero"));
        let expected = DebugBundleSpec {
            backup: None,
            restore: Some("r1".into()),
            since: Some("2026-11-22T10:00:00Z".into()),
            max_log_bytes_per_container: Some(4096),
            previous_logs: Some(false),
            node_agent_logs: Some(NodeAgentLogs::All),
            events: Some(false),
            storage_location: Some("secondary".into()),
            url_ttl: Some("90m".into()),
            ttl_after_finished: Some("0s".into()),
        };
        assert_eq!(bundle.spec, expected);
    }

    #[test]
    fn no_flags_leave_the_operator_defaults_and_a_generated_name() {
        let bundle = build_bundle(
            "ns",
            TargetKind::Backup,
            "nightly",
            None,
            &SpecArgs::default(),
            now(),
        )
        .unwrap();
        assert_eq!(
            bundle.spec,
            DebugBundleSpec {
                backup: Some("nightly".into()),
                ..DebugBundleSpec::default()
            }
        );
        assert_eq!(
            bundle.metadata.generate_name.as_deref(),
            Some("backup-nightly-")
        );
        let yaml = serde_yaml::to_string(&bundle).unwrap();
        assert!(yaml.contains("kind: DebugBundle"), "{yaml}");
        assert!(yaml.contains("backup: nightly"), "{yaml}");
        assert!(!yaml.contains("status"), "{yaml}");
    }

    #[test]
    fn a_long_target_gives_a_valid_prefix() {
        let target = format!("{}-{}", "a".repeat(49), "b".repeat(40));
        let prefix = generated_name_prefix(TargetKind::Restore, &target);
        assert_eq!(prefix, format!("restore-{}-", "a".repeat(49)));
        assert!(prefix.len() <= 58);
    }

    #[test]
    fn values_the_crd_refuses_are_refused() {
        let with = |f: fn(&mut SpecArgs)| {
            let mut flags = SpecArgs::default();
            f(&mut flags);
            build_bundle("ns", TargetKind::Restore, "r", None, &flags, now()).unwrap_err()
        };
        assert_eq!(
            with(|f| f.max_log_bytes = Some(1023)),
            CreateError::MaxLogBytes(1023)
        );
        assert_eq!(
            with(|f| f.url_ttl = Some("169h".into())),
            CreateError::UrlTtl("169h".into())
        );
        assert_eq!(
            with(|f| f.url_ttl = Some("30s".into())),
            CreateError::UrlTtl("30s".into())
        );
        assert_eq!(
            CreateError::UrlTtl("30s".into()).to_string(),
            "--url-ttl must be a Go duration between 1m and 168h, not \"30s\""
        );
        assert_eq!(
            with(|f| f.ttl_after_finished = Some("-1h".into())),
            CreateError::TtlAfterFinished("-1h".into())
        );
        assert!(matches!(
            with(|f| f.since = Some("2d".into())),
            CreateError::Since(_)
        ));
    }
}

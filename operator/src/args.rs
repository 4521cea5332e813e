//! The operator's command line: its flags (each also read from an environment variable the
//! chart sets), their parsers (a bad value stops the process at start, not at the first
//! bundle), and the settings they make (`config_from`). A new setting is a flag here and a
//! field in config.rs.

use std::{path::PathBuf, time::Duration};

use crate::{
    config::{Compression, Config, Limits, Policy},
    duration,
    findings::SiteRules,
};

/// Empty entries of a list flag (a trailing newline, a trailing comma) are none.
pub(crate) fn without_empty(phases: Vec<String>) -> Vec<String> {
    phases.into_iter().filter(|p| !p.is_empty()).collect()
}

/// The operator's flags; each also reads an environment variable (the chart sets those).
#[derive(clap::Parser, Debug)]
#[command(version, about = "Collects Velero debug bundles into the object store")]
pub struct Args {
    /// Namespace of Velero (where DebugBundles live). Empty: every namespace.
    #[arg(long, env = "VELERO_NAMESPACE", default_value = "velero")]
    pub(crate) namespace: String,
    /// Folder where archives are built before upload (size it for the largest bundle); each
    /// process works in a folder of its own there, and removes those of dead processes.
    #[arg(long, env = "SPOOL_DIR", default_value_os_t = std::env::temp_dir())]
    pub(crate) spool_dir: PathBuf,
    /// Bundles collected at the same time.
    #[arg(long, env = "MAX_CONCURRENT_BUNDLES", default_value_t = 4)]
    pub(crate) max_concurrent_bundles: u16,
    /// Seconds a DebugBundle waits for a target that does not exist yet.
    #[arg(long, env = "TARGET_WAIT_SECONDS", default_value_t = 120)]
    pub(crate) target_wait_seconds: u64,
    /// Attempts for failures that may pass (object store unreachable) before Failed.
    #[arg(long, env = "MAX_ATTEMPTS", default_value_t = 5)]
    pub(crate) max_attempts: i32,
    /// How long one attempt at a bundle may hold its collection slot, from taking it to the
    /// end of the upload; past it the attempt stops (the upload aborted, the spool freed) and
    /// is retried as DeadlineExceeded, counted against MAX_ATTEMPTS. With
    /// UPLOAD_BYTES_PER_SECOND set, leave room for the archive's upload at that rate.
    #[arg(long, env = "BUNDLE_DEADLINE", default_value = "30m", value_parser = parse_duration)]
    pub(crate) bundle_deadline: Duration,
    /// Timeout of one API request, in seconds.
    #[arg(long, env = "API_TIMEOUT_SECONDS", default_value_t = 30)]
    pub(crate) api_timeout_seconds: u64,
    /// Timeout of reading one container log, in seconds.
    #[arg(long, env = "LOG_TIMEOUT_SECONDS", default_value_t = 120)]
    pub(crate) log_timeout_seconds: u64,
    /// Restore phases that get an automatic DebugBundle (comma list; empty: none).
    #[arg(long, env = "AUTO_BUNDLE_RESTORE_PHASES", default_value = "PartiallyFailed", value_delimiter = ',', value_parser = parse_phase)]
    pub(crate) auto_bundle_restore_phases: Vec<String>,
    /// Backup phases that get an automatic DebugBundle (comma list; empty: none).
    #[arg(long, env = "AUTO_BUNDLE_BACKUP_PHASES", default_value = "", value_delimiter = ',', value_parser = parse_phase)]
    pub(crate) auto_bundle_backup_phases: Vec<String>,
    /// Backups and Restores that ended longer ago than this get no automatic bundle.
    #[arg(long, env = "AUTO_BUNDLE_LOOKBACK", default_value = "6h", value_parser = parse_duration)]
    pub(crate) auto_bundle_lookback: Duration,
    /// A Backup or Restore still running that has not moved this long gets an automatic
    /// bundle, once per stall (empty: never).
    #[arg(long, env = "AUTO_BUNDLE_STALL_AFTER", default_value = "30m", value_parser = parse_stall_after)]
    auto_bundle_stall_after: StallAfter,
    /// Stall bundles made at the most in any hour, over every namespace and kind: stalls
    /// beyond wait for the next hour, counted and named in the next stall bundle.
    #[arg(long, env = "MAX_STALL_BUNDLES_PER_HOUR", default_value_t = 10)]
    pub(crate) max_stall_bundles_per_hour: u32,
    /// Automatic bundles kept per namespace; the oldest beyond it are deleted.
    #[arg(long, env = "MAX_AUTO_BUNDLES_PER_NAMESPACE", default_value_t = 20)]
    pub(crate) max_auto_bundles_per_namespace: usize,
    /// Retention of bundles made by hand whose spec sets no ttlAfterFinished ("never": kept).
    #[arg(long, env = "DEFAULT_TTL_MANUAL", default_value = "168h", value_parser = parse_ttl)]
    default_ttl_manual: Ttl,
    /// Retention of automatic bundles whose spec sets no ttlAfterFinished ("never": kept).
    #[arg(long, env = "DEFAULT_TTL_AUTO", default_value = "72h", value_parser = parse_ttl)]
    default_ttl_auto: Ttl,
    /// Upload rate limit in bytes per second (0: none), to spare a shared link.
    #[arg(long, env = "UPLOAD_BYTES_PER_SECOND", default_value_t = 0)]
    pub(crate) upload_bytes_per_second: u64,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub(crate) metrics_addr: std::net::SocketAddr,
    /// Run the controllers only while holding the leader Lease (several replicas).
    #[arg(long, env = "LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub(crate) leader_election: bool,
    /// Name of the leader Lease, in Velero's namespace.
    #[arg(long, env = "LEASE_NAME", default_value = "velero-debug-operator")]
    pub(crate) lease_name: String,
    /// Identity of this process in the Lease (the pod's name; default: host name and pid).
    #[arg(long, env = "POD_NAME")]
    pub(crate) pod_name: Option<String>,
    /// Content of one bundle before compression, in bytes; taken from as files are written, so
    /// the file that reaches it is cut and later ones are left out, each with a warning. The
    /// spool folder needs this much per collection slot.
    #[arg(long, env = "MAX_BUNDLE_BYTES", default_value_t = 512 * 1024 * 1024)]
    pub(crate) max_bundle_bytes: u64,
    /// Bytes one object-store file (Velero's log or results of the target) may decompress
    /// to; the rest is left out with a warning, so a small gzip that inflates to gigabytes
    /// stops here. Raise it with MAX_BUNDLE_BYTES for backups whose own log is larger.
    #[arg(long, env = "MAX_INFLATED_BYTES", default_value_t = 128 * 1024 * 1024)]
    pub(crate) max_inflated_bytes: u64,
    /// How often the garbage collector looks for archives and open uploads no DebugBundle
    /// refers to, in every writable storage location (and once at start).
    #[arg(long, env = "ORPHAN_SWEEP_INTERVAL", default_value = "1h", value_parser = parse_duration)]
    pub(crate) orphan_sweep_interval: Duration,
    /// Archives and uploads younger than this are never collected.
    #[arg(long, env = "ORPHAN_GRACE", default_value = "15m", value_parser = parse_duration)]
    pub(crate) orphan_grace: Duration,
    /// How long a deleted bundle waits for an unreachable store to delete its archive; then it
    /// goes without (a Warning event ArchiveLeft names the object, which the garbage collector
    /// takes later).
    #[arg(long, env = "ARCHIVE_DELETE_LIMIT", default_value = "5m", value_parser = parse_duration)]
    pub(crate) archive_delete_limit: Duration,
    /// The client container logs are read with: `direct`, a connection per log that wakes
    /// once per 32 KiB (log_client.rs), or `kube`, kube's own client, as every other request
    /// (the way back should the direct one meet a proxy or server it does not suit).
    #[arg(long, env = "LOG_CLIENT", value_enum, default_value_t = LogClient::Direct)]
    pub(crate) log_client: LogClient,
    /// Container logs of one bundle read at the same time.
    #[arg(long, env = "LOG_CONCURRENCY", default_value_t = crate::config::DEFAULT_LOG_CONCURRENCY,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=64))]
    pub(crate) log_concurrency: usize,
    /// gzip level of the archive, 1 (fastest) to 9 (smallest); see BENCHMARKS.md for what each
    /// costs.
    #[arg(long, env = "COMPRESSION_LEVEL", default_value_t = Compression::default().level,
          value_parser = clap::value_parser!(u32).range(1..=9))]
    pub(crate) compression_level: u32,
    /// Threads one large file is compressed on (ranges of 8 MiB or more, each a gzip member);
    /// 1 suits a pod limited to one core. Logs read at the same time are compressed at the
    /// same time whatever this is.
    #[arg(long, env = "COMPRESSION_THREADS", default_value_t = Compression::default().threads,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=64))]
    pub(crate) compression_threads: usize,
    /// Threads of the async runtime: watches, reconciles, and the reading, redaction and
    /// scanning of logs (compression has its own threads). One by measurement: every chunk
    /// of a log stream wakes a thread, and a second one mostly wakes to find nothing, so one
    /// spends less CPU on the same logs (BENCHMARKS.md).
    #[arg(long, env = "RUNTIME_THREADS", default_value_t = 1,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=64))]
    pub runtime_threads: usize,
    /// A site's own secret formats (regexes), masked whole in everything collected besides the
    /// built-in rules; the n-th counts as `site-pattern-<n>` in a bundle's manifest. Repeat
    /// the flag, or put one per line in the environment variable.
    #[arg(long = "redaction-pattern", env = "REDACTION_PATTERNS", value_delimiter = '\n', value_parser = parse_redaction_pattern)]
    pub(crate) redaction_patterns: Vec<String>,
    /// The site's own diagnosis rules: a JSON list of {id, match (a regex), title, severity,
    /// layer, nextStep}, reported as `site-<id>` findings. Refused at start when invalid.
    #[arg(long, env = "SITE_RULES", default_value = "", value_parser = parse_site_rules)]
    pub(crate) site_rules: SiteRules,
    /// A host (HOST or HOST:PORT) a BackupStorageLocation may send its credential to besides
    /// its provider's own endpoint for its account: an emulator, Azure Stack, a private
    /// endpoint's own name. Repeat the flag, or a comma list in the environment variable.
    #[arg(
        long = "trusted-storage-host",
        env = "TRUSTED_STORAGE_HOSTS",
        value_delimiter = ','
    )]
    pub(crate) trusted_storage_hosts: Vec<String>,
    /// Keep the literal env values of pods (and pod templates) outside Velero's namespace in
    /// bundles; by default they are masked, their names and valueFrom references kept: an
    /// application's settings are not diagnosis evidence, and whoever holds the download URL
    /// need not see them.
    #[arg(long, env = "KEEP_WORKLOAD_ENV_VALUES", default_value_t = false, action = clap::ArgAction::Set)]
    pub(crate) keep_workload_env_values: bool,
    /// Log as JSON (for clusters) instead of text.
    #[arg(long, env = "LOG_JSON", default_value_t = false)]
    pub(crate) log_json: bool,
    /// Server-side apply this build's DebugBundle CRD at start (Helm never upgrades `crds/`);
    /// needs get/patch on that one CRD.
    #[arg(long, env = "APPLY_CRD", default_value_t = false, action = clap::ArgAction::Set)]
    pub(crate) apply_crd: bool,
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
}

#[derive(clap::Subcommand, Debug)]
pub(crate) enum Command {
    /// GET a URL and exit 0 on HTTP 2xx (the chart's `helm test` checks /readyz with it).
    Probe {
        url: String,
        /// Seconds before giving up.
        #[arg(long, default_value_t = 10)]
        timeout_seconds: u64,
    },
    /// Releases every DebugBundle's finalizer before the operator goes (the chart's
    /// pre-delete hook): with --delete-bundles, deletes the bundles first and gives the
    /// running operator --timeout-seconds to delete their archives.
    Uninstall {
        #[arg(long, default_value_t = false)]
        delete_bundles: bool,
        #[arg(long, default_value_t = 120)]
        timeout_seconds: u64,
    },
}

/// A retention: a duration, or none.
#[derive(Clone, Copy, Debug)]
struct Ttl(Option<Duration>);

/// A Go duration ("6h", "90m", "1.5h"), as the spec's; not negative.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let parsed = duration::parse(text).map_err(|e| e.to_string())?;
    Duration::try_from(parsed).map_err(|_| format!("{text:?} is negative"))
}

/// How long a running operation may stand still; None: stall detection off.
#[derive(Clone, Copy, Debug)]
struct StallAfter(Option<Duration>);

/// A duration, or empty for none; a zero one would make every running operation stalled.
fn parse_stall_after(text: &str) -> Result<StallAfter, String> {
    if text.is_empty() {
        return Ok(StallAfter(None));
    }
    match parse_duration(text)? {
        d if d.is_zero() => Err(format!("{text:?} is zero: empty turns stall detection off")),
        d => Ok(StallAfter(Some(d))),
    }
}

fn parse_ttl(text: &str) -> Result<Ttl, String> {
    if text == "never" {
        return Ok(Ttl(None));
    }
    parse_duration(text).map(|d| Ttl(Some(d)))
}

fn parse_phase(text: &str) -> Result<String, String> {
    match text {
        "" | "PartiallyFailed" | "Failed" | "FailedValidation" | "Completed" => {
            Ok(text.to_string())
        }
        _ => Err(format!(
            "{text:?} is not a final phase (PartiallyFailed, Failed, FailedValidation, Completed)"
        )),
    }
}

/// Site rules the findings can run; refused at start, not at the first bundle.
fn parse_site_rules(text: &str) -> Result<SiteRules, String> {
    SiteRules::parse(text).map_err(|e| e.to_string())
}

/// A regex the redactor can use; refused at start, not at the first bundle.
fn parse_redaction_pattern(text: &str) -> Result<String, String> {
    match regex::Regex::new(text) {
        Ok(_) => Ok(text.to_string()),
        Err(e) => Err(format!("{text:?} is not a valid regex: {e}")),
    }
}

/// What container logs are read with (`LOG_CLIENT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogClient {
    Direct,
    Kube,
}

/// The settings the flags give (the spool folder as given: the process claims its own in it).
pub(crate) fn config_from(args: Args) -> Config {
    Config {
        spool_dir: args.spool_dir,
        concurrency: args.max_concurrent_bundles,
        target_wait: Duration::from_secs(args.target_wait_seconds),
        max_attempts: args.max_attempts,
        // A zero deadline would fail every attempt at once.
        bundle_deadline: args.bundle_deadline.max(Duration::from_secs(1)),
        limits: Limits {
            api_timeout: Duration::from_secs(args.api_timeout_seconds),
            log_timeout: Duration::from_secs(args.log_timeout_seconds),
            max_bundle_bytes: args.max_bundle_bytes,
            max_inflated_bytes: args.max_inflated_bytes,
            log_concurrency: args.log_concurrency,
            ..Limits::default()
        },
        compression: Compression {
            level: args.compression_level,
            threads: args.compression_threads,
        },
        archive_delete_limit: args.archive_delete_limit,
        site_rules: args.site_rules,
        trusted_storage_hosts: crate::storage::TrustedHosts::new(&args.trusted_storage_hosts),
        keep_workload_env_values: args.keep_workload_env_values,
        sweeps: crate::config::Sweeps {
            // A zero interval would spin.
            interval: args.orphan_sweep_interval.max(Duration::from_secs(1)),
            grace: args.orphan_grace,
        },
        ttl_manual: args.default_ttl_manual.0,
        ttl_auto: args.default_ttl_auto.0,
        upload_bytes_per_second: Some(args.upload_bytes_per_second).filter(|r| *r > 0),
        auto: Policy {
            restore_phases: without_empty(args.auto_bundle_restore_phases),
            backup_phases: without_empty(args.auto_bundle_backup_phases),
            lookback: args.auto_bundle_lookback,
            max_per_namespace: args.max_auto_bundles_per_namespace,
            stall_after: args.auto_bundle_stall_after.0,
            max_stall_bundles_per_hour: args.max_stall_bundles_per_hour,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_flags_read_go_durations_and_refuse_negatives() {
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("90000ms"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("-1h"), Err("\"-1h\" is negative".into()));
        assert!(parse_duration("6 h").is_err());
        assert!(matches!(parse_ttl("never"), Ok(Ttl(None))));
        assert!(matches!(parse_ttl("0"), Ok(Ttl(Some(d))) if d.is_zero()));
        assert!(parse_ttl("-72h").is_err());
        assert!(matches!(parse_stall_after(""), Ok(StallAfter(None))));
        assert!(matches!(parse_stall_after("30m"), Ok(StallAfter(Some(d))) if d.as_secs() == 1800));
        assert!(parse_stall_after("0s").is_err());
    }

    #[test]
    fn redaction_patterns_are_checked_at_start() {
        use clap::Parser as _;
        let args = Args::try_parse_from([
            "operator",
            "--redaction-pattern",
            r"corp-[0-9a-f]{8}",
            "--redaction-pattern",
            "ticket-[0-9]+\n(?i)internal\\.example\\.com",
        ])
        .unwrap();
        assert_eq!(
            args.redaction_patterns,
            [
                r"corp-[0-9a-f]{8}",
                "ticket-[0-9]+",
                r"(?i)internal\.example\.com"
            ]
        );
        let refused = Args::try_parse_from(["operator", "--redaction-pattern", "corp-(unclosed"])
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains(r#""corp-(unclosed" is not a valid regex"#),
            "{refused}"
        );
    }

    #[test]
    fn site_rules_are_checked_at_start() {
        use clap::Parser as _;
        let rules =
            r#"[{"id": "proxy", "match": "proxy.corp", "title": "Proxy", "nextStep": "Ask NET."}]"#;
        let args = Args::try_parse_from(["operator", "--site-rules", rules]).unwrap();
        assert_eq!(args.site_rules.len(), 1);
        let none = Args::try_parse_from(["operator"]).unwrap();
        assert_eq!(none.site_rules.len(), 0);
        let bad = r#"[{"id": "proxy", "match": "(", "title": "Proxy", "nextStep": "Ask NET."}]"#;
        let refused = Args::try_parse_from(["operator", "--site-rules", bad])
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("site rule 0: match \"(\" is not a valid regex"),
            "{refused}"
        );
    }
}

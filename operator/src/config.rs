//! The operator's settings, resolved from its flags (see args.rs): what every controller
//! reads and nothing writes.

use crate::findings::SiteRules;
use std::{path::PathBuf, time::Duration};

pub(crate) use crate::gzip_members::Compression;

/// Settings of the DebugBundle controller and the automatic bundles.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// Where archives are spooled while being built: this process's own folder (see spool.rs).
    pub spool_dir: PathBuf,
    /// Bundles collected at the same time.
    pub concurrency: u16,
    /// How long a missing target is waited for (a bundle applied with its restore).
    pub target_wait: Duration,
    /// Attempts of a bundle whose failure may pass (object store unreachable).
    pub max_attempts: i32,
    /// How long one attempt may hold its collection slot, from taking it to the end of the
    /// upload (bundle/deadline.rs).
    pub bundle_deadline: Duration,
    pub limits: Limits,
    /// Retention of bundles made by hand, when their spec sets none (None: kept).
    pub ttl_manual: Option<Duration>,
    /// Retention of automatic bundles, when their spec sets none (None: kept).
    pub ttl_auto: Option<Duration>,
    /// Which Backups and Restores get automatic bundles.
    pub auto: Policy,
    /// Upload rate limit (None: as fast as the store takes it).
    pub upload_bytes_per_second: Option<u64>,
    /// How the bundle's content is compressed.
    pub compression: Compression,
    /// The garbage collector of archives no bundle refers to.
    pub sweeps: Sweeps,
    /// How long an unreachable store may hold a bundle's deletion before the finalizer goes
    /// without the archive (bundle/cleanup.rs).
    pub archive_delete_limit: Duration,
    /// The site's own diagnosis rules (`SITE_RULES`), validated at start.
    pub site_rules: SiteRules,
    /// Hosts a BSL may send its credential to besides its provider's own endpoint
    /// (storage/transport/trust.rs).
    pub trusted_storage_hosts: TrustedHosts,
    /// Literal env values of pods outside Velero's namespace are kept (masked by default).
    pub keep_workload_env_values: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            spool_dir: std::env::temp_dir(),
            concurrency: 4,
            target_wait: Duration::from_secs(120),
            max_attempts: 5,
            bundle_deadline: DEFAULT_BUNDLE_DEADLINE,
            limits: Limits::default(),
            ttl_manual: Some(Duration::from_secs(7 * 24 * 3600)),
            ttl_auto: Some(Duration::from_secs(3 * 24 * 3600)),
            auto: Policy::default(),
            upload_bytes_per_second: None,
            compression: Compression::default(),
            sweeps: Sweeps::default(),
            archive_delete_limit: Duration::from_secs(5 * 60),
            site_rules: SiteRules::default(),
            trusted_storage_hosts: TrustedHosts::default(),
            keep_workload_env_values: false,
        }
    }
}

/// When and how the garbage collector of archives (orphans.rs) sweeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sweeps {
    pub interval: Duration,
    /// Archives and uploads younger than this are left alone.
    pub grace: Duration,
}

impl Default for Sweeps {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(3600),
            grace: Duration::from_secs(15 * 60),
        }
    }
}

const MIB: u64 = 1024 * 1024;

/// BUNDLE_DEADLINE by default: a bundle at its size cap (MAX_BUNDLE_BYTES) with slow logs
/// (LOG_TIMEOUT_SECONDS each) takes minutes; half an hour is far past that and still frees a
/// hung slot within the hour.
pub(crate) const DEFAULT_BUNDLE_DEADLINE: Duration = Duration::from_secs(30 * 60);

/// Logs read at the same time by default. Measured with `make bench --log-concurrency-sweep`
/// (BENCHMARKS.md): the log source (kubelet behind the API server) serves each stream at a
/// pace of its own, so more streams at once read more per second, up to the cores it has.
pub(crate) const DEFAULT_LOG_CONCURRENCY: usize = 8;

/// A cap as warnings name it: `1 MiB` when a whole number of MiB, else in bytes.
pub(crate) fn size_text(bytes: u64) -> String {
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// Limits that keep one bundle from stalling or growing without bound.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    /// Timeout of one API request (a list page, a get).
    pub api_timeout: Duration,
    /// Timeout of reading one container's log.
    pub log_timeout: Duration,
    /// Page size of list calls.
    pub page_size: u32,
    /// At most this many objects of one list are kept.
    pub max_list_items: usize,
    /// Logs read at the same time (see LOG_CONCURRENCY in args.rs for how it was chosen).
    pub log_concurrency: usize,
    /// Content of one bundle (before compression): bytes are taken from it as they are
    /// spooled, so a file is cut where it runs out and later ones are left out, each with a
    /// warning (see `collect::budget`).
    pub max_bundle_bytes: u64,
    /// Longest line of a log kept whole; the rest of a longer one is skipped as it is read,
    /// so one line of any size (a binary log, a JSON dump) never sits in memory.
    pub max_line_bytes: usize,
    /// Longest line of an object-store JSON file kept whole. Velero writes each of these on
    /// one line, and a results file with thousands of warnings is megabytes long, so its
    /// cap is the size the summary parses; logs have their own, smaller one.
    pub max_json_line_bytes: usize,
    /// Bytes one object-store file may decompress to (and be downloaded as): a small gzip
    /// that inflates to gigabytes stops here.
    pub max_inflated_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            api_timeout: Duration::from_secs(30),
            log_timeout: Duration::from_secs(120),
            page_size: 250,
            max_list_items: 5000,
            log_concurrency: DEFAULT_LOG_CONCURRENCY,
            max_bundle_bytes: 512 * 1024 * 1024,
            max_line_bytes: MIB as usize,
            max_json_line_bytes: 16 * MIB as usize,
            // Room for the log of a backup of a few hundred thousand items; a quarter of the
            // bundle, so the other parts still fit.
            max_inflated_bytes: 128 * MIB,
        }
    }
}

/// Which Backups and Restores get an automatic DebugBundle: finished ones in these phases, and
/// running ones that stopped moving.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Policy {
    /// Final Restore phases that get a bundle (default: PartiallyFailed).
    pub restore_phases: Vec<String>,
    /// Final Backup phases that get a bundle (default: none).
    pub backup_phases: Vec<String>,
    /// Operations that ended longer ago than this get none (no stampede on a first install).
    pub lookback: Duration,
    /// Automatic bundles kept per namespace; the oldest beyond it are deleted.
    pub max_per_namespace: usize,
    /// A running operation that has not moved this long gets a bundle (None: never).
    pub stall_after: Option<Duration>,
    /// Stall bundles made at the most in any hour, over every namespace and kind.
    pub max_stall_bundles_per_hour: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            restore_phases: vec!["PartiallyFailed".into()],
            backup_phases: Vec::new(),
            lookback: Duration::from_secs(6 * 3600),
            stall_after: Some(Duration::from_secs(30 * 60)),
            max_per_namespace: 20,
            max_stall_bundles_per_hour: 10,
        }
    }
}

impl Policy {
    pub fn phases(&self, kind: &str) -> &[String] {
        match kind {
            "Restore" => &self.restore_phases,
            _ => &self.backup_phases,
        }
    }

    /// Whether operations of `kind` are watched: for a final phase or for stalls.
    pub fn watches(&self, kind: &str) -> bool {
        !self.phases(kind).is_empty() || self.stall_after.is_some()
    }
}

/// Hosts that may receive credentials whatever the provider's own endpoint is: `host` (https
/// on 443), `host:port` (https on that port), or `http://host:port` (plain http on that port,
/// for an emulator on a lab machine: said in full, never implied).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TrustedHosts(Vec<TrustedHost>);

/// One trusted endpoint: its scheme, host (lower case) and port.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TrustedHost {
    scheme: String,
    host: String,
    port: u16,
}

impl TrustedHosts {
    /// The entries as given; one that is not a host (a path, a user, an unknown scheme) trusts
    /// nothing.
    pub(crate) fn new<S: AsRef<str>>(hosts: impl IntoIterator<Item = S>) -> Self {
        TrustedHosts(
            hosts
                .into_iter()
                .filter_map(|h| TrustedHost::parse(h.as_ref()))
                .collect(),
        )
    }

    /// Whether `scheme://host:port` is trusted: the port is part of what is trusted (another
    /// service on the same host is another party), and so is the scheme.
    pub(crate) fn contains(&self, scheme: &str, host: &str, port: u16) -> bool {
        self.0.iter().any(|t| {
            t.scheme.eq_ignore_ascii_case(scheme)
                && t.host.eq_ignore_ascii_case(host)
                && t.port == port
        })
    }
}

impl TrustedHost {
    fn parse(entry: &str) -> Option<TrustedHost> {
        let entry = entry.trim();
        if entry.is_empty() {
            return None;
        }
        let with_scheme = if entry.contains("://") {
            entry.to_string()
        } else {
            format!("https://{entry}")
        };
        let url = reqwest::Url::parse(&with_scheme).ok()?;
        let plain = url.username().is_empty()
            && url.password().is_none()
            && matches!(url.path(), "" | "/")
            && url.query().is_none()
            && url.fragment().is_none();
        if !plain || !matches!(url.scheme(), "https" | "http") {
            return None;
        }
        Some(TrustedHost {
            scheme: url.scheme().to_string(),
            host: url.host_str()?.to_ascii_lowercase(),
            port: url.port_or_known_default()?,
        })
    }
}

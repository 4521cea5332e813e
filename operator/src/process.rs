//! The operator process: flags, logging, the HTTP endpoints, leader election, and the
//! controllers (the DebugBundle controller and the automatic-bundle watches).

use std::{
    path::PathBuf,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use anyhow::Context as _;
use futures::FutureExt;
use kube::{Api, Client};
use tokio_util::sync::CancellationToken;
use velero_debug_crd::DebugBundle;

use crate::{
    api_timeout::AnswerTimeoutLayer,
    auto_bundles, bundle,
    config::{Compression, Config, Limits, Policy},
    context::Context,
    duration,
    findings::SiteRules,
    health::Readiness,
    http,
    install_record::{self, InstallRecord},
    leader,
    metrics::Metrics,
    orphans, own_crd, probe,
    redact::Redactor,
    request_tally::RequestTally,
    spool::ProcessSpool,
    storage::location,
};

fn without_empty(phases: Vec<String>) -> Vec<String> {
    phases.into_iter().filter(|p| !p.is_empty()).collect()
}

/// The operator's flags; each also reads an environment variable (the chart sets those).
#[derive(clap::Parser, Debug)]
#[command(version, about = "Collects Velero debug bundles into the object store")]
pub struct Args {
    /// Namespace of Velero (where DebugBundles live). Empty: every namespace.
    #[arg(long, env = "VELERO_NAMESPACE", default_value = "velero")]
    namespace: String,
    /// Folder where archives are built before upload (size it for the largest bundle); each
    /// process works in a folder of its own there, and removes those of dead processes.
    #[arg(long, env = "SPOOL_DIR", default_value_os_t = std::env::temp_dir())]
    spool_dir: PathBuf,
    /// Bundles collected at the same time.
    #[arg(long, env = "MAX_CONCURRENT_BUNDLES", default_value_t = 4)]
    max_concurrent_bundles: u16,
    /// Seconds a DebugBundle waits for a target that does not exist yet.
    #[arg(long, env = "TARGET_WAIT_SECONDS", default_value_t = 120)]
    target_wait_seconds: u64,
    /// Attempts for failures that may pass (object store unreachable) before Failed.
    #[arg(long, env = "MAX_ATTEMPTS", default_value_t = 5)]
    max_attempts: i32,
    /// How long one attempt at a bundle may hold its collection slot, from taking it to the
    /// end of the upload; past it the attempt stops (the upload aborted, the spool freed) and
    /// is retried as DeadlineExceeded, counted against MAX_ATTEMPTS. With
    /// UPLOAD_BYTES_PER_SECOND set, leave room for the archive's upload at that rate.
    #[arg(long, env = "BUNDLE_DEADLINE", default_value = "30m", value_parser = parse_duration)]
    bundle_deadline: Duration,
    /// Timeout of one API request, in seconds.
    #[arg(long, env = "API_TIMEOUT_SECONDS", default_value_t = 30)]
    api_timeout_seconds: u64,
    /// Timeout of reading one container log, in seconds.
    #[arg(long, env = "LOG_TIMEOUT_SECONDS", default_value_t = 120)]
    log_timeout_seconds: u64,
    /// Restore phases that get an automatic DebugBundle (comma list; empty: none).
    #[arg(long, env = "AUTO_BUNDLE_RESTORE_PHASES", default_value = "PartiallyFailed", value_delimiter = ',', value_parser = parse_phase)]
    auto_bundle_restore_phases: Vec<String>,
    /// Backup phases that get an automatic DebugBundle (comma list; empty: none).
    #[arg(long, env = "AUTO_BUNDLE_BACKUP_PHASES", default_value = "", value_delimiter = ',', value_parser = parse_phase)]
    auto_bundle_backup_phases: Vec<String>,
    /// Backups and Restores that ended longer ago than this get no automatic bundle.
    #[arg(long, env = "AUTO_BUNDLE_LOOKBACK", default_value = "6h", value_parser = parse_duration)]
    auto_bundle_lookback: Duration,
    /// Automatic bundles kept per namespace; the oldest beyond it are deleted.
    #[arg(long, env = "MAX_AUTO_BUNDLES_PER_NAMESPACE", default_value_t = 20)]
    max_auto_bundles_per_namespace: usize,
    /// Retention of bundles made by hand whose spec sets no ttlAfterFinished ("never": kept).
    #[arg(long, env = "DEFAULT_TTL_MANUAL", default_value = "168h", value_parser = parse_ttl)]
    default_ttl_manual: Ttl,
    /// Retention of automatic bundles whose spec sets no ttlAfterFinished ("never": kept).
    #[arg(long, env = "DEFAULT_TTL_AUTO", default_value = "72h", value_parser = parse_ttl)]
    default_ttl_auto: Ttl,
    /// Upload rate limit in bytes per second (0: none), to spare a shared link.
    #[arg(long, env = "UPLOAD_BYTES_PER_SECOND", default_value_t = 0)]
    upload_bytes_per_second: u64,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "METRICS_ADDR", default_value = "0.0.0.0:8080")]
    metrics_addr: std::net::SocketAddr,
    /// Run the controllers only while holding the leader Lease (several replicas).
    #[arg(long, env = "LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    leader_election: bool,
    /// Name of the leader Lease, in Velero's namespace.
    #[arg(long, env = "LEASE_NAME", default_value = "velero-debug-operator")]
    lease_name: String,
    /// Identity of this process in the Lease (the pod's name; default: host name and pid).
    #[arg(long, env = "POD_NAME")]
    pod_name: Option<String>,
    /// Content of one bundle before compression, in bytes; taken from as files are written, so
    /// the file that reaches it is cut and later ones are left out, each with a warning. The
    /// spool folder needs this much per collection slot.
    #[arg(long, env = "MAX_BUNDLE_BYTES", default_value_t = 512 * 1024 * 1024)]
    max_bundle_bytes: u64,
    /// Bytes one object-store file (Velero's log or results of the target) may decompress
    /// to; the rest is left out with a warning, so a small gzip that inflates to gigabytes
    /// stops here. Raise it with MAX_BUNDLE_BYTES for backups whose own log is larger.
    #[arg(long, env = "MAX_INFLATED_BYTES", default_value_t = 128 * 1024 * 1024)]
    max_inflated_bytes: u64,
    /// How often the garbage collector looks for archives and open uploads no DebugBundle
    /// refers to, in every writable storage location (and once at start).
    #[arg(long, env = "ORPHAN_SWEEP_INTERVAL", default_value = "1h", value_parser = parse_duration)]
    orphan_sweep_interval: Duration,
    /// Archives and uploads younger than this are never collected.
    #[arg(long, env = "ORPHAN_GRACE", default_value = "15m", value_parser = parse_duration)]
    orphan_grace: Duration,
    /// How long a deleted bundle waits for an unreachable store to delete its archive; then it
    /// goes without (a Warning event ArchiveLeft names the object, which the garbage collector
    /// takes later).
    #[arg(long, env = "ARCHIVE_DELETE_LIMIT", default_value = "5m", value_parser = parse_duration)]
    archive_delete_limit: Duration,
    /// The client container logs are read with: `direct`, a connection per log that wakes
    /// once per 32 KiB (log_client.rs), or `kube`, kube's own client, as every other request
    /// (the way back should the direct one meet a proxy or server it does not suit).
    #[arg(long, env = "LOG_CLIENT", value_enum, default_value_t = LogClient::Direct)]
    log_client: LogClient,
    /// Container logs of one bundle read at the same time.
    #[arg(long, env = "LOG_CONCURRENCY", default_value_t = crate::config::DEFAULT_LOG_CONCURRENCY,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=64))]
    log_concurrency: usize,
    /// gzip level of the archive, 1 (fastest) to 9 (smallest); see BENCHMARKS.md for what each
    /// costs.
    #[arg(long, env = "COMPRESSION_LEVEL", default_value_t = Compression::default().level,
          value_parser = clap::value_parser!(u32).range(1..=9))]
    compression_level: u32,
    /// Threads one large file is compressed on (ranges of 8 MiB or more, each a gzip member);
    /// 1 suits a pod limited to one core. Logs read at the same time are compressed at the
    /// same time whatever this is.
    #[arg(long, env = "COMPRESSION_THREADS", default_value_t = Compression::default().threads,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=64))]
    compression_threads: usize,
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
    redaction_patterns: Vec<String>,
    /// The site's own diagnosis rules: a JSON list of {id, match (a regex), title, severity,
    /// layer, nextStep}, reported as `site-<id>` findings. Refused at start when invalid.
    #[arg(long, env = "SITE_RULES", default_value = "", value_parser = parse_site_rules)]
    site_rules: SiteRules,
    /// A host (HOST or HOST:PORT) a BackupStorageLocation may send its credential to besides
    /// its provider's own endpoint for its account: an emulator, Azure Stack, a private
    /// endpoint's own name. Repeat the flag, or a comma list in the environment variable.
    #[arg(
        long = "trusted-storage-host",
        env = "TRUSTED_STORAGE_HOSTS",
        value_delimiter = ','
    )]
    trusted_storage_hosts: Vec<String>,
    /// Log as JSON (for clusters) instead of text.
    #[arg(long, env = "LOG_JSON", default_value_t = false)]
    log_json: bool,
    /// Server-side apply this build's DebugBundle CRD at start (Helm never upgrades `crds/`);
    /// needs get/patch on that one CRD.
    #[arg(long, env = "APPLY_CRD", default_value_t = false, action = clap::ArgAction::Set)]
    apply_crd: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
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

/// Runs the operator until SIGTERM/SIGINT. With leader election the controllers run in terms
/// (see leader.rs): a lost lease ends the term, and the process waits to lead again.
pub async fn run(args: Args) -> anyhow::Result<()> {
    // One TLS crypto provider for the whole process (kube, the S3 clients).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    if let Some(Command::Probe {
        url,
        timeout_seconds,
    }) = &args.command
    {
        return Ok(probe::get(url, Duration::from_secs(*timeout_seconds)).await?);
    }
    init_logging(args.log_json);
    if let Some(Command::Uninstall {
        delete_bundles,
        timeout_seconds,
    }) = &args.command
    {
        return uninstall(
            &args,
            *delete_bundles,
            Duration::from_secs(*timeout_seconds),
        )
        .await;
    }
    operate(args).await
}

/// The `uninstall` subcommand: releases every DebugBundle's finalizer.
async fn uninstall(args: &Args, delete_bundles: bool, timeout: Duration) -> anyhow::Result<()> {
    let (client, _) = counting_clients(
        Arc::new(RequestTally::default()),
        Duration::from_secs(args.api_timeout_seconds),
        LogClient::Kube,
    )
    .await?;
    let namespace = Some(args.namespace.as_str()).filter(|n| !n.is_empty());
    let report = crate::uninstall::run(client, namespace, delete_bundles, timeout).await?;
    tracing::info!(
        deleted = report.deleted,
        released = report.released.len(),
        "uninstall: no DebugBundle holds the operator's finalizer"
    );
    Ok(())
}

/// The operator proper: serves the HTTP endpoints and runs terms of the controllers until
/// SIGTERM/SIGINT.
async fn operate(args: Args) -> anyhow::Result<()> {
    // Before the lease: a standby clears what its pod's last container left, and its own
    // folder is ready when it takes over.
    let spool = ProcessSpool::claim(&args.spool_dir)?;
    // Empty lines of REDACTION_PATTERNS (a trailing newline) are no pattern.
    let redactor = Redactor::with_extra_patterns(&without_empty(args.redaction_patterns.clone()))
        .context("REDACTION_PATTERNS")?;
    let redactor = Arc::new(redactor);
    let requests = Arc::new(RequestTally::default());
    let (client, log_client) = counting_clients(
        requests.clone(),
        Duration::from_secs(args.api_timeout_seconds),
        args.log_client,
    )
    .await?;
    if args.apply_crd {
        own_crd::apply(client.clone(), Duration::from_secs(60)).await?;
    }
    let namespace = Some(args.namespace.clone()).filter(|n| !n.is_empty());
    tracing::info!(
        ?namespace,
        version = bundle::OPERATOR_VERSION,
        site_rules = args.site_rules.len(),
        "starting"
    );

    let shutdown = cancelled_on_signal();
    let metrics = Arc::new(Metrics::new());
    let readiness = Arc::new(Readiness::default());
    let (bound, server) = http::serve(
        args.metrics_addr,
        metrics.clone(),
        readiness.clone(),
        shutdown.clone(),
    )
    .await?;
    tracing::info!(%bound, "serving /metrics, /healthz, /readyz");
    // A standby is ready: it serves and takes over when the leader goes.
    readiness.set_started();

    let election = args.leader_election.then(|| Election {
        namespace: namespace.clone().unwrap_or_else(|| "default".into()),
        lease: args.lease_name.clone(),
        identity: args.pod_name.clone().unwrap_or_else(default_identity),
    });
    let terms = Terms {
        client,
        log_client,
        api_timeout: Duration::from_secs(args.api_timeout_seconds),
        config: Config {
            spool_dir: spool.path().to_path_buf(),
            ..config_from(args)
        },
        redactor,
        requests,
        metrics,
        readiness,
        namespace,
        cluster_mark: Mutex::default(),
        writer: install_record::new_writer(),
        registered: Default::default(),
    };
    while !shutdown.is_cancelled() {
        match terms.serve(election.as_ref(), &shutdown).await {
            None | Some(TermEnd::Stopped) => break,
            Some(TermEnd::Lost(loss)) => {
                tracing::warn!(%loss, "no longer leading; what was in flight is left for the next leader; waiting for the lease again")
            }
        }
    }
    shutdown.cancel();
    let _ = server.await;
    Ok(())
}

/// A token cancelled on SIGTERM/SIGINT.
fn cancelled_on_signal() -> CancellationToken {
    let shutdown = CancellationToken::new();
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            terminated().await;
            tracing::info!("SIGTERM/SIGINT: stopping; work in flight is left for the next leader");
            shutdown.cancel();
        }
    });
    shutdown
}

/// What every term of the controllers starts from.
struct Terms {
    client: Client,
    log_client: Client,
    api_timeout: Duration,
    config: Config,
    redactor: Arc<Redactor>,
    requests: Arc<RequestTally>,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    namespace: Option<String>,
    /// The cluster mark the last term read (see `own_crd::term_mark`).
    cluster_mark: Mutex<String>,
    /// This process in the install record (install_record.rs), and whether a term registered
    /// it there.
    writer: String,
    registered: std::sync::atomic::AtomicBool,
}

impl Terms {
    /// This term's mark and install record: the writer registered in the record of the
    /// namespace served. Unregistered (the record missing or unwritable, and no earlier term
    /// registered it), the term marks nothing and collects nothing, as without a cluster mark.
    async fn install(&self, cluster: &str) -> (String, Option<InstallRecord>) {
        use std::sync::atomic::Ordering;
        let Some(namespace) = self.namespace.as_deref() else {
            // No garbage collector serves all namespaces (see `controllers`).
            return (location::install_mark(cluster, None, &self.writer), None);
        };
        if cluster.is_empty() {
            return (String::new(), None);
        }
        let record = InstallRecord::new(self.client.clone(), namespace, self.api_timeout);
        match record.register(&self.writer).await {
            Ok(()) => self.registered.store(true, Ordering::Relaxed),
            Err(e) if self.registered.load(Ordering::Relaxed) => {
                tracing::info!(error = %e, writer = %self.writer, "the install record could not be refreshed; this process is registered already")
            }
            Err(e) => {
                tracing::warn!(error = %e, "the archives of this term get no mark and nothing is garbage-collected");
                return (String::new(), None);
            }
        }
        let mark = location::install_mark(cluster, Some(namespace), &self.writer);
        (mark, Some(record))
    }

    /// Leads one term (after the lease, with an election) and runs the controllers until it
    /// ends; None when SIGTERM comes before the term starts.
    async fn serve(
        &self,
        election: Option<&Election>,
        shutdown: &CancellationToken,
    ) -> Option<TermEnd> {
        // Read before the lease: once it is held, the term's fence is running.
        let read = tokio::select! {
            mark = own_crd::cluster_mark(self.client.clone(), self.api_timeout) => mark,
            _ = shutdown.cancelled() => return None,
        };
        let cluster_mark = {
            let mut known = self
                .cluster_mark
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            own_crd::term_mark(read, &mut known)
        };
        let install = tokio::select! {
            install = self.install(&cluster_mark) => install,
            _ = shutdown.cancelled() => return None,
        };
        let leadership = match election {
            Some(election) => Some(election.acquire(self.client.clone(), shutdown).await?),
            None => None,
        };
        let term = shutdown.child_token();
        let ctx = Arc::new(
            Context::new(
                self.client.clone(),
                self.config.clone(),
                self.redactor.clone(),
                self.requests.clone(),
                self.metrics.clone(),
                term.clone(),
                install,
            )
            .with_log_client(self.log_client.clone()),
        );
        self.metrics.leader.set(1);
        let controllers = controllers(self.namespace.clone(), ctx, self.readiness.clone());
        let end = match leadership {
            None => serve_term(controllers, std::future::pending(), &term).await,
            Some(mut l) => {
                let end = serve_term(controllers, l.lost(), &term).await;
                match end {
                    TermEnd::Stopped => l.release().await,
                    TermEnd::Lost(_) => l.abandon().await,
                }
                end
            }
        };
        self.metrics.leader.set(0);
        Some(end)
    }
}

/// Leader election's settings.
struct Election {
    namespace: String,
    lease: String,
    identity: String,
}

impl Election {
    /// Waits for the lease (a standby stays here); None on SIGTERM. An error (the API server
    /// unreachable, say) is logged and the wait starts over: the process never exits for it.
    async fn acquire(
        &self,
        client: Client,
        shutdown: &CancellationToken,
    ) -> Option<leader::Leadership> {
        loop {
            let acquire = leader::acquire(
                client.clone(),
                &self.namespace,
                &self.lease,
                &self.identity,
                shutdown,
            );
            // Setting the lease manager up may wait on an unreachable API server.
            let acquired = tokio::select! {
                acquired = acquire => acquired,
                _ = shutdown.cancelled() => return None,
            };
            match acquired {
                Ok(leadership) => return leadership,
                Err(e) => {
                    tracing::error!(error = %e, lease = %self.lease, "waiting for the leader lease failed; trying again");
                    tokio::select! {
                        _ = tokio::time::sleep(ELECTION_RETRY) => {}
                        _ = shutdown.cancelled() => return None,
                    }
                }
            }
        }
    }
}

/// How long after a failed wait for the lease the next starts.
const ELECTION_RETRY: Duration = Duration::from_secs(5);

/// How a term ended.
#[derive(Debug, PartialEq)]
enum TermEnd {
    /// SIGTERM (the controllers stopped): the process exits.
    Stopped,
    /// The lease was lost: the process waits to lead again.
    Lost(leader::Loss),
}

/// Runs `controllers` (which stop once `term` is cancelled) until `lost` resolves or the
/// process stops (`term`'s parent cancelled); returns once they have stopped (after a lost
/// lease, at most [`STOP_LIMIT`] later).
async fn serve_term(
    controllers: impl Future<Output = ()>,
    lost: impl Future<Output = leader::Loss>,
    term: &CancellationToken,
) -> TermEnd {
    tokio::pin!(controllers);
    tokio::select! {
        _ = &mut controllers => TermEnd::Stopped,
        loss = lost => {
            tracing::error!(%loss, "the leader lease is lost; stopping everything in flight");
            term.cancel();
            if tokio::time::timeout(STOP_LIMIT, controllers).await.is_err() {
                tracing::warn!(limit = ?STOP_LIMIT, "what was in flight did not stop in time; it is dropped");
            }
            TermEnd::Lost(loss)
        }
    }
}

/// How long the controllers of a term whose lease was lost may take to stop before what they
/// still run is dropped: the process must stand by, ready to lead again, and write nothing
/// more (every step checks the term, but a store or API server that does not answer could
/// hold one for minutes).
const STOP_LIMIT: Duration = Duration::from_secs(10);

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,kube=warn,aws_config=warn".into());
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if json {
        fmt.json().init();
    } else {
        fmt.init();
    }
}

/// Clients whose every API request is counted, so each bundle's manifest says how many it
/// cost, and gets its answer within `api_timeout` (api_timeout.rs): one for the API, one
/// that reads container logs (log_client.rs).
async fn counting_clients(
    requests: Arc<RequestTally>,
    api_timeout: Duration,
    log_client: LogClient,
) -> anyhow::Result<(Client, Client)> {
    let count =
        tower::util::MapRequestLayer::new(move |req: ::http::Request<kube::client::Body>| {
            requests.record(&req);
            req
        });
    let answer_timeout = AnswerTimeoutLayer::new(api_timeout);
    let mut config = kube::Config::infer().await?;
    config.proxy_url = crate::proxy::api_server_proxy(
        &crate::proxy::Proxies::from_env(),
        &config.cluster_url,
        config.proxy_url.as_ref(),
        crate::proxy::env_https_proxy().as_deref(),
    );
    if let Some(proxy) = &config.proxy_url {
        let route = crate::proxy::Route::through(proxy);
        tracing::info!("the API server is reached{}", route.phrase());
    }
    let api = kube::client::ClientBuilder::try_from(config.clone())?
        .with_layer(&count)
        .with_layer(&answer_timeout)
        .build();
    // The log client connects directly; through a proxy, logs are read as the rest is.
    let logs = match (log_client, &config.proxy_url) {
        (LogClient::Kube, _) | (_, Some(_)) => api.clone(),
        (LogClient::Direct, None) => {
            crate::log_client::builder(&config, crate::log_client::LOW_WATER)?
                .with_layer(&count)
                .with_layer(&answer_timeout)
                .build()
        }
    };
    Ok((api, logs))
}

/// What container logs are read with (`LOG_CLIENT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogClient {
    Direct,
    Kube,
}

/// This process in the Lease when the pod's name is not given: host name and pid.
fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{}-{}", host.trim(), std::process::id())
}

fn config_from(args: Args) -> Config {
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
        },
    }
}

/// The DebugBundle controller and the automatic-bundle watches the policy enables.
async fn controllers(namespace: Option<String>, ctx: Arc<Context>, readiness: Arc<Readiness>) {
    let bundles: Api<DebugBundle> = match &namespace {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    };
    let health = readiness.watch("debugbundles");
    let mut tasks = vec![bundle::run(bundles.clone(), ctx.clone(), health).boxed()];
    // Archives live in the storage locations of Velero's namespace.
    if let Some(velero_namespace) = &namespace {
        tasks.push(orphans::run(bundles, velero_namespace.clone(), ctx.clone()).boxed());
    }
    for (kind, watch) in [("Restore", "restores"), ("Backup", "backups")] {
        if !ctx.config.auto.phases(kind).is_empty() {
            let health = readiness.watch(watch);
            tasks.push(auto_bundles::run(kind, namespace.clone(), ctx.clone(), health).boxed());
        }
    }
    futures::future::join_all(tasks).await;
}

async fn terminated() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// Controllers as `controllers` runs them: until the term ends; `stopped` says they did.
    async fn controllers_of(term: CancellationToken, stopped: Arc<AtomicBool>) {
        term.cancelled().await;
        // Stopping takes a while (a reconcile winding down): the term waits for it.
        tokio::task::yield_now().await;
        stopped.store(true, Ordering::SeqCst);
    }

    #[tokio::test]
    async fn a_lost_lease_ends_the_term_once_its_controllers_stopped_and_not_the_process() {
        let process = CancellationToken::new();
        let term = process.child_token();
        let stopped = Arc::new(AtomicBool::new(false));
        let taken = leader::Loss::TakenBy("operator-1".into());
        let end = serve_term(
            controllers_of(term.clone(), stopped.clone()),
            std::future::ready(taken.clone()),
            &term,
        )
        .await;
        assert_eq!(end, TermEnd::Lost(taken));
        assert!(stopped.load(Ordering::SeqCst));
        assert!(term.is_cancelled());
        assert!(
            !process.is_cancelled(),
            "the process goes on, waiting for the lease"
        );
        assert!(
            !process.child_token().is_cancelled(),
            "the next term starts afresh"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn controllers_that_do_not_stop_after_a_lost_lease_are_dropped_after_the_limit() {
        let term = CancellationToken::new();
        let taken = leader::Loss::TakenBy("operator-1".into());
        let started = tokio::time::Instant::now();
        let end = serve_term(
            std::future::pending::<()>(),
            std::future::ready(taken.clone()),
            &term,
        )
        .await;
        assert_eq!(end, TermEnd::Lost(taken));
        assert_eq!(started.elapsed(), STOP_LIMIT);
    }

    #[tokio::test]
    async fn sigterm_ends_the_term_and_the_process() {
        let process = CancellationToken::new();
        let term = process.child_token();
        let stopped = Arc::new(AtomicBool::new(false));
        process.cancel();
        let end = serve_term(
            controllers_of(term.clone(), stopped.clone()),
            std::future::pending(),
            &term,
        )
        .await;
        assert_eq!(end, TermEnd::Stopped);
        assert!(stopped.load(Ordering::SeqCst));
    }

    #[test]
    fn duration_flags_read_go_durations_and_refuse_negatives() {
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("90000ms"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("-1h"), Err("\"-1h\" is negative".into()));
        assert!(parse_duration("6 h").is_err());
        assert!(matches!(parse_ttl("never"), Ok(Ttl(None))));
        assert!(matches!(parse_ttl("0"), Ok(Ttl(Some(d))) if d.is_zero()));
        assert!(parse_ttl("-72h").is_err());
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

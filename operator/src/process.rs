//! The operator process, wired: its clients, logging, the HTTP endpoints, the terms of
//! leadership (leader.rs) and the controllers each term runs (the DebugBundle controller and
//! the automatic-bundle watches). The flags are args.rs's.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Context as _;
use futures::FutureExt;
use kube::{Api, Client};
use tokio_util::sync::CancellationToken;
use velero_debug_crd::DebugBundle;

use crate::{
    api_timeout::AnswerTimeoutLayer,
    args::{Args, Command, LogClient, config_from, without_empty},
    auto_bundles, bundle,
    config::Config,
    context::Context,
    health::Readiness,
    http, install_record,
    leader::{Election, TermEnd, Terms},
    metrics::Metrics,
    orphans, own_crd, probe,
    redact::Redactor,
    request_tally::RequestTally,
    spool::ProcessSpool,
};

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
    let Clients { api: client, .. } = counting_clients(
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
    let Clients {
        api: client,
        logs: log_client,
        uncounted: uncounted_client,
    } = counting_clients(
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
        uncounted_client,
        api_timeout: Duration::from_secs(args.api_timeout_seconds),
        config: Config {
            spool_dir: spool.path().to_path_buf(),
            ..config_from(args)
        },
        redactor,
        requests,
        metrics,
        namespace: namespace.clone(),
        cluster_mark: Mutex::default(),
        writer: install_record::new_writer(),
        registered: Default::default(),
    };
    while !shutdown.is_cancelled() {
        let run = |ctx| controllers(namespace.clone(), ctx, readiness.clone());
        match terms.serve(election.as_ref(), &shutdown, run).await {
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

/// The process's clients, each request answered within `api_timeout` (api_timeout.rs).
struct Clients {
    /// For the API; every request counted, so each bundle's manifest says how many it cost.
    api: Client,
    /// Reads container logs (log_client.rs); counted.
    logs: Client,
    /// For background reads no bundle asked for (the stall watch's); not counted.
    uncounted: Client,
}

async fn counting_clients(
    requests: Arc<RequestTally>,
    api_timeout: Duration,
    log_client: LogClient,
) -> anyhow::Result<Clients> {
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
    let uncounted = kube::client::ClientBuilder::try_from(config.clone())?
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
    Ok(Clients {
        api,
        logs,
        uncounted,
    })
}

/// This process in the Lease when the pod's name is not given: host name and pid.
fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{}-{}", host.trim(), std::process::id())
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
    // One bound on stall bundles an hour for both watches.
    let stall_budget = Arc::new(auto_bundles::StallBudget::new(
        ctx.config.auto.max_stall_bundles_per_hour,
    ));
    if let Some(velero_namespace) = &namespace {
        tasks.push(record_pods(velero_namespace.clone(), ctx.clone()).boxed());
    }
    for (kind, watch) in [("Restore", "restores"), ("Backup", "backups")] {
        if ctx.config.auto.watches(kind) {
            let health = readiness.watch(watch);
            let budget = stall_budget.clone();
            tasks.push(
                auto_bundles::run(kind, namespace.clone(), ctx.clone(), health, budget).boxed(),
            );
        }
    }
    futures::future::join_all(tasks).await;
}

/// Records how the pods of Velero's data path end, for the bundles made after Velero deleted
/// them (recorder/).
async fn record_pods(velero_namespace: String, ctx: Arc<Context>) {
    let metrics = ctx.metrics.clone();
    crate::recorder::run(
        ctx.recorder.clone(),
        ctx.uncounted_client.clone(),
        velero_namespace,
        ctx.config.limits.api_timeout,
        ctx.shutdown.clone(),
        move |n| {
            metrics.recorded_pods.set(n as i64);
        },
    )
    .await
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

//! `kubectl velero-debug`: create, follow and download DebugBundles. This file only parses the
//! command line and joins the modules; exit statuses are in exit.rs.

#[cfg(test)]
mod api_mock;
mod args;
mod cluster;
mod create;
mod describe;
mod download;
mod exit;
mod output;
mod refresh;
mod since;
mod summary;
mod wait;

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use anyhow::{Context, bail};
use clap::{CommandFactory, Parser};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Event;
use kube::{
    Api, Client,
    api::{ListParams, PostParams},
};
use velero_debug_crd::{DebugBundle, duration, printable};

use crate::{
    args::{
        Cli, ClusterArgs, Command, CompletionArgs, CreateArgs, CreateTarget, DownloadArgs, GetArgs,
        ListArgs, ListFormat, ObjectFormat, RefreshUrlArgs, SummaryArgs, WaitArgs,
    },
    create::TargetKind,
    download::{DownloadError, UrlState},
    exit::ExitStatus,
    wait::Outcome,
};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version exit 0; a usage error exits 4, keeping 2 for `wait`'s timeout.
        Err(e) if e.use_stderr() => {
            let _ = e.print();
            return ExitStatus::Error.into();
        }
        Err(e) => e.exit(),
    };
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(status) => status.into(),
        Err(error) => {
            // Each error's message already names its cause; `{:#}` would repeat the chain. It
            // may quote the cluster (an API server's message, a name).
            eprintln!("error: {}", printable(&error.to_string()));
            exit_status_of(&error).into()
        }
    }
}

/// A checksum mismatch has its own status, so scripts can tell it from a network failure.
fn exit_status_of(error: &anyhow::Error) -> ExitStatus {
    match error.downcast_ref::<DownloadError>() {
        Some(DownloadError::ChecksumMismatch { .. }) => ExitStatus::ChecksumMismatch,
        _ => ExitStatus::Error,
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitStatus> {
    if let Command::Completion(args) = &cli.command {
        return print_completion(args);
    }
    let namespace = cli.cluster.namespace.clone();
    if let Command::Create(target) = &cli.command {
        return create(&cli.cluster, &namespace, target).await;
    }
    let client = cluster::client(&cli.cluster).await?;
    let api: Api<DebugBundle> = Api::namespaced(client.clone(), &namespace);
    match cli.command {
        Command::Create(_) | Command::Completion(_) => unreachable!("handled above"),
        Command::Wait(args) => wait_for(&api, &args).await,
        Command::Download(args) => download(&api, &args).await,
        Command::Summary(args) => print_summary(&api, &args).await,
        Command::List(args) => list(client, &namespace, &args).await,
        Command::Get(args) => get(&api, &args).await,
        Command::Describe(args) => describe_bundle(&api, client, &namespace, &args).await,
        Command::RefreshUrl(args) => refresh_url(&api, &args).await,
    }
}

fn print_completion(args: &CompletionArgs) -> anyhow::Result<ExitStatus> {
    let mut script = Vec::new();
    clap_complete::generate(
        args.shell,
        &mut Cli::command(),
        "kubectl-velero_debug",
        &mut script,
    );
    // Written here, not by clap_complete, which panics on a closed pipe.
    std::io::stdout().write_all(&script)?;
    Ok(ExitStatus::Success)
}

/// `create`: builds the DebugBundle, then prints it (--dry-run) or creates and follows it.
async fn create(
    cluster: &ClusterArgs,
    namespace: &str,
    target: &CreateTarget,
) -> anyhow::Result<ExitStatus> {
    let (kind, args) = match target {
        CreateTarget::Restore(a) => (TargetKind::Restore, a),
        CreateTarget::Backup(a) => (TargetKind::Backup, a),
    };
    let bundle = create::build_bundle(
        namespace,
        kind,
        &args.target,
        args.name.as_deref(),
        &args.spec,
        Timestamp::now(),
    )?;
    if args.dry_run.is_some() {
        print_object(&bundle, args.output.unwrap_or(ObjectFormat::Yaml))?;
        return Ok(ExitStatus::Success);
    }
    let client = cluster::client(cluster).await?;
    create_and_follow(client, namespace, &bundle, args).await
}

async fn wait_for(api: &Api<DebugBundle>, args: &WaitArgs) -> anyhow::Result<ExitStatus> {
    let outcome = wait::follow(api, &args.name, parse_timeout(&args.timeout)?).await?;
    if let (Some(format), Outcome::Completed(b) | Outcome::Failed(b)) = (args.output, &outcome) {
        print_object(b, format)?;
    }
    Ok(report_outcome(&args.name, &outcome))
}

async fn print_summary(api: &Api<DebugBundle>, args: &SummaryArgs) -> anyhow::Result<ExitStatus> {
    let bundle = api.get(&args.name).await?;
    let (bundle, response) = open_archive(api, bundle, Duration::from_secs(120)).await?;
    let (size, _) = download::expected_archive(&bundle)?;
    let text = summary::summary_from_response(response, size).await?;
    print!("{}", printable(&text));
    Ok(ExitStatus::Success)
}

async fn describe_bundle(
    api: &Api<DebugBundle>,
    client: Client,
    namespace: &str,
    args: &GetArgs,
) -> anyhow::Result<ExitStatus> {
    let bundle = api.get(&args.name).await?;
    if let Some(format) = object_format(args.output) {
        print_object(&bundle, format)?;
        return Ok(ExitStatus::Success);
    }
    let events = bundle_events(client, namespace, &args.name).await;
    let text = describe::describe(&bundle, &events, Timestamp::now());
    print!("{}", printable(&text));
    Ok(ExitStatus::Success)
}

/// `refresh-url`: prints the new URL (its expiry on stderr), or the bundle as json/yaml.
async fn refresh_url(api: &Api<DebugBundle>, args: &RefreshUrlArgs) -> anyhow::Result<ExitStatus> {
    let bundle = api.get(&args.name).await?;
    let bundle = refresh::refresh_url(api, &bundle, parse_timeout(&args.timeout)?).await?;
    match args.output {
        Some(format) => print_object(&bundle, format)?,
        None => {
            let status = bundle.status.clone().unwrap_or_default();
            println!("{}", status.download_url.unwrap_or_default());
            if let Some(t) = status.download_url_expires_at {
                eprintln!("valid until {}", t.0);
            }
        }
    }
    Ok(ExitStatus::Success)
}

fn parse_timeout(text: &str) -> anyhow::Result<Duration> {
    let parsed = duration::parse(text).map_err(|e| anyhow::anyhow!("--timeout: {e}"))?;
    Duration::try_from(parsed)
        .ok()
        .filter(|d| !d.is_zero())
        .with_context(|| format!("--timeout {text:?} must be positive"))
}

fn print_object<T: serde::Serialize>(value: &T, format: ObjectFormat) -> anyhow::Result<()> {
    let text = match format {
        ObjectFormat::Json => output::to_json(value)?,
        ObjectFormat::Yaml => output::to_yaml(value)?,
    };
    std::io::stdout().write_all(text.as_bytes())?;
    Ok(())
}

fn object_format(format: Option<ListFormat>) -> Option<ObjectFormat> {
    match format {
        Some(ListFormat::Json) => Some(ObjectFormat::Json),
        Some(ListFormat::Yaml) => Some(ObjectFormat::Yaml),
        _ => None,
    }
}

/// Prints how a wait ended (a Failed bundle's reason, message and warnings on stderr).
fn report_outcome(name: &str, outcome: &Outcome) -> ExitStatus {
    match outcome {
        Outcome::Completed(_) => eprintln!("DebugBundle {name} Completed"),
        Outcome::Failed(bundle) => eprint!("{}", printable(&wait::failure_report(bundle))),
        Outcome::TimedOut => eprintln!("DebugBundle {name}: timed out waiting for it to finish"),
    }
    outcome.exit_status()
}

async fn create_and_follow(
    client: Client,
    namespace: &str,
    bundle: &DebugBundle,
    args: &CreateArgs,
) -> anyhow::Result<ExitStatus> {
    let timeout = parse_timeout(&args.timeout)?;
    let api: Api<DebugBundle> = Api::namespaced(client, namespace);
    let created = api.create(&PostParams::default(), bundle).await?;
    let name = created.metadata.name.clone().unwrap_or_default();
    // The name alone on stdout, so scripts can capture it; on stderr when the archive goes
    // to stdout.
    let archive_to_stdout = matches!(&args.download, Some(Some(p)) if p == Path::new("-"));
    match args.output {
        Some(format) if !archive_to_stdout => print_object(&created, format)?,
        _ if archive_to_stdout => eprintln!("{name}"),
        _ => println!("{name}"),
    }
    if !args.wait && args.download.is_none() {
        return Ok(ExitStatus::Success);
    }
    let outcome = wait::follow(&api, &name, timeout).await?;
    let status = report_outcome(&name, &outcome);
    match (&outcome, &args.download) {
        (Outcome::Completed(_), Some(output)) => {
            let output = output.clone();
            download(
                &api,
                &DownloadArgs {
                    name,
                    output,
                    extract: None,
                    timeout: "2m".into(),
                },
            )
            .await
        }
        _ => Ok(status),
    }
}

/// The bundle with a URL that works now, asking the operator for a new one if it expired.
async fn with_valid_url(
    api: &Api<DebugBundle>,
    bundle: DebugBundle,
    timeout: Duration,
) -> anyhow::Result<DebugBundle> {
    download::expected_archive(&bundle)?;
    match download::url_state(&bundle, Timestamp::now(), download::RENEW_MARGIN) {
        UrlState::Valid(_) => Ok(bundle),
        UrlState::NeedsRefresh => {
            eprintln!("the download URL expired; asking the operator for a new one");
            Ok(refresh::refresh_url(api, &bundle, timeout).await?)
        }
    }
}

fn current_url(bundle: &DebugBundle) -> anyhow::Result<String> {
    // Just signed: usable until it expires, even with a TTL under the renewal margin.
    match download::url_state(bundle, Timestamp::now(), jiff::SignedDuration::ZERO) {
        UrlState::Valid(url) => Ok(url),
        UrlState::NeedsRefresh => bail!("the operator signed no usable download URL"),
    }
}

async fn download(api: &Api<DebugBundle>, args: &DownloadArgs) -> anyhow::Result<ExitStatus> {
    let to_stdout = args.output.as_deref() == Some(Path::new("-"));
    if to_stdout && args.extract.is_some() {
        bail!("--extract needs a file, not -o -");
    }
    if to_stdout && output::stdout_is_terminal() {
        bail!("refusing to write a tar.gz to a terminal: redirect stdout or use -o FILE");
    }
    let bundle = api.get(&args.name).await?;
    let (bundle, response) = open_archive(api, bundle, parse_timeout(&args.timeout)?).await?;
    let (size, sha256) = download::expected_archive(&bundle)?;
    let expected = download::Expected {
        size,
        sha256: &sha256,
    };
    let bar = download::progress_bar(size);
    let chunks = response.bytes_stream();
    if to_stdout {
        let result = download::stream_verified(chunks, &expected, &bar).await;
        bar.finish_and_clear();
        result?;
        return Ok(ExitStatus::Success);
    }
    let path = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.tar.gz", args.name)));
    let result = download::save_verified(chunks, &path, &expected, &bar).await;
    bar.finish_and_clear();
    result?;
    eprintln!("{}: sha256 {sha256} verified", path.display());
    if let Some(folder) = &args.extract {
        download::extract(&path, folder)?;
        eprintln!("extracted into {}", folder.display());
    }
    Ok(ExitStatus::Success)
}

/// Starts the archive's GET. A URL refused with 403 although its expiry is still ahead (a
/// clock apart from the store's, a rotated key) is re-signed once and tried again.
async fn open_archive(
    api: &Api<DebugBundle>,
    bundle: DebugBundle,
    timeout: Duration,
) -> anyhow::Result<(DebugBundle, reqwest::Response)> {
    let bundle = with_valid_url(api, bundle, timeout).await?;
    let (size, _) = download::expected_archive(&bundle)?;
    let client = download::http_client(download::READ_TIMEOUT)?;
    match download::get(&client, &current_url(&bundle)?, size).await {
        Err(DownloadError::HttpStatus { status }) if status == reqwest::StatusCode::FORBIDDEN => {
            eprintln!(
                "the object store refused the download URL; asking the operator for a new one"
            );
            let bundle = refresh::refresh_url(api, &bundle, timeout).await?;
            let response = download::get(&client, &current_url(&bundle)?, size).await?;
            Ok((bundle, response))
        }
        result => Ok((bundle, result?)),
    }
}

async fn list(client: Client, namespace: &str, args: &ListArgs) -> anyhow::Result<ExitStatus> {
    let api: Api<DebugBundle> = if args.all_namespaces {
        Api::all(client)
    } else {
        Api::namespaced(client, namespace)
    };
    let mut params = ListParams::default();
    if let Some(selector) = &args.selector {
        params = params.labels(selector);
    }
    let list = api.list(&params).await?;
    if let Some(format) = object_format(args.output) {
        print_object(&list, format)?;
        return Ok(ExitStatus::Success);
    }
    if list.items.is_empty() {
        eprintln!("No DebugBundles found.");
        return Ok(ExitStatus::Success);
    }
    let wide = args.output == Some(ListFormat::Wide);
    let now = Timestamp::now();
    let rows: Vec<_> = list
        .items
        .iter()
        .map(|b| output::row(b, args.all_namespaces, wide, now))
        .collect();
    let table = output::table(&output::header(args.all_namespaces, wide), &rows);
    print!("{}", printable(&table));
    Ok(ExitStatus::Success)
}

async fn get(api: &Api<DebugBundle>, args: &GetArgs) -> anyhow::Result<ExitStatus> {
    let bundle = api.get(&args.name).await?;
    if let Some(format) = object_format(args.output) {
        print_object(&bundle, format)?;
        return Ok(ExitStatus::Success);
    }
    let wide = args.output == Some(ListFormat::Wide);
    let row = output::row(&bundle, false, wide, Timestamp::now());
    let table = output::table(&output::header(false, wide), &[row]);
    print!("{}", printable(&table));
    Ok(ExitStatus::Success)
}

/// The bundle's events; none (rather than a failure) when they may not be listed.
async fn bundle_events(client: Client, namespace: &str, name: &str) -> Vec<Event> {
    let api: Api<Event> = Api::namespaced(client, namespace);
    let params = ListParams::default().fields(&format!(
        "involvedObject.kind=DebugBundle,involvedObject.name={name}"
    ));
    let mut events = api.list(&params).await.map(|l| l.items).unwrap_or_default();
    events.sort_by_key(|e| e.last_timestamp.as_ref().map(|t| t.0));
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checksum_mismatch_exits_3_other_errors_4() {
        let mismatch = anyhow::Error::from(DownloadError::ChecksumMismatch {
            expected: "a".into(),
            actual: "b".into(),
            deleted: true,
        });
        assert_eq!(exit_status_of(&mismatch), ExitStatus::ChecksumMismatch);
        let other = anyhow::Error::from(DownloadError::NoArchive("b".into()));
        assert_eq!(exit_status_of(&other), ExitStatus::Error);
        assert_eq!(ExitStatus::ChecksumMismatch as u8, 3);
        assert_eq!(ExitStatus::Error as u8, 4);
    }

    #[test]
    fn the_krew_manifest_names_this_binary_on_every_platform() {
        let manifest: serde_json::Value =
            serde_yaml::from_str(include_str!("../krew/velero-debug.yaml")).unwrap();
        assert_eq!(manifest["kind"], "Plugin");
        assert_eq!(manifest["metadata"]["name"], "velero-debug");
        let platforms = manifest["spec"]["platforms"].as_array().unwrap();
        let mut seen: Vec<String> = platforms
            .iter()
            .map(|p| {
                let labels = &p["selector"]["matchLabels"];
                let bin = p["bin"].as_str().unwrap();
                let name = Cli::command().get_name().to_string();
                assert!(bin == name || bin == format!("{name}.exe"), "{bin}");
                assert!(p["sha256"].as_str().unwrap().starts_with("SHA256_"));
                format!(
                    "{}/{}",
                    labels["os"].as_str().unwrap(),
                    labels["arch"].as_str().unwrap()
                )
            })
            .collect();
        seen.sort();
        assert_eq!(
            seen,
            [
                "darwin/amd64",
                "darwin/arm64",
                "linux/amd64",
                "linux/arm64",
                "windows/amd64"
            ]
        );
    }
}

//! `kubectl velero-debug`: create, follow and download DebugBundles. This file only parses the
//! command line and hands it to a command's handler (commands/); exit statuses are in exit.rs.

mod archive;
mod args;
mod cluster;
mod commands;
mod complete;
mod exit;
mod print;
mod serve;

use std::{io::Write, path::Path, process::ExitCode};

use clap::{CommandFactory, Parser};
use kube::Api;
use velero_debug_crd::{DebugBundle, printable};

use crate::{
    archive::download::DownloadError,
    args::{Cli, Command, CompletionArgs},
    commands::show,
    exit::ExitStatus,
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
    match &cli.command {
        Command::Completion(args) => return print_completion(args),
        Command::Complete(args) => return commands::complete::complete(args).await,
        Command::Create(target) => return commands::create::create(&cli.cluster, target).await,
        Command::Report(args) if Path::new(&args.bundle).is_file() => {
            return commands::report::from_file(args);
        }
        Command::Serve(args) if Path::new(&args.bundle).is_file() => {
            return commands::serve::from_file(args).await;
        }
        _ => {}
    }
    let target = cluster::client::target(&cli.cluster).await?;
    let client = target.client()?;
    let namespace = target.namespace;
    let api: Api<DebugBundle> = Api::namespaced(client.clone(), &namespace);
    match cli.command {
        Command::Create(_) | Command::Completion(_) | Command::Complete(_) => {
            unreachable!("handled above")
        }
        Command::Wait(args) => show::wait_for(&api, &args).await,
        Command::List(args) => show::list(client, &namespace, &args).await,
        Command::Get(args) => show::get(&api, &args).await,
        Command::Describe(args) => show::describe_bundle(&api, client, &namespace, &args).await,
        Command::Download(args) => commands::archive::download(&api, &args).await,
        Command::Summary(args) => commands::archive::print_summary(&api, &args).await,
        Command::Logs(args) => commands::archive::logs(&api, &args).await,
        Command::RefreshUrl(args) => commands::archive::refresh_url(&api, &args).await,
        Command::Delete(args) => commands::delete::delete(&api, &args).await,
        Command::Report(args) => commands::report::from_cluster(&api, &args).await,
        Command::Serve(args) => commands::serve::from_cluster(&api, &args).await,
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

//! The command line: clap definitions only, no behaviour.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use velero_debug_crd::NodeAgentLogs;

/// Create, follow and download Velero DebugBundles.
#[derive(Debug, Parser)]
#[command(
    name = "kubectl-velero_debug",
    bin_name = "kubectl velero-debug",
    version
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// The standard kubectl connection flags.
#[derive(Debug, Args)]
pub(crate) struct ClusterArgs {
    /// Path to the kubeconfig file (default: $KUBECONFIG or ~/.kube/config).
    #[arg(long, global = true)]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// Velero's namespace, where DebugBundles live.
    #[arg(
        short = 'n',
        long,
        global = true,
        env = "VELERO_NAMESPACE",
        default_value = "velero"
    )]
    pub namespace: String,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create a DebugBundle for a Velero Restore or Backup.
    #[command(subcommand)]
    Create(CreateTarget),
    /// Follow a DebugBundle until it finished: exit 0 Completed, 1 Failed, 2 timed out.
    Wait(WaitArgs),
    /// Download a bundle's archive, checking its sha256.
    Download(DownloadArgs),
    /// Print the bundle's summary.md.
    Summary(SummaryArgs),
    /// List DebugBundles.
    List(ListArgs),
    /// Show one DebugBundle as a table row (or json/yaml).
    Get(GetArgs),
    /// Show a DebugBundle in detail: conditions, warnings, archive, URL, events.
    Describe(GetArgs),
    /// Sign a new download URL (without collecting again).
    RefreshUrl(RefreshUrlArgs),
    /// Print a shell completion script.
    Completion(CompletionArgs),
}

#[derive(Debug, Subcommand)]
pub(crate) enum CreateTarget {
    /// A DebugBundle for the Velero Restore NAME.
    Restore(CreateArgs),
    /// A DebugBundle for the Velero Backup NAME.
    Backup(CreateArgs),
}

#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    /// The Restore's or Backup's name.
    pub target: String,
    /// The DebugBundle's name (default: generated from the target's).
    #[arg(long)]
    pub name: Option<String>,
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Print the DebugBundle instead of creating it (only "client").
    #[arg(long, value_parser = ["client"], num_args = 0..=1, default_missing_value = "client")]
    pub dry_run: Option<String>,
    /// Print the object (with --dry-run: default yaml; else the created one, not its name).
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<ObjectFormat>,
    /// Follow the bundle until it finished (exit codes as `wait`).
    #[arg(long)]
    pub wait: bool,
    /// Then download the archive to FILE (default NAME.tar.gz); implies --wait.
    #[arg(long, value_name = "FILE")]
    pub download: Option<Option<PathBuf>>,
    /// With --wait/--download: give up after this long (Go duration).
    #[arg(long, default_value = "10m")]
    pub timeout: String,
}

/// Flags mirroring DebugBundleSpec; unset ones leave the operator's defaults.
#[derive(Debug, Args, Default)]
pub(crate) struct SpecArgs {
    /// Logs from this time: RFC 3339 (2026-11-20T10:00:00Z) or a duration back (2h).
    #[arg(long)]
    pub since: Option<String>,
    /// Upper bound of each container log, in bytes (1024 to 1073741824).
    #[arg(long)]
    pub max_log_bytes: Option<i64>,
    /// Also the previous instance's logs of restarted containers.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub previous_logs: Option<bool>,
    /// Which node-agent pods' logs to collect.
    #[arg(long, value_enum)]
    pub node_agent_logs: Option<NodeAgentLogsArg>,
    /// Collect events and the timeline.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub events: Option<bool>,
    /// BackupStorageLocation to upload to.
    #[arg(long)]
    pub storage_location: Option<String>,
    /// Validity of the download URL (Go duration, 1m to 168h).
    #[arg(long)]
    pub url_ttl: Option<String>,
    /// Delete the bundle and its archive this long after it finished (Go duration).
    #[arg(long)]
    pub ttl_after_finished: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum NodeAgentLogsArg {
    Involved,
    All,
    None,
}

impl From<NodeAgentLogsArg> for NodeAgentLogs {
    fn from(arg: NodeAgentLogsArg) -> Self {
        match arg {
            NodeAgentLogsArg::Involved => NodeAgentLogs::Involved,
            NodeAgentLogsArg::All => NodeAgentLogs::All,
            NodeAgentLogsArg::None => NodeAgentLogs::None,
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct WaitArgs {
    pub name: String,
    /// Give up after this long (Go duration); exit 2.
    #[arg(long, default_value = "10m")]
    pub timeout: String,
    /// Also print the finished bundle.
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<ObjectFormat>,
}

#[derive(Debug, Args)]
pub(crate) struct DownloadArgs {
    pub name: String,
    /// Where to write the archive; "-" for stdout (default NAME.tar.gz).
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
    /// Unpack the verified archive into DIR.
    #[arg(long, value_name = "DIR")]
    pub extract: Option<PathBuf>,
    /// How long to wait for the operator to sign a new URL when the current one expired.
    #[arg(long, default_value = "2m")]
    pub timeout: String,
}

#[derive(Debug, Args)]
pub(crate) struct SummaryArgs {
    pub name: String,
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// List in every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Label selector (such as velerodebug.io/auto=true).
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<ListFormat>,
}

#[derive(Debug, Args)]
pub(crate) struct GetArgs {
    pub name: String,
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<ListFormat>,
}

#[derive(Debug, Args)]
pub(crate) struct RefreshUrlArgs {
    pub name: String,
    /// How long to wait for the operator to sign the new URL.
    #[arg(long, default_value = "2m")]
    pub timeout: String,
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<ObjectFormat>,
}

#[derive(Debug, Args)]
pub(crate) struct CompletionArgs {
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ObjectFormat {
    Json,
    Yaml,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ListFormat {
    Wide,
    Json,
    Yaml,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn namespace_defaults_to_velero_and_flags_parse() {
        let cli = Cli::try_parse_from([
            "kubectl-velero_debug",
            "create",
            "restore",
            "r1",
            "--since",
            "2h",
            "--previous-logs=false",
            "--events",
            "--download",
        ])
        .unwrap();
        let Command::Create(CreateTarget::Restore(args)) = cli.command else {
            panic!("not create restore");
        };
        assert_eq!(args.target, "r1");
        assert_eq!(args.spec.previous_logs, Some(false));
        assert_eq!(args.spec.events, Some(true));
        assert_eq!(args.download, Some(None));
        assert!(!args.wait);
        // VELERO_NAMESPACE is not set in the test environment.
        if std::env::var_os("VELERO_NAMESPACE").is_none() {
            assert_eq!(cli.cluster.namespace, "velero");
        }
    }
}

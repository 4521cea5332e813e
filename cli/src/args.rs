//! The command line: clap definitions only, no behaviour.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use velero_debug_crd::NodeAgentLogs;

use crate::print::{jsonpath::Template, output::ObjectFormat};

/// Create, follow and download Velero DebugBundles.
#[derive(Debug, Parser)]
#[command(
    name = "kubectl-velero_debug",
    bin_name = "kubectl velero-debug",
    version,
    after_help = "Examples:\n  kubectl velero-debug create restore --latest-failed --wait --download\n  \
        kubectl velero-debug describe why-restore-1\n  \
        kubectl velero-debug logs why-restore-1 velero/velero.log"
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// kubectl's global connection flags, read as kubectl reads them.
#[derive(Debug, Args, Default, Clone)]
pub(crate) struct ClusterArgs {
    /// Path to the kubeconfig file (default: $KUBECONFIG or ~/.kube/config).
    #[arg(long, global = true)]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// The kubeconfig cluster to use.
    #[arg(long, global = true)]
    pub cluster: Option<String>,
    /// The kubeconfig user to use.
    #[arg(long, global = true)]
    pub user: Option<String>,
    /// Where DebugBundles live (default: $VELERO_NAMESPACE, else the context's namespace,
    /// else velero).
    #[arg(short = 'n', long, global = true, env = "VELERO_NAMESPACE")]
    pub namespace: Option<String>,
    /// The API server's address and port.
    #[arg(short = 's', long, global = true)]
    pub server: Option<String>,
    /// Bearer token for the API server.
    #[arg(long, global = true)]
    pub token: Option<String>,
    /// Path to a CA certificate file for the API server.
    #[arg(long, global = true)]
    pub certificate_authority: Option<PathBuf>,
    /// Do not check the API server's certificate (insecure).
    #[arg(long, global = true)]
    pub insecure_skip_tls_verify: bool,
    /// User to impersonate.
    #[arg(long = "as", global = true, value_name = "USER")]
    pub as_user: Option<String>,
    /// Group to impersonate (repeatable).
    #[arg(long, global = true, value_name = "GROUP")]
    pub as_group: Vec<String>,
    /// UID to impersonate.
    #[arg(long, global = true, value_name = "UID")]
    pub as_uid: Option<String>,
    /// How long one request may take (1s, 2m; a bare number is seconds; 0: no limit).
    #[arg(long, global = true, default_value = "0")]
    pub request_timeout: String,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create a DebugBundle for a Velero Restore or Backup.
    #[command(
        subcommand,
        after_help = "Examples:\n  kubectl velero-debug create restore --latest-failed --wait --download\n  \
            kubectl velero-debug create backup nightly-1 --wait"
    )]
    Create(CreateTarget),
    /// Follow a DebugBundle until it finished: exit 0 Completed, 1 Failed, 2 timed out.
    #[command(after_help = "Examples:\n  kubectl velero-debug wait why-restore-1 --timeout 15m")]
    Wait(WaitArgs),
    /// Download a bundle's archive, checking its sha256.
    #[command(
        after_help = "Examples:\n  kubectl velero-debug download why-restore-1\n  \
        kubectl velero-debug download why-restore-1 -o bundle.tar.gz --extract ./bundle\n  \
        kubectl velero-debug download why-restore-1 -o - | tar -tz"
    )]
    Download(DownloadArgs),
    /// Print the bundle's summary.md.
    #[command(after_help = "Examples:\n  kubectl velero-debug summary why-restore-1 | less")]
    Summary(SummaryArgs),
    /// Open the bundle's report.html (findings, damage, timeline) in your browser, or print its
    /// path; BUNDLE is a downloaded .tar.gz or a DebugBundle's name (downloaded first).
    #[command(
        after_help = "Examples:\n  kubectl velero-debug report why-restore-1\n  \
        kubectl velero-debug report ./why-restore-1.tar.gz --no-open"
    )]
    Report(ReportArgs),
    /// Serve a bundle as a read-only Kubernetes API on 127.0.0.1, for kubectl and velero with
    /// no cluster; prints the path of a kubeconfig for it. BUNDLE is a .tar.gz or a
    /// DebugBundle's name (downloaded first).
    #[command(
        after_help = "Examples:\n  kubectl velero-debug serve ./why-restore-1.tar.gz --shell\n  \
        export KUBECONFIG=$(kubectl velero-debug serve why-restore-1 &) ; kubectl get pods -A"
    )]
    Serve(ServeArgs),
    /// Print one file of the bundle (a log, a YAML), or list its files when none is named.
    #[command(
        after_help = "Examples:\n  kubectl velero-debug logs why-restore-1\n  \
        kubectl velero-debug logs why-restore-1 velero/velero.log\n  \
        kubectl velero-debug logs why-restore-1 restore-results.json"
    )]
    Logs(LogsArgs),
    /// List DebugBundles.
    #[command(after_help = "Examples:\n  kubectl velero-debug list\n  \
        kubectl velero-debug list -A -l velerodebug.io/auto=true\n  \
        kubectl velero-debug list -o jsonpath='{.items[*].metadata.name}'")]
    List(ListArgs),
    /// Show one DebugBundle as a table row (or json/yaml/name/jsonpath).
    #[command(
        after_help = "Examples:\n  kubectl velero-debug get why-restore-1 -o wide\n  \
        kubectl velero-debug get why-restore-1 -o jsonpath='{.status.downloadURL}'"
    )]
    Get(GetArgs),
    /// Show a DebugBundle in detail: findings, conditions, warnings, archive, URL, events.
    #[command(after_help = "Examples:\n  kubectl velero-debug describe why-restore-1")]
    Describe(GetArgs),
    /// Delete DebugBundles and, through the operator, their archives.
    #[command(
        after_help = "Examples:\n  kubectl velero-debug delete why-restore-1\n  \
        kubectl velero-debug delete why-restore-1 why-backup-2 --wait=false"
    )]
    Delete(DeleteArgs),
    /// Sign a new download URL (without collecting again).
    #[command(
        after_help = "Examples:\n  curl -fsSLo bundle.tar.gz \"$(kubectl velero-debug refresh-url why-restore-1)\""
    )]
    RefreshUrl(RefreshUrlArgs),
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  source <(kubectl velero-debug completion bash)\n\n\
        For `kubectl velero-debug <TAB>`, put kubectl_complete-velero_debug (shipped beside the \
        binary) on PATH."
    )]
    Completion(CompletionArgs),
    /// Candidates for a partial command line, as cobra's `__complete` prints them (what
    /// kubectl_complete-velero_debug calls).
    #[command(name = "__complete", hide = true)]
    Complete(CompleteArgs),
}

#[derive(Debug, Subcommand)]
pub(crate) enum CreateTarget {
    /// A DebugBundle for the Velero Restore NAME.
    #[command(
        after_help = "Examples:\n  kubectl velero-debug create restore restore-1 --wait --download\n  \
        kubectl velero-debug create restore --latest-failed --wait --download\n  \
        kubectl velero-debug create restore restore-1 --since 2h --node-agent-logs all"
    )]
    Restore(CreateArgs),
    /// A DebugBundle for the Velero Backup NAME.
    #[command(
        after_help = "Examples:\n  kubectl velero-debug create backup nightly-1 --wait\n  \
        kubectl velero-debug create backup --latest-failed --dry-run"
    )]
    Backup(CreateArgs),
}

#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    /// The Restore's or Backup's name.
    #[arg(
        required_unless_present = "latest_failed",
        conflicts_with = "latest_failed"
    )]
    pub target: Option<String>,
    /// The newest Restore (or Backup) that ended Failed or PartiallyFailed.
    #[arg(long)]
    pub latest_failed: bool,
    /// The DebugBundle's name (default: generated from the target's).
    #[arg(long)]
    pub name: Option<String>,
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Print the DebugBundle instead of creating it (only "client").
    #[arg(long, value_parser = ["client"], num_args = 0..=1, default_missing_value = "client")]
    pub dry_run: Option<String>,
    /// Print the object: json, yaml, name or jsonpath=TEMPLATE (with --dry-run: default yaml;
    /// else the created one, not only its name).
    #[arg(short = 'o', long, value_parser = parse_object_format)]
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
    /// Also print the finished bundle: json, yaml, name or jsonpath=TEMPLATE.
    #[arg(short = 'o', long, value_parser = parse_object_format)]
    pub output: Option<ObjectFormat>,
}

#[derive(Debug, Args)]
pub(crate) struct DownloadArgs {
    pub name: String,
    /// Where to write the archive; "-" for stdout (default NAME.tar.gz).
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
    /// Unpack the verified archive into a new folder DIR (DIR-1, DIR-2... when DIR is taken;
    /// DIR/NAME when DIR is `.` or `..`).
    #[arg(long, value_name = "DIR")]
    pub extract: Option<PathBuf>,
    /// The most bytes --extract may inflate: every entry's headers, names and data, written or
    /// skipped.
    #[arg(long, default_value_t = 4 << 30)]
    pub max_bytes: u64,
    /// How long to wait for the operator to sign a new URL when the current one expired.
    #[arg(long, default_value = "2m")]
    pub timeout: String,
}

#[derive(Debug, Args)]
pub(crate) struct SummaryArgs {
    pub name: String,
}

#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    /// A bundle's .tar.gz, or a DebugBundle's name.
    pub bundle: String,
    /// The new folder to unpack the bundle into (default: the bundle's name, in the current
    /// folder; DIR-1, DIR-2... when it is taken).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Print the report's path without opening it.
    #[arg(long)]
    pub no_open: bool,
    /// The most bytes reading the bundle may inflate: every entry's headers, names and data,
    /// written or skipped.
    #[arg(long, default_value_t = 4 << 30)]
    pub max_bytes: u64,
    /// How long to wait for the operator to sign a new URL when the current one expired.
    #[arg(long, default_value = "2m")]
    pub timeout: String,
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// A bundle's .tar.gz, or a DebugBundle's name.
    pub bundle: String,
    /// Start $SHELL with KUBECONFIG set to the bundle's server; serving stops when it exits.
    #[arg(long)]
    pub shell: bool,
    /// The loopback port to listen on (default: any free one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Where to make the temporary folder (removed on exit; default: the system's).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// The most bytes reading the bundle may inflate: every entry's headers, names and data,
    /// written or skipped.
    #[arg(long, default_value_t = 4 << 30)]
    pub max_bytes: u64,
    /// How long to wait for the operator to sign a new URL when the current one expired.
    #[arg(long, default_value = "2m")]
    pub timeout: String,
}

#[derive(Debug, Args)]
pub(crate) struct LogsArgs {
    pub name: String,
    /// The file: its path in the bundle, or a unique end of it (velero.log); none lists them.
    pub file: Option<String>,
    /// How long to wait for the operator to sign a new URL when the current one expired.
    #[arg(long, default_value = "2m")]
    pub timeout: String,
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// List in every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Label selector (such as velerodebug.io/auto=true).
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// wide, json, yaml, name or jsonpath=TEMPLATE.
    #[arg(short = 'o', long, value_parser = parse_list_format)]
    pub output: Option<ListFormat>,
    /// Print the table without its header line.
    #[arg(long)]
    pub no_headers: bool,
}

#[derive(Debug, Args)]
pub(crate) struct GetArgs {
    pub name: String,
    /// wide, json, yaml, name or jsonpath=TEMPLATE.
    #[arg(short = 'o', long, value_parser = parse_list_format)]
    pub output: Option<ListFormat>,
    /// Print the table without its header line.
    #[arg(long)]
    pub no_headers: bool,
}

#[derive(Debug, Args)]
pub(crate) struct DeleteArgs {
    #[arg(required = true)]
    pub names: Vec<String>,
    /// Wait until the operator removed each archive and the bundle is gone.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true")]
    pub wait: bool,
    /// With --wait: give up after this long (Go duration).
    #[arg(long, default_value = "2m")]
    pub timeout: String,
}

#[derive(Debug, Args)]
pub(crate) struct RefreshUrlArgs {
    pub name: String,
    /// How long to wait for the operator to sign the new URL.
    #[arg(long, default_value = "2m")]
    pub timeout: String,
    /// Print the bundle instead of the URL: json, yaml, name or jsonpath=TEMPLATE.
    #[arg(short = 'o', long, value_parser = parse_object_format)]
    pub output: Option<ObjectFormat>,
}

#[derive(Debug, Args)]
pub(crate) struct CompletionArgs {
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub(crate) struct CompleteArgs {
    /// The words after the plugin's name; the last one is being typed (maybe empty).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub words: Vec<String>,
}

/// `-o` of `list` and `get`: an object format, or the table with more columns.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ListFormat {
    Wide,
    Object(ObjectFormat),
}

fn parse_object_format(text: &str) -> Result<ObjectFormat, String> {
    match text {
        "json" => Ok(ObjectFormat::Json),
        "yaml" => Ok(ObjectFormat::Yaml),
        "name" => Ok(ObjectFormat::Name),
        _ => match text.strip_prefix("jsonpath=") {
            Some(template) => Template::parse(template)
                .map(ObjectFormat::JsonPath)
                .map_err(|e| e.to_string()),
            None => Err(format!(
                "{text:?}: one of json, yaml, name, jsonpath=TEMPLATE"
            )),
        },
    }
}

fn parse_list_format(text: &str) -> Result<ListFormat, String> {
    match text {
        "wide" => Ok(ListFormat::Wide),
        _ => parse_object_format(text)
            .map(ListFormat::Object)
            .map_err(|_| format!("{text:?}: one of wide, json, yaml, name, jsonpath=TEMPLATE")),
    }
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
    fn every_command_shows_an_example() {
        fn check(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for sub in command.get_subcommands().filter(|c| !c.is_hide_set()) {
                let path = format!("{path} {}", sub.get_name());
                if sub.get_name() == "help" {
                    continue;
                }
                let help = sub
                    .get_after_help()
                    .map(|h| h.to_string())
                    .unwrap_or_default();
                if !help.contains("Examples:\n  kubectl velero-debug ")
                    && !help.contains("Examples:\n  curl")
                    && !help.contains("Examples:\n  source")
                {
                    missing.push(path.clone());
                }
                check(sub, &path, missing);
            }
        }
        let mut missing = Vec::new();
        check(&Cli::command(), "kubectl velero-debug", &mut missing);
        assert!(missing.is_empty(), "no example in the help of: {missing:?}");
    }

    #[test]
    fn output_formats_as_kubectl_takes_them() {
        assert_eq!(parse_list_format("wide"), Ok(ListFormat::Wide));
        assert_eq!(
            parse_list_format("name"),
            Ok(ListFormat::Object(ObjectFormat::Name))
        );
        assert!(matches!(
            parse_object_format("jsonpath={.status.phase}"),
            Ok(ObjectFormat::JsonPath(_))
        ));
        assert!(parse_object_format("wide").is_err());
        assert!(parse_object_format("jsonpath={.a").is_err());
        let parsed = Cli::try_parse_from([
            "kubectl-velero_debug",
            "create",
            "restore",
            "--latest-failed",
            "--as",
            "jane",
            "--as-group",
            "a",
            "--as-group",
            "b",
        ])
        .unwrap();
        assert_eq!(parsed.cluster.as_group, ["a", "b"]);
        let Command::Create(CreateTarget::Restore(args)) = parsed.command else {
            panic!("not create restore");
        };
        assert!(args.latest_failed && args.target.is_none());
        // A name and --latest-failed exclude each other; one of them is needed.
        for words in [
            &["create", "restore", "r1", "--latest-failed"][..],
            &["create", "restore"][..],
        ] {
            let line = std::iter::once("kubectl-velero_debug").chain(words.iter().copied());
            assert!(Cli::try_parse_from(line).is_err(), "{words:?}");
        }
    }

    #[test]
    fn the_url_ttl_help_names_the_crds_bounds() {
        let command = Cli::command();
        let create = command.find_subcommand("create").unwrap();
        let restore = create.find_subcommand("restore").unwrap();
        let arg = restore
            .get_arguments()
            .find(|a| a.get_id() == "url_ttl")
            .unwrap();
        let help = arg.get_help().unwrap().to_string();
        let bounds = format!(
            "{} to {}",
            velero_debug_crd::URL_TTL_MIN_TEXT,
            velero_debug_crd::URL_TTL_MAX_TEXT
        );
        assert!(help.contains(&bounds), "{help}");
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
        assert_eq!(args.target.as_deref(), Some("r1"));
        assert_eq!(args.spec.previous_logs, Some(false));
        assert_eq!(args.spec.events, Some(true));
        assert_eq!(args.download, Some(None));
        assert!(!args.wait);
        // VELERO_NAMESPACE is not set in the test environment.
        if std::env::var_os("VELERO_NAMESPACE").is_none() {
            assert_eq!(cli.cluster.namespace, None);
        }
    }
}

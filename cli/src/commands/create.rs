//! `create restore|backup`: builds the DebugBundle, then prints it (--dry-run) or creates it
//! and, when asked, follows it and downloads its archive.

use std::path::Path;

use jiff::Timestamp;
use kube::{Api, Client, api::PostParams};
use velero_debug_crd::DebugBundle;

use super::{archive, parse_timeout, print_object, report_outcome};
use crate::{
    args::{ClusterArgs, CreateArgs, CreateTarget, DownloadArgs},
    cluster::{
        client,
        create::{self, TargetKind},
        targets, wait,
        wait::Outcome,
    },
    exit::ExitStatus,
    print::output::ObjectFormat,
};

pub(crate) async fn create(
    cluster_args: &ClusterArgs,
    target: &CreateTarget,
) -> anyhow::Result<ExitStatus> {
    let (kind, args) = match target {
        CreateTarget::Restore(a) => (TargetKind::Restore, a),
        CreateTarget::Backup(a) => (TargetKind::Backup, a),
    };
    // A dry run of a named target needs no cluster; --latest-failed has to ask it.
    let connection = match (args.dry_run.is_some(), &args.target) {
        (true, Some(_)) => None,
        _ => Some(client::target(cluster_args).await?),
    };
    let namespace = match &connection {
        Some(c) => c.namespace.clone(),
        None => client::namespace_only(cluster_args),
    };
    let client = connection.as_ref().map(|c| c.client()).transpose()?;
    let target_name = match (&args.target, &client) {
        (Some(name), _) => name.clone(),
        (None, Some(client)) => {
            let name = targets::latest_failed(client.clone(), &namespace, kind).await?;
            eprintln!(
                "{} {name}: the newest Failed or PartiallyFailed",
                kind.velero_kind()
            );
            name
        }
        (None, None) => unreachable!("connected above when no target is named"),
    };
    let bundle = create::build_bundle(
        &namespace,
        kind,
        &target_name,
        args.name.as_deref(),
        &args.spec,
        Timestamp::now(),
    )?;
    if args.dry_run.is_some() {
        print_object(&bundle, args.output.as_ref().unwrap_or(&ObjectFormat::Yaml))?;
        return Ok(ExitStatus::Success);
    }
    let client = client.expect("connected for a real create");
    create_and_follow(client, &namespace, &bundle, args).await
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
    match &args.output {
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
            let download = DownloadArgs {
                name,
                output: output.clone(),
                extract: None,
                max_bytes: 4 << 30,
                timeout: "2m".into(),
            };
            archive::download(&api, &download).await
        }
        _ => Ok(status),
    }
}

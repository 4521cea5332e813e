//! `__complete`: the candidates for a partial command line (complete.rs reads it), with names
//! from the cluster the typed flags point at. Completion never fails loudly: no cluster, no
//! names.

use std::time::Duration;

use clap::Parser;
use kube::{
    Api, Client,
    api::{ListParams, PartialObjectMeta},
};
use velero_debug_crd::DebugBundle;

use crate::{
    args::{Cli, CompleteArgs},
    cluster::{client, create::TargetKind, targets},
    complete::{self, DIRECTIVE_DEFAULT, DIRECTIVE_NO_FILES, Wanted},
    exit::ExitStatus,
};

/// A shell waits on completion: the cluster gets this long.
const CLUSTER_TIMEOUT: Duration = Duration::from_secs(5);
/// Names offered at most.
const MAX_NAMES: u32 = 500;

pub(crate) async fn complete(args: &CompleteArgs) -> anyhow::Result<ExitStatus> {
    let request = complete::request(&args.words);
    let (candidates, directive) = match &request.wanted {
        Wanted::Words(words) => (words.clone(), DIRECTIVE_NO_FILES),
        Wanted::Files => (Vec::new(), DIRECTIVE_DEFAULT),
        Wanted::Nothing => (Vec::new(), DIRECTIVE_NO_FILES),
        names => {
            let found = tokio::time::timeout(
                CLUSTER_TIMEOUT,
                names_from_cluster(&request.cluster_words, names),
            )
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
            (
                found.into_iter().map(|n| (n, String::new())).collect(),
                DIRECTIVE_NO_FILES,
            )
        }
    };
    print!(
        "{}",
        complete::answer(&candidates, &request.prefix, directive)
    );
    Ok(ExitStatus::Success)
}

async fn names_from_cluster(
    cluster_words: &[String],
    wanted: &Wanted,
) -> anyhow::Result<Vec<String>> {
    // The typed global flags, read by the same definitions as a real command line.
    let words = ["kubectl-velero_debug"]
        .into_iter()
        .map(String::from)
        .chain(cluster_words.iter().cloned())
        .chain(["list".to_string()]);
    let cli = Cli::try_parse_from(words)?;
    let target = client::target(&cli.cluster).await?;
    let client: Client = target.client()?;
    let names = match wanted {
        Wanted::Bundles => {
            let api: Api<DebugBundle> = Api::namespaced(client, &target.namespace);
            let list: kube::api::ObjectList<PartialObjectMeta<DebugBundle>> = api
                .list_metadata(&ListParams::default().limit(MAX_NAMES))
                .await?;
            list.items
                .into_iter()
                .filter_map(|m| m.metadata.name)
                .collect()
        }
        Wanted::Restores => {
            names_of(targets::list(client, &target.namespace, TargetKind::Restore).await?)
        }
        Wanted::Backups => {
            names_of(targets::list(client, &target.namespace, TargetKind::Backup).await?)
        }
        _ => Vec::new(),
    };
    Ok(names)
}

fn names_of(items: Vec<kube::api::DynamicObject>) -> Vec<String> {
    items.into_iter().filter_map(|i| i.metadata.name).collect()
}

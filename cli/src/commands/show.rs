//! `list`, `get`, `describe` and `wait`: the bundle as a table row, an object, or in detail.

use anyhow::Context;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Event;
use kube::{
    Api, Client,
    api::{ListParams, ObjectList},
};
use velero_debug_crd::{DebugBundle, event_time::last_seen, printable};

use super::{parse_timeout, print_object, report_outcome};
use crate::{
    args::{GetArgs, ListArgs, ListFormat, WaitArgs},
    cluster::{wait, wait::Outcome},
    exit::ExitStatus,
    print::{describe, output},
};

/// Bundles per list request.
const PAGE: u32 = 500;

pub(crate) async fn wait_for(
    api: &Api<DebugBundle>,
    args: &WaitArgs,
) -> anyhow::Result<ExitStatus> {
    let outcome = wait::follow(api, &args.name, parse_timeout(&args.timeout)?).await?;
    if let (Some(format), Outcome::Completed(b) | Outcome::Failed(b)) = (&args.output, &outcome) {
        print_object(b, format)?;
    }
    Ok(report_outcome(&args.name, &outcome))
}

pub(crate) async fn list(
    client: Client,
    namespace: &str,
    args: &ListArgs,
) -> anyhow::Result<ExitStatus> {
    let api: Api<DebugBundle> = if args.all_namespaces {
        Api::all(client)
    } else {
        Api::namespaced(client, namespace)
    };
    let list = list_all(&api, args.selector.as_deref()).await?;
    if let Some(ListFormat::Object(format)) = &args.output {
        print_object(&list, format)?;
        return Ok(ExitStatus::Success);
    }
    if list.items.is_empty() {
        eprintln!(
            "No DebugBundles found in {}.",
            if args.all_namespaces {
                "any namespace"
            } else {
                namespace
            }
        );
        return Ok(ExitStatus::Success);
    }
    let wide = args.output == Some(ListFormat::Wide);
    let now = Timestamp::now();
    let rows: Vec<_> = list
        .items
        .iter()
        .map(|b| output::row(b, args.all_namespaces, wide, now))
        .collect();
    print_table(
        &output::header(args.all_namespaces, wide),
        &rows,
        args.no_headers,
    );
    Ok(ExitStatus::Success)
}

/// Every page of the list, as one list (what kubectl prints for -o json/yaml too).
async fn list_all(
    api: &Api<DebugBundle>,
    selector: Option<&str>,
) -> anyhow::Result<ObjectList<DebugBundle>> {
    let mut params = ListParams::default().limit(PAGE);
    if let Some(selector) = selector {
        params = params.labels(selector);
    }
    let mut all = api.list(&params).await.context("listing DebugBundles")?;
    while let Some(token) = all.metadata.continue_.take().filter(|t| !t.is_empty()) {
        let page = api
            .list(&params.clone().continue_token(&token))
            .await
            .context("listing DebugBundles")?;
        all.items.extend(page.items);
        all.metadata = page.metadata;
    }
    Ok(all)
}

pub(crate) async fn get(api: &Api<DebugBundle>, args: &GetArgs) -> anyhow::Result<ExitStatus> {
    let bundle = api.get(&args.name).await?;
    if let Some(ListFormat::Object(format)) = &args.output {
        print_object(&bundle, format)?;
        return Ok(ExitStatus::Success);
    }
    let wide = args.output == Some(ListFormat::Wide);
    let row = output::row(&bundle, false, wide, Timestamp::now());
    print_table(&output::header(false, wide), &[row], args.no_headers);
    Ok(ExitStatus::Success)
}

fn print_table(header: &[&str], rows: &[Vec<String>], no_headers: bool) {
    let table = if no_headers {
        output::table_without_header(header, rows)
    } else {
        output::table(header, rows)
    };
    print!("{}", printable(&table));
}

pub(crate) async fn describe_bundle(
    api: &Api<DebugBundle>,
    client: Client,
    namespace: &str,
    args: &GetArgs,
) -> anyhow::Result<ExitStatus> {
    let bundle = api.get(&args.name).await?;
    if let Some(ListFormat::Object(format)) = &args.output {
        print_object(&bundle, format)?;
        return Ok(ExitStatus::Success);
    }
    let events = bundle_events(client, namespace, &args.name).await;
    let text = describe::describe(&bundle, &events, Timestamp::now());
    print!("{}", printable(&text));
    Ok(ExitStatus::Success)
}

/// The bundle's events; none (rather than a failure) when they may not be listed.
async fn bundle_events(client: Client, namespace: &str, name: &str) -> Vec<Event> {
    let api: Api<Event> = Api::namespaced(client, namespace);
    let params = ListParams::default().limit(PAGE).fields(&format!(
        "involvedObject.kind=DebugBundle,involvedObject.name={name}"
    ));
    let mut events = api.list(&params).await.map(|l| l.items).unwrap_or_default();
    events.sort_by_key(last_seen);
    events
}

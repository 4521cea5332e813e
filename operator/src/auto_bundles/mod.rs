//! Automatic DebugBundles: watches Restores (and, when configured, Backups) and makes exactly
//! one bundle for each that ends in a configured phase. The record that a bundle was made is
//! kept in the ledger ConfigMap the chart makes in Velero's namespace (ledger.rs), so it
//! survives operator restarts and a bundle deleted by hand, and the operator needs no write
//! access to Velero's Backups and Restores. The annotation older versions wrote on the target
//! is still honoured (policy.rs). A Backup or Restore still running is looked at every
//! little while, and one that stopped moving for `stallAfter` gets a bundle of its own, once
//! per stall and at most `maxStallBundlesPerHour` an hour (stall_decision.rs, stall_bundles.rs,
//! stall_budget.rs). An operation deleted while it runs is forgotten at once.

mod ledger;
mod policy;
mod stall_budget;
mod stall_bundles;
mod stall_decision;

pub(crate) use stall_budget::StallBudget;

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api, Resource, ResourceExt,
    api::{DynamicObject, ListParams, Patch, PatchParams, PostParams},
    runtime::{
        Controller, WatchStreamExt, controller::Action, events::EventType, reflector, watcher,
    },
};
use velero_debug_crd::{AUTO_BUNDLE_LEDGER, DebugBundle, LABEL_AUTO, LABEL_TARGET_UID};

use policy::Decision;

use crate::{context::Context, event_publisher::Said, health::WatchHealth, kubernetes, velero};

#[derive(Debug, thiserror::Error)]
pub(crate) enum AutoBundleError {
    #[error("kubernetes API: {}", kubernetes::message(.0))]
    Kube(#[from] kube::Error),
    #[error("listing automatic DebugBundles: {0}")]
    List(String),
    #[error("DebugBundle {0} already exists for another target; waiting for it to go")]
    NameTaken(String),
    #[error(
        "ConfigMap {namespace}/{AUTO_BUNDLE_LEDGER}, the record of automatic bundles made, does not exist: the Helm chart makes it"
    )]
    LedgerMissing { namespace: String },
}

async fn reconcile(
    kind: &'static str,
    obj: Arc<DynamicObject>,
    ctx: Arc<Context>,
    stalls: Stalls,
) -> Result<Action, AutoBundleError> {
    let phase = obj.data["status"]["phase"].as_str().unwrap_or("");
    let Stalls { stills, budget } = stalls;
    if let Some(stall_after) = ctx.config.auto.stall_after {
        if stall_decision::is_running(phase) && obj.metadata.deletion_timestamp.is_none() {
            return stall_bundles::reconcile(kind, &obj, &ctx, &stills, &budget, stall_after).await;
        }
        stills.forget(&obj.uid().unwrap_or_default());
        stills.publish(&ctx.metrics.stalls, stall_after, Timestamp::now());
    }
    let bundle = match policy::decide(kind, &obj, &ctx.config.auto, Timestamp::now()) {
        Decision::Skip(why) => {
            tracing::trace!(kind, name = %obj.name_any(), why, "no automatic bundle");
            return Ok(Action::await_change());
        }
        Decision::Create(bundle) => bundle,
    };
    let ns = obj.namespace().unwrap_or_default();
    let uid = obj.uid().unwrap_or_default();
    let name = bundle.name_any();
    let ledgers: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ns);
    let recorded = read_ledger(&ledgers, &ns).await?;
    if let Some(record) = recorded.get(&uid) {
        let made = ledger::parse(record).map_or(record.clone(), |r| r.bundle);
        tracing::trace!(kind, name = %obj.name_any(), bundle = %made, "already has its bundle");
        return Ok(Action::await_change());
    }
    let bundles: Api<DebugBundle> = Api::namespaced(ctx.client.clone(), &ns);
    if create_for_target(&bundles, &bundle, &uid).await? {
        ctx.metrics.auto_bundles_created.inc();
        tracing::info!(kind, target = %obj.name_any(), bundle = %name, "automatic bundle created")
    }
    // The record: once set, this target never gets another bundle. A merge patch touches
    // only its own keys, so records written meanwhile (the other watch) are kept.
    let record = ledger::record_patch(
        &uid,
        &name,
        &recorded,
        ctx.config.auto.lookback,
        Timestamp::now(),
    );
    ledgers
        .patch(
            AUTO_BUNDLE_LEDGER,
            &PatchParams::default(),
            &Patch::Merge(&record),
        )
        .await?;
    let regarding = obj.object_ref(&velero::resource(kind));
    let note = format!("DebugBundle {name} collects what went wrong");
    let said = Said {
        type_: EventType::Normal,
        reason: "DebugBundleCreated",
        action: "AutoBundle",
        note: &note,
    };
    ctx.events.publish(&regarding, None, said).await;
    enforce_cap(&bundles, &ctx).await?;
    Ok(Action::await_change())
}

/// Creates the automatic `bundle` of the target `uid`; false when it exists already, made
/// before a restart that came before its record in the ledger. A bundle of that name for
/// another target is an error.
async fn create_for_target(
    bundles: &Api<DebugBundle>,
    bundle: &DebugBundle,
    uid: &str,
) -> Result<bool, AutoBundleError> {
    match bundles.create(&PostParams::default(), bundle).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 409 => {
            let name = bundle.name_any();
            let existing = bundles.get(&name).await?;
            if existing.labels().get(LABEL_TARGET_UID).map(String::as_str) != Some(uid) {
                return Err(AutoBundleError::NameTaken(name));
            }
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

/// The ledger's records (an error when the chart's ConfigMap is missing).
async fn read_ledger(
    ledgers: &Api<ConfigMap>,
    ns: &str,
) -> Result<std::collections::BTreeMap<String, String>, AutoBundleError> {
    Ok(ledgers
        .get_opt(AUTO_BUNDLE_LEDGER)
        .await?
        .ok_or_else(|| AutoBundleError::LedgerMissing {
            namespace: ns.to_string(),
        })?
        .data
        .unwrap_or_default())
}

/// Deletes the oldest automatic bundles beyond the cap (their finalizer deletes the archives).
async fn enforce_cap(bundles: &Api<DebugBundle>, ctx: &Context) -> Result<(), AutoBundleError> {
    let cap = ctx.config.auto.max_per_namespace;
    let auto = ListParams::default().labels(&format!("{LABEL_AUTO}=true"));
    let listed = kubernetes::list_all(bundles, auto, &ctx.config.limits)
        .await
        .map_err(|e| AutoBundleError::List(e.message))?;
    for name in policy::beyond_cap(&listed.items, cap) {
        tracing::info!(bundle = %name, cap, "deleting the oldest automatic bundle beyond the cap");
        kubernetes::delete_if_present(bundles, &name).await?;
    }
    Ok(())
}

fn error_policy(obj: Arc<DynamicObject>, error: &AutoBundleError, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconcile_error("auto-bundle");
    tracing::warn!(name = %obj.name_any(), %error, "automatic bundle not made yet; retrying");
    Action::requeue(Duration::from_secs(15))
}

/// What a watch knows of stalls: its operations' stillness, and the bound shared by both
/// watches.
#[derive(Clone)]
struct Stalls {
    stills: Arc<stall_bundles::Stills>,
    budget: Arc<StallBudget>,
}

/// An operation deleted while it ran (its watch event, or missing from a relist) is stalled
/// no more: forgotten at once, and the gauge set again.
fn forget_deleted(
    event: &watcher::Result<watcher::Event<DynamicObject>>,
    stills: &stall_bundles::Stills,
    ctx: &Context,
) {
    let Ok(event) = event else {
        return;
    };
    match event {
        watcher::Event::Delete(obj) => stills.forget(&obj.uid().unwrap_or_default()),
        watcher::Event::Init => stills.relist_begins(),
        watcher::Event::InitApply(obj) => stills.relisted(&obj.uid().unwrap_or_default()),
        watcher::Event::InitDone => stills.relist_done(),
        watcher::Event::Apply(_) => return,
    }
    if let Some(stall_after) = ctx.config.auto.stall_after {
        stills.publish(&ctx.metrics.stalls, stall_after, Timestamp::now());
    }
}

/// Runs one watch of `kind` (Restore or Backup) until shutdown; the watch reports to
/// `/readyz`. `budget` bounds the stall bundles of every watch.
pub(crate) async fn run(
    kind: &'static str,
    namespace: Option<String>,
    ctx: Arc<Context>,
    health: WatchHealth,
    budget: Arc<StallBudget>,
) {
    let resource = velero::resource(kind);
    let client = ctx.client.clone();
    let api: Api<DynamicObject> = match &namespace {
        Some(ns) => Api::namespaced_with(client, ns, &resource),
        None => Api::all_with(client, &resource),
    };
    tracing::info!(kind, phases = ?ctx.config.auto.phases(kind), "automatic bundles enabled");
    let writer = reflector::store::Writer::new(resource.clone());
    let reader = writer.as_reader();
    let stalls = Stalls {
        stills: Arc::new(stall_bundles::Stills::new(kind)),
        budget,
    };
    let (seen, seen_ctx) = (stalls.stills.clone(), ctx.clone());
    let watch = watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .inspect(move |event| {
            health.observe(event);
            forget_deleted(event, &seen, &seen_ctx);
        })
        .modify(keep_what_is_read)
        .reflect(writer)
        .touched_objects();
    let shutdown = ctx.shutdown.clone().cancelled_owned();
    Controller::for_stream_with(watch, reader, resource)
        .graceful_shutdown_on(shutdown)
        .run(
            move |obj, ctx| reconcile(kind, obj, ctx, stalls.clone()),
            error_policy,
            ctx,
        )
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::debug!(error = %e, "automatic bundle reconcile error");
            }
        })
        .await;
}

/// Last applied configurations (`kubectl apply`, Helm's and GitOps tools' Schedules), which
/// repeat the spec once more.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// What the store keeps of each Backup or Restore: every one in the cluster is held for as long
/// as the watch runs (a schedule's Backups pile up by the thousand), and the policy and the
/// stall clock read only the metadata and the status. The spec (included namespaces, hooks,
/// resource policies), its last applied copy and the managed fields are dropped.
fn keep_what_is_read(obj: &mut DynamicObject) {
    kubernetes::forget_managed_fields(obj);
    if let Some(fields) = obj.data.as_object_mut() {
        fields.remove("spec");
    }
    if let Some(annotations) = obj.metadata.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
    }
}

#[cfg(test)]
#[path = "auto_bundles_tests.rs"]
mod tests;

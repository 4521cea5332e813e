//! Automatic DebugBundles: watches Restores (and, when configured, Backups) and makes exactly
//! one bundle for each that ends in a configured phase. The record that a bundle was made is
//! an annotation on the Backup or Restore itself, so it survives operator restarts and a
//! bundle deleted by hand.

pub mod policy;

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use jiff::Timestamp;
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams},
    runtime::{
        Controller,
        controller::Action,
        events::{Event, EventType},
        watcher,
    },
};
use velero_debug_crd::{ANNOTATION_AUTO_BUNDLE_CREATED, DebugBundle, LABEL_AUTO, LABEL_TARGET_UID};

use policy::Decision;
pub use policy::Policy;

use crate::{controller::Context, velero};

#[derive(Debug, thiserror::Error)]
pub enum AutoBundleError {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("DebugBundle {0} already exists for another target; waiting for it to go")]
    NameTaken(String),
}

async fn reconcile(
    kind: &'static str,
    obj: Arc<DynamicObject>,
    ctx: Arc<Context>,
) -> Result<Action, AutoBundleError> {
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
    let bundles: Api<DebugBundle> = Api::namespaced(ctx.client.clone(), &ns);
    match bundles.create(&PostParams::default(), &bundle).await {
        Ok(_) => {
            tracing::info!(kind, target = %obj.name_any(), bundle = %name, "automatic bundle created")
        }
        // Made before a restart that came before the record below: the same bundle.
        Err(kube::Error::Api(e)) if e.code == 409 => {
            let existing = bundles.get(&name).await?;
            if existing.labels().get(LABEL_TARGET_UID) != Some(&uid) {
                return Err(AutoBundleError::NameTaken(name));
            }
        }
        Err(e) => return Err(e.into()),
    }
    // The record: once set, this target never gets another bundle.
    let targets: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), &ns, &velero::resource(kind));
    let record = serde_json::json!({
        "metadata": {"annotations": {ANNOTATION_AUTO_BUNDLE_CREATED: name}}
    });
    targets
        .patch(
            &obj.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&record),
        )
        .await?;
    let event = Event {
        type_: EventType::Normal,
        reason: "DebugBundleCreated".into(),
        note: Some(format!("DebugBundle {name} collects what went wrong")),
        action: "AutoBundle".into(),
        secondary: None,
    };
    let reference = obj.object_ref(&velero::resource(kind));
    if let Err(e) = ctx.recorder.publish(&event, &reference).await {
        tracing::warn!(error = %e, "could not publish event");
    }
    enforce_cap(&bundles, ctx.config.auto.max_per_namespace).await?;
    Ok(Action::await_change())
}

/// Deletes the oldest automatic bundles beyond the cap (their finalizer deletes the archives).
async fn enforce_cap(bundles: &Api<DebugBundle>, cap: usize) -> Result<(), AutoBundleError> {
    let mut all = Vec::new();
    let mut params = ListParams::default()
        .labels(&format!("{LABEL_AUTO}=true"))
        .limit(250);
    loop {
        let page = bundles.list(&params).await?;
        all.extend(page.items);
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => break,
        }
    }
    for name in policy::beyond_cap(&all, cap) {
        tracing::info!(bundle = %name, cap, "deleting the oldest automatic bundle beyond the cap");
        match bundles.delete(&name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn error_policy(obj: Arc<DynamicObject>, error: &AutoBundleError, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconcile_error("auto-bundle");
    tracing::warn!(name = %obj.name_any(), %error, "automatic bundle not made yet; retrying");
    Action::requeue(Duration::from_secs(15))
}

/// Runs one watch of `kind` (Restore or Backup) until shutdown.
pub async fn run(kind: &'static str, client: Client, namespace: Option<String>, ctx: Arc<Context>) {
    let resource = velero::resource(kind);
    let api: Api<DynamicObject> = match &namespace {
        Some(ns) => Api::namespaced_with(client, ns, &resource),
        None => Api::all_with(client, &resource),
    };
    tracing::info!(kind, phases = ?ctx.config.auto.phases(kind), "automatic bundles enabled");
    let shutdown = ctx.shutdown.clone().cancelled_owned();
    Controller::new_with(api, watcher::Config::default().any_semantic(), resource)
        .graceful_shutdown_on(shutdown)
        .run(move |obj, ctx| reconcile(kind, obj, ctx), error_policy, ctx)
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::debug!(error = %e, "automatic bundle reconcile error");
            }
        })
        .await;
}

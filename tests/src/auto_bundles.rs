//! The automatic bundles the operator makes for failed Restores: finding one by its target, and
//! the ledger ConfigMap where the operator records each.

use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, ResourceExt, api::DynamicObject};
use velero_debug_crd::{AUTO_BUNDLE_LEDGER, DebugBundle};
use velero_debug_operator::velero::resource as velero_resource;

use crate::{context::TestCtx, polling::eventually};

/// Waits (up to 60 s) for the automatic DebugBundle of the target with this uid; its name.
pub async fn auto_bundle_for(t: &TestCtx, uid: &str) -> Result<String> {
    let (env, client) = (&t.env, &t.client);
    let api: Api<DebugBundle> = Api::namespaced(client.clone(), &env.namespace);
    let selector = format!("velerodebug.io/auto=true,velerodebug.io/target-uid={uid}");
    let lp = kube::api::ListParams::default().labels(&selector);
    eventually("the automatic bundle", Duration::from_secs(60), || async {
        Ok(api.list(&lp).await?.items.first().map(|b| b.name_any()))
    })
    .await
}

/// The name of the automatic bundle the operator recorded in its ledger (the chart's
/// ConfigMap) for the target with this uid, if any; fails on a record it cannot read.
pub async fn ledger_record(t: &TestCtx, uid: &str) -> Result<Option<String>> {
    let (env, client) = (&t.env, &t.client);
    let ledger = Api::<ConfigMap>::namespaced(client.clone(), &env.namespace)
        .get(AUTO_BUNDLE_LEDGER)
        .await
        .with_context(|| format!("the ledger ConfigMap {AUTO_BUNDLE_LEDGER}"))?;
    let Some(record) = ledger.data.unwrap_or_default().remove(uid) else {
        return Ok(None);
    };
    // "<bundle name> <RFC 3339 time recorded>"
    let (bundle, recorded) = record
        .split_once(' ')
        .with_context(|| format!("ledger record {record:?} of {uid}"))?;
    recorded
        .parse::<jiff::Timestamp>()
        .with_context(|| format!("the time of ledger record {record:?} of {uid}"))?;
    Ok(Some(bundle.to_string()))
}

/// Waits (up to 60 s) until the operator recorded in its ledger the automatic bundle it made
/// for the Restore; the bundle's name. The operator sees Restore events in order and records a
/// bundle only once made: when a Restore made last has its record, the operator has also
/// decided on every Restore made or changed before it.
pub async fn auto_bundle_recorded(t: &TestCtx, restore: &str) -> Result<String> {
    let (env, client) = (&t.env, &t.client);
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &env.namespace, &velero_resource("Restore"));
    let uid = api
        .get(restore)
        .await?
        .uid()
        .with_context(|| format!("Restore {restore} has no uid"))?;
    eventually(
        &format!("the automatic bundle of Restore {restore} recorded in the ledger"),
        Duration::from_secs(60),
        || ledger_record(t, &uid),
    )
    .await
}

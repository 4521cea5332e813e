//! Automatic bundles, scenario by scenario, against a mock API server that checks every
//! request (api_server_mock.rs): no server runs.

use std::{sync::Arc, time::Duration};

use http::Method;
use jiff::{SignedDuration, Timestamp};
use kube::{api::DynamicObject, runtime::controller::Action};
use serde_json::json;

use super::{AutoBundleError, reconcile};
use crate::{
    config::Config,
    context::Context,
    test_support::api_server_mock::{self, Exchange, expect},
};

const BUNDLES: &str = "/apis/velerodebug.io/v1alpha1/namespaces/velero/debugbundles";
const LEDGER: &str = "/api/v1/namespaces/velero/configmaps/velero-debug-auto-bundles";

fn partially_failed_restore() -> DynamicObject {
    let ended = (Timestamp::now() - SignedDuration::from_mins(1)).to_string();
    serde_json::from_value(json!({
        "apiVersion": "velero.io/v1", "kind": "Restore",
        "metadata": {"name": "r1", "namespace": "velero", "uid": "r1-uid"},
        "spec": {"backupName": "b1"},
        "status": {"phase": "PartiallyFailed", "completionTimestamp": ended},
    }))
    .expect("a Restore")
}

async fn reconcile_with(
    exchanges: Vec<Exchange>,
) -> (Result<Action, AutoBundleError>, Arc<Context>) {
    let (ctx, api) = api_server_mock::context(Config::default());
    let server = api.serve(exchanges);
    let reconciled = tokio::time::timeout(
        Duration::from_secs(20),
        reconcile("Restore", Arc::new(partially_failed_restore()), ctx.clone()),
    );
    let (result, served) = tokio::join!(reconciled, server);
    served.expect("the mock API server").done().await;
    (result.expect("the reconcile hung on a request"), ctx)
}

/// The ledger ConfigMap as the API server returns it, with these records.
fn ledger(data: serde_json::Value) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "velero-debug-auto-bundles", "namespace": "velero"},
        "data": data})
}

fn created_bundle() -> Exchange {
    expect(Method::POST, BUNDLES)
        .body("/metadata/name", json!("auto-restore-r1"))
        .body("/metadata/labels/velerodebug.io~1auto", json!("true"))
        .body(
            "/metadata/labels/velerodebug.io~1target-uid",
            json!("r1-uid"),
        )
        .body("/metadata/ownerReferences/0/uid", json!("r1-uid"))
        .body("/spec/restore", json!("r1"))
}

#[tokio::test]
async fn a_partially_failed_restore_gets_one_bundle_recorded_in_the_ledger_and_counted() {
    let old = "auto-restore-gone 2026-01-01T00:00:00Z";
    let (result, ctx) = reconcile_with(vec![
        expect(Method::GET, LEDGER).answer(200, ledger(json!({"gone-uid": old}))),
        created_bundle().echo(),
        // Recorded, and the record beyond the look-back pruned; the restore is not written.
        expect(Method::PATCH, LEDGER)
            .text_starts("/data/r1-uid", "auto-restore-r1 ")
            .body("/data/gone-uid", json!(null))
            .answer(200, ledger(json!({}))),
        expect(
            Method::POST,
            "/apis/events.k8s.io/v1/namespaces/velero/events",
        )
        .body("/reason", json!("DebugBundleCreated"))
        .body("/regarding/name", json!("r1"))
        .echo(),
        expect(Method::GET, BUNDLES).query("limit=250").answer(
            200,
            json!({"apiVersion": "velerodebug.io/v1alpha1", "kind": "DebugBundleList",
                "metadata": {}, "items": []}),
        ),
    ])
    .await;
    assert_eq!(result.expect("reconcile"), Action::await_change());
    assert_eq!(ctx.metrics.auto_bundles_created.get(), 1);
    let exposed = ctx.metrics.encode();
    assert!(
        exposed.contains("velero_debug_auto_bundles_created_total 1"),
        "{exposed}"
    );
}

#[tokio::test]
async fn a_bundle_name_taken_by_another_target_is_not_claimed() {
    let other: serde_json::Value = json!({
        "apiVersion": "velerodebug.io/v1alpha1", "kind": "DebugBundle",
        "metadata": {"name": "auto-restore-r1", "namespace": "velero",
            "labels": {"velerodebug.io/auto": "true", "velerodebug.io/target-uid": "other-uid"}},
        "spec": {"restore": "r1"},
    });
    let (result, ctx) = reconcile_with(vec![
        expect(Method::GET, LEDGER).answer(200, ledger(json!({}))),
        created_bundle().refused(409, "AlreadyExists"),
        expect(Method::GET, &format!("{BUNDLES}/auto-restore-r1")).answer(200, other),
    ])
    .await;
    assert!(
        matches!(&result, Err(AutoBundleError::NameTaken(name)) if name == "auto-restore-r1"),
        "{result:?}"
    );
    assert_eq!(ctx.metrics.auto_bundles_created.get(), 0);
}

#[tokio::test]
async fn a_restore_recorded_in_the_ledger_gets_no_second_bundle() {
    let record = json!({"r1-uid": "auto-restore-r1 2026-11-22T10:00:00Z"});
    let (result, ctx) = reconcile_with(vec![
        expect(Method::GET, LEDGER).answer(200, ledger(record)),
    ])
    .await;
    assert_eq!(result.expect("reconcile"), Action::await_change());
    assert_eq!(ctx.metrics.auto_bundles_created.get(), 0);
}

#[tokio::test]
async fn a_missing_ledger_is_an_error_that_names_it_and_makes_no_bundle() {
    let (result, ctx) = reconcile_with(vec![expect(Method::GET, LEDGER).not_found()]).await;
    let error = result.expect_err("no ledger, no bundle");
    assert!(
        matches!(&error, AutoBundleError::LedgerMissing { namespace } if namespace == "velero"),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("velero/velero-debug-auto-bundles"),
        "{error}"
    );
    assert_eq!(ctx.metrics.auto_bundles_created.get(), 0);
}

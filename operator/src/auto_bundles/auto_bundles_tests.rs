//! Automatic bundles, scenario by scenario, against a mock API server that checks every
//! request (api_server_mock.rs): no server runs.

use std::{sync::Arc, time::Duration};

use http::Method;
use jiff::{SignedDuration, Timestamp};
use kube::{api::DynamicObject, runtime::controller::Action};
use serde_json::json;

use super::{
    AutoBundleError, StallBudget, Stalls, keep_what_is_read, reconcile, stall_bundles::Stills,
    stall_decision,
};
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
    // The restore as the watch's store keeps it: every scenario decides on that.
    let mut restore = partially_failed_restore();
    keep_what_is_read(&mut restore);
    let reconciled = tokio::time::timeout(
        Duration::from_secs(20),
        reconcile(
            "Restore",
            Arc::new(restore),
            ctx.clone(),
            stalls_of(&Arc::new(Stills::new("Restore")), 10),
        ),
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

#[test]
fn the_store_keeps_metadata_and_status_and_drops_the_spec_and_its_copies() {
    let mut restore: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "velero.io/v1", "kind": "Restore",
        "metadata": {"name": "r1", "namespace": "velero", "uid": "r1-uid",
            "annotations": {"velerodebug.io/auto-bundle": "false",
                "kubectl.kubernetes.io/last-applied-configuration": "{\"spec\":{}}"},
            "managedFields": [{"manager": "velero-server", "operation": "Update"}]},
        "spec": {"backupName": "b1", "includedNamespaces": ["shop"]},
        "status": {"phase": "InProgress", "progress": {"itemsRestored": 3}},
    }))
    .expect("a Restore");
    keep_what_is_read(&mut restore);
    assert_eq!(restore.data.get("spec"), None);
    assert_eq!(restore.data["status"]["progress"]["itemsRestored"], 3);
    assert_eq!(restore.metadata.managed_fields, None);
    let annotations = restore.metadata.annotations.expect("annotations");
    assert_eq!(
        annotations.keys().collect::<Vec<_>>(),
        ["velerodebug.io/auto-bundle"]
    );
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

const BACKUPS_PVB: &str = "/apis/velero.io/v1/namespaces/velero/podvolumebackups";
const BACKUPS_DU: &str = "/apis/velero.io/v2alpha1/namespaces/velero/datauploads";

fn running_backup() -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "velero.io/v1", "kind": "Backup",
        "metadata": {"name": "b1", "namespace": "velero", "uid": "b1-uid"},
        "status": {"phase": "InProgress", "progress": {"totalItems": 9, "itemsBackedUp": 4}},
    }))
    .expect("a Backup")
}

/// The lists of the backup's volume operations (none: it waits before its first).
fn volume_lists() -> Vec<Exchange> {
    let empty = |kind: &str| {
        json!({"apiVersion": "velero.io/v1", "kind": format!("{kind}List"),
            "metadata": {}, "items": []})
    };
    vec![
        expect(Method::GET, BACKUPS_PVB)
            .query("labelSelector=velero.io%2Fbackup-uid%3Db1-uid")
            .answer(200, empty("PodVolumeBackup")),
        expect(Method::GET, BACKUPS_DU)
            .query("labelSelector=velero.io%2Fbackup-uid%3Db1-uid")
            .answer(200, empty("DataUpload")),
    ]
}

/// The stall state of a watch: `stills`, and a bound of `per_hour` of its own.
fn stalls_of(stills: &Arc<Stills>, per_hour: u32) -> Stalls {
    Stalls {
        stills: stills.clone(),
        budget: Arc::new(StallBudget::new(per_hour)),
    }
}

fn look(
    ctx: &Arc<Context>,
    stalls: &Stalls,
) -> impl Future<Output = Result<Action, AutoBundleError>> {
    reconcile(
        "Backup",
        Arc::new(running_backup()),
        ctx.clone(),
        stalls.clone(),
    )
}

/// Over the hour's bound, a stall makes no request beyond its reads: no bundle, no record,
/// no event; it is counted once and looked at again when the hour turns.
#[tokio::test]
async fn a_stall_over_the_hours_bound_is_withheld_and_counted_once() {
    let stall_after = Duration::from_millis(50);
    let mut config = Config::default();
    config.auto.stall_after = Some(stall_after);
    let (ctx, api) = api_server_mock::context(config);
    let stalls = stalls_of(&Arc::new(Stills::new("Backup")), 0);
    let mut exchanges = volume_lists();
    for _ in 0..2 {
        exchanges.extend(volume_lists());
        exchanges.push(expect(Method::GET, LEDGER).answer(200, ledger(json!({}))));
    }
    let server = api.serve(exchanges);
    let looks = async {
        look(&ctx, &stalls).await.expect("first look");
        tokio::time::sleep(stall_after).await;
        (look(&ctx, &stalls).await, look(&ctx, &stalls).await)
    };
    let (looked, served) =
        tokio::join!(tokio::time::timeout(Duration::from_secs(20), looks), server);
    served.expect("the mock API server").done().await;
    let (second, third) = looked.expect("a look hung");
    for action in [second.expect("second look"), third.expect("third look")] {
        // When the hour turns (less the few milliseconds since the first stall asked).
        let said = format!("{action:?}");
        assert!(
            said.contains("requeue_after: Some(3599.")
                || said.contains("requeue_after: Some(3600s)"),
            "{said}"
        );
    }
    assert_eq!(ctx.metrics.stalls.bundles_created.get(), 0);
    assert_eq!(ctx.metrics.stalls.bundles_withheld.get(), 1);
}

#[tokio::test]
async fn a_stalled_backup_gets_one_bundle_per_stall_recorded_with_its_motion() {
    let stall_after = Duration::from_millis(50);
    let mut config = Config::default();
    config.auto.stall_after = Some(stall_after);
    let (ctx, api) = api_server_mock::context(config);
    let stills = stalls_of(&Arc::new(Stills::new("Backup")), 10);
    let motion = stall_decision::motion(&running_backup().data, &[]);
    let name = format!("auto-backup-b1-stall-{motion}");
    // First look: still for no time yet; nothing but the lists.
    let mut exchanges = volume_lists();
    // Still after stallAfter: one bundle, named for the stall, recorded with its motion.
    exchanges.extend(volume_lists());
    exchanges.extend([
        expect(Method::GET, LEDGER).answer(200, ledger(json!({}))),
        expect(Method::POST, BUNDLES)
            .body("/metadata/name", json!(name))
            .body(
                "/metadata/labels/velerodebug.io~1auto-reason",
                json!("stall"),
            )
            .body(
                "/metadata/labels/velerodebug.io~1target-uid",
                json!("b1-uid"),
            )
            .body("/spec/backup", json!("b1"))
            .echo(),
        expect(Method::PATCH, LEDGER)
            .text_starts("/data/stall.b1-uid", &format!("{name} "))
            .answer(200, ledger(json!({}))),
        expect(
            Method::POST,
            "/apis/events.k8s.io/v1/namespaces/velero/events",
        )
        .body("/reason", json!("DebugBundleCreated"))
        .body("/type", json!("Warning"))
        .echo(),
        expect(Method::GET, BUNDLES).query("limit=250").answer(
            200,
            json!({"apiVersion": "velerodebug.io/v1alpha1", "kind": "DebugBundleList",
                "metadata": {}, "items": []}),
        ),
    ]);
    // The same stall on the next look (the record read back): no second bundle.
    exchanges.extend(volume_lists());
    let record = json!({"stall.b1-uid": format!("{name} 2026-11-28T10:00:00Z {motion}")});
    exchanges.push(expect(Method::GET, LEDGER).answer(200, ledger(record)));
    let server = api.serve(exchanges);
    let looks = async {
        let first = look(&ctx, &stills).await;
        tokio::time::sleep(stall_after).await;
        (first, look(&ctx, &stills).await, look(&ctx, &stills).await)
    };
    let (looked, served) =
        tokio::join!(tokio::time::timeout(Duration::from_secs(20), looks), server);
    served.expect("the mock API server").done().await;
    let (first, second, third) = looked.expect("a look hung");
    assert_eq!(first.expect("first look"), Action::requeue(stall_after));
    let look_every = Action::requeue(Duration::from_secs(5));
    assert_eq!(second.expect("second look"), look_every);
    assert_eq!(third.expect("third look"), look_every);
    assert_eq!(ctx.metrics.stalls.bundles_created.get(), 1);
    assert_eq!(ctx.metrics.auto_bundles_created.get(), 0, "counted apart");
    let exposed = ctx.metrics.encode();
    assert!(
        exposed.contains(r#"velero_debug_operations_stalled{kind="Backup",waiting_on="items"} 1"#),
        "{exposed}"
    );
}

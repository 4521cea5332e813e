//! The controller's glue, scenario by scenario, against a mock API server that checks every
//! request (api_server_mock.rs): no server runs.

use std::{sync::Arc, time::Duration};

use http::Method;
use jiff::{SignedDuration, Timestamp};
use kube::runtime::controller::Action;
use serde_json::{Value, json};
use velero_debug_crd::DebugBundle;

use super::{reconcile, watched::WatchedBundle};
use crate::{
    config::Config,
    test_support::api_server_mock::{self, Exchange, expect},
};

const BUNDLE: &str = "/apis/velerodebug.io/v1alpha1/namespaces/velero/debugbundles/vdb";
const STATUS: &str = "/apis/velerodebug.io/v1alpha1/namespaces/velero/debugbundles/vdb/status";
const RESTORE: &str = "/apis/velero.io/v1/namespaces/velero/restores/r1";
const BACKUP: &str = "/apis/velero.io/v1/namespaces/velero/backups/b1";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/velero/events";

/// A DebugBundle for restore r1, created `age` ago, with the finalizer unless `bare`.
fn bundle(age: SignedDuration, status: Value, bare: bool) -> DebugBundle {
    let finalizers = if bare {
        json!([])
    } else {
        json!(["velerodebug.io/archive-cleanup"])
    };
    serde_json::from_value(json!({
        "apiVersion": "velerodebug.io/v1alpha1", "kind": "DebugBundle",
        "metadata": {
            "name": "vdb", "namespace": "velero", "uid": "0123abcd-0000", "generation": 1,
            "creationTimestamp": (Timestamp::now() - age).to_string(),
            "finalizers": finalizers,
        },
        "spec": {"restore": "r1"},
        "status": status,
    }))
    .expect("a DebugBundle")
}

fn fresh() -> DebugBundle {
    bundle(SignedDuration::from_secs(5), json!({}), false)
}

async fn reconcile_with(bundle: DebugBundle, exchanges: Vec<Exchange>) -> Action {
    reconcile_raw(serde_json::to_value(bundle).unwrap(), exchanges).await
}

/// Reconciles a stored object as the watch hands it over, readable or not.
async fn reconcile_raw(stored: Value, exchanges: Vec<Exchange>) -> Action {
    let watched: WatchedBundle = serde_json::from_value(stored).expect("any stored object");
    let (ctx, api) = api_server_mock::context(Config::default());
    let server = api.serve(exchanges);
    let reconciled =
        tokio::time::timeout(Duration::from_secs(20), reconcile(Arc::new(watched), ctx));
    let (action, served) = tokio::join!(reconciled, server);
    served.expect("the mock API server").done().await;
    let action = action.expect("the reconcile hung on a request");
    action.expect("reconcile")
}

fn restore() -> Value {
    json!({"apiVersion": "velero.io/v1", "kind": "Restore",
        "metadata": {"name": "r1", "namespace": "velero", "uid": "r1-uid"},
        "spec": {"backupName": "b1"}, "status": {"phase": "PartiallyFailed"}})
}

fn backup(location: &str) -> Value {
    json!({"apiVersion": "velero.io/v1", "kind": "Backup",
        "metadata": {"name": "b1", "namespace": "velero"},
        "spec": {"storageLocation": location}})
}

fn bsl(name: &str, extra: Value) -> Value {
    let mut spec = json!({"provider": "aws", "objectStorage": {"bucket": "velero"},
        "config": {"region": "minio", "s3Url": "http://127.0.0.1:9"}});
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    json!({"apiVersion": "velero.io/v1", "kind": "BackupStorageLocation",
        "metadata": {"name": name, "namespace": "velero"}, "spec": spec})
}

fn secret(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "velero"},
        "data": {"cloud": "W2RlZmF1bHRdCg=="}})
}

/// The status write: server-side apply by the operator's field manager.
fn status_write(phase: &str, reason: &str) -> Exchange {
    expect(Method::PATCH, STATUS)
        .query("fieldManager=velero-debug-operator")
        .query("force=true")
        .body("/kind", json!("DebugBundle"))
        .body("/status/phase", json!(phase))
        .body("/status/conditions/0/reason", json!(reason))
        .answer(200, serde_json::to_value(fresh()).unwrap())
}

/// The read of the stored bundle a run makes before it acts on the watch's copy: here the
/// same as that copy.
fn stored() -> Exchange {
    expect(Method::GET, BUNDLE).answer(200, serde_json::to_value(fresh()).unwrap())
}

/// `bundle` as stored at `resource_version`.
fn at_version(mut bundle: DebugBundle, resource_version: &str) -> DebugBundle {
    bundle.metadata.resource_version = Some(resource_version.into());
    bundle
}

/// The Warning event of a bundle that failed: its reason is the condition's.
fn failed_event(reason: &str) -> Exchange {
    expect(Method::POST, EVENTS)
        .body("/type", json!("Warning"))
        .body("/reason", json!(reason))
        .body("/regarding/name", json!("vdb"))
        .echo()
}

#[tokio::test]
async fn a_new_bundle_gets_the_finalizer_first() {
    let action = reconcile_with(
        bundle(SignedDuration::from_secs(5), json!(null), true),
        vec![
            expect(Method::PATCH, BUNDLE)
                .body("/0/op", json!("test"))
                .body("/1/op", json!("add"))
                .body("/1/value", json!(["velerodebug.io/archive-cleanup"]))
                .answer(200, serde_json::to_value(fresh()).unwrap()),
        ],
    )
    .await;
    assert_eq!(action, Action::await_change());
}

#[tokio::test]
async fn a_missing_target_is_waited_for() {
    let action = reconcile_with(
        fresh(),
        vec![
            stored(),
            expect(Method::GET, RESTORE).not_found(),
            status_write("Pending", "WaitingForTarget").body("/status/target", json!("restore/r1")),
        ],
    )
    .await;
    assert_eq!(action, Action::requeue(Duration::from_secs(5)));
}

#[tokio::test]
async fn a_target_still_missing_after_the_wait_fails_with_an_event() {
    let action = reconcile_with(
        bundle(SignedDuration::from_hours(1), json!({}), false),
        vec![
            stored(),
            expect(Method::GET, RESTORE).not_found(),
            status_write("Failed", "TargetNotFound").body(
                "/status/conditions/0/message",
                json!("Restore r1 does not exist in namespace velero (waited 120s)"),
            ),
            failed_event("TargetNotFound").body(
                "/note",
                json!("Restore r1 does not exist in namespace velero (waited 120s)"),
            ),
        ],
    )
    .await;
    assert_eq!(action, Action::await_change());
}

#[tokio::test]
async fn a_read_only_storage_location_fails_the_bundle() {
    let action = reconcile_with(
        fresh(),
        vec![
            stored(),
            expect(Method::GET, RESTORE).answer(200, restore()),
            expect(Method::GET, BACKUP).answer(200, backup("ro")),
            expect(
                Method::GET,
                "/apis/velero.io/v1/namespaces/velero/backupstoragelocations/ro",
            )
            .answer(200, bsl("ro", json!({"accessMode": "ReadOnly"}))),
            expect(
                Method::GET,
                "/api/v1/namespaces/velero/secrets/cloud-credentials",
            )
            .answer(200, secret("cloud-credentials")),
            status_write("Failed", "StorageLocationReadOnly"),
            failed_event("StorageLocationReadOnly"),
        ],
    )
    .await;
    assert_eq!(action, Action::await_change());
}

#[tokio::test]
async fn a_credential_the_operator_may_not_read_fails_the_bundle() {
    let location = json!({"credential": {"name": "other-creds", "key": "cloud"}});
    let action = reconcile_with(
        fresh(),
        vec![
            stored(),
            expect(Method::GET, RESTORE).answer(200, restore()),
            expect(Method::GET, BACKUP).answer(200, backup("default")),
            expect(Method::GET, "/apis/velero.io/v1/namespaces/velero/backupstoragelocations/default")
                .answer(200, bsl("default", location)),
            expect(Method::GET, "/api/v1/namespaces/velero/secrets/other-creds")
                .refused(403, "Forbidden"),
            status_write("Failed", "CredentialsInvalid").body(
                "/status/conditions/0/message",
                json!("the operator may not read Secret other-creds, the credential of BackupStorageLocation default: add it to the Helm value rbac.credentialSecrets"),
            ),
            failed_event("CredentialsInvalid"),
        ],
    )
    .await;
    assert_eq!(action, Action::await_change());
}

#[tokio::test]
async fn a_transient_failure_is_retried_after_its_backoff() {
    let action = reconcile_with(
        bundle(SignedDuration::from_secs(5), json!({"attempts": 1}), false),
        vec![
            stored(),
            expect(Method::GET, RESTORE).refused(503, "ServiceUnavailable"),
            expect(Method::PATCH, STATUS)
                .body("/status/attempts", json!(2))
                .body("/status/conditions/0/reason", json!("KubernetesAPIError"))
                .answer(200, serde_json::to_value(fresh()).unwrap()),
        ],
    )
    .await;
    // The second retry waits 20 s (within the second the test took).
    let Some(wait) = requeue_of(&action) else {
        panic!("not requeued: {action:?}")
    };
    assert!(
        (Duration::from_secs(18)..=Duration::from_secs(20)).contains(&wait),
        "{wait:?}"
    );
}

#[tokio::test]
async fn the_attempt_limit_ends_the_bundle_failed() {
    let action = reconcile_with(
        bundle(SignedDuration::from_secs(5), json!({"attempts": 4}), false),
        vec![
            stored(),
            expect(Method::GET, RESTORE).refused(503, "ServiceUnavailable"),
            status_write("Failed", "KubernetesAPIError").body(
                "/status/conditions/0/message",
                json!("reading Restore r1: refused by the mock (ServiceUnavailable) (HTTP 503) (gave up after 5 attempts)"),
            ),
            failed_event("KubernetesAPIError"),
        ],
    )
    .await;
    assert_eq!(action, Action::await_change());
}

/// The delay of a requeue, read from its Debug form (Action keeps it private).
fn requeue_of(action: &Action) -> Option<Duration> {
    let debug = format!("{action:?}");
    let seconds = debug.split("Some(").nth(1)?.split("s)").next()?;
    seconds.parse::<f64>().ok().map(Duration::from_secs_f64)
}

/// A bundle the API server stored (an older CRD admitted it) but our types cannot read.
fn unreadable(status: Value) -> Value {
    let mut stored = serde_json::to_value(fresh()).unwrap();
    stored["spec"]["maxLogBytesPerContainer"] = json!("16Mi");
    stored["status"] = status;
    stored
}

#[tokio::test]
async fn a_bundle_our_types_cannot_read_fails_alone_naming_the_field() {
    let action = reconcile_raw(
        unreadable(json!({})),
        vec![
            status_write("Failed", "InvalidSpec")
                .body("/status/observedGeneration", json!(1))
                .body(
                    "/status/conditions/0/message",
                    json!("this operator cannot read the DebugBundle: spec.maxLogBytesPerContainer: invalid type: string \"16Mi\", expected i64; delete it and create it anew with values the CRD describes"),
                ),
        ],
    )
    .await;
    assert_eq!(action, Action::await_change());
    // Once said, never again: each write would wake the watch.
    let recorded = unreadable(json!({"phase": "Failed", "observedGeneration": 1}));
    assert_eq!(
        reconcile_raw(recorded, vec![]).await,
        Action::await_change()
    );
}

#[tokio::test]
async fn a_bundle_our_types_cannot_read_can_be_deleted() {
    let mut stored = unreadable(json!({}));
    stored["metadata"]["deletionTimestamp"] = json!(Timestamp::now().to_string());
    let mut gone = stored.clone();
    gone["metadata"]["finalizers"] = json!([]);
    let action = reconcile_raw(
        stored,
        vec![
            expect(Method::PATCH, BUNDLE)
                .body("/0/op", json!("test"))
                .body("/1/op", json!("remove"))
                .answer(200, gone),
        ],
    )
    .await;
    assert_eq!(action, Action::await_change());
}

#[tokio::test]
async fn an_attempt_cut_short_is_tried_again_after_saying_so() {
    let action = reconcile_with(
        bundle(
            SignedDuration::from_secs(5),
            json!({"phase": "Collecting", "attempts": 2}),
            false,
        ),
        vec![
            stored(),
            status_write("Pending", "OperatorStoppedWhileCollecting")
                .body("/status/attempts", json!(2)),
            stored(),
            expect(Method::GET, RESTORE).not_found(),
            status_write("Pending", "WaitingForTarget"),
        ],
    )
    .await;
    assert_eq!(action, Action::requeue(Duration::from_secs(5)));
}

/// The watch's copy still says Uploading, but the pass that just ended in this process
/// completed the bundle: nothing is written, counted or collected.
#[tokio::test]
async fn a_stale_copy_of_a_bundle_completed_since_is_not_taken_as_cut_short() {
    let copy = at_version(
        bundle(
            SignedDuration::from_secs(5),
            json!({"phase": "Uploading", "attempts": 1}),
            false,
        ),
        "41",
    );
    let completed = at_version(
        bundle(
            SignedDuration::from_secs(5),
            json!({"phase": "Completed", "attempts": 1, "observedGeneration": 1}),
            false,
        ),
        "57",
    );
    let action = reconcile_with(
        copy,
        vec![expect(Method::GET, BUNDLE).answer(200, serde_json::to_value(completed).unwrap())],
    )
    .await;
    assert_eq!(action, Action::requeue(Duration::from_secs(2)));
}

/// The watch's copy says Pending, but the bundle was collected since: once it holds a slot,
/// the run reads nothing for it and gives the slot back.
#[tokio::test]
async fn a_stale_pending_copy_gives_its_slot_back_and_collects_nothing() {
    let (ctx, api) = api_server_mock::context(Config::default());
    let copy = at_version(fresh(), "41");
    let newer = at_version(
        bundle(
            SignedDuration::from_secs(5),
            json!({"phase": "Completed", "observedGeneration": 1}),
            false,
        ),
        "57",
    );
    let reconciled = reconcile_spawned(copy, &ctx);
    let api = api
        .serve(vec![
            expect(Method::GET, BUNDLE).answer(200, serde_json::to_value(newer).unwrap()),
        ])
        .await
        .expect("the mock API server");
    let action = finished(reconciled).await;
    api.done().await;
    assert_eq!(action, Action::requeue(Duration::from_secs(2)));
    assert_eq!(
        ctx.collect_slots.available_permits(),
        Config::default().concurrency as usize
    );
}

#[tokio::test]
async fn attempts_cut_short_up_to_the_limit_fail_the_bundle() {
    let action = reconcile_with(
        bundle(
            SignedDuration::from_secs(5),
            json!({"phase": "Uploading", "attempts": 5}),
            false,
        ),
        vec![
            stored(),
            status_write("Failed", "OperatorStoppedWhileCollecting")
                .body("/status/attempts", json!(5)),
            failed_event("OperatorStoppedWhileCollecting"),
        ],
    )
    .await;
    assert_eq!(action, Action::await_change());
}

#[tokio::test]
async fn a_panic_while_making_a_bundle_fails_that_bundle_only() {
    let (ctx, api) = api_server_mock::context(Config::default());
    let server = api.serve(vec![
        status_write("Failed", "InternalError").body(
            "/status/conditions/0/message",
            json!("the operator hit a bug while making this bundle (a value from the cluster); it keeps running, and this is worth a report"),
        ),
        failed_event("InternalError"),
    ]);
    let bundle = fresh();
    let work = async { panic!("a value from the cluster") };
    let guarded = super::failing_on_panic(&bundle, &ctx, work);
    let (action, served) = tokio::join!(guarded, server);
    served.expect("the mock API server").done().await;
    assert_eq!(action.expect("reconcile"), Action::await_change());
}

/// A reconcile of `bundle` started on a task of its own, for scenarios that act while it runs.
fn reconcile_spawned(
    bundle: DebugBundle,
    ctx: &Arc<crate::context::Context>,
) -> tokio::task::JoinHandle<Result<Action, super::error::Error>> {
    let watched: WatchedBundle =
        serde_json::from_value(serde_json::to_value(bundle).unwrap()).expect("a bundle");
    tokio::spawn(reconcile(Arc::new(watched), ctx.clone()))
}

/// The action of a reconcile started by `reconcile_spawned`, once it ends.
async fn finished(
    reconciled: tokio::task::JoinHandle<Result<Action, super::error::Error>>,
) -> Action {
    tokio::time::timeout(Duration::from_secs(20), reconciled)
        .await
        .expect("the reconcile hung")
        .expect("the reconcile task")
        .expect("reconcile")
}

#[tokio::test]
async fn a_queued_bundle_reads_nothing_until_it_holds_a_slot() {
    let (ctx, api) = api_server_mock::context(Config {
        concurrency: 1,
        ..Config::default()
    });
    let busy = ctx.collect_slots.clone().try_acquire_owned().unwrap();
    let reconciled = reconcile_spawned(fresh(), &ctx);
    // While queued it says so, and nothing else is asked (serve waits for a request more).
    let api = api
        .serve(vec![status_write("Pending", "Queued").body(
            "/status/conditions/0/message",
            json!("waiting for one of the operator's 1 collection slots"),
        )])
        .await
        .expect("the mock API server");
    drop(busy);
    let api = api
        .serve(vec![
            // Still there: the slot is kept.
            expect(Method::GET, BUNDLE).answer(200, serde_json::to_value(fresh()).unwrap()),
            expect(Method::GET, RESTORE).not_found(),
            status_write("Pending", "WaitingForTarget"),
        ])
        .await
        .expect("the mock API server");
    let action = finished(reconciled).await;
    api.done().await;
    assert_eq!(action, Action::requeue(Duration::from_secs(5)));
    // Waiting for its target, a bundle holds no slot.
    assert_eq!(ctx.collect_slots.available_permits(), 1);
}

#[tokio::test]
async fn a_bundle_waiting_for_its_target_keeps_saying_so_while_queued() {
    let waiting = json!({"phase": "Pending", "target": "restore/r1", "conditions": [{
        "type": "Ready", "status": "False", "reason": "WaitingForTarget",
        "message": "restore/r1 does not exist (yet); waiting for it",
        "lastTransitionTime": Timestamp::now().to_string(), "observedGeneration": 1}]});
    let (ctx, api) = api_server_mock::context(Config {
        concurrency: 1,
        ..Config::default()
    });
    let busy = ctx.collect_slots.clone().try_acquire_owned().unwrap();
    let reconciled = reconcile_spawned(bundle(SignedDuration::from_secs(5), waiting, false), &ctx);
    // No Queued write while the slot is taken.
    let api = api.serve(vec![]).await.expect("the mock API server");
    drop(busy);
    let api = api
        .serve(vec![
            expect(Method::GET, BUNDLE).answer(200, serde_json::to_value(fresh()).unwrap()),
            expect(Method::GET, RESTORE).not_found(),
            status_write("Pending", "WaitingForTarget"),
        ])
        .await
        .expect("the mock API server");
    let action = finished(reconciled).await;
    api.done().await;
    assert_eq!(action, Action::requeue(Duration::from_secs(5)));
}

#[tokio::test]
async fn a_bundle_past_its_deadline_frees_its_slot_and_is_retried() {
    let (ctx, api) = api_server_mock::context(Config {
        concurrency: 1,
        bundle_deadline: Duration::from_secs(1),
        ..Config::default()
    });
    let reconciled = reconcile_spawned(fresh(), &ctx);
    let api = api
        .serve(vec![
            stored(),
            // The API server never answers (no timeout on the mock's client): the deadline
            // stops the attempt.
            expect(Method::GET, RESTORE).unanswered(),
            expect(Method::PATCH, STATUS)
                .body("/status/phase", json!("Pending"))
                .body("/status/attempts", json!(1))
                .body("/status/conditions/0/reason", json!("DeadlineExceeded"))
                .body(
                    "/status/conditions/0/message",
                    json!("attempt 1 failed: the attempt did not finish within the bundle deadline of 1s (BUNDLE_DEADLINE) and was stopped in step dereference"),
                )
                .answer(200, serde_json::to_value(fresh()).unwrap()),
        ])
        .await
        .expect("the mock API server");
    let action = finished(reconciled).await;
    api.done().await;
    assert!(requeue_of(&action).is_some(), "not requeued: {action:?}");
    assert_eq!(ctx.collect_slots.available_permits(), 1);
}

/// What a bundle waiting in the queue costs besides its object: its reconcile's future (17 KiB
/// in a debug build when measured; the state of the steps after the queue is boxed apart).
#[tokio::test]
async fn a_reconcile_waiting_in_the_queue_is_small() {
    let (ctx, _api) = api_server_mock::context(Config::default());
    let watched: WatchedBundle =
        serde_json::from_value(serde_json::to_value(fresh()).unwrap()).expect("a bundle");
    let waiting = reconcile(Arc::new(watched), ctx);
    let size = std::mem::size_of_val(&waiting);
    assert!(size < 32 * 1024, "{size} bytes");
}

/// Reconciles `bundle` after the term ended (the lease lost): no request may be made.
async fn reconcile_after_the_term(bundle: DebugBundle) -> super::Error {
    reconcile_failing_in(bundle, vec![], true).await
}

/// Reconciles `bundle` against `exchanges`, in a term already over when `term_over`,
/// expecting the reconcile to fail.
async fn reconcile_failing_in(
    bundle: DebugBundle,
    exchanges: Vec<Exchange>,
    term_over: bool,
) -> super::Error {
    let watched: WatchedBundle =
        serde_json::from_value(serde_json::to_value(bundle).unwrap()).expect("any stored object");
    let (ctx, api) = api_server_mock::context(Config::default());
    if term_over {
        ctx.shutdown.cancel();
    }
    let server = api.serve(exchanges);
    let reconciled =
        tokio::time::timeout(Duration::from_secs(20), reconcile(Arc::new(watched), ctx));
    let (result, served) = tokio::join!(reconciled, server);
    served.expect("the mock API server").done().await;
    result
        .expect("the reconcile hung on a request")
        .expect_err("the reconcile should fail")
}

fn is_shutting_down(e: &super::Error) -> bool {
    use kube::runtime::finalizer::Error as F;
    matches!(e, super::Error::Finalizer(f) if matches!(f.as_ref(), F::ApplyFailed(super::Error::ShuttingDown)))
}

#[tokio::test]
async fn no_status_is_written_once_the_term_is_over() {
    // Would be failed (attempts cut short up to the limit) by a leader.
    let cut_short = bundle(
        SignedDuration::from_secs(5),
        json!({"phase": "Uploading", "attempts": 5}),
        false,
    );
    let e = reconcile_after_the_term(cut_short).await;
    assert!(is_shutting_down(&e), "{e:?}");
}

#[tokio::test]
async fn no_bundle_is_deleted_once_the_term_is_over() {
    // Its retention passed long ago: a leader deletes it.
    let expired = bundle(
        SignedDuration::from_hours(24 * 30),
        json!({"phase": "Completed", "observedGeneration": 1,
               "completionTime": (Timestamp::now() - SignedDuration::from_hours(24 * 29)).to_string()}),
        false,
    );
    let e = reconcile_after_the_term(expired).await;
    assert!(is_shutting_down(&e), "{e:?}");
}

/// The first status write of a run, fenced at the version the run saw.
fn fenced_write(resource_version: &str) -> Exchange {
    status_write("Pending", "WaitingForTarget")
        .body("/metadata/resourceVersion", json!(resource_version))
}

#[tokio::test]
async fn a_status_another_writer_changed_is_not_overwritten() {
    let seen = at_version(fresh(), "41");
    // A leader that took over meanwhile has moved the bundle on.
    let theirs = at_version(
        bundle(
            SignedDuration::from_secs(5),
            json!({"phase": "Collecting"}),
            false,
        ),
        "42",
    );
    let e = reconcile_failing_in(
        seen.clone(),
        vec![
            expect(Method::GET, BUNDLE).answer(200, serde_json::to_value(&seen).unwrap()),
            expect(Method::GET, RESTORE).not_found(),
            fenced_write("41").refused(409, "Conflict"),
            expect(Method::GET, BUNDLE).answer(200, serde_json::to_value(&theirs).unwrap()),
        ],
        false,
    )
    .await;
    assert!(is_shutting_down(&e), "{e:?}");
}

#[tokio::test]
async fn a_refused_write_over_a_change_of_metadata_only_is_made_again() {
    let seen = at_version(fresh(), "41");
    // Someone labelled the bundle: its status is as the run saw it.
    let labelled = at_version(fresh(), "43");
    let action = reconcile_with(
        seen.clone(),
        vec![
            expect(Method::GET, BUNDLE).answer(200, serde_json::to_value(&seen).unwrap()),
            expect(Method::GET, RESTORE).not_found(),
            fenced_write("41").refused(409, "Conflict"),
            expect(Method::GET, BUNDLE).answer(200, serde_json::to_value(&labelled).unwrap()),
            fenced_write("43"),
        ],
    )
    .await;
    assert_eq!(action, Action::requeue(Duration::from_secs(5)));
}

//! The garbage collector of archives (operator/src/orphans.rs) on the real environment: an
//! archive whose DebugBundle is gone is deleted; the archive of a live bundle, another
//! cluster's, another install's (another Velero namespace on the same bucket and prefix), one
//! without a mark and a file that is not an archive are left; an open upload is aborted only in
//! our folder and only after the bundle deadline. The e2e operator sweeps every 3 s with no
//! grace period (tests/env/lifecycle/operator/operator-up.sh).

use std::time::Duration;

use anyhow::{Result, ensure};
use k8s_openapi::{
    api::core::v1::{ConfigMap, Secret},
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api, Client, ResourceExt,
    api::{ApiResource, DeleteParams, DynamicObject, Patch, PatchParams},
};
use velero_debug_crd::{DebugBundle, INSTALL_RECORD};
use velero_debug_e2e::{
    backups::real_backup,
    bundles::{bundle_gone, completed_archive},
    context::{TestCtx, unique_name},
    env::Env,
    operators::restart_operators,
    polling::eventually,
    storage_locations::storage_location,
    stores::{self, object_exists},
};
use velero_debug_operator::velero::resource as velero_resource;

/// The metadata the operator marks its archives with.
const INSTALL_MARK: &str = "velero-debug-install";

/// The mark of the install serving `namespace` in this cluster: the CRD's uid, the namespace
/// and the writer its install record lists last (an unregistered one when it has none).
async fn install_mark(client: &Client, namespace: &str) -> Result<String> {
    let crd = Api::<CustomResourceDefinition>::all(client.clone())
        .get("debugbundles.velerodebug.io")
        .await?;
    let record = Api::<ConfigMap>::namespaced(client.clone(), namespace)
        .get_opt(INSTALL_RECORD)
        .await?
        .and_then(|c| c.data)
        .unwrap_or_default();
    let writer = record
        .iter()
        .filter_map(|(k, v)| Some((v, k.strip_prefix("writer.")?)))
        .max()
        .map_or("unregistered", |(_, w)| w);
    Ok(format!(
        "{}/{namespace}/{writer}",
        crd.uid().unwrap_or_default()
    ))
}

/// Records an upload in the install record of `namespace`, as the operator does when it
/// begins one.
async fn record_upload(t: &TestCtx, location: &str, key: &str, id: &str) -> Result<()> {
    let entry = velero_debug_operator::install_record::upload_entry(location, key, id);
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    Api::<ConfigMap>::namespaced(t.client.clone(), &t.env.namespace)
        .patch(
            INSTALL_RECORD,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"data": {entry: now}})),
        )
        .await?;
    Ok(())
}

/// Puts `key` into the environment's bucket, with `mark` as the install mark when given.
async fn put(env: &Env, key: &str, mark: Option<&str>) -> Result<()> {
    let s3 = env.s3_client(&env.s3.endpoint);
    let mut put = s3
        .put_object()
        .bucket(&env.s3.bucket)
        .key(key)
        .body(b"not really a bundle".to_vec().into());
    if let Some(mark) = mark {
        put = put.metadata(INSTALL_MARK, mark);
    }
    put.send().await?;
    Ok(())
}

async fn delete_object(env: &Env, key: &str) {
    let _ = env
        .s3_client(&env.s3.endpoint)
        .delete_object()
        .bucket(&env.s3.bucket)
        .key(key)
        .send()
        .await;
}

fn archive_key(prefix: &str, namespace: &str, name: &str, uid: &str) -> String {
    let short: String = uid.chars().filter(|c| *c != '-').take(8).collect();
    format!("{prefix}/plugins/velero-debug-operator/bundles/{namespace}/{name}-{short}.tar.gz")
}

#[tokio::test]
async fn archives_of_gone_bundles_are_collected_and_nothing_else() -> Result<()> {
    let t = &TestCtx::new().await?;
    let ns = &t.env.namespace;
    let mark = install_mark(&t.client, ns).await?;
    let other_install = install_mark(&t.client, "velero-b").await?;
    let (_, backup, _) = real_backup(t, "orphans").await?;
    let (_, live_key) = completed_archive(t, serde_json::json!({"backup": backup})).await?;

    let prefix = &t.env.s3.prefix;
    let uid = "0a1b2c3d-0000-4000-8000-000000000000";
    // As a crash between the upload and the status write leaves it: this cluster's mark, no
    // bundle of that name and uid.
    let ghost = archive_key(prefix, ns, &unique_name("ghost"), uid);
    let foreign = archive_key(prefix, ns, &unique_name("foreign"), uid);
    let unmarked = archive_key(prefix, ns, &unique_name("unmarked"), uid);
    // A cluster cloned from this one's etcd snapshot: the same uid and namespace, a writer
    // registered in its own copy of the record only.
    let cloned = archive_key(prefix, ns, &unique_name("cloned"), uid);
    let clone_mark = format!("{}/clone-writer", mark.rsplit_once('/').map_or("", |m| m.0));
    // The mark of an archive written before writers were recorded.
    let older = archive_key(prefix, ns, &unique_name("older"), uid);
    let older_mark = mark.rsplit_once('/').map_or("", |m| m.0).to_string();
    // Another install of this cluster (Velero in namespace velero-b, same bucket and prefix):
    // its folder, and one of its archives in ours.
    let other_folder = archive_key(prefix, "velero-b", &unique_name("ghost"), uid);
    let other_marked = archive_key(prefix, ns, &unique_name("other-install"), uid);
    let not_an_archive = format!(
        "{prefix}/plugins/velero-debug-operator/bundles/{ns}/{}.txt",
        unique_name("notes")
    );
    put(&t.env, &ghost, Some(&mark)).await?;
    put(&t.env, &foreign, Some("another-cluster")).await?;
    put(&t.env, &unmarked, None).await?;
    put(&t.env, &cloned, Some(&clone_mark)).await?;
    put(&t.env, &older, Some(&older_mark)).await?;
    put(&t.env, &other_folder, Some(&other_install)).await?;
    put(&t.env, &other_marked, Some(&other_install)).await?;
    put(&t.env, &not_an_archive, Some(&mark)).await?;

    let collected = eventually(
        "the orphan archive to be deleted",
        Duration::from_secs(60),
        || async { Ok((!object_exists(&t.env, &ghost).await?).then_some(())) },
    )
    .await;
    // Several sweeps later, the rest is still there.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let mut left = Vec::new();
    let kept = [
        &live_key,
        &foreign,
        &unmarked,
        &cloned,
        &older,
        &not_an_archive,
        &other_folder,
        &other_marked,
    ];
    for key in kept {
        left.push((key.clone(), object_exists(&t.env, key).await?));
    }
    for key in &kept[1..] {
        delete_object(&t.env, key).await;
    }
    collected?;
    ensure!(
        left.iter().all(|(_, there)| *there),
        "deleted although not an orphan: {left:?}"
    );
    Ok(())
}

#[tokio::test]
async fn an_archive_left_by_a_deletion_without_credentials_is_collected_later() -> Result<()> {
    let t = &TestCtx::new().await?;
    let (_, backup, _) = real_backup(t, "orphans").await?;

    // A BSL of its own whose credential is a key of its own in cloud-credentials (the only
    // Secret the operator may read).
    let key = unique_name("creds");
    let credential = format!(
        "[default]\naws_access_key_id={}\naws_secret_access_key={}\n",
        t.env.s3.access_key, t.env.s3.secret_key
    );
    let secrets = Api::<Secret>::namespaced(t.client.clone(), &t.env.namespace);
    let set_key = |value: serde_json::Value| {
        let secrets = secrets.clone();
        let key = key.clone();
        async move {
            secrets
                .patch(
                    "cloud-credentials",
                    &PatchParams::default(),
                    &Patch::Merge(&serde_json::json!({"stringData": {key: value}})),
                )
                .await
        }
    };
    set_key(serde_json::json!(credential)).await?;
    t.cleanup.merge_patch(
        &ApiResource::erase::<Secret>(&()),
        Some(&t.env.namespace),
        "cloud-credentials",
        serde_json::json!({"data": {key.clone(): null}}),
    );
    let bsl = storage_location(
        t,
        serde_json::json!({"credential": {"name": "cloud-credentials", "key": key}}),
    )
    .await?;

    let (name, archive) = completed_archive(
        t,
        serde_json::json!({"backup": backup, "storageLocation": bsl}),
    )
    .await?;
    ensure!(object_exists(&t.env, &archive).await?);

    // The credential goes; the bundle is deleted (and is gone: deletion does not hang), and
    // its archive cannot be deleted with it.
    secrets
        .patch(
            "cloud-credentials",
            &PatchParams::default(),
            &Patch::Merge(&serde_json::json!({"data": {key.clone(): null}})),
        )
        .await?;
    Api::<DebugBundle>::namespaced(t.client.clone(), &t.env.namespace)
        .delete(&name, &DeleteParams::default())
        .await?;
    bundle_gone(t, &name, Duration::from_secs(60)).await?;
    let left = object_exists(&t.env, &archive).await?;

    // The credential comes back: the garbage collector takes the archive.
    set_key(serde_json::json!(credential)).await?;
    let collected = eventually(
        "the archive left behind to be deleted",
        Duration::from_secs(60),
        || async { Ok((!object_exists(&t.env, &archive).await?).then_some(())) },
    )
    .await;
    if collected.is_err() {
        delete_object(&t.env, &archive).await;
    }
    ensure!(left, "the archive was gone before the credential came back");
    collected
}

#[tokio::test]
async fn a_bundle_whose_store_is_unreachable_is_deleted_within_the_limit() -> Result<()> {
    let t = &TestCtx::new().await?;
    let (_, backup, _) = real_backup(t, "orphans").await?;
    let bsl = storage_location(t, serde_json::json!({})).await?;
    let bsls: Api<DynamicObject> = Api::namespaced_with(
        t.client.clone(),
        &t.env.namespace,
        &velero_resource("BackupStorageLocation"),
    );
    let (name, archive) = completed_archive(
        t,
        serde_json::json!({"backup": backup, "storageLocation": bsl}),
    )
    .await?;

    // Nothing listens at the location's s3Url any more: the deletion retries, then ends
    // without the archive (ARCHIVE_DELETE_LIMIT is 15 s for the e2e operator).
    let set_url = |url: String| {
        let bsls = bsls.clone();
        let bsl = bsl.clone();
        let patch = serde_json::json!({"spec": {"config": {"s3Url": url}}});
        async move {
            bsls.patch(&bsl, &PatchParams::default(), &Patch::Merge(&patch))
                .await
        }
    };
    set_url("http://127.0.0.1:9".into()).await?;
    let asked = std::time::Instant::now();
    Api::<DebugBundle>::namespaced(t.client.clone(), &t.env.namespace)
        .delete(&name, &DeleteParams::default())
        .await?;
    bundle_gone(t, &name, Duration::from_secs(90)).await?;
    let took = asked.elapsed();
    let events =
        Api::<k8s_openapi::api::core::v1::Event>::namespaced(t.client.clone(), &t.env.namespace)
            .list(
                &kube::api::ListParams::default()
                    .fields(&format!("involvedObject.name={name},reason=ArchiveLeft")),
            )
            .await?;
    let note = events
        .items
        .first()
        .and_then(|e| e.message.clone())
        .unwrap_or_default();
    let left = object_exists(&t.env, &archive).await?;

    // The store is reachable again: the garbage collector takes what was left.
    set_url(t.env.s3.endpoint.clone()).await?;
    let collected = eventually(
        "the archive left behind to be deleted",
        Duration::from_secs(60),
        || async { Ok((!object_exists(&t.env, &archive).await?).then_some(())) },
    )
    .await;
    if collected.is_err() {
        delete_object(&t.env, &archive).await;
    }
    ensure!(
        took >= Duration::from_secs(15),
        "the bundle went after {took:?}, before the limit: the archive was not retried"
    );
    ensure!(
        note.contains(&archive),
        "no ArchiveLeft event naming {archive}: {note:?}"
    );
    ensure!(left, "the archive was gone before the store came back");
    collected
}

/// Upload ids open on `key` in the environment's bucket.
async fn open_uploads_of(env: &Env, key: &str) -> Result<Vec<String>> {
    let listed = env
        .s3_client(&env.s3.endpoint)
        .list_multipart_uploads()
        .bucket(&env.s3.bucket)
        .prefix(key)
        .send()
        .await?;
    Ok(listed
        .uploads()
        .iter()
        .filter(|u| u.key() == Some(key))
        .filter_map(|u| u.upload_id().map(str::to_string))
        .collect())
}

/// Open uploads with no bundle (as a process killed after recording its upload leaves them),
/// on S3 and Azure: ours are aborted once older than the bundle deadline, not before; another
/// install's folder is never touched, nor another cluster's upload in our folder, which no
/// record of ours lists (before the install record, it was aborted with ours). Alone: the operator runs with a 20 s deadline.
#[tokio::test]
async fn serial_open_uploads_are_aborted_after_the_bundle_deadline_and_only_in_our_folder()
-> Result<()> {
    let t = &TestCtx::new().await?;
    restart_operators(1, &[("VDO_BUNDLE_DEADLINE", "20s".to_string())]).await?;
    let outcome = open_uploads_swept(t).await;
    restart_operators(1, &[]).await?;
    outcome
}

async fn open_uploads_swept(t: &TestCtx) -> Result<()> {
    let env = &t.env;
    let uid = "0f1e2d3c-0000-4000-8000-000000000000";
    let s3_ours = archive_key(&env.s3.prefix, &env.namespace, &unique_name("open"), uid);
    let s3_theirs = archive_key(&env.s3.prefix, "velero-b", &unique_name("open"), uid);
    let azure_ours = archive_key(&env.azure.prefix, &env.namespace, &unique_name("open"), uid);
    let azure_theirs = archive_key(&env.azure.prefix, "velero-b", &unique_name("open"), uid);
    // Another cluster's upload in our folder (the same bucket, prefix and namespace name):
    // shaped as ours, recorded in no record of ours.
    let s3_foreign = archive_key(&env.s3.prefix, &env.namespace, &unique_name("open"), uid);
    let azure_foreign = archive_key(&env.azure.prefix, &env.namespace, &unique_name("open"), uid);
    let s3 = env.s3_client(&env.s3.endpoint);
    for key in [&s3_ours, &s3_theirs, &s3_foreign] {
        let upload = s3
            .create_multipart_upload()
            .bucket(&env.s3.bucket)
            .key(key)
            .send()
            .await?;
        if key == &s3_ours {
            record_upload(t, "default", key, upload.upload_id().unwrap_or_default()).await?;
        }
    }
    // Blocks named as the operator names them (its upload id, the block's index).
    const AZURE_ID: &str = "0123456789abcdef";
    for key in [&azure_ours, &azure_theirs, &azure_foreign] {
        stores::azure_blob(env, &["stage", key, &format!("{AZURE_ID}-000000")]).await?;
    }
    record_upload(t, "azure", &azure_ours, AZURE_ID).await?;
    let opened = std::time::Instant::now();
    eventually(
        "our open uploads to be aborted",
        Duration::from_secs(90),
        || async {
            let s3_gone = open_uploads_of(env, &s3_ours).await?.is_empty();
            let azure_gone = stores::azure_blob(env, &["uncommitted", &azure_ours]).await? == "0";
            Ok((s3_gone && azure_gone).then_some(()))
        },
    )
    .await?;
    // The store's clock counts whole seconds.
    ensure!(
        opened.elapsed() >= Duration::from_secs(18),
        "aborted {:?} after it was opened, before the 20 s bundle deadline",
        opened.elapsed()
    );
    // Several sweeps later, another install's and another cluster's uploads are still open.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let mut left = Vec::new();
    for (s3_key, azure_key) in [(&s3_theirs, &azure_theirs), (&s3_foreign, &azure_foreign)] {
        let s3_left = open_uploads_of(env, s3_key).await?;
        let azure_left = stores::azure_blob(env, &["uncommitted", azure_key]).await?;
        for id in &s3_left {
            let _ = s3
                .abort_multipart_upload()
                .bucket(&env.s3.bucket)
                .key(s3_key)
                .upload_id(id)
                .send()
                .await;
        }
        left.push((s3_left.len(), azure_left));
    }
    ensure!(
        left[0] == (1, "1".to_string()),
        "another install's uploads were aborted: {:?}",
        left[0]
    );
    ensure!(
        left[1] == (1, "1".to_string()),
        "another cluster's uploads in our folder were aborted: {:?}",
        left[1]
    );
    Ok(())
}

/// The DebugBundles of namespace `namespace`.
fn bundles_in(client: &Client, namespace: &str) -> Api<DebugBundle> {
    Api::namespaced(client.clone(), namespace)
}

/// Copies Velero's object `name` of `kind` from Velero's namespace into `namespace`, as a
/// second Velero install sharing the bucket has it (its own BSL and credential on the same
/// bucket and prefix; the backups synced from there).
async fn copy_velero_object(t: &TestCtx, kind: &str, name: &str, namespace: &str) -> Result<()> {
    let resource = velero_resource(kind);
    let from: Api<DynamicObject> =
        Api::namespaced_with(t.client.clone(), &t.env.namespace, &resource);
    let to: Api<DynamicObject> = Api::namespaced_with(t.client.clone(), namespace, &resource);
    let original = from.get(name).await?;
    let mut copy = DynamicObject::new(name, &resource)
        .within(namespace)
        .data(original.data.clone());
    copy.metadata.labels = original.metadata.labels.clone();
    to.create(&kube::api::PostParams::default(), &copy).await?;
    Ok(())
}

/// A second install of the operator in this cluster: Velero's namespace `namespace` (a Secret
/// cloud-credentials, a BSL default on the environment's bucket and prefix, the backup `backup`
/// synced into it), served by operator process 9 (`VDO_OPERATOR_NAMESPACE`; the admin's
/// credentials, as the chart's Role is for Velero's namespace only).
async fn second_install(t: &TestCtx, namespace: &str, backup: &str) -> Result<()> {
    let secrets: Api<Secret> = Api::namespaced(t.client.clone(), &t.env.namespace);
    let credential = secrets.get("cloud-credentials").await?;
    let copy: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "cloud-credentials", "namespace": namespace},
        "data": credential.data,
    }))?;
    Api::<Secret>::namespaced(t.client.clone(), namespace)
        .create(&kube::api::PostParams::default(), &copy)
        .await?;
    copy_velero_object(t, "BackupStorageLocation", "default", namespace).await?;
    copy_velero_object(t, "Backup", backup, namespace).await?;
    // Its install record, as the chart makes it.
    let record: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": INSTALL_RECORD, "namespace": namespace},
    }))?;
    Api::<ConfigMap>::namespaced(t.client.clone(), namespace)
        .create(&kube::api::PostParams::default(), &record)
        .await?;
    velero_debug_e2e::operators::restart_operator_replica(
        9,
        &[
            ("VDO_OPERATOR_NAMESPACE", namespace.to_string()),
            ("VDO_AS_SERVICE_ACCOUNT", "0".to_string()),
        ],
    )
    .await?;
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(t.client.clone(), namespace);
    eventually(
        "operator-9 to lead the second install",
        Duration::from_secs(60),
        || async {
            let lease = leases.get_opt("velero-debug-operator").await?;
            let holder = lease.and_then(|l| l.spec).and_then(|s| s.holder_identity);
            Ok((holder.as_deref() == Some("operator-9")).then_some(()))
        },
    )
    .await
}

/// Two installs of the operator in one cluster, on one bucket and prefix (issue 32): the
/// environment's, serving Velero's namespace, and a second one serving another namespace. Each
/// makes a bundle; the second has an upload open. Each install's own orphan goes (twice, so
/// whole sweeps of both ran once everything was there), and every archive of both installs
/// and the second's open upload are still there. Before issue 32 the first install's sweep
/// listed every namespace's folder and knew only the CRD's uid as a mark: the other install's
/// archive was an orphan to it, and its open upload was aborted (checked with that sweep put
/// back: the second install deleted the first's archive).
#[tokio::test]
async fn serial_a_second_install_on_the_same_bucket_keeps_its_archives_and_uploads() -> Result<()> {
    let t = &TestCtx::new().await?;
    let back = velero_debug_e2e::operators::OperatorsBack::armed();
    let other =
        velero_debug_e2e::context::create_namespace(&t.client, &t.cleanup, "velero-b").await?;
    let (_, backup, _) = real_backup(t, "installs").await?;
    second_install(t, &other, &backup).await?;
    let outcome = two_installs_sweep(t, &other, &backup).await;
    // The second install's bundle goes while its operator still runs (its finalizer).
    let other_bundles = bundles_in(&t.client, &other);
    for b in other_bundles.list(&Default::default()).await?.items {
        let name = b.name_any();
        other_bundles
            .delete(&name, &DeleteParams::default())
            .await?;
        eventually(
            "the second install's bundle to go",
            Duration::from_secs(60),
            || async { Ok(other_bundles.get_opt(&name).await?.is_none().then_some(())) },
        )
        .await?;
    }
    back.done().await?;
    outcome
}

async fn two_installs_sweep(t: &TestCtx, other: &str, backup: &str) -> Result<()> {
    let env = &t.env;
    let ours = install_mark(&t.client, &env.namespace).await?;
    let theirs = install_mark(&t.client, other).await?;
    let (_, our_archive) = completed_archive(t, serde_json::json!({"backup": backup})).await?;
    let name = unique_name("vdb");
    let bundle: DebugBundle = serde_json::from_value(serde_json::json!({
        "apiVersion": "velerodebug.io/v1alpha1", "kind": "DebugBundle",
        "metadata": {"name": name, "namespace": other},
        "spec": {"backup": backup},
    }))?;
    let other_bundles = bundles_in(&t.client, other);
    other_bundles
        .create(&kube::api::PostParams::default(), &bundle)
        .await?;
    // Should the test end before the second install deletes it: no finalizer left to hang its
    // namespace's deletion.
    t.cleanup.object::<DebugBundle>(other, &name);
    t.cleanup.merge_patch(
        &ApiResource::erase::<DebugBundle>(&()),
        Some(other),
        &name,
        serde_json::json!({"metadata": {"finalizers": null}}),
    );
    let their_archive = eventually(
        "the second install's bundle to complete",
        Duration::from_secs(120),
        || async {
            let status = other_bundles.get(&name).await?.status.unwrap_or_default();
            ensure!(
                status.phase != Some(velero_debug_crd::Phase::Failed),
                "the second install's bundle failed: {:?}",
                status.conditions
            );
            Ok(status.archive.map(|a| a.key))
        },
    )
    .await?;
    let folder = format!("/bundles/{other}/");
    ensure!(
        their_archive.contains(&folder),
        "the second install's archive {their_archive} is not in its folder"
    );
    let uid = "0e1d2c3b-0000-4000-8000-000000000000";
    let open_upload = archive_key(&env.s3.prefix, other, &unique_name("open"), uid);
    let s3 = env.s3_client(&env.s3.endpoint);
    s3.create_multipart_upload()
        .bucket(&env.s3.bucket)
        .key(&open_upload)
        .send()
        .await?;
    let outcome = async {
        for round in 1..=2 {
            let our_ghost = archive_key(&env.s3.prefix, &env.namespace, &unique_name("ghost"), uid);
            let their_ghost = archive_key(&env.s3.prefix, other, &unique_name("ghost"), uid);
            put(env, &our_ghost, Some(&ours)).await?;
            put(env, &their_ghost, Some(&theirs)).await?;
            eventually(
                &format!("each install's orphan to be deleted (round {round})"),
                Duration::from_secs(60),
                || async {
                    let left = object_exists(env, &our_ghost).await?
                        || object_exists(env, &their_ghost).await?;
                    Ok((!left).then_some(()))
                },
            )
            .await?;
        }
        for key in [&our_archive, &their_archive] {
            ensure!(object_exists(env, key).await?, "{key} was deleted");
        }
        let open = open_uploads_of(env, &open_upload).await?;
        ensure!(
            open.len() == 1,
            "the second install's open upload was aborted"
        );
        Ok(())
    }
    .await;
    for id in open_uploads_of(env, &open_upload).await.unwrap_or_default() {
        let _ = s3
            .abort_multipart_upload()
            .bucket(&env.s3.bucket)
            .key(&open_upload)
            .upload_id(id)
            .send()
            .await;
    }
    outcome
}

//! Objects the end-to-end tests and the bench make: real backups by the real Velero server,
//! operation objects labelled as Velero labels them, and DebugBundles.

use std::{collections::BTreeMap, time::Duration};

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ResourceQuota};
use kube::{
    Api, Client, ResourceExt,
    api::{DynamicObject, Patch, PatchParams, PostParams},
    core::{ApiResource, GroupVersionKind},
};
use velero_debug_crd::{AUTO_BUNDLE_LEDGER, DebugBundle, Phase};
use velero_debug_operator::velero::resource as velero_resource;

use crate::{
    Cleanup, Env, TestCtx, create_namespace, eventually, sha256_hex, unique_name, untar, velero,
};

/// kwok's log-serving rules; "Logs" is already plural.
pub fn kwok_logs_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kwok.x-k8s.io", "v1alpha1", "Logs"),
        "logs",
    )
}

/// A namespace of the test's own with a ConfigMap, backed up by the real Velero server;
/// returns the namespace, the backup's name and its uid. (The Backup stays: deleting its object
/// alone would not delete it, Velero syncs it back from the bucket.)
pub async fn real_backup(t: &TestCtx, prefix: &str) -> Result<(String, String, String)> {
    real_backup_in(t, prefix, None).await
}

/// [`real_backup`] into the storage location `location` (None: the default one).
pub async fn real_backup_in(
    t: &TestCtx,
    prefix: &str,
    location: Option<&str>,
) -> Result<(String, String, String)> {
    let (client, cleanup) = (&t.client, &t.cleanup);
    let ns = create_namespace(client, cleanup, prefix).await?;
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "settings"}, "data": {"greeting": "hello"}
    }))?;
    Api::<ConfigMap>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &cm)
        .await?;
    let extra = location.map(|l| vec!["--storage-location", l]);
    let (backup, uid) = backup_namespace(t, &ns, &extra.unwrap_or_default()).await?;
    Ok((ns, backup, uid))
}

/// A backup of namespace `ns` by the real Velero server, with more `args` to `velero backup
/// create`; waits until it finished and returns its name and uid.
pub async fn backup_namespace(t: &TestCtx, ns: &str, args: &[&str]) -> Result<(String, String)> {
    let mut all = vec!["--include-namespaces", ns];
    all.extend(args);
    real_backup_with(t, &all).await
}

/// A backup by the real Velero server with `args` to `velero backup create`; waits until it
/// finished and returns its name and uid.
pub async fn real_backup_with(t: &TestCtx, args: &[&str]) -> Result<(String, String)> {
    let env = &t.env;
    let backup = unique_name("bk");
    let mut all = vec!["backup", "create", &backup, "--wait"];
    all.extend(args);
    velero(env, &all).await?;
    let uid = in_final_phase(t, "Backup", &backup, Duration::from_secs(120))
        .await?
        .uid()
        .unwrap_or_default();
    Ok((backup, uid))
}

/// The phase the Velero server gave Backup `name` (JSON null while it has none).
pub async fn backup_phase(t: &TestCtx, name: &str) -> Result<serde_json::Value> {
    let backups = Api::<DynamicObject>::namespaced_with(
        t.client.clone(),
        &t.env.namespace,
        &velero_resource("Backup"),
    );
    Ok(backups.get(name).await?.data["status"]["phase"].clone())
}

pub async fn apply_bundle(t: &TestCtx, spec: serde_json::Value) -> Result<String> {
    let (env, client, cleanup) = (&t.env, &t.client, &t.cleanup);
    let name = unique_name("vdb");
    let bundle: DebugBundle = serde_json::from_value(serde_json::json!({
        "apiVersion": "velerodebug.io/v1alpha1", "kind": "DebugBundle",
        "metadata": {"name": name, "namespace": env.namespace},
        "spec": spec,
    }))?;
    Api::<DebugBundle>::namespaced(client.clone(), &env.namespace)
        .create(&PostParams::default(), &bundle)
        .await?;
    cleanup.object::<DebugBundle>(&env.namespace, &name);
    Ok(name)
}

pub async fn wait_finished(t: &TestCtx, name: &str, timeout: Duration) -> Result<DebugBundle> {
    let (env, client) = (&t.env, &t.client);
    let api: Api<DebugBundle> = Api::namespaced(client.clone(), &env.namespace);
    eventually(
        &format!("DebugBundle {name} to finish"),
        timeout,
        || async {
            let b = api.get(name).await?;
            let done = b
                .status
                .as_ref()
                .and_then(|s| s.phase)
                .is_some_and(|p| p.is_finished());
            Ok(done.then_some(b))
        },
    )
    .await
}

/// A bundle of `spec` applied and waited for (three minutes at most) until it finished.
pub async fn finished_bundle(t: &TestCtx, spec: serde_json::Value) -> Result<DebugBundle> {
    let name = apply_bundle(t, spec).await?;
    wait_finished(t, &name, Duration::from_secs(180)).await
}

/// [`finished_bundle`], Completed, and its files.
pub async fn completed_bundle(
    t: &TestCtx,
    spec: serde_json::Value,
) -> Result<(DebugBundle, BTreeMap<String, Vec<u8>>)> {
    let bundle = finished_bundle(t, spec).await?;
    ensure!(
        bundle.status.as_ref().and_then(|s| s.phase) == Some(Phase::Completed),
        "bundle not Completed: {}",
        condition_reason(&bundle)
    );
    let files = download(&bundle).await?;
    Ok((bundle, files))
}

/// [`wait_finished`], and Completed: the reason in the error otherwise.
pub async fn wait_completed(t: &TestCtx, name: &str, timeout: Duration) -> Result<DebugBundle> {
    let b = wait_finished(t, name, timeout).await?;
    ensure!(
        b.status.as_ref().and_then(|s| s.phase) == Some(Phase::Completed),
        "{name}: {}",
        condition_reason(&b)
    );
    Ok(b)
}

/// A bundle of `spec` applied and waited for until Completed (two minutes at most); its name
/// and its archive's key.
pub async fn completed_archive(t: &TestCtx, spec: serde_json::Value) -> Result<(String, String)> {
    let name = apply_bundle(t, spec).await?;
    let done = wait_completed(t, &name, Duration::from_secs(120)).await?;
    let key = done
        .status
        .and_then(|s| s.archive)
        .with_context(|| format!("{name}: Completed without an archive"))?
        .key;
    Ok((name, key))
}

/// A Failed PodVolumeBackup of `backup` for pod `namespace`/app on `node`, made by hand: the
/// node is involved, so its node-agent's logs go into the backup's bundle. Returns its name.
pub async fn failed_pod_volume_backup_on(
    t: &TestCtx,
    backup: &str,
    backup_uid: &str,
    namespace: &str,
    node: &str,
) -> Result<String> {
    operation_object(
        t,
        "PodVolumeBackup",
        serde_json::json!({"velero.io/backup-name": backup, "velero.io/backup-uid": backup_uid}),
        serde_json::json!({
            "node": node, "backupStorageLocation": "default", "repoIdentifier": "", "uploaderType": "kopia",
            "pod": {"kind": "Pod", "namespace": namespace, "name": "app"}, "volume": "data", "tags": {}
        }),
        serde_json::json!({"phase": "Failed", "message": "data path failed"}),
    )
    .await
}

/// A PodVolumeBackup/Restore made by hand, labelled to its target as Velero labels them.
pub async fn operation_object(
    t: &TestCtx,
    kind: &str,
    labels: serde_json::Value,
    spec: serde_json::Value,
    status: serde_json::Value,
) -> Result<String> {
    let (env, client, cleanup) = (&t.env, &t.client, &t.cleanup);
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &env.namespace, &velero_resource(kind));
    let name = unique_name(&kind.to_lowercase());
    let mut obj = DynamicObject::new(&name, &velero_resource(kind))
        .within(&env.namespace)
        .data(serde_json::json!({"spec": spec, "status": status.clone()}));
    obj.metadata.labels = serde_json::from_value(labels)?;
    api.create(&PostParams::default(), &obj).await?;
    cleanup.delete(&velero_resource(kind), Some(&env.namespace), &name);
    // Velero's CRDs have no status subresource today (status is kept from the create); should
    // a later version add one, set it through it.
    let patch = serde_json::json!({"status": status});
    match api
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(patch))
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => {}
        Err(e) => return Err(e.into()),
    }
    Ok(name)
}

/// The Ready condition's reason and message, for failure messages.
pub fn condition_reason(b: &DebugBundle) -> String {
    b.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
        .map(|c| format!("{}: {}", c.reason, c.message))
        .unwrap_or_default()
}

/// Downloads the bundle through its presigned URL with plain HTTP and checks the sha256.
pub async fn download(b: &DebugBundle) -> Result<BTreeMap<String, Vec<u8>>> {
    let status = b.status.as_ref().context("no status")?;
    ensure!(
        status.phase == Some(Phase::Completed),
        "bundle not Completed: {}",
        condition_reason(b)
    );
    let url = status.download_url.as_ref().context("no URL")?;
    let resp = reqwest::get(url).await?;
    ensure!(resp.status() == 200, "GET {url}: {}", resp.status());
    let bytes = resp.bytes().await?;
    let archive = status.archive.as_ref().context("no archive status")?;
    ensure!(sha256_hex(&bytes) == archive.sha256, "sha256 differs");
    ensure!(bytes.len() as i64 == archive.size_bytes, "size differs");
    let files = untar(&bytes)?;
    ensure!(
        files.len() as i32 == archive.file_count,
        "file count differs"
    );
    // Strip the bundle's root folder.
    Ok(files
        .into_iter()
        .map(|(k, v)| {
            (
                k.split_once('/').map(|(_, p)| p.to_string()).unwrap_or(k),
                v,
            )
        })
        .collect())
}

/// The path of the bundle's one Velero server log (`logs/velero/<pod>/velero.log`); an error
/// when there is none or more than one.
pub fn server_log(files: &BTreeMap<String, Vec<u8>>) -> Result<&String> {
    let logs: Vec<&String> = files
        .keys()
        .filter(|k| k.starts_with("logs/velero/") && k.ends_with("/velero.log"))
        .collect();
    ensure!(logs.len() == 1, "server logs: {logs:?}");
    Ok(logs[0])
}

pub fn text(files: &BTreeMap<String, Vec<u8>>, path: &str) -> Result<String> {
    let bytes = files.get(path).with_context(|| {
        format!(
            "{path} not in bundle: {:?}",
            files.keys().collect::<Vec<_>>()
        )
    })?;
    Ok(String::from_utf8_lossy(bytes).into_owned())
}

/// A Restore that the real Velero server ends PartiallyFailed: a namespace with a ConfigMap is
/// backed up, then restored into a namespace whose ResourceQuota admits no ConfigMap, so the
/// API server refuses it and Velero records the error. (A custom resource whose CRD is deleted
/// before the restore does not work here: Velero refreshes its discovery only every few
/// minutes, so a type created by the test is not in the backup.) Returns the restore's name.
pub async fn partially_failed_restore(t: &TestCtx) -> Result<String> {
    let (ns, backup, _) = real_backup(t, "pf-src").await?;
    let restored_ns = format!("{ns}-r");
    quota_refusing_configmaps(t, &restored_ns).await?;
    let restore = real_restore(t, &backup, &ns, &restored_ns).await?;
    let name = restore.name_any();
    let phase = restore.data["status"]["phase"].as_str().unwrap_or_default();
    ensure!(
        phase == "PartiallyFailed",
        "restore {name} ended {phase}, not PartiallyFailed"
    );
    Ok(name)
}

/// Makes namespace `namespace` with a ResourceQuota `no-configmaps` that admits no ConfigMap,
/// in force when this returns.
pub async fn quota_refusing_configmaps(t: &TestCtx, namespace: &str) -> Result<()> {
    let target: Namespace = serde_json::from_value(serde_json::json!({
        "metadata": {"name": namespace, "labels": {"velerodebug.io/e2e": "true"}}
    }))?;
    Api::<Namespace>::all(t.client.clone())
        .create(&PostParams::default(), &target)
        .await?;
    t.cleanup.namespace(namespace);
    let quota: ResourceQuota = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "no-configmaps"},
        "spec": {"hard": {"count/configmaps": "0"}},
    }))?;
    let quotas = Api::<ResourceQuota>::namespaced(t.client.clone(), namespace);
    quotas.create(&PostParams::default(), &quota).await?;
    // Admission enforces a quota once the quota controller has computed its status.
    eventually(
        "the quota to be in force",
        Duration::from_secs(60),
        || async {
            let q = quotas.get("no-configmaps").await?;
            Ok(q.status.and_then(|s| s.hard).map(|_| ()))
        },
    )
    .await?;
    Ok(())
}

/// A restore of `backup` by the real Velero server, the namespace `from` restored as `to`;
/// waits until it finished and returns the Restore.
pub async fn real_restore(
    t: &TestCtx,
    backup: &str,
    from: &str,
    to: &str,
) -> Result<DynamicObject> {
    // Registered first: the CLI may fail after Velero made it.
    t.cleanup.namespace(to);
    let mapping = format!("{from}:{to}");
    real_restore_with(t, backup, &["--namespace-mappings", &mapping]).await
}

/// A restore of `backup` by the real Velero server with `args` to `velero restore create`;
/// waits until it finished and returns the Restore.
pub async fn real_restore_with(t: &TestCtx, backup: &str, args: &[&str]) -> Result<DynamicObject> {
    let (env, cleanup) = (&t.env, &t.cleanup);
    let restore = unique_name("rs");
    cleanup.delete(&velero_resource("Restore"), Some(&env.namespace), &restore);
    let mut all = vec![
        "restore",
        "create",
        &restore,
        "--from-backup",
        backup,
        "--wait",
    ];
    all.extend(args);
    velero(env, &all).await?;
    in_final_phase(t, "Restore", &restore, Duration::from_secs(120)).await
}

/// A Restore of `backup` from namespace `from` into `to`, made through the API with
/// `annotations` (which `velero restore create` has no flag for); waits up to `limit` until it
/// finished and returns it.
pub async fn real_restore_annotated(
    t: &TestCtx,
    backup: &str,
    (from, to): (&str, &str),
    annotations: serde_json::Value,
    limit: Duration,
) -> Result<DynamicObject> {
    let (env, cleanup) = (&t.env, &t.cleanup);
    cleanup.namespace(to);
    let restore = unique_name("rs");
    cleanup.delete(&velero_resource("Restore"), Some(&env.namespace), &restore);
    let api = Api::<DynamicObject>::namespaced_with(
        t.client.clone(),
        &env.namespace,
        &velero_resource("Restore"),
    );
    let object: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "velero.io/v1", "kind": "Restore",
        "metadata": {"name": restore, "annotations": annotations},
        "spec": {"backupName": backup, "includedNamespaces": [from],
                 "namespaceMapping": {from: to}},
    }))?;
    api.create(&PostParams::default(), &object).await?;
    in_final_phase(t, "Restore", &restore, limit).await
}

/// Velero's `kind` (Backup or Restore) `name` once its phase is final. `--wait` returns once
/// the phase left InProgress, which may be Finalizing: Velero then writes the status
/// (completionTimestamp included) once more, after a test has read it.
async fn in_final_phase(
    t: &TestCtx,
    kind: &str,
    name: &str,
    limit: Duration,
) -> Result<DynamicObject> {
    let api = Api::<DynamicObject>::namespaced_with(
        t.client.clone(),
        &t.env.namespace,
        &velero_resource(kind),
    );
    eventually(&format!("{kind} {name}'s final phase"), limit, || async {
        let o = api.get(name).await?;
        let phase = o.data.pointer("/status/phase").and_then(|p| p.as_str());
        Ok(phase
            .is_some_and(|p| FINAL_PHASES.contains(&p))
            .then_some(o))
    })
    .await
}

/// The phases after which Velero writes a Backup's or Restore's status no more.
const FINAL_PHASES: &[&str] = &["Completed", "PartiallyFailed", "Failed", "FailedValidation"];

/// A hand-made Restore that ended PartiallyFailed just now, without annotations: the kind
/// that gets an automatic bundle.
pub async fn partially_failed_now(t: &TestCtx, backup: &str) -> Result<(String, String)> {
    let none = serde_json::json!({});
    finished_restore(t, backup, "PartiallyFailed", Duration::ZERO, none).await
}

/// A Restore made by hand as already finished (`phase`, ended `ended_ago`), which the Velero
/// server leaves alone; returns its name and uid. Its automatic bundle, owned by it, goes with
/// it at cleanup.
pub async fn finished_restore(
    t: &TestCtx,
    backup: &str,
    phase: &str,
    ended_ago: Duration,
    annotations: serde_json::Value,
) -> Result<(String, String)> {
    let (env, client, cleanup) = (&t.env, &t.client, &t.cleanup);
    let name = unique_name("rs-made");
    let ended = jiff::Timestamp::now() - jiff::SignedDuration::try_from(ended_ago)?;
    let started = ended - jiff::SignedDuration::from_secs(5);
    let restore: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "velero.io/v1", "kind": "Restore",
        "metadata": {"name": name, "namespace": env.namespace, "annotations": annotations},
        "spec": {"backupName": backup},
        "status": {
            "phase": phase, "errors": 1,
            "startTimestamp": started.to_string(), "completionTimestamp": ended.to_string(),
        },
    }))?;
    let created = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        &env.namespace,
        &velero_resource("Restore"),
    )
    .create(&PostParams::default(), &restore)
    .await?;
    cleanup.delete(&velero_resource("Restore"), Some(&env.namespace), &name);
    Ok((name, created.uid().unwrap_or_default()))
}

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

/// Waits until the DebugBundle is gone (deleted, its finalizer done).
pub async fn bundle_gone(t: &TestCtx, name: &str, timeout: Duration) -> Result<()> {
    let (env, client) = (&t.env, &t.client);
    let api: Api<DebugBundle> = Api::namespaced(client.clone(), &env.namespace);
    eventually(
        &format!("DebugBundle {name} to be gone"),
        timeout,
        || async { Ok(api.get_opt(name).await?.is_none().then_some(())) },
    )
    .await
}

/// DebugBundles as untyped objects: for those the typed client cannot say or read.
pub fn debug_bundles_resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "velerodebug.io",
        "v1alpha1",
        "DebugBundle",
    ))
}

/// The Ready condition's reason and message of an untyped DebugBundle.
pub fn ready_condition(b: &DynamicObject) -> (String, String) {
    let c = b.data["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready").cloned())
        .unwrap_or_default();
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    (text(&c["reason"]), text(&c["message"]))
}

/// Whether `key` is in the environment's bucket.
pub async fn object_exists(env: &Env, key: &str) -> Result<bool> {
    let s3 = env.s3_client(&env.s3.endpoint);
    match s3
        .head_object()
        .bucket(&env.s3.bucket)
        .key(key)
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The first entry under `## Findings` in summary.md, and the line number of that heading.
pub fn first_finding(summary: &str) -> Result<(usize, String)> {
    let at = summary
        .lines()
        .position(|l| l == "## Findings")
        .with_context(|| format!("summary.md has no Findings:\n{summary}"))?;
    let first = summary
        .lines()
        .skip(at + 1)
        .find(|l| !l.trim().is_empty())
        .context("summary.md's Findings are empty")?;
    Ok((at, first.to_string()))
}

/// Asserts the bundle's probable cause is `rule`: first in summary.md's Findings (within its
/// first 40 lines, containing `words`) and first in status.findings.
pub fn assert_first_finding(
    bundle: &DebugBundle,
    files: &BTreeMap<String, Vec<u8>>,
    rule: &str,
    words: &[&str],
) -> Result<()> {
    ensure!(
        !words.is_empty(),
        "no word to find in the first finding of {rule}"
    );
    let summary = text(files, "summary.md")?;
    let (at, first) = first_finding(&summary)?;
    ensure!(
        at < 40 && words.iter().all(|w| first.contains(w)),
        "first finding (heading at line {at}) should say {words:?}: {first}\n{summary}"
    );
    assert_first_status_finding(bundle, rule)
}

/// Asserts status.findings[0] is `rule` (what `kubectl describe` shows, also when the upload
/// failed).
pub fn assert_first_status_finding(bundle: &DebugBundle, rule: &str) -> Result<()> {
    let findings = bundle
        .status
        .as_ref()
        .map(|s| s.findings.clone())
        .unwrap_or_default();
    ensure!(
        findings.first().is_some_and(|f| f.rule == rule),
        "status.findings should start with {rule}: {findings:?}"
    );
    Ok(())
}

/// The message of the `ProbableCause` Warning event that the DebugBundle `bundle` announced on
/// a Velero object (kind, name), waiting up to 30 s for it: each bundle's event names it as its
/// related object, so another bundle's diagnosis of the same object is never read in its place.
pub async fn probable_cause_event(
    t: &TestCtx,
    (kind, name): (&str, &str),
    bundle: &str,
) -> Result<String> {
    let (env, client) = (&t.env, &t.client);
    let events: Api<k8s_openapi::api::core::v1::Event> =
        Api::namespaced(client.clone(), &env.namespace);
    let selector =
        format!("involvedObject.kind={kind},involvedObject.name={name},reason=ProbableCause");
    eventually(
        &format!("a ProbableCause event of DebugBundle {bundle} on {kind} {name}"),
        Duration::from_secs(30),
        || async {
            let listed = events
                .list(&kube::api::ListParams::default().fields(&selector))
                .await?;
            Ok(listed
                .items
                .into_iter()
                .find(|e| {
                    e.type_.as_deref() == Some("Warning")
                        && e.related.as_ref().is_some_and(|r| {
                            r.kind.as_deref() == Some("DebugBundle")
                                && r.name.as_deref() == Some(bundle)
                        })
                })
                .map(|e| e.message.unwrap_or_default()))
        },
    )
    .await
}

/// Writes `text` gzipped into the environment's bucket at `<prefix>/<key>`, as Velero writes
/// its logs and results.
pub async fn put_gzipped(env: &Env, key: &str, text: &str) -> Result<()> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(text.as_bytes())?;
    env.s3_client(&env.s3.endpoint)
        .put_object()
        .bucket(&env.s3.bucket)
        .key(format!("{}/{key}", env.s3.prefix))
        .body(gz.finish()?.into())
        .send()
        .await
        .with_context(|| format!("writing {key}"))?;
    Ok(())
}

/// A Node of the test's own, faked by kwok (its annotation), with `taints`; deleted at
/// cleanup. Waits until it is Ready. The shared nodes, which other tests run on, stay as they
/// are.
pub async fn fake_node(
    client: &Client,
    cleanup: &Cleanup,
    prefix: &str,
    taints: serde_json::Value,
) -> Result<String> {
    use k8s_openapi::api::core::v1::Node;
    let name = unique_name(prefix);
    let node: Node = serde_json::from_value(serde_json::json!({
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                       "kubernetes.io/arch": "amd64", "type": "kwok"}
        },
        "spec": {"taints": taints},
        "status": {
            "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
            "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"}
        }
    }))?;
    let nodes: Api<Node> = Api::all(client.clone());
    nodes.create(&PostParams::default(), &node).await?;
    cleanup.delete(&ApiResource::erase::<Node>(&()), None, &name);
    eventually(
        &format!("node {name} Ready"),
        Duration::from_secs(60),
        || async {
            let n = nodes.get(&name).await?;
            let ready = n
                .status
                .and_then(|s| s.conditions)
                .into_iter()
                .flatten()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            Ok(ready.then_some(()))
        },
    )
    .await?;
    Ok(name)
}

/// A PodVolumeRestore of `restore` (name, uid) for volume `data` of pod `pod` (namespace,
/// name), with `status`, labelled as Velero labels it.
pub async fn pod_volume_restore(
    t: &TestCtx,
    (restore, restore_uid): (&str, &str),
    (namespace, pod): (&str, &str),
    status: serde_json::Value,
) -> Result<String> {
    if let Some(node) = status["node"].as_str() {
        place_restore_pod(t, namespace, pod, node).await?;
    }
    operation_object(t, "PodVolumeRestore",
        serde_json::json!({"velero.io/restore-name": restore, "velero.io/restore-uid": restore_uid}),
        serde_json::json!({
            "backupStorageLocation": "default", "repoIdentifier": "", "uploaderType": "kopia",
            "pod": {"kind": "Pod", "namespace": namespace, "name": pod}, "volume": "data",
            "snapshotID": "5d2c0e1f", "sourceNamespace": namespace,
        }),
        status,
    )
    .await
}

/// Where a PodVolumeRestore ran, as Velero 1.14 says it: its CRD has no `status.node` (the API
/// server prunes it), and the node-agent of its pod's node serves it. On 1.14 the pod is made on
/// `node`, in `namespace`, readable by the operator; on later Velero `status.node` says it and
/// nothing is made.
pub async fn place_restore_pod(t: &TestCtx, namespace: &str, pod: &str, node: &str) -> Result<()> {
    use k8s_openapi::api::core::v1::Pod;
    if t.env.velero.minor() > 14 {
        return Ok(());
    }
    match grant_workload_reads(t, namespace).await {
        Err(e) if is_conflict(&e) => {}
        other => other?,
    }
    let made: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": pod},
        "spec": {"nodeName": node, "containers": [{"name": "app", "image": "busybox"}]},
    }))?;
    let pods = Api::<Pod>::namespaced(t.client.clone(), namespace);
    // The namespace's default ServiceAccount, which admission wants, comes a moment later; a
    // pod of that name already there (restored) stays.
    eventually("the restored pod made", Duration::from_secs(30), || async {
        Ok(match pods.create(&PostParams::default(), &made).await {
            Ok(_) => Some(()),
            Err(kube::Error::Api(s)) if s.code == 409 => Some(()),
            Err(_) => None,
        })
    })
    .await
}

/// The API server answered 409: it exists already.
fn is_conflict(e: &anyhow::Error) -> bool {
    matches!(e.downcast_ref::<kube::Error>(), Some(kube::Error::Api(s)) if s.code == 409)
}

/// The chart's release in the environment (tests/env/chart-install.sh), and so its
/// ServiceAccount and the ClusterRole that reads workloads.
pub const RELEASE: &str = "velero-debug-operator";

/// Binds `<release>-workload-reader` to the operator's ServiceAccount in `namespace`, as the
/// chart renders it for a namespace listed in rbac.workloadNamespaces.
pub async fn grant_workload_reads(t: &TestCtx, namespace: &str) -> Result<()> {
    use k8s_openapi::api::rbac::v1::RoleBinding;
    let (env, client) = (&t.env, &t.client);
    let binding: RoleBinding = serde_json::from_value(serde_json::json!({
        "metadata": {"name": format!("{RELEASE}-workload-reader")},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
            "name": format!("{RELEASE}-workload-reader"),
        },
        "subjects": [{"kind": "ServiceAccount", "name": RELEASE, "namespace": env.namespace}],
    }))?;
    Api::<RoleBinding>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &binding)
        .await?;
    Ok(())
}

/// A BSL of the test's own over the environment's bucket, changed by `patch`.
pub async fn storage_location(t: &TestCtx, patch: serde_json::Value) -> Result<String> {
    let (env, client, cleanup) = (&t.env, &t.client, &t.cleanup);
    let name = unique_name("bsl");
    let mut spec = serde_json::json!({
        "provider": "aws",
        "objectStorage": {"bucket": env.s3.bucket, "prefix": format!("{name}-prefix")},
        "config": {"region": env.s3.region, "s3ForcePathStyle": "true", "s3Url": env.s3.endpoint, "checksumAlgorithm": ""},
    });
    merge(&mut spec, patch);
    let api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        &env.namespace,
        &velero_resource("BackupStorageLocation"),
    );
    let obj = DynamicObject::new(&name, &velero_resource("BackupStorageLocation"))
        .within(&env.namespace)
        .data(serde_json::json!({"spec": spec}));
    api.create(&PostParams::default(), &obj).await?;
    cleanup.delete(
        &velero_resource("BackupStorageLocation"),
        Some(&env.namespace),
        &name,
    );
    Ok(name)
}

fn merge(a: &mut serde_json::Value, b: serde_json::Value) {
    match (a, b) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

/// A data-path pod of a hand-made PodVolumeBackup of `backup` (in Velero's namespace) whose
/// container log holds about `bytes` of varied lines, served by kwok from a CRI log file in
/// the environment's pod-log folder; so a bundle of the backup takes a while to collect and
/// upload. Returns the log file (the caller removes it) once its last line is served.
pub async fn data_path_log(
    t: &TestCtx,
    (backup, backup_uid, namespace): (&str, &str, &str),
    bytes: usize,
) -> Result<std::path::PathBuf> {
    let pvb = operation_object(t, "PodVolumeBackup",
        serde_json::json!({"velero.io/backup-name": backup, "velero.io/backup-uid": backup_uid}),
        serde_json::json!({
            "node": "node-0", "backupStorageLocation": "default", "repoIdentifier": "", "uploaderType": "kopia",
            "pod": {"kind": "Pod", "namespace": namespace, "name": "app"}, "volume": "data", "tags": {}
        }),
        serde_json::json!({"phase": "InProgress"}),
    )
    .await?;
    let pod_name = unique_name("datapath");
    let now = jiff::Timestamp::now();
    // Lines that compress like real ones (a counter and a pseudo-random digest), not to nothing.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut lines = Vec::new();
    let mut size = 0;
    let mut i = 0u64;
    while size < bytes {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let line = format!(
            "time=\"{now}\" level=info msg=\"uploaded chunk {i} digest {state:016x}{:016x}\" logSource=\"pkg/uploader/kopia/progress.go:100\"",
            state.rotate_left(29)
        );
        size += line.len() + 48; // and the CRI prefix
        lines.push(line);
        i += 1;
    }
    lines.push(format!("last line of {pod_name}"));
    data_path_pod(t, &pvb, &pod_name, &lines, serde_json::json!([])).await
}

/// Pod `pod_name` of PodVolumeBackup `pvb` on node-0, its container `data-mover` run with
/// `container_env`, whose log is `lines` (a CRI log file kwok serves). Returns the log file
/// (the caller removes it) once the last line is served.
pub async fn data_path_pod(
    t: &TestCtx,
    pvb: &str,
    pod_name: &str,
    lines: &[String],
    container_env: serde_json::Value,
) -> Result<std::path::PathBuf> {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::LogParams;
    let (env, client, cleanup) = (&t.env, &t.client, &t.cleanup);
    let log_path = env.pod_logs_dir.join(format!("{pod_name}.log"));
    let now = jiff::Timestamp::now();
    let content: String = lines
        .iter()
        .map(|l| format!("{now} stdout F {l}\n"))
        .collect();
    std::fs::write(&log_path, content)?;
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": pod_name, "labels": {"velero.io/pod-volume-backup": pvb}},
        "spec": {"nodeName": "node-0", "containers": [{
            "name": "data-mover", "image": "velero/velero", "env": container_env
        }]}
    }))?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &env.namespace);
    pods.create(&PostParams::default(), &pod).await?;
    cleanup.object::<Pod>(&env.namespace, pod_name);
    let logs_api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &env.namespace, &kwok_logs_resource());
    let logs_obj = DynamicObject::new(pod_name, &kwok_logs_resource())
        .within(&env.namespace)
        .data(serde_json::json!({"spec": {"logs": [{"containers": ["data-mover"], "logsFile": log_path}]}}));
    logs_api.create(&PostParams::default(), &logs_obj).await?;
    cleanup.delete(&kwok_logs_resource(), Some(&env.namespace), pod_name);
    // kwok serves the tail by line count, as the bundle asks for it.
    let last = LogParams {
        tail_lines: Some(1),
        ..LogParams::default()
    };
    let want = lines.last().map(|l| l.trim_end()).unwrap_or_default();
    eventually(
        "data-path pod log served",
        Duration::from_secs(60),
        || async {
            Ok(pods
                .logs(pod_name, &last)
                .await
                .ok()
                .filter(|l| l.trim_end() == want)
                .map(|_| ()))
        },
    )
    .await?;
    Ok(log_path)
}

/// The node-agent pod on `node` (a node of the test's own, [`fake_node`], so no other test
/// sees it), restarted: its container log is `current`, its previous instance's `previous`
/// (CRI log files kwok serves), and its status says it restarted once. Returns the pod.
pub async fn restart_node_agent_on(
    t: &TestCtx,
    node: &str,
    current: &[String],
    previous: &[String],
) -> Result<String> {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::ListParams;
    // The DaemonSet places a node-agent on the new node.
    let pods: Api<Pod> = Api::namespaced(t.client.clone(), &t.env.namespace);
    let agent = eventually(
        &format!("a Running node-agent on {node}"),
        Duration::from_secs(90),
        || async {
            let listed = pods
                .list(&ListParams::default().labels("name=node-agent"))
                .await?;
            Ok(listed.items.into_iter().find(|p| {
                p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node)
                    && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
            }))
        },
    )
    .await?
    .name_any();
    t.cleanup.object::<Pod>(&t.env.namespace, &agent);
    let dir = &t.env.pod_logs_dir;
    let current_file = dir.join(format!("{agent}.log"));
    let previous_file = dir.join(format!("{agent}.previous.log"));
    std::fs::write(&current_file, cri_lines(current))?;
    std::fs::write(&previous_file, cri_lines(previous))?;
    let logs: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Logs",
        "metadata": {"name": agent, "namespace": t.env.namespace},
        "spec": {"logs": [{"containers": ["node-agent"],
                           "logsFile": current_file, "previousLogsFile": previous_file}]},
    }))?;
    let logs_api: Api<DynamicObject> =
        Api::namespaced_with(t.client.clone(), &t.env.namespace, &kwok_logs_resource());
    logs_api.create(&PostParams::default(), &logs).await?;
    t.cleanup
        .delete(&kwok_logs_resource(), Some(&t.env.namespace), &agent);
    // The kubelet's record of the restart, as a crashed container leaves it.
    let restarted = serde_json::json!({"status": {"containerStatuses": [{
        "name": "node-agent", "ready": true, "restartCount": 1,
        "image": "velero/velero", "imageID": "", "started": true,
        "state": {"running": {"startedAt": "2026-11-23T04:01:00Z"}},
        "lastState": {"terminated": {"exitCode": 2, "reason": "Error",
                                     "startedAt": "2026-11-23T03:00:00Z",
                                     "finishedAt": "2026-11-23T04:00:30Z"}},
    }]}});
    pods.patch_status(
        &agent,
        &PatchParams::default(),
        &Patch::Strategic(restarted),
    )
    .await?;
    Ok(agent)
}

/// `lines` as a CRI log file holds them (kwok serves such files as pod logs).
pub fn cri_lines(lines: &[String]) -> String {
    let now = jiff::Timestamp::now();
    lines
        .iter()
        .map(|l| format!("{now} stdout F {l}\n"))
        .collect()
}

/// A restored pod (Velero's `labels` on it and its claim) placed by `placement` (its spec's
/// `nodeName`, or a `nodeSelector`), using the claim `claim` bound to the PV `volume`; all
/// three made here, the PV removed by the cleanup (the namespace's go with it).
pub async fn restored_pod_with_volume(
    t: &TestCtx,
    ns: &str,
    (pod, claim, volume): (&str, &str, &str),
    labels: serde_json::Value,
    placement: serde_json::Value,
) -> Result<()> {
    use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
    let class = "velerodebug-e2e-none";
    let pv: PersistentVolume = serde_json::from_value(serde_json::json!({
        "metadata": {"name": volume, "labels": labels},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                 "hostPath": {"path": format!("/data/{volume}")},
                 "claimRef": {"namespace": ns, "name": claim}, "storageClassName": class},
    }))?;
    Api::<PersistentVolume>::all(t.client.clone())
        .create(&PostParams::default(), &pv)
        .await?;
    t.cleanup
        .delete(&ApiResource::erase::<PersistentVolume>(&()), None, volume);
    let pvc: PersistentVolumeClaim = serde_json::from_value(serde_json::json!({
        "metadata": {"name": claim, "labels": labels},
        "spec": {"accessModes": ["ReadWriteOnce"], "volumeName": volume, "storageClassName": class,
                 "resources": {"requests": {"storage": "1Gi"}}},
    }))?;
    Api::<PersistentVolumeClaim>::namespaced(t.client.clone(), ns)
        .create(&PostParams::default(), &pvc)
        .await?;
    let mut spec = serde_json::json!({
        "containers": [{"name": "app", "image": "registry.example.com/app:1.0"}],
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}],
    });
    merge(&mut spec, placement);
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": pod, "labels": labels}, "spec": spec,
    }))?;
    let pods = Api::<Pod>::namespaced(t.client.clone(), ns);
    // A namespace made a moment ago may not have its default ServiceAccount yet.
    eventually(
        "the pod to be admitted",
        Duration::from_secs(60),
        || async { Ok(Some(pods.create(&PostParams::default(), &pod).await?)) },
    )
    .await?;
    Ok(())
}

//! Inputs a careless or hostile user can create, on the real API server: each one is either
//! refused by the API server (the CRD's rules) or read by the operator, and none stalls it.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use kube::{
    Api, ResourceExt,
    api::{DynamicObject, PostParams},
};
use velero_debug_crd::{DebugBundle, Phase};
use velero_debug_e2e::{
    archives::{download, text},
    backups::real_backup,
    bundles::{
        bundle_gone, condition_reason, debug_bundles_resource, ready_condition, wait_finished,
    },
    context::{TestCtx, unique_name},
    env::Env,
    operators::restart_operators,
    polling::eventually,
    stores::object_exists,
};
use velero_debug_operator::velero::resource as velero_resource;

/// Creates a DebugBundle from raw JSON (the typed client could not even say some of these).
async fn create_raw(t: &TestCtx, spec: serde_json::Value) -> Result<String, kube::Error> {
    let (env, client, cleanup) = (&t.env, &t.client, &t.cleanup);
    let name = unique_name("vdb");
    let obj: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "velerodebug.io/v1alpha1", "kind": "DebugBundle",
        "metadata": {"name": name, "namespace": env.namespace},
        "spec": spec,
    }))
    .expect("a DynamicObject");
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &env.namespace, &debug_bundles_resource());
    api.create(&PostParams::default(), &obj).await?;
    cleanup.delete(&debug_bundles_resource(), Some(&env.namespace), &name);
    Ok(name)
}

#[tokio::test]
async fn the_api_server_refuses_names_and_sizes_the_operator_could_not_use() -> Result<()> {
    let t = &TestCtx::new().await?;
    let long = "a".repeat(254);
    let refused = [
        (
            serde_json::json!({"restore": "r1", "storageLocation": "my bsl"}),
            "storageLocation",
        ),
        (serde_json::json!({"restore": "R1"}), "restore"),
        (serde_json::json!({"backup": "../secrets/x"}), "backup"),
        (serde_json::json!({"backup": long}), "backup"),
        (
            serde_json::json!({"backup": "b1", "maxLogBytesPerContainer": 2_147_483_648_i64}),
            "maxLogBytesPerContainer",
        ),
        (
            serde_json::json!({"backup": "b1", "urlTTL": "1d"}),
            "urlTTL",
        ),
        (
            serde_json::json!({"backup": "b1", "ttlAfterFinished": "-1h"}),
            "ttlAfterFinished",
        ),
        (
            serde_json::json!({"backup": "b1", "since": "yesterday"}),
            "since",
        ),
    ];
    for (spec, field) in refused {
        match create_raw(t, spec.clone()).await {
            Err(kube::Error::Api(e)) => ensure!(
                e.code == 422 && e.message.contains(field),
                "{spec}: refused, but not naming {field}: {} {}",
                e.code,
                e.message
            ),
            Ok(name) => anyhow::bail!("{spec}: accepted as {name}"),
            Err(e) => return Err(e).context(format!("creating {spec}")),
        }
    }
    Ok(())
}

/// `since` with ten fraction digits in lower case, urlTTL in milliseconds, ttlAfterFinished
/// as a fraction: all admitted by the API server, all read as meant.
#[tokio::test]
async fn dates_and_durations_in_every_form_the_api_server_admits_are_read() -> Result<()> {
    let t = &TestCtx::new().await?;
    let (_, backup, _) = real_backup(t, "forms").await?;
    let since = format!(
        "{}t00:00:00.1234567890z",
        jiff::Timestamp::now().strftime("%Y-%m-%d")
    );
    let name = create_raw(
        t,
        serde_json::json!({
            "backup": backup, "since": since, "urlTTL": "90000ms", "ttlAfterFinished": "0.5m",
        }),
    )
    .await?;
    let done = wait_finished(t, &name, Duration::from_secs(120)).await?;
    let status = done.status.clone().context("no status")?;
    ensure!(
        status.phase == Some(Phase::Completed),
        "{}",
        condition_reason(&done)
    );
    let completed = status.completion_time.context("no completion time")?.0;
    let expires = status.download_url_expires_at.context("no URL expiry")?.0;
    let valid = expires.duration_since(completed).as_secs();
    ensure!(
        (88..=92).contains(&valid),
        "URL valid for {valid}s, not 90s"
    );
    // 0.5m after it finished, the bundle and its archive are gone: read, not "keep forever".
    let key = status.archive.context("no archive")?.key;
    ensure!(object_exists(&t.env, &key).await?, "no archive at {key}");
    bundle_gone(t, &name, Duration::from_secs(90)).await?;
    ensure!(
        !object_exists(&t.env, &key).await?,
        "the archive {key} outlived its bundle"
    );
    Ok(())
}

/// A Restore made by hand whose namespaceMapping points outside: its bundle completes, every
/// entry stays inside the bundle's folder (the strict extractor of `download` checks), and the
/// mapped name is a warning, never a request path.
#[tokio::test]
async fn a_restore_mapping_namespaces_to_paths_gives_a_bundle_that_stays_in_its_folder()
-> Result<()> {
    let t = &TestCtx::new().await?;
    let restore = unique_name("rs-paths");
    let resource = velero_resource("Restore");
    let obj: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "velero.io/v1", "kind": "Restore",
        "metadata": {"name": restore, "namespace": t.env.namespace},
        "spec": {
            "backupName": "../../api/v1/namespaces/velero/secrets/cloud-credentials",
            "includedNamespaces": ["shop"],
            "namespaceMapping": {"shop": "../../etc", "db": "a/../../b"},
        },
    }))?;
    Api::<DynamicObject>::namespaced_with(t.client.clone(), &t.env.namespace, &resource)
        .create(&PostParams::default(), &obj)
        .await?;
    t.cleanup
        .delete(&resource, Some(&t.env.namespace), &restore);
    let name = create_raw(t, serde_json::json!({"restore": restore})).await?;
    let done = wait_finished(t, &name, Duration::from_secs(120)).await?;
    let files = download(&done).await?;
    let manifest = text(&files, "manifest.json")?;
    for mapped in ["../../etc", "a/../../b"] {
        ensure!(
            manifest.contains(&format!("namespace \\\"{mapped}\\\"")),
            "no warning about {mapped}: {manifest}"
        );
    }
    ensure!(
        !files.keys().any(|k| k.contains("secret")),
        "{:?}",
        files.keys()
    );
    Ok(())
}

/// A DebugBundle whose status our types cannot read (as an older CRD or a hand-written status
/// can leave it): it fails alone, naming the field; after an operator restart every other
/// bundle still completes, /readyz says ready, and deleting the bad one works.
#[tokio::test]
async fn serial_a_bundle_the_operator_cannot_read_fails_alone_across_a_restart() -> Result<()> {
    let t = &TestCtx::new().await?;
    let (_, backup, _) = real_backup(t, "poison").await?;
    let poisoned = create_raw(t, serde_json::json!({"restore": "not-made-yet"})).await?;
    let raw: Api<DynamicObject> = Api::namespaced_with(
        t.client.clone(),
        &t.env.namespace,
        &debug_bundles_resource(),
    );
    eventually(
        "the bundle to wait for its target",
        Duration::from_secs(60),
        || async {
            let b = raw.get(&poisoned).await?;
            Ok((b.data["status"]["phase"] == "Pending").then_some(()))
        },
    )
    .await?;
    // Ten fraction digits: a date-time to the API server, not to the operator's types.
    let poison = serde_json::json!({"status": {"startTime": "2026-11-20T10:00:00.1234567890Z"}});
    raw.patch_status(
        &poisoned,
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&poison),
    )
    .await
    .context("the API server refused the odd startTime")?;
    let failed = |b: &DynamicObject| {
        let (reason, message) = ready_condition(b);
        (b.data["status"]["phase"] == "Failed" && reason == "InvalidSpec").then_some(message)
    };
    let message = eventually(
        "the unreadable bundle to fail",
        Duration::from_secs(60),
        || async { Ok(failed(&raw.get(&poisoned).await?)) },
    )
    .await?;
    ensure!(message.contains("status.startTime"), "{message}");

    restart_operators(1, &[]).await?;
    let normal =
        velero_debug_e2e::bundles::apply_bundle(t, serde_json::json!({"backup": backup})).await?;
    let done = wait_finished(t, &normal, Duration::from_secs(120)).await?;
    download(&done).await?;
    let ready = operator_readyz(&t.env).await?;
    ensure!(ready == "ready\n", "/readyz: {ready}");
    ensure!(
        failed(&raw.get(&poisoned).await?).is_some(),
        "the bad bundle is no longer Failed"
    );

    raw.delete(&poisoned, &Default::default()).await?;
    bundle_gone(t, &poisoned, Duration::from_secs(60)).await?;
    let bundles: Api<DebugBundle> = Api::namespaced(t.client.clone(), &t.env.namespace);
    ensure!(
        bundles.get_opt(&poisoned).await?.is_none(),
        "{poisoned} still there"
    );
    ensure!(bundles.get(&normal).await?.name_any() == normal);
    Ok(())
}

/// What the (single) operator's /readyz answers.
async fn operator_readyz(env: &Env) -> Result<String> {
    let dir = env
        .kubeconfig
        .parent()
        .context("kubeconfig has no folder")?;
    let port = std::fs::read_to_string(dir.join("operator-0.metrics-port"))?;
    Ok(
        reqwest::get(format!("http://127.0.0.1:{}/readyz", port.trim()))
            .await?
            .text()
            .await?,
    )
}

/// Status is not trusted for storage: a status pointing `archive.key` at another object of the
/// bucket gets that object neither signed nor deleted; the bundle's own archive still goes.
#[tokio::test]
async fn an_archive_key_written_into_status_is_neither_signed_nor_deleted() -> Result<()> {
    let t = &TestCtx::new().await?;
    let (_, backup, _) = real_backup(t, "keys").await?;
    let name =
        velero_debug_e2e::bundles::apply_bundle(t, serde_json::json!({"backup": backup})).await?;
    let done = wait_finished(t, &name, Duration::from_secs(120)).await?;
    download(&done).await?;
    let own = done
        .status
        .as_ref()
        .and_then(|s| s.archive.clone())
        .context("no archive")?
        .key;
    let victim = own.replace(&name, &unique_name("victim"));
    t.env
        .s3_client(&t.env.s3.endpoint)
        .put_object()
        .bucket(&t.env.s3.bucket)
        .key(&victim)
        .body(b"someone else's".to_vec().into())
        .send()
        .await?;
    let raw: Api<DynamicObject> = Api::namespaced_with(
        t.client.clone(),
        &t.env.namespace,
        &debug_bundles_resource(),
    );
    let point = serde_json::json!({"status": {"archive": {"key": victim}}});
    raw.patch_status(
        &name,
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&point),
    )
    .await?;
    // A refresh asked now must not sign the other object.
    let url_before = done.status.as_ref().and_then(|s| s.download_url.clone());
    let refresh =
        serde_json::json!({"metadata": {"annotations": {"velerodebug.io/refresh-url": "1"}}});
    raw.patch(
        &name,
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&refresh),
    )
    .await?;
    let after = eventually(
        "the refresh to be answered",
        Duration::from_secs(60),
        || async {
            let b = raw.get(&name).await?;
            Ok((b.data["status"]["urlRefreshedFor"] == "1").then_some(b))
        },
    )
    .await?;
    ensure!(
        after.data["status"]["downloadURL"].as_str() == url_before.as_deref(),
        "a new URL was signed for {victim}"
    );
    raw.delete(&name, &Default::default()).await?;
    bundle_gone(t, &name, Duration::from_secs(60)).await?;
    ensure!(
        !object_exists(&t.env, &own).await?,
        "the bundle's own archive stayed"
    );
    ensure!(
        object_exists(&t.env, &victim).await?,
        "the other object was deleted"
    );
    t.env
        .s3_client(&t.env.s3.endpoint)
        .delete_object()
        .bucket(&t.env.s3.bucket)
        .key(&victim)
        .send()
        .await?;
    Ok(())
}

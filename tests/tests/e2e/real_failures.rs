//! Issue 34's real failures: each made by the real Velero server against the real API server
//! and store (no hand-made Velero evidence). The bundle names the cause first and its next step
//! names the object to fix: the webhook, the missing API's resource, the storage location, the
//! LimitRange.

use std::{collections::BTreeMap, time::Duration};

use anyhow::{Context, Result, ensure};
use k8s_openapi::{
    api::{
        admissionregistration::v1::ValidatingWebhookConfiguration,
        core::v1::{ConfigMap, LimitRange, Namespace, Pod, Secret},
    },
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, DynamicObject, PostParams},
    core::{ApiResource, GroupVersionKind},
};
use velero_debug_crd::{DebugBundle, Phase, reasons};
use velero_debug_e2e::{
    archives::text,
    backups::{api_types_changing, backup_namespace, backup_phase, real_backup_with},
    bundles::{completed_bundle, condition_reason, finished_bundle},
    context::{TestCtx, create_namespace, unique_name},
    findings::{assert_first_finding, assert_first_status_finding},
    polling::eventually,
    rbac::grant_workload_reads,
    restores::{real_restore, real_restore_with},
    storage_locations::storage_location,
    velero_cli::velero,
    webhook::AdmissionWebhook,
};
use velero_debug_operator::velero::resource as velero_resource;

/// Asserts the first finding's next step names `object`: in status.findings and under the
/// first finding of summary.md.
fn assert_next_step_names(
    bundle: &DebugBundle,
    files: &BTreeMap<String, Vec<u8>>,
    object: &str,
) -> Result<()> {
    let first = bundle
        .status
        .as_ref()
        .and_then(|s| s.findings.first())
        .context("no finding")?;
    let step = first.next_step.as_deref().unwrap_or_default();
    ensure!(
        step.contains(object),
        "the next step of {} should name {object}: {step:?}",
        first.rule
    );
    let summary = text(files, "summary.md")?;
    // The first finding's lines: from `1. **` to the next numbered one.
    let lines: Vec<&str> = summary
        .lines()
        .skip_while(|l| !l.starts_with("1. **"))
        .take_while(|l| !l.starts_with("2. **"))
        .collect();
    ensure!(
        lines
            .iter()
            .any(|l| l.trim_start().starts_with("Next step: ") && l.contains(object)),
        "summary.md's first finding has no next step naming {object}:\n{summary}"
    );
    Ok(())
}

/// What the real Velero server said about the restore (its errors and warnings), printed for
/// whoever reads the test's output, and returned.
async fn restore_details(t: &TestCtx, restore: &str) -> Result<String> {
    let details = velero(&t.env, &["restore", "describe", restore, "--details"]).await?;
    eprintln!("velero restore describe {restore} --details:\n{details}");
    Ok(details)
}

/// Namespace `name`, made before a restore into it so that it can be guarded first.
async fn target_namespace(t: &TestCtx, name: &str) -> Result<()> {
    let ns: Namespace = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": {"velerodebug.io/e2e": "true"}}
    }))?;
    Api::<Namespace>::all(t.client.clone())
        .create(&PostParams::default(), &ns)
        .await?;
    t.cleanup.namespace(name);
    Ok(())
}

/// Asserts the real Restore ended `phase`.
fn assert_phase(restore: &DynamicObject, phase: &str) -> Result<()> {
    let got = restore.data["status"]["phase"].as_str().unwrap_or_default();
    ensure!(
        got == phase,
        "restore {} ended {got}, not {phase}",
        restore.name_any()
    );
    Ok(())
}

/// Waits until the API server refuses (dry run) `obj` in `ns` with a message holding `words`:
/// an admission rule is in force only once the API server's caches have it.
async fn refused<K>(t: &TestCtx, ns: &str, obj: &K, words: &str) -> Result<()>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(t.client.clone(), ns);
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    eventually(
        &format!("the API server to refuse with {words:?}"),
        Duration::from_secs(60),
        || async {
            Ok(match api.create(&dry, obj).await {
                Err(kube::Error::Api(e)) if e.message.contains(words) => Some(()),
                _ => None,
            })
        },
    )
    .await
}

fn config_map(name: &str, labels: serde_json::Value) -> Result<ConfigMap> {
    Ok(serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": labels}, "data": {"greeting": "hello"}
    }))?)
}

/// A ValidatingWebhookConfiguration of `webhook` for ConfigMaps labelled
/// `velerodebug.io/deny=true` created in namespace `ns` only (no other test's objects reach
/// it), failing closed; deleted at cleanup. Returns the webhook's name once it is in force.
async fn deny_config_maps_in(t: &TestCtx, webhook: &AdmissionWebhook, ns: &str) -> Result<String> {
    let name = format!("{}.e2e.velerodebug.io", unique_name("deny"));
    let config: ValidatingWebhookConfiguration = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "webhooks": [{
            "name": name,
            "clientConfig": {"url": webhook.url, "caBundle": webhook.ca_bundle},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                       "resources": ["configmaps"], "scope": "Namespaced"}],
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}},
            "objectSelector": {"matchLabels": {"velerodebug.io/deny": "true"}},
            "failurePolicy": "Fail", "sideEffects": "None",
            "admissionReviewVersions": ["v1"], "timeoutSeconds": 5,
        }],
    }))?;
    Api::<ValidatingWebhookConfiguration>::all(t.client.clone())
        .create(&PostParams::default(), &config)
        .await?;
    t.cleanup.delete(
        &ApiResource::erase::<ValidatingWebhookConfiguration>(&()),
        None,
        &name,
    );
    let probe = config_map("probe", serde_json::json!({"velerodebug.io/deny": "true"}))?;
    refused(t, ns, &probe, "denied the request").await?;
    Ok(name)
}

/// An admission webhook of the test's own denies the restored ConfigMaps it is given: the real
/// API server refuses them, the real Velero server ends the restore PartiallyFailed, and the
/// bundle names the webhook.
#[tokio::test]
async fn a_restore_denied_by_an_admission_webhook_names_the_webhook() -> Result<()> {
    let t = &TestCtx::new().await?;
    let ns = create_namespace(&t.client, &t.cleanup, "wh-src").await?;
    let config_maps = Api::<ConfigMap>::namespaced(t.client.clone(), &ns);
    for (name, labels) in [
        ("settings", serde_json::json!({})),
        ("denied", serde_json::json!({"velerodebug.io/deny": "true"})),
    ] {
        config_maps
            .create(&PostParams::default(), &config_map(name, labels)?)
            .await?;
    }
    let (backup, _) = backup_namespace(t, &ns, &[]).await?;
    let restored = format!("{ns}-r");
    target_namespace(t, &restored).await?;
    let webhook =
        AdmissionWebhook::denying(&t.env, "restored ConfigMaps are not welcome here").await?;
    let name = deny_config_maps_in(t, &webhook, &restored).await?;

    let restore = real_restore(t, &backup, &ns, &restored).await?;
    restore_details(t, &restore.name_any()).await?;
    assert_phase(&restore, "PartiallyFailed")?;
    let (bundle, files) =
        completed_bundle(t, serde_json::json!({"restore": restore.name_any()})).await?;
    assert_first_finding(
        &bundle,
        &files,
        "webhook-denied",
        &["denied by admission webhook"],
    )?;
    assert_next_step_names(&bundle, &files, &name)
}

/// A BSL of the test's own whose credentials Secret holds a key the store does not know;
/// waits until Velero marks it Unavailable by itself and returns its name.
async fn location_with_a_wrong_key(t: &TestCtx) -> Result<String> {
    // A name the chart lets the operator read (tests/env/lifecycle/operator/chart-install.sh): a Secret it may not
    // read fails the bundle CredentialsInvalid before any diagnosis.
    let secret_name = "aws-wrong-key-credentials";
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": secret_name},
        "stringData": {"cloud": "[default]\naws_access_key_id=vdo-no-such-key\naws_secret_access_key=not-the-secret\n"},
    }))?;
    let secrets = Api::<Secret>::namespaced(t.client.clone(), &t.env.namespace);
    // Left by an earlier run that ended before its cleanup.
    let _ = secrets.delete(secret_name, &DeleteParams::default()).await;
    secrets.create(&PostParams::default(), &secret).await?;
    t.cleanup.object::<Secret>(&t.env.namespace, secret_name);
    let bsl = storage_location(
        t,
        serde_json::json!({"credential": {"name": secret_name, "key": "cloud"},
                           "validationFrequency": "5s"}),
    )
    .await?;
    let bsls: Api<DynamicObject> = Api::namespaced_with(
        t.client.clone(),
        &t.env.namespace,
        &velero_resource("BackupStorageLocation"),
    );
    let message = eventually(
        &format!("BSL {bsl} to be Unavailable"),
        Duration::from_secs(90),
        || async {
            let b = bsls.get(&bsl).await?;
            let status = &b.data["status"];
            Ok((status["phase"] == "Unavailable").then(|| status["message"].to_string()))
        },
    )
    .await?;
    eprintln!("BSL {bsl} status.message: {message}");
    Ok(bsl)
}

/// A BSL whose credentials the store refuses (it answers 403 to a key it does not know): Velero
/// marks it Unavailable by itself and fails a backup into it (FailedValidation; Velero 1.14:
/// Failed, at upload). A bundle
/// stored there fails CredentialsInvalid naming the BSL, with the BSL first in its findings
/// all the same; stored in BSL default, it completes and names the BSL first.
#[tokio::test]
async fn a_backup_into_a_location_with_wrong_credentials_names_the_location() -> Result<()> {
    let t = &TestCtx::new().await?;
    let bsl = location_with_a_wrong_key(t).await?;
    let ns = create_namespace(&t.client, &t.cleanup, "creds-src").await?;
    let args = ["--storage-location", bsl.as_str()];
    let (backup, _) = backup_namespace(t, &ns, &args).await?;
    let details = velero(&t.env, &["backup", "describe", &backup]).await?;
    eprintln!("velero backup describe {backup}:\n{details}");
    let phase = backup_phase(t, &backup).await?;
    let expected = t.env.velero.unavailable_location_backup_phase();
    ensure!(
        phase == expected,
        "the backup should end {expected}, not {phase}:\n{details}"
    );

    // Its archive would go where the backup is: the store refuses the key, so it cannot be
    // stored, but the cluster's evidence is diagnosed all the same.
    let refused = finished_bundle(t, serde_json::json!({"backup": backup})).await?;
    let reason = condition_reason(&refused);
    ensure!(
        refused.status.as_ref().and_then(|s| s.phase) == Some(Phase::Failed)
            && reason.starts_with(reasons::CREDENTIALS_INVALID)
            && reason.contains(&bsl),
        "a bundle stored in {bsl} should fail CredentialsInvalid naming it: {reason}"
    );
    assert_first_status_finding(&refused, "bsl-unavailable")?;
    let first = &refused.status.as_ref().context("no status")?.findings[0];
    ensure!(
        first.next_step.as_deref().is_some_and(|s| s.contains(&bsl)),
        "the refused bundle's first finding: {first:?}"
    );
    let spec = serde_json::json!({"backup": backup, "storageLocation": "default"});
    let (bundle, files) = completed_bundle(t, spec).await?;
    assert_first_finding(&bundle, &files, "bsl-unavailable", &[&bsl])?;
    assert_next_step_names(&bundle, &files, &bsl)
}

/// A pod of the backed-up namespace with a 1Gi memory limit, restored into a namespace whose
/// LimitRange allows 512Mi per container: the real API server's LimitRanger refuses it, and
/// the bundle names the LimitRange.
#[tokio::test]
async fn a_restore_refused_by_a_limit_range_names_the_limit_range() -> Result<()> {
    let t = &TestCtx::new().await?;
    let ns = create_namespace(&t.client, &t.cleanup, "lr-src").await?;
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "app"},
        "spec": {"containers": [{"name": "app", "image": "busybox",
            "resources": {"limits": {"memory": "1Gi"}, "requests": {"memory": "1Gi"}}}]},
    }))?;
    let pods = Api::<Pod>::namespaced(t.client.clone(), &ns);
    // The namespace's default ServiceAccount, which admission wants, comes a moment later.
    eventually("the pod made", Duration::from_secs(30), || async {
        Ok(pods.create(&PostParams::default(), &pod).await.ok())
    })
    .await?;
    let (backup, _) = backup_namespace(t, &ns, &[]).await?;
    let restored = format!("{ns}-r");
    target_namespace(t, &restored).await?;
    // The operator reads the LimitRanges of a namespace the chart lets it read.
    grant_workload_reads(t, &restored).await?;
    let limit = "small-containers";
    let limit_range: LimitRange = serde_json::from_value(serde_json::json!({
        "metadata": {"name": limit},
        "spec": {"limits": [{"type": "Container", "max": {"memory": "512Mi"}}]},
    }))?;
    Api::<LimitRange>::namespaced(t.client.clone(), &restored)
        .create(&PostParams::default(), &limit_range)
        .await?;
    refused(t, &restored, &pod, "maximum memory usage per Container").await?;

    let restore = real_restore(t, &backup, &ns, &restored).await?;
    restore_details(t, &restore.name_any()).await?;
    assert_phase(&restore, "PartiallyFailed")?;
    let (bundle, files) =
        completed_bundle(t, serde_json::json!({"restore": restore.name_any()})).await?;
    let named = format!("LimitRange {restored}/{limit}");
    assert_first_finding(&bundle, &files, "limit-range-refused", &[&named])?;
    assert_next_step_names(&bundle, &files, &named)
}

/// A cluster-scoped CRD of the test's own, `<plural>.<group>`, labelled `labels`; deleted at
/// cleanup. Waits until it is Established. Cluster-scoped, because Velero's backups of some
/// namespaces (every other test's) skip cluster-scoped types: while Velero's discovery still
/// names a type this test deleted, only this test's backups would list it.
async fn own_crd(
    t: &TestCtx,
    (group, plural, kind): (&str, &str, &str),
    labels: serde_json::Value,
) -> Result<String> {
    let name = format!("{plural}.{group}");
    let crd: CustomResourceDefinition = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {"group": group, "scope": "Cluster",
            "names": {"plural": plural, "singular": kind.to_lowercase(), "kind": kind},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object",
                    "x-kubernetes-preserve-unknown-fields": true}}}]},
    }))?;
    let crds = Api::<CustomResourceDefinition>::all(t.client.clone());
    crds.create(&PostParams::default(), &crd).await?;
    t.cleanup.delete(
        &ApiResource::erase::<CustomResourceDefinition>(&()),
        None,
        &name,
    );
    wait_crd(t, &name, true).await?;
    Ok(name)
}

/// Waits until CRD `name` is Established (`present`) or gone.
async fn wait_crd(t: &TestCtx, name: &str, present: bool) -> Result<()> {
    let crds = Api::<CustomResourceDefinition>::all(t.client.clone());
    eventually(
        &format!("CRD {name} established: {present}"),
        Duration::from_secs(60),
        || async {
            let established = crds.get_opt(name).await?.is_some_and(|c| {
                c.status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            });
            Ok((established == present).then_some(()))
        },
    )
    .await
}

async fn delete_crd(t: &TestCtx, name: &str) -> Result<()> {
    Api::<CustomResourceDefinition>::all(t.client.clone())
        .delete(name, &DeleteParams::default())
        .await?;
    eventually(
        &format!("CRD {name} gone"),
        Duration::from_secs(60),
        || async {
            let crds = Api::<CustomResourceDefinition>::all(t.client.clone());
            Ok(crds.get_opt(name).await?.is_none().then_some(()))
        },
    )
    .await
}

/// Makes the real Velero server read its discovery again: it does so every five minutes, or
/// when a restore created a CRD. So CRD `trigger` (labelled `selector`) is backed up, deleted
/// and restored.
async fn refresh_velero_discovery(t: &TestCtx, trigger: &str, selector: &str) -> Result<()> {
    let (backup, _) = real_backup_with(
        t,
        &[
            "--include-resources",
            "customresourcedefinitions.apiextensions.k8s.io",
            "--include-cluster-resources=true",
            "--selector",
            selector,
        ],
    )
    .await?;
    delete_crd(t, trigger).await?;
    let restore = real_restore_with(t, &backup, &["--include-cluster-resources=true"]).await?;
    assert_phase(&restore, "Completed")?;
    wait_crd(t, trigger, true).await
}

/// A custom resource backed up by the real Velero server, then restored once its CRD is gone
/// and the restore leaves the CRD out (it selects by a label the CRD does not have): the API
/// server answers 404 for its type, and the bundle names the resource.
#[tokio::test]
async fn a_restore_of_a_custom_resource_whose_crd_is_gone_names_the_resource() -> Result<()> {
    let t = &TestCtx::new().await?;
    let tag = unique_name("set");
    let group = format!("{tag}.e2e.velerodebug.io");
    let selector = format!("velerodebug.io/e2e-set={tag}");
    let set = serde_json::json!({"velerodebug.io/e2e-set": tag});
    let widgets = own_crd(t, (&group, "widgets", "Widget"), serde_json::json!({})).await?;
    let trigger = own_crd(t, (&group, "triggers", "Trigger"), set.clone()).await?;
    // Velero's discovery did not know the new type: its backups would leave the widget out.
    refresh_velero_discovery(t, &trigger, &selector).await?;
    let widget_type = ApiResource::from_gvk(&GroupVersionKind::gvk(&group, "v1", "Widget"));
    let mut widget =
        DynamicObject::new("w1", &widget_type).data(serde_json::json!({"spec": {"size": 3}}));
    widget.metadata.labels = Some(BTreeMap::from([("velerodebug.io/e2e-set".into(), tag)]));
    Api::<DynamicObject>::all_with(t.client.clone(), &widget_type)
        .create(&PostParams::default(), &widget)
        .await?;
    let resources = format!("{widgets},customresourcedefinitions.apiextensions.k8s.io");
    let (backup, _) = real_backup_with(
        t,
        &[
            "--include-resources",
            &resources,
            "--include-cluster-resources=true",
            "--selector",
            &selector,
        ],
    )
    .await?;
    let details = velero(&t.env, &["backup", "describe", &backup, "--details"]).await?;
    ensure!(
        details.contains("- w1"),
        "the backup should hold widget w1:\n{details}"
    );
    // Backups beside this test wait while Velero knows a type that is gone (ci26: a healthy
    // fs-backup failed with `no matches for` the widgets' type).
    let changing = api_types_changing().await;
    delete_crd(t, &widgets).await?;
    // The restore makes the trigger CRD again, so Velero reads its discovery (the widgets' type
    // gone) before it restores the widget.
    delete_crd(t, &trigger).await?;
    let args = ["--include-cluster-resources=true", "--selector", &selector];
    let restore = real_restore_with(t, &backup, &args).await?;
    drop(changing);
    restore_details(t, &restore.name_any()).await?;
    assert_phase(&restore, "PartiallyFailed")?;
    let (bundle, files) =
        completed_bundle(t, serde_json::json!({"restore": restore.name_any()})).await?;
    assert_first_finding(&bundle, &files, "api-missing", &[&widgets])?;
    assert_next_step_names(&bundle, &files, &widgets)
}

//! Diagnosis end to end: a bundle names the probable cause first, in summary.md and in
//! status.findings, from evidence the operator collected in the cluster itself.

use std::{collections::BTreeMap, time::Duration};

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::{
    core::v1::{Event, PersistentVolumeClaim, Pod},
    rbac::v1::{Role, RoleBinding},
    storage::v1::VolumeAttachment,
};
use kube::{
    Api, Client, ResourceExt,
    api::{ApiResource, DynamicObject, Patch, PatchParams, PostParams},
};
use velero_debug_crd::DebugBundleStatus;
use velero_debug_e2e::{
    archives::{download, text},
    backups::real_backup,
    bundles::{apply_bundle, condition_reason, wait_finished},
    context::{TestCtx, create_namespace, unique_name},
    findings::first_finding,
    operations::pod_volume_restore,
    operators::chart_values,
    polling::eventually,
    rbac::RELEASE,
    restores::finished_restore,
    volumes::static_volume,
};
use velero_debug_operator::velero::resource as velero_resource;

/// A pod that stays Pending (its nodeSelector matches no node, so neither the scheduler nor
/// kwok runs it), restored by `restore` as Velero labels what it restores, with a claim that
/// is never bound (naming `volume` when given); returns the pod's uid.
async fn pending_restored_pod(
    client: &Client,
    namespace: &str,
    (name, claim, volume): (&str, &str, Option<&str>),
    restore: &str,
) -> Result<String> {
    let pvc: PersistentVolumeClaim = serde_json::from_value(serde_json::json!({
        "metadata": {"name": claim, "labels": {"velero.io/restore-name": restore}},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": "velerodebug-e2e-none",
            "resources": {"requests": {"storage": "1Gi"}},
            "volumeName": volume,
        },
    }))?;
    Api::<PersistentVolumeClaim>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &pvc)
        .await?;
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": {"app": name, "velero.io/restore-name": restore}},
        "spec": {
            "nodeSelector": {"velerodebug.io/e2e-no-such-node": "true"},
            "initContainers": [{"name": "restore-wait", "image": "velero/velero:v1.18.1"}],
            "containers": [{"name": name, "image": "registry.example.com/app:1.0"}],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}],
        },
    }))?;
    let pods = Api::<Pod>::namespaced(client.clone(), namespace);
    // A namespace made a moment ago may not have its default ServiceAccount yet, and pods
    // are refused until it does.
    let created = eventually(
        "the pod to be admitted",
        Duration::from_secs(60),
        || async { Ok(Some(pods.create(&PostParams::default(), &pod).await?)) },
    )
    .await?;
    created.uid().context("the pod has no uid")
}

/// A Warning event about `involved`, recorded in `namespace` now by `component`: `[reason,
/// message, component]`, seen `count` times.
async fn warning_event(
    client: &Client,
    (namespace, name): (&str, &str),
    involved: serde_json::Value,
    [reason, message, component]: [&str; 3],
    count: i32,
) -> Result<()> {
    let now = jiff::Timestamp::now().to_string();
    let event: Event = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "involvedObject": involved,
        "type": "Warning",
        "reason": reason,
        "message": message,
        "source": {"component": component},
        "firstTimestamp": now, "lastTimestamp": now, "count": count,
    }))?;
    Api::<Event>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &event)
        .await?;
    Ok(())
}

/// The Warning event the attach/detach controller records on a pod whose ReadWriteOnce volume
/// is still attached to another node.
async fn multi_attach_event(
    client: &Client,
    namespace: &str,
    pod: &str,
    pod_uid: &str,
    message: &str,
) -> Result<()> {
    let involved = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod", "namespace": namespace, "name": pod, "uid": pod_uid,
    });
    let what = ["FailedAttachVolume", message, "attachdetach-controller"];
    let name = format!("{pod}.multi-attach");
    warning_event(client, (namespace, &name), involved, what, 3).await
}

/// A bundle of `restore`, finished: its status and its files.
async fn bundle_of(
    t: &TestCtx,
    restore: &str,
) -> Result<(DebugBundleStatus, BTreeMap<String, Vec<u8>>)> {
    let name = apply_bundle(t, serde_json::json!({"restore": restore})).await?;
    let bundle = wait_finished(t, &name, Duration::from_secs(120)).await?;
    let status = bundle.status.clone().context("no status")?;
    let files = download(&bundle)
        .await
        .with_context(|| condition_reason(&bundle))?;
    Ok((status, files))
}

/// A Restore made by hand as ended PartiallyFailed (Velero leaves it alone), without an
/// automatic bundle (the test asks for its own), and a namespace for what it restored, which the
/// chart's defaults let the operator read (rbac.workloadNamespaces ["*"]): the restore's name
/// and uid, the namespace.
async fn failed_restore_into_a_namespace(
    t: &TestCtx,
    prefix: &str,
) -> Result<(String, String, String)> {
    let (_, backup, _) = real_backup(t, &format!("{prefix}-src")).await?;
    let no_auto = serde_json::json!({"velerodebug.io/auto-bundle": "false"});
    let (restore, restore_uid) =
        finished_restore(t, &backup, "PartiallyFailed", Duration::ZERO, no_auto).await?;
    let ns = create_namespace(&t.client, &t.cleanup, prefix).await?;
    Ok((restore, restore_uid, ns))
}

/// The restore of the Multi-Attach story: a pod Pending behind a FailedAttachVolume
/// "Multi-Attach error" event, and its PodVolumeRestore left New. Its namespace, the event's
/// message and the PodVolumeRestore's name.
async fn multi_attach_story(t: &TestCtx, prefix: &str) -> Result<(String, String, String, String)> {
    let (restore, restore_uid, ns) = failed_restore_into_a_namespace(t, prefix).await?;
    let pod_uid = pending_restored_pod(&t.client, &ns, ("app", "data-app", None), &restore).await?;
    let volume = "pvc-6f1c2a9e-4b7d-4c1e-9a55-0d2e8b3f7c41";
    let message = format!(
        "Multi-Attach error for volume \"{volume}\" Volume is already exclusively attached to one node and can't be attached to another"
    );
    multi_attach_event(&t.client, &ns, "app", &pod_uid, &message).await?;
    // Never accepted by a node: its pod never ran the restore-wait init container.
    let pvr = pod_volume_restore(
        t,
        (&restore, &restore_uid),
        (&ns, "app"),
        serde_json::json!({"phase": "New", "progress": {}}),
    )
    .await?;
    Ok((restore, ns, message, pvr))
}

/// Issue 57, the strict choice: with rbac.workloadNamespaces [] the operator may not read the
/// restored namespace, and the first finding says so and names the chart value, as summary.md's
/// "Not allowed to read" does, instead of sending the reader to a pod it could not see. Alone:
/// it installs the chart with that value, then with its defaults again.
#[tokio::test]
async fn serial_a_stuck_restore_the_operator_may_not_read_says_so_first() -> Result<()> {
    let t = &TestCtx::new().await?;
    chart_values(&["rbac.workloadNamespaces=[]"]).await?;
    let outcome = stuck_restore_not_allowed(t).await;
    chart_values(&[]).await?;
    outcome
}

async fn stuck_restore_not_allowed(t: &TestCtx) -> Result<()> {
    let (restore, ns, _, pvr) = multi_attach_story(t, "strict").await?;
    let (status, files) = bundle_of(t, &restore).await?;
    let summary = text(&files, "summary.md")?;
    let (_, first) = first_finding(&summary)?;
    ensure!(
        first.contains(&format!("PodVolumeRestore {pvr} stuck New"))
            && first.contains(&format!("the operator may not read its pod {ns}/app"))
            && first.contains("`pod-volume-restore-stuck`"),
        "first finding: {first}\n{summary}"
    );
    let top = status.findings.first().context("no status.findings")?;
    let step = top.next_step.as_deref().unwrap_or_default();
    ensure!(
        step.contains(&format!("may not read namespace {ns}"))
            && step.contains("rbac.workloadNamespaces"),
        "next step: {step}"
    );
    ensure!(
        summary.contains("## Not allowed to read")
            && summary.contains(&format!(
                "in namespace {ns}: forbidden; rbac.workloadNamespaces does not list this namespace"
            )),
        "no refusal section:\n{summary}"
    );
    ensure!(
        !summary.contains("FailedAttachVolume"),
        "the event of a namespace not granted is in the bundle:\n{summary}"
    );
    Ok(())
}

#[tokio::test]
async fn a_pod_volume_restore_stuck_behind_a_multi_attach_error_names_its_pod_first() -> Result<()>
{
    let t = &TestCtx::new().await?;
    let (restore, ns, message, pvr) = multi_attach_story(t, "diag").await?;
    // Still New: nothing in the environment accepts it.
    let stored = Api::<DynamicObject>::namespaced_with(
        t.client.clone(),
        &t.env.namespace,
        &velero_resource("PodVolumeRestore"),
    )
    .get(&pvr)
    .await?;
    ensure!(
        stored.data["status"]["phase"] == "New",
        "PodVolumeRestore {pvr}: {}",
        stored.data["status"]
    );

    let (status, files) = bundle_of(t, &restore).await?;

    // The cause first in summary.md, naming the PVR, its pod and the Multi-Attach error.
    let pod = format!("{ns}/app");
    let summary = text(&files, "summary.md")?;
    let (findings_at, first) = first_finding(&summary)?;
    ensure!(
        findings_at < 40
            && first.starts_with("1. **")
            && first.contains(&format!("PodVolumeRestore {pvr} is stuck"))
            && first.contains(&format!("its pod {pod} is Pending"))
            && first.contains("Multi-Attach error for volume")
            && first.contains("`volume-attach-failed`"),
        "first finding (line {findings_at}): {first}\n{summary}"
    );
    // Its quote is the event's, and the stuck PVR is its consequence.
    ensure!(
        summary.contains(&format!("   > FailedAttachVolume: {message}")),
        "no quote of the event:\n{summary}"
    );
    ensure!(
        summary.contains("never ran its restore init container: consequence of #1"),
        "the stuck PodVolumeRestore is not a consequence of the pod:\n{summary}"
    );

    // The same in status.findings, where `kubectl describe` shows it.
    let top = status.findings.first().context("no status.findings")?;
    ensure!(
        top.rule == "volume-attach-failed"
            && top.title.contains("Multi-Attach")
            && top.title.contains(&pod),
        "status.findings: {:?}",
        status.findings
    );

    // The evidence is in the bundle: the pod, its claim, the event.
    let pod_yaml = text(&files, &format!("resources/workloads/{ns}/pod/app.yaml"))?;
    ensure!(
        pod_yaml.contains("name: app") && pod_yaml.contains("phase: Pending"),
        "{pod_yaml}"
    );
    ensure!(
        files.contains_key(&format!(
            "resources/workloads/{ns}/persistentvolumeclaim/data-app.yaml"
        )),
        "no claim in {:?}",
        files.keys().collect::<Vec<_>>()
    );
    let events = text(&files, &format!("events/workloads-{ns}.yaml"))?;
    ensure!(events.contains("Multi-Attach error"), "{events}");
    // The chart's defaults read workloads across the cluster: nothing was refused.
    ensure!(
        !summary.contains("## Not allowed to read")
            && !status
                .warnings
                .iter()
                .any(|w| w.contains("rbac.workloadNamespaces")),
        "a refusal with the chart's defaults: {:?}\n{summary}",
        status.warnings
    );
    Ok(())
}

/// A VolumeAttachment saying `node` holds volume `pv`, attached; its name.
async fn attachment_on(t: &TestCtx, pv: &str, node: &str) -> Result<String> {
    let name = unique_name("csi-e2e");
    let attachment: VolumeAttachment = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {
            "attacher": "e2e.csi.velerodebug.io",
            "nodeName": node,
            "source": {"persistentVolumeName": pv},
        },
    }))?;
    let api = Api::<VolumeAttachment>::all(t.client.clone());
    t.cleanup
        .delete(&ApiResource::erase::<VolumeAttachment>(&()), None, &name);
    api.create(&PostParams::default(), &attachment).await?;
    let status = serde_json::json!({"status": {"attached": true}});
    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    Ok(name)
}

/// Lets the operator list events in namespace default, as the chart renders it with
/// rbac.persistentVolumeEvents.
async fn grant_volume_events(t: &TestCtx) -> Result<()> {
    let name = format!("{RELEASE}-volume-events");
    let role: Role = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "rules": [{"apiGroups": [""], "resources": ["events"], "verbs": ["list"]}],
    }))?;
    let binding: RoleBinding = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": RELEASE, "namespace": t.env.namespace}],
    }))?;
    t.cleanup.object::<Role>("default", &name);
    t.cleanup.object::<RoleBinding>("default", &name);
    Api::<Role>::namespaced(t.client.clone(), "default")
        .create(&PostParams::default(), &role)
        .await?;
    Api::<RoleBinding>::namespaced(t.client.clone(), "default")
        .create(&PostParams::default(), &binding)
        .await?;
    Ok(())
}

/// A Warning event about PV `pv` where Kubernetes records those of cluster-scoped objects.
async fn volume_event(t: &TestCtx, pv: &str, pv_uid: &str, message: &str) -> Result<()> {
    let name = format!("{pv}.e2e");
    t.cleanup.object::<Event>("default", &name);
    let involved = serde_json::json!({"apiVersion": "v1", "kind": "PersistentVolume", "name": pv, "uid": pv_uid});
    let what = ["VolumeConditionAbnormal", message, "e2e"];
    warning_event(&t.client, ("default", &name), involved, what, 1).await
}

/// The Multi-Attach finding's next step names the VolumeAttachment holding the volume on the
/// other node, and the PV's own events (namespace default) are in the bundle.
#[tokio::test]
async fn a_multi_attach_names_the_attachment_holding_the_volume_and_the_volume_s_events()
-> Result<()> {
    let t = &TestCtx::new().await?;
    let (restore, restore_uid, ns) = failed_restore_into_a_namespace(t, "attach").await?;
    grant_volume_events(t).await?;
    let pv = unique_name("pvc-e2e");
    let pv_uid = static_volume(t, &pv, &ns, "data-app").await?;
    let pod_uid =
        pending_restored_pod(&t.client, &ns, ("app", "data-app", Some(&pv)), &restore).await?;
    let attachment = attachment_on(t, &pv, "e2e-old-node").await?;
    let message = format!(
        "Multi-Attach error for volume \"{pv}\" Volume is already exclusively attached to one node and can't be attached to another"
    );
    multi_attach_event(&t.client, &ns, "app", &pod_uid, &message).await?;
    let degraded = "e2e: the backend of the volume reports it degraded";
    volume_event(t, &pv, &pv_uid, degraded).await?;
    pod_volume_restore(
        t,
        (&restore, &restore_uid),
        (&ns, "app"),
        serde_json::json!({"phase": "New", "progress": {}}),
    )
    .await?;

    let (status, files) = bundle_of(t, &restore).await?;
    let top = status.findings.first().context("no status.findings")?;
    let step = top.next_step.as_deref().unwrap_or_default();
    ensure!(
        top.rule == "volume-attach-failed"
            && step.contains(&format!("kubectl delete volumeattachment {attachment}"))
            && step.contains("node e2e-old-node"),
        "status.findings: {:?}",
        status.findings
    );
    let summary = text(&files, "summary.md")?;
    ensure!(
        summary.contains(&format!(
            "VolumeAttachment {attachment} still holds the volume"
        )),
        "summary.md has no next step naming the attachment:\n{summary}"
    );
    let events = text(&files, "events/persistentvolumes.yaml")?;
    ensure!(events.contains(degraded), "{events}");
    ensure!(
        files.contains_key(&format!(
            "resources/workloads/volumeattachment/{attachment}.yaml"
        )),
        "no attachment in {:?}",
        files.keys().collect::<Vec<_>>()
    );
    Ok(())
}

//! Issue 59: a Backup or Restore that stops moving gets an automatic bundle while it still
//! hangs, once per stall, whose first finding names what it waits on. On the real node, with
//! Velero's own node-agent: the operator restarted with a short `stallAfter`.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use kube::{
    Api, ResourceExt,
    api::{DynamicObject, ListParams, PostParams},
};
use velero_debug_crd::DebugBundle;
use velero_debug_e2e::{
    archives::{download, text},
    auto_bundles::auto_bundle_recorded,
    bundles::wait_completed,
    context::{TestCtx, create_namespace, unique_name},
    findings::assert_first_finding,
    operators::{OperatorsBack, restart_operators},
    polling::eventually,
    rbac::grant_workload_reads,
    real_node::backed_up_volume,
    velero_cli::in_final_phase,
    webhook::AdmissionWebhook,
};
use velero_debug_operator::velero::resource as velero_resource;

/// What the operator waits before it calls a running operation stalled, in this test.
const STALL_AFTER: Duration = Duration::from_secs(20);

/// The stall bundles of the operation with this uid.
async fn stall_bundles(t: &TestCtx, uid: &str) -> Result<Vec<DebugBundle>> {
    let api: Api<DebugBundle> = Api::namespaced(t.client.clone(), &t.env.namespace);
    let selector = format!("velerodebug.io/auto-reason=stall,velerodebug.io/target-uid={uid}");
    Ok(api
        .list(&ListParams::default().labels(&selector))
        .await?
        .items)
}

/// A Restore whose pod never reaches Velero's restore-wait init container (a mesh's failing
/// init container runs before it), left running: Velero waits for its PodVolumeRestore until
/// the restore's pod-volume-timeout. Within stallAfter and a minute it gets exactly one stall
/// bundle, taken while Velero still says InProgress, whose first finding names the
/// PodVolumeRestore and the pod it waits for; once Velero gives up, the bundle of the final
/// phase comes as before. Serial: the operator runs with another stallAfter meanwhile.
#[tokio::test]
async fn serial_real_node_a_restore_that_stops_moving_gets_one_bundle_naming_what_it_waits_on()
-> Result<()> {
    let t = &TestCtx::new().await?;
    let back = OperatorsBack::armed();
    let stall_after = format!("{}s", STALL_AFTER.as_secs());
    restart_operators(1, &[("AUTO_BUNDLE_STALL_AFTER", stall_after)]).await?;
    let (from, backup) = backed_up_volume(t, "fs-stall").await?;
    // Made before the restore, so the operator may read it from the start.
    let to = create_namespace(&t.client, &t.cleanup, "fs-stall-dst").await?;
    let webhook = AdmissionWebhook::failing_mesh_init(&t.env).await?;
    webhook.inject_into(t, &to).await?;
    grant_workload_reads(t, &to).await?;
    let restores = Api::<DynamicObject>::namespaced_with(
        t.client.clone(),
        &t.env.namespace,
        &velero_resource("Restore"),
    );
    let name = unique_name("rs-stall");
    t.cleanup
        .delete(&velero_resource("Restore"), Some(&t.env.namespace), &name);
    let restore: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "velero.io/v1", "kind": "Restore",
        "metadata": {"name": name, "annotations": {"velero.io/pod-volume-timeout": "4m"}},
        "spec": {"backupName": backup, "includedNamespaces": [from],
                 "namespaceMapping": {&from: &to}},
    }))?;
    let uid = restores
        .create(&PostParams::default(), &restore)
        .await?
        .uid()
        .context("the restore has no uid")?;

    let found = async {
        let bundle = eventually(
            "the restore's stall bundle",
            STALL_AFTER + Duration::from_secs(60),
            || async { Ok(stall_bundles(t, &uid).await?.first().map(|b| b.name_any())) },
        )
        .await?;
        let made = wait_completed(t, &bundle, Duration::from_secs(120)).await?;
        let phase = restores.get(&name).await?.data["status"]["phase"].clone();
        ensure!(
            phase == "InProgress",
            "the restore is {phase} once its stall bundle is made"
        );
        let files = download(&made).await?;
        assert_first_finding(
            &made,
            &files,
            "operation-stalled",
            &[
                "Restore has not moved for",
                "mesh-init",
                "restore-wait",
                "db-0",
            ],
        )?;
        let summary = text(&files, "summary.md")?;
        ensure!(
            summary.contains("- Taken while it ran: it had not moved for"),
            "{summary}"
        );
        // Still stalled, never a second bundle for the same stall.
        tokio::time::sleep(STALL_AFTER * 2).await;
        let stalls = stall_bundles(t, &uid).await?;
        ensure!(stalls.len() == 1, "{} stall bundles", stalls.len());
        // Velero gives up on the volume: the bundle of the final phase as before.
        let ended = in_final_phase(t, "Restore", &name, Duration::from_secs(360)).await?;
        ensure!(
            ended.data["status"]["phase"] == "PartiallyFailed",
            "the restore ended {}",
            ended.data["status"]
        );
        let failure = auto_bundle_recorded(t, &name).await?;
        ensure!(failure != bundle, "the final phase's bundle is the stall's");
        Ok(())
    }
    .await;
    back.done().await?;
    found
}

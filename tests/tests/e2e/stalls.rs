//! Issue 59: a Backup or Restore that stops moving gets an automatic bundle while it still
//! hangs, once per stall, whose first finding names what it waits on; one that keeps moving
//! gets none. On the real node, with Velero's own node-agent: the operator restarted with a
//! short `stallAfter`.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, ResourceExt,
    api::{DynamicObject, ListParams, Patch, PatchParams, PostParams},
};
use velero_debug_crd::DebugBundle;
use velero_debug_e2e::{
    archives::{download, text},
    auto_bundles::{auto_bundle_recorded, ledger_record},
    bundles::wait_completed,
    context::{TestCtx, create_namespace, unique_name},
    findings::{assert_first_finding, first_next_step},
    operators::{OperatorsBack, restart_operators},
    polling::eventually,
    rbac::grant_workload_reads,
    real_node::{
        backed_up_volume, change_real_node_agent, start_fs_backup, stateful_set_on_real_node,
    },
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
    let name = unique_name("rs-st");
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
        let step = first_next_step(&made);
        ensure!(
            step.contains(&format!("kubectl -n {to} logs db-0 -c mesh-init")),
            "next step: {step}"
        );
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

/// Two backups, one after the other, with one operator. The first keeps moving for three
/// stallAfters, as its status says (made so, not timed against the machine's speed), and gets
/// no stall bundle until it stops. The second, through the real node's node-agent: its data-path pod
/// cannot start, and it is left running: the node-agent DaemonSet mounts a Secret that is gone
/// by the time of the backup, and Velero's exposer copies the DaemonSet's volumes into every
/// data-path pod, so the pod stays Pending (FailedMount) until node-agent's prepare timeout.
/// Within stallAfter and a minute it gets exactly one stall bundle, taken while Velero says
/// InProgress, whose first finding names the data-path pod and the missing Secret; an
/// operator restarted meanwhile makes no second one for the same stall; once node-agent gives
/// up, the bundle of the final phase comes (Backups' PartiallyFailed asked for here). Serial:
/// the operator and the real node's node-agent run with other settings.
#[tokio::test]
async fn serial_real_node_a_backup_that_keeps_moving_gets_none_one_whose_pod_cannot_start_gets_one()
-> Result<()> {
    let t = &TestCtx::new().await?;
    let back = OperatorsBack::armed();
    let settings = [
        (
            "AUTO_BUNDLE_STALL_AFTER",
            format!("{}s", STALL_AFTER.as_secs()),
        ),
        ("AUTO_BUNDLE_BACKUP_PHASES", "PartiallyFailed".to_string()),
    ];
    restart_operators(1, &settings).await?;
    let ns = create_namespace(&t.client, &t.cleanup, "fs-stall-bk").await?;
    stateful_set_on_real_node(t, &ns, "db", &["data"], serde_json::json!([])).await?;
    keeps_moving_and_gets_none(t).await?;

    let secret = unique_name("extra-ca");
    let secrets: Api<Secret> = Api::namespaced(t.client.clone(), &t.env.namespace);
    t.cleanup.object::<Secret>(&t.env.namespace, &secret);
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({
                "metadata": {"name": secret}, "stringData": {"ca.crt": "not a certificate"},
            }))?,
        )
        .await?;
    let node_agent = change_real_node_agent(
        t,
        serde_json::json!([
            {"op": "add", "path": "/spec/template/spec/volumes/-",
             "value": {"name": "extra-ca", "secret": {"secretName": secret}}},
            {"op": "add", "path": "/spec/template/spec/containers/0/volumeMounts/-",
             "value": {"name": "extra-ca", "mountPath": "/etc/extra-ca", "readOnly": true}},
            {"op": "add", "path": "/spec/template/spec/containers/0/args/-",
             "value": "--data-mover-prepare-timeout=2m"},
        ]),
    )
    .await?;
    // The node-agent runs with it mounted; its data-path pods will not find it.
    secrets.delete(&secret, &Default::default()).await?;

    let (name, uid) = start_fs_backup(t, &ns, "bk-stall").await?;
    let found = async {
        let bundle = eventually(
            "the backup's stall bundle",
            STALL_AFTER + Duration::from_secs(60),
            || async { Ok(stall_bundles(t, &uid).await?.first().map(|b| b.name_any())) },
        )
        .await?;
        let made = wait_completed(t, &bundle, Duration::from_secs(120)).await?;
        let backups = Api::<DynamicObject>::namespaced_with(
            t.client.clone(),
            &t.env.namespace,
            &velero_resource("Backup"),
        );
        let phase = backups.get(&name).await?.data["status"]["phase"].clone();
        ensure!(
            phase == "InProgress",
            "the backup is {phase} once its stall bundle is made"
        );
        let files = download(&made).await?;
        let missing = format!("secret \"{secret}\" not found");
        assert_first_finding(
            &made,
            &files,
            "operation-stalled",
            &[
                "Backup has not moved for",
                "data-path pod is Pending",
                &missing,
            ],
        )?;
        let step = first_next_step(&made);
        ensure!(
            step.contains("provide the Secret or ConfigMap the mount error names"),
            "next step: {step}"
        );
        // A new operator process starts its clocks again, and finds its record of this stall.
        restart_operators(1, &settings).await?;
        tokio::time::sleep(STALL_AFTER * 2).await;
        let stalls = stall_bundles(t, &uid).await?;
        ensure!(stalls.len() == 1, "{} stall bundles", stalls.len());
        let ended = in_final_phase(t, "Backup", &name, Duration::from_secs(240)).await?;
        ensure!(
            ended.data["status"]["phase"] == "PartiallyFailed",
            "the backup ended {}",
            ended.data["status"]
        );
        let failure = eventually(
            "the bundle of the backup's final phase recorded",
            Duration::from_secs(60),
            || ledger_record(t, &uid),
        )
        .await?;
        ensure!(failure != bundle, "the final phase's bundle is the stall's");
        Ok(())
    }
    .await;
    // Failed before Velero gave up: the Secret back lets the data-path pod start, so the
    // backup ends and holds up no other test's (Velero runs one backup at a time).
    if in_final_phase(t, "Backup", &name, Duration::ZERO)
        .await
        .is_err()
    {
        secrets
            .create(
                &PostParams::default(),
                &serde_json::from_value(serde_json::json!({"metadata": {"name": secret}}))?,
            )
            .await?;
        in_final_phase(t, "Backup", &name, Duration::from_secs(240)).await?;
    }
    node_agent.undo(t).await?;
    back.done().await?;
    found
}

/// A Backup that keeps moving gets no stall bundle, however fast or slow the machine: made
/// InProgress (Velero acts on a Backup only while it is New, so nothing else writes it), its
/// items done are advanced every half stallAfter for three stallAfters, so it is never still
/// for one. Once it stops moving it gets one stall bundle, so the watch was looking all along.
async fn keeps_moving_and_gets_none(t: &TestCtx) -> Result<()> {
    let resource = velero_resource("Backup");
    let backups: Api<DynamicObject> =
        Api::namespaced_with(t.client.clone(), &t.env.namespace, &resource);
    let name = unique_name("bk-moving");
    let made: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "velero.io/v1", "kind": "Backup",
        "metadata": {"name": name, "namespace": t.env.namespace},
        "spec": {"includedNamespaces": ["no-such-namespace"]},
        "status": {"phase": "InProgress", "progress": {"itemsBackedUp": 0, "totalItems": 100}},
    }))?;
    let uid = backups
        .create(&PostParams::default(), &made)
        .await?
        .uid()
        .context("a Backup without uid")?;
    t.cleanup.delete(&resource, Some(&t.env.namespace), &name);
    for done in 1..=6 {
        tokio::time::sleep(STALL_AFTER / 2).await;
        let moved = serde_json::json!({"status": {"progress": {"itemsBackedUp": done}}});
        backups
            .patch(&name, &PatchParams::default(), &Patch::Merge(&moved))
            .await?;
    }
    let stalls = stall_bundles(t, &uid).await?;
    ensure!(
        stalls.is_empty(),
        "a backup that moved every {:?} for {:?} got stall bundle {:?}",
        STALL_AFTER / 2,
        STALL_AFTER * 3,
        stalls.first().map(|b| b.name_any())
    );
    eventually(
        "the stall bundle of the backup once it stopped moving",
        STALL_AFTER + Duration::from_secs(60),
        || async { Ok(stall_bundles(t, &uid).await?.first().map(|b| b.name_any())) },
    )
    .await?;
    // Not left InProgress for the tests after.
    backups.delete(&name, &Default::default()).await?;
    Ok(())
}

/// Velero's Backups have no status subresource: whoever may create a Backup may create it
/// already InProgress. 200 such Backups, each "stalled" after stallAfter, get at most the
/// hour's bound of stall bundles (3 here); the rest are counted as withheld, the ledger is not
/// filled, and a real PartiallyFailed restore made after them still gets its bundle. Deleted,
/// they are stalled no more at once. Serial: the operator runs with another stallAfter and
/// bound meanwhile.
#[tokio::test]
async fn serial_a_flood_of_backups_made_in_progress_gets_at_most_the_hours_stall_bundles()
-> Result<()> {
    use velero_debug_e2e::{
        auto_bundles::auto_bundle_for, operators::operator_metric,
        restores::partially_failed_restore,
    };
    const FLOOD: usize = 200;
    const BOUND: usize = 3;
    let t = &TestCtx::new().await?;
    let back = OperatorsBack::armed();
    let settings = [
        (
            "AUTO_BUNDLE_STALL_AFTER",
            format!("{}s", STALL_AFTER.as_secs()),
        ),
        ("MAX_STALL_BUNDLES_PER_HOUR", BOUND.to_string()),
    ];
    restart_operators(1, &settings).await?;
    let resource = velero_resource("Backup");
    let backups: Api<DynamicObject> =
        Api::namespaced_with(t.client.clone(), &t.env.namespace, &resource);
    let run = unique_name("flood");
    for i in 0..FLOOD {
        let name = format!("{run}-{i:03}");
        let backup: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "velero.io/v1", "kind": "Backup",
            "metadata": {"name": name, "namespace": t.env.namespace, "labels": {"vdo-flood": run}},
            "spec": {"includedNamespaces": ["no-such-namespace"]},
            "status": {"phase": "InProgress"},
        }))?;
        backups.create(&PostParams::default(), &backup).await?;
        t.cleanup.delete(&resource, Some(&t.env.namespace), &name);
    }
    let metric = "velero_debug_stall_bundles_withheld_total";
    let withheld = eventually(
        "every Backup of the flood stalled and decided",
        STALL_AFTER + Duration::from_secs(90),
        || async {
            let n = operator_metric(&t.env, "operator-0", metric).await?;
            Ok((n >= (FLOOD - BOUND) as i64).then_some(n))
        },
    )
    .await?;
    let flood_bundles = |bundles: Vec<DebugBundle>| {
        bundles
            .into_iter()
            .filter(|b| {
                b.spec
                    .backup
                    .as_deref()
                    .is_some_and(|n| n.starts_with(&run))
            })
            .count()
    };
    let api: Api<DebugBundle> = Api::namespaced(t.client.clone(), &t.env.namespace);
    let stall = ListParams::default().labels("velerodebug.io/auto-reason=stall");
    let made = flood_bundles(api.list(&stall).await?.items);
    ensure!(
        made == BOUND && withheld == (FLOOD - BOUND) as i64,
        "{made} stall bundles made and {withheld} withheld for {FLOOD} Backups (bound {BOUND})"
    );
    // A real failure after the flood still gets its bundle.
    let restore = partially_failed_restore(t).await?;
    let restores: Api<DynamicObject> = Api::namespaced_with(
        t.client.clone(),
        &t.env.namespace,
        &velero_resource("Restore"),
    );
    let uid = restores
        .get(&restore)
        .await?
        .uid()
        .context("restore without uid")?;
    let name = auto_bundle_for(t, &uid).await?;
    wait_completed(t, &name, Duration::from_secs(120)).await?;
    // Deleted while "running", the flood is stalled no more at once (other tests' Backups
    // left running may still count).
    let gauge = r#"velero_debug_operations_stalled{kind="Backup",waiting_on="items"}"#;
    let with_flood = operator_metric(&t.env, "operator-0", gauge).await?;
    ensure!(
        with_flood >= FLOOD as i64,
        "{with_flood} Backups counted stalled with the flood of {FLOOD}"
    );
    let flood = ListParams::default().labels(&format!("vdo-flood={run}"));
    backups
        .delete_collection(&Default::default(), &flood)
        .await?;
    eventually(
        "the deleted flood forgotten",
        Duration::from_secs(30),
        || async {
            let n = operator_metric(&t.env, "operator-0", gauge).await?;
            Ok((n <= with_flood - FLOOD as i64).then_some(()))
        },
    )
    .await?;
    // Their bundles go with them (owned); none was made beyond the bound meanwhile.
    let left = flood_bundles(api.list(&stall).await?.items);
    ensure!(
        left <= BOUND,
        "{left} stall bundles of the flood, more than the hour's bound {BOUND}"
    );
    back.done().await
}

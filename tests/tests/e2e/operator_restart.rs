//! Tests that restart the operator. run-e2e.sh runs them alone (their names start with
//! `serial_`), after the others, so no other test's bundle is cut short by the restart.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use k8s_openapi::{api::coordination::v1::Lease, apimachinery::pkg::apis::meta::v1::MicroTime};
use kube::{
    Api, Client, ResourceExt,
    api::{DynamicObject, ListParams, Patch, PatchParams},
};
use velero_debug_crd::{DebugBundle, Phase};
use velero_debug_e2e::{
    archives::download,
    auto_bundles::{auto_bundle_for, auto_bundle_recorded},
    backups::real_backup,
    bundles::{apply_bundle, condition_reason, wait_completed, wait_finished},
    context::TestCtx,
    env::Env,
    holding_proxy::{Hold, HoldingProxy},
    operators::{operator_metric, process_live, restart_operators},
    polling::{eventually, holds_throughout},
    restores::partially_failed_now,
    storage_locations::storage_location,
};
use velero_debug_operator::velero::resource as velero_resource;

/// Stops the running operator and starts it again (tests/env/lifecycle/operator/operator-up.sh).
async fn restart_operator() -> Result<()> {
    restart_operators(1, &[]).await
}

#[tokio::test]
async fn serial_a_restarted_operator_makes_no_second_automatic_bundle() -> Result<()> {
    let t = &TestCtx::new().await?;
    let (_, backup, _) = real_backup(t, "restart").await?;
    let (restore, uid) = partially_failed_now(t, &backup).await?;
    let bundles: Api<DebugBundle> = Api::namespaced(t.client.clone(), &t.env.namespace);
    let selector = format!("velerodebug.io/auto=true,velerodebug.io/target-uid={uid}");
    let list = ListParams::default().labels(&selector);
    let name = auto_bundle_for(t, &uid).await?;
    let before = wait_finished(t, &name, Duration::from_secs(120)).await?;
    ensure!(
        before.status.as_ref().and_then(|s| s.phase) == Some(Phase::Completed),
        "{}",
        condition_reason(&before)
    );

    restart_operator().await?;
    // Give the new process a reason to look at the restore again.
    let restores: Api<DynamicObject> = Api::namespaced_with(
        t.client.clone(),
        &t.env.namespace,
        &velero_resource("Restore"),
    );
    let touch = serde_json::json!({"metadata": {"annotations": {"e2e/touched": "after-restart"}}});
    restores
        .patch(&restore, &PatchParams::default(), &Patch::Merge(&touch))
        .await?;
    // A control made after the touch, which does get a bundle; the operator decides on
    // restores concurrently, so the touched one is watched for a few seconds past the control's
    // record. (The control's bundle is waited for at the end, so that no collection of this
    // test runs on into the next test's operators.)
    let (control, _) = partially_failed_now(t, &backup).await?;
    let control_bundle = auto_bundle_recorded(t, &control).await?;
    holds_throughout(
        "one automatic bundle for the touched restore",
        Duration::from_secs(5),
        || async {
            let names: Vec<_> = (bundles.list(&list).await?.items.iter())
                .map(|b| b.name_any())
                .collect();
            Ok((names.len() != 1).then(|| format!("automatic bundles: {names:?}")))
        },
    )
    .await?;

    let after = bundles.list(&list).await?.items;
    ensure!(
        after.len() == 1,
        "{} automatic bundles after the restart: {:?}",
        after.len(),
        after.iter().map(|b| b.name_any()).collect::<Vec<_>>()
    );
    let same = &after[0];
    ensure!(same.uid() == before.uid(), "the bundle was made again");
    let started = |b: &DebugBundle| b.status.as_ref().and_then(|s| s.start_time.clone());
    ensure!(
        started(same) == started(&before),
        "the bundle was collected again after the restart"
    );
    ensure!(started(same).is_some(), "no start time");
    let _ = same.status.as_ref().context("no status")?;
    wait_finished(t, &control_bundle, Duration::from_secs(120)).await?;
    Ok(())
}

async fn leader(client: &Client) -> Result<String> {
    velero_debug_e2e::operators::lease_holder(client, "velero").await
}

async fn signal(env: &Env, identity: &str, signal: &str) -> Result<()> {
    let pid = env.operator_pid(identity)?.to_string();
    let status = tokio::process::Command::new("kill")
        .args([signal, pid.as_str()])
        .status()
        .await?;
    ensure!(status.success(), "kill {signal} {identity} failed");
    Ok(())
}

/// Waits until the bundle uploads under an upload id other than `not`; returns the id. (The
/// caller holds the upload open, so the state cannot pass unseen.)
async fn uploading(t: &TestCtx, name: &str, not: &[String]) -> Result<String> {
    let (env, client) = (&t.env, &t.client);
    let api: Api<DebugBundle> = Api::namespaced(client.clone(), &env.namespace);
    eventually("the bundle to upload", Duration::from_secs(120), || async {
        let b = api.get(name).await?;
        let s = b.status.unwrap_or_default();
        Ok(s.upload_id
            .filter(|id| s.phase == Some(Phase::Uploading) && !not.contains(id)))
    })
    .await
}

/// The multipart upload is gone from the bucket (completed or aborted). Probed by sending it
/// a part: S3 answers NoSuchUpload (s3s-fs: AccessDenied) for an upload that is no longer open.
/// (ListParts does not tell: s3s-fs lists no parts for any id.)
async fn upload_gone(env: &Env, key: &str, upload_id: &str) -> Result<bool> {
    let s3 = env.s3_client(&env.s3.endpoint);
    let probe = s3
        .upload_part()
        .bucket(&env.s3.bucket)
        .key(key)
        .upload_id(upload_id)
        .part_number(10_000)
        .body(b"probe".to_vec().into())
        .send()
        .await;
    match probe {
        Ok(_) => {
            // Still open: clean up what the probe added, and report it.
            let _ = s3
                .abort_multipart_upload()
                .bucket(&env.s3.bucket)
                .key(key)
                .upload_id(upload_id)
                .send()
                .await;
            Ok(false)
        }
        Err(e) => {
            let code = e.as_service_error().and_then(|e| e.meta().code());
            match code {
                // s3s-fs also says AccessDenied to an open upload of another access key:
                // its record of the upload tells the two apart.
                Some("NoSuchUpload" | "AccessDenied") => {
                    let record = env.s3.data_dir.join(format!(".upload-{upload_id}.json"));
                    Ok(!record.try_exists()?)
                }
                _ => Err(anyhow::Error::new(e).context("UploadPart probe")),
            }
        }
    }
}

/// Three replicas; the leader gets SIGTERM while uploading (it aborts its upload and hands the
/// lease over), the next one is killed with SIGKILL while uploading (its upload is left
/// behind), and the third completes the bundle and aborts what the killed one left.
#[tokio::test]
async fn serial_leaders_stopped_mid_upload_leave_no_unfinished_upload_and_the_next_completes()
-> Result<()> {
    let t = &TestCtx::new().await?;
    let (_, backup, _) = real_backup(t, "failover").await?;
    // Every upload's first part is held by the proxy in front of the store, so each leader is
    // stopped while it uploads, whatever the archive's size.
    let proxy = HoldingProxy::start(&t.env.s3.endpoint, Hold::UploadParts).await?;
    let location = storage_location(
        t,
        serde_json::json!({"config": {"s3Url": proxy.endpoint()}}),
    )
    .await?;
    restart_operators(3, &[]).await?;
    let first = leader(&t.client).await?;

    let name = apply_bundle(
        t,
        serde_json::json!({"backup": backup, "storageLocation": location}),
    )
    .await?;
    let id1 = uploading(t, &name, &[]).await?;
    signal(&t.env, &first, "-TERM").await?;
    let second = eventually("another leader", Duration::from_secs(60), || async {
        let now = leader(&t.client).await?;
        Ok((!now.is_empty() && now != first).then_some(now))
    })
    .await?;
    let id2 = uploading(t, &name, std::slice::from_ref(&id1)).await?;
    signal(&t.env, &second, "-KILL").await?;
    proxy.set(Hold::Nothing);

    let done = wait_finished(t, &name, Duration::from_secs(240)).await?;
    download(&done).await?;
    let third = leader(&t.client).await?;
    ensure!(
        third != first && third != second,
        "leaders: {first}, {second}, then {third}"
    );
    let status = done.status.clone().context("no status")?;
    ensure!(status.upload_id.is_none(), "upload id left in status");
    let key = status.archive.context("no archive")?.key;
    for (who, id) in [(&first, &id1), (&second, &id2)] {
        ensure!(
            upload_gone(&t.env, &key, id).await?,
            "the upload {id} of {who} is still unfinished in the bucket"
        );
    }
    // One archive for the bundle.
    let folder = key.rsplit_once('/').map(|(f, _)| f).unwrap_or_default();
    let listed = t
        .env
        .s3_client(&t.env.s3.endpoint)
        .list_objects_v2()
        .bucket(&t.env.s3.bucket)
        .prefix(format!("{folder}/{name}-"))
        .send()
        .await?;
    ensure!(
        listed.key_count() == Some(1),
        "archives: {:?}",
        listed.contents()
    );

    // The third process completed exactly this bundle, and says so on /metrics (the count
    // just after the status write, the slot when the run ends).
    let port = std::fs::read_to_string(t.env.state_dir()?.join(format!("{third}.metrics-port")))?;
    let completed = "velero_debug_bundles_total{result=\"completed\",reason=\"Completed\"} 1";
    let idle = "velero_debug_bundles_in_flight 0";
    eventually(
        &format!("{third}'s metrics to show one completed bundle and none in flight"),
        Duration::from_secs(30),
        || async {
            let text = reqwest::get(format!("http://127.0.0.1:{}/metrics", port.trim()))
                .await?
                .text()
                .await?;
            let has = |sample: &str| text.lines().any(|l| l == sample);
            Ok((has(completed) && has(idle)).then_some(()))
        },
    )
    .await?;

    restart_operator().await?;
    Ok(())
}

/// The `velero_debug_leader` gauge of operator process `identity`.
async fn leader_gauge(env: &Env, identity: &str) -> Result<i64> {
    operator_metric(env, identity, "velero_debug_leader").await
}

/// A leader whose Lease another identity takes stops (the watchdog sees the new holder) without
/// exiting, even while its garbage collector waits on a store that does not answer; it leaves a
/// bundle applied meanwhile alone, and, once that lease expires unrenewed, the same process
/// leads again and completes the bundle.
#[tokio::test]
async fn serial_a_leader_that_loses_the_lease_stands_by_and_leads_again() -> Result<()> {
    let t = &TestCtx::new().await?;
    let (_, backup, _) = real_backup(t, "fencing").await?;
    restart_operator().await?;
    let me = leader(&t.client).await?;
    ensure!(!me.is_empty(), "nobody leads after the restart");
    let pid = t.env.operator_pid(&me)?;
    eventually(
        &format!("{me} to say it leads"),
        Duration::from_secs(15),
        || async { Ok((leader_gauge(&t.env, &me).await? == 1).then_some(())) },
    )
    .await?;

    // A location whose store holds the garbage collector's listing: a sweep is under way, and
    // stays so, when the lease is lost. (The wait allows for a stalled location swept before
    // this one: each is given up after a minute.)
    let stalled = HoldingProxy::start(&t.env.s3.endpoint, Hold::ArchiveListings).await?;
    storage_location(
        t,
        serde_json::json!({"config": {"s3Url": stalled.endpoint()}}),
    )
    .await?;
    stalled
        .wait_held(1, Duration::from_secs(150))
        .await
        .context("the garbage collector's sweep never reached the stalled location")?;

    // Another identity takes the lease, as a replica that won it would; nobody renews it.
    let usurper = "e2e-usurper";
    let now = serde_json::to_value(MicroTime(jiff::Timestamp::now()))?;
    let take = serde_json::json!({"spec": {
        "holderIdentity": usurper, "acquireTime": now, "renewTime": now,
        "leaseDurationSeconds": 30,
    }});
    let leases: Api<Lease> = Api::namespaced(t.client.clone(), "velero");
    leases
        .patch(
            "velero-debug-operator",
            &PatchParams::default(),
            &Patch::Merge(&take),
        )
        .await?;
    eventually(
        &format!("{me} to stop leading"),
        Duration::from_secs(15),
        || async { Ok((leader_gauge(&t.env, &me).await? == 0).then_some(())) },
    )
    .await?;
    stalled.set(Hold::Nothing);

    let name = apply_bundle(t, serde_json::json!({"backup": backup})).await?;
    let bundles: Api<DebugBundle> = Api::namespaced(t.client.clone(), &t.env.namespace);
    // While the other identity holds the lease: the process runs, and does not touch the bundle
    // (no finalizer, no status).
    let mut seconds_held = 0;
    while leader(&t.client).await? == usurper {
        ensure!(
            process_live(pid),
            "{me} (pid {pid}) exited after losing the lease"
        );
        let b = bundles.get(&name).await?;
        ensure!(
            b.status.as_ref().and_then(|s| s.phase).is_none(),
            "{name} was processed while {usurper} held the lease: {:?}",
            b.status
        );
        ensure!(
            b.metadata.finalizers.unwrap_or_default().is_empty(),
            "{name} got a finalizer while {usurper} held the lease"
        );
        seconds_held += 1;
        ensure!(seconds_held < 120, "the lease of {usurper} never expired");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    ensure!(
        seconds_held >= 5,
        "{usurper} held the lease only {seconds_held} s: nothing was checked"
    );

    // The lease expired: the same process, never restarted, takes it again.
    eventually(
        &format!("{me} to lead again"),
        Duration::from_secs(60),
        || async { Ok((leader(&t.client).await? == me).then_some(())) },
    )
    .await?;
    ensure!(
        t.env.operator_pid(&me)? == pid && process_live(pid),
        "{me} was restarted"
    );
    let done = wait_completed(t, &name, Duration::from_secs(180)).await?;
    download(&done).await?;
    ensure!(
        leader_gauge(&t.env, &me).await? == 1,
        "{me} leads but does not say so"
    );
    Ok(())
}

//! Automatic bundles and the bundle lifecycle, end to end: a restore the real Velero server ends
//! PartiallyFailed gets its bundle by itself; the collection cap holds under 20 at once;
//! retention deletes bundle and archive; a refreshed URL works and an expired one is shown.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::{Context, Result, ensure};
use futures::StreamExt;
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams},
    runtime::watcher,
};
use velero_debug_crd::{DebugBundle, Phase};
use velero_debug_e2e::{
    archives::{download, text},
    auto_bundles::{auto_bundle_for, auto_bundle_recorded, ledger_record},
    backups::real_backup,
    bundles::{apply_bundle, bundle_gone, condition_reason, wait_finished},
    context::TestCtx,
    env::Env,
    findings::{assert_first_finding, probable_cause_event},
    polling::{eventually, holds_throughout},
    recorded_events::notes_recorded,
    restores::{finished_restore, partially_failed_now, partially_failed_restore},
    stores::object_exists,
};
use velero_debug_operator::velero::resource as velero_resource;

fn restores(env: &Env, client: &Client) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), &env.namespace, &velero_resource("Restore"))
}

fn bundles(env: &Env, client: &Client) -> Api<DebugBundle> {
    Api::namespaced(client.clone(), &env.namespace)
}

/// The automatic bundles made for the target with this uid.
async fn auto_bundles_for(t: &TestCtx, uid: &str) -> Result<Vec<DebugBundle>> {
    let (env, client) = (&t.env, &t.client);
    let selector = format!("velerodebug.io/auto=true,velerodebug.io/target-uid={uid}");
    Ok(bundles(env, client)
        .list(&ListParams::default().labels(&selector))
        .await?
        .items)
}

#[tokio::test]
async fn a_partially_failed_restore_gets_its_bundle_and_takes_it_along_when_deleted() -> Result<()>
{
    let t = &TestCtx::new().await?;
    let restore = partially_failed_restore(t).await?;
    let obj = restores(&t.env, &t.client).get(&restore).await?;
    let uid = obj.uid().context("restore without uid")?;
    let ended: jiff::Timestamp = obj.data["status"]["completionTimestamp"]
        .as_str()
        .context("no completionTimestamp")?
        .parse()?;

    let name = auto_bundle_for(t, &uid).await?;
    let bundle = wait_finished(t, &name, Duration::from_secs(120)).await?;
    let status = bundle.status.clone().context("no status")?;
    ensure!(
        status.phase == Some(Phase::Completed),
        "automatic bundle not Completed: {}",
        condition_reason(&bundle)
    );
    let completed = status.completion_time.context("no completionTime")?.0;
    let took = completed.duration_since(ended);
    ensure!(
        took <= jiff::SignedDuration::from_secs(60),
        "bundle Completed {took:#} after the restore ended (limit 60s)"
    );
    // Owned by the restore, labelled, and recorded in the ledger; the restore is not written.
    let owner = bundle.owner_references().first().context("no owner")?;
    ensure!(owner.kind == "Restore" && owner.uid == uid, "{owner:?}");
    ensure!(bundle.spec.restore.as_deref() == Some(restore.as_str()));
    let recorded = ledger_record(t, &uid).await?;
    ensure!(
        recorded.as_ref() == Some(&name),
        "the ledger records {recorded:?} for the restore, not {name}"
    );
    let annotations = restores(&t.env, &t.client)
        .get(&restore)
        .await?
        .annotations()
        .clone();
    ensure!(
        !annotations.contains_key("velerodebug.io/auto-bundle-created"),
        "the operator wrote its record on the restore: {annotations:?}"
    );
    // The results file shows the error: the quota refused the ConfigMap.
    let files = download(&bundle).await?;
    let results: serde_json::Value =
        serde_json::from_str(&text(&files, "object-store/results.json")?)?;
    ensure!(
        results["errors"].to_string().contains("exceeded quota"),
        "results hold no error about the refused ConfigMap: {results}"
    );
    let summary = text(&files, "summary.md")?;
    ensure!(summary.contains("PartiallyFailed"));
    // The probable cause comes first: in summary.md's Findings, within its first 40 lines, in
    // status.findings, and as an event on the Restore.
    assert_first_finding(&bundle, &files, "quota-exceeded", &["ResourceQuota"])?;
    let event = probable_cause_event(t, ("Restore", &restore), &bundle.name_any()).await?;
    ensure!(
        event.contains("ResourceQuota"),
        "ProbableCause event: {event}"
    );

    // Deleting the Restore removes its bundle (garbage collector) and the archive (finalizer).
    let key = status.archive.context("no archive")?.key;
    ensure!(object_exists(&t.env, &key).await?);
    restores(&t.env, &t.client)
        .delete(&restore, &DeleteParams::background())
        .await?;
    bundle_gone(t, &name, Duration::from_secs(90)).await?;
    ensure!(
        !object_exists(&t.env, &key).await?,
        "archive {key} still there"
    );
    Ok(())
}

#[tokio::test]
async fn only_restores_in_policy_get_a_bundle_and_never_a_second_one() -> Result<()> {
    let t = &TestCtx::new().await?;
    let (_, backup, _) = real_backup(t, "auto-policy").await?;
    let none = serde_json::json!({});
    let (wanted, wanted_uid) = partially_failed_now(t, &backup).await?;
    let opted_out = serde_json::json!({"velerodebug.io/auto-bundle": "false"});
    let (_, opted_out_uid) =
        finished_restore(t, &backup, "PartiallyFailed", Duration::ZERO, opted_out).await?;
    // The e2e operator keeps the default look-back of 6h.
    let long_ago = Duration::from_secs(7 * 3600);
    let (_, old_uid) =
        finished_restore(t, &backup, "PartiallyFailed", long_ago, none.clone()).await?;
    let (_, completed_uid) =
        finished_restore(t, &backup, "Completed", Duration::ZERO, none.clone()).await?;

    let name = auto_bundle_for(t, &wanted_uid).await?;
    ensure!(name.starts_with("auto-restore-"), "{name}");
    let bundle = wait_finished(t, &name, Duration::from_secs(120)).await?;
    ensure!(
        bundle.status.as_ref().and_then(|s| s.phase) == Some(Phase::Completed),
        "{}",
        condition_reason(&bundle)
    );

    // Deleted by hand, it does not come back, even when the restore changes afterwards.
    bundles(&t.env, &t.client)
        .delete(&name, &DeleteParams::default())
        .await?;
    bundle_gone(t, &name, Duration::from_secs(60)).await?;
    let touch = serde_json::json!({"metadata": {"annotations": {"e2e/touched": "yes"}}});
    restores(&t.env, &t.client)
        .patch(&wanted, &PatchParams::default(), &Patch::Merge(&touch))
        .await?;
    // A control made after all of the above, which does get a bundle. The operator decides on
    // restores concurrently, so its record is a point after which the others are watched for a
    // few seconds more, not a proof they were decided.
    let (control, _) = partially_failed_now(t, &backup).await?;
    auto_bundle_recorded(t, &control).await?;
    let decided = [
        ("the hand-deleted bundle's restore", &wanted_uid),
        ("the opted-out restore", &opted_out_uid),
        ("the restore outside the look-back window", &old_uid),
        ("the Completed restore", &completed_uid),
    ];
    holds_throughout(
        "no automatic bundle for the restores out of policy",
        Duration::from_secs(5),
        || async {
            for (what, uid) in decided {
                let found = auto_bundles_for(t, uid).await?;
                if !found.is_empty() {
                    let names: Vec<_> = found.iter().map(|b| b.name_any()).collect();
                    return Ok(Some(format!("{what} has automatic bundles: {names:?}")));
                }
            }
            Ok(None)
        },
    )
    .await?;
    Ok(())
}

/// 20 restores end PartiallyFailed at once; the operator's cap is 4 collection slots. The watch
/// sees every status write in order, so the largest number of bundles it ever saw Collecting or
/// Uploading at the same time is exact.
#[tokio::test]
async fn twenty_at_once_all_complete_and_at_most_four_collect_together() -> Result<()> {
    let t = &TestCtx::new().await?;
    let (_, backup, _) = real_backup(t, "auto-cap").await?;

    // (most Collecting/Uploading at once, whether any bundle was seen Queued)
    let seen = Arc::new(Mutex::new((0usize, false)));
    let (listed, watching) = tokio::sync::oneshot::channel();
    let watch = watcher(bundles(&t.env, &t.client), watcher::Config::default());
    let observer = tokio::spawn({
        let seen = seen.clone();
        async move {
            let mut watch = std::pin::pin!(watch);
            let mut listed = Some(listed);
            let mut busy: BTreeMap<String, bool> = BTreeMap::new();
            while let Some(event) = watch.next().await {
                let b = match event {
                    Ok(watcher::Event::Apply(b) | watcher::Event::InitApply(b)) => b,
                    Ok(watcher::Event::InitDone) => {
                        if let Some(listed) = listed.take() {
                            let _ = listed.send(());
                        }
                        continue;
                    }
                    _ => continue,
                };
                let status = b.status.clone().unwrap_or_default();
                let collecting = matches!(status.phase, Some(Phase::Collecting | Phase::Uploading));
                let queued = status
                    .conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.reason == "Queued");
                busy.insert(b.name_any(), collecting);
                let now_busy = busy.values().filter(|c| **c).count();
                let mut seen = seen.lock().unwrap();
                seen.0 = seen.0.max(now_busy);
                seen.1 |= queued;
            }
        }
    });
    // The restores only once the watch has listed: it then sees every write after.
    tokio::time::timeout(Duration::from_secs(60), watching)
        .await
        .context("the bundle watch did not list in 60s")?
        .context("the bundle watch ended")?;

    let mut uids = Vec::new();
    for _ in 0..20 {
        let (_, uid) = partially_failed_now(t, &backup).await?;
        uids.push(uid);
    }
    let mut names = Vec::new();
    for uid in &uids {
        let name = auto_bundle_for(t, uid).await?;
        names.push(name);
    }
    for name in &names {
        let b = wait_finished(t, name, Duration::from_secs(600)).await?;
        ensure!(
            b.status.as_ref().and_then(|s| s.phase) == Some(Phase::Completed),
            "{name}: {}",
            condition_reason(&b)
        );
    }
    observer.abort();
    let (most, queued_seen) = *seen.lock().unwrap();
    ensure!(
        most <= 4,
        "{most} bundles were Collecting/Uploading at once"
    );
    ensure!(queued_seen, "no bundle was ever seen waiting as Queued");
    Ok(())
}

/// Sets the refresh-url annotation to `value` and waits until the bundle's status says its
/// URL was signed for it. Signatures have one-second resolution: a refresh within the signing
/// second would give the same URL, so it waits two seconds first.
async fn refresh_url(t: &TestCtx, name: &str, value: &str) -> Result<DebugBundle> {
    tokio::time::sleep(Duration::from_secs(2)).await;
    let refresh =
        serde_json::json!({"metadata": {"annotations": {"velerodebug.io/refresh-url": value}}});
    bundles(&t.env, &t.client)
        .patch(name, &PatchParams::default(), &Patch::Merge(&refresh))
        .await?;
    eventually(
        &format!("the URL refreshed for {value}"),
        Duration::from_secs(30),
        || async {
            let b = bundles(&t.env, &t.client).get(name).await?;
            let s = b.status.clone().unwrap_or_default();
            Ok((s.url_refreshed_for.as_deref() == Some(value)).then_some(b))
        },
    )
    .await
}

#[tokio::test]
async fn refreshed_url_works_expired_url_is_shown_and_ttl_deletes_bundle_and_archive() -> Result<()>
{
    let t = &TestCtx::new().await?;
    let (_, backup, _) = real_backup(t, "lifecycle").await?;
    let spec = serde_json::json!({"backup": backup, "urlTTL": "1m", "ttlAfterFinished": "150s"});
    let name = apply_bundle(t, spec).await?;
    let bundle = wait_finished(t, &name, Duration::from_secs(180)).await?;
    download(&bundle).await?;
    let status = bundle.status.clone().context("no status")?;
    let first_url = status.download_url.clone().context("no URL")?;
    let key = status.archive.clone().context("no archive")?.key;

    // A new annotation value re-signs the URL without collecting again.
    let refreshed = refresh_url(t, &name, "one").await?;
    let rs = refreshed.status.clone().context("no status")?;
    ensure!(
        rs.download_url.as_ref() != Some(&first_url),
        "same URL after refresh"
    );
    ensure!(
        rs.download_url_expires_at.as_ref().map(|t| t.0)
            > status.download_url_expires_at.as_ref().map(|t| t.0),
        "the refreshed URL does not expire later"
    );
    ensure!(
        rs.start_time == status.start_time && rs.archive == status.archive,
        "refresh collected again"
    );
    download(&refreshed).await?;
    // Refreshed again: each refresh is an event of its own, with the expiry it gave; the URL
    // shown from now on works, so its refusal once expired is the expiry's.
    let twice = refresh_url(t, &name, "two").await?;
    // The operator records the refresh before it writes the status that says so.
    let notes = notes_recorded(t, &name, "URLRefreshed").await?;
    ensure!(
        notes.len() == 2 && notes[0] != notes[1],
        "URLRefreshed notes: {notes:?}"
    );
    download(&twice).await?;

    // Once expired, status says so and the URL is refused.
    let expired = eventually(
        "the URL to show as expired",
        Duration::from_secs(120),
        || async {
            let b = bundles(&t.env, &t.client).get(&name).await?;
            let gone = b.status.as_ref().is_some_and(|s| {
                s.conditions.iter().any(|c| {
                    c.type_ == "DownloadURLValid" && c.status == "False" && c.reason == "URLExpired"
                })
            });
            Ok(gone.then_some(b))
        },
    )
    .await?;
    let url = expired
        .status
        .and_then(|s| s.download_url)
        .context("no URL")?;
    let refused = reqwest::get(&url).await?.status();
    ensure!(refused == 403, "expired URL answered {refused}");

    // ttlAfterFinished passes: the bundle is deleted, and the archive with it.
    ensure!(object_exists(&t.env, &key).await?);
    bundle_gone(t, &name, Duration::from_secs(150)).await?;
    ensure!(
        !object_exists(&t.env, &key).await?,
        "archive {key} still there"
    );
    Ok(())
}

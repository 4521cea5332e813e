//! Tests that restart the operator. run-e2e.sh runs them alone (their names start with
//! `serial_`), after the others, so no other test's bundle is cut short by the restart.

use std::{path::Path, time::Duration};

use anyhow::{Context, Result, ensure};
use kube::{
    Api, ResourceExt,
    api::{DynamicObject, ListParams, Patch, PatchParams},
};
use velero_debug_crd::{DebugBundle, Phase};
use velero_debug_e2e::{
    Env, delete_namespace, eventually,
    fixtures::{condition_reason, finished_restore, real_backup, velero_resource, wait_finished},
};

/// Stops the running operator and starts it again (tests/env/operator-up.sh).
async fn restart_operator() -> Result<()> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("env/operator-up.sh");
    let out = tokio::process::Command::new("bash")
        .arg(&script)
        .output()
        .await?;
    ensure!(
        out.status.success(),
        "operator-up.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

#[tokio::test]
async fn serial_a_restarted_operator_makes_no_second_automatic_bundle() -> Result<()> {
    let env = Env::load()?;
    let client = env.client().await?;
    let (ns, backup, _) = real_backup(&env, &client, "restart").await?;
    let (restore, uid) = finished_restore(
        &env,
        &client,
        &backup,
        "PartiallyFailed",
        Duration::ZERO,
        serde_json::json!({}),
    )
    .await?;
    let bundles: Api<DebugBundle> = Api::namespaced(client.clone(), &env.namespace);
    let selector = format!("velerodebug.io/auto=true,velerodebug.io/target-uid={uid}");
    let list = ListParams::default().labels(&selector);
    let name = eventually("the automatic bundle", Duration::from_secs(60), || async {
        Ok(bundles
            .list(&list)
            .await?
            .items
            .first()
            .map(|b| b.name_any()))
    })
    .await?;
    let before = wait_finished(&env, &client, &name, Duration::from_secs(120)).await?;
    ensure!(
        before.status.as_ref().and_then(|s| s.phase) == Some(Phase::Completed),
        "{}",
        condition_reason(&before)
    );

    restart_operator().await?;
    // Give the new process a reason to look at the restore again, and time to act on it.
    let restores: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &env.namespace, &velero_resource("Restore"));
    let touch = serde_json::json!({"metadata": {"annotations": {"e2e/touched": "after-restart"}}});
    restores
        .patch(&restore, &PatchParams::default(), &Patch::Merge(&touch))
        .await?;
    tokio::time::sleep(Duration::from_secs(15)).await;

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
    delete_namespace(&client, &ns).await;
    Ok(())
}

//! `helm upgrade` from chart 0.1.0 on the real API server: Helm leaves `crds/` alone, the
//! upgraded operator (crds.applyOnStart, the chart's default) applies its own CRD at start,
//! DebugBundles made under the old CRD are kept, and the new fields are served.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{Api, Client};
use velero_debug_crd::{DebugBundle, Phase};
use velero_debug_e2e::{
    backups::real_backup,
    bundles::{apply_bundle, wait_completed},
    context::TestCtx,
    operators::restart_operators,
};

const CRD: &str = "debugbundles.velerodebug.io";

fn repo_path(relative: &str) -> std::path::PathBuf {
    velero_debug_e2e::env::tests_dir().join("..").join(relative)
}

/// Whether the served schema has `status.progress.bytesUploaded` (new since chart 0.1.0).
async fn serves_upload_progress(client: &Client) -> Result<bool> {
    let crd = Api::<CustomResourceDefinition>::all(client.clone())
        .get(CRD)
        .await?;
    let schema = serde_json::to_value(&crd.spec.versions[0].schema)?;
    Ok(
        !schema["openAPIV3Schema"]["properties"]["status"]["properties"]["progress"]["properties"]
            ["bytesUploaded"]
            .is_null(),
    )
}

async fn run(program: &str, args: &[&str]) -> Result<()> {
    let out = tokio::process::Command::new(program)
        .args(args)
        .output()
        .await?;
    ensure!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

#[tokio::test]
async fn serial_helm_upgrade_brings_the_new_crd_and_keeps_existing_bundles() -> Result<()> {
    let outcome = upgrade().await;
    // Back to the working tree's CRD and operator for the tests after this one.
    restart_operators(1, &[]).await?;
    outcome
}

/// With a context of its own: what it made is deleted before the operator is restarted.
async fn upgrade() -> Result<()> {
    let t = &TestCtx::new().await?;
    let (env, client) = (&t.env, &t.client);
    let (_, backup, _) = real_backup(t, "crd-upgrade").await?;

    // A bundle the cluster already has, then chart 0.1.0's CRD as a cluster installed with
    // that chart serves it. (This build cannot make bundles under the old CRD: the API server
    // refuses a server-side apply that sets a field the schema lacks, which is why the
    // operator must bring its CRD with it.)
    let before = apply_bundle(t, serde_json::json!({"backup": backup})).await?;
    let made_before = wait_completed(t, &before, Duration::from_secs(180)).await?;
    let old = repo_path("tests/fixtures/crd-chart-0.1.0.yaml");
    run("kubectl", &["replace", "-f", &old.display().to_string()]).await?;
    ensure!(
        !serves_upload_progress(client).await?,
        "the old CRD did not replace the new one"
    );
    let under_old: DebugBundle = Api::namespaced(client.clone(), &env.namespace)
        .get(&before)
        .await?;
    ensure!(
        under_old
            .status
            .as_ref()
            .and_then(|s| s.progress.as_ref())
            .is_none_or(|p| p.bytes_uploaded.is_none()),
        "the old CRD still serves bytesUploaded"
    );

    // helm upgrade to this chart, keeping what the user set (--reuse-values alone would drop
    // the new defaults); Helm does not touch crds/ on upgrade.
    let helm = repo_path("tests/env/tools/helm.sh");
    let chart = repo_path("charts/velero-debug-operator");
    run(
        "bash",
        &[
            &helm.display().to_string(),
            "upgrade",
            "velero-debug-operator",
            &chart.display().to_string(),
            "--namespace",
            "velero",
            "--reset-then-reuse-values",
        ],
    )
    .await?;
    ensure!(
        !serves_upload_progress(client).await?,
        "helm upgrade changed the CRD: this test no longer proves the operator does"
    );

    // The upgraded operator starts as the chart runs it, with APPLY_CRD, as the chart's
    // ServiceAccount (so the chart's RBAC for it is proven too).
    restart_operators(
        1,
        &[
            ("VDO_SKIP_CRD", "1".to_string()),
            ("VDO_APPLY_CRD", "true".to_string()),
        ],
    )
    .await?;
    ensure!(
        serves_upload_progress(client).await?,
        "the operator did not apply its CRD"
    );
    let crd = Api::<CustomResourceDefinition>::all(client.clone())
        .get(CRD)
        .await?;
    let managers: Vec<String> = crd
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|m| m.manager.clone())
        .collect();
    ensure!(
        managers.iter().any(|m| m == "velero-debug-operator"),
        "managers {managers:?}"
    );

    // The bundle made before the upgrade is still there, still Completed with its archive.
    let kept: DebugBundle = Api::namespaced(client.clone(), &env.namespace)
        .get(&before)
        .await?;
    let status = kept.status.as_ref().context("kept bundle has no status")?;
    ensure!(status.phase == Some(Phase::Completed));
    ensure!(
        status.archive == made_before.status.as_ref().and_then(|s| s.archive.clone()),
        "the kept bundle's archive changed"
    );

    // And the new fields are served: a bundle made now has its upload progress.
    let after = apply_bundle(t, serde_json::json!({"backup": backup})).await?;
    let made_after = wait_completed(t, &after, Duration::from_secs(180)).await?;
    let uploaded = made_after
        .status
        .as_ref()
        .and_then(|s| s.progress.as_ref())
        .and_then(|p| p.bytes_uploaded);
    ensure!(
        uploaded.is_some_and(|n| n > 0),
        "no bytesUploaded after the upgrade: {:?}",
        made_after.status.as_ref().and_then(|s| s.progress.as_ref())
    );
    Ok(())
}

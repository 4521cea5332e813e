//! The damage by application end to end (issue 34): a restore by the real Velero server of
//! three applications, one restored whole, one with a volume that failed, one with an object
//! a ResourceQuota refused, shows each in summary.md's damage section and manifest.json's
//! `damage` with the right counts.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::{
    apps::v1::{Deployment, StatefulSet},
    core::v1::{ConfigMap, Pod},
};
use kube::{
    Api, Client, ResourceExt,
    api::{ListParams, PostParams},
};
use velero_debug_e2e::{
    archives::{download, text},
    bundles::{apply_bundle, condition_reason, wait_finished},
    context::{TestCtx, create_namespace, unique_name},
    operations::{operation_object, pod_volume_restore},
    polling::eventually,
    rbac::grant_workload_reads,
    restores::{self, real_restore},
    velero_cli::velero,
};

/// The labels Helm's charts give what a release installs.
fn helm_labels(release: &str) -> serde_json::Value {
    serde_json::json!({
        "app": release,
        "app.kubernetes.io/instance": release,
        "app.kubernetes.io/managed-by": "Helm",
    })
}

/// A pod template of one container labelled `labels` (kwok runs it on a fake node).
fn template(labels: &serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "metadata": {"labels": labels},
        "spec": {"containers": [{"name": "main", "image": "registry.example.com/app:1"}]},
    })
}

/// Deployment web, StatefulSet db, and Helm release api (a Deployment and its ConfigMap
/// `api-settings`) in `namespace`.
async fn three_applications(client: &Client, namespace: &str) -> Result<()> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    for (name, labels) in [
        ("web", serde_json::json!({"app": "web"})),
        ("api", helm_labels("api")),
    ] {
        let d: Deployment = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "labels": labels},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": template(&labels)},
        }))?;
        deployments.create(&PostParams::default(), &d).await?;
    }
    let labels = serde_json::json!({"app": "db"});
    let db: StatefulSet = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "db", "labels": labels},
        "spec": {"replicas": 1, "serviceName": "db", "selector": {"matchLabels": labels},
                 "template": template(&labels)},
    }))?;
    Api::<StatefulSet>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &db)
        .await?;
    let settings: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "api-settings", "labels": helm_labels("api")},
        "data": {"mode": "fast"},
    }))?;
    Api::<ConfigMap>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &settings)
        .await?;
    Ok(())
}

/// Waits until `namespace` has `count` pods, all Ready.
async fn pods_ready(client: &Client, namespace: &str, count: usize) -> Result<()> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    eventually(
        &format!("{count} Ready pods in {namespace}"),
        Duration::from_secs(120),
        || async {
            let list = pods.list(&ListParams::default()).await?;
            let ready = list
                .items
                .iter()
                .filter(|p| {
                    p.status
                        .iter()
                        .flat_map(|s| s.conditions.iter().flatten())
                        .any(|c| c.type_ == "Ready" && c.status == "True")
                })
                .count();
            Ok((list.items.len() == count && ready == count).then_some(()))
        },
    )
    .await
}

/// The namespace a restore goes into, made first with a ResourceQuota that admits no
/// ConfigMap (in force before the restore), and readable by the operator.
async fn quota_refusing_configmaps(t: &TestCtx, namespace: &str) -> Result<()> {
    restores::quota_refusing_configmaps(t, namespace).await?;
    grant_workload_reads(t, namespace).await
}

/// The lines of summary.md's damage section.
fn damage_lines(summary: &str) -> Result<Vec<String>> {
    let at = summary
        .lines()
        .position(|l| l == "## Damage by application")
        .with_context(|| format!("no damage section:\n{summary}"))?;
    let findings_at = summary.lines().position(|l| l == "## Findings");
    ensure!(
        findings_at.is_some_and(|f| f < at),
        "the damage section is not after the findings:\n{summary}"
    );
    Ok(summary
        .lines()
        .skip(at + 2)
        .take_while(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

#[tokio::test]
async fn a_restore_of_three_applications_shows_each_ones_damage() -> Result<()> {
    let t = &TestCtx::new().await?;
    let client = &t.client;
    let source = create_namespace(client, &t.cleanup, "dmg").await?;
    three_applications(client, &source).await?;
    pods_ready(client, &source, 3).await?;
    let backup = unique_name("bk-dmg");
    velero(
        &t.env,
        &[
            "backup",
            "create",
            &backup,
            "--include-namespaces",
            &source,
            "--wait",
        ],
    )
    .await?;
    let restored = format!("{source}-r");
    quota_refusing_configmaps(t, &restored).await?;
    let restore = real_restore(t, &backup, &source, &restored).await?;
    let phase = restore.data["status"]["phase"].clone();
    ensure!(phase == "PartiallyFailed", "restore ended {phase}");
    pods_ready(client, &restored, 3).await?;

    // db-0's volumes: one failed, one restored (kwok's pods have no real volumes, so the
    // node-agent never makes these; they are made as Velero labels them).
    let (name, uid) = (restore.name_any(), restore.uid().unwrap_or_default());
    let failed = serde_json::json!({"phase": "Failed", "message": "data path restore failed: repository unreachable"});
    let pvr = pod_volume_restore(t, (&name, &uid), (&restored, "db-0"), failed).await?;
    operation_object(
        t,
        "PodVolumeRestore",
        serde_json::json!({"velero.io/restore-name": name, "velero.io/restore-uid": uid}),
        serde_json::json!({
            "backupStorageLocation": "default", "repoIdentifier": "", "uploaderType": "kopia",
            "pod": {"kind": "Pod", "namespace": restored, "name": "db-0"}, "volume": "logs",
            "snapshotID": "6e3d1f20", "sourceNamespace": source,
        }),
        serde_json::json!({"phase": "Completed"}),
    )
    .await?;

    let bundle_name = apply_bundle(t, serde_json::json!({"restore": name})).await?;
    let bundle = wait_finished(t, &bundle_name, Duration::from_secs(180)).await?;
    let files = download(&bundle)
        .await
        .with_context(|| condition_reason(&bundle))?;
    let summary = text(&files, "summary.md")?;
    println!("{summary}");
    let lines = damage_lines(&summary)?;
    let line = |prefix: &str| -> Result<&String> {
        lines
            .iter()
            .find(|l| l.starts_with(prefix))
            .with_context(|| format!("no line {prefix:?} in the damage section:\n{summary}"))
    };
    let api = line(&format!("- Helm release {restored}/api: "))?;
    ensure!(
        api.contains(": 1 item failed (#") && api.contains("`quota-exceeded`"),
        "{api}"
    );
    let db = line(&format!("- StatefulSet {restored}/db: "))?;
    ensure!(
        db.contains(": 1 of 2 volumes not restored (#") && db.contains("`volume-operation-failed`"),
        "{db}"
    );
    let web = line(&format!("- Deployment {restored}/web: "))?;
    ensure!(web.ends_with(": restored whole"), "{web}");
    // The damaged before the whole.
    let position = |l: &String| lines.iter().position(|x| x == l);
    ensure!(
        position(web) > position(api) && position(web) > position(db),
        "{lines:#?}"
    );

    // The same in manifest.json, for tools; the findings it cites are the right ones.
    let manifest: serde_json::Value = serde_json::from_str(&text(&files, "manifest.json")?)?;
    let entry = |kind: &str, app: &str| -> Result<serde_json::Value> {
        manifest["damage"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|d| d["kind"] == kind && d["namespace"] == restored.as_str() && d["name"] == app)
            .cloned()
            .with_context(|| {
                format!(
                    "no {kind} {app} in manifest.json's damage: {}",
                    manifest["damage"]
                )
            })
    };
    let rule_of = |n: &serde_json::Value| {
        let i = n.as_u64().unwrap_or(0) as usize;
        manifest["findings"][i.saturating_sub(1)]["rule"].clone()
    };
    let api = entry("HelmRelease", "api")?;
    ensure!(
        api["itemsFailed"] == 1 && api["itemsWarned"] == 0 && api["volumesFailed"] == 0,
        "{api}"
    );
    ensure!(rule_of(&api["findings"][0]) == "quota-exceeded", "{api}");
    let db = entry("StatefulSet", "db")?;
    ensure!(
        db["volumesFailed"] == 1 && db["volumesTotal"] == 2 && db["itemsFailed"] == 0,
        "{db}"
    );
    // Its own finding, not necessarily the first: db-0 lands on whatever node the scheduler
    // picks, and when another test left a restarted node-agent there, that restart comes
    // first as the failure's cause.
    let db_rules: Vec<serde_json::Value> = db["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(rule_of)
        .collect();
    ensure!(
        db_rules.contains(&serde_json::json!("volume-operation-failed")),
        "{db}: {db_rules:?}"
    );
    let web = entry("Deployment", "web")?;
    ensure!(
        web["itemsFailed"] == 0
            && web["volumesFailed"] == 0
            && web["podsNotReady"] == 0
            && web["findings"] == serde_json::json!([]),
        "{web}"
    );
    // The restored workloads are in the bundle, beside the failed operation.
    ensure!(
        files.contains_key(&format!(
            "resources/workloads/{restored}/deployment/web.yaml"
        )) && files.contains_key(&format!("resources/podvolumerestore/{pvr}.yaml")),
        "{:?}",
        files.keys().collect::<Vec<_>>()
    );
    Ok(())
}

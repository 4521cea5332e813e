//! Issue 14's scenarios on the real environment: each bundle names its probable cause first, in
//! summary.md and in status.findings, and tells the Backup or Restore itself.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use kube::{
    Api, ResourceExt,
    api::{DynamicObject, Patch, PatchParams, PostParams},
};
use velero_debug_crd::{DebugBundle, Phase, reasons};
use velero_debug_e2e::{
    archives::text,
    backups::{backup_phase, real_backup},
    bundles::{completed_bundle, condition_reason, finished_bundle},
    context::{TestCtx, unique_name},
    findings::{
        assert_first_finding, assert_first_status_finding, probable_cause_event, status_findings,
    },
    nodes::{fake_node, restart_node_agent_on},
    operations::pod_volume_restore,
    plugin,
    polling::eventually,
    restores::finished_restore,
    stores::put_gzipped,
    velero_cli::velero,
};
use velero_debug_operator::velero::resource as velero_resource;

/// A BSL whose bucket was never made: Velero marks it Unavailable and refuses a backup into it
/// (FailedValidation; Velero 1.14 runs it and fails it at upload: Failed). The bundle cannot be stored there either: it ends Failed with reason
/// BucketNotFound, but its findings (the BSL first) are in status and on the Backup, and the
/// store made no bucket.
#[tokio::test]
async fn a_backup_into_an_unavailable_location_is_diagnosed_though_its_bundle_cannot_be_stored()
-> Result<()> {
    let t = &TestCtx::new().await?;
    let bsl_resource = velero_resource("BackupStorageLocation");
    let bsls: Api<DynamicObject> =
        Api::namespaced_with(t.client.clone(), &t.env.namespace, &bsl_resource);
    let bsl = unique_name("bsl-nobucket");
    let bucket = unique_name("nobucket");
    let obj: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "velero.io/v1", "kind": "BackupStorageLocation",
        "metadata": {"name": bsl, "namespace": t.env.namespace},
        "spec": {"provider": "aws", "validationFrequency": "5s",
                 "objectStorage": {"bucket": bucket, "prefix": "p"},
                 "config": {"region": t.env.s3.region, "s3ForcePathStyle": "true",
                            "s3Url": t.env.s3.endpoint, "checksumAlgorithm": ""}},
    }))?;
    bsls.create(&PostParams::default(), &obj).await?;
    t.cleanup
        .delete(&bsl_resource, Some(&t.env.namespace), &bsl);
    eventually(
        &format!("BSL {bsl} to be Unavailable"),
        Duration::from_secs(90),
        || async {
            let b = bsls.get(&bsl).await?;
            Ok((b.data["status"]["phase"] == "Unavailable").then_some(()))
        },
    )
    .await?;
    let backup = unique_name("bk-nobucket");
    t.cleanup
        .delete(&velero_resource("Backup"), Some(&t.env.namespace), &backup);
    velero(
        &t.env,
        &[
            "backup",
            "create",
            &backup,
            "--storage-location",
            &bsl,
            "--include-namespaces",
            "default",
            "--wait",
        ],
    )
    .await?;
    let phase = backup_phase(t, &backup).await?;
    let expected = t.env.velero.unavailable_location_backup_phase();
    ensure!(phase == expected, "backup ended {phase}, not {expected}");

    let bundle = finished_bundle(t, serde_json::json!({"backup": backup})).await?;
    let status = bundle.status.clone().context("no status")?;
    ensure!(
        status.phase == Some(Phase::Failed),
        "the bundle should fail: {}",
        condition_reason(&bundle)
    );
    let reason = condition_reason(&bundle);
    ensure!(
        reason.starts_with(reasons::BUCKET_NOT_FOUND) && reason.contains(&bucket),
        "{reason}"
    );
    ensure!(status.archive.is_none(), "{:?}", status.archive);
    assert_first_status_finding(&bundle, "bsl-unavailable")?;
    plugin_names_the_first_finding(t, &bundle).await?;
    let event = probable_cause_event(t, ("Backup", &backup), &bundle.name_any()).await?;
    ensure!(event.contains(&bsl), "ProbableCause event: {event}");
    let made = t.env.s3.data_dir.join(&bucket);
    ensure!(!made.exists(), "the store made the bucket {made:?}");
    Ok(())
}

/// The kubectl plugin on a Failed bundle: `describe` prints its first finding, and `wait` exits
/// 1 (the bundle failed) printing it too.
async fn plugin_names_the_first_finding(t: &TestCtx, bundle: &DebugBundle) -> Result<()> {
    let name = bundle.metadata.name.clone().context("no name")?;
    let first = bundle
        .status
        .as_ref()
        .and_then(|s| s.findings.first())
        .context("no finding")?
        .title
        .clone();
    let described = plugin::run(&t.env, &["describe", &name]).await?;
    let text = plugin::text(&described);
    ensure!(
        described.status.success() && text.contains("Findings:") && text.contains(&first),
        "describe does not name the first finding {first:?}:\n{text}"
    );
    let waited = plugin::run(&t.env, &["wait", &name, "--timeout", "30s"]).await?;
    let text = plugin::text(&waited);
    ensure!(
        waited.status.code() == Some(1) && text.contains(&first),
        "wait on a Failed bundle ({:?}) does not name the first finding {first:?}:\n{text}",
        waited.status
    );
    Ok(())
}

/// A restore that Completed with warnings only (made by hand, with its results file where
/// Velero writes it): the summary says so and the warnings' cause comes first.
#[tokio::test]
async fn a_restore_completed_with_warnings_only_says_so_and_names_them() -> Result<()> {
    let t = &TestCtx::new().await?;
    let (ns, backup, _) = real_backup(t, "warn-src").await?;
    let (restore, _) = finished_restore(
        t,
        &backup,
        "Completed",
        Duration::ZERO,
        serde_json::json!({}),
    )
    .await?;
    // As Velero records a restore with warnings and no errors: `errors` left out.
    Api::<DynamicObject>::namespaced_with(
        t.client.clone(),
        &t.env.namespace,
        &velero_resource("Restore"),
    )
    .patch(
        &restore,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"status": {"errors": null, "warnings": 2}})),
    )
    .await?;
    let already = |name: &str| {
        format!(
            "could not restore, ConfigMap \"{name}\" already exists. Warning: the in-cluster version is different than the backed-up version"
        )
    };
    let results = serde_json::json!({
        "warnings": {"namespaces": {ns.clone(): [already("settings"), already("kube-root-ca.crt")]}},
    });
    put_gzipped(
        &t.env,
        &format!("restores/{restore}/restore-{restore}-results.gz"),
        &results.to_string(),
    )
    .await?;
    put_gzipped(
        &t.env,
        &format!("restores/{restore}/restore-{restore}-logs.gz"),
        &format!(
            "time=\"2026-11-23T04:00:00Z\" level=warning msg=\"{}\" logSource=\"pkg/restore/restore.go:1\" restore=velero/{restore}\n",
            already("settings").replace('"', "\\\"")
        ),
    )
    .await?;

    let (bundle, files) = completed_bundle(t, serde_json::json!({"restore": restore})).await?;
    let summary = text(&files, "summary.md")?;
    ensure!(
        summary.contains("Completed with 2 warnings"),
        "the header should say Completed with 2 warnings:\n{summary}"
    );
    assert_first_finding(&bundle, &files, "already-exists", &["already existed"])?;
    Ok(())
}

/// A node-agent that restarted after a panic, on the node of a failed PodVolumeRestore: the
/// panic (at the end of its previous log) is the probable cause, and the PodVolumeRestore's
/// failure is its consequence. The node-agent runs on a node of this test's own, so no other
/// test sees it.
#[tokio::test]
async fn a_node_agent_panic_on_the_node_of_a_pod_volume_restore_comes_first() -> Result<()> {
    let t = &TestCtx::new().await?;
    let node = fake_node(&t.client, &t.cleanup, "node-panic", serde_json::json!([])).await?;
    // Its previous instance: a long log that ends in a Go panic.
    let mut previous: Vec<String> = (0..200)
        .map(|i| format!("time=\"2026-11-23T04:00:00Z\" level=info msg=\"data path progress {i}\" node={node}"))
        .collect();
    previous.extend(
        [
            "panic: runtime error: invalid memory address or nil pointer dereference",
            "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x1a2b3c]",
            "",
            "goroutine 187 [running]:",
            "github.com/vmware-tanzu/velero/pkg/datapath.(*fileSystemBR).StartRestore(0x0)",
        ]
        .map(String::from),
    );
    let current = [format!(
        "time=\"2026-11-23T04:01:00Z\" level=info msg=\"node-agent server started\" node={node}"
    )];
    let agent = restart_node_agent_on(t, &node, &current, &previous).await?;

    let (ns, backup, _) = real_backup(t, "panic-src").await?;
    // No automatic bundle: it could collect before the PodVolumeRestore below exists.
    let no_auto = serde_json::json!({"velerodebug.io/auto-bundle": "false"});
    let (restore, restore_uid) =
        finished_restore(t, &backup, "PartiallyFailed", Duration::ZERO, no_auto).await?;
    let pvr = pod_volume_restore(
        t,
        (&restore, &restore_uid),
        (&ns, "app-0"),
        serde_json::json!({"phase": "Failed", "node": node,
                           "message": "error to run data path: the data path exited unexpectedly"}),
    )
    .await?;
    let (bundle, files) = completed_bundle(t, serde_json::json!({"restore": restore})).await?;
    assert_first_finding(&bundle, &files, "node-agent-restarted", &[&node, "panic"])?;
    let summary = text(&files, "summary.md")?;
    // Quoted with the line of the previous log that proves it: its end, after 200 lines.
    ensure!(
        summary.contains("nil pointer dereference")
            && summary.contains(&format!(
                "logs/node-agent/{agent}/node-agent.previous.log:201"
            )),
        "the panic is not quoted with its file and line:\n{summary}"
    );
    ensure!(
        summary
            .lines()
            .any(|l| l.contains(&pvr) && l.ends_with("consequence of #1")),
        "the PodVolumeRestore's failure is not shown as a consequence:\n{summary}"
    );
    // A second bundle of the same Restore announces its own diagnosis on it: the recorder
    // would fold a repeat of the first one's event into its series, keeping the first note.
    let (again, _) = completed_bundle(t, serde_json::json!({"restore": restore})).await?;
    for b in [&bundle, &again] {
        let event = probable_cause_event(t, ("Restore", &restore), &b.name_any()).await?;
        ensure!(
            event.contains(&node) && event.contains(&format!("/{},", b.name_any())),
            "ProbableCause event of {}: {event}",
            b.name_any()
        );
    }
    Ok(())
}

/// A node-agent serves every operation on its node: the error it logged a day ago about
/// another operation (a repository password changed since) is no cause of a healthy restore
/// on the same node today. The line is in the bundle; no finding names it.
#[tokio::test]
async fn an_old_node_agent_error_is_no_cause_of_a_later_healthy_restore() -> Result<()> {
    let t = &TestCtx::new().await?;
    let node = fake_node(
        &t.client,
        &t.cleanup,
        "node-old-error",
        serde_json::json!([]),
    )
    .await?;
    let stamp = |t: jiff::Timestamp| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let day_ago = stamp(jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24));
    let current = [
        format!(
            "time=\"{day_ago}\" level=error msg=\"Error to initialize data path\" error=\"error to connect to backup repo: invalid repository password\" node={node}"
        ),
        format!(
            "time=\"{}\" level=info msg=\"data path restore completed\" node={node}",
            stamp(jiff::Timestamp::now())
        ),
    ];
    let agent = restart_node_agent_on(t, &node, &current, &[]).await?;
    let (ns, backup, _) = real_backup(t, "old-error-src").await?;
    let no_auto = serde_json::json!({"velerodebug.io/auto-bundle": "false"});
    let (restore, restore_uid) =
        finished_restore(t, &backup, "Completed", Duration::ZERO, no_auto).await?;
    pod_volume_restore(
        t,
        (&restore, &restore_uid),
        (&ns, "app-0"),
        serde_json::json!({"phase": "Completed", "node": node}),
    )
    .await?;
    let (bundle, files) = completed_bundle(t, serde_json::json!({"restore": restore})).await?;
    let log = text(&files, &format!("logs/node-agent/{agent}/node-agent.log"))?;
    ensure!(
        log.contains("invalid repository password"),
        "the node-agent's log was not read into the bundle:\n{log}"
    );
    let findings = status_findings(&bundle);
    ensure!(
        findings
            .iter()
            .all(|f| f.rule != "repository-password-invalid"),
        "a day-old line became a finding: {findings:?}"
    );
    Ok(())
}

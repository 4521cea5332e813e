//! DebugBundles end to end: real backups and restores made by the real Velero server, bundles
//! collected by the operator built from the working tree, downloaded with plain HTTP.

use std::{collections::BTreeMap, time::Duration};

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams},
    core::ApiResource,
};
use velero_debug_crd::{DebugBundle, Phase};
use velero_debug_e2e::{
    archives::{download, server_log, text},
    backups::real_backup,
    bundle_watch::BundleWatch,
    bundles::{apply_bundle, condition_reason, wait_finished},
    context::{TestCtx, unique_name},
    findings::assert_first_finding,
    kwok_logs::data_path_pod,
    nodes::{fake_node, restart_node_agent_on},
    operations::{failed_pod_volume_backup_on, operation_object, place_restore_pod},
    polling::eventually,
    recorded_events::{times_recorded, times_recorded_once_made},
    restores::real_restore,
    storage_locations::storage_location,
    stores::object_exists,
};
use velero_debug_operator::velero::resource as velero_resource;

/// Applies a bundle, waits for it, and downloads it (checked by [`download`]).
async fn completed_bundle(
    t: &TestCtx,
    spec: serde_json::Value,
) -> Result<(String, DebugBundle, BTreeMap<String, Vec<u8>>)> {
    let name = apply_bundle(t, spec).await?;
    let bundle = wait_finished(t, &name, Duration::from_secs(180)).await?;
    let files = download(&bundle).await?;
    Ok((name, bundle, files))
}

#[tokio::test]
async fn bundle_for_a_real_backup_holds_everything_and_goes_away_with_its_bundle() -> Result<()> {
    let t = &TestCtx::new().await?;
    let (ns, backup, backup_uid) = real_backup(t, "bundle-src").await?;
    // A node-agent that restarted, as the kubelet records it: its previous log is collected.
    let node = fake_node(&t.client, &t.cleanup, "bundle", serde_json::json!([])).await?;
    let started = format!(
        "time=\"2026-11-23T04:01:00Z\" level=info msg=\"node-agent server started\" node={node}"
    );
    let previous = format!(
        "time=\"2026-11-23T04:00:00Z\" level=error msg=\"previous instance: data path failed, exiting\" node={node}"
    );
    let agent_pod = restart_node_agent_on(t, &node, &[started], &[previous]).await?;
    let pvb = failed_pod_volume_backup_on(t, &backup, &backup_uid, &ns, &node).await?;

    let (name, bundle, files) = completed_bundle(t, serde_json::json!({"backup": backup})).await?;

    for path in [
        "resources/backup.yaml",
        "object-store/backup.log",
        "object-store/velero-backup.json",
        "object-store/resource-list.json",
        "resources/backupstoragelocation/default.yaml",
        "resources/deployment-velero.yaml",
        "resources/daemonset-node-agent.yaml",
        "velero/server-status.yaml",
        "events/timeline.txt",
        "summary.md",
        "manifest.json",
    ] {
        ensure!(
            files.contains_key(path),
            "{path} missing: {:?}",
            files.keys()
        );
    }
    let pvb_yaml = text(&files, &format!("resources/podvolumebackup/{pvb}.yaml"))?;
    ensure!(pvb_yaml.contains("data path failed"));
    ensure!(files.contains_key(&format!("resources/node/{node}.yaml")));
    ensure!(text(&files, "object-store/backup.log")?.contains(&backup));

    // Only the involved node's node-agent, with the previous log of its restarted container.
    let agent_logs: Vec<&String> = files
        .keys()
        .filter(|k| k.starts_with("logs/node-agent/") && k.ends_with(".log"))
        .collect();
    ensure!(
        agent_logs
            == [
                &format!("logs/node-agent/{agent_pod}/node-agent.log"),
                &format!("logs/node-agent/{agent_pod}/node-agent.previous.log"),
            ],
        "node-agent logs: {agent_logs:?}"
    );
    ensure!(
        text(
            &files,
            &format!("logs/node-agent/{agent_pod}/node-agent.previous.log")
        )?
        .contains("previous instance")
    );
    let server_log = server_log(&files)?;
    // Init containers too (the AWS plugin's), and no log that could not be read.
    ensure!(
        files
            .keys()
            .any(|k| k.ends_with("/velero-plugin-for-aws.log"))
    );
    let warnings = &bundle.status.as_ref().unwrap().warnings;
    ensure!(
        !warnings.iter().any(|w| w.contains("could not be read")),
        "{warnings:?}"
    );
    ensure!(
        text(&files, server_log)?.contains(&backup),
        "server log lacks the backup"
    );

    let manifest: serde_json::Value = serde_json::from_slice(&files["manifest.json"])?;
    ensure!(manifest["target"]["name"] == backup.as_str());
    // Collected once: one Started and one Completed event, no retry of the whole pipeline.
    let completed = times_recorded_once_made(t, &name, "Completed").await?;
    let started = times_recorded(t, &name, "Started").await?;
    ensure!(
        (started, completed) == (1, 1),
        "Started {started} and Completed {completed} times"
    );
    ensure!(manifest["files"].as_array().unwrap().len() + 1 == files.len());
    let summary = text(&files, "summary.md")?;
    ensure!(summary.contains(&format!("# Backup {backup}")));
    ensure!(summary.contains("PodVolumeBackup: Failed: 1"), "{summary}");

    // Velero still accepts the BSL after our upload: validated again, and Available.
    let archive = bundle.status.as_ref().unwrap().archive.clone().unwrap();
    let bsls: Api<DynamicObject> = Api::namespaced_with(
        t.client.clone(),
        &t.env.namespace,
        &velero_resource("BackupStorageLocation"),
    );
    let uploaded_at = bundle
        .status
        .as_ref()
        .unwrap()
        .completion_time
        .clone()
        .unwrap()
        .0;
    eventually(
        "BSL default re-validated after the upload",
        Duration::from_secs(90),
        || async {
            let bsl = bsls.get("default").await?;
            let validated: Option<jiff::Timestamp> = bsl.data["status"]["lastValidationTime"]
                .as_str()
                .and_then(|t| t.parse().ok());
            if validated.is_some_and(|t| t > uploaded_at) {
                ensure!(
                    bsl.data["status"]["phase"] == "Available",
                    "BSL became {} after the upload: {}",
                    bsl.data["status"]["phase"],
                    bsl.data["status"]["message"]
                );
                return Ok(Some(()));
            }
            Ok(None)
        },
    )
    .await?;

    // Deleting the DebugBundle deletes the archive.
    let s3 = t.env.s3_client(&t.env.s3.endpoint);
    s3.head_object()
        .bucket(&archive.bucket)
        .key(&archive.key)
        .send()
        .await?;
    Api::<DebugBundle>::namespaced(t.client.clone(), &t.env.namespace)
        .delete(&name, &DeleteParams::default())
        .await?;
    eventually("archive deleted", Duration::from_secs(60), || async {
        Ok((!object_exists(&t.env, &archive.key).await?).then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn bundle_for_a_real_restore_holds_its_results_and_backup() -> Result<()> {
    let t = &TestCtx::new().await?;
    let (ns, backup, _) = real_backup(t, "bundle-src").await?;
    let target_ns = format!("{ns}-copy");
    let restored = real_restore(t, &backup, &ns, &target_ns).await?;
    let restore = restored.name_any();
    let restore_uid = restored.uid().context("no uid")?;
    place_restore_pod(t, &target_ns, "app-pvr", "node-2").await?;
    let pvr = operation_object(
        t,
        "PodVolumeRestore",
        serde_json::json!({"velero.io/restore-name": restore, "velero.io/restore-uid": restore_uid}),
        serde_json::json!({
            "backupStorageLocation": "default", "repoIdentifier": "", "uploaderType": "kopia",
            "pod": {"kind": "Pod", "namespace": target_ns, "name": "app-pvr"}, "volume": "data", "snapshotID": "s1",
            "sourceNamespace": ns
        }),
        serde_json::json!({"phase": "InProgress", "node": "node-2"}),
    )
    .await?;

    let (_, _, files) = completed_bundle(t, serde_json::json!({"restore": restore})).await?;
    for path in [
        "resources/restore.yaml",
        "resources/backup.yaml",
        "object-store/restore.log",
        "object-store/results.json",
        &format!("resources/podvolumerestore/{pvr}.yaml"),
        "resources/node/node-2.yaml",
    ] {
        ensure!(
            files.contains_key(path),
            "{path} missing: {:?}",
            files.keys()
        );
    }
    let results: serde_json::Value = serde_json::from_slice(&files["object-store/results.json"])?;
    ensure!(
        results.get("errors").is_some() || results.get("warnings").is_some(),
        "{results}"
    );
    let agent = node_agent_on(t, "node-2").await?;
    ensure!(
        files
            .keys()
            .any(|k| k.starts_with(&format!("logs/node-agent/{agent}/"))),
        "the involved node's node-agent ({agent}) log is missing"
    );
    Ok(())
}

#[tokio::test]
async fn the_api_server_refuses_both_or_neither_target() -> Result<()> {
    let t = &TestCtx::new().await?;
    for spec in [
        serde_json::json!({"backup": "b", "restore": "r"}),
        serde_json::json!({}),
    ] {
        let err = apply_bundle(t, spec.clone())
            .await
            .err()
            .with_context(|| format!("{spec} was accepted"))?;
        ensure!(
            format!("{err:#}").contains("exactly one of spec.backup or spec.restore"),
            "{err:#}"
        );
    }
    // A URL may live at most 7 days.
    let err = apply_bundle(t, serde_json::json!({"backup": "b", "urlTTL": "200h"}))
        .await
        .err()
        .context("urlTTL 200h accepted")?;
    ensure!(
        format!("{err:#}").contains("urlTTL must be a duration"),
        "{err:#}"
    );
    // And the spec cannot change once made.
    let name = apply_bundle(t, serde_json::json!({"backup": "whatever"})).await?;
    let api: Api<DebugBundle> = Api::namespaced(t.client.clone(), &t.env.namespace);
    let patch = serde_json::json!({"spec": {"backup": "another"}});
    let err = api
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .err()
        .context("spec change accepted")?;
    ensure!(err.to_string().contains("spec is immutable"), "{err}");
    Ok(())
}

#[tokio::test]
async fn a_missing_target_fails_with_target_not_found_after_waiting() -> Result<()> {
    let t = &TestCtx::new().await?;
    let watch = BundleWatch::start(&t.env, &t.client).await?;
    let name = apply_bundle(t, serde_json::json!({"restore": unique_name("nope")})).await?;
    // First it waits (the target may be applied together with the bundle)...
    watch
        .first_seen(
            &name,
            "waiting for its target",
            Duration::from_secs(30),
            |b| condition_reason(b).starts_with("WaitingForTarget"),
        )
        .await?;
    // ...then gives up with a reason automation can read.
    let b = wait_finished(t, &name, Duration::from_secs(90)).await?;
    ensure!(b.status.as_ref().unwrap().phase == Some(Phase::Failed));
    ensure!(
        condition_reason(&b).starts_with("TargetNotFound"),
        "{}",
        condition_reason(&b)
    );
    Ok(())
}

async fn expect_failure(t: &TestCtx, backup: &str, bsl: &str, reason: &str) -> Result<DebugBundle> {
    let name = apply_bundle(
        t,
        serde_json::json!({"backup": backup, "storageLocation": bsl}),
    )
    .await?;
    let b = wait_finished(t, &name, Duration::from_secs(150)).await?;
    ensure!(
        b.status.as_ref().unwrap().phase == Some(Phase::Failed),
        "{bsl}: not Failed"
    );
    let got = condition_reason(&b);
    ensure!(
        got.starts_with(reason),
        "{bsl}: expected {reason}, got {got}"
    );
    Ok(b)
}

#[tokio::test]
async fn unusable_storage_locations_fail_with_the_matching_reason() -> Result<()> {
    let t = &TestCtx::new().await?;
    let (_, backup, _) = real_backup(t, "bundle-src").await?;

    let read_only = storage_location(t, serde_json::json!({"accessMode": "ReadOnly"})).await?;
    expect_failure(t, &backup, &read_only, "StorageLocationReadOnly").await?;

    // Wrong credentials the object store refuses: a key of its own in the credential Secret
    // the operator may read (the chart grants it cloud-credentials only).
    let wrong_key = unique_name("wrong");
    let add_key = serde_json::json!({"stringData": {
        wrong_key.clone(): "[default]\naws_access_key_id=wrong\naws_secret_access_key=wrong\n"
    }});
    let secrets = Api::<Secret>::namespaced(t.client.clone(), &t.env.namespace);
    secrets
        .patch(
            "cloud-credentials",
            &PatchParams::default(),
            &Patch::Merge(&add_key),
        )
        .await?;
    t.cleanup.merge_patch(
        &ApiResource::erase::<Secret>(&()),
        Some(&t.env.namespace),
        "cloud-credentials",
        serde_json::json!({"data": {wrong_key.clone(): null}}),
    );
    let wrong_creds = storage_location(
        t,
        serde_json::json!({"credential": {"name": "cloud-credentials", "key": wrong_key}}),
    )
    .await?;
    expect_failure(
        t,
        &backup,
        &wrong_creds,
        "CredentialsInvalid: the object store refused",
    )
    .await?;

    // A credential Secret the operator may not read: said so, not retried forever.
    let secret_name = unique_name("other-creds");
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": secret_name},
        "stringData": {"cloud": "[default]\naws_access_key_id=x\naws_secret_access_key=y\n"}
    }))?;
    secrets.create(&PostParams::default(), &secret).await?;
    t.cleanup.object::<Secret>(&t.env.namespace, &secret_name);
    let unreadable = storage_location(
        t,
        serde_json::json!({"credential": {"name": secret_name, "key": "cloud"}}),
    )
    .await?;
    expect_failure(
        t,
        &backup,
        &unreadable,
        "CredentialsInvalid: the operator may not read Secret",
    )
    .await?;

    // Nothing listens there: the object store is down.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let down = storage_location(
        t,
        serde_json::json!({"config": {"s3Url": format!("http://127.0.0.1:{closed}")}}),
    )
    .await?;
    let failed = expect_failure(t, &backup, &down, "StorageUnreachable").await?;
    // Retried with backoff (10 s, then 20 s; the e2e operator gives up after 3 attempts), not
    // at once.
    ensure!(condition_reason(&failed).contains("after 3 attempts"));
    let created = failed
        .metadata
        .creation_timestamp
        .clone()
        .context("no creation time")?
        .0;
    let ended = failed
        .status
        .and_then(|s| s.completion_time)
        .context("no completion time")?
        .0;
    ensure!(
        ended.duration_since(created) >= jiff::SignedDuration::from_secs(29),
        "3 attempts within {:#}",
        ended.duration_since(created)
    );
    Ok(())
}

#[tokio::test]
async fn seeded_secrets_never_reach_the_archive() -> Result<()> {
    let t = &TestCtx::new().await?;
    let (ns, backup, backup_uid) = real_backup(t, "bundle-src").await?;
    let pvb = operation_object(
        t,
        "PodVolumeBackup",
        serde_json::json!({"velero.io/backup-name": backup, "velero.io/backup-uid": backup_uid}),
        serde_json::json!({
            "node": "node-0", "backupStorageLocation": "default", "repoIdentifier": "", "uploaderType": "kopia",
            "pod": {"kind": "Pod", "namespace": ns, "name": "app"}, "volume": "data", "tags": {}
        }),
        serde_json::json!({"phase": "InProgress"}),
    )
    .await?;

    // Secrets of every kind, in a data-path pod's env and in its log.
    let seeds = [
        "AKIAZZZZSEEDED000001",
        "seededSecretAccessKey0123456789abcdefABCD",
        "seeded-hunter2",
        "seeded.bearer.token0123456789",
        "seededurlpass",
        "seededsignature0123456789abcdef",
        "seededenvvalue42",
    ];
    let log_lines = [
        format!(
            "aws_access_key_id={} aws_secret_access_key={}",
            seeds[0], seeds[1]
        ),
        format!("connecting with password={}", seeds[2]),
        format!("Authorization: Bearer {}", seeds[3]),
        format!("repo url https://kopia:{}@repo.example.com/x", seeds[4]),
        format!(
            "GET https://s3.example.com/b/k?X-Amz-Credential=AKIAZZZZSEEDED000001%2F20261122&X-Amz-Signature={}",
            seeds[5]
        ),
    ];
    let pod_name = unique_name("datapath");
    let env = serde_json::json!([
        {"name": "AWS_SECRET_ACCESS_KEY", "value": seeds[6]}, {"name": "LOG_LEVEL", "value": "info"}
    ]);
    data_path_pod(t, &pvb, &pod_name, &log_lines, env).await?;
    // A Secret in Velero's namespace: never collected.
    let secret_name = unique_name("seeded");
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": secret_name},
        "stringData": {"value": "seeded-secret-object-value"}
    }))?;
    Api::<Secret>::namespaced(t.client.clone(), &t.env.namespace)
        .create(&PostParams::default(), &secret)
        .await?;
    t.cleanup.object::<Secret>(&t.env.namespace, &secret_name);
    let (_, _, files) = completed_bundle(t, serde_json::json!({"backup": backup})).await?;
    let datapath_log = text(&files, &format!("logs/data-path/{pod_name}/data-mover.log"))?;
    ensure!(
        datapath_log.contains("password=***REDACTED***"),
        "{datapath_log}"
    );
    let pod_yaml = text(&files, &format!("pods/{pod_name}.yaml"))?;
    ensure!(pod_yaml.contains("LOG_LEVEL"), "{pod_yaml}");
    let mut all_seeds: Vec<String> = seeds.iter().map(|s| s.to_string()).collect();
    all_seeds.push("seeded-secret-object-value".into());
    all_seeds.push(t.env.s3.secret_key.clone());
    for (path, content) in &files {
        let content = String::from_utf8_lossy(content);
        for seed in &all_seeds {
            ensure!(
                !content.contains(seed.as_str()),
                "{seed} leaked into {path}"
            );
        }
        ensure!(!path.contains("secret/"), "a Secret was collected: {path}");
    }
    Ok(())
}

/// The node-agent pod on `node`.
async fn node_agent_on(t: &TestCtx, node: &str) -> Result<String> {
    let (env, client) = (&t.env, &t.client);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &env.namespace);
    let agents = pods
        .list(&ListParams::default().labels(velero_debug_operator::velero::NODE_AGENT_POD_SELECTOR))
        .await?;
    agents
        .items
        .into_iter()
        .find(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node))
        .map(|p| p.name_any())
        .with_context(|| format!("no node-agent on {node}"))
}

#[tokio::test]
async fn data_uploads_and_downloads_are_collected_with_their_nodes() -> Result<()> {
    let t = &TestCtx::new().await?;
    let (ns, backup, backup_uid) = real_backup(t, "datamover").await?;
    let upload = operation_object(
        t,
        "DataUpload",
        serde_json::json!({"velero.io/backup-name": backup, "velero.io/backup-uid": backup_uid}),
        serde_json::json!({"snapshotType": "CSI", "sourceNamespace": ns, "sourcePVC": "data",
                           "backupStorageLocation": "default", "operationTimeout": "10m"}),
        serde_json::json!({"phase": "Failed", "node": "node-1",
                           "message": "data path for data upload failed: error to connect backup repo"}),
    )
    .await?;
    let (_, bundle, files) = completed_bundle(t, serde_json::json!({"backup": backup})).await?;
    let path = format!("resources/dataupload/{upload}.yaml");
    ensure!(
        text(&files, &path)?.contains("error to connect backup repo"),
        "{path} lacks the upload's status"
    );
    let agent = node_agent_on(t, "node-1").await?;
    ensure!(
        files
            .keys()
            .any(|k| k.starts_with(&format!("logs/node-agent/{agent}/"))),
        "the node-agent of node-1 ({agent}) is missing: {:?}",
        files
            .keys()
            .filter(|k| k.starts_with("logs/node-agent/"))
            .collect::<Vec<_>>()
    );
    ensure!(
        text(&files, "summary.md")?.contains("DataUpload"),
        "summary.md does not count DataUploads"
    );
    let _ = bundle;

    // A restore's DataDownload, through the restore's labels.
    let restored = real_restore(t, &backup, &ns, &format!("{ns}-dm")).await?;
    let restore = restored.name_any();
    let restore_uid = restored.uid().context("no uid")?;
    let download = operation_object(
        t,
        "DataDownload",
        serde_json::json!({"velero.io/restore-name": restore, "velero.io/restore-uid": restore_uid}),
        serde_json::json!({"targetVolume": {"pvc": "data", "pv": "", "namespace": ns}, "sourceNamespace": ns, "operationTimeout": "10m",
                           "backupStorageLocation": "default", "snapshotID": "abc"}),
        serde_json::json!({"phase": "InProgress", "node": "node-2"}),
    )
    .await?;
    let (_, _, files) = completed_bundle(t, serde_json::json!({"restore": restore})).await?;
    ensure!(files.contains_key(&format!("resources/datadownload/{download}.yaml")));
    let agent = node_agent_on(t, "node-2").await?;
    ensure!(
        files
            .keys()
            .any(|k| k.starts_with(&format!("logs/node-agent/{agent}/"))),
        "the node-agent of node-2 ({agent}) is missing"
    );
    Ok(())
}

/// A container log over maxLogBytesPerContainer keeps its first lines, a marked line, and its
/// end, where a crashed container says why; the findings quote the end by its line in the
/// bundle's file.
#[tokio::test]
async fn a_log_over_its_bound_keeps_its_end_and_the_findings_quote_it_by_its_line() -> Result<()> {
    let t = &TestCtx::new().await?;
    let (ns, backup, backup_uid) = real_backup(t, "longlog").await?;
    let pvb = operation_object(
        t,
        "PodVolumeBackup",
        serde_json::json!({"velero.io/backup-name": backup, "velero.io/backup-uid": backup_uid}),
        serde_json::json!({
            "node": "node-0", "backupStorageLocation": "default", "repoIdentifier": "",
            "uploaderType": "kopia", "pod": {"kind": "Pod", "namespace": ns, "name": "app"},
            "volume": "data", "tags": {}
        }),
        serde_json::json!({"phase": "InProgress", "node": "node-0"}),
    )
    .await?;
    // A data-path pod of the backup whose log (about 1 MiB, over the bound of 64 KiB) ends
    // with Velero's diagnosis and a panic.
    let pod_name = unique_name("datapath");
    let now = jiff::Timestamp::now();
    let mut lines: Vec<String> = (0..8000)
        .map(|i| {
            format!("time=\"{now}\" level=info msg=\"data path progress {i}\" logSource=\"pkg/uploader/kopia/progress.go:100\"")
        })
        .collect();
    lines.push(format!(
        "time=\"{now}\" level=warning msg=\"[Diagnose PVB expose]Pod velero/{pod_name}, phase Running, node name node-0\" logSource=\"pkg/controller/pod_volume_backup_controller.go:800\""
    ));
    lines.push("panic: runtime error: invalid memory address or nil pointer dereference".into());
    lines.push("goroutine 1 [running]:".into());
    data_path_pod(t, &pvb, &pod_name, &lines, serde_json::json!([])).await?;

    let bound = 64 * 1024;
    let (_, _, files) = completed_bundle(
        t,
        serde_json::json!({"backup": backup, "maxLogBytesPerContainer": bound, "events": false}),
    )
    .await?;
    let path = format!("logs/data-path/{pod_name}/data-mover.log");
    let kept = text(&files, &path)?;
    let kept_lines: Vec<&str> = kept.lines().collect();
    let marker = kept_lines
        .iter()
        .position(|l| l.starts_with("----- velero-debug-operator: at least "))
        .with_context(|| format!("{path} has no marker line"))?;
    ensure!(
        kept_lines[marker].contains("over maxLogBytesPerContainer (65536 bytes)"),
        "{}",
        kept_lines[marker]
    );
    // Its first lines, in order, then its last, in order, the end included.
    ensure!(
        kept_lines[..marker] == lines[..marker],
        "the head is not the log's start"
    );
    let tail = &kept_lines[marker + 1..];
    ensure!(
        tail.len() > 10 && tail == &lines[lines.len() - tail.len()..],
        "the tail is not the log's end: {:?}",
        &tail[tail.len().saturating_sub(3)..]
    );
    ensure!(
        kept.len() - kept_lines[marker].len() - 1 <= bound,
        "{path} is {} bytes",
        kept.len()
    );
    // The diagnosis near the end is a finding, quoted with its line in the bundle's file.
    let line = marker
        + 1
        + tail
            .iter()
            .position(|l| l.contains("[Diagnose PVB expose]"))
            .context("no diagnosis")?
        + 1;
    let summary = text(&files, "summary.md")?;
    ensure!(
        summary.contains(&format!("`{path}:{line}`")),
        "summary.md does not quote {path}:{line}:\n{summary}"
    );
    ensure!(
        text(&files, "manifest.json")?.contains(&format!(
            "log {path}: over maxLogBytesPerContainer (65536 bytes): its first and its last lines are kept"
        )),
        "no warning about the cut log"
    );
    Ok(())
}

/// A backup whose log object is gone from the bucket: the Velero server's lines that name the
/// backup take its place in the bundle, and the warning about the missing object says so.
#[tokio::test]
async fn a_backup_whose_log_object_is_missing_has_the_server_lines_naming_it_in_its_place()
-> Result<()> {
    let t = &TestCtx::new().await?;
    let (_, backup, _) = real_backup(t, "nolog").await?;
    let prefix = if t.env.s3.prefix.is_empty() {
        String::new()
    } else {
        format!("{}/", t.env.s3.prefix)
    };
    let key = format!("{prefix}backups/{backup}/{backup}-logs.gz");
    ensure!(
        object_exists(&t.env, &key).await?,
        "Velero did not upload {key}"
    );
    t.env
        .s3_client(&t.env.s3.endpoint)
        .delete_object()
        .bucket(&t.env.s3.bucket)
        .key(&key)
        .send()
        .await?;
    let (_, bundle, files) =
        completed_bundle(t, serde_json::json!({"backup": backup, "events": false})).await?;
    ensure!(!files.contains_key("object-store/backup.log"));
    let path = format!("logs/velero/backup-{backup}.from-server-log.log");
    let stand_in = text(&files, &path)?;
    let named = format!("backup={}/{backup}", t.env.namespace);
    let named_json = format!("\"backup\":\"{}/{backup}\"", t.env.namespace);
    let lines: Vec<&str> = stand_in
        .lines()
        .filter(|l| !l.starts_with("----- velero-debug-operator: the lines of logs/velero/"))
        .collect();
    ensure!(
        lines.iter().any(|l| l.contains("Setting up backup log")),
        "{path} lacks the server's lines for the backup:\n{stand_in}"
    );
    ensure!(
        lines
            .iter()
            .all(|l| l.contains(&named) || l.contains(&named_json)),
        "{path} holds lines not naming the backup:\n{stand_in}"
    );
    // Said where readers look (summary.md's lines are capped: the path in full is in the
    // manifest).
    let summary = text(&files, "summary.md")?;
    ensure!(
        summary.lines().any(|l| {
            l.contains(&format!(
                "{backup}-logs.gz is not in the object store (although the operation finished"
            )) && l.contains("the Velero server's lines for this backup stand in for its log")
        }),
        "summary.md does not say what stands in for the missing log:\n{summary}"
    );
    ensure!(
        text(&files, "manifest.json")?.contains(&format!("stand in for its log: {path}")),
        "manifest.json does not name {path}"
    );
    // The missing log is the bundle's first finding, proven by the stand-in.
    assert_first_finding(
        &bundle,
        &files,
        "operation-log-missing",
        &["own log is missing"],
    )?;
    ensure!(
        summary.contains(&format!("`{path}`")),
        "the finding does not point at the stand-in:\n{summary}"
    );
    Ok(())
}

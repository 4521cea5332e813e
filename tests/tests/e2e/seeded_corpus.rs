//! Every secret of the redaction corpus (operator/testdata/redaction-corpus/secrets.txt),
//! seeded where a bundle reads it: the Velero server's log, a node-agent log, the backup's log
//! in the object store, and a data-path pod's spec. None may reach the archive.

use std::{io::Write, time::Duration};

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::core::v1::Pod;
use kube::{
    Api,
    api::{ListParams, PostParams},
};
use velero_debug_e2e::{
    archives::download,
    backups::real_backup,
    bundles::{apply_bundle, wait_finished},
    context::{TestCtx, unique_name},
    operations::operation_object,
};

use crate::corpus_format::{self, Sample};

fn corpus() -> Result<Vec<Sample>> {
    let path = velero_debug_e2e::env::tests_dir()
        .join("../operator/testdata/redaction-corpus/secrets.txt");
    let text = std::fs::read_to_string(&path).with_context(|| format!("{path:?}"))?;
    Ok(corpus_format::parse(&text))
}

/// The samples as container log lines, in the CRI format kwok serves.
fn cri_lines(samples: &[Sample]) -> String {
    let now = jiff::Timestamp::now();
    samples
        .iter()
        .flat_map(|s| s.text.lines())
        .map(|l| format!("{now} stdout F {l}\n"))
        .collect()
}

fn append(path: &std::path::Path, text: &str) -> Result<()> {
    let mut file = std::fs::OpenOptions::new().append(true).open(path)?;
    // One write: the Velero server's log is appended to by its own writer too.
    file.write_all(text.as_bytes())?;
    Ok(())
}

fn gzip(text: &str) -> Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(text.as_bytes())?;
    Ok(enc.finish()?)
}

#[tokio::test]
async fn corpus_secrets_seeded_in_logs_object_store_and_pod_specs_never_reach_the_archive()
-> Result<()> {
    let t = &TestCtx::new().await?;
    let samples = corpus()?;
    ensure!(samples.len() >= 60, "corpus of {} samples", samples.len());
    let (ns, backup, backup_uid) = real_backup(t, "seeded").await?;
    let logs = cri_lines(&samples);

    // The Velero server's log and the node-agent's on node-0.
    append(&t.env.velero.log, &logs)?;
    let pods: Api<Pod> = Api::namespaced(t.client.clone(), &t.env.namespace);
    let agents = pods
        .list(&ListParams::default().labels("name=node-agent"))
        .await?;
    let agent = agents
        .items
        .iter()
        .find(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some("node-0"))
        .and_then(|p| p.metadata.name.clone())
        .context("no node-agent on node-0")?;
    append(&t.env.pod_logs_dir.join(format!("{agent}.log")), &logs)?;

    // The backup's own log in the object store: the plain lines, gzipped as Velero writes it.
    let plain: String = samples.iter().map(|s| format!("{}\n", s.text)).collect();
    let prefix = if t.env.s3.prefix.is_empty() {
        String::new()
    } else {
        format!("{}/", t.env.s3.prefix)
    };
    t.env
        .s3_client(&t.env.s3.endpoint)
        .put_object()
        .bucket(&t.env.s3.bucket)
        .key(format!("{prefix}backups/{backup}/{backup}-logs.gz"))
        .body(gzip(&plain)?.into())
        .send()
        .await
        .context("replacing the backup's log")?;

    // A data-path pod of the backup whose spec carries every one-line sample.
    let pvb = operation_object(
        t,
        "PodVolumeBackup",
        serde_json::json!({"velero.io/backup-name": backup, "velero.io/backup-uid": backup_uid}),
        serde_json::json!({
            "node": "node-0", "backupStorageLocation": "default", "repoIdentifier": "",
            "uploaderType": "kopia", "pod": {"kind": "Pod", "namespace": ns, "name": "app"},
            "volume": "data", "tags": {}
        }),
        serde_json::json!({"phase": "InProgress"}),
    )
    .await?;
    let env_vars: Vec<serde_json::Value> = samples
        .iter()
        .filter(|s| !s.text.contains('\n'))
        .enumerate()
        .map(|(i, s)| serde_json::json!({"name": format!("SAMPLE_{i}"), "value": s.text}))
        .collect();
    let multi_line: Vec<&str> = samples
        .iter()
        .filter(|s| s.text.contains('\n'))
        .map(|s| s.text.as_str())
        .collect();
    let pod_name = unique_name("datapath");
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {
            "name": pod_name,
            "labels": {"velero.io/pod-volume-backup": pvb},
            "annotations": {"e2e/multi-line-samples": multi_line.join("\n---\n")},
        },
        "spec": {"nodeName": "node-0", "containers": [{
            "name": "data-mover", "image": "velero/velero", "env": env_vars,
        }]}
    }))?;
    pods.create(&PostParams::default(), &pod).await?;
    t.cleanup.object::<Pod>(&t.env.namespace, &pod_name);

    let name = apply_bundle(
        t,
        serde_json::json!({"backup": backup, "nodeAgentLogs": "All"}),
    )
    .await?;
    let done = wait_finished(t, &name, Duration::from_secs(180)).await?;
    let files = download(&done).await?;
    // The seeds arrived, masked, in every source: each file holds most samples' masks.
    let masks_in = |wanted: &dyn Fn(&str) -> bool| -> usize {
        files
            .iter()
            .filter(|(k, _)| wanted(k))
            .map(|(_, v)| String::from_utf8_lossy(v).matches("REDACTED").count())
            .sum()
    };
    let agent_log = format!("logs/node-agent/{agent}/node-agent.log");
    let pod_prefix = format!("pods/{pod_name}");
    let sources = [
        (
            "the Velero server's log",
            masks_in(&|k| k.starts_with("logs/velero/") && k.ends_with("/velero.log")),
        ),
        ("the node-agent's log", masks_in(&|k| k == agent_log)),
        (
            "the object-store log",
            masks_in(&|k| k == "object-store/backup.log"),
        ),
        (
            "the data-path pod",
            masks_in(&|k| k.starts_with(&pod_prefix)),
        ),
    ];
    for (source, masks) in sources {
        ensure!(
            masks >= samples.len() / 2,
            "{source}: {masks} masks for {} samples: {:?}",
            samples.len(),
            files.keys()
        );
    }
    let mut leaks = Vec::new();
    for (path, content) in &files {
        let content = String::from_utf8_lossy(content);
        for sample in &samples {
            for secret in sample
                .secrets
                .iter()
                .filter(|s| content.contains(s.as_str()))
            {
                leaks.push(format!(
                    "{secret:?} (secrets.txt:{}, {}) in {path}",
                    sample.line, sample.rule
                ));
            }
        }
    }
    ensure!(leaks.is_empty(), "{} leaks: {leaks:#?}", leaks.len());
    Ok(())
}

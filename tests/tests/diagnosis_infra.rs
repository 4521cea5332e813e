//! Diagnosis of the data-path infrastructure, end to end: a node the node-agent DaemonSet
//! cannot run on (a taint it does not tolerate) is the first finding of a restore whose
//! PodVolumeRestore ran there, with the taint as the reason, in summary.md and status; the
//! bundle holds the nodes table and summary.md the flags Velero runs with.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::core::v1::Node;
use kube::{Api, api::PostParams, core::ApiResource};
use velero_debug_e2e::{
    Cleanup, Env, eventually,
    fixtures::{
        apply_bundle, download, finished_restore, operation_object, real_backup, text,
        wait_completed,
    },
    unique_name,
};

/// The taint the test's node carries: DaemonSet node-agent in the environment tolerates none.
const TAINT: &str = "velerodebug.io/e2e=no-agent:NoSchedule";

#[tokio::test]
async fn a_node_tainted_against_node_agent_is_the_first_finding_with_its_taint() -> Result<()> {
    let env = Env::load()?;
    let client = env.client().await?;
    let cleanup = Cleanup::new(&env);

    // A node of the test's own (kwok fakes any Node that carries its annotation), so the
    // shared nodes, which other tests run on, stay untainted.
    let node = unique_name("tainted");
    let made: Node = serde_json::from_value(serde_json::json!({
        "metadata": {
            "name": node,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {"kubernetes.io/hostname": node, "kubernetes.io/os": "linux", "type": "kwok"}
        },
        "spec": {"taints": [{"key": "velerodebug.io/e2e", "value": "no-agent", "effect": "NoSchedule"}]},
        "status": {
            "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
            "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"}
        }
    }))?;
    let nodes: Api<Node> = Api::all(client.clone());
    nodes.create(&PostParams::default(), &made).await?;
    cleanup.delete(&ApiResource::erase::<Node>(&()), None, &node);
    eventually(
        &format!("node {node} Ready"),
        Duration::from_secs(60),
        || async {
            let n = nodes.get(&node).await?;
            let ready = n
                .status
                .and_then(|s| s.conditions)
                .into_iter()
                .flatten()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            Ok(ready.then_some(()))
        },
    )
    .await?;

    // A restore that ended long ago (so it gets no automatic bundle), whose volume was being
    // restored on that node.
    let (ns, backup, _) = real_backup(&env, &client, &cleanup, "infra-src").await?;
    let (restore, restore_uid) = finished_restore(
        &env,
        &client,
        &cleanup,
        &backup,
        "PartiallyFailed",
        Duration::from_secs(7 * 3600),
        serde_json::json!({}),
    )
    .await?;
    let pvr = operation_object(
        &env,
        &client,
        &cleanup,
        "PodVolumeRestore",
        serde_json::json!({"velero.io/restore-name": restore, "velero.io/restore-uid": restore_uid}),
        serde_json::json!({
            "backupStorageLocation": "default", "repoIdentifier": "", "uploaderType": "kopia",
            "pod": {"kind": "Pod", "namespace": ns, "name": "db-0"}, "volume": "data",
            "snapshotID": "s1", "sourceNamespace": ns
        }),
        serde_json::json!({"phase": "InProgress", "node": node}),
    )
    .await?;
    let name = apply_bundle(
        &env,
        &client,
        &cleanup,
        serde_json::json!({"restore": restore}),
    )
    .await?;
    let bundle = wait_completed(&env, &client, &name, Duration::from_secs(180)).await?;
    let files = download(&bundle).await?;

    // The first finding names the node and the taint, in summary.md and in status.
    let summary = text(&files, "summary.md")?;
    let findings_at = summary
        .lines()
        .position(|l| l == "## Findings")
        .context("summary.md has no Findings")?;
    let first = summary
        .lines()
        .skip(findings_at + 1)
        .find(|l| !l.trim().is_empty())
        .context("no finding")?;
    let why = format!("taint {TAINT} is not tolerated");
    ensure!(
        findings_at < 40
            && first.contains(&format!("No running node-agent on node {node}"))
            && first.contains(&why),
        "first finding (line {findings_at}): {first}\n{summary}"
    );
    ensure!(
        summary.contains(&format!("PodVolumeRestore/{pvr}")),
        "the finding does not name the PodVolumeRestore it explains:\n{summary}"
    );
    let status = bundle.status.as_ref().context("no status")?;
    ensure!(
        status
            .findings
            .first()
            .is_some_and(|f| f.rule == "node-agent-missing" && f.title.contains(&node)),
        "status.findings: {:?}",
        status.findings
    );

    // Every node is in the table; this one without node-agent, and why.
    let table = text(&files, "resources/nodes.txt")?;
    let line = table
        .lines()
        .find(|l| l.starts_with(&format!("{node}\t")))
        .with_context(|| format!("{node} not in resources/nodes.txt:\n{table}"))?;
    ensure!(
        line.contains(&format!("none: {why}")) && line.ends_with(TAINT),
        "{line}"
    );
    for shared in ["node-0", "node-1", "node-2"] {
        ensure!(
            table
                .lines()
                .any(|l| l.starts_with(&format!("{shared}\t")) && l.contains("(Running")),
            "{shared} has no running node-agent in the table:\n{table}"
        );
    }
    ensure!(
        files.contains_key(&format!("resources/node/{node}.yaml")),
        "the involved node's YAML is missing"
    );

    // What Velero runs with, in the header: the environment's server runs with
    // --uploader-type=kopia and the AWS plugin.
    ensure!(
        summary.contains(
            "- Server flags: `--uploader-type=kopia`; plugins: velero/velero-plugin-for-aws:"
        ) && summary.contains("- node-agent flags: none (Velero's defaults)"),
        "{summary}"
    );
    Ok(())
}

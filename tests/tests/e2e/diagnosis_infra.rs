//! Diagnosis of the data-path infrastructure, end to end: a node the node-agent DaemonSet
//! cannot run on (a taint it does not tolerate) is the first finding of a restore whose
//! PodVolumeRestore ran there, with the taint as the reason, in summary.md and status; the
//! bundle holds the nodes table and summary.md the flags Velero runs with.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use velero_debug_e2e::{
    archives::{download, text},
    backups::real_backup,
    bundles::{apply_bundle, wait_completed},
    context::TestCtx,
    findings::first_finding,
    nodes::fake_node,
    operations::pod_volume_restore,
    restores::finished_restore,
};

/// The taint the test's node carries: DaemonSet node-agent in the environment tolerates none.
const TAINT: &str = "velerodebug.io/e2e=no-agent:NoSchedule";

#[tokio::test]
async fn a_node_tainted_against_node_agent_is_the_first_finding_with_its_taint() -> Result<()> {
    let t = &TestCtx::new().await?;

    // A node of the test's own (kwok fakes any Node that carries its annotation), so the
    // shared nodes, which other tests run on, stay untainted.
    let node = fake_node(
        &t.client,
        &t.cleanup,
        "tainted",
        serde_json::json!([{"key": "velerodebug.io/e2e", "value": "no-agent", "effect": "NoSchedule"}]),
    )
    .await?;

    // A restore that ended long ago (so it gets no automatic bundle), whose volume was being
    // restored on that node.
    let (ns, backup, _) = real_backup(t, "infra-src").await?;
    let (restore, restore_uid) = finished_restore(
        t,
        &backup,
        "PartiallyFailed",
        Duration::from_secs(7 * 3600),
        serde_json::json!({}),
    )
    .await?;
    let pvr = pod_volume_restore(
        t,
        (&restore, &restore_uid),
        (&ns, "db-0"),
        serde_json::json!({"phase": "InProgress", "node": node}),
    )
    .await?;
    let name = apply_bundle(t, serde_json::json!({"restore": restore})).await?;
    let bundle = wait_completed(t, &name, Duration::from_secs(180)).await?;
    let files = download(&bundle).await?;

    // The first finding names the node and the taint, in summary.md and in status.
    let summary = text(&files, "summary.md")?;
    let (findings_at, first) = first_finding(&summary)?;
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
    // --uploader-type=kopia, CSI on (as its users start it for the data mover), its
    // maintenance ConfigMap and the AWS plugin; node-agent with CSI on.
    let maintenance = &t.env.real_node()?.maintenance_config_map;
    ensure!(
        summary.contains(&format!(
            "- Server flags: `--uploader-type=kopia --features=EnableCSI --repo-maintenance-job-configmap={maintenance}`; plugins: velero/velero-plugin-for-aws:"
        )) && summary.contains("- node-agent flags: `--features=EnableCSI`"),
        "{summary}"
    );
    Ok(())
}

//! Site rules (issue 34): a rule the chart's diagnosis.siteRules gives the operator names a
//! message no built-in rule knows, first, with its next step, and counts it in the findings
//! metric; an invalid one stops the start.

use std::{path::PathBuf, time::Duration};

use anyhow::{Context, Result, ensure};
use velero_debug_crd::Phase;
use velero_debug_e2e::{
    archives::{download, text},
    backups::real_backup,
    bundles::{apply_bundle, wait_finished},
    context::TestCtx,
    findings::assert_first_finding,
    operators::{OperatorsBack, operator_metric, restart_operators},
    polling::eventually,
    restores::finished_restore,
    stores::put_gzipped,
};

const RULES: &str = r#"[{"id": "e2e-proxy", "match": "proxy\\.corp\\.example:3128.*refused",
  "title": "The corporate proxy refused the object store", "severity": "error",
  "layer": "platform", "nextStep": "Ask the network team (queue NET) to allow the bucket's host."}]"#;

/// The operator binary the environment runs, started with an invalid site rule: it exits at
/// once, naming the rule and why.
async fn start_refused() -> Result<String> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| velero_debug_e2e::env::tests_dir().join("../target"));
    let bad = r#"[{"id": "e2e", "match": "(", "title": "t", "nextStep": "n"}]"#;
    let run = tokio::process::Command::new(target.join("debug/velero-debug-operator"))
        .env("SITE_RULES", bad)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .context("the operator did not stop on an invalid site rule")??;
    ensure!(
        !out.status.success(),
        "the operator started with an invalid site rule"
    );
    Ok(String::from_utf8_lossy(&out.stderr).into_owned())
}

#[tokio::test]
async fn serial_a_site_rule_names_what_no_built_in_rule_knows_with_its_next_step() -> Result<()> {
    let refused = start_refused().await?;
    ensure!(
        refused.contains(r#"site rule 0: match "(" is not a valid regex"#),
        "{refused}"
    );
    let t = &TestCtx::new().await?;
    let back = OperatorsBack::armed();
    restart_operators(1, &[("SITE_RULES", RULES.to_string())]).await?;
    let (ns, backup, _) = real_backup(t, "site-src").await?;
    let no_auto = serde_json::json!({"velerodebug.io/auto-bundle": "false"});
    let (restore, _) =
        finished_restore(t, &backup, "PartiallyFailed", Duration::ZERO, no_auto).await?;
    let message = "error restoring configmaps/x/y: Put \"https://s3.example\": proxyconnect tcp: \
                   dial tcp proxy.corp.example:3128: connect: connection refused";
    let results = serde_json::json!({"errors": {"namespaces": {ns: [message]}}});
    put_gzipped(
        &t.env,
        &format!("restores/{restore}/restore-{restore}-results.gz"),
        &results.to_string(),
    )
    .await?;
    let name = apply_bundle(t, serde_json::json!({"restore": restore})).await?;
    let bundle = wait_finished(t, &name, Duration::from_secs(120)).await;
    // Counted just after the status write the wait saw.
    let counted = eventually(
        "the site rule's finding counted",
        Duration::from_secs(10),
        || async {
            let counted = operator_metric(
                &t.env,
                "operator-0",
                r#"velero_debug_findings_total{rule="site-e2e-proxy",severity="error"}"#,
            )
            .await?;
            Ok((counted >= 1).then_some(counted))
        },
    )
    .await;
    back.done().await?;
    let bundle = bundle?;
    let status = bundle.status.clone().context("no status")?;
    ensure!(status.phase == Some(Phase::Completed), "{status:?}");
    let files = download(&bundle).await?;
    assert_first_finding(&bundle, &files, "site-e2e-proxy", &["corporate proxy"])?;
    let top = status.findings.first().context("no findings")?;
    ensure!(
        top.next_step.as_deref()
            == Some("Ask the network team (queue NET) to allow the bucket's host."),
        "{top:?}"
    );
    let summary = text(&files, "summary.md")?;
    ensure!(summary.contains("queue NET"), "{summary}");
    counted?;
    Ok(())
}

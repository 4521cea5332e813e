//! report.html (issue 36) of a real bundle, read the way a person reads it: `kubectl
//! velero-debug report` unpacks it, headless Chromium (Debian's) opens it from disk under its
//! own Content-Security-Policy, and tests/browser/report-check.cjs says what the page did and
//! holds: no console error, no request but the file itself, one bar per volume operation on
//! its node's lane, the first finding's title; axe-core finds no accessibility violation and
//! the W3C validator (vnu) no HTML error. The screenshot is kept as an artifact.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, Result, ensure};
use serde::Deserialize;
use velero_debug_e2e::{
    backups::real_backup,
    browser,
    bundles::{apply_bundle, wait_completed},
    context::{TestCtx, create_namespace},
    operations::pod_volume_restore,
    plugin,
    restores::finished_restore,
};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageFacts {
    console_errors: Vec<String>,
    requests: Vec<String>,
    url: String,
    axe: Vec<serde_json::Value>,
    bars: Vec<Bar>,
    first_finding: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Bar {
    node: String,
    phase: String,
    title: String,
}

/// (node, phase, started minutes after the restore began, ended minutes after, or None).
const OPERATIONS: [(Option<&str>, &str, i64, Option<i64>); 6] = [
    (Some("node-a"), "Completed", 1, Some(3)),
    (Some("node-b"), "Failed", 1, Some(9)),
    (Some("node-a"), "InProgress", 4, None),
    (Some("node-c"), "Failed", 2, Some(9)),
    (Some("node-c"), "Completed", 2, Some(5)),
    (None, "New", 0, None),
];

fn status_of(node: Option<&str>, phase: &str, start: i64, end: Option<i64>) -> serde_json::Value {
    let at = |m: i64| {
        jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::from_mins(m - 10))
            .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
            .ok()
    };
    let mut s = serde_json::json!({"phase": phase, "progress": {}});
    if let Some(node) = node {
        s["node"] = node.into();
        s["startTimestamp"] = at(start).into();
    }
    if let Some(end) = end {
        s["completionTimestamp"] = at(end).into();
    }
    if phase == "Failed" {
        s["message"] = "data path restore failed: context deadline exceeded".into();
    }
    s
}

/// The W3C validator's errors about `report`.
async fn html_errors(t: &TestCtx, report: &str) -> Result<Vec<serde_json::Value>> {
    let modules = t.env.browser_tools.clone().context("no browserTools")?;
    let jar = modules.join("vnu-jar/build/dist/vnu.jar");
    let out = tokio::process::Command::new("java")
        .args(["-jar"])
        .arg(&jar)
        .args([
            "--errors-only",
            "--exit-zero-always",
            "--format",
            "json",
            report,
        ])
        .output()
        .await?;
    let json: serde_json::Value = serde_json::from_slice(&out.stderr)
        .with_context(|| format!("vnu said: {}", String::from_utf8_lossy(&out.stderr)))?;
    Ok(json["messages"].as_array().cloned().unwrap_or_default())
}

#[tokio::test]
async fn the_report_of_a_real_bundle_loads_clean_in_chromium_with_a_bar_per_operation() -> Result<()>
{
    let t = &TestCtx::new().await?;
    let (_, backup, _) = real_backup(t, "report-src").await?;
    let no_auto = serde_json::json!({"velerodebug.io/auto-bundle": "false"});
    let (restore, uid) =
        finished_restore(t, &backup, "PartiallyFailed", Duration::ZERO, no_auto).await?;
    // On Velero 1.14 each restore's pod is made in it (`place_restore_pod`).
    let ns = create_namespace(&t.client, &t.cleanup, "report-ns").await?;
    let mut expected = vec![];
    for (i, (node, phase, start, end)) in OPERATIONS.iter().enumerate() {
        let pod = format!("app-{i}");
        let name = pod_volume_restore(
            t,
            (&restore, &uid),
            (&ns, &pod),
            status_of(*node, phase, *start, *end),
        )
        .await?;
        expected.push((name, node.unwrap_or("(no node)").to_string(), *phase));
    }
    let name = apply_bundle(t, serde_json::json!({"restore": restore})).await?;
    let bundle = wait_completed(t, &name, Duration::from_secs(120)).await?;

    let dir = tempfile::tempdir()?;
    let out = plugin::run(
        &t.env,
        &[
            "report",
            &name,
            "--dir",
            // A folder of its own inside the test's: `report` makes it new.
            &dir.path().join("bundle").display().to_string(),
            "--no-open",
        ],
    )
    .await?;
    ensure!(out.status.success(), "report: {}", plugin::text(&out));
    let report = String::from_utf8(out.stdout)?.trim().to_string();
    ensure!(report.ends_with("/report.html"), "report printed {report}");

    let artifacts = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| velero_debug_e2e::env::tests_dir().join("../target"))
        .join("e2e-artifacts");
    std::fs::create_dir_all(&artifacts)?;
    let screenshot = artifacts.join(format!("report-{name}.png"));
    let page: PageFacts = browser::report_check(&t.env, Path::new(&report), &screenshot).await?;
    eprintln!("report screenshot: {}", screenshot.display());

    ensure!(
        page.console_errors.is_empty(),
        "console errors: {:?}",
        page.console_errors
    );
    ensure!(
        page.requests == vec![page.url.clone()],
        "requests beyond the file: {:?}",
        page.requests
    );
    ensure!(
        page.axe.is_empty(),
        "accessibility violations: {:#?}",
        page.axe
    );
    ensure!(
        std::fs::metadata(&screenshot)?.len() > 10_000,
        "no screenshot at {}",
        screenshot.display()
    );
    let first = bundle
        .status
        .as_ref()
        .and_then(|s| s.findings.first())
        .context("no finding")?;
    ensure!(
        page.first_finding.as_deref() == Some(first.title.as_str()),
        "first finding: {:?} vs {}",
        page.first_finding,
        first.title
    );
    ensure!(
        page.bars.len() == expected.len(),
        "{} bars for {} operations: {:?}",
        page.bars.len(),
        expected.len(),
        page.bars
    );
    for (pvr, node, phase) in &expected {
        let bars: Vec<&Bar> = page
            .bars
            .iter()
            .filter(|b| b.title.contains(&format!(" {pvr} on ")))
            .collect();
        ensure!(bars.len() == 1, "{pvr}: {} bars", bars.len());
        ensure!(
            &bars[0].node == node && bars[0].title.contains(&format!(": {phase} (")),
            "{pvr} ({node}, {phase}): {:?}",
            bars[0]
        );
    }
    ensure!(
        page.bars.iter().any(|b| b.phase == "failed"),
        "no bar drawn as failed"
    );
    let errors = html_errors(t, &report).await?;
    ensure!(errors.is_empty(), "HTML errors: {errors:#?}");
    // Downloaded beside the folder, then kept in it once unpacked.
    let archive = dir.path().join("bundle").join(format!("{name}.tar.gz"));
    opened_only_when_ours(t, &archive).await
}

/// `report FILE` hands the operator's page to $BROWSER, and refuses the same bundle with a
/// scripted report.html in its place (issue 56): the browser never sees it.
async fn opened_only_when_ours(t: &TestCtx, archive: &Path) -> Result<()> {
    let work = tempfile::tempdir()?;
    let opened = work.path().join("opened");
    let browser = work.path().join("browser.sh");
    std::fs::write(
        &browser,
        format!("#!/bin/sh\necho \"$1\" >> {}\n", opened.display()),
    )?;
    std::fs::set_permissions(
        &browser,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )?;
    let browser = browser.display().to_string();
    let report = |archive: PathBuf, into: &str| {
        let dir = work.path().join(into).display().to_string();
        let browser = browser.clone();
        async move {
            let archive = archive.display().to_string();
            plugin::run_with(
                &t.env,
                &["report", &archive, "--dir", &dir],
                &[("BROWSER", &browser)],
            )
            .await
        }
    };
    let out = report(archive.to_path_buf(), "genuine").await?;
    ensure!(out.status.success(), "report: {}", plugin::text(&out));
    let seen = velero_debug_e2e::polling::eventually(
        "the browser started",
        Duration::from_secs(10),
        || async {
            Ok(std::fs::read_to_string(&opened)
                .ok()
                .filter(|s| s.ends_with('\n')))
        },
    )
    .await?;
    ensure!(
        seen.trim().ends_with("/report.html"),
        "the browser got {seen}"
    );

    let evil = work.path().join("evil.tar.gz");
    with_report_page(
        archive,
        &evil,
        b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>",
    )?;
    let out = report(evil, "evil").await?;
    ensure!(
        out.status.code() == Some(4) && plugin::text(&out).contains("not opened"),
        "a scripted report: {}",
        plugin::text(&out)
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let seen = std::fs::read_to_string(&opened)?;
    ensure!(
        seen.lines().count() == 1,
        "the browser was handed the scripted page: {seen}"
    );
    Ok(())
}

/// A copy of the bundle at `from`, its report.html replaced by `page`.
fn with_report_page(from: &Path, to: &Path, page: &[u8]) -> Result<()> {
    let input = flate2::read::MultiGzDecoder::new(std::fs::File::open(from)?);
    let output = flate2::write::GzEncoder::new(std::fs::File::create(to)?, Default::default());
    let mut copy = tar::Builder::new(output);
    let mut archive = tar::Archive::new(input);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let mut header = entry.header().clone();
        let path = entry.path()?.into_owned();
        if path.ends_with("report.html") {
            header.set_size(page.len() as u64);
            header.set_cksum();
            copy.append_data(&mut header, &path, page)?;
        } else {
            copy.append_data(&mut header, &path, &mut entry)?;
        }
    }
    copy.into_inner()?.finish()?;
    Ok(())
}

//! tests/browser/report-check.cjs run in Debian's headless Chromium: what a report.html page
//! did and holds, as JSON. The e2e test and the benchmark read the same facts.

use std::{path::Path, time::Duration};

use anyhow::{Context, Result, ensure};
use serde::de::DeserializeOwned;

use crate::env::Env;

/// How long one page may take, Chromium's start included.
const CHECK_TIMEOUT: Duration = Duration::from_secs(120);

/// Opens `report` from disk, keeps a screenshot at `screenshot`, and returns the script's facts.
pub async fn report_check<T: DeserializeOwned>(
    env: &Env,
    report: &Path,
    screenshot: &Path,
) -> Result<T> {
    let modules = env
        .browser_tools
        .clone()
        .context("env.json names no browserTools: make env-up")?;
    let script = crate::env::tests_dir().join("browser/report-check.cjs");
    let run = tokio::process::Command::new("node")
        .arg(&script)
        .arg(report)
        .arg(screenshot)
        .env("NODE_PATH", &modules)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(CHECK_TIMEOUT, run)
        .await
        .context("report-check did not end in time")??;
    ensure!(
        out.status.success(),
        "report-check: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

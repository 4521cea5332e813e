//! The real Velero server as a test drives it: its CLI run against the environment, and the
//! wait until a Backup or Restore it started reaches a final phase.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use kube::{Api, api::DynamicObject};
use velero_debug_operator::velero::resource as velero_resource;

use crate::{context::TestCtx, env::Env, polling::eventually};

/// Runs the real Velero CLI against the environment; fails with its output when it fails.
pub async fn velero(env: &Env, args: &[&str]) -> Result<String> {
    let run = tokio::process::Command::new(&env.velero.cli)
        .args(args)
        .args(["--namespace", &env.namespace, "--kubeconfig"])
        .arg(&env.kubeconfig)
        .kill_on_drop(true)
        .output();
    // A stuck server must fail the test, not hang the suite.
    let out = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .with_context(|| format!("velero {} did not finish in 300s", args.join(" ")))??;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        bail!("velero {}: {text}", args.join(" "));
    }
    Ok(text)
}

/// Velero's `kind` (Backup or Restore) `name` once its phase is final. `--wait` returns once
/// the phase left InProgress, which may be Finalizing: Velero then writes the status
/// (completionTimestamp included) once more, after a test has read it.
pub async fn in_final_phase(
    t: &TestCtx,
    kind: &str,
    name: &str,
    limit: Duration,
) -> Result<DynamicObject> {
    let api = velero_objects(t, kind);
    eventually(&format!("{kind} {name}'s final phase"), limit, || async {
        let o = api.get(name).await?;
        Ok(is_final(&o).then_some(o))
    })
    .await
}

/// Velero's `kind` `name` once its phase is final and its resourceVersion has held for
/// `QUIET` seconds running. A final phase is not always the last write: Velero 1.18's restore
/// finalizer may act on a stale cached Finalizing copy and mark the Restore PartiallyFailed a
/// second time, moving its completionTimestamp, after a bundle captured the first. A test that
/// compares a bundle with the live object waits for this first.
pub async fn settled(t: &TestCtx, kind: &str, name: &str) -> Result<DynamicObject> {
    const QUIET: u32 = 3;
    let api = velero_objects(t, kind);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let (mut last, mut unchanged) = (None, 0);
    loop {
        let o = api.get(name).await?;
        let version = o.metadata.resource_version.clone();
        unchanged = if is_final(&o) && version == last {
            unchanged + 1
        } else {
            0
        };
        if unchanged >= QUIET {
            return Ok(o);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "{kind} {name} did not hold still for {QUIET}s in a final phase within 60s (phase {:?})",
                phase_of(&o)
            );
        }
        last = version;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The phases after which Velero's controllers stop moving a Backup or Restore (its status may
/// still be written once more: see [`settled`]).
const FINAL_PHASES: &[&str] = &["Completed", "PartiallyFailed", "Failed", "FailedValidation"];

/// Velero's objects of `kind` in the environment's namespace.
fn velero_objects(t: &TestCtx, kind: &str) -> Api<DynamicObject> {
    Api::namespaced_with(t.client.clone(), &t.env.namespace, &velero_resource(kind))
}

fn phase_of(o: &DynamicObject) -> Option<&str> {
    o.data.pointer("/status/phase").and_then(|p| p.as_str())
}

fn is_final(o: &DynamicObject) -> bool {
    phase_of(o).is_some_and(|p| FINAL_PHASES.contains(&p))
}

//! The environment's operator processes: restarting them (all, or one replica) with other
//! settings and bringing the usual one back, installing the chart again with other values, the
//! leader Lease, their metrics, and whether a process still runs.

use anyhow::{Context, Result, ensure};

use crate::env::{Env, tests_dir};

/// Stops the running operators and starts `replicas` processes of the built binary
/// (tests/env/lifecycle/operator/operator-up.sh), with `settings` as environment variables.
pub async fn restart_operators(replicas: u32, settings: &[(&str, String)]) -> Result<()> {
    let mut vars = vec![
        ("VDO_SKIP_BUILD", "1".to_string()),
        ("VDO_OPERATOR_REPLICAS", replicas.to_string()),
    ];
    vars.extend(settings.iter().cloned());
    env_script("lifecycle/operator/operator-up.sh", &vars).await
}

/// Starts operator process `index` again alone (a standby once another leads), with
/// `settings` as environment variables; the other processes keep running.
pub async fn restart_operator_replica(index: u32, settings: &[(&str, String)]) -> Result<()> {
    let mut vars = vec![
        ("VDO_SKIP_BUILD", "1".to_string()),
        ("VDO_SKIP_CRD", "1".to_string()),
        ("VDO_OPERATOR_ONLY", index.to_string()),
    ];
    vars.extend(settings.iter().cloned());
    env_script("lifecycle/operator/operator-up.sh", &vars)
        .await
        .with_context(|| format!("operator process {index}"))
}

/// Installs the chart again into the environment with these `--set-json` values besides the
/// environment's own (none: the chart's defaults again): a test's narrower RBAC, which the
/// running operator meets on its next request.
pub async fn chart_values(values: &[&str]) -> Result<()> {
    env_script(
        "lifecycle/operator/chart-install.sh",
        &[("VDO_CHART_SET", values.join("\n"))],
    )
    .await
}

/// Runs the environment's script `name` (tests/env/) with `vars` as environment variables;
/// its stderr names what failed.
async fn env_script(name: &str, vars: &[(&str, String)]) -> Result<()> {
    let script = tests_dir().join("env").join(name);
    let out = tokio::process::Command::new("bash")
        .arg(&script)
        .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .await?;
    ensure!(
        out.status.success(),
        "{name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Brings the environment's usual operator back (one process, default settings) when dropped,
/// unless [`OperatorsBack::done`] said it is back already: a test that restarts the operator
/// differently leaves it as the next test expects even when it fails or panics.
pub struct OperatorsBack {
    done: bool,
}

impl OperatorsBack {
    pub fn armed() -> OperatorsBack {
        OperatorsBack { done: false }
    }

    /// Restarts the usual operator now (awaited, its errors the caller's), and disarms.
    pub async fn done(mut self) -> Result<()> {
        self.done = true;
        restart_operators(1, &[]).await
    }
}

impl Drop for OperatorsBack {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let script = tests_dir().join("env/lifecycle/operator/operator-up.sh");
        // Drop cannot await: the script is waited for on this thread.
        match std::process::Command::new("bash")
            .arg(&script)
            .env("VDO_SKIP_BUILD", "1")
            .env("VDO_OPERATOR_REPLICAS", "1")
            .output()
        {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "operators not brought back: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => eprintln!("operators not brought back: {e}"),
        }
    }
}

/// The identity holding the operator's Lease in `namespace` (empty when nobody holds it).
pub async fn lease_holder(client: &kube::Client, namespace: &str) -> Result<String> {
    let lease = kube::Api::<k8s_openapi::api::coordination::v1::Lease>::namespaced(
        client.clone(),
        namespace,
    )
    .get("velero-debug-operator")
    .await?;
    Ok(lease
        .spec
        .and_then(|s| s.holder_identity)
        .unwrap_or_default())
}

/// A sample of operator process `identity`'s /metrics, by its exposition name and labels
/// (`velero_debug_leader`, `velero_debug_bundles_total{result="completed",reason="Completed"}`).
pub async fn operator_metric(env: &Env, identity: &str, sample: &str) -> Result<i64> {
    let port = std::fs::read_to_string(env.state_dir()?.join(format!("{identity}.metrics-port")))?;
    let text = reqwest::get(format!("http://127.0.0.1:{}/metrics", port.trim()))
        .await?
        .text()
        .await?;
    let value = text
        .lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' '))
        .with_context(|| format!("no {sample} in the metrics of {identity}"))?;
    Ok(value.trim().parse()?)
}

/// Whether process `pid` exists and is not a zombie. A killed process whose parent is gone
/// stays a zombie until PID 1 reaps it, seconds later on these machines; it runs nothing, so
/// it counts as stopped (as in tests/env/lib/common.sh).
pub fn process_live(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the command name, which is in parentheses and may hold either.
    let state = stat
        .rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next());
    !matches!(state, None | Some('Z' | 'X'))
}

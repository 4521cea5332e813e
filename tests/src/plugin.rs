//! The built kubectl plugin (`kubectl-velero_debug`, cli/), run as a user runs it.

use std::{path::PathBuf, process::Output, time::Duration};

use anyhow::{Context, Result};

use crate::env::Env;

/// The plugin binary run-e2e.sh builds (or `$VDO_PLUGIN`: the bench's release build).
pub fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("VDO_PLUGIN") {
        return PathBuf::from(path);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::env::tests_dir().join("../target"));
    target.join("debug/kubectl-velero_debug")
}

/// Runs the plugin against the environment, with `vars` added to its environment; the output
/// with its status. Output is not a terminal here, so it must hold no control characters.
pub async fn run_with(env: &Env, args: &[&str], vars: &[(&str, &str)]) -> Result<Output> {
    let out = tokio::process::Command::new(binary())
        .arg("--kubeconfig")
        .arg(&env.kubeconfig)
        .args(["-n", &env.namespace])
        .args(args)
        .envs(vars.iter().copied())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(300), out)
        .await
        .with_context(|| format!("kubectl-velero_debug {args:?} did not finish"))?
        .with_context(|| format!("running {:?} (built by run-e2e.sh)", binary()))?;
    // Not a terminal: no progress bars, no colour, no cursor moves.
    for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        if let Some(c) = bytes
            .iter()
            .find(|b| b.is_ascii_control() && !matches!(b, b'\n' | b'\t'))
        {
            anyhow::bail!(
                "{args:?}: control character {c:#04x} in {stream}: {:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }
    Ok(out)
}

pub async fn run(env: &Env, args: &[&str]) -> Result<Output> {
    run_with(env, args, &[]).await
}

/// stdout then stderr, as text.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Debian's bash-completion as `make tools` unpacked it (kubectl's bash completion needs it, as
/// on a user's machine): its path, from the version pinned in tests/env/tools/versions.env.
pub fn bash_completion_script() -> Result<PathBuf> {
    let versions = crate::env::tests_dir().join("env/tools/versions.env");
    let text = std::fs::read_to_string(&versions)
        .with_context(|| format!("reading {}", versions.display()))?;
    let version = text
        .lines()
        .find_map(|l| l.strip_prefix("BASH_COMPLETION_VERSION="))
        .context("BASH_COMPLETION_VERSION is not pinned in versions.env")?;
    let cache = match std::env::var_os("VDO_CACHE") {
        Some(dir) => PathBuf::from(dir),
        None => std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .context("no HOME")?
            .join("velero-debug-operator"),
    };
    let script = cache
        .join("tools")
        .join(format!("bash_completion-{version}"))
        .join("usr/share/bash-completion/bash_completion");
    anyhow::ensure!(
        script.is_file(),
        "{} is missing: run 'make tools'",
        script.display()
    );
    Ok(script)
}

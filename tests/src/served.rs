//! `kubectl velero-debug serve` run as a user runs it: started on a bundle, its kubeconfig read
//! from its first line of output, commands run against it, stopped with Ctrl-C (SIGINT).

use std::{
    path::{Path, PathBuf},
    process::Output,
    time::Duration,
};

use anyhow::{Context, Result, ensure};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::{env::Env, plugin};

pub struct Served {
    child: tokio::process::Child,
    /// The kubeconfig the server wrote.
    pub kubeconfig: PathBuf,
    /// The --dir its temporary folder is made in (empty again once it stopped).
    pub dir: tempfile::TempDir,
}

impl Served {
    /// Serves `bundle` (a file, or a DebugBundle of the environment downloaded first).
    pub async fn start(env: &Env, bundle: &str) -> Result<Served> {
        let dir = tempfile::tempdir()?;
        let mut child = tokio::process::Command::new(plugin::binary())
            .arg("--kubeconfig")
            .arg(&env.kubeconfig)
            .args(["-n", &env.namespace, "serve", bundle, "--dir"])
            .arg(dir.path())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting serve")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut first = String::new();
        let mut lines = BufReader::new(stdout);
        tokio::time::timeout(Duration::from_secs(120), lines.read_line(&mut first))
            .await
            .context("serve printed no kubeconfig in 120 s")??;
        let kubeconfig = PathBuf::from(first.trim());
        ensure!(
            kubeconfig.starts_with(dir.path()) && kubeconfig.is_file(),
            "serve printed {first:?}, not a kubeconfig in {:?}",
            dir.path()
        );
        Ok(Served {
            child,
            kubeconfig,
            dir,
        })
    }

    /// The server's URL (which ends in the token) and its token, from the kubeconfig it wrote.
    pub fn server_and_token(&self) -> Result<(String, String)> {
        let text = std::fs::read_to_string(&self.kubeconfig)?;
        let line = |key: &str| {
            text.lines()
                .find_map(|l| l.trim().strip_prefix(key).map(|v| v.trim().to_string()))
                .with_context(|| format!("no {key} in the kubeconfig"))
        };
        Ok((line("server:")?, line("token:")?))
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Ctrl-C; the server must exit 0 and leave no file in --dir.
    pub async fn stop(mut self) -> Result<()> {
        let pid = self.child.id().context("serve already exited")?;
        let kill = tokio::process::Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status()
            .await?;
        ensure!(kill.success(), "kill -INT {pid}");
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .context("serve did not stop in 30 s after Ctrl-C")??;
        ensure!(status.success(), "serve exited {status}");
        let left: Vec<_> = std::fs::read_dir(self.dir.path())?.collect();
        ensure!(left.is_empty(), "serve left {left:?} behind");
        Ok(())
    }
}

/// `program args` with KUBECONFIG `kubeconfig`, its output (at most 120 s).
pub async fn run(program: &Path, kubeconfig: &Path, args: &[&str]) -> Result<Output> {
    let out = tokio::process::Command::new(program)
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(120), out)
        .await
        .with_context(|| format!("{program:?} {args:?} did not finish"))?
        .with_context(|| format!("running {program:?}"))
}

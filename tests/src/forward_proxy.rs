//! A real forward proxy: Debian's tinyproxy (built by `make tools`), started by a test on a
//! free loopback port with its own configuration and log, and stopped when the test says (a
//! proxy that is down) or when it is dropped.
//!
//! Its log at level Info has a line per request, `Request (file descriptor N): CONNECT
//! host:port HTTP/1.1` for https destinations and `... PUT http://host:port/path HTTP/1.1` for
//! http ones, so a test reads from it where the traffic it relayed went.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, Result, bail, ensure};
use tokio::process::{Child, Command};

use crate::env::Env;

pub struct ForwardProxy {
    pub port: u16,
    /// `user:password@` when it requires them.
    auth: Option<String>,
    log: PathBuf,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl ForwardProxy {
    /// Starts tinyproxy and waits until it accepts connections.
    pub async fn start(env: &Env) -> Result<Self> {
        Self::start_with(env, None).await
    }

    /// Starts tinyproxy requiring `user` and `password` (BasicAuth) of every request; its URL
    /// is then `http://user:password@127.0.0.1:PORT`.
    pub async fn start_with_auth(env: &Env, user: &str, password: &str) -> Result<Self> {
        Self::start_with(env, Some((user, password))).await
    }

    async fn start_with(env: &Env, auth: Option<(&str, &str)>) -> Result<Self> {
        let bin = env
            .tinyproxy
            .clone()
            .context("env.json names no tinyproxy: start the environment again (make env-up)")?;
        let dir = tempfile::tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log = dir.path().join("tinyproxy.log");
        let conf = dir.path().join("tinyproxy.conf");
        let mut text = config(port, &log);
        if let Some((user, password)) = auth {
            text.push_str(&format!("BasicAuth {user} {password}\n"));
        }
        std::fs::write(&conf, text)?;
        let child = Command::new(bin)
            .arg("-d")
            .arg("-c")
            .arg(&conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting tinyproxy")?;
        let proxy = Self {
            port,
            auth: auth.map(|(u, p)| format!("{u}:{p}@")),
            log,
            child: Some(child),
            _dir: dir,
        };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(proxy);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!(
            "tinyproxy did not listen on 127.0.0.1:{port}; its log: {}",
            proxy.log_text()
        )
    }

    /// Its URL, with the credentials it requires.
    pub fn url(&self) -> String {
        format!(
            "http://{}127.0.0.1:{}",
            self.auth.as_deref().unwrap_or(""),
            self.port
        )
    }

    /// What the proxy logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The request lines of the log (`CONNECT host:port` or `METHOD http://host:port/...`).
    pub fn requests(&self) -> Vec<String> {
        self.log_text()
            .lines()
            .filter_map(|l| l.split_once("Request (file descriptor ").map(|(_, r)| r))
            .filter_map(|r| r.split_once("): ").map(|(_, r)| r.to_string()))
            .collect()
    }

    /// Stops it; its port refuses connections from then on.
    pub async fn stop(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().await?;
        }
        let refused = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err();
        ensure!(refused, "127.0.0.1:{} still accepts connections", self.port);
        Ok(())
    }
}

/// Loopback only, no port restriction on CONNECT (the stores listen on high ports), no header
/// added to what it relays.
fn config(port: u16, log: &Path) -> String {
    format!(
        "Port {port}\nListen 127.0.0.1\nAllow 127.0.0.1\nTimeout 600\nLogFile \"{}\"\n\
         LogLevel Info\nMaxClients 100\nDisableViaHeader Yes\n",
        log.display()
    )
}

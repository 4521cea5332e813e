//! A fault proxy in front of the API server (tests/env/doubles/api-fault-proxy.py), run by a test for
//! the operator processes it restarts through it: log requests answered 429, an answer cut
//! mid-stream, every connection severed. The proxy terminates TLS with the environment's test
//! certificate (IP 127.0.0.1, signed by its throwaway CA) and re-encrypts to the API server, so
//! the operator's ServiceAccount token passes through as it is.

use std::{path::PathBuf, process::Stdio};

use anyhow::{Context, Result, ensure};
use kube::config::Kubeconfig;
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::env::Env;

/// What the proxy has done so far.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ProxyStats {
    pub requests: u64,
    /// Log requests answered 429.
    pub throttled: u64,
    /// Answers cut mid-stream.
    pub cut: u64,
    /// Connections dropped by a sever (open ones, and new ones while severed).
    pub severed: u64,
    pub log_requests: u64,
}

pub struct ApiFaultProxy {
    /// Killed when the proxy is dropped.
    _child: tokio::process::Child,
    port: u16,
    control: u16,
    ca_file: PathBuf,
    _upstream_ca: tempfile::NamedTempFile,
}

impl ApiFaultProxy {
    /// Starts the proxy in front of the environment's API server, forwarding everything.
    pub async fn start(env: &Env) -> Result<ApiFaultProxy> {
        let kubeconfig = Kubeconfig::read_from(&env.kubeconfig)?;
        let cluster = kubeconfig
            .clusters
            .first()
            .and_then(|c| c.cluster.clone())
            .context("the kubeconfig has no cluster")?;
        let server = cluster.server.context("the cluster has no server")?;
        let upstream = server
            .strip_prefix("https://")
            .context("the API server is not https")?
            .trim_end_matches('/')
            .to_string();
        let upstream_ca = tempfile::NamedTempFile::new()?;
        let pem = match (
            &cluster.certificate_authority_data,
            &cluster.certificate_authority,
        ) {
            (Some(data), _) => {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.decode(data)?
            }
            (None, Some(file)) => std::fs::read(file)?,
            (None, None) => anyhow::bail!("the kubeconfig has no CA for the API server"),
        };
        std::fs::write(upstream_ca.path(), pem)?;
        let tls = env.s3.ca_file.parent().context("no TLS folder")?;
        let script = crate::env::tests_dir().join("env/doubles/api-fault-proxy.py");
        let mut child = tokio::process::Command::new("python3")
            .arg(&script)
            .arg(&upstream)
            .arg(upstream_ca.path())
            .arg(tls.join("server.crt"))
            .arg(tls.join("server.key"))
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut first = String::new();
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            BufReader::new(stdout).read_line(&mut first),
        )
        .await
        .context("the API fault proxy did not start in 10 s")??;
        // "listening PORT control PORT"
        let words: Vec<&str> = first.split_whitespace().collect();
        let [_, port, _, control] = words.as_slice() else {
            anyhow::bail!("the API fault proxy said {first:?}");
        };
        Ok(ApiFaultProxy {
            _child: child,
            port: port.parse()?,
            control: control.parse()?,
            ca_file: tls.join("ca.crt"),
            _upstream_ca: upstream_ca,
        })
    }

    /// The settings of tests/env/lifecycle/operator/operator-up.sh that send an operator process through it.
    pub fn operator_settings(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "VDO_OPERATOR_API_SERVER",
                format!("https://127.0.0.1:{}", self.port),
            ),
            ("VDO_OPERATOR_API_CA", self.ca_file.display().to_string()),
        ]
    }

    async fn command(&self, method: reqwest::Method, path: &str) -> Result<ProxyStats> {
        let url = format!("http://127.0.0.1:{}{path}", self.control);
        let response = reqwest::Client::new().request(method, &url).send().await?;
        ensure!(response.status() == 200, "{url}: {}", response.status());
        Ok(response.json().await?)
    }

    /// 429 with Retry-After: 1 to the first request of each log request's target (a retry is
    /// the next request of its target) that contains each of `matching`, and to every
    /// `every`th after it; 0 stops.
    pub async fn throttle_logs(&self, every: u32, matching: &[&str]) -> Result<ProxyStats> {
        let path = format!("/throttle?every={every}{}", query(matching));
        self.command(reqwest::Method::POST, &path).await
    }

    /// The next request whose target contains each of `matching` gets its answer's head and
    /// `bytes` bytes of its body, then its connection is dropped.
    pub async fn cut_once(&self, matching: &[&str], bytes: usize) -> Result<ProxyStats> {
        let path = format!("/cut?bytes={bytes}{}", query(matching));
        self.command(reqwest::Method::POST, &path).await
    }

    /// Drops every connection, and every new one until [`ApiFaultProxy::restore`].
    pub async fn sever(&self) -> Result<ProxyStats> {
        self.command(reqwest::Method::POST, "/sever").await
    }

    /// Forwards everything again.
    pub async fn restore(&self) -> Result<ProxyStats> {
        self.command(reqwest::Method::POST, "/restore").await
    }

    pub async fn stats(&self) -> Result<ProxyStats> {
        self.command(reqwest::Method::GET, "/stats").await
    }
}

fn query(matching: &[&str]) -> String {
    matching
        .iter()
        .map(|m| {
            let encoded: String = m
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect();
            format!("&match={encoded}")
        })
        .collect()
}

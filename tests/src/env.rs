//! The running environment as `tests/env/lifecycle/env-up.sh` describes it in `env.json` (the cluster,
//! Velero, the object stores, the tools), clients of it, and where this package's files are.

use std::path::PathBuf;

use anyhow::{Context, Result};
use kube::{
    Client,
    config::{KubeConfigOptions, Kubeconfig},
};
use serde::Deserialize;

use crate::real_node;

/// The running environment, as env-up.sh wrote it.
#[derive(Debug, Clone, Deserialize)]
pub struct Env {
    pub kubeconfig: PathBuf,
    pub namespace: String,
    pub velero: VeleroEnv,
    pub s3: S3Env,
    /// moto's STS (absent from an environment started before it was added).
    #[serde(default)]
    pub sts: Option<StsEnv>,
    pub gcs: GcsEnv,
    pub azure: AzureEnv,
    /// The Entra ID token issuer Azurite's OAuth mode accepts (absent from an environment
    /// started before it was added).
    #[serde(default)]
    pub entra: Option<EntraEnv>,
    /// The Python of the environment's venv with Google's and Microsoft's storage clients.
    pub pytools: PathBuf,
    #[serde(rename = "podLogsDir")]
    pub pod_logs_dir: PathBuf,
    /// Debian's tinyproxy, for the tests that put a forward proxy in front of the stores
    /// (absent from an environment started before it was added).
    #[serde(default)]
    pub tinyproxy: Option<PathBuf>,
    /// node_modules with playwright-core, axe-core and vnu-jar (the report's browser test).
    #[serde(default, rename = "browserTools")]
    pub browser_tools: Option<PathBuf>,
    /// The node with a real kubelet (tests/env/lifecycle/real-node/node-up.sh); absent from an environment started
    /// before it was added ([`Env::real_node`] says so).
    #[serde(default, rename = "realNode")]
    pub real_node: Option<real_node::RealNodeEnv>,
}

/// moto's server as AWS STS: the operator and the Velero server assume AWS role profiles there
/// (their AWS_ENDPOINT_URL_STS), and s3s-fs accepts the keys it hands out.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StsEnv {
    /// `http://127.0.0.1:<port>`; `/moto-api/data.json` lists the roles assumed.
    pub endpoint: String,
    /// The web identity token the operator's environment names (AWS_WEB_IDENTITY_TOKEN_FILE).
    pub web_identity_token_file: PathBuf,
}

/// fake-gcs-server, which BSL gcs points at (the Velero server and the operator reach it
/// through STORAGE_EMULATOR_HOST).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GcsEnv {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    pub bucket: String,
    pub prefix: String,
    /// The service-account key in Secret gcs-credentials.
    pub credentials_file: PathBuf,
}

/// Azurite's blob service, which BSL azure points at.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AzureEnv {
    /// The account URL (storageAccountURI).
    pub endpoint: String,
    pub account: String,
    /// The account key, base64.
    pub key: String,
    pub container: String,
    pub prefix: String,
    /// The CA of an https endpoint.
    pub ca_file: Option<PathBuf>,
}

/// One tenant's token endpoint and its one service principal.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntraEnv {
    /// `https://127.0.0.1:<port>`: a BSL's activeDirectoryAuthorityURI.
    pub authority: String,
    pub tenant: String,
    pub client_id: String,
    pub client_secret: String,
    /// The principal's object id, which its tokens and delegation keys name.
    pub object_id: String,
    /// Its workload identity's federated token, which the issuer takes as a client assertion.
    pub federated_token_file: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
pub struct VeleroEnv {
    /// The Velero version the environment runs (`v1.18.3`; `VELERO_VERSION` picks it).
    #[serde(default)]
    pub version: String,
    pub cli: PathBuf,
    pub log: PathBuf,
}

impl VeleroEnv {
    /// The minor version of the Velero the environment runs (14 for `v1.14.0`).
    pub fn minor(&self) -> u32 {
        self.version
            .trim_start_matches('v')
            .split('.')
            .nth(1)
            .and_then(|m| m.parse().ok())
            .unwrap_or(u32::MAX)
    }

    /// Whether fs-backup runs in data-path pods of its own (Velero 1.17+), whose lines the
    /// node-agent copies into its log between `begin pod logs[`/`end pod logs[` markers;
    /// before, kopia runs inside the node-agent, which logs each operation itself.
    pub fn data_path_pods(&self) -> bool {
        self.minor() >= 17
    }

    /// The phase Velero gives a backup into an Unavailable storage location: Velero 1.14 runs
    /// it and fails it when it cannot upload (`Failed`); 1.18 refuses it before it starts
    /// (`FailedValidation`: "backup can't be created because BackupStorageLocation ... is in
    /// Unavailable status").
    pub fn unavailable_location_backup_phase(&self) -> &'static str {
        if self.minor() <= 14 {
            "Failed"
        } else {
            "FailedValidation"
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct S3Env {
    pub endpoint: String,
    pub public_endpoint: String,
    pub region: String,
    pub bucket: String,
    pub prefix: String,
    pub access_key: String,
    pub secret_key: String,
    /// The same server behind HTTPS (certificate signed by `ca_file`'s CA); BSLs tls-ca and
    /// tls-insecure point at it.
    pub tls_endpoint: String,
    pub ca_file: PathBuf,
    /// The store's own folder: one sub-folder per bucket.
    pub data_dir: PathBuf,
}

impl Env {
    /// The running environment's state folder (pids, metrics ports, logs): beside its
    /// kubeconfig.
    pub fn state_dir(&self) -> Result<PathBuf> {
        Ok(self
            .kubeconfig
            .parent()
            .context("kubeconfig has no folder")?
            .to_path_buf())
    }

    /// The pid of operator process `identity` (`operator-0`, ...), as operator-up.sh wrote it.
    pub fn operator_pid(&self, identity: &str) -> Result<u32> {
        let path = self.state_dir()?.join(format!("pids/{identity}.pid"));
        let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
        Ok(text.trim().parse()?)
    }

    /// The real node, or why an environment lacks it.
    pub fn real_node(&self) -> Result<&real_node::RealNodeEnv> {
        self.real_node
            .as_ref()
            .context("env.json has no realNode: the environment predates the real node; restart it (`make env-down env-up`)")
    }

    /// Reads `$VDO_ENV_FILE`. Fails loudly: an e2e test without its environment must not pass.
    pub fn load() -> Result<Env> {
        // reqwest brings ring and the S3 SDK aws-lc-rs; rustls needs one chosen.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let path = std::env::var("VDO_ENV_FILE")
            .context("VDO_ENV_FILE is not set: run the e2e tests with `make e2e` (or `make env-up` and export what it prints)")?;
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        let mut env: Env =
            serde_json::from_str(&text).with_context(|| format!("parsing {path}"))?;
        if env.velero.version.is_empty() {
            // An environment started before env.json recorded the version: its CLI's tool
            // folder (tools/velero-<version>/bin/velero) names it.
            let folder = env.velero.cli.parent().and_then(|bin| bin.parent());
            let name = folder.and_then(|f| f.file_name()).and_then(|n| n.to_str());
            env.velero.version = name
                .and_then(|n| n.strip_prefix("velero-"))
                .with_context(|| format!("{path} names no Velero version"))?
                .to_string();
        }
        Ok(env)
    }

    pub async fn client(&self) -> Result<Client> {
        Ok(Client::try_from(self.config().await?)?)
    }

    /// The client configuration of the environment's kubeconfig.
    pub async fn config(&self) -> Result<kube::Config> {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig)?;
        Ok(kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?)
    }

    /// An S3 client for `endpoint` (the BSL's s3Url or its publicUrl) with the BSL's credentials.
    pub fn s3_client(&self, endpoint: &str) -> aws_sdk_s3::Client {
        let credentials = aws_credential_types::Credentials::new(
            &self.s3.access_key,
            &self.s3.secret_key,
            None,
            None,
            "vdo-e2e",
        );
        let config = aws_sdk_s3::Config::builder()
            .behavior_version_latest()
            .endpoint_url(endpoint)
            .region(aws_sdk_s3::config::Region::new(self.s3.region.clone()))
            .credentials_provider(credentials)
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }
}

/// This package's folder (`tests/`) of the checkout being tested: cargo names it at run time.
/// The compile-time path is only the fallback, because one target folder serves every checkout
/// on a machine and cargo may reuse a test binary another checkout built.
pub fn tests_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

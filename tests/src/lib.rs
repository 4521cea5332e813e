//! Shared helpers of the end-to-end tests: the environment that `tests/env/env-up.sh` describes
//! in `env.json`, clients for it, and per-test isolation (own namespace, unique names, and a
//! [`Cleanup`] guard that deletes what the test made).

pub mod api_proxy;
pub mod browser;
pub mod bundle_watch;
pub mod fixtures;
pub mod forward_proxy;
pub mod holding_proxy;
pub mod plugin;
pub mod real_node;
pub mod recorded_events;
pub mod served;
pub mod store_proxy;
pub mod stores;
pub mod webhook;

use std::{
    path::PathBuf,
    sync::{Mutex, PoisonError, atomic::AtomicU32},
    time::Duration,
};

use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::api::core::v1::Namespace;
use kube::{
    Api, Client, Resource,
    api::{DeleteParams, DynamicObject, Patch, PatchParams, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
    core::ApiResource,
};
use serde::Deserialize;

/// The running environment, as env-up.sh wrote it.
#[derive(Debug, Clone, Deserialize)]
pub struct Env {
    pub kubeconfig: PathBuf,
    pub namespace: String,
    pub velero: VeleroEnv,
    pub s3: S3Env,
    pub gcs: GcsEnv,
    pub azure: AzureEnv,
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
    /// The node with a real kubelet (tests/env/node-up.sh); absent from an environment started
    /// before it was added ([`Env::real_node`] says so).
    #[serde(default, rename = "realNode")]
    pub real_node: Option<real_node::RealNodeEnv>,
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

/// A name no other test (nor an earlier run) uses: `<prefix>-<pid>-<counter>-<nanos>`.
/// This package's folder (`tests/`) of the checkout being tested: cargo names it at run time.
/// The compile-time path is only the fallback, because one target folder serves every checkout
/// on a machine and cargo may reuse a test binary another checkout built.
pub fn tests_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{n}-{:x}", std::process::id(), nanos % 0xffff)
}

/// Creates a namespace of the test's own, deleted by `cleanup`.
pub async fn create_namespace(client: &Client, cleanup: &Cleanup, prefix: &str) -> Result<String> {
    let name = unique_name(prefix);
    let ns: Namespace = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": {"velerodebug.io/e2e": "true"}}
    }))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await?;
    cleanup.namespace(&name);
    Ok(name)
}

/// What an end-to-end test starts from: the environment, a client of it, and the guard that
/// deletes what the test made when the test ends, however it ends.
pub struct TestCtx {
    pub env: Env,
    pub client: Client,
    pub cleanup: Cleanup,
}

impl TestCtx {
    pub async fn new() -> Result<TestCtx> {
        let env = Env::load()?;
        let client = env.client().await?;
        let cleanup = Cleanup::new(&env);
        Ok(TestCtx {
            env,
            client,
            cleanup,
        })
    }
}

/// How long dropping a [`Cleanup`] may take before it gives up (and leaves the rest).
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Deletes what a test made when dropped: at the test's end, and also when it fails early
/// (`?`, `ensure!`) or panics. Objects are undone in reverse order of registration, like locals
/// are dropped; objects already gone are fine.
pub struct Cleanup {
    env: Env,
    steps: Mutex<Vec<Step>>,
}

#[derive(PartialEq)]
struct Step {
    resource: ApiResource,
    namespace: Option<String>,
    name: String,
    undo: Undo,
}

#[derive(PartialEq)]
enum Undo {
    Delete,
    MergePatch(serde_json::Value),
}

impl Cleanup {
    pub fn new(env: &Env) -> Cleanup {
        Cleanup {
            env: env.clone(),
            steps: Mutex::new(Vec::new()),
        }
    }

    /// Deletes the namespace (and so everything in it).
    pub fn namespace(&self, name: &str) {
        self.delete(&ApiResource::erase::<Namespace>(&()), None, name);
    }

    /// Deletes a namespaced object of a typed kind, e.g. a DebugBundle or a Secret.
    pub fn object<K: Resource<DynamicType = ()>>(&self, namespace: &str, name: &str) {
        self.delete(&ApiResource::erase::<K>(&()), Some(namespace), name);
    }

    /// Deletes an object of a dynamic kind (Velero's, kwok's); `namespace` None for a
    /// cluster-scoped one. Dependents go too (background propagation), e.g. a Restore's
    /// automatic bundle.
    pub fn delete(&self, resource: &ApiResource, namespace: Option<&str>, name: &str) {
        self.push(resource, namespace, name, Undo::Delete);
    }

    /// Applies `patch` (a JSON merge patch) to an object the test changed but did not make.
    pub fn merge_patch(
        &self,
        resource: &ApiResource,
        namespace: Option<&str>,
        name: &str,
        patch: serde_json::Value,
    ) {
        self.push(resource, namespace, name, Undo::MergePatch(patch));
    }

    fn push(&self, resource: &ApiResource, namespace: Option<&str>, name: &str, undo: Undo) {
        let step = Step {
            resource: resource.clone(),
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
            undo,
        };
        let mut steps = self.steps.lock().unwrap_or_else(PoisonError::into_inner);
        if !steps.contains(&step) {
            steps.push(step);
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let steps = std::mem::take(self.steps.get_mut().unwrap_or_else(PoisonError::into_inner));
        if steps.is_empty() {
            return;
        }
        // Drop cannot await, and the test's runtime is blocked here (a current-thread runtime,
        // which also runs the test client's request worker, so a clone of that client would
        // hang): a thread with a runtime and a client of its own, waited for with a bound.
        let env = self.env.clone();
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime.block_on(undo_all(&env, steps)),
                Err(e) => eprintln!("cleanup: no runtime: {e}"),
            }
            let _ = done.send(());
        });
        if finished.recv_timeout(CLEANUP_TIMEOUT).is_err() {
            eprintln!("cleanup: not finished within {CLEANUP_TIMEOUT:?}; some objects may be left");
        }
    }
}

async fn undo_all(env: &Env, steps: Vec<Step>) {
    let client = match env.client().await {
        Ok(client) => client,
        Err(e) => {
            eprintln!("cleanup: no client: {e:#}");
            return;
        }
    };
    for step in steps.into_iter().rev() {
        let api: Api<DynamicObject> = match &step.namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &step.resource),
            None => Api::all_with(client.clone(), &step.resource),
        };
        let result = match &step.undo {
            Undo::Delete => api
                .delete(&step.name, &DeleteParams::background())
                .await
                .map(drop),
            Undo::MergePatch(patch) => api
                .patch(&step.name, &PatchParams::default(), &Patch::Merge(patch))
                .await
                .map(drop),
        };
        match result {
            Ok(()) => {}
            // Gone already, or (a namespace) already being deleted.
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
            Err(e) => eprintln!("cleanup: {} {}: {e}", step.resource.kind, step.name),
        }
    }
}

/// Polls `check` once a second until it returns `Some`, or fails after `timeout` naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last_err = None;
    loop {
        match check().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_err = Some(e),
        }
        if tokio::time::Instant::now() >= deadline {
            match last_err {
                Some(e) => {
                    bail!("timed out after {timeout:?} waiting for {what}; last error: {e:#}")
                }
                None => bail!("timed out after {timeout:?} waiting for {what}"),
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Checks once a second for `window` that `check` still holds (`Ok(None)`), failing at the
/// first `Some(what went wrong)`: for an absence that a late producer could still end, checked
/// past the point where it should have acted, not only at it.
pub async fn holds_throughout<F, Fut>(what: &str, window: Duration, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<String>>>,
{
    let deadline = tokio::time::Instant::now() + window;
    loop {
        if let Some(broken) = check().await? {
            bail!("{what} no longer holds: {broken}");
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

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

/// Every file of a tar.gz (all its gzip members: the operator writes summary.md and
/// manifest.json in a first one), by path; an error unless the archive is one a user can extract
/// safely: every entry a regular file (no link, device or folder entry) under one common root
/// folder, its path relative, of UTF-8 components that are neither empty, `.` nor `..` and
/// hold no `\` or control character, and no name given twice, even ignoring case, or given to
/// both a file and a folder.
pub fn untar(bytes: &[u8]) -> Result<std::collections::BTreeMap<String, Vec<u8>>> {
    use std::{collections::BTreeSet, io::Read};
    let mut archive = tar::Archive::new(flate2::read::MultiGzDecoder::new(bytes));
    let mut files = std::collections::BTreeMap::new();
    let mut root_folder: Option<String> = None;
    // Lowercased: names differing only in case overwrite each other on macOS and Windows.
    let mut file_names = BTreeSet::new();
    let mut folder_names = BTreeSet::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        // The raw name (GNU long name or PAX path included), not one the OS reinterprets.
        let path = String::from_utf8(entry.path_bytes().into_owned())
            .map_err(|e| anyhow::anyhow!("entry name not UTF-8: {:?}", e.as_bytes()))?;
        let kind = entry.header().entry_type();
        if !kind.is_file() {
            bail!("entry {path:?} is not a regular file: {kind:?}");
        }
        let components: Vec<&str> = path.split('/').collect();
        if let Some(bad) = components.iter().find(|c| {
            c.is_empty()
                || **c == "."
                || **c == ".."
                || c.contains(|ch: char| ch == '\\' || ch.is_control())
        }) {
            bail!("entry {path:?} has the component {bad:?} (or is absolute)");
        }
        let [first, .., _] = components.as_slice() else {
            bail!("entry {path:?} is not in a root folder");
        };
        let root = root_folder.get_or_insert_with(|| first.to_string());
        if root.as_str() != *first {
            bail!("entry {path:?} is not under the root folder {root:?}");
        }
        for depth in 1..components.len() {
            let folder = components[..depth].join("/").to_lowercase();
            if file_names.contains(&folder) {
                bail!("entry {path:?} is in a folder that is also a file");
            }
            folder_names.insert(folder);
        }
        let key = path.to_lowercase();
        if folder_names.contains(&key) || !file_names.insert(key) {
            bail!("entry {path:?} is in the archive twice (or is also a folder)");
        }
        let mut content = Vec::new();
        entry.read_to_end(&mut content)?;
        files.insert(path, content);
    }
    Ok(files)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Whether process `pid` exists and is not a zombie. A killed process whose parent is gone
/// stays a zombie until PID 1 reaps it, seconds later on these machines; it runs nothing, so
/// it counts as stopped (as in tests/env/common.sh).
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

/// Runs the environment's script `name` (tests/env/) with `vars` as environment variables;
/// its stderr names what failed.
async fn env_script(name: &str, vars: &[(&str, String)]) -> Result<()> {
    let script = crate::tests_dir().join("env").join(name);
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

/// Stops the running operators and starts `replicas` processes of the built binary
/// (tests/env/operator-up.sh), with `settings` as environment variables.
pub async fn restart_operators(replicas: u32, settings: &[(&str, String)]) -> Result<()> {
    let mut vars = vec![
        ("VDO_SKIP_BUILD", "1".to_string()),
        ("VDO_OPERATOR_REPLICAS", replicas.to_string()),
    ];
    vars.extend(settings.iter().cloned());
    env_script("operator-up.sh", &vars).await
}

/// Installs the chart again into the environment with these `--set-json` values besides the
/// environment's own (none: the chart's defaults again): a test's narrower RBAC, which the
/// running operator meets on its next request.
pub async fn chart_values(values: &[&str]) -> Result<()> {
    env_script("chart-install.sh", &[("VDO_CHART_SET", values.join("\n"))]).await
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
    env_script("operator-up.sh", &vars)
        .await
        .with_context(|| format!("operator process {index}"))
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
        let script = crate::tests_dir().join("env/operator-up.sh");
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

#[cfg(test)]
mod untar_tests {
    use super::untar;

    /// A tar.gz of `(name, entry type)` entries, names written raw (the tar crate's builder
    /// refuses some of these).
    fn archive(entries: &[(&str, tar::EntryType)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        for (name, kind) in entries {
            let mut header = tar::Header::new_gnu();
            header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            header.set_entry_type(*kind);
            header.set_size(if kind.is_file() { 1 } else { 0 });
            header.set_mode(0o644);
            header.set_cksum();
            let data: &[u8] = if kind.is_file() { b"x" } else { b"" };
            builder.append(&header, data).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn every_gzip_member_is_read() {
        let mut first = files(&["b/summary.md"]);
        // The first member without the end-of-archive marker, as the operator writes it.
        let mut tar = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&first[..]), &mut tar)
            .unwrap();
        tar.truncate(tar.len() - 1024);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        first = gz.finish().unwrap();
        first.extend(files(&["b/logs/velero.log"]));
        let read = untar(&first).unwrap();
        assert_eq!(
            read.keys().collect::<Vec<_>>(),
            ["b/logs/velero.log", "b/summary.md"]
        );
    }

    fn files(names: &[&str]) -> Vec<u8> {
        let entries: Vec<_> = names
            .iter()
            .map(|n| (*n, tar::EntryType::Regular))
            .collect();
        archive(&entries)
    }

    #[test]
    fn a_well_formed_bundle_is_read() {
        let read = untar(&files(&["b/summary.md", "b/logs/velero/p/velero.log"])).unwrap();
        assert_eq!(
            read.keys().collect::<Vec<_>>(),
            ["b/logs/velero/p/velero.log", "b/summary.md"]
        );
    }

    #[test]
    fn unsafe_names_are_refused() {
        for names in [
            &["/b/abs"][..],
            &["b/../../etc/passwd"],
            &["b/./x"],
            &["b//x"],
            &["b/x/"],
            &["b\\..\\x"],
            &["b/x\ty"],
            &["toplevel"],
            &["b/x", "c/y"],
            &["b/x", "b/x"],
            &["b/x", "b/X"],
            &["b/x", "b/x/y"],
            &["b/x/y", "b/x"],
        ] {
            assert!(untar(&files(names)).is_err(), "{names:?} accepted");
        }
    }

    #[test]
    fn links_devices_and_folders_are_refused() {
        for kind in [
            tar::EntryType::Symlink,
            tar::EntryType::Link,
            tar::EntryType::Char,
            tar::EntryType::Block,
            tar::EntryType::Fifo,
            tar::EntryType::Directory,
        ] {
            let bytes = archive(&[("b/ok", tar::EntryType::Regular), ("b/x", kind)]);
            assert!(untar(&bytes).is_err(), "{kind:?} accepted");
        }
    }
}

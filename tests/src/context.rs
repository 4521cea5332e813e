//! What an end-to-end test starts from ([`TestCtx`]: the environment, a client of it, the
//! [`Cleanup`] guard) and what keeps it apart from the others: names no other test uses and
//! namespaces of its own.

use std::sync::atomic::AtomicU32;

use anyhow::Result;
use k8s_openapi::api::core::v1::Namespace;
use kube::{Api, Client, api::PostParams};

use crate::{cleanup::Cleanup, env::Env};

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

/// A name no other test (nor an earlier run) uses: `<prefix>-<pid>-<counter>-<nanos>`, each
/// part in hex of a fixed width. Fixed, because a name's length must not change from run to
/// run: s3s-fs names an upload's attributes file after the base64 of bucket and key, which the
/// 255-byte file name limit caps at about 126 key bytes (S3 takes 1,024), and an automatic
/// bundle's archive key carries its Restore's name twice over. A pid with one more digit once
/// turned a passing test into a failing one.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{:04x}-{:03x}-{:04x}",
        std::process::id() & 0xffff,
        n & 0xfff,
        nanos & 0xffff
    )
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

//! Every version of the test namespace's DebugBundles, as a watch delivers them, kept from
//! before the bundle under test is applied: a state that lasts a moment (a reason said while
//! waiting, a phase between two writes) is seen even when a poll would fall on either side.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use kube::{
    Api, Client, ResourceExt,
    runtime::{WatchStreamExt, watcher},
};
use tokio::{sync::watch, task::JoinHandle};
use velero_debug_crd::DebugBundle;

use crate::env::Env;

pub struct BundleWatch {
    seen: Arc<Mutex<Vec<DebugBundle>>>,
    changed: watch::Receiver<usize>,
    task: JoinHandle<()>,
}

impl BundleWatch {
    /// Starts watching; returns once the watch has listed, so every later write is seen.
    pub async fn start(env: &Env, client: &Client) -> Result<BundleWatch> {
        let api: Api<DebugBundle> = Api::namespaced(client.clone(), &env.namespace);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (tx, changed) = watch::channel(0usize);
        let (listed_tx, listed) = tokio::sync::oneshot::channel();
        let task = tokio::spawn({
            let seen = seen.clone();
            async move {
                let mut listed_tx = Some(listed_tx);
                let mut events =
                    std::pin::pin!(watcher(api, watcher::Config::default()).default_backoff());
                while let Some(event) = events.next().await {
                    match event {
                        Ok(watcher::Event::Apply(b) | watcher::Event::InitApply(b)) => {
                            seen.lock().unwrap_or_else(PoisonError::into_inner).push(b);
                            tx.send_modify(|n| *n += 1);
                        }
                        Ok(watcher::Event::InitDone) => {
                            if let Some(listed) = listed_tx.take() {
                                let _ = listed.send(());
                            }
                        }
                        _ => {}
                    }
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(60), listed)
            .await
            .context("the bundle watch did not list in 60 s")?
            .context("the bundle watch ended")?;
        Ok(BundleWatch {
            seen,
            changed,
            task,
        })
    }

    /// The first version of bundle `name` seen (since the watch started) for which `holds` is
    /// true; waits up to `timeout` for one.
    pub async fn first_seen(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        holds: impl Fn(&DebugBundle) -> bool,
    ) -> Result<DebugBundle> {
        let mut changed = self.changed.clone();
        let find = || {
            self.seen
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .find(|b| b.name_any() == name && holds(b))
                .cloned()
        };
        let wait = async {
            loop {
                if let Some(found) = find() {
                    return Ok(found);
                }
                changed.changed().await?;
            }
        };
        match tokio::time::timeout(timeout, wait).await {
            Ok(found) => found,
            Err(_) => bail!("{name}: not seen {what} within {timeout:?}"),
        }
    }
}

impl Drop for BundleWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

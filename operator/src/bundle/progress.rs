//! Progress in status (the collection step under way, bytes uploaded), written by a task of
//! its own under its own field manager, so a slow API server never slows the work down: only
//! the latest value is written, each write replacing the one before. Nothing is written once
//! the term is over (see `Context::still_leading`).

use kube::Api;
use tokio::{sync::watch, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use velero_debug_crd::DebugBundle;

use crate::kubernetes;

const PROGRESS_MANAGER: &str = "velero-debug-operator-progress";

pub(crate) struct Reporter {
    latest: watch::Sender<u64>,
    task: JoinHandle<()>,
}

impl Reporter {
    /// `progress` turns a count (steps done, bytes sent) into the whole `status.progress`;
    /// `term` is the context's `shutdown`.
    pub fn start(
        api: Api<DebugBundle>,
        name: String,
        term: CancellationToken,
        progress: impl Fn(u64) -> serde_json::Value + Send + 'static,
    ) -> Self {
        let (latest, mut rx) = watch::channel(0u64);
        let task = tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                let count = *rx.borrow_and_update();
                if term.is_cancelled() {
                    return;
                }
                let status = serde_json::json!({"progress": progress(count)});
                // Progress is a hint: a lost write is made good by the next one.
                let _ = kubernetes::apply_status(&api, &name, PROGRESS_MANAGER, &status).await;
            }
        });
        Self { latest, task }
    }

    pub fn report(&self, count: u64) {
        let _ = self.latest.send(count);
    }

    /// Waits for the last report to be written.
    pub async fn stop(self) {
        drop(self.latest);
        let _ = self.task.await;
    }
}

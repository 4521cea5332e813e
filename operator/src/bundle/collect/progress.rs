//! Collection progress in status, written by a task of its own under its own field manager,
//! so a slow API server never slows collection down.

use kube::Api;
use tokio::{sync::watch, task::JoinHandle};
use velero_debug_crd::DebugBundle;

use crate::kubernetes;

const PROGRESS_MANAGER: &str = "velero-debug-operator-progress";

pub(super) struct Reporter {
    parts_done: watch::Sender<usize>,
    task: JoinHandle<()>,
}

impl Reporter {
    pub fn start(api: Api<DebugBundle>, name: String, total: i32) -> Self {
        let (parts_done, mut rx) = watch::channel(0usize);
        let task = tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                let done = *rx.borrow_and_update();
                let status = serde_json::json!({
                    "progress": {"itemsDone": done, "itemsTotal": total}
                });
                // Progress is a hint: a lost write is made good by the next one.
                let _ = kubernetes::apply_status(&api, &name, PROGRESS_MANAGER, &status).await;
            }
        });
        Self { parts_done, task }
    }

    pub fn report(&self, done: usize) {
        let _ = self.parts_done.send(done);
    }

    /// Waits for the last report to be written.
    pub async fn stop(self) {
        drop(self.parts_done);
        let _ = self.task.await;
    }
}

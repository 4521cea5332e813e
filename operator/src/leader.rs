//! Leader election on a coordination.k8s.io Lease (kube-lease-manager): only the holder runs
//! the controllers, so two replicas never collect the same bundle twice. Losing the lease
//! cancels everything in flight, and the process exits for its replacement to stand by.

use kube::Client;
use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tokio::{sync::watch, task::JoinHandle};
use tokio_util::sync::CancellationToken;

/// How long a lease is valid after its last renewal; a killed leader is replaced after this.
pub const LEASE_SECONDS: u64 = 15;
/// Renewed this long before it would expire (also the clock skew tolerated).
pub const GRACE_SECONDS: u64 = 5;

pub struct Leadership {
    /// Keeps the lease manager running; dropping it releases the lease.
    state: watch::Receiver<bool>,
    task: JoinHandle<Result<kube_lease_manager::LeaseManager, LeaseManagerError>>,
}

impl Leadership {
    /// Resolves when the lease is lost.
    pub async fn lost(&mut self) {
        loop {
            if !*self.state.borrow_and_update() {
                return;
            }
            if self.state.changed().await.is_err() {
                return;
            }
        }
    }

    /// Gives the lease up, so a standby takes over at once instead of after it expired.
    pub async fn release(self) {
        drop(self.state);
        let _ = self.task.await;
    }
}

/// Waits until this process holds the lease `name` in `namespace`; None when `shutdown` came
/// first.
pub async fn acquire(
    client: Client,
    namespace: &str,
    name: &str,
    identity: &str,
    shutdown: &CancellationToken,
) -> Result<Option<Leadership>, LeaseManagerError> {
    let manager = LeaseManagerBuilder::new(client, name)
        .with_namespace(namespace)
        .with_identity(identity)
        .with_duration(LEASE_SECONDS)
        .with_grace(GRACE_SECONDS)
        .build()
        .await?;
    let (mut state, task) = manager.watch().await;
    tracing::info!(lease = name, identity, "waiting for the leader lease");
    loop {
        if *state.borrow_and_update() {
            tracing::info!(lease = name, identity, "leading");
            return Ok(Some(Leadership { state, task }));
        }
        tokio::select! {
            changed = state.changed() => {
                if changed.is_err() {
                    // The manager stopped: its error says why.
                    return match task.await {
                        Ok(Err(e)) => Err(e),
                        _ => Ok(None),
                    };
                }
            }
            _ = shutdown.cancelled() => return Ok(None),
        }
    }
}

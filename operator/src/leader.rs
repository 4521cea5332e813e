//! Leader election on a coordination.k8s.io Lease (kube-lease-manager): only the holder runs
//! the controllers, so two replicas never collect the same bundle twice. A process leads in
//! terms ([`Terms`]): it waits for the lease, leads until the term is over, and then waits
//! again; the term's end cancels everything in flight, and nothing is written after it.
//!
//! The term is over when kube-lease-manager reports the lease lost, or when this process's own
//! watchdog cannot confirm it still holds the lease (the fence). kube-lease-manager alone is
//! not enough: while the API server is unreachable its watch loop logs errors and backs off but
//! never reports the lease lost, so a leader cut off from the API server would go on acting
//! while a standby takes the expired lease. The watchdog reads the Lease every
//! [`CHECK_EVERY`], and ends the term [`GRACE_SECONDS`] before the lease, as last seen held by
//! this process, expires: before any standby may take it.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};
use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tokio::{
    sync::watch,
    task::JoinHandle,
    time::{Instant, sleep, sleep_until, timeout},
};
use tokio_util::sync::CancellationToken;

use crate::{
    config::Config, context::Context, install_record::InstallRecord, metrics::Metrics, own_crd,
    redact::Redactor, request_tally::RequestTally, storage::location,
};

/// How long a lease is valid after its last renewal; a killed leader is replaced after this.
pub(crate) const LEASE_SECONDS: u64 = 15;
/// The leader stops acting this long before its lease could expire: the clock skew between
/// replicas tolerated, and time for a write already sent to land.
pub(crate) const GRACE_SECONDS: u64 = 5;
/// The lease is renewed this long after its last renewal, well before the fence
/// (`LEASE_SECONDS - GRACE_SECONDS`), so the watchdog sees each renewal in time.
const RENEW_AFTER_SECONDS: u64 = 5;
/// How often the watchdog reads the Lease.
const CHECK_EVERY: Duration = Duration::from_secs(2);
/// How long one read of the Lease may take (it never outlasts the fence either).
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// How long giving the lease up on SIGTERM may take before the process goes without.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);

/// What one read of the Lease says about this process's term.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reading {
    /// This process holds the lease: renewed at `renewed` (on this process's monotonic clock)
    /// for `duration`, and not expired.
    Held {
        renewed: Instant,
        duration: Duration,
    },
    /// Another identity holds it (or nobody: empty).
    Other(String),
    /// Held by this process but expired, or without the times to tell: no confirmation.
    Unconfirmed,
}

/// Reads `lease` for `identity` at `wall_now`, which is `mono_now` on the monotonic clock.
/// Pure, so the rules are tested without a server.
pub(crate) fn reading(
    lease: &Lease,
    identity: &str,
    wall_now: Timestamp,
    mono_now: Instant,
) -> Reading {
    let spec = lease.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.unwrap_or_default();
    if holder != identity {
        return Reading::Other(holder);
    }
    let (Some(renewed), Some(seconds)) = (spec.renew_time, spec.lease_duration_seconds) else {
        return Reading::Unconfirmed;
    };
    let duration = Duration::from_secs(seconds.max(0) as u64);
    // This process wrote renewTime with its own wall clock, so its age needs no skew allowance.
    let age = Duration::try_from(wall_now.duration_since(renewed.0)).unwrap_or(Duration::ZERO);
    if age >= duration {
        return Reading::Unconfirmed;
    }
    match mono_now.checked_sub(age) {
        Some(renewed) => Reading::Held { renewed, duration },
        None => Reading::Unconfirmed,
    }
}

/// Whether this process may still act at `now` when the lease was last confirmed held by it,
/// renewed at `confirmed`, for `lease`: until `grace` before that lease expires. The
/// confirmation is dated by the renewal it saw, not by the read: a lease no longer renewed
/// must not look fresh because the API server still answers.
pub(crate) fn term_valid(
    confirmed: Instant,
    now: Instant,
    lease: Duration,
    grace: Duration,
) -> bool {
    now < fence(confirmed, lease, grace)
}

/// The instant a term confirmed at `confirmed` ends unless confirmed again.
fn fence(confirmed: Instant, lease: Duration, grace: Duration) -> Instant {
    confirmed + lease.saturating_sub(grace)
}

/// Why a term ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Loss {
    #[error("kube-lease-manager reports the lease lost")]
    Reported,
    #[error("the Lease is held by {0:?}")]
    TakenBy(String),
    #[error("the Lease is held by nobody (released)")]
    Released,
    #[error("the Lease was deleted")]
    Deleted,
    #[error("the lease could not be confirmed before the fence (API server unreachable?)")]
    Unconfirmed,
}

/// The watchdog of one term: reads the Lease and knows until when the term may last.
struct Watchdog {
    api: Api<Lease>,
    name: String,
    identity: String,
    /// The term ends at this instant unless the lease is confirmed again.
    fence: Instant,
}

impl Watchdog {
    /// One read of the Lease: Ok(true) when it confirms the term (the fence moves on),
    /// Ok(false) when it does not tell, Err when the lease is not this process's.
    async fn check(&mut self) -> Result<bool, Loss> {
        let lease = match timeout(CHECK_TIMEOUT, self.api.get_opt(&self.name)).await {
            Ok(Ok(Some(lease))) => lease,
            Ok(Ok(None)) => return Err(Loss::Deleted),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "the Lease could not be read");
                return Ok(false);
            }
            Err(_) => {
                tracing::debug!("reading the Lease timed out");
                return Ok(false);
            }
        };
        let grace = Duration::from_secs(GRACE_SECONDS);
        match reading(&lease, &self.identity, Timestamp::now(), Instant::now()) {
            Reading::Held { renewed, duration } => {
                self.fence = self.fence.max(fence(renewed, duration, grace));
                Ok(term_valid(renewed, Instant::now(), duration, grace))
            }
            Reading::Other(holder) if holder.is_empty() => Err(Loss::Released),
            Reading::Other(holder) => Err(Loss::TakenBy(holder)),
            Reading::Unconfirmed => Ok(false),
        }
    }

    /// Resolves when the term is over: the lease is another's, or was not confirmed in time.
    async fn watch(&mut self) -> Loss {
        loop {
            // A read still under way at the fence does not hold the term open.
            let fence = self.fence;
            tokio::select! {
                checked = self.check() => if let Err(loss) = checked {
                    return loss;
                },
                _ = sleep_until(fence) => return Loss::Unconfirmed,
            }
            let fence = self.fence;
            tokio::select! {
                _ = sleep(CHECK_EVERY) => {}
                _ = sleep_until(fence) => return Loss::Unconfirmed,
            }
        }
    }
}

/// A term: this process holds the lease.
pub(crate) struct Leadership {
    /// kube-lease-manager's view; dropping it makes the manager release the lease.
    state: watch::Receiver<bool>,
    task: JoinHandle<Result<kube_lease_manager::LeaseManager, LeaseManagerError>>,
    watchdog: Watchdog,
}

impl Leadership {
    /// Resolves when the term is over, saying why.
    pub async fn lost(&mut self) -> Loss {
        tokio::select! {
            _ = reported_lost(&mut self.state) => Loss::Reported,
            loss = self.watchdog.watch() => loss,
        }
    }

    /// Gives the lease up (SIGTERM while leading), so a standby takes over at once instead of
    /// after it expired; an API server that does not answer in time is gone without.
    pub async fn release(self) {
        let Self { state, task, .. } = self;
        drop(state);
        let abort = task.abort_handle();
        if timeout(RELEASE_TIMEOUT, task).await.is_err() {
            tracing::warn!("the lease could not be released in time; it expires instead");
            abort.abort();
        }
    }

    /// Stops renewing without touching the Lease: after a loss it may be another's, and
    /// kube-lease-manager's release, from a stale view, could clear the new holder.
    pub async fn abandon(self) {
        let Self { state, task, .. } = self;
        // Aborted before the channel closes, so the manager never runs its release.
        task.abort();
        let _ = task.await;
        drop(state);
    }
}

/// Resolves when kube-lease-manager says the lease is not held (or stopped).
async fn reported_lost(state: &mut watch::Receiver<bool>) {
    loop {
        if !*state.borrow_and_update() {
            return;
        }
        if state.changed().await.is_err() {
            return;
        }
    }
}

/// Why waiting for the lease failed (the wait is started over).
#[derive(Debug, thiserror::Error)]
pub(crate) enum AcquireError {
    #[error(transparent)]
    Manager(#[from] LeaseManagerError),
    #[error("the lease manager stopped: {0}")]
    Stopped(String),
}

/// Waits until this process holds the lease `name` in `namespace` and the watchdog confirms
/// it; None when `shutdown` came first.
pub(crate) async fn acquire(
    client: Client,
    namespace: &str,
    name: &str,
    identity: &str,
    shutdown: &CancellationToken,
) -> Result<Option<Leadership>, AcquireError> {
    let manager = LeaseManagerBuilder::new(client.clone(), name)
        .with_namespace(namespace)
        .with_identity(identity)
        .with_duration(LEASE_SECONDS)
        // kube-lease-manager renews `grace` before expiry.
        .with_grace(LEASE_SECONDS - RENEW_AFTER_SECONDS)
        .build()
        .await?;
    let (mut state, task) = manager.watch().await;
    let mut watchdog = Watchdog {
        api: Api::namespaced(client, namespace),
        name: name.to_string(),
        identity: identity.to_string(),
        fence: Instant::now(),
    };
    tracing::info!(lease = name, identity, "waiting for the leader lease");
    loop {
        let held = *state.borrow_and_update();
        if held {
            // Not before the watchdog dated the lease: the term needs a fence from the start.
            if let Ok(true) = watchdog.check().await {
                tracing::info!(lease = name, identity, "leading");
                return Ok(Some(Leadership {
                    state,
                    task,
                    watchdog,
                }));
            }
        }
        let recheck = async {
            if held {
                sleep(CHECK_EVERY).await
            } else {
                std::future::pending().await
            }
        };
        tokio::select! {
            changed = state.changed() => {
                if changed.is_err() {
                    // The manager stopped: its error says why.
                    return Err(match task.await {
                        Ok(Err(e)) => e.into(),
                        Ok(Ok(_)) => AcquireError::Stopped("without an error".into()),
                        Err(e) => AcquireError::Stopped(e.to_string()),
                    });
                }
            }
            _ = recheck => {}
            _ = shutdown.cancelled() => return Ok(None),
        }
    }
}

// --------------------------------------------------------------------------- terms

/// What every term of the controllers starts from.
pub(crate) struct Terms {
    pub client: Client,
    pub log_client: Client,
    pub uncounted_client: Client,
    pub api_timeout: Duration,
    pub config: Config,
    pub redactor: Arc<Redactor>,
    pub requests: Arc<RequestTally>,
    pub metrics: Arc<Metrics>,
    pub namespace: Option<String>,
    /// The cluster mark the last term read (see `own_crd::term_mark`).
    pub cluster_mark: Mutex<String>,
    /// This process in the install record (install_record.rs), and whether a term registered
    /// it there.
    pub writer: String,
    pub registered: std::sync::atomic::AtomicBool,
}

impl Terms {
    /// This term's mark and install record: the writer registered in the record of the
    /// namespace served. Unregistered (the record missing or unwritable, and no earlier term
    /// registered it), the term marks nothing and collects nothing, as without a cluster mark.
    async fn install(&self, cluster: &str) -> (String, Option<InstallRecord>) {
        use std::sync::atomic::Ordering;
        let Some(namespace) = self.namespace.as_deref() else {
            // No garbage collector serves all namespaces (see `controllers`).
            return (location::install_mark(cluster, None, &self.writer), None);
        };
        if cluster.is_empty() {
            return (String::new(), None);
        }
        let record = InstallRecord::new(self.client.clone(), namespace, self.api_timeout);
        match record.register(&self.writer).await {
            Ok(()) => self.registered.store(true, Ordering::Relaxed),
            Err(e) if self.registered.load(Ordering::Relaxed) => {
                tracing::info!(error = %e, writer = %self.writer, "the install record could not be refreshed; this process is registered already")
            }
            Err(e) => {
                tracing::warn!(error = %e, "the archives of this term get no mark and nothing is garbage-collected");
                return (String::new(), None);
            }
        }
        let mark = location::install_mark(cluster, Some(namespace), &self.writer);
        (mark, Some(record))
    }

    /// Leads one term (after the lease, with an election) and runs the controllers until it
    /// ends; None when SIGTERM comes before the term starts.
    pub async fn serve<F: Future<Output = ()>>(
        &self,
        election: Option<&Election>,
        shutdown: &CancellationToken,
        controllers: impl FnOnce(Arc<Context>) -> F,
    ) -> Option<TermEnd> {
        // Read before the lease: once it is held, the term's fence is running.
        let read = tokio::select! {
            mark = own_crd::cluster_mark(self.client.clone(), self.api_timeout) => mark,
            _ = shutdown.cancelled() => return None,
        };
        let cluster_mark = {
            let mut known = self
                .cluster_mark
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            own_crd::term_mark(read, &mut known)
        };
        let install = tokio::select! {
            install = self.install(&cluster_mark) => install,
            _ = shutdown.cancelled() => return None,
        };
        let leadership = match election {
            Some(election) => Some(election.acquire(self.client.clone(), shutdown).await?),
            None => None,
        };
        let term = shutdown.child_token();
        let ctx = Arc::new(
            Context::new(
                self.client.clone(),
                self.config.clone(),
                self.redactor.clone(),
                self.requests.clone(),
                self.metrics.clone(),
                term.clone(),
                install,
            )
            .with_log_client(self.log_client.clone())
            .with_uncounted_client(self.uncounted_client.clone()),
        );
        self.metrics.leader.set(1);
        let controllers = controllers(ctx);
        let end = match leadership {
            None => serve_term(controllers, std::future::pending(), &term).await,
            Some(mut l) => {
                let end = serve_term(controllers, l.lost(), &term).await;
                match end {
                    TermEnd::Stopped => l.release().await,
                    TermEnd::Lost(_) => l.abandon().await,
                }
                end
            }
        };
        self.metrics.leader.set(0);
        Some(end)
    }
}

/// Leader election's settings.
pub(crate) struct Election {
    pub namespace: String,
    pub lease: String,
    pub identity: String,
}

impl Election {
    /// Waits for the lease (a standby stays here); None on SIGTERM. An error (the API server
    /// unreachable, say) is logged and the wait starts over: the process never exits for it.
    async fn acquire(&self, client: Client, shutdown: &CancellationToken) -> Option<Leadership> {
        loop {
            let acquire = acquire(
                client.clone(),
                &self.namespace,
                &self.lease,
                &self.identity,
                shutdown,
            );
            // Setting the lease manager up may wait on an unreachable API server.
            let acquired = tokio::select! {
                acquired = acquire => acquired,
                _ = shutdown.cancelled() => return None,
            };
            match acquired {
                Ok(leadership) => return leadership,
                Err(e) => {
                    tracing::error!(error = %e, lease = %self.lease, "waiting for the leader lease failed; trying again");
                    tokio::select! {
                        _ = tokio::time::sleep(ELECTION_RETRY) => {}
                        _ = shutdown.cancelled() => return None,
                    }
                }
            }
        }
    }
}

/// How long after a failed wait for the lease the next starts.
const ELECTION_RETRY: Duration = Duration::from_secs(5);

/// How a term ended.
#[derive(Debug, PartialEq)]
pub(crate) enum TermEnd {
    /// SIGTERM (the controllers stopped): the process exits.
    Stopped,
    /// The lease was lost: the process waits to lead again.
    Lost(Loss),
}

/// Runs `controllers` (which stop once `term` is cancelled) until `lost` resolves or the
/// process stops (`term`'s parent cancelled); returns once they have stopped (after a lost
/// lease, at most [`STOP_LIMIT`] later).
async fn serve_term(
    controllers: impl Future<Output = ()>,
    lost: impl Future<Output = Loss>,
    term: &CancellationToken,
) -> TermEnd {
    tokio::pin!(controllers);
    tokio::select! {
        _ = &mut controllers => TermEnd::Stopped,
        loss = lost => {
            tracing::error!(%loss, "the leader lease is lost; stopping everything in flight");
            term.cancel();
            if tokio::time::timeout(STOP_LIMIT, controllers).await.is_err() {
                tracing::warn!(limit = ?STOP_LIMIT, "what was in flight did not stop in time; it is dropped");
            }
            TermEnd::Lost(loss)
        }
    }
}

/// How long the controllers of a term whose lease was lost may take to stop before what they
/// still run is dropped: the process must stand by, ready to lead again, and write nothing
/// more (every step checks the term, but a store or API server that does not answer could
/// hold one for minutes).
const STOP_LIMIT: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    const ME: &str = "operator-0";

    fn lease(holder: &str, renewed: &str, seconds: i32) -> Lease {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "velero-debug-operator", "namespace": "velero"},
            "spec": {"holderIdentity": holder, "renewTime": renewed, "leaseDurationSeconds": seconds},
        }))
        .unwrap()
    }

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_term_lasts_until_grace_before_the_confirmed_lease_expires() {
        let t0 = Instant::now();
        let lease = Duration::from_secs(LEASE_SECONDS);
        let grace = Duration::from_secs(GRACE_SECONDS);
        assert!(term_valid(t0, t0, lease, grace));
        assert!(term_valid(
            t0,
            t0 + Duration::from_millis(9_999),
            lease,
            grace
        ));
        assert!(!term_valid(t0, t0 + Duration::from_secs(10), lease, grace));
        assert!(!term_valid(t0, t0 + Duration::from_secs(60), lease, grace));
        // A lease no longer than the grace never lets a term act.
        assert!(!term_valid(t0, t0, grace, grace));
    }

    #[test]
    fn renewals_come_before_the_fence_with_reads_to_spare() {
        let fence_after = LEASE_SECONDS - GRACE_SECONDS;
        assert!(RENEW_AFTER_SECONDS < fence_after);
        // At least two reads between a renewal and the fence it moves.
        let window = Duration::from_secs(fence_after - RENEW_AFTER_SECONDS);
        assert!(window >= 2 * CHECK_EVERY, "{window:?}");
    }

    #[test]
    fn a_read_is_dated_by_the_renewal_it_shows() {
        let mono = Instant::now() + Duration::from_secs(3600);
        let now = at("2026-11-23T12:00:10Z");
        let read = reading(&lease(ME, "2026-11-23T12:00:04Z", 15), ME, now, mono);
        assert_eq!(
            read,
            Reading::Held {
                renewed: mono - Duration::from_secs(6),
                duration: Duration::from_secs(15)
            }
        );
        // Renewed "in the future" (clock steps): dated now, never later.
        let read = reading(&lease(ME, "2026-11-23T12:00:12Z", 15), ME, now, mono);
        assert!(matches!(read, Reading::Held { renewed, .. } if renewed == mono));
    }

    #[test]
    fn an_expired_or_incomplete_lease_confirms_nothing() {
        let mono = Instant::now() + Duration::from_secs(3600);
        let now = at("2026-11-23T12:00:30Z");
        let expired = lease(ME, "2026-11-23T12:00:15Z", 15);
        assert_eq!(reading(&expired, ME, now, mono), Reading::Unconfirmed);
        let mut untimed = lease(ME, "2026-11-23T12:00:29Z", 15);
        untimed.spec.as_mut().unwrap().renew_time = None;
        assert_eq!(reading(&untimed, ME, now, mono), Reading::Unconfirmed);
    }

    #[test]
    fn a_lease_held_by_another_or_nobody_ends_the_term() {
        let mono = Instant::now();
        let now = at("2026-11-23T12:00:10Z");
        let other = lease("operator-1", "2026-11-23T12:00:09Z", 20);
        assert_eq!(
            reading(&other, ME, now, mono),
            Reading::Other("operator-1".into())
        );
        let mut released = other.clone();
        released.spec = None;
        assert_eq!(
            reading(&released, ME, now, mono),
            Reading::Other(String::new())
        );
    }

    /// A watchdog reading through `client`, its term fenced `fence_in` from now.
    fn watchdog(client: Client, fence_in: Duration) -> Watchdog {
        Watchdog {
            api: Api::namespaced(client, "velero"),
            name: "velero-debug-operator".into(),
            identity: ME.into(),
            fence: Instant::now() + fence_in,
        }
    }

    type Handle = tower_test::mock::Handle<
        http::Request<kube::client::Body>,
        http::Response<kube::client::Body>,
    >;

    fn mock_client() -> (Client, Handle) {
        let (service, handle) = tower_test::mock::pair();
        (Client::new(service, "default"), handle)
    }

    #[tokio::test]
    async fn the_watchdog_ends_the_term_when_another_holds_the_lease() {
        let (client, mut handle) = mock_client();
        let mut dog = watchdog(client, Duration::from_secs(10));
        let answer = async {
            let (request, reply) = handle.next_request().await.expect("a read of the Lease");
            assert_eq!(
                request.uri().path(),
                "/apis/coordination.k8s.io/v1/namespaces/velero/leases/velero-debug-operator"
            );
            let taken = lease("operator-1", &Timestamp::now().to_string(), 20);
            let body = serde_json::to_vec(&taken).unwrap();
            reply.send_response(http::Response::new(kube::client::Body::from(body)));
        };
        let (loss, ()) = tokio::join!(dog.watch(), answer);
        assert_eq!(loss, Loss::TakenBy("operator-1".into()));
    }

    #[tokio::test]
    async fn a_read_showing_a_fresh_renewal_moves_the_fence_on() {
        let (client, mut handle) = mock_client();
        let mut dog = watchdog(client, Duration::ZERO);
        let answer = async {
            let (_, reply) = handle.next_request().await.expect("a read of the Lease");
            let renewed = lease(ME, &Timestamp::now().to_string(), 15);
            let body = serde_json::to_vec(&renewed).unwrap();
            reply.send_response(http::Response::new(kube::client::Body::from(body)));
        };
        let (checked, ()) = tokio::join!(dog.check(), answer);
        assert_eq!(checked, Ok(true));
        // Renewed just now: the term lasts until grace before the 15 s lease expires.
        assert!(dog.fence > Instant::now() + Duration::from_secs(9));
        assert!(dog.fence <= Instant::now() + Duration::from_secs(10));
    }

    #[tokio::test]
    async fn an_api_server_that_does_not_answer_ends_the_term_at_the_fence() {
        // The read is never answered (nor refused): the fence alone ends the term.
        let (client, _unanswered) = mock_client();
        let mut dog = watchdog(client, Duration::from_millis(50));
        let loss = timeout(Duration::from_secs(5), dog.watch()).await;
        assert_eq!(loss, Ok(Loss::Unconfirmed));
    }

    // Terms.

    /// Controllers as `controllers` runs them: until the term ends; `stopped` says they did.
    async fn controllers_of(term: CancellationToken, stopped: Arc<AtomicBool>) {
        term.cancelled().await;
        // Stopping takes a while (a reconcile winding down): the term waits for it.
        tokio::task::yield_now().await;
        stopped.store(true, Ordering::SeqCst);
    }

    #[tokio::test]
    async fn a_lost_lease_ends_the_term_once_its_controllers_stopped_and_not_the_process() {
        let process = CancellationToken::new();
        let term = process.child_token();
        let stopped = Arc::new(AtomicBool::new(false));
        let taken = Loss::TakenBy("operator-1".into());
        let end = serve_term(
            controllers_of(term.clone(), stopped.clone()),
            std::future::ready(taken.clone()),
            &term,
        )
        .await;
        assert_eq!(end, TermEnd::Lost(taken));
        assert!(stopped.load(Ordering::SeqCst));
        assert!(term.is_cancelled());
        assert!(
            !process.is_cancelled(),
            "the process goes on, waiting for the lease"
        );
        assert!(
            !process.child_token().is_cancelled(),
            "the next term starts afresh"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn controllers_that_do_not_stop_after_a_lost_lease_are_dropped_after_the_limit() {
        let term = CancellationToken::new();
        let taken = Loss::TakenBy("operator-1".into());
        let started = tokio::time::Instant::now();
        let end = serve_term(
            std::future::pending::<()>(),
            std::future::ready(taken.clone()),
            &term,
        )
        .await;
        assert_eq!(end, TermEnd::Lost(taken));
        assert_eq!(started.elapsed(), STOP_LIMIT);
    }

    #[tokio::test]
    async fn sigterm_ends_the_term_and_the_process() {
        let process = CancellationToken::new();
        let term = process.child_token();
        let stopped = Arc::new(AtomicBool::new(false));
        process.cancel();
        let end = serve_term(
            controllers_of(term.clone(), stopped.clone()),
            std::future::pending(),
            &term,
        )
        .await;
        assert_eq!(end, TermEnd::Stopped);
        assert!(stopped.load(Ordering::SeqCst));
    }
}

//! Step 1, queue: waits for one of the operator's collection slots; the bundle shows
//! Pending/Queued meanwhile. Only the spec's names are known here: what the bundle names is
//! read once it holds a slot, so a queued bundle holds nothing but its reconcile's future.

use crate::metrics::InFlight;

use super::{
    run::{Run, Stored, WriteError},
    status,
};

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    /// The run holds a slot until it ends.
    Held,
    /// Deleted while it waited: the finalizer's cleanup runs next, nothing to collect.
    BundleDeleted,
    /// The run started from a copy older than the stored bundle: nothing is collected from
    /// it, the newer copy's reconcile decides (the slot is given back).
    StaleCopy,
}

pub(crate) async fn take_slot(run: &mut Run<'_>) -> Result<Slot, WriteError> {
    let slots = run.ctx.collect_slots.clone();
    if let Ok(slot) = slots.clone().try_acquire_owned() {
        run.hold(slot);
        return still_wanted(run).await;
    }
    // A bundle waiting for its target (which it looks for each time it holds a slot) keeps
    // saying so: flipping between the two reasons would wake its own watch on every pass.
    if !status::is_waiting_for_target(run.status()) {
        let concurrency = run.ctx.config.concurrency;
        run.write(|t| t.queued(concurrency)).await?;
    }
    let waiting = InFlight::new(&run.ctx.metrics.waiting);
    let slot = slots
        .acquire_owned()
        .await
        .expect("the semaphore is never closed");
    drop(waiting);
    run.hold(slot);
    still_wanted(run).await
}

/// Once a slot is held, before anything is read for the bundle: it may have been deleted
/// while it waited, or completed by the pass before this one (whose last writes the watch's
/// copy had not shown yet).
async fn still_wanted(run: &Run<'_>) -> Result<Slot, WriteError> {
    Ok(match run.stored().await? {
        Stored::AsSeen => Slot::Held,
        Stored::Newer => Slot::StaleCopy,
        Stored::Deleting => Slot::BundleDeleted,
    })
}

//! Step 1, queue: waits for one of the operator's collection slots; the bundle shows
//! Pending/Queued meanwhile. Only the spec's names are known here: what the bundle names is
//! read once it holds a slot, so a queued bundle holds nothing but its reconcile's future.

use super::{
    run::{Run, WriteError},
    status,
};

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    /// The run holds a slot until it ends.
    Held,
    /// Deleted while it waited: the finalizer's cleanup runs next, nothing to collect.
    BundleDeleted,
}

pub(crate) async fn take_slot(run: &mut Run<'_>) -> Result<Slot, WriteError> {
    let slots = run.ctx.collect_slots.clone();
    if let Ok(slot) = slots.clone().try_acquire_owned() {
        run.hold(slot);
        return Ok(Slot::Held);
    }
    // A bundle waiting for its target (which it looks for each time it holds a slot) keeps
    // saying so: flipping between the two reasons would wake its own watch on every pass.
    if !status::is_waiting_for_target(run.status()) {
        let concurrency = run.ctx.config.concurrency;
        run.write(|t| t.queued(concurrency)).await?;
    }
    let slot = slots
        .acquire_owned()
        .await
        .expect("the semaphore is never closed");
    run.hold(slot);
    let name = run.bundle.metadata.name.clone().unwrap_or_default();
    match run.api().get_opt(&name).await? {
        Some(b) if b.metadata.deletion_timestamp.is_none() => Ok(Slot::Held),
        _ => Ok(Slot::BundleDeleted),
    }
}

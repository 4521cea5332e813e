//! The bundle's content budget (MAX_BUNDLE_BYTES), taken from before bytes are written to the
//! spool folder rather than checked once a file is complete: logs are spooled by several tasks
//! at once, and a file checked after the fact could already have filled the disk.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

/// What is left of one bundle's budget, shared by every task writing for it.
#[derive(Debug, Clone)]
pub(crate) struct ContentBudget {
    remaining: Arc<AtomicU64>,
    total: u64,
}

impl ContentBudget {
    pub fn new(total: u64) -> Self {
        Self {
            remaining: Arc::new(AtomicU64::new(total)),
            total,
        }
    }

    /// The budget the bundle started with.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Takes as many of `wanted` bytes as are left (all of them or fewer); how many.
    pub fn take_up_to(&self, wanted: u64) -> u64 {
        let before = self
            .remaining
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                Some(left.saturating_sub(wanted))
            })
            .unwrap_or_else(|left| left);
        before.min(wanted)
    }

    /// Returns bytes taken and then not kept (the part of an over-long log's head that its
    /// tail replaces); never more than the budget started with.
    pub fn give_back(&self, bytes: u64) {
        let total = self.total;
        let _ = self
            .remaining
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                Some(left.saturating_add(bytes).min(total))
            });
    }

    /// Takes all `wanted` bytes when that many are left, else none (a file kept whole or
    /// not at all).
    pub fn take_all(&self, wanted: u64) -> bool {
        self.remaining
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(wanted)
            })
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_never_exceed_the_budget() {
        let budget = ContentBudget::new(1000);
        let shared = budget.clone();
        assert_eq!(budget.take_up_to(600), 600);
        assert!(!shared.take_all(600));
        assert_eq!(shared.take_up_to(600), 400);
        assert_eq!(budget.take_up_to(1), 0);
        assert!(budget.take_all(0));
        assert!(!budget.take_all(1));
        assert_eq!(budget.total(), 1000);
        budget.give_back(300);
        assert_eq!(shared.take_up_to(1000), 300);
        budget.give_back(5000);
        assert_eq!(shared.take_up_to(5000), 1000);
    }
}

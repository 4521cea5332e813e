//! The bound on stall bundles, shared by the Backup and Restore watches: at most `max` in any
//! hour. Velero's Backups and Restores have no status subresource, so whoever may create one
//! may create it already InProgress; without a bound, a flood of them would each get a bundle
//! (collected and uploaded) and fill the ledger. A stall that finds the hour's bundles spent
//! is withheld: counted (`velero_debug_stall_bundles_withheld_total`), looked at again when
//! the hour turns, and named in the next stall bundle made, so nothing is withheld silently.
//! Pure but for its lock: time is handed in.

use std::{collections::BTreeSet, sync::Mutex, time::Duration};

use jiff::Timestamp;

/// The interval the bound counts over.
pub(crate) const INTERVAL: Duration = Duration::from_secs(3600);
/// Withheld operations named at the most in one bundle: the rest are counted.
const NAMED_AT_MOST: usize = 50;
/// Withheld operations told apart at the most when counted; beyond, each stall withheld
/// counts (memory stays bounded under any flood, the count may then exceed the operations).
const COUNTED_APART: usize = 10_000;

pub(crate) struct StallBudget {
    max: u32,
    state: Mutex<Window>,
}

#[derive(Default)]
struct Window {
    /// When the current interval began; None before the first stall.
    began: Option<Timestamp>,
    granted: u32,
    /// Operations withheld since the last bundle made ("Backup ns/name"), and those beyond
    /// the ones named.
    withheld: BTreeSet<String>,
    more: BTreeSet<String>,
    overflow: usize,
}

/// What a stall may do.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Grant {
    /// Make its bundle, naming the stalls withheld before it.
    Bundle { withheld: Vec<String> },
    /// Wait: look again after this long; `first` the first time this stall is withheld.
    Withheld { retry_in: Duration, first: bool },
}

impl StallBudget {
    pub(crate) fn new(max: u32) -> Self {
        Self {
            max,
            state: Mutex::default(),
        }
    }

    /// Asks for a bundle for the stall of `operation` at `now`.
    pub(crate) fn take(&self, operation: &str, now: Timestamp) -> Grant {
        let mut window = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let began = match window.began {
            Some(b) if now.duration_since(b) < interval() => b,
            _ => {
                window.began = Some(now);
                window.granted = 0;
                now
            }
        };
        if window.granted < self.max {
            window.granted += 1;
            let mut withheld: Vec<String> = std::mem::take(&mut window.withheld)
                .into_iter()
                .filter(|w| w != operation)
                .collect();
            let more =
                std::mem::take(&mut window.more).len() + std::mem::take(&mut window.overflow);
            if more > 0 {
                withheld.push(format!("and {more} more"));
            }
            return Grant::Bundle { withheld };
        }
        let known = window.withheld.contains(operation) || window.more.contains(operation);
        if known {
            // Asked again while withheld: counted once.
        } else if window.withheld.len() < NAMED_AT_MOST {
            window.withheld.insert(operation.to_string());
        } else if window.more.len() < COUNTED_APART {
            window.more.insert(operation.to_string());
        } else {
            window.overflow += 1;
        }
        let ends = began + interval();
        let retry_in = Duration::try_from(ends.duration_since(now)).unwrap_or_default();
        Grant::Withheld {
            retry_in: retry_in.max(Duration::from_secs(1)),
            first: !known,
        }
    }
}

fn interval() -> jiff::SignedDuration {
    jiff::SignedDuration::try_from(INTERVAL).unwrap_or(jiff::SignedDuration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).unwrap()
    }

    #[test]
    fn at_most_max_bundles_an_hour_the_rest_withheld_until_it_turns() {
        let budget = StallBudget::new(2);
        for op in ["Backup velero/a", "Backup velero/b"] {
            assert!(matches!(budget.take(op, at(0)), Grant::Bundle { .. }));
        }
        assert_eq!(
            budget.take("Backup velero/c", at(600)),
            Grant::Withheld {
                retry_in: Duration::from_secs(3000),
                first: true,
            }
        );
        assert_eq!(
            budget.take("Backup velero/c", at(601)),
            Grant::Withheld {
                retry_in: Duration::from_secs(2999),
                first: false,
            }
        );
        assert!(matches!(
            budget.take("Backup velero/d", at(3599)),
            Grant::Withheld { .. }
        ));
        // The hour turned: the next stall is made and names those withheld.
        assert_eq!(
            budget.take("Restore velero/e", at(3600)),
            Grant::Bundle {
                withheld: vec!["Backup velero/c".into(), "Backup velero/d".into()]
            }
        );
        // Named once only.
        assert_eq!(
            budget.take("Restore velero/f", at(3601)),
            Grant::Bundle { withheld: vec![] }
        );
    }

    #[test]
    fn a_flood_is_named_up_to_a_bound_and_counted_beyond_it() {
        let budget = StallBudget::new(1);
        budget.take("Backup velero/first", at(0));
        for i in 0..200 {
            let op = format!("Backup velero/flood-{i:03}");
            assert!(matches!(budget.take(&op, at(1)), Grant::Withheld { .. }));
            // Asked again while withheld: neither named nor counted twice.
            budget.take(&op, at(2));
        }
        let Grant::Bundle { withheld } = budget.take("Restore velero/real", at(3601)) else {
            panic!("the turned hour grants");
        };
        assert_eq!(withheld.len(), NAMED_AT_MOST + 1);
        assert_eq!(withheld.last().map(String::as_str), Some("and 150 more"));
    }

    #[test]
    fn a_bound_of_zero_withholds_every_stall() {
        let budget = StallBudget::new(0);
        assert!(matches!(
            budget.take("Backup velero/a", at(0)),
            Grant::Withheld { .. }
        ));
    }
}

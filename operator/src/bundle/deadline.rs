//! BUNDLE_DEADLINE: the steps a bundle takes while holding a collection slot end within it,
//! so a hung bundle never keeps its slot. Past it the attempt stops where it stood and is
//! retried like any failure that may pass (failure.rs), counted against MAX_ATTEMPTS.

use std::{fmt, time::Duration};

use crate::storage::ObjectStore;

/// The steps after the queue (pipeline.rs), as a deadline names them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Step {
    #[default]
    Dereference,
    Plan,
    Preflight,
    Collect,
    Archive,
    Upload,
    Publish,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Dereference => "dereference",
            Step::Plan => "plan",
            Step::Preflight => "preflight",
            Step::Collect => "collect",
            Step::Archive => "archive",
            Step::Upload => "upload",
            Step::Publish => "publish",
        })
    }
}

/// What an attempt stopped at its deadline leaves to be undone: the step it was in, and the
/// store an upload may have begun in (aborted by pipeline.rs).
#[derive(Default)]
pub(crate) struct Attempt {
    pub step: Step,
    pub store: Option<ObjectStore>,
    /// The archive's key, once planned.
    pub key: String,
    /// When the current step started.
    step_started: Option<std::time::Instant>,
}

impl Attempt {
    /// Moves on to `step`, saying (at debug level) how long the step before took.
    pub fn enter(&mut self, step: Step) {
        self.step_done();
        self.step = step;
        self.step_started = Some(std::time::Instant::now());
    }

    /// Says (at debug level) how long the current step took.
    pub fn step_done(&self) {
        if let Some(started) = self.step_started {
            let ms = started.elapsed().as_millis() as u64;
            tracing::debug!(step = %self.step, ms, "bundle step done");
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error(
    "the attempt did not finish within the bundle deadline of {} (BUNDLE_DEADLINE) and was stopped in step {step}", duration_text(*.limit)
)]
pub(crate) struct DeadlineExceeded {
    pub limit: Duration,
    pub step: Step,
}

/// A deadline as the flag takes it: `30m`, `1h30m`, `45s`.
fn duration_text(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut text = String::new();
    if h > 0 {
        text.push_str(&format!("{h}h"));
    }
    if m > 0 {
        text.push_str(&format!("{m}m"));
    }
    if s > 0 || text.is_empty() {
        text.push_str(&format!("{s}s"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_the_deadline_and_the_step() {
        let e = DeadlineExceeded {
            limit: Duration::from_secs(30 * 60),
            step: Step::Upload,
        };
        assert_eq!(
            e.to_string(),
            "the attempt did not finish within the bundle deadline of 30m (BUNDLE_DEADLINE) and was stopped in step upload"
        );
        assert_eq!(duration_text(Duration::from_secs(5400)), "1h30m");
        assert_eq!(duration_text(Duration::from_secs(45)), "45s");
        assert_eq!(duration_text(Duration::ZERO), "0s");
    }
}

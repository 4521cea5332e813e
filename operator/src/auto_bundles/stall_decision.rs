//! Which running Backups and Restores have stopped moving. Pure: an operation's motion is a
//! digest of what Velero updates while it goes on (its phase, its progress counts, its item
//! operations' and hooks' counts, and each of its volume operations' phase and bytes done);
//! one whose motion has not changed for `stallAfter` is stalled, and gets one bundle per
//! stall: the ledger records the motion it was made for, so moving again and stalling again
//! makes a new one, and a restart does not make a second one for the same stall.

use std::time::Duration;

use jiff::Timestamp;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The phases of an operation Velero still works on (or has not picked up yet).
const RUNNING_PHASES: &[&str] = &[
    "New",
    "InProgress",
    "WaitingForPluginOperations",
    "WaitingForPluginOperationsPartiallyFailed",
    "Finalizing",
    "FinalizingPartiallyFailed",
];

/// The counts of an operation's status that move while it goes on.
const MOVING_COUNTS: &[&str] = &[
    "backupItemOperationsAttempted",
    "backupItemOperationsCompleted",
    "backupItemOperationsFailed",
    "restoreItemOperationsAttempted",
    "restoreItemOperationsCompleted",
    "restoreItemOperationsFailed",
    "volumeSnapshotsAttempted",
    "volumeSnapshotsCompleted",
    "csiVolumeSnapshotsAttempted",
    "csiVolumeSnapshotsCompleted",
    "warnings",
    "errors",
];

pub(crate) fn is_running(phase: &str) -> bool {
    RUNNING_PHASES.contains(&phase)
}

/// The motion of an operation (`op`, its JSON) and of its volume operations (PodVolume-
/// Backups/Restores, DataUploads/Downloads, in any order): equal while nothing moves.
pub(crate) fn motion(op: &Value, volumes: &[Value]) -> String {
    let status = &op["status"];
    let mut text = format!(
        "{}|{}|{}",
        status["phase"], status["progress"], status["hookStatus"]
    );
    for count in MOVING_COUNTS {
        text.push_str(&format!("|{}", status[count]));
    }
    let mut moved: Vec<String> = volumes
        .iter()
        .map(|v| {
            format!(
                "{}/{} {} {} {}",
                v["kind"],
                v["metadata"]["name"],
                v["status"]["phase"],
                v["status"]["progress"]["bytesDone"],
                v["status"]["progress"]["totalBytes"]
            )
        })
        .collect();
    moved.sort();
    for v in moved {
        text.push('\n');
        text.push_str(&v);
    }
    hex::encode(&Sha256::digest(text.as_bytes())[..8])
}

/// The counts of an operation's status that only grow while it does its work.
const PROGRESS_COUNTS: &[&str] = &[
    "backupItemOperationsCompleted",
    "restoreItemOperationsCompleted",
    "volumeSnapshotsCompleted",
    "csiVolumeSnapshotsCompleted",
];

/// How far an operation (`op`) and its volume operations have got: its phase's rank, the
/// items done, the completed counts, and each volume operation's phase rank and bytes done.
/// It grows with real work only; a status edited without progress (its warnings, a stray
/// field, the same numbers written again) leaves it as it was, so a stall is counted once per
/// operation however often such an edit restarts its stillness.
pub(crate) fn progress(op: &Value, volumes: &[Value]) -> u64 {
    let status = &op["status"];
    let count = |v: &Value| v.as_u64().unwrap_or(0);
    let phase_rank = match status["phase"].as_str().unwrap_or("") {
        "" | "New" => 0,
        "InProgress" => 1,
        p if p.starts_with("WaitingForPluginOperations") => 2,
        _ => 3,
    };
    let mut total: u64 = phase_rank;
    for done in [
        &status["progress"]["itemsBackedUp"],
        &status["progress"]["itemsRestored"],
    ] {
        total = total.saturating_add(count(done));
    }
    for name in PROGRESS_COUNTS {
        total = total.saturating_add(count(&status[name]));
    }
    for v in volumes {
        let rank = match v["status"]["phase"].as_str().unwrap_or("") {
            "" | "New" => 0,
            "Completed" | "Failed" | "Canceled" => 3,
            "InProgress" => 2,
            _ => 1,
        };
        total = total
            .saturating_add(rank)
            .saturating_add(count(&v["status"]["progress"]["bytesDone"]));
    }
    total
}

/// What the operator has seen of one running operation: its motion, and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Still {
    pub motion: String,
    pub since: Timestamp,
}

impl Still {
    /// After `motion` is seen at `now`: the same stillness, or a new one when it moved.
    pub fn observe(seen: Option<&Still>, motion: &str, now: Timestamp) -> Still {
        match seen {
            Some(still) if still.motion == motion => still.clone(),
            _ => Still {
                motion: motion.to_string(),
                since: now,
            },
        }
    }

    /// How long it has not moved, at `now`.
    pub fn for_(&self, now: Timestamp) -> Duration {
        Duration::try_from(now.duration_since(self.since)).unwrap_or_default()
    }
}

/// What to do about a running operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StallDecision {
    /// Not still for `stallAfter` yet: look again after this long.
    LookAgainIn(Duration),
    /// Stalled, and a bundle was made for this very stall (`motion` recorded).
    Bundled,
    /// Stalled, and no bundle yet for this stall.
    Bundle,
}

/// The stall the ledger recorded a bundle for: its motion, and the operation's progress then
/// (None in records older versions wrote).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bundled<'a> {
    pub motion: &'a str,
    pub progress: Option<u64>,
}

/// Whether `still` (at `progress`) is a stall worth a bundle, given the stall the ledger
/// recorded a bundle for (if any): a new stall is worth one only once the operation made
/// progress since that bundle.
pub(crate) fn decide(
    still: &Still,
    progress: u64,
    recorded: Option<Bundled<'_>>,
    stall_after: Duration,
    now: Timestamp,
) -> StallDecision {
    let still_for = still.for_(now);
    if still_for < stall_after {
        return StallDecision::LookAgainIn(stall_after - still_for);
    }
    let Some(recorded) = recorded else {
        return StallDecision::Bundle;
    };
    let same_stall = recorded.motion == still.motion;
    let no_progress = recorded.progress.is_some_and(|p| progress <= p);
    if same_stall || no_progress {
        StallDecision::Bundled
    } else {
        StallDecision::Bundle
    }
}

/// How often a running operation is looked at: often enough that a stall gets its bundle
/// within a fraction of `stallAfter` (and within a minute of it), rarely enough that the
/// lists it takes cost nothing.
pub(crate) fn look_every(stall_after: Duration) -> Duration {
    (stall_after / 4).clamp(Duration::from_secs(5), Duration::from_secs(60))
}

/// The values of [`waiting_on`].
pub(crate) const WAITING_ON: &[&str] = &[
    "volumes",
    "server",
    "plugin-operations",
    "finalizing",
    "items",
];

/// What a stalled operation waits on, coarsely, for the gauge: its volume operations while
/// any is unfinished, else what its phase says.
pub(crate) fn waiting_on(op: &Value, volumes: &[Value]) -> &'static str {
    let unfinished = volumes.iter().any(|v| {
        !matches!(
            v["status"]["phase"].as_str(),
            Some("Completed" | "Failed" | "Canceled")
        )
    });
    match op["status"]["phase"].as_str().unwrap_or("") {
        _ if unfinished => "volumes",
        "New" | "" => "server",
        p if p.starts_with("WaitingForPluginOperations") => "plugin-operations",
        p if p.starts_with("Finalizing") => "finalizing",
        _ => "items",
    }
}

/// RFC 3339 for the bundle's annotation and summary.md.
pub(crate) fn since_text(still: &Still) -> String {
    still.since.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
#[path = "stall_decision_tests.rs"]
mod tests;

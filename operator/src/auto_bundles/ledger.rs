//! The ledger of automatic bundles made: the ConfigMap [`AUTO_BUNDLE_LEDGER`] in Velero's
//! namespace, one key per target uid, valued "<bundle name> <RFC 3339 time recorded>", and
//! one key `stall.<uid>` per target that stalled while it ran, valued "<bundle name> <time>
//! <motion> <progress>" (the motion of the stall the bundle was made for and the operation's
//! progress then, stall_decision.rs). Records past the look-back are pruned, and beyond
//! [`MAX_STALL_RECORDS`] stall records or [`MAX_RECORDS`] in all the oldest are forgotten, so
//! the ConfigMap stays far below its 1 MiB whatever floods it. Pure: reading a record and the
//! merge patch that adds one; mod.rs makes the requests.
//!
//! [`AUTO_BUNDLE_LEDGER`]: velero_debug_crd::AUTO_BUNDLE_LEDGER

use std::{collections::BTreeMap, time::Duration};

use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};

/// Records are kept this much longer than the look-back window: a record's time is the
/// operator's clock, a target's end Velero's, and the two may disagree.
const CLOCK_SKEW_MARGIN: Duration = Duration::from_secs(3600);
/// Stall records kept at the most (about 150 bytes each): the oldest beyond are forgotten
/// first, since a stall forgotten costs at most a second bundle of the same stall.
pub(crate) const MAX_STALL_RECORDS: usize = 1_000;
/// Records kept at the most in all (about 750 KiB): a flood of final operations forgets the
/// oldest rather than fill the ConfigMap and stop every later bundle.
pub(crate) const MAX_RECORDS: usize = 5_000;

#[derive(Debug, PartialEq)]
pub(crate) struct Record {
    pub bundle: String,
    pub recorded: Timestamp,
    /// A stall record's motion.
    pub motion: Option<String>,
    /// A stall record's progress (older versions wrote none).
    pub progress: Option<u64>,
}

/// A record as written by [`record_patch`] or [`stall_record_patch`]; None for anything else.
pub(crate) fn parse(value: &str) -> Option<Record> {
    let mut fields = value.split(' ');
    let (bundle, recorded) = (fields.next()?, fields.next()?);
    let motion = fields.next().map(str::to_string);
    let progress = match fields.next() {
        Some(p) => Some(p.parse().ok()?),
        None => None,
    };
    if fields.next().is_some() || bundle.is_empty() {
        return None;
    }
    Some(Record {
        bundle: bundle.to_string(),
        recorded: recorded.parse().ok()?,
        motion,
        progress,
    })
}

/// The key of a target's stall record.
pub(crate) fn stall_key(uid: &str) -> String {
    format!("stall.{uid}")
}

/// The keys whose records are older than the look-back window plus a margin. A target ends
/// before its record is written, so such a target is outside the window and never gets a
/// bundle again: its record decides nothing, and pruning it keeps the ConfigMap bounded. A
/// record that cannot be read is kept: it still says a bundle was made.
pub(crate) fn stale(
    data: &BTreeMap<String, String>,
    lookback: Duration,
    now: Timestamp,
) -> Vec<String> {
    let Some(keep) = lookback
        .checked_add(CLOCK_SKEW_MARGIN)
        .and_then(|d| SignedDuration::try_from(d).ok())
    else {
        return Vec::new();
    };
    data.iter()
        .filter(|(_, value)| parse(value).is_some_and(|r| now.duration_since(r.recorded) > keep))
        .map(|(key, _)| key.clone())
        .collect()
}

/// The JSON merge patch of the ledger that records `bundle` for the target `uid` at `now` and
/// deletes the stale records of `data` (the ledger as read).
pub(crate) fn record_patch(
    uid: &str,
    bundle: &str,
    data: &BTreeMap<String, String>,
    lookback: Duration,
    now: Timestamp,
) -> Value {
    let recorded = now.strftime("%Y-%m-%dT%H:%M:%SZ");
    patch_with(data, lookback, now, uid, format!("{bundle} {recorded}"))
}

/// A stall a bundle was made for: the operation's motion and progress then.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StallMade<'a> {
    pub bundle: &'a str,
    pub motion: &'a str,
    pub progress: u64,
}

/// The same for the stall bundle made for the target `uid`.
pub(crate) fn stall_record_patch(
    uid: &str,
    made: StallMade<'_>,
    data: &BTreeMap<String, String>,
    lookback: Duration,
    now: Timestamp,
) -> Value {
    let recorded = now.strftime("%Y-%m-%dT%H:%M:%SZ");
    let StallMade {
        bundle,
        motion,
        progress,
    } = made;
    let value = format!("{bundle} {recorded} {motion} {progress}");
    patch_with(data, lookback, now, &stall_key(uid), value)
}

/// The keys to forget beyond the caps (the stale ones aside), oldest first: stall records
/// beyond [`MAX_STALL_RECORDS`], then any beyond [`MAX_RECORDS`] with the one being added.
/// A record that cannot be read counts but is never chosen.
fn beyond_caps(data: &BTreeMap<String, String>, stale: &[String]) -> Vec<String> {
    let mut kept: Vec<(Timestamp, &String)> = data
        .iter()
        .filter(|(key, _)| !stale.contains(key))
        .filter_map(|(key, value)| parse(value).map(|r| (r.recorded, key)))
        .collect();
    kept.sort();
    let mut forgotten = Vec::new();
    let stalls = kept.iter().filter(|(_, k)| k.starts_with("stall.")).count();
    let mut stalls_over = (stalls + 1).saturating_sub(MAX_STALL_RECORDS);
    kept.retain(|(_, key)| {
        if stalls_over > 0 && key.starts_with("stall.") {
            stalls_over -= 1;
            forgotten.push((*key).clone());
            false
        } else {
            true
        }
    });
    let unreadable = data.len() - stale.len() - kept.len() - forgotten.len();
    let over = (kept.len() + unreadable + 1).saturating_sub(MAX_RECORDS);
    forgotten.extend(kept.iter().take(over).map(|(_, key)| (*key).clone()));
    forgotten
}

fn patch_with(
    data: &BTreeMap<String, String>,
    lookback: Duration,
    now: Timestamp,
    key: &str,
    value: String,
) -> Value {
    let stale = stale(data, lookback, now);
    let mut entries: Map<String, Value> = beyond_caps(data, &stale)
        .into_iter()
        .chain(stale)
        .filter(|forgotten| forgotten != key)
        .map(|key| (key, Value::Null))
        .collect();
    entries.insert(key.to_string(), Value::String(value));
    json!({ "data": entries })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIX_HOURS: Duration = Duration::from_secs(6 * 3600);

    fn now() -> Timestamp {
        "2026-11-22T10:00:00Z".parse().unwrap()
    }

    /// A ledger as the API server returns its data.
    fn ledger(yaml: &str) -> BTreeMap<String, String> {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn a_record_is_the_bundle_and_the_time() {
        assert_eq!(
            parse("auto-restore-r1 2026-11-22T09:00:00Z"),
            Some(Record {
                bundle: "auto-restore-r1".into(),
                recorded: "2026-11-22T09:00:00Z".parse().unwrap(),
                motion: None,
                progress: None,
            })
        );
        for unreadable in [
            "",
            "auto-restore-r1",
            "auto-restore-r1 yesterday",
            "b 2026-11-22T09:00:00Z m not-a-number",
            "b 2026-11-22T09:00:00Z m 7 extra",
        ] {
            assert_eq!(parse(unreadable), None, "{unreadable:?}");
        }
    }

    #[test]
    fn records_beyond_the_look_back_and_margin_are_stale_unreadable_ones_kept() {
        let data = ledger(
            "
            fresh: auto-restore-a 2026-11-22T09:59:00Z
            at-the-edge: auto-restore-b 2026-11-22T03:00:00Z
            just-beyond: auto-restore-c 2026-11-22T02:59:59Z
            old: auto-backup-d 2026-11-01T00:00:00Z
            unreadable: written by someone else
            ",
        );
        assert_eq!(stale(&data, SIX_HOURS, now()), ["just-beyond", "old"]);
        assert!(
            stale(&data, Duration::MAX, now()).is_empty(),
            "a look-back too long to add to prunes nothing"
        );
    }

    #[test]
    fn the_patch_records_the_bundle_and_deletes_stale_records() {
        let data = ledger(
            "
            fresh: auto-restore-a 2026-11-22T09:59:00Z
            old: auto-backup-d 2026-11-01T00:00:00Z
            ",
        );
        let now: Timestamp = "2026-11-22T10:00:00.123456Z".parse().unwrap();
        let patch = record_patch("r1-uid", "auto-restore-r1", &data, SIX_HOURS, now);
        assert_eq!(
            patch,
            json!({"data": {"r1-uid": "auto-restore-r1 2026-11-22T10:00:00Z", "old": null}})
        );
        let written = patch["data"]["r1-uid"].as_str().unwrap();
        assert_eq!(
            parse(written).map(|r| r.bundle),
            Some("auto-restore-r1".to_string())
        );
    }

    #[test]
    fn an_empty_ledger_gets_only_the_new_record() {
        let patch = record_patch("u", "auto-restore-r1", &BTreeMap::new(), SIX_HOURS, now());
        assert_eq!(
            patch,
            json!({"data": {"u": "auto-restore-r1 2026-11-22T10:00:00Z"}})
        );
    }

    #[test]
    fn a_stall_record_keeps_its_motion_and_progress_under_a_key_of_its_own() {
        let made = StallMade {
            bundle: "auto-backup-b-stall-ab",
            motion: "ab12",
            progress: 42,
        };
        let patch = stall_record_patch("u", made, &BTreeMap::new(), SIX_HOURS, now());
        assert_eq!(
            patch,
            json!({"data": {"stall.u": "auto-backup-b-stall-ab 2026-11-22T10:00:00Z ab12 42"}})
        );
        let record = parse(patch["data"]["stall.u"].as_str().unwrap()).unwrap();
        assert_eq!(record.motion.as_deref(), Some("ab12"));
        assert_eq!(record.progress, Some(42));
        assert_eq!(record.bundle, "auto-backup-b-stall-ab");
        // A record of an older version, without progress, is still read.
        let old = parse("auto-backup-b-stall-ab 2026-11-22T10:00:00Z ab12").unwrap();
        assert_eq!((old.motion.as_deref(), old.progress), (Some("ab12"), None));
    }

    /// The keys a patch deletes.
    fn forgotten(patch: &Value) -> Vec<&String> {
        patch["data"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, v)| v.is_null())
            .map(|(k, _)| k)
            .collect()
    }

    /// A flood (Backups created InProgress, each stalling) must not fill the ConfigMap: the
    /// oldest stall records go first, then the oldest of any kind.
    #[test]
    fn beyond_the_caps_the_oldest_records_are_forgotten() {
        let at = |i: usize| {
            (now() - SignedDuration::from_secs(10_000 - i as i64)).strftime("%Y-%m-%dT%H:%M:%SZ")
        };
        let mut data = BTreeMap::new();
        for i in 0..MAX_STALL_RECORDS {
            data.insert(stall_key(&format!("s{i:05}")), format!("b {} m 1", at(i)));
        }
        data.insert("unreadable".into(), "written by someone else".into());
        let made = StallMade {
            bundle: "b-new",
            motion: "m",
            progress: 1,
        };
        let patch = stall_record_patch("new", made, &data, SIX_HOURS, now());
        assert_eq!(
            forgotten(&patch),
            ["stall.s00000"],
            "the oldest stall record"
        );
        // Final records beyond MAX_RECORDS: the oldest go, the unreadable one stays.
        let mut data = BTreeMap::new();
        for i in 0..MAX_RECORDS {
            data.insert(format!("uid-{i:05}"), format!("b {}", at(i)));
        }
        data.insert("unreadable".into(), "x".into());
        let patch = record_patch("new", "auto-restore-r", &data, SIX_HOURS, now());
        assert_eq!(forgotten(&patch), ["uid-00000", "uid-00001"]);
        assert_eq!(
            patch["data"]["new"]
                .as_str()
                .map(|v| v.starts_with("auto-restore-r")),
            Some(true)
        );
    }
}

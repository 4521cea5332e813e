//! The ledger of automatic bundles made: the ConfigMap [`AUTO_BUNDLE_LEDGER`] in Velero's
//! namespace, one key per target uid, valued "<bundle name> <RFC 3339 time recorded>", and
//! one key `stall.<uid>` per target that stalled while it ran, valued "<bundle name> <time>
//! <motion>" (the motion of the stall the bundle was made for, stall.rs). Pure:
//! reading a record and the merge patch that adds one; mod.rs makes the requests.
//!
//! [`AUTO_BUNDLE_LEDGER`]: velero_debug_crd::AUTO_BUNDLE_LEDGER

use std::{collections::BTreeMap, time::Duration};

use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};

/// Records are kept this much longer than the look-back window: a record's time is the
/// operator's clock, a target's end Velero's, and the two may disagree.
const CLOCK_SKEW_MARGIN: Duration = Duration::from_secs(3600);

#[derive(Debug, PartialEq)]
pub(crate) struct Record {
    pub bundle: String,
    pub recorded: Timestamp,
    /// A stall record's motion.
    pub motion: Option<String>,
}

/// A record as written by [`record_patch`] or [`stall_record_patch`]; None for anything else.
pub(crate) fn parse(value: &str) -> Option<Record> {
    let mut fields = value.split(' ');
    let (bundle, recorded) = (fields.next()?, fields.next()?);
    let motion = fields.next().map(str::to_string);
    if fields.next().is_some() || bundle.is_empty() {
        return None;
    }
    Some(Record {
        bundle: bundle.to_string(),
        recorded: recorded.parse().ok()?,
        motion,
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

/// The same for the stall bundle `bundle` made for the target `uid` still at `motion`.
pub(crate) fn stall_record_patch(
    uid: &str,
    bundle: &str,
    motion: &str,
    data: &BTreeMap<String, String>,
    lookback: Duration,
    now: Timestamp,
) -> Value {
    let recorded = now.strftime("%Y-%m-%dT%H:%M:%SZ");
    let value = format!("{bundle} {recorded} {motion}");
    patch_with(data, lookback, now, &stall_key(uid), value)
}

fn patch_with(
    data: &BTreeMap<String, String>,
    lookback: Duration,
    now: Timestamp,
    key: &str,
    value: String,
) -> Value {
    let mut entries: Map<String, Value> = stale(data, lookback, now)
        .into_iter()
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
            })
        );
        for unreadable in [
            "",
            "auto-restore-r1",
            "auto-restore-r1 yesterday",
            "b 2026-11-22T09:00:00Z m extra",
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
    fn a_stall_record_keeps_its_motion_under_a_key_of_its_own() {
        let patch = stall_record_patch(
            "u",
            "auto-backup-b-stall-ab",
            "ab12",
            &BTreeMap::new(),
            SIX_HOURS,
            now(),
        );
        assert_eq!(
            patch,
            json!({"data": {"stall.u": "auto-backup-b-stall-ab 2026-11-22T10:00:00Z ab12"}})
        );
        let record = parse(patch["data"]["stall.u"].as_str().unwrap()).unwrap();
        assert_eq!(record.motion.as_deref(), Some("ab12"));
        assert_eq!(record.bundle, "auto-backup-b-stall-ab");
    }
}

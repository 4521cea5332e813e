//! Step 3, plan: from the DebugBundle and what it names to everything the later steps need,
//! with every default resolved and every rule checked. Pure, so it is unit-tested on YAML
//! fixtures.
//!
//! Each spec field is checked here again, though the CRD checks it too: a cluster may run an
//! older CRD, and a value the operator cannot use must fail the bundle (InvalidSpec, naming
//! the field) rather than be guessed at. The names in the spec are checked before anything is
//! read (dereference::named_target).

use std::{sync::LazyLock, time::Duration};

use jiff::{SignedDuration, Timestamp, civil::Date, tz::TimeZone};
use kube::{ResourceExt, core::DynamicObject};
use regex::Regex;
use velero_debug_crd::{
    DEFAULT_MAX_LOG_BYTES_PER_CONTAINER, DEFAULT_URL_TTL, DebugBundle, DebugBundleSpec,
    MAX_LOG_BYTES_PER_CONTAINER, MIN_LOG_BYTES_PER_CONTAINER, URL_TTL_MAX, URL_TTL_MAX_TEXT,
    URL_TTL_MIN, URL_TTL_MIN_TEXT,
};

use super::dereference::Dereferenced;
use crate::{collect::CollectPlan, duration, velero::Target};

/// Logs are collected from this long before the target started.
pub(crate) const WINDOW_MARGIN: SignedDuration = SignedDuration::from_mins(10);

#[derive(Debug, thiserror::Error, PartialEq)]
pub(crate) enum PlanError {
    #[error("spec.{field}: {problem}")]
    InvalidSpec {
        /// The field as written in the spec ("urlTTL").
        field: &'static str,
        problem: String,
    },
    #[error("BackupStorageLocation {0} is ReadOnly; the bundle cannot be written to it")]
    ReadOnly(String),
}

fn invalid(field: &'static str, problem: impl ToString) -> PlanError {
    PlanError::InvalidSpec {
        field,
        problem: problem.to_string(),
    }
}

/// The whole plan of one bundle.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BundlePlan {
    pub collect: CollectPlan,
    /// Where the archive goes in the storage location.
    pub key: String,
    pub url_ttl: Duration,
}

pub(crate) fn bundle(bundle: &DebugBundle, found: &Dereferenced) -> Result<BundlePlan, PlanError> {
    let mut collect = collect(&bundle.spec, found.target.clone(), &found.objects.target)?;
    collect.stalled_since = bundle
        .annotations()
        .get(velero_debug_crd::ANNOTATION_STALLED_SINCE)
        .and_then(|since| since.parse().ok());
    collect.stalls_withheld = bundle
        .annotations()
        .get(velero_debug_crd::ANNOTATION_STALLS_WITHHELD)
        .cloned();
    let url_ttl = url_ttl(&bundle.spec)?;
    // Read again once the bundle finished (lifecycle.rs); checked now so a bad one fails it.
    ttl_after_finished(&bundle.spec)?;
    if found.location.read_only {
        return Err(PlanError::ReadOnly(found.location.name.clone()));
    }
    let key = found.location.archive_key(
        &bundle.namespace().unwrap_or_default(),
        &bundle.name_any(),
        &bundle.uid().unwrap_or_default(),
    );
    Ok(BundlePlan {
        collect,
        key,
        url_ttl,
    })
}

fn collect(
    spec: &DebugBundleSpec,
    target: Target,
    target_obj: &DynamicObject,
) -> Result<CollectPlan, PlanError> {
    let since = match spec.since.as_deref() {
        Some(text) => parse_date_time(text).ok_or_else(|| {
            invalid(
                "since",
                format!("{text:?} is not a date-time such as 2026-11-20T10:00:00Z"),
            )
        })?,
        None => operation_start(target_obj)
            .map(|t| t - WINDOW_MARGIN)
            .unwrap_or(Timestamp::UNIX_EPOCH),
    };
    let since = whole_second(since);
    let max_log_bytes = spec
        .max_log_bytes_per_container
        .unwrap_or(DEFAULT_MAX_LOG_BYTES_PER_CONTAINER);
    if !(MIN_LOG_BYTES_PER_CONTAINER..=MAX_LOG_BYTES_PER_CONTAINER).contains(&max_log_bytes) {
        return Err(invalid(
            "maxLogBytesPerContainer",
            format!("{max_log_bytes} is not between 1024 and 1073741824 (1 GiB)"),
        ));
    }
    Ok(CollectPlan {
        target,
        since,
        // Within the range just checked: positive.
        max_log_bytes: max_log_bytes.unsigned_abs(),
        previous_logs: spec.previous_logs.unwrap_or(true),
        node_agent_logs: spec.node_agent_logs.unwrap_or_default(),
        events: spec.events.unwrap_or(true),
        stalled_since: None,
        stalls_withheld: None,
    })
}

/// `since` cut to its second: the log request rounds it to a second itself, and rounding the
/// last instant there is (9999-12-30T22:00:00.999999999Z) up past it panics in kube.
fn whole_second(t: Timestamp) -> Timestamp {
    let round = jiff::TimestampRound::new()
        .smallest(jiff::Unit::Second)
        .mode(jiff::RoundMode::Trunc);
    t.round(round).unwrap_or(t)
}

/// When the operation started: `status.startTimestamp`, else its creation.
fn operation_start(obj: &DynamicObject) -> Option<Timestamp> {
    obj.data["status"]["startTimestamp"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| obj.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// A date-time as the API server's `format: date-time` check admits it (kube-openapi's
/// strfmt.IsDateTime), so every stored `since` is read: case-insensitive `YYYY-MM-DD`, `T`,
/// `hh:mm:ss`, optionally any one character and a fraction, then `Z` or `±hh:mm`; whatever
/// follows a second `T` is ignored, as there. Fraction digits past nanoseconds are dropped.
fn parse_date_time(text: &str) -> Option<Timestamp> {
    static TIME: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"^(?<hour>[0-9]{2}):(?<minute>[0-9]{2}):(?<second>[0-9]{2})(?:.(?<fraction>[0-9]+))?(?:z|(?<sign>[+-])(?<offset_hour>[0-9]{2}):(?<offset_minute>[0-9]{2}))$",
        )
        .expect("a valid regex")
    });
    let lower = text.to_lowercase();
    let mut parts = lower.split('t');
    let date = calendar_date(parts.next()?)?;
    let time = TIME.captures(parts.next()?)?;
    // Only ASCII digits are captured: the numbers parse.
    let number = |name| {
        time.name(name)
            .map_or(0, |m| m.as_str().parse::<i64>().unwrap_or(0))
    };
    let (hour, minute, second) = (number("hour"), number("minute"), number("second"));
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let nanos = time.name("fraction").map_or(0, |m| {
        let digits = &m.as_str()[..m.len().min(9)];
        let value: i32 = digits.parse().unwrap_or(0);
        value * 10i32.pow(9 - digits.len() as u32)
    });
    let local = date.at(hour as i8, minute as i8, second as i8, nanos);
    let as_if_utc = TimeZone::UTC.to_timestamp(local);
    let offset =
        SignedDuration::from_secs(number("offset_hour") * 3600 + number("offset_minute") * 60);
    let utc = as_if_utc.and_then(|t| match time.name("sign").map(|m| m.as_str()) {
        Some("-") => t.checked_add(offset),
        Some(_) => t.checked_sub(offset),
        None => Ok(t),
    });
    // Only an instant past jiff's last (9999-12-30T22:00Z) fails: read as that one, since
    // either way no log is that recent.
    Some(utc.unwrap_or(Timestamp::MAX))
}

/// `YYYY-MM-DD` exactly, a day of the calendar (Go's `time.Parse("2006-01-02", _)`).
fn calendar_date(text: &str) -> Option<Date> {
    let b = text.as_bytes();
    let shaped = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shaped {
        return None;
    }
    let number = |range: std::ops::Range<usize>| text[range].parse::<i16>().ok();
    Date::new(number(0..4)?, number(5..7)? as i8, number(8..10)? as i8).ok()
}

/// The URL validity of a spec: a duration between the CRD's bounds (1m and 168h), as its CEL
/// rule enforces.
pub(crate) fn url_ttl(spec: &DebugBundleSpec) -> Result<Duration, PlanError> {
    let text = spec.url_ttl.as_deref().unwrap_or(DEFAULT_URL_TTL);
    let ttl = duration::parse(text).map_err(|e| invalid("urlTTL", e))?;
    if !(URL_TTL_MIN..=URL_TTL_MAX).contains(&ttl) {
        return Err(invalid(
            "urlTTL",
            format!("{text:?} is not between {URL_TTL_MIN_TEXT} and {URL_TTL_MAX_TEXT}"),
        ));
    }
    Ok(ttl.unsigned_abs())
}

/// The URL validity of a bundle whose spec no longer reads (it was checked when the bundle was
/// planned): the CRD's default, the one place that knows it.
pub(crate) fn url_ttl_or_default(spec: &DebugBundleSpec) -> Duration {
    url_ttl(spec)
        .or_else(|_| url_ttl(&DebugBundleSpec::default()))
        .unwrap_or(URL_TTL_MIN.unsigned_abs())
}

/// The spec's retention, if it sets one: a duration of 0s or more.
pub(crate) fn ttl_after_finished(spec: &DebugBundleSpec) -> Result<Option<Duration>, PlanError> {
    let Some(text) = spec.ttl_after_finished.as_deref() else {
        return Ok(None);
    };
    let ttl = duration::parse(text).map_err(|e| invalid("ttlAfterFinished", e))?;
    Duration::try_from(ttl)
        .map(Some)
        .map_err(|_| invalid("ttlAfterFinished", format!("{text:?} is negative")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use velero_debug_crd::NodeAgentLogs;

    use crate::{
        collect::TargetObjects,
        storage::{Credentials, StorageLocation, credentials::AwsCredentials},
    };

    fn obj(yaml: &str) -> DynamicObject {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn found(location: StorageLocation, target: &str) -> Dereferenced {
        Dereferenced {
            target: Target::Backup("b1".into()),
            objects: TargetObjects {
                target: obj(target),
                backup: None,
            },
            location,
            credentials: Credentials::Aws(AwsCredentials::DefaultChain),
        }
    }

    fn debug_bundle(spec: &str) -> DebugBundle {
        serde_yaml::from_str(&format!(
            "apiVersion: velerodebug.io/v1alpha1\nkind: DebugBundle\nmetadata: {{name: vdb, namespace: velero, uid: 1234abcd-0000}}\nspec: {spec}\n"
        ))
        .unwrap()
    }

    const BACKUP: &str = "apiVersion: velero.io/v1\nkind: Backup\nmetadata: {name: b1}\nstatus: {startTimestamp: \"2026-11-20T10:00:00Z\"}\n";

    fn location() -> StorageLocation {
        StorageLocation {
            name: "default".into(),
            bucket: "velero".into(),
            prefix: Some("cluster-a".into()),
            ..StorageLocation::default()
        }
    }

    #[test]
    fn window_starts_before_the_operation_and_defaults_apply() {
        let plan = bundle(&debug_bundle("{backup: b1}"), &found(location(), BACKUP)).unwrap();
        assert_eq!(plan.collect.since.to_string(), "2026-11-20T09:50:00Z");
        assert_eq!(plan.url_ttl, Duration::from_secs(24 * 3600));
        assert!(plan.collect.previous_logs && plan.collect.events);
        assert_eq!(plan.collect.node_agent_logs, NodeAgentLogs::Involved);
        assert_eq!(
            plan.key,
            "cluster-a/plugins/velero-debug-operator/bundles/velero/vdb-1234abcd.tar.gz"
        );
    }

    #[test]
    fn a_read_only_location_is_refused() {
        let ro = StorageLocation {
            read_only: true,
            ..location()
        };
        assert_eq!(
            bundle(&debug_bundle("{backup: b1}"), &found(ro, BACKUP)),
            Err(PlanError::ReadOnly("default".into()))
        );
    }

    fn spec(yaml: &str) -> DebugBundleSpec {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn field_of(result: Result<impl std::fmt::Debug, PlanError>) -> &'static str {
        match result {
            Err(PlanError::InvalidSpec { field, .. }) => field,
            other => panic!("not InvalidSpec: {other:?}"),
        }
    }

    #[test]
    fn a_spec_that_no_longer_reads_gets_the_default_url_ttl() {
        assert_eq!(
            url_ttl_or_default(&spec("urlTTL: 'soon'")),
            Duration::from_secs(24 * 3600)
        );
        assert_eq!(
            url_ttl_or_default(&spec("urlTTL: '2h'")),
            Duration::from_secs(7200)
        );
    }

    #[test]
    fn url_ttl_is_any_go_duration_from_1m_to_168h() {
        let ttl = |t: &str| url_ttl(&spec(&format!("urlTTL: '{t}'")));
        for (text, secs) in [
            ("1h30m", 5400),
            ("90000ms", 90),
            ("1.5h", 5400),
            ("1m", 60),
            ("60000000000ns", 60),
            ("168h", 168 * 3600),
            ("167h59m59.999s", 168 * 3600 - 1),
        ] {
            assert_eq!(ttl(text).map(|d| d.as_secs()), Ok(secs), "{text}");
        }
        for bad in [
            "169h",
            "168h0.001s",
            "59s",
            "59.999s",
            "-1h",
            "0",
            "",
            "10",
            "1d",
            "24 h",
        ] {
            assert_eq!(field_of(ttl(bad)), "urlTTL", "{bad}");
        }
        assert_eq!(url_ttl(&spec("{}")), Ok(Duration::from_secs(24 * 3600)));
    }

    #[test]
    fn ttl_after_finished_is_a_duration_of_0s_or_more() {
        let ttl = |t: &str| ttl_after_finished(&spec(&format!("ttlAfterFinished: '{t}'")));
        assert_eq!(ttl("1.5h"), Ok(Some(Duration::from_secs(5400))));
        assert_eq!(ttl("0"), Ok(Some(Duration::ZERO)));
        assert_eq!(ttl("-0s"), Ok(Some(Duration::ZERO)));
        for bad in ["-1h", "-1ns", "1.5", "forever", "never", ""] {
            assert_eq!(field_of(ttl(bad)), "ttlAfterFinished", "{bad}");
        }
        assert_eq!(ttl_after_finished(&spec("{}")), Ok(None));
    }

    #[test]
    fn a_bad_field_fails_the_plan_naming_it() {
        let plan = |s: &str| bundle(&debug_bundle(s), &found(location(), BACKUP));
        assert_eq!(
            field_of(plan("{backup: b1, ttlAfterFinished: '-1h'}")),
            "ttlAfterFinished"
        );
        assert_eq!(field_of(plan("{backup: b1, urlTTL: 2d}")), "urlTTL");
        assert_eq!(field_of(plan("{backup: b1, since: yesterday}")), "since");
        for bytes in [0, 1023, MAX_LOG_BYTES_PER_CONTAINER + 1, -1] {
            let s = format!("{{backup: b1, maxLogBytesPerContainer: {bytes}}}");
            assert_eq!(field_of(plan(&s)), "maxLogBytesPerContainer", "{bytes}");
        }
        let s = format!("{{backup: b1, maxLogBytesPerContainer: {MAX_LOG_BYTES_PER_CONTAINER}}}");
        assert_eq!(plan(&s).unwrap().collect.max_log_bytes, 1 << 30);
        let e = plan("{backup: b1, urlTTL: 2d}").unwrap_err();
        assert!(e.to_string().starts_with("spec.urlTTL: \"2d\""), "{e}");
    }

    #[test]
    fn since_is_read_in_every_form_the_api_server_admits() {
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        for (text, utc) in [
            ("2026-11-20T10:00:00Z", "2026-11-20T10:00:00Z"),
            ("2026-11-20t10:00:00z", "2026-11-20T10:00:00Z"),
            ("2026-11-20T10:00:00.5Z", "2026-11-20T10:00:00.5Z"),
            ("2026-11-20T10:00:00,25Z", "2026-11-20T10:00:00.25Z"),
            ("2026-11-20T10:00:00x25Z", "2026-11-20T10:00:00.25Z"),
            (
                "2026-11-20T10:00:00.1234567899Z",
                "2026-11-20T10:00:00.123456789Z",
            ),
            ("2026-11-20T12:00:00+02:00", "2026-11-20T10:00:00Z"),
            ("2026-11-20T05:30:00-04:30", "2026-11-20T10:00:00Z"),
            ("2026-11-20T10:00:00+30:00", "2026-11-19T04:00:00Z"),
            ("2026-11-20T10:00:00-00:75", "2026-11-20T11:15:00Z"),
            ("2026-11-20T10:00:00Zt ignored", "2026-11-20T10:00:00Z"),
            ("2024-02-29T23:59:59Z", "2024-02-29T23:59:59Z"),
            ("0000-01-01T00:00:00-99:99", "0000-01-05T04:39:00Z"),
            ("9999-12-31T23:59:59Z", "9999-12-30T22:00:00.999999999Z"),
        ] {
            assert_eq!(parse_date_time(text), Some(at(utc)), "{text}");
        }
        for bad in [
            "",
            "2026-11-20",
            "2026-11-20T",
            "2026-11-20 10:00:00Z",
            "2026-11-20T10:00Z",
            "2026-11-20T10:00:00",
            "2026-11-20T10:00:00+0200",
            "2026-11-20T10:00:00.Z",
            "2026-11-20T10:00:00 Z",
            "2026-11-20T24:00:00Z",
            "2026-11-20T10:60:00Z",
            "2026-11-20T10:00:60Z",
            "2026-02-30T10:00:00Z",
            "2026-13-01T10:00:00Z",
            "2026-1-20T10:00:00Z",
            "26-11-20T10:00:00Z",
            "+2026-11-20T10:00:00Z",
            "yesterday",
        ] {
            assert_eq!(parse_date_time(bad), None, "{bad:?} accepted");
        }
        let plan = bundle(
            &debug_bundle("{backup: b1, since: '2026-11-20t08:00:00.000000000001z'}"),
            &found(location(), BACKUP),
        );
        assert_eq!(plan.unwrap().collect.since, at("2026-11-20T08:00:00Z"));
        // Found by `make fuzz`: the log request rounds `since` to a second, and the last
        // instant rounded up panicked; whole seconds, down, from the plan on.
        for (text, utc) in [
            ("9999-12-31T23:59:59.999999999Z", "9999-12-30T22:00:00Z"),
            ("2026-11-20T08:00:00.999Z", "2026-11-20T08:00:00Z"),
        ] {
            let plan = bundle(
                &debug_bundle(&format!("{{backup: b1, since: '{text}'}}")),
                &found(location(), BACKUP),
            );
            let since = plan.unwrap().collect.since;
            assert_eq!(since, at(utc), "{text}");
            assert!(since.round(jiff::Unit::Second).is_ok(), "{text}");
        }
    }
}

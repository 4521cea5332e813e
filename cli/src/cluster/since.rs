//! `--since`: an RFC 3339 time, or a Go duration back from now ("2h", "90m").

use jiff::{SignedDuration, Timestamp};
use velero_debug_crd::duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SinceError {
    #[error(
        "--since {0:?} is neither an RFC 3339 time (2026-11-20T10:00:00Z) nor a duration back (2h)"
    )]
    Unreadable(String),
    #[error("--since {0:?} must be a positive duration back (such as 2h)")]
    NotPositive(String),
}

/// The spec's `since` value (RFC 3339, UTC) for `text`, durations counted back from `now`.
pub(super) fn resolve_since(text: &str, now: Timestamp) -> Result<String, SinceError> {
    if let Ok(time) = text.parse::<Timestamp>() {
        return Ok(time.to_string());
    }
    // A time without a zone would be read in the operator's zone, not the user's: refused.
    let back = duration::parse(text).map_err(|_| SinceError::Unreadable(text.to_string()))?;
    if back <= SignedDuration::ZERO {
        return Err(SinceError::NotPositive(text.to_string()));
    }
    // Whole seconds: the sub-second part of "now" means nothing to the reader.
    let now = Timestamp::from_second(now.as_second()).expect("a second of a valid time");
    now.checked_sub(back)
        .map(|t| t.to_string())
        .map_err(|_| SinceError::Unreadable(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-11-22T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_duration_counts_back_from_now() {
        let now_with_nanos: Timestamp = "2026-11-22T12:00:00.123456789Z".parse().unwrap();
        assert_eq!(
            resolve_since("2h", now_with_nanos).unwrap(),
            "2026-11-22T10:00:00Z"
        );
        assert_eq!(resolve_since("2h", now()).unwrap(), "2026-11-22T10:00:00Z");
        assert_eq!(
            resolve_since("1h30m", now()).unwrap(),
            "2026-11-22T10:30:00Z"
        );
        assert_eq!(
            resolve_since("1.5s", now()).unwrap(),
            "2026-11-22T11:59:58.5Z"
        );
    }

    #[test]
    fn a_time_is_normalised_to_utc() {
        assert_eq!(
            resolve_since("2026-11-20T10:00:00Z", now()).unwrap(),
            "2026-11-20T10:00:00Z"
        );
        assert_eq!(
            resolve_since("2026-11-20T12:00:00+02:00", now()).unwrap(),
            "2026-11-20T10:00:00Z"
        );
    }

    #[test]
    fn refuses_what_is_neither() {
        for bad in ["", "2d", "yesterday", "2026-11-20", "2026-11-20T10:00:00"] {
            assert_eq!(
                resolve_since(bad, now()),
                Err(SinceError::Unreadable(bad.into())),
                "{bad}"
            );
        }
        for bad in ["0", "0s", "-2h"] {
            assert_eq!(
                resolve_since(bad, now()),
                Err(SinceError::NotPositive(bad.into()))
            );
        }
    }
}

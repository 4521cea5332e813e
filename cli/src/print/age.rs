//! Ages as kubectl prints them: its AGE columns and `describe` use k8s.io/apimachinery's
//! `duration.HumanDuration` (pkg/util/duration/duration.go), which keeps about two significant
//! figures: "119s", "3m20s", "15m", "3h1m", "20h", "3d4h", "30d", "2y45d", "9y". The rules are
//! short enough to keep here rather than pull a crate for. Every age the plugin prints, in its
//! own tables and `describe` and in `serve`'s tables, comes from here.

use jiff::{SignedDuration, Timestamp};

/// The age at `now` of something that happened at `then`.
pub(crate) fn age(then: Timestamp, now: Timestamp) -> String {
    human(now.duration_since(then))
}

/// The age at `now` of an RFC 3339 timestamp; "<unknown>" for none (or one that does not
/// parse), as kubectl prints a zero time.
pub(crate) fn since(timestamp: Option<&str>, now: Timestamp) -> String {
    age_or_unknown(timestamp.and_then(|t| t.parse().ok()), now)
}

/// The age at `now` of a time; "<unknown>" for none, as kubectl prints a zero time.
pub(crate) fn age_or_unknown(then: Option<Timestamp>, now: Timestamp) -> String {
    then.map_or_else(|| "<unknown>".into(), |then| age(then, now))
}

/// `duration.HumanDuration`: a clock skew under 2s in the future reads "0s", more "<invalid>";
/// then the largest unit, with the next one below it while the first is small.
fn human(duration: SignedDuration) -> String {
    // As Go's int(d.Seconds()): truncated toward zero.
    let seconds = duration.as_secs();
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 2 * 60 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        return with_rest(minutes, "m", seconds % 60, "s");
    }
    if minutes < 3 * 60 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        return with_rest(hours, "h", minutes % 60, "m");
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if hours < 8 * 24 {
        return with_rest(days, "d", hours % 24, "h");
    }
    if hours < 2 * 365 * 24 {
        return format!("{days}d");
    }
    let years = days / 365;
    if hours < 8 * 365 * 24 {
        return with_rest(years, "y", days % 365, "d");
    }
    format!("{years}y")
}

/// "3h1m", or "3h" when the smaller unit is zero.
fn with_rest(value: i64, unit: &str, rest: i64, rest_unit: &str) -> String {
    if rest == 0 {
        format!("{value}{unit}")
    } else {
        format!("{value}{unit}{rest}{rest_unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: i64 = 60;
    const H: i64 = 60 * M;
    const D: i64 = 24 * H;
    const Y: i64 = 365 * D;

    /// duration.go's HumanDuration band by band, each at its edges: (seconds, printed).
    const BANDS: [&[(i64, &str)]; 10] = [
        // Up to 1s in the future is clock skew, read as now; more is invalid.
        &[(-2, "<invalid>"), (-1, "0s"), (0, "0s")],
        &[(1, "1s"), (2 * M - 1, "119s")],
        &[(2 * M, "2m"), (3 * M + 20, "3m20s"), (10 * M - 1, "9m59s")],
        &[(10 * M, "10m"), (10 * M + 59, "10m"), (3 * H - 1, "179m")],
        &[(3 * H, "3h"), (3 * H + M, "3h1m"), (8 * H - 1, "7h59m")],
        &[(8 * H, "8h"), (8 * H + 59 * M, "8h"), (48 * H - 1, "47h")],
        &[(2 * D, "2d"), (3 * D + H, "3d1h"), (8 * D - 1, "7d23h")],
        &[(8 * D, "8d"), (30 * D + 23 * H, "30d"), (2 * Y - 1, "729d")],
        &[
            (2 * Y, "2y"),
            (2 * Y + 45 * D, "2y45d"),
            (8 * Y - 1, "7y364d"),
        ],
        &[(8 * Y, "8y"), (9 * Y + 100 * D, "9y")],
    ];

    #[test]
    fn each_band_at_its_edges() {
        for (seconds, printed) in BANDS.iter().copied().flatten() {
            let seconds = SignedDuration::from_secs(*seconds);
            assert_eq!(human(seconds), *printed, "{seconds:?}");
        }
    }

    #[test]
    fn fractions_of_a_second_are_truncated_toward_zero() {
        assert_eq!(human(SignedDuration::from_millis(-1_999)), "0s");
        assert_eq!(human(SignedDuration::from_millis(-500)), "0s");
        assert_eq!(human(SignedDuration::from_millis(1_999)), "1s");
    }

    #[test]
    fn ages_of_times_and_of_texts() {
        let now: Timestamp = "2026-01-01T03:01:00Z".parse().unwrap();
        let then: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(age(then, now), "3h1m");
        assert_eq!(age(now, then), "<invalid>");
        assert_eq!(since(Some("2026-01-01T02:51:00Z"), now), "10m");
        assert_eq!(since(None, now), "<unknown>");
        assert_eq!(since(Some("yesterday"), now), "<unknown>");
        assert_eq!(age_or_unknown(None, now), "<unknown>");
        assert_eq!(age_or_unknown(Some(then), now), "3h1m");
    }
}

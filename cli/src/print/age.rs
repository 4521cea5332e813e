//! Ages as kubectl's server prints them (k8s.io/apimachinery's HumanDuration): "45s", "3m20s",
//! "5h", "12d". The rules are short enough to keep here rather than pull a crate for.

use jiff::Timestamp;

/// The age of an RFC 3339 timestamp at `now`; "<unknown>" for none, as kubectl prints it.
pub(crate) fn since(timestamp: Option<&str>, now: Timestamp) -> String {
    let Some(then) = timestamp.and_then(|t| t.parse::<Timestamp>().ok()) else {
        return "<unknown>".into();
    };
    human(now.as_second() - then.as_second())
}

pub(crate) fn human(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    let s = seconds.max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86400);
    let y = d / 365;
    let pair = |a: i64, ua: &str, b: i64, ub: &str| {
        if b == 0 {
            format!("{a}{ua}")
        } else {
            format!("{a}{ua}{b}{ub}")
        }
    };
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        pair(m, "m", s % 60, "s")
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        pair(h, "h", m % 60, "m")
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        pair(d, "d", h % 24, "h")
    } else if d < 365 * 2 {
        format!("{d}d")
    } else if y < 8 {
        pair(y, "y", d % 365, "d")
    } else {
        format!("{y}y")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_as_kubectls() {
        assert_eq!(human(45), "45s");
        assert_eq!(human(119), "119s");
        assert_eq!(human(200), "3m20s");
        assert_eq!(human(600), "10m");
        assert_eq!(human(3 * 3600 + 60), "3h1m");
        assert_eq!(human(9 * 3600), "9h");
        assert_eq!(human(3 * 86400 + 3600), "3d1h");
        assert_eq!(human(30 * 86400), "30d");
        assert_eq!(human(-5), "<invalid>");
        let now: Timestamp = "2026-01-01T00:10:00Z".parse().unwrap();
        assert_eq!(since(Some("2026-01-01T00:00:00Z"), now), "10m");
        assert_eq!(since(None, now), "<unknown>");
    }
}

//! The one parser of durations, for the spec's urlTTL and ttlAfterFinished and the operator's
//! settings alike.

use std::time::Duration;

/// Parses Go-style durations of whole seconds ("24h", "90m", "1h30m", "0s"), as the CRD's CEL
/// rules and the operator's settings accept them.
pub(crate) fn parse(text: &str) -> Option<Duration> {
    let mut total = 0u64;
    let mut digits = String::new();
    let mut chars = text.chars().peekable();
    if text.is_empty() {
        return None;
    }
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match (c, chars.peek()) {
            ('m', Some('s')) => return None, // sub-second units make no sense here
            ('h', _) => 3600,
            ('m', _) => 60,
            ('s', _) => 1,
            _ => return None,
        };
        let n: u64 = digits.parse().ok()?;
        total = total.checked_add(n.checked_mul(unit)?)?;
        digits.clear();
    }
    digits.is_empty().then_some(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_go_style_whole_seconds() {
        assert_eq!(parse("0s"), Some(Duration::ZERO));
        assert_eq!(parse("72h"), Some(Duration::from_secs(72 * 3600)));
        assert_eq!(parse("1h1m1s"), Some(Duration::from_secs(3661)));
        for bad in ["", "h", "10", "5ms", "1d", "-1h", "99999999999999999999h"] {
            assert_eq!(parse(bad), None, "{bad} accepted");
        }
    }
}

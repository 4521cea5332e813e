//! The one parser of durations, for the spec's urlTTL and ttlAfterFinished, the operator's
//! flags and the kubectl plugin's alike. It reads exactly what the CRD's CEL `duration()`
//! admits: cel-go converts with Go's `time.ParseDuration`, so this follows that function step
//! by step. No crate does: kube's
//! `Duration` admits "" and "1h0", and panics past u64 seconds; go-parse-duration refuses "µs"
//! and loops forever on a long fraction; go-duration refuses "0"; jiff's friendly format is
//! another grammar ("1 hour", "1d", no "µs").
//!
//! Grammar: `[-+]?` then either `0` alone or one or more `[0-9]*(\.[0-9]*)?unit` (at least one
//! digit on either side of the point), unit one of `ns`, `us`, `µs` (U+00B5), `μs` (U+03BC),
//! `ms`, `s`, `m`, `h`; the total within ±2^63 ns (about 292 years). Fraction digits past
//! what fits in 63 bits are read and ignored, as Go does.

use jiff::SignedDuration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("{0:?} is not a duration (such as 90m, 1h30m or 1.5h)")]
    Invalid(String),
    #[error("{0:?} is not a duration: a number lacks its unit (ns, us, ms, s, m or h)")]
    MissingUnit(String),
    #[error("{text:?} is not a duration: unknown unit {unit:?} (ns, us, ms, s, m or h)")]
    UnknownUnit { text: String, unit: String },
}

const NANOS_PER_UNIT: [(&str, u64); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("\u{00B5}s", 1_000),
    ("\u{03BC}s", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// 2^63: the magnitude of the most negative duration Go holds (the most positive is one less).
const LIMIT: u64 = 1 << 63;

/// Parses a Go duration ("90m", "1.5h", "-1h30m", "0"), as `time.ParseDuration` does.
pub fn parse(text: &str) -> Result<SignedDuration, DurationError> {
    let invalid = || DurationError::Invalid(text.to_string());
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(SignedDuration::ZERO);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let (whole, after_whole) = leading_int(rest).ok_or_else(invalid)?;
        let has_whole = after_whole.len() != rest.len();
        rest = after_whole;
        let mut fraction = Fraction::default();
        let mut has_fraction = false;
        if let Some(after_point) = rest.strip_prefix('.') {
            let (read, after_digits) = leading_fraction(after_point);
            has_fraction = after_digits.len() != after_point.len();
            fraction = read;
            rest = after_digits;
        }
        if !has_whole && !has_fraction {
            return Err(invalid()); // no digits, as in ".s" or "-h"
        }
        let unit_len = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        if unit_len == 0 {
            return Err(DurationError::MissingUnit(text.to_string()));
        }
        let (unit, after_unit) = rest.split_at(unit_len);
        rest = after_unit;
        let Some(&(_, unit_nanos)) = NANOS_PER_UNIT.iter().find(|(name, _)| *name == unit) else {
            return Err(DurationError::UnknownUnit {
                text: text.to_string(),
                unit: unit.to_string(),
            });
        };
        if whole > LIMIT / unit_nanos {
            return Err(invalid());
        }
        let mut nanos = whole * unit_nanos;
        if fraction.digits > 0 {
            // As Go: float64 keeps fractions of an hour nanosecond-exact (at most 3.6e12 here).
            nanos += (fraction.digits as f64 * (unit_nanos as f64 / fraction.scale)) as u64;
            if nanos > LIMIT {
                return Err(invalid());
            }
        }
        // Go's uint64 sum wraps when two terms of exactly 2^63 ns meet (then reads 0); that
        // takes over 40 characters, beyond the CRD's 32, and is refused here.
        total = total
            .checked_add(nanos)
            .filter(|t| *t <= LIMIT)
            .ok_or_else(invalid)?;
    }
    let nanos = if negative {
        0i64.checked_sub_unsigned(total)
    } else {
        i64::try_from(total).ok()
    };
    nanos.map(SignedDuration::from_nanos).ok_or_else(invalid)
}

/// The leading `[0-9]*` of `text` and what follows; `None` past 2^63.
fn leading_int(text: &str) -> Option<(u64, &str)> {
    let len = text.bytes().take_while(u8::is_ascii_digit).count();
    let mut value: u64 = 0;
    for digit in text[..len].bytes() {
        if value > LIMIT / 10 {
            return None;
        }
        value = value * 10 + u64::from(digit - b'0');
        if value > LIMIT {
            return None;
        }
    }
    Some((value, &text[len..]))
}

/// Digits after a decimal point: value = digits / scale.
#[derive(Debug, Clone, Copy)]
struct Fraction {
    digits: u64,
    scale: f64,
}

impl Default for Fraction {
    fn default() -> Self {
        Self {
            digits: 0,
            scale: 1.0,
        }
    }
}

/// The leading `[0-9]*` of `text` as a fraction and what follows; digits that would overflow
/// are consumed without adding precision.
fn leading_fraction(text: &str) -> (Fraction, &str) {
    let len = text.bytes().take_while(u8::is_ascii_digit).count();
    let mut fraction = Fraction::default();
    for digit in text[..len].bytes() {
        if fraction.digits > (LIMIT - 1) / 10 {
            break;
        }
        let next = fraction.digits * 10 + u64::from(digit - b'0');
        if next > LIMIT {
            break;
        }
        fraction.digits = next;
        fraction.scale *= 10.0;
    }
    (fraction, &text[len..])
}

#[cfg(test)]
mod tests {
    use super::*;

    const NS: i64 = 1;
    const US: i64 = 1_000;
    const MS: i64 = 1_000_000;
    const S: i64 = 1_000_000_000;
    const M: i64 = 60 * S;
    const H: i64 = 60 * M;

    /// Written after Go's own ParseDuration tests (time_test.go), plus CEL-facing examples.
    #[test]
    fn parses_what_go_parses() {
        let cases: &[(&str, i64)] = &[
            ("0", 0),
            ("-0", 0),
            ("+0", 0),
            ("0s", 0),
            ("5s", 5 * S),
            ("30s", 30 * S),
            ("1478s", 1478 * S),
            ("-5s", -5 * S),
            ("+5s", 5 * S),
            ("-0s", 0),
            ("5.0s", 5 * S),
            ("5.6s", 5 * S + 600 * MS),
            ("5.s", 5 * S),
            ("1.s", S),
            (".5s", 500 * MS),
            ("1.0s", S),
            ("1.00s", S),
            ("1.004s", S + 4 * MS),
            ("1.0040s", S + 4 * MS),
            ("100.00100s", 100 * S + MS),
            ("10ns", 10 * NS),
            ("11us", 11 * US),
            ("12\u{00B5}s", 12 * US),
            ("12\u{03BC}s", 12 * US),
            ("13ms", 13 * MS),
            ("14s", 14 * S),
            ("15m", 15 * M),
            ("16h", 16 * H),
            ("3h30m", 3 * H + 30 * M),
            ("1h30m", 90 * M),
            ("10.5s4m", 4 * M + 10 * S + 500 * MS),
            ("-2m3.4s", -(2 * M + 3 * S + 400 * MS)),
            (
                "1h2m3s4ms5us6ns",
                H + 2 * M + 3 * S + 4 * MS + 5 * US + 6 * NS,
            ),
            ("39h9m14.425s", 39 * H + 9 * M + 14 * S + 425 * MS),
            ("1h1h", 2 * H),
            ("52763797000ns", 52_763_797_000),
            ("0.3333333333333333333h", 20 * M),
            ("9007199254740993ns", (1 << 53) + 1),
            ("9223372036854775807ns", i64::MAX),
            ("9223372036854775.807us", i64::MAX),
            ("9223372036s854ms775us807ns", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
            ("-9223372036854775.808us", i64::MIN),
            ("-9223372036s854ms775us808ns", i64::MIN),
            ("-2562047h47m16.854775808s", i64::MIN),
            ("0.100000000000000000000h", 6 * M),
            ("0.830103483285477580700h", 49 * M + 48 * S + 372_539_827),
            ("90000ms", 90 * S),
            ("1.5h", 90 * M),
            ("-1h", -H),
            ("168h", 168 * H),
        ];
        for (text, nanos) in cases {
            assert_eq!(
                parse(text),
                Ok(SignedDuration::from_nanos(*nanos)),
                "{text}"
            );
        }
    }

    #[test]
    fn refuses_what_go_refuses() {
        let invalid = [
            "",
            "-",
            "+",
            "3",
            "-3",
            "1h0",
            "s",
            ".",
            "-.",
            ".s",
            "+.s",
            "1d",
            "1e3s",
            "3000000h",
            "9223372036854775808ns",
            "9223372036854775.808us",
            "9223372036854ms775us808ns",
            "-9223372036854775809ns",
            "2562048h",
            "99999999999999999999h",
            " 1h",
            "1h ",
            "1 h",
            "1h-30m",
            "1h+30m",
            "+-1h",
            "--1h",
            "1,5h",
            "1..5h",
            "1.5.h",
            "0x10s",
            "1H",
            "1S",
            "1Ms",
            "1sec",
            "1µ",
            "1μ",
            "1hour",
            "1m1",
            "inf",
            "NaNs",
            "١s",
            "-9223372036854ms775us809ns",
            "9223372036854775810ns",
        ];
        for text in invalid {
            assert!(parse(text).is_err(), "{text:?} accepted: {:?}", parse(text));
        }
        assert_eq!(parse("3"), Err(DurationError::MissingUnit("3".into())));
        assert_eq!(
            parse("1d"),
            Err(DurationError::UnknownUnit {
                text: "1d".into(),
                unit: "d".into()
            })
        );
        assert_eq!(parse(""), Err(DurationError::Invalid(String::new())));
    }

    #[test]
    fn a_long_fraction_is_read_to_its_end() {
        // 18 nines are kept; float64 rounds them up to 1s, as in Go.
        let long = format!("1.{}s", "9".repeat(500));
        assert_eq!(parse(&long), Ok(SignedDuration::from_secs(2)));
    }
}

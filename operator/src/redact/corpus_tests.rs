//! The redaction corpus (testdata/redaction-corpus): secrets that must be gone, near misses
//! that must stay, and Kubernetes objects with their exact redacted form. Each text sample is
//! redacted as a log or file (line by line), alone, as a JSON log line and inside an object.

use super::{MaskCounts, Redactor, rules::RULES};
use serde_json::{Value, json};
use std::{borrow::Cow, path::PathBuf};

fn corpus_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/redaction-corpus")
        .join(name)
}

#[path = "../../testdata/redaction-corpus/samples.rs"]
mod corpus_format;
use corpus_format::Sample;

impl Sample {
    fn one_line(&self) -> bool {
        !self.text.contains('\n')
    }
}

fn samples(name: &str) -> Vec<Sample> {
    corpus_format::parse(&std::fs::read_to_string(corpus_path(name)).expect("corpus file"))
}

/// A JSON log line carrying the sample, as Velero's plugins and many tools write them.
fn json_log_line(text: &str) -> String {
    json!({"level": "info", "msg": text}).to_string()
}

/// The sample as the data of a ConfigMap, as the bundle collects objects.
fn config_map(text: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "sample"},
        "data": {"sample": text},
    })
}

/// How a secret reads inside a JSON string.
fn json_escaped(secret: &str) -> String {
    let quoted = serde_json::to_string(secret).expect("a string serializes");
    quoted[1..quoted.len() - 1].to_string()
}

fn known_rule(name: &str) -> bool {
    RULES.iter().any(|rule| rule.name == name)
}

#[test]
fn corpus_secrets_are_masked_everywhere() {
    let r = Redactor::new();
    let samples = samples("secrets.txt");
    let mut failures = Vec::new();
    let mut fail = |sample: &Sample, view: &str, what: String| {
        failures.push(format!(
            "secrets.txt:{} ({}) {view}: {what}",
            sample.line, sample.rule
        ));
    };
    for sample in &samples {
        if sample.secrets.is_empty() || sample.text.is_empty() || !known_rule(&sample.rule) {
            fail(
                sample,
                "sample",
                "needs a known rule, secrets and text".into(),
            );
            continue;
        }
        // A log or object-store file, line by line.
        let mut lines = r.stream();
        let out = lines.redact_text(&sample.text).into_owned();
        for secret in &sample.secrets {
            if out.contains(secret.as_str()) {
                fail(sample, "as a file", format!("{secret:?} left in {out:?}"));
            }
        }
        if lines.counts().get(&sample.rule) == 0 {
            fail(sample, "as a file", format!("counted {:?}", lines.counts()));
        }
        if r.stream().redact_text(&out) != out {
            fail(
                sample,
                "as a file",
                format!("a second pass changed {out:?}"),
            );
        }
        if sample.one_line() {
            let alone = r.redact_line(&sample.text);
            for secret in &sample.secrets {
                if alone.contains(secret.as_str()) {
                    fail(sample, "alone", format!("{secret:?} left in {alone:?}"));
                }
            }
            let line = json_log_line(&sample.text);
            let out = r.stream().redact_text(&line).into_owned();
            for secret in &sample.secrets {
                if out.contains(&json_escaped(secret)) {
                    fail(
                        sample,
                        "as a JSON line",
                        format!("{secret:?} left in {out}"),
                    );
                }
            }
        }
        let mut object = config_map(&sample.text);
        let mut counts = MaskCounts::default();
        r.redact_json_counted(&mut object, &mut counts);
        let out = object.to_string();
        for secret in &sample.secrets {
            if out.contains(&json_escaped(secret)) {
                fail(sample, "in an object", format!("{secret:?} left in {out}"));
            }
        }
        if counts.get(&sample.rule) == 0 {
            fail(sample, "in an object", format!("counted {counts:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(samples.len() >= 80, "{} secret samples", samples.len());
}

#[test]
fn corpus_covers_every_rule() {
    let samples = samples("secrets.txt");
    for rule in RULES {
        assert!(
            samples.iter().any(|s| s.rule == rule.name),
            "no sample for {}",
            rule.name
        );
    }
}

#[test]
fn corpus_near_misses_are_kept() {
    let r = Redactor::new();
    let samples = samples("near-misses.txt");
    let mut failures = Vec::new();
    for sample in &samples {
        let at = format!("near-misses.txt:{} ({})", sample.line, sample.rule);
        if sample.text.is_empty() || !known_rule(&sample.rule) {
            failures.push(format!("{at}: needs a known rule and text"));
            continue;
        }
        let mut lines = r.stream();
        for line in sample.text.lines() {
            if !matches!(lines.redact(line), Cow::Borrowed(l) if l == line) {
                failures.push(format!("{at} as a file: changed {line:?}"));
            }
            if !matches!(r.redact_line(line), Cow::Borrowed(_)) {
                failures.push(format!("{at} alone: changed {line:?}"));
            }
            let json_line = json_log_line(line);
            if r.redact_line(&json_line) != json_line {
                failures.push(format!("{at} as a JSON line: changed {json_line}"));
            }
        }
        let mut object = config_map(&sample.text);
        let masked = r.redact_json(&mut object);
        if masked != 0 || object != config_map(&sample.text) {
            failures.push(format!("{at} in an object: {masked} masked, {object}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(samples.len() >= 30, "{} near misses", samples.len());
}

/// Each objects/*.json holds `input`, its exact `expected` redaction and the `counts` by rule.
#[test]
fn corpus_objects_are_redacted_exactly() {
    let r = Redactor::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_path("objects"))
        .expect("objects directory")
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    files.sort();
    assert!(files.len() >= 3, "{} object cases", files.len());
    for file in files {
        let case: Value =
            serde_json::from_str(&std::fs::read_to_string(&file).expect("object case"))
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let mut object = case["input"].clone();
        let mut counts = MaskCounts::default();
        r.redact_json_counted(&mut object, &mut counts);
        assert_eq!(object, case["expected"], "{}", file.display());
        assert_eq!(
            serde_json::to_value(&counts).expect("counts serialize"),
            case["counts"],
            "{}",
            file.display()
        );
        assert_eq!(
            r.redact_json(&mut object),
            0,
            "second pass: {}",
            file.display()
        );
        assert_eq!(object, case["expected"], "second pass: {}", file.display());
    }
}

/// A log redacted as the log copy does it: the lines [`LineStream::unchanged_lines`] vouches
/// for passed on as they are, each other line redacted on its own.
fn redacted_by_blocks(r: &Redactor, log: &str) -> String {
    let mut lines = r.stream();
    let (mut out, mut rest) = (String::new(), log);
    while !rest.is_empty() {
        let unchanged = lines.unchanged_lines(rest.as_bytes());
        let (taken, after) = match unchanged {
            0 => {
                let end = rest.find('\n').map_or(rest.len(), |at| at + 1);
                let line = &rest[..end];
                out.push_str(&lines.redact(line.trim_end_matches('\n')));
                out.push_str(&line[line.trim_end_matches('\n').len()..]);
                rest.split_at(end)
            }
            n => rest.split_at(n),
        };
        if unchanged > 0 {
            out.push_str(taken);
        }
        rest = after;
    }
    out
}

#[test]
fn corpus_samples_amid_plain_lines_are_redacted_alike_in_blocks_and_line_by_line() {
    let r = Redactor::new();
    let plain = "time=\"t\" level=info msg=\"restored item\" logSource=\"pkg/restore.go:1\"\n";
    let mut compared = 0;
    for name in ["secrets.txt", "near-misses.txt"] {
        for sample in samples(name) {
            let log = format!("{}{}\n{}", plain.repeat(3), sample.text, plain.repeat(3));
            let by_line = r.stream().redact_text(&log).into_owned();
            assert_eq!(
                redacted_by_blocks(&r, &log),
                by_line,
                "{name}:{}",
                sample.line
            );
            compared += 1;
        }
    }
    assert!(compared >= 60, "{compared} samples");
    // Site patterns are tried on every line: no line is vouched for.
    let site = Redactor::with_extra_patterns(&["restored".to_string()]).unwrap();
    assert_eq!(site.stream().unchanged_lines(plain.as_bytes()), 0);
    assert!(redacted_by_blocks(&site, plain).contains(super::MARKER));
}

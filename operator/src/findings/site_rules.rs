//! A site's own rules (the troubleshoot model, bounded): a regex over the messages no built-in
//! rule recognised (results file groups, warning and error log lines, the target's failure
//! reason, operations' messages), with a title, a severity and a next step. Parsed and
//! validated once at start, so a bad rule stops the operator instead of a bundle; a site rule's
//! findings are ranked and counted like the built-in ones, as `site-<id>`.

use std::sync::Arc;

use regex::{Regex, RegexBuilder};
use serde::Deserialize;

use super::{Evidence, Finding, Layer, MAX_NEXT_STEP_CHARS, Severity, plural_times};

/// Rules a site may add: each is a metric label value and a regex run on every bundle.
pub(crate) const MAX_SITE_RULES: usize = 32;
const MAX_ID_CHARS: usize = 40;
const MAX_TITLE_CHARS: usize = 120;
/// Compiled size of one regex: a site rule must not cost a bundle more than a built-in one.
const MAX_REGEX_BYTES: usize = 256 * 1024;

/// As written in the chart's `diagnosis.siteRules` (JSON in `SITE_RULES`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SiteRuleSpec {
    id: String,
    #[serde(rename = "match")]
    pattern: String,
    title: String,
    #[serde(default = "default_severity")]
    severity: String,
    #[serde(default = "default_layer")]
    layer: String,
    next_step: String,
}

fn default_severity() -> String {
    "error".into()
}

fn default_layer() -> String {
    "items".into()
}

#[derive(Debug)]
struct SiteRule {
    /// `site-<id>`; leaked once at start (at most [`MAX_SITE_RULES`]) so findings keep the
    /// `&'static str` ids the built-in rules have.
    rule: &'static str,
    regex: Regex,
    title: String,
    severity: Severity,
    layer: Layer,
    next_step: String,
}

/// The site's rules; empty by default.
#[derive(Debug, Default, Clone)]
pub(crate) struct SiteRules(Arc<Vec<SiteRule>>);

#[derive(Debug, thiserror::Error, PartialEq)]
pub(crate) enum SiteRuleError {
    #[error("site rules are not a JSON list of rules: {0}")]
    Json(String),
    #[error("{0} site rules; at most {MAX_SITE_RULES}")]
    TooMany(usize),
    #[error("site rule {index}: {why}")]
    Invalid { index: usize, why: String },
}

impl SiteRules {
    /// Parses and validates `SITE_RULES` (a JSON list); empty text is no rule.
    pub(crate) fn parse(json: &str) -> Result<Self, SiteRuleError> {
        if json.trim().is_empty() {
            return Ok(Self::default());
        }
        let specs: Vec<SiteRuleSpec> =
            serde_json::from_str(json).map_err(|e| SiteRuleError::Json(e.to_string()))?;
        if specs.len() > MAX_SITE_RULES {
            return Err(SiteRuleError::TooMany(specs.len()));
        }
        let mut rules: Vec<SiteRule> = Vec::new();
        for (index, spec) in specs.into_iter().enumerate() {
            let invalid = |why: String| SiteRuleError::Invalid { index, why };
            let rule = validate(spec).map_err(invalid)?;
            if rules.iter().any(|r| r.rule == rule.rule) {
                return Err(invalid(format!("id {} is used twice", rule.rule)));
            }
            rules.push(rule);
        }
        Ok(Self(Arc::new(rules)))
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// The findings of every rule that matched a message no built-in rule recognised: the first
    /// match quoted, the matches counted.
    pub(crate) fn run(&self, e: &Evidence) -> Vec<Finding> {
        let texts = unrecognised(e);
        self.0
            .iter()
            .filter_map(|rule| {
                let mut hits = texts.iter().filter(|t| rule.regex.is_match(&t.text));
                let first = hits.next()?;
                let count = first.count + hits.map(|t| t.count).sum::<u64>();
                Some(
                    Finding::new(
                        rule.severity,
                        rule.layer,
                        rule.rule,
                        format!("{} ({})", rule.title, plural_times(count)),
                        &first.text,
                        &first.file,
                    )
                    .at_line(first.line)
                    .next_step(rule.next_step.clone()),
                )
            })
            .collect()
    }
}

fn validate(spec: SiteRuleSpec) -> Result<SiteRule, String> {
    let id_ok = !spec.id.is_empty()
        && spec.id.len() <= MAX_ID_CHARS
        && spec
            .id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !spec.id.starts_with('-')
        && !spec.id.ends_with('-');
    if !id_ok {
        return Err(format!(
            "id {:?} must be 1-{MAX_ID_CHARS} characters of a-z, 0-9 and inner '-'",
            spec.id
        ));
    }
    let regex = RegexBuilder::new(&spec.pattern)
        .size_limit(MAX_REGEX_BYTES)
        .build()
        .map_err(|e| format!("match {:?} is not a valid regex: {e}", spec.pattern))?;
    let text_ok = |s: &str, max: usize| !s.trim().is_empty() && s.chars().count() <= max;
    if !text_ok(&spec.title, MAX_TITLE_CHARS) {
        return Err(format!("title must be 1-{MAX_TITLE_CHARS} characters"));
    }
    if !text_ok(&spec.next_step, MAX_NEXT_STEP_CHARS) {
        return Err(format!(
            "nextStep must be 1-{MAX_NEXT_STEP_CHARS} characters"
        ));
    }
    let severity = match spec.severity.as_str() {
        "error" => Severity::Error,
        "warning" => Severity::Warning,
        other => return Err(format!("severity {other:?} is not error or warning")),
    };
    let layer = match spec.layer.as_str() {
        "platform" => Layer::Platform,
        "data-path" => Layer::DataPath,
        "volume-operations" => Layer::VolumeOperations,
        "items" => Layer::Items,
        "warnings" => Layer::Warnings,
        other => {
            return Err(format!(
                "layer {other:?} is not platform, data-path, volume-operations, items or warnings"
            ));
        }
    };
    Ok(SiteRule {
        rule: Box::leak(format!("site-{}", spec.id).into_boxed_str()),
        regex,
        title: spec.title,
        severity,
        layer,
        next_step: spec.next_step,
    })
}

/// A message no built-in pattern recognised, where it was and how often.
struct Unrecognised {
    text: String,
    file: String,
    line: Option<u64>,
    count: u64,
}

/// What site rules read: bounded already (groups of the results file and of log lines, the
/// target's own texts, the operations kept).
fn unrecognised(e: &Evidence) -> Vec<Unrecognised> {
    let t = &e.target;
    let own = t.failure_reason.iter().chain(&t.validation_errors);
    let mut texts: Vec<Unrecognised> = own
        .map(|text| Unrecognised {
            text: text.clone(),
            file: t.path.clone(),
            line: None,
            count: 1,
        })
        .collect();
    texts.extend(e.results.groups.iter().map(|g| Unrecognised {
        text: g.example.clone(),
        file: e.results.path.clone(),
        line: None,
        count: g.count,
    }));
    texts.extend(e.log_lines.iter().map(|(source, g)| Unrecognised {
        text: g.message.clone(),
        file: source.path.clone(),
        line: Some(g.first_line),
        count: g.count,
    }));
    texts.extend(
        e.operations
            .iter()
            .filter(|o| !o.message.is_empty())
            .map(|o| Unrecognised {
                text: o.message.clone(),
                file: o.path.clone(),
                line: None,
                count: 1,
            }),
    );
    texts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(json: &str) -> SiteRules {
        SiteRules::parse(json).unwrap()
    }

    #[test]
    fn a_site_rule_names_a_results_message_with_its_count_and_next_step() {
        let site = rules(
            r#"[{"id": "proxy-refused", "match": "proxy\\.corp:3128.*refused",
                 "title": "The corporate proxy refused the store", "severity": "error",
                 "layer": "platform",
                 "nextStep": "Allow the bucket's host in the proxy's allow list (ticket queue NET)."}]"#,
        );
        let mut e = Evidence::default();
        for _ in 0..3 {
            e.results.add(
                "object-store/results.json",
                "errors",
                "velero",
                "dial tcp proxy.corp:3128: connection refused",
            );
        }
        let found = site.run(&e);
        assert_eq!(found.len(), 1);
        let f = &found[0];
        assert_eq!(
            (f.rule, f.severity, f.layer),
            ("site-proxy-refused", Severity::Error, Layer::Platform)
        );
        assert_eq!(f.title, "The corporate proxy refused the store (3 times)");
        assert_eq!(f.file, "object-store/results.json");
        assert!(f.next_step.as_deref().unwrap().contains("ticket queue NET"));
        e.results = Default::default();
        assert!(site.run(&e).is_empty(), "nothing matched, nothing found");
    }

    #[test]
    fn bad_site_rules_are_refused_with_the_reason() {
        let one = |fields: &str| {
            format!(r#"[{{"id": "a", "match": "x", "title": "t", "nextStep": "n"{fields}}}]"#)
        };
        assert!(SiteRules::parse("").unwrap().len() == 0);
        assert!(matches!(
            SiteRules::parse("{").unwrap_err(),
            SiteRuleError::Json(_)
        ));
        let err = |json: &str| SiteRules::parse(json).unwrap_err().to_string();
        assert!(err(&one(r#", "severity": "fatal""#)).contains("severity \"fatal\""));
        assert!(err(&one(r#", "layer": "x""#)).contains("layer \"x\""));
        assert!(err(&one(r#", "extra": 1"#)).contains("unknown field"));
        assert!(
            err(r#"[{"id": "A B", "match": "x", "title": "t", "nextStep": "n"}]"#)
                .contains("id \"A B\"")
        );
        assert!(
            err(r#"[{"id": "a", "match": "(", "title": "t", "nextStep": "n"}]"#)
                .contains("not a valid regex")
        );
        assert!(
            err(r#"[{"id": "a", "match": "x", "title": " ", "nextStep": "n"}]"#).contains("title")
        );
        let step = "s".repeat(MAX_NEXT_STEP_CHARS + 1);
        assert!(
            err(&format!(
                r#"[{{"id": "a", "match": "x", "title": "t", "nextStep": "{step}"}}]"#
            ))
            .contains("nextStep")
        );
        let twice = r#"[{"id": "a", "match": "x", "title": "t", "nextStep": "n"},
                        {"id": "a", "match": "y", "title": "t", "nextStep": "n"}]"#;
        assert!(err(twice).contains("site rule 1: id site-a is used twice"));
        let many: Vec<String> = (0..=MAX_SITE_RULES)
            .map(|i| format!(r#"{{"id": "r{i}", "match": "x", "title": "t", "nextStep": "n"}}"#))
            .collect();
        assert_eq!(
            SiteRules::parse(&format!("[{}]", many.join(","))).unwrap_err(),
            SiteRuleError::TooMany(MAX_SITE_RULES + 1)
        );
        assert!(
            err(r#"[{"id": "a", "match": "x{100000}{100000}", "title": "t", "nextStep": "n"}]"#)
                .contains("not a valid regex")
        );
    }
}

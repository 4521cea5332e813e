//! The corpus's format, read by the operator's corpus test (src/redact/redact_tests.rs) and by
//! the end-to-end test that seeds the corpus into a real environment (tests/tests/e2e/
//! seeded_corpus.rs): `=== <rule>` starts a sample, the rule it is for; `!! <secret>` lines
//! right after it name the values that must not survive; the sample is the lines up to the
//! next `===`, trailing blank lines aside. Lines before the first sample are comments.

pub struct Sample {
    /// Where it starts in its file, for failure messages.
    pub line: usize,
    pub rule: String,
    pub secrets: Vec<String>,
    pub text: String,
}

pub fn parse(corpus: &str) -> Vec<Sample> {
    let mut samples: Vec<Sample> = Vec::new();
    for (i, line) in corpus.lines().enumerate() {
        if let Some(rule) = line.strip_prefix("=== ") {
            samples.push(Sample {
                line: i + 1,
                rule: rule.to_string(),
                secrets: Vec::new(),
                text: String::new(),
            });
            continue;
        }
        let Some(sample) = samples.last_mut() else {
            continue;
        };
        match line.strip_prefix("!! ") {
            Some(secret) if sample.text.is_empty() => sample.secrets.push(secret.to_string()),
            _ => {
                sample.text.push_str(line);
                sample.text.push('\n');
            }
        }
    }
    for sample in &mut samples {
        sample.text = sample.text.trim_end_matches('\n').to_string();
    }
    samples
}

//! Redaction of Kubernetes objects (as JSON): by structure first (a Secret's data, env
//! entries, secret-like keys, flags in args, the last-applied annotation), then every other
//! string as text.

use super::{MARKER, MaskCounts, Redactor, rules};
use regex::Regex;
use serde_json::{Map, Value};
use std::{borrow::Cow, sync::LazyLock};

/// A flag whose value, the next element of an args array, is a secret: `"--password", "x"`.
static SECRET_FLAG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        "(?i)^--?[a-z0-9_.-]*?(?:{})$",
        rules::SECRET_FLAG_WORDS
    ))
    .expect("secret flag pattern compiles")
});

impl Redactor {
    /// Masks a Kubernetes object in place; returns how many values were masked.
    #[cfg(test)]
    pub fn redact_json(&self, value: &mut Value) -> usize {
        let mut counts = MaskCounts::default();
        self.redact_json_counted(value, &mut counts);
        usize::try_from(counts.total()).unwrap_or(usize::MAX)
    }

    /// Masks a Kubernetes object in place, adding what it masked to `counts`. Becomes MARKER:
    /// a Secret's `data` and `stringData` values (`secret-data`), the value of an env entry
    /// with a secret-like name (`env-secret`), a string or number under a secret-like key, not
    /// a reference such as `secretName` (`secret-named-key-value`), the args element after a
    /// secret flag (`password-flag`) and the last-applied annotation. Every other string is
    /// masked as text (multi-line ones as a stream too); objects and arrays are walked.
    pub fn redact_json_counted(&self, value: &mut Value, counts: &mut MaskCounts) {
        match value {
            Value::String(s) => self.redact_string(s, counts),
            Value::Array(items) => self.redact_array(items, counts),
            Value::Object(map) => self.redact_object(map, counts),
            _ => {}
        }
    }

    fn redact_string(&self, s: &mut String, counts: &mut MaskCounts) {
        let masked = match self.mask(s, counts).0 {
            Cow::Borrowed(_) => None,
            Cow::Owned(masked) => Some(masked),
        };
        let text = masked.as_deref().unwrap_or(s.as_str());
        let by_line = if text.contains('\n') {
            let mut lines = self.stream();
            let by_line = match lines.redact_text(text) {
                Cow::Borrowed(_) => None,
                Cow::Owned(by_line) => Some(by_line),
            };
            counts.merge(lines.counts());
            by_line
        } else {
            None
        };
        if let Some(masked) = by_line.or(masked) {
            *s = masked;
        }
    }

    /// Elements are masked as strings, but a command's arguments also as a whole: the
    /// element after a secret flag (`"--password", "x"`), and a tool's password option
    /// (`"mysqladmin", "-pX"`, `"sshpass", "-p", "X"`).
    fn redact_array(&self, items: &mut [Value], counts: &mut MaskCounts) {
        let option = items
            .first()
            .and_then(Value::as_str)
            .and_then(password_option);
        let mut value_next = false;
        for item in items {
            let arg = item.as_str().unwrap_or_default();
            let takes_value = SECRET_FLAG.is_match(arg)
                || option.is_some_and(|(option, separate)| separate && arg == option);
            let is_value = value_next && !arg.is_empty() && !arg.starts_with('-');
            let attached = option.map(|(option, _)| option).filter(|&option| {
                arg.strip_prefix(option)
                    .is_some_and(|password| !password.is_empty() && password != MARKER)
            });
            if is_value && mask(item) {
                counts.add("password-flag", 1);
            } else if let Some(option) = attached {
                *item = Value::String(format!("{option}{MARKER}"));
                counts.add("password-flag", 1);
            } else {
                self.redact_json_counted(item, counts);
            }
            value_next = takes_value;
        }
    }

    fn redact_object(&self, map: &mut Map<String, Value>, counts: &mut MaskCounts) {
        // An env entry {"name": "AWS_SECRET_ACCESS_KEY", "value": "..."}.
        let env_secret = map.contains_key("value")
            && map
                .get("name")
                .and_then(Value::as_str)
                .is_some_and(rules::secret_name);
        // Defence in depth: Secrets are not collected, but if one comes, its data is all secret.
        let secret_kind = map.get("kind").and_then(Value::as_str) == Some("Secret");
        for (key, v) in map.iter_mut() {
            if secret_kind
                && (key == "data" || key == "stringData")
                && let Value::Object(data) = v
            {
                let masked = data.values_mut().map(mask).filter(|&m| m).count() as u64;
                if masked > 0 {
                    counts.add("secret-data", masked);
                }
                continue;
            }
            let rule = if key.ends_with("last-applied-configuration") {
                Some("last-applied-configuration")
            } else if env_secret && key == "value" {
                Some("env-secret")
            } else if rules::secret_name(key) {
                Some("secret-named-key-value")
            } else {
                None
            };
            match rule {
                Some(rule) if mask(v) => counts.add(rule, 1),
                _ => self.redact_json_counted(v, counts),
            }
        }
    }
}

/// A command's short option that takes a password, and whether its value may be the next
/// argument (`mysql -p X` asks for one and takes X as the database).
fn password_option(command: &str) -> Option<(&'static str, bool)> {
    match command.rsplit('/').next()? {
        "mysql" | "mysqldump" | "mysqladmin" | "mysqlimport" | "mysqlcheck" | "mysqlshow"
        | "mysqlpump" | "mysqlsh" | "mariadb" | "mariadb-dump" => Some(("-p", false)),
        "sshpass" | "mongo" | "mongosh" | "mongodump" | "mongorestore" | "mongoexport"
        | "mongoimport" => Some(("-p", true)),
        "redis-cli" => Some(("-a", true)),
        _ => None,
    }
}

/// Replaces a number or non-empty string by MARKER; true when that changed it.
fn mask(v: &mut Value) -> bool {
    let maskable = v.is_number() || v.as_str().is_some_and(|s| !s.is_empty() && s != MARKER);
    if maskable {
        *v = Value::String(MARKER.into());
    }
    maskable
}

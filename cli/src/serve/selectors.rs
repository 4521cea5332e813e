//! Label selectors (`a=b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`) and the field
//! selectors kubectl sends (`metadata.name=x`, `involvedObject.uid=...`, `a!=b`), matched
//! against a bundle's object. Field paths are read from the object itself, so every field a
//! real server indexes for a kind (and more) can be asked.

use serde_json::Value;

#[derive(Debug, PartialEq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    Absent(String),
}

#[derive(Debug, PartialEq)]
pub(crate) struct Selector {
    requirements: Vec<Requirement>,
    /// Fields are looked up by path in the object; labels in metadata.labels.
    fields: bool,
}

impl Selector {
    pub(crate) fn labels(text: &str) -> Result<Selector, String> {
        let requirements = split_outside_parens(text)
            .into_iter()
            .map(|part| label_requirement(part.trim()))
            .collect::<Result<_, _>>()?;
        Ok(Selector {
            requirements,
            fields: false,
        })
    }

    pub(crate) fn fields(text: &str) -> Result<Selector, String> {
        let requirements = text
            .split(',')
            .filter(|p| !p.trim().is_empty())
            .map(|part| match equality(part.trim()) {
                Some(r) => Ok(r),
                None => Err(format!("invalid field selector {part:?}")),
            })
            .collect::<Result<_, _>>()?;
        Ok(Selector {
            requirements,
            fields: true,
        })
    }

    pub(crate) fn matches(&self, object: &Value) -> bool {
        self.requirements.iter().all(|r| {
            let value = |key: &str| self.value_of(object, key);
            match r {
                Requirement::Equals(k, v) => value(k).as_deref() == Some(v.as_str()),
                Requirement::NotEquals(k, v) => value(k).as_deref() != Some(v.as_str()),
                Requirement::In(k, vs) => value(k).is_some_and(|x| vs.contains(&x)),
                Requirement::NotIn(k, vs) => value(k).is_none_or(|x| !vs.contains(&x)),
                Requirement::Exists(k) => value(k).is_some(),
                Requirement::Absent(k) => value(k).is_none(),
            }
        })
    }

    fn value_of(&self, object: &Value, key: &str) -> Option<String> {
        if !self.fields {
            return object["metadata"]["labels"][key].as_str().map(String::from);
        }
        let found = key.split('.').try_fold(object, |v, part| v.get(part));
        // A field the object lacks is "" to a real server's field selector.
        Some(match found {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        })
    }
}

fn split_outside_parens(text: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts.into_iter().filter(|p| !p.trim().is_empty()).collect()
}

fn equality(part: &str) -> Option<Requirement> {
    let pair = |sep: &str| {
        part.split_once(sep)
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
    };
    if let Some((k, v)) = pair("!=") {
        return Some(Requirement::NotEquals(k, v));
    }
    if let Some((k, v)) = pair("==").or_else(|| pair("=")) {
        return Some(Requirement::Equals(k, v));
    }
    None
}

fn label_requirement(part: &str) -> Result<Requirement, String> {
    if let Some(r) = equality(part) {
        return Ok(r);
    }
    let set = |rest: &str| -> Option<Vec<String>> {
        let inner = rest.trim().strip_prefix('(')?.strip_suffix(')')?;
        Some(inner.split(',').map(|v| v.trim().to_string()).collect())
    };
    let words: Vec<&str> = part.splitn(2, char::is_whitespace).collect();
    match words.as_slice() {
        [key, rest] if rest.trim_start().starts_with("notin") => {
            set(&rest.trim_start()["notin".len()..]).map(|v| Requirement::NotIn(key.to_string(), v))
        }
        [key, rest] if rest.trim_start().starts_with("in") => {
            set(&rest.trim_start()["in".len()..]).map(|v| Requirement::In(key.to_string(), v))
        }
        [key] if key.starts_with('!') => Some(Requirement::Absent(key[1..].to_string())),
        [key] => Some(Requirement::Exists(key.to_string())),
        _ => None,
    }
    .ok_or_else(|| format!("invalid label selector {part:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pvr(restore: &str) -> Value {
        json!({"metadata": {"name": "p", "namespace": "velero",
            "labels": {"velero.io/restore-name": restore, "tier": "db"}}})
    }

    #[test]
    fn label_selectors_match_as_a_server_does() {
        let s = Selector::labels("velero.io/restore-name=r1").unwrap();
        assert!(s.matches(&pvr("r1")) && !s.matches(&pvr("r2")));
        let s = Selector::labels("velero.io/restore-name in (r2, r3),tier").unwrap();
        assert!(s.matches(&pvr("r3")) && !s.matches(&pvr("r1")));
        assert!(
            Selector::labels("tier notin (web),!gone")
                .unwrap()
                .matches(&pvr("x"))
        );
        assert!(!Selector::labels("tier!=db").unwrap().matches(&pvr("x")));
        assert!(Selector::labels("a in b").is_err());
    }

    #[test]
    fn field_selectors_read_the_objects_paths_and_missing_is_empty() {
        let event = json!({"metadata": {"name": "e", "namespace": "shop"},
            "involvedObject": {"name": "web-0", "kind": "Pod", "uid": "u1"}});
        let s = Selector::fields(
            "involvedObject.name=web-0,involvedObject.namespace=,involvedObject.uid=u1",
        )
        .unwrap();
        assert!(s.matches(&event));
        assert!(!Selector::fields("metadata.name=f").unwrap().matches(&event));
        assert!(
            Selector::fields("metadata.namespace!=velero")
                .unwrap()
                .matches(&event)
        );
        assert!(Selector::fields("nonsense").is_err());
    }
}

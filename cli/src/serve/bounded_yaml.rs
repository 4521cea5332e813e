//! YAML read into JSON values with a bound on how many values it makes. An alias is replayed
//! by the parser each time it is used, so a small file of nested aliases expands into millions
//! of values; every value made here, replayed or not, is counted, and past the bound the
//! document is refused before the rest is expanded. The operator never writes aliases.

use std::{cell::Cell, fmt};

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// The values a file of `bytes` bytes may make: each takes at least two bytes of YAML
/// written out, so only aliases go past this.
pub(crate) fn budget_for(bytes: u64) -> usize {
    usize::try_from(bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(1024)
}

/// The documents of `text` as values, at most `budget` values in all; an error for the first
/// document that is not YAML or goes past the bound (the documents before it are kept).
pub(crate) fn documents(text: &str, budget: usize) -> (Vec<Value>, Option<String>) {
    let left = Cell::new(budget);
    let mut out = Vec::new();
    for document in serde_yaml::Deserializer::from_str(text) {
        match (Bounded { left: &left }).deserialize(document) {
            Ok(value) => out.push(value),
            Err(e) => return (out, Some(e.to_string())),
        }
    }
    (out, None)
}

#[derive(Clone, Copy)]
struct Bounded<'a> {
    left: &'a Cell<usize>,
}

impl Bounded<'_> {
    fn spend<E: de::Error>(self) -> Result<(), E> {
        match self.left.get().checked_sub(1) {
            Some(left) => {
                self.left.set(left);
                Ok(())
            }
            None => Err(E::custom(
                "more values than the file's size allows (aliases expanding?); not read",
            )),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Bounded<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Bounded<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.spend()?;
        Ok(v.into())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.spend()?;
        Ok(v.into())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        self.spend()?;
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.spend()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.spend()?;
        let mut out = Map::new();
        while let Some(key) = map.next_key_seed(self)? {
            let key = match key {
                Value::String(s) => s,
                other => other.to_string(),
            };
            out.insert(key, map.next_value_seed(self)?);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_of_objects_reads_as_serde_json_would() {
        let text = "a: 1\nb: [x, 2.5, true, null]\nc: {d: e}\n---\nkind: List\n";
        let (docs, error) = documents(text, budget_for(text.len() as u64));
        assert_eq!(error, None);
        assert_eq!(
            docs,
            [
                serde_json::json!({"a": 1, "b": ["x", 2.5, true, null], "c": {"d": "e"}}),
                serde_json::json!({"kind": "List"}),
            ]
        );
    }

    #[test]
    fn nested_aliases_are_refused_before_they_expand() {
        // 20 000 plain keys first, so the parser's own bound on alias jumps (a hundred per
        // event) stays far off; then each level doubles: 2^21 values from 140 KB.
        let mut text: String = (0..20_000).map(|i| format!("p{i}: 0\n")).collect();
        text.push_str("l0: &l0 [x, x]\n");
        for i in 1..=20 {
            text.push_str(&format!("l{i}: &l{i} [*l{}, *l{}]\n", i - 1, i - 1));
        }
        let started = std::time::Instant::now();
        let (docs, error) = documents(&text, budget_for(text.len() as u64));
        assert!(docs.is_empty());
        let error = error.expect("the bomb was read");
        assert!(error.contains("aliases expanding"), "{error}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}

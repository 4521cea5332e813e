//! YAML read into JSON values with a bound on the bytes they expand to. An alias is replayed
//! by the parser each time it is used, and each replay is copied whole into the values made:
//! a 256 KiB anchor aliased 60 000 times is 15 GiB from a file of 600 KB. So every value made
//! here costs what it copies (a string or key its bytes, any value one more), replayed or
//! not, and past the bound the document is refused before the rest is expanded. The operator
//! never writes aliases.

use std::{cell::Cell, fmt};

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// The bytes a file of `bytes` bytes may expand to. Without aliases, a value costs at most
/// about twice what it takes written out (one byte for a value written in one, and escapes
/// such as `\L`, two bytes for a character of three), so only aliases go past this.
pub(crate) fn budget_for(bytes: u64) -> u64 {
    bytes.saturating_mul(2).saturating_add(4096)
}

/// The documents of `text` as values, expanding to at most `budget` bytes in all; an error
/// for the first document that is not YAML or goes past the bound (the documents before it
/// are kept).
pub(crate) fn documents(text: &str, budget: u64) -> (Vec<Value>, Option<String>) {
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

/// The one document of `text`, or None when it is not YAML, expands past the bound of its
/// size or is followed by another.
pub(crate) fn document(text: &str) -> Option<Value> {
    match documents(text, budget_for(text.len() as u64)) {
        (mut docs, None) if docs.len() == 1 => docs.pop(),
        _ => None,
    }
}

#[derive(Clone, Copy)]
struct Bounded<'a> {
    left: &'a Cell<u64>,
}

impl Bounded<'_> {
    /// Takes the cost of a value copying `copied` bytes.
    fn spend<E: de::Error>(self, copied: usize) -> Result<(), E> {
        let cost = (copied as u64).saturating_add(1);
        match self.left.get().checked_sub(cost) {
            Some(left) => {
                self.left.set(left);
                Ok(())
            }
            None => Err(E::custom(
                "it expands to more bytes than its size allows (aliases expanding?); not read",
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
        self.spend(0)?;
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.spend(0)?;
        Ok(v.into())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.spend(0)?;
        Ok(v.into())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        self.spend(0)?;
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.spend(v.len())?;
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.spend(v.len())?;
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.spend(0)?;
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.spend(0)?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.spend(0)?;
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
pub(crate) mod tests {
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

    /// One 256 KiB anchor aliased `aliases` times: few values, many bytes.
    pub(crate) fn anchor_bomb(aliases: usize) -> String {
        let mut text = format!("a: &a {}\nb:\n", "x".repeat(256 << 10));
        text.push_str(&"- *a\n".repeat(aliases));
        text
    }

    #[test]
    fn a_large_anchor_aliased_many_times_costs_what_it_copies() {
        // 400 copies: 100 MiB expanded from 258 KB, counted as 400 values by a count of values.
        let text = anchor_bomb(400);
        let started = std::time::Instant::now();
        let (docs, error) = documents(&text, budget_for(text.len() as u64));
        assert!(docs.is_empty());
        let error = error.expect("the bomb was read");
        assert!(
            error.contains("expands to more bytes than its size allows"),
            "{error}"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert_eq!(document(&text), None);
    }

    #[test]
    fn files_without_aliases_fit_their_bound_escapes_and_all() {
        // `\L` is two bytes written and three expanded; a one-letter value one and two.
        let escapes = format!("a: \"{}\"\n", "\\L".repeat(10_000));
        let short: String = (0..10_000).map(|_| "- x\n").collect();
        let flow = format!("[{}]\n", vec!["x"; 10_000].join(","));
        for text in [escapes, short, flow] {
            let (docs, error) = documents(&text, budget_for(text.len() as u64));
            assert_eq!((docs.len(), error), (1, None));
        }
        // One alias of a small anchor, as a hand-written file may have.
        let value = document("a: &x {k: v}\nb: *x\n").unwrap();
        assert_eq!(value["b"], serde_json::json!({"k": "v"}));
        assert_eq!(document("a: 1\n---\nb: 2\n"), None);
    }
}

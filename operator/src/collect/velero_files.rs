//! Velero's JSON files (results, itemoperations) read as a stream into the findings' evidence:
//! each message or entry is handed over and dropped, so a results file of a million messages
//! is never held in memory, as a parsed document would be.

use std::{fmt, io::Read};

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::findings::{Evidence, ResultGroups};

/// `{"errors": {"velero": [..], "cluster": [..], "namespaces": {ns: [..]}}, "warnings": ..}`,
/// each message added to `results` (the target's, or a restore's backup's).
pub(super) fn feed_results(
    reader: impl Read,
    path: &str,
    results: &mut ResultGroups,
) -> serde_json::Result<()> {
    let mut de = serde_json::Deserializer::from_reader(std::io::BufReader::new(reader));
    Results { path, results }.deserialize(&mut de)?;
    de.end()
}

/// A JSON array of item operations, each given to [`Evidence::add_item_operation`].
pub(super) fn feed_item_operations(
    reader: impl Read,
    path: &str,
    evidence: &mut Evidence,
) -> serde_json::Result<()> {
    let mut de = serde_json::Deserializer::from_reader(std::io::BufReader::new(reader));
    ItemOperations { path, evidence }.deserialize(&mut de)?;
    de.end()
}

struct Results<'a> {
    path: &'a str,
    results: &'a mut ResultGroups,
}

impl<'de> DeserializeSeed<'de> for Results<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Results<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Velero results object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(severity) = map.next_key::<String>()? {
            map.next_value_seed(Scopes {
                path: self.path,
                severity: &severity,
                results: self.results,
            })?;
        }
        Ok(())
    }
}

/// One severity: `velero`, `cluster` (lists) and `namespaces` (a map of lists).
struct Scopes<'a> {
    path: &'a str,
    severity: &'a str,
    results: &'a mut ResultGroups,
}

impl<'de> DeserializeSeed<'de> for Scopes<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Scopes<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("the errors or warnings of a results file")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key == "namespaces" {
                map.next_value_seed(Namespaces {
                    path: self.path,
                    severity: self.severity,
                    results: self.results,
                })?;
            } else {
                map.next_value_seed(Messages {
                    path: self.path,
                    severity: self.severity,
                    scope: &key,
                    results: self.results,
                })?;
            }
        }
        Ok(())
    }
}

struct Namespaces<'a> {
    path: &'a str,
    severity: &'a str,
    results: &'a mut ResultGroups,
}

impl<'de> DeserializeSeed<'de> for Namespaces<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Namespaces<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("messages by namespace")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(ns) = map.next_key::<String>()? {
            map.next_value_seed(Messages {
                path: self.path,
                severity: self.severity,
                scope: &format!("namespace {ns}"),
                results: self.results,
            })?;
        }
        Ok(())
    }
}

struct Messages<'a> {
    path: &'a str,
    severity: &'a str,
    scope: &'a str,
    results: &'a mut ResultGroups,
}

impl<'de> DeserializeSeed<'de> for Messages<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Messages<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of messages")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(message) = seq.next_element::<serde_json::Value>()? {
            let text = match &message {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            self.results
                .add(self.path, self.severity, self.scope, &text);
        }
        Ok(())
    }
}

struct ItemOperations<'a> {
    path: &'a str,
    evidence: &'a mut Evidence,
}

impl<'de> DeserializeSeed<'de> for ItemOperations<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ItemOperations<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of item operations")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        // One entry is small (spec and status of one operation); only it is held at a time.
        while let Some(op) = seq.next_element::<serde_json::Value>()? {
            self.evidence.add_item_operation(self.path, &op);
        }
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_streamed_into_the_evidence_by_scope() {
        let json = br#"{"errors": {"namespaces": {"shop": ["error restoring pods/shop/a: exceeded quota: q"]}},
                        "warnings": {"velero": ["plugin warning"], "cluster": null}}"#;
        let mut e = Evidence::default();
        feed_results(&json[..], "object-store/results.json", &mut e.results).unwrap();
        assert_eq!(e.results.total("error"), 1);
        assert_eq!(e.results.total("warning"), 1);
        assert_eq!(e.results.groups[0].scope, "namespace shop");
        assert_eq!(e.results.groups[1].scope, "velero");
    }

    #[test]
    fn item_operations_are_streamed_and_counted() {
        let json = br#"[{"spec": {"operationID": "du-1", "backupItemAction": "velero.io/csi-pvc-backupper",
                          "resourceIdentifier": {"Group": "", "Resource": "persistentvolumeclaims", "Namespace": "shop", "Name": "data"}},
                         "status": {"phase": "Failed", "error": "DataUpload is canceled"}},
                        {"spec": {"operationID": "du-2"}, "status": {"phase": "Completed"}}]"#;
        let mut e = Evidence::default();
        feed_item_operations(&json[..], "object-store/itemoperations.json", &mut e).unwrap();
        assert_eq!(e.item_operation_phases["Failed"], 1);
        assert_eq!(e.item_operation_phases["Completed"], 1);
        assert_eq!(e.item_operations.len(), 1);
        assert_eq!(
            e.item_operations[0].item,
            "persistentvolumeclaims/shop/data"
        );
        assert!(feed_results(&b"[1,2]"[..], "r", &mut e.results).is_err());
    }
}

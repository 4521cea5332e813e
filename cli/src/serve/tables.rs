//! Table output (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`), what `kubectl get`
//! prints: Kubernetes' kinds with the columns their own server prints (kube_columns.rs), Velero's
//! with its CRDs' additionalPrinterColumns, anything else with NAME and AGE as an API server
//! prints a CRD without columns.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::{
    columns::{Column, column},
    kinds::Kind,
    kube_columns,
};
use crate::print::age;

/// What `?includeObject=` asked each row to carry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Include {
    None,
    Metadata,
    Object,
}

impl Include {
    pub(crate) fn from_query(value: Option<&str>) -> Include {
        match value {
            Some("None") => Include::None,
            Some("Object") => Include::Object,
            _ => Include::Metadata,
        }
    }
}

pub(crate) fn table(kind: &Kind, objects: &[&Value], now: Timestamp, include: Include) -> Value {
    let columns = columns_of(kind);
    let definitions: Vec<Value> = columns
        .iter()
        .map(|c| {
            json!({"name": c.name, "type": c.kind, "format": if c.name == "Name" {"name"} else {""},
            "description": "", "priority": c.priority})
        })
        .collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let cells: Vec<Value> = columns.iter().map(|c| (c.cell)(o, now)).collect();
            let object = match include {
                Include::None => Value::Null,
                Include::Object => (*o).clone(),
                Include::Metadata => json!({"kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]}),
            };
            json!({"cells": cells, "object": object})
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": "1"},
        "columnDefinitions": definitions, "rows": rows})
}

fn columns_of(kind: &Kind) -> Vec<Column> {
    let name = column("Name", 0, |o, _| o["metadata"]["name"].clone());
    let age = column("Age", 0, |o, now| {
        age::since(o["metadata"]["creationTimestamp"].as_str(), now).into()
    });
    match &kind.columns {
        Some(crd) if crd.is_empty() => vec![name, age],
        Some(crd) => std::iter::once(name)
            .chain(crd.iter().map(crd_column))
            .collect(),
        None => kube_columns::of(kind.plural.as_str()).unwrap_or_else(|| vec![name, age]),
    }
}

/// A CRD printer column: its JSON path read from the object, a date as an age.
fn crd_column(c: &super::kinds::Column) -> Column {
    let path: Vec<String> = c
        .json_path
        .trim_start_matches('.')
        .split('.')
        .map(String::from)
        .collect();
    let kind: &'static str = match c.kind.as_str() {
        "integer" => "integer",
        "number" => "number",
        "boolean" => "boolean",
        "date" => "date",
        _ => "string",
    };
    let is_date = kind == "date";
    Column {
        name: c.name.clone(),
        kind,
        priority: c.priority,
        cell: Box::new(move |o, now| {
            let value = path
                .iter()
                .try_fold(o, |v, p| v.get(p))
                .cloned()
                .unwrap_or(Value::Null);
            match (&value, is_date) {
                (Value::String(t), true) => age::since(Some(t), now).into(),
                _ => value,
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::kinds;

    #[test]
    fn a_velero_kind_prints_its_crd_columns_with_dates_as_ages() {
        let all = kinds::known();
        let pvr = all
            .iter()
            .find(|k| k.plural == "podvolumerestores")
            .unwrap();
        let now: Timestamp = "2026-01-01T00:10:00Z".parse().unwrap();
        let o = json!({"metadata": {"name": "p1", "namespace": "velero"},
            "status": {"phase": "Failed", "startTimestamp": "2026-01-01T00:00:00Z"}});
        let t = table(pvr, &[&o], now, Include::Metadata);
        let names: Vec<&str> = t["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names[0], "Name");
        let cells = &t["rows"][0]["cells"];
        let at = |n: &str| &cells[names.iter().position(|x| *x == n).unwrap()];
        assert_eq!(at("Name"), "p1");
        assert_eq!(at("Status"), "Failed");
        assert_eq!(at("Started"), "10m");
        assert_eq!(t["rows"][0]["object"]["metadata"]["namespace"], "velero");
    }

    #[test]
    fn a_kind_without_columns_prints_name_and_age() {
        let k = kinds::guessed("x.io/v1", "Thing", true);
        let o = json!({"metadata": {"name": "t"}});
        let t = table(&k, &[&o], Timestamp::now(), Include::None);
        assert_eq!(t["columnDefinitions"].as_array().unwrap().len(), 2);
        assert_eq!(t["rows"][0]["cells"][1], "<unknown>");
        assert!(t["rows"][0]["object"].is_null());
    }
}

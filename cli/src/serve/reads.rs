//! GET of a collection or an object: the bundle's objects of the kind, in the namespace,
//! matching the selectors, as a List or (when kubectl asks) a Table.

use std::collections::HashMap;

use axum::response::Response;
use serde_json::{Value, json};

use super::{
    objects::Store,
    responses::{not_found, ok},
    routes::Resource,
    selectors::Selector,
    tables::{self, Include},
};

/// The parts of a request a read looks at.
pub(crate) struct ReadRequest<'a> {
    pub query: &'a HashMap<String, String>,
    pub wants_table: bool,
}

/// The objects of `resource` the query's selectors select, or why the selectors are invalid.
pub(crate) fn select<'s>(
    objects: &'s [Value],
    resource: &Resource,
    query: &HashMap<String, String>,
) -> Result<Vec<&'s Value>, String> {
    let labels = Selector::labels(query.get("labelSelector").map_or("", String::as_str))?;
    let fields = Selector::fields(query.get("fieldSelector").map_or("", String::as_str))?;
    Ok(objects
        .iter()
        .filter(|o| {
            resource
                .namespace
                .as_deref()
                .is_none_or(|ns| o["metadata"]["namespace"] == ns)
        })
        .filter(|o| labels.matches(o) && fields.matches(o))
        .collect())
}

pub(crate) fn list(
    store: &Store,
    kind: usize,
    objects: &[&Value],
    request: &ReadRequest,
) -> Response {
    let k = &store.kinds[kind];
    if request.wants_table {
        let include = Include::from_query(request.query.get("includeObject").map(String::as_str));
        return ok(&tables::table(k, objects, jiff::Timestamp::now(), include));
    }
    ok(
        &json!({"kind": format!("{}List", k.kind), "apiVersion": k.api_version(),
        "metadata": {"resourceVersion": "1"}, "items": objects}),
    )
}

pub(crate) fn object(
    store: &Store,
    kind: usize,
    objects: &[Value],
    resource: &Resource,
    name: &str,
    request: &ReadRequest,
) -> Response {
    let found = objects.iter().find(|o| {
        o["metadata"]["name"] == name
            && resource
                .namespace
                .as_deref()
                .is_none_or(|ns| o["metadata"]["namespace"] == ns)
    });
    let Some(found) = found else {
        let k = &store.kinds[kind];
        let group = if k.group.is_empty() {
            String::new()
        } else {
            format!(".{}", k.group)
        };
        return not_found(&format!("{}{group} \"{name}\"", k.plural));
    };
    if request.wants_table {
        let include = Include::from_query(request.query.get("includeObject").map(String::as_str));
        return ok(&tables::table(
            &store.kinds[kind],
            &[found],
            jiff::Timestamp::now(),
            include,
        ));
    }
    ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_keeps_the_namespace_and_the_selectors_objects() {
        let objects = vec![
            json!({"metadata": {"name": "a", "namespace": "velero", "labels": {"r": "x"}}}),
            json!({"metadata": {"name": "b", "namespace": "velero", "labels": {"r": "y"}}}),
            json!({"metadata": {"name": "c", "namespace": "shop", "labels": {"r": "x"}}}),
        ];
        let resource = |ns: Option<&str>| Resource {
            group: "velero.io".into(),
            version: "v1".into(),
            plural: "podvolumerestores".into(),
            namespace: ns.map(String::from),
        };
        let q: HashMap<String, String> = [("labelSelector".to_string(), "r=x".to_string())].into();
        let names = |v: Vec<&Value>| {
            v.iter()
                .map(|o| o["metadata"]["name"].clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(select(&objects, &resource(Some("velero")), &q).unwrap()),
            [json!("a")]
        );
        assert_eq!(
            names(select(&objects, &resource(None), &q).unwrap()).len(),
            2
        );
        let bad: HashMap<String, String> = [("fieldSelector".to_string(), "x".to_string())].into();
        assert!(select(&objects, &resource(None), &bad).is_err());
    }
}

//! Just enough OpenAPI v3 for `kubectl apply` to leave validation to the server (it checks
//! that each kind's PATCH takes `fieldValidation`) and send its write, which the server then
//! refuses with its own message. No schema is published: nothing here is ever written.

use serde_json::{Value, json};

use super::kinds::Kind;

fn group_version_path(k: &Kind) -> String {
    if k.group.is_empty() {
        format!("api/{}", k.version)
    } else {
        format!("apis/{}/{}", k.group, k.version)
    }
}

/// /openapi/v3: one document per group/version.
pub(crate) fn root(kinds: &[Kind]) -> Value {
    let mut paths = serde_json::Map::new();
    for k in kinds {
        let gv = group_version_path(k);
        paths.insert(
            gv.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{gv}")}),
        );
    }
    json!({"paths": paths})
}

/// /openapi/v3/api/v1, /openapi/v3/apis/G/V: a PATCH per kind, taking fieldValidation.
pub(crate) fn group_version(kinds: &[Kind], path: &str) -> Option<Value> {
    let mut paths = serde_json::Map::new();
    for k in kinds.iter().filter(|k| group_version_path(k) == path) {
        let scope = if k.namespaced {
            "namespaces/{namespace}/"
        } else {
            ""
        };
        let url = format!("/{path}/{scope}{}/{{name}}", k.plural);
        paths.insert(url, json!({"patch": {
            "x-kubernetes-group-version-kind": {"group": k.group, "version": k.version, "kind": k.kind},
            "parameters": [{"name": "fieldValidation", "in": "query", "schema": {"type": "string"}}],
            "responses": {"405": {"description": "the bundle is read-only"}}}}));
    }
    if paths.is_empty() {
        return None;
    }
    Some(json!({"openapi": "3.0.0",
        "info": {"title": "velero-debug bundle", "version": "v1"}, "paths": paths}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::kinds;

    #[test]
    fn each_kinds_patch_takes_field_validation() {
        let k = kinds::known();
        let r = root(&k);
        assert_eq!(
            r["paths"]["api/v1"]["serverRelativeURL"],
            "/openapi/v3/api/v1"
        );
        assert!(r["paths"]["apis/velero.io/v2alpha1"].is_object());
        let core = group_version(&k, "api/v1").unwrap();
        let cm = &core["paths"]["/api/v1/namespaces/{namespace}/configmaps/{name}"]["patch"];
        assert_eq!(cm["x-kubernetes-group-version-kind"]["kind"], "ConfigMap");
        assert_eq!(cm["parameters"][0]["name"], "fieldValidation");
        assert!(group_version(&k, "apis/nope/v1").is_none());
    }
}

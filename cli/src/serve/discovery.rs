//! Plain (unaggregated) discovery: /api, /apis, /apis/G, /api/v1, /apis/G/V, /version. kubectl
//! and Velero's client fall back to it when the answer is not an aggregated discovery document.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::kinds::Kind;

/// What /version says: the server is the bundle, not a cluster.
pub(crate) fn version() -> Value {
    json!({"major": "1", "minor": "32", "gitVersion": "v1.32.0-velero-debug-bundle",
        "gitCommit": "", "gitTreeState": "clean", "buildDate": "", "goVersion": "",
        "compiler": "rustc", "platform": "bundle"})
}

pub(crate) fn core_versions() -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})
}

/// Groups with their versions in the order they appear; the first is the preferred one.
fn groups(kinds: &[Kind]) -> BTreeMap<&str, Vec<&str>> {
    let mut groups: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for k in kinds.iter().filter(|k| !k.group.is_empty()) {
        let versions = groups.entry(&k.group).or_default();
        if !versions.contains(&k.version.as_str()) {
            versions.push(&k.version);
        }
    }
    groups
}

fn group_json(name: &str, versions: &[&str]) -> Value {
    let v: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    json!({"kind": "APIGroup", "apiVersion": "v1", "name": name, "versions": v,
        "preferredVersion": v[0]})
}

pub(crate) fn group_list(kinds: &[Kind]) -> Value {
    let list: Vec<Value> = groups(kinds)
        .iter()
        .map(|(g, v)| group_json(g, v))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": list})
}

pub(crate) fn group(kinds: &[Kind], name: &str) -> Option<Value> {
    groups(kinds).get(name).map(|v| group_json(name, v))
}

pub(crate) fn resources(kinds: &[Kind], group: &str, version: &str) -> Option<Value> {
    let list: Vec<Value> = kinds
        .iter()
        .filter(|k| k.group == group && k.version == version)
        .map(|k| {
            // Only reads, but for the DownloadRequests Velero's CLI creates (downloads.rs).
            let verbs = if k.kind == "DownloadRequest" {
                json!(["create", "delete", "get", "list"])
            } else {
                json!(["get", "list"])
            };
            let mut r = json!({"name": k.plural, "singularName": k.singular(),
                "namespaced": k.namespaced, "kind": k.kind, "verbs": verbs});
            if !k.short_names.is_empty() {
                r["shortNames"] = json!(k.short_names);
            }
            r
        })
        .collect();
    if list.is_empty() {
        return None;
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version,
        "resources": list}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::kinds;

    #[test]
    fn every_known_group_and_version_is_discovered() {
        let k = kinds::known();
        let groups = group_list(&k);
        let names: Vec<&str> = groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["name"].as_str().unwrap())
            .collect();
        for g in [
            "apps",
            "batch",
            "storage.k8s.io",
            "snapshot.storage.k8s.io",
            "velero.io",
        ] {
            assert!(names.contains(&g), "{g} in {names:?}");
        }
        let velero = group(&k, "velero.io").unwrap();
        assert_eq!(velero["preferredVersion"]["version"], "v1");
        assert_eq!(velero["versions"].as_array().unwrap().len(), 2);
        let core = resources(&k, "", "v1").unwrap();
        let pods = core["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "pods")
            .unwrap();
        assert_eq!(pods["shortNames"][0], "po");
        let dr = resources(&k, "velero.io", "v1").unwrap();
        assert!(dr.to_string().contains("\"create\""));
        assert!(resources(&k, "nope", "v1").is_none());
    }
}

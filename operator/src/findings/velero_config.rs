//! The ConfigMaps Velero's flags name, as collected (collect/velero_config_maps.rs), and the
//! value a finding blames in them: node-agent's holds one JSON document under a key of the
//! user's choice; the maintenance one a JSON document per repository key (`global` for all).

use serde_json::Value;

use super::text::cap;

/// Which of Velero's ConfigMaps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VeleroConfigMap {
    /// node-agent's `--node-agent-configmap`: data-path pods' resources, loads, placement.
    NodeAgent,
    /// The server's `--repo-maintenance-job-configmap`.
    RepositoryMaintenance,
}

impl VeleroConfigMap {
    /// The flag that names it.
    pub(crate) fn flag(self) -> &'static str {
        match self {
            VeleroConfigMap::NodeAgent => "node-agent's --node-agent-configmap",
            VeleroConfigMap::RepositoryMaintenance => {
                "the Velero server's --repo-maintenance-job-configmap"
            }
        }
    }
}

/// What became of reading one.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ConfigMapRead {
    /// Its file in the bundle and its (redacted) data.
    Read {
        path: String,
        data: Value,
    },
    Missing,
    /// Refused, and why (naming the chart value that grants it).
    Refused(String),
    Failed(String),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ConfigMapEvidence {
    pub role: VeleroConfigMap,
    pub name: String,
    pub read: ConfigMapRead,
}

/// What a ConfigMap says of one setting (`podResources.memoryLimit`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Setting {
    /// No flag names a ConfigMap of this kind.
    NoConfigMap,
    /// Set: in ConfigMap `name`, under data key `key`, to `value`.
    Set {
        name: String,
        path: String,
        key: String,
        value: String,
    },
    /// The ConfigMap was read and does not set it.
    NotSet { name: String },
    /// The ConfigMap could not be read: why.
    Unread { name: String, why: String },
}

impl Setting {
    /// `ConfigMap velero/na-config, key node-agent-config.json: podResources.memoryLimit
    /// 64Mi`, or what is known instead.
    pub(crate) fn describe(&self, namespace: &str, setting: &str) -> Option<String> {
        match self {
            Setting::NoConfigMap => None,
            Setting::Set {
                name, key, value, ..
            } => Some(format!(
                "ConfigMap {namespace}/{name}, key {key}: {setting} {value}"
            )),
            Setting::NotSet { name } => {
                Some(format!("ConfigMap {namespace}/{name} sets no {setting}"))
            }
            Setting::Unread { name, why } => Some(format!(
                "ConfigMap {namespace}/{name} could not be read ({why}), so its {setting} is not known"
            )),
        }
    }
}

/// `setting` (a dotted path, `podResources.memoryLimit`) in the ConfigMap of `role`: under
/// any data key for node-agent's, under `keys` in order for the maintenance one (the
/// repository's key, then `global`).
pub(crate) fn setting(
    maps: &[ConfigMapEvidence],
    role: VeleroConfigMap,
    keys: &[&str],
    setting: &str,
) -> Setting {
    let Some(map) = maps.iter().find(|m| m.role == role) else {
        return Setting::NoConfigMap;
    };
    let name = map.name.clone();
    let (path, data) = match &map.read {
        ConfigMapRead::Read { path, data } => (path, data),
        ConfigMapRead::Missing => {
            return Setting::Unread {
                name,
                why: "it does not exist".into(),
            };
        }
        ConfigMapRead::Refused(why) | ConfigMapRead::Failed(why) => {
            return Setting::Unread {
                name,
                why: why.clone(),
            };
        }
    };
    let entries: Vec<(&String, &Value)> = match data.as_object() {
        Some(entries) if keys.is_empty() => entries.iter().collect(),
        Some(entries) => keys
            .iter()
            .filter_map(|k| entries.get_key_value(*k))
            .collect(),
        None => Vec::new(),
    };
    for (key, text) in entries {
        let Some(document) = text
            .as_str()
            .and_then(|t| serde_json::from_str::<Value>(t).ok())
        else {
            continue;
        };
        let found = setting
            .split('.')
            .try_fold(&document, |v, part| v.get(part));
        if let Some(value) = found.and_then(value_text) {
            return Setting::Set {
                name,
                path: path.clone(),
                key: cap(key, 120),
                value: cap(&value, 120),
            };
        }
    }
    Setting::NotSet { name }
}

/// A setting's value as said in a finding: a list or object (`loadAffinity`) as compact JSON.
fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(_) | Value::Object(_) => Some(v.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(role: VeleroConfigMap, data: Value) -> Vec<ConfigMapEvidence> {
        vec![ConfigMapEvidence {
            role,
            name: "cfg".into(),
            read: ConfigMapRead::Read {
                path: "resources/configmap/cfg.yaml".into(),
                data,
            },
        }]
    }

    #[test]
    fn node_agent_s_document_is_found_under_any_key() {
        let maps = read(
            VeleroConfigMap::NodeAgent,
            json!({"whatever.json": r#"{"podResources":{"memoryLimit":"64Mi"}}"#}),
        );
        let found = setting(
            &maps,
            VeleroConfigMap::NodeAgent,
            &[],
            "podResources.memoryLimit",
        );
        assert_eq!(
            found
                .describe("velero", "podResources.memoryLimit")
                .unwrap(),
            "ConfigMap velero/cfg, key whatever.json: podResources.memoryLimit 64Mi"
        );
    }

    #[test]
    fn the_maintenance_repository_key_comes_before_global() {
        let maps = read(
            VeleroConfigMap::RepositoryMaintenance,
            json!({
                "global": r#"{"podResources":{"memoryLimit":"1Gi"}}"#,
                "shop-default-kopia": r#"{"podResources":{"memoryLimit":"12Mi"}}"#,
            }),
        );
        let found = setting(
            &maps,
            VeleroConfigMap::RepositoryMaintenance,
            &["shop-default-kopia", "global"],
            "podResources.memoryLimit",
        );
        assert!(
            matches!(found, Setting::Set { ref value, .. } if value == "12Mi"),
            "{found:?}"
        );
    }

    #[test]
    fn unreadable_documents_and_refusals_say_what_is_not_known() {
        let maps = read(VeleroConfigMap::NodeAgent, json!({"a": "not json", "b": 7}));
        let found = setting(
            &maps,
            VeleroConfigMap::NodeAgent,
            &[],
            "podResources.memoryLimit",
        );
        assert_eq!(found, Setting::NotSet { name: "cfg".into() });
        let refused = vec![ConfigMapEvidence {
            role: VeleroConfigMap::NodeAgent,
            name: "cfg".into(),
            read: ConfigMapRead::Refused("forbidden".into()),
        }];
        let found = setting(
            &refused,
            VeleroConfigMap::NodeAgent,
            &[],
            "podResources.memoryLimit",
        );
        assert!(
            found
                .describe("velero", "podResources.memoryLimit")
                .unwrap()
                .contains("could not be read (forbidden)")
        );
        let none = setting(&[], VeleroConfigMap::NodeAgent, &[], "x");
        assert_eq!(none, Setting::NoConfigMap);
    }
}

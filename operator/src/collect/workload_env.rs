//! The literal env values of an application's pods, masked before they are written. The
//! redactor masks values whose *name* looks secret, but applications name secrets as they
//! please (`DB_PW`, `SIGNING_SALT`, `DB_PASSWORD_PROD`), and their settings are not diagnosis
//! evidence: the names and `valueFrom` references are. So every literal `env[].value` of a
//! container of an object outside Velero's namespace (a Pod, or a pod template in a
//! Deployment, StatefulSet, Job...) becomes the mask, unless the operator is told to keep
//! them (`--keep-workload-env-values`). Velero's own pods keep theirs: their flags and
//! settings are evidence, and the redactor's rules still mask their secrets.

use serde_json::Value;

use crate::redact::{MARKER, MaskCounts};

/// The rule's name in `manifest.json`'s `maskedByRule`.
pub(crate) const RULE: &str = "workload-env-value";

/// Keys whose array holds containers, wherever a pod spec sits in an object.
const CONTAINER_LISTS: [&str; 3] = ["containers", "initContainers", "ephemeralContainers"];

/// Whose env values are masked: none, or every object's outside `velero_namespace`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WorkloadEnv {
    Keep,
    MaskOutside { velero_namespace: String },
}

impl WorkloadEnv {
    /// Masks `object`'s literal env values when it lies outside Velero's namespace (a
    /// cluster-scoped object has none); counts them under [`RULE`].
    pub(crate) fn apply(&self, object: &mut Value, counts: &mut MaskCounts) {
        let WorkloadEnv::MaskOutside { velero_namespace } = self else {
            return;
        };
        let outside = object["metadata"]["namespace"]
            .as_str()
            .is_some_and(|ns| ns != velero_namespace);
        if outside {
            let masked = mask_env_values(object);
            if masked > 0 {
                counts.add(RULE, masked);
            }
        }
    }
}

/// Masks the literal env values of every container list anywhere in `value`; how many.
fn mask_env_values(value: &mut Value) -> u64 {
    match value {
        Value::Object(map) => map
            .iter_mut()
            .map(|(key, v)| {
                if CONTAINER_LISTS.contains(&key.as_str()) {
                    mask_containers(v)
                } else {
                    mask_env_values(v)
                }
            })
            .sum(),
        Value::Array(items) => items.iter_mut().map(mask_env_values).sum(),
        _ => 0,
    }
}

fn mask_containers(containers: &mut Value) -> u64 {
    let Some(containers) = containers.as_array_mut() else {
        return 0;
    };
    let entries = containers
        .iter_mut()
        .filter_map(|c| c.get_mut("env").and_then(Value::as_array_mut))
        .flatten();
    let mut masked = 0;
    for entry in entries {
        if let Some(value) = entry.get_mut("value")
            && value.as_str().is_none_or(|v| !v.is_empty() && v != MARKER)
            && !value.is_null()
        {
            *value = Value::String(MARKER.into());
            masked += 1;
        }
    }
    masked
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn masking() -> WorkloadEnv {
        WorkloadEnv::MaskOutside {
            velero_namespace: "velero".into(),
        }
    }

    fn env() -> Value {
        json!([
            {"name": "DB_PASSWORD_PROD", "value": "hunter2"},
            {"name": "DB_PW", "value": "pw"},
            {"name": "SIGNING_SALT", "value": "salt"},
            {"name": "PORT", "value": 8080},
            {"name": "EMPTY", "value": ""},
            {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}},
        ])
    }

    #[test]
    fn an_application_pods_literal_values_are_masked_names_and_references_kept() {
        let mut pod = json!({
            "kind": "Pod",
            "metadata": {"name": "db-0", "namespace": "shop"},
            "spec": {
                "initContainers": [{"name": "init", "env": env()}],
                "containers": [{"name": "db", "env": env()}, {"name": "sidecar"}],
            },
        });
        let mut counts = MaskCounts::default();
        masking().apply(&mut pod, &mut counts);
        for list in ["initContainers", "containers"] {
            let env = &pod["spec"][list][0]["env"];
            for i in 0..4 {
                assert_eq!(env[i]["value"], MARKER, "{list} {i}");
            }
            assert_eq!(env[0]["name"], "DB_PASSWORD_PROD");
            assert_eq!(env[4]["value"], "", "nothing to hide in an empty value");
            assert_eq!(env[5]["valueFrom"]["secretKeyRef"]["name"], "db");
        }
        assert_eq!(counts.get(RULE), 8);
    }

    #[test]
    fn pod_templates_of_controllers_are_masked_too() {
        let mut cron = json!({
            "kind": "CronJob",
            "metadata": {"name": "nightly", "namespace": "shop"},
            "spec": {"jobTemplate": {"spec": {"template": {"spec": {
                "containers": [{"name": "job", "env": [{"name": "TOKEN_X", "value": "t"}]}],
            }}}}},
        });
        let mut counts = MaskCounts::default();
        masking().apply(&mut cron, &mut counts);
        assert_eq!(
            cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"],
            MARKER
        );
        assert_eq!(counts.get(RULE), 1);
    }

    #[test]
    fn veleros_own_pods_cluster_objects_and_a_kept_setting_are_left_alone() {
        let pod = |ns: Option<&str>| {
            let mut p = json!({"kind": "Pod", "metadata": {"name": "node-agent-x"},
                "spec": {"containers": [{"name": "a", "env": [{"name": "DB_PW", "value": "pw"}]}]}});
            if let Some(ns) = ns {
                p["metadata"]["namespace"] = ns.into();
            }
            p
        };
        for (setting, ns) in [
            (masking(), Some("velero")),
            (masking(), None),
            (WorkloadEnv::Keep, Some("shop")),
        ] {
            let mut object = pod(ns);
            let mut counts = MaskCounts::default();
            setting.apply(&mut object, &mut counts);
            assert_eq!(
                object["spec"]["containers"][0]["env"][0]["value"], "pw",
                "{setting:?} {ns:?}"
            );
            assert_eq!(counts.total(), 0);
        }
    }
}

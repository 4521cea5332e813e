//! The command-line flags of the Velero server and the node-agent, read from the pod templates
//! of Deployment `velero` and DaemonSet `node-agent` (feature flags, log format and level,
//! timeouts, uploader type, repository maintenance), and the plugins the server runs (its init
//! containers' images). Flag names are Velero's (pkg/cmd/server/config/config.go,
//! pkg/cmd/cli/nodeagent/server.go).

use serde_json::Value;

use super::text::cap;

/// Flags kept per workload, and bytes kept of a value.
const MAX_FLAGS: usize = 40;
const MAX_VALUE_BYTES: usize = 100;
const MAX_PLUGINS: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Flag {
    /// Without its dashes.
    pub name: String,
    /// None for a flag given alone (a boolean).
    pub value: Option<String>,
}

/// The flags in `args` (`--name=value`, `--name value`, `--name`), in order; positional
/// arguments (`server`, `node-agent server`) are skipped.
pub(crate) fn parse_flags(args: &[String]) -> Vec<Flag> {
    let mut flags = Vec::new();
    let mut i = 0;
    while i < args.len() && flags.len() < MAX_FLAGS {
        let arg = &args[i];
        i += 1;
        let Some(flag) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            continue;
        };
        if flag.is_empty() {
            continue;
        }
        let (name, value) = match flag.split_once('=') {
            Some((name, value)) => (name, Some(value.to_string())),
            // `--name value`: the next argument, unless it is a flag itself.
            None => match args.get(i) {
                Some(next) if !next.starts_with('-') => {
                    i += 1;
                    (flag, Some(next.clone()))
                }
                _ => (flag, None),
            },
        };
        flags.push(Flag {
            name: name.to_string(),
            value: value.map(|v| cap(&v, MAX_VALUE_BYTES)),
        });
    }
    flags
}

/// What one Velero workload runs with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct WorkloadArguments {
    /// The workload's file in the bundle.
    pub path: String,
    pub flags: Vec<Flag>,
    /// Images of the init containers: Velero's plugins, each copying its binary for the server.
    pub plugins: Vec<String>,
    /// The Velero minor version of the container's image tag (`velero/velero:v1.14.1`: 14),
    /// when its tag is a release.
    pub velero_minor: Option<u32>,
}

/// The minor version of an image tagged with a Velero release (`...:v1.14.1`, `...:v1.14.1@sha256:...`).
fn velero_minor_of(image: &str) -> Option<u32> {
    let image = image.split('@').next()?;
    let (_, tag) = image.rsplit_once(':')?;
    let mut parts = tag.strip_prefix('v')?.split('.');
    (parts.next()? == "1").then_some(())?;
    parts.next()?.parse().ok()
}

/// The ConfigMap Velero 1.14 and older's node-agent reads, a fixed name.
const FIXED_NODE_AGENT_CONFIG_MAP: &str = "node-agent-config";

fn strings(v: &Value) -> impl Iterator<Item = String> + '_ {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
}

impl WorkloadArguments {
    /// From a Deployment's or DaemonSet's JSON: the flags of `container` (or the first
    /// container when none has that name), and the init containers' images.
    pub fn of_workload(path: &str, workload: &Value, container: &str) -> Self {
        let spec = &workload["spec"]["template"]["spec"];
        let containers = spec["containers"].as_array();
        let main = containers
            .and_then(|all| all.iter().find(|c| c["name"] == container))
            .or_else(|| containers.and_then(|all| all.first()));
        let args: Vec<String> = main
            .map(|c| strings(&c["command"]).chain(strings(&c["args"])).collect())
            .unwrap_or_default();
        let plugins = spec["initContainers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["image"].as_str())
            .take(MAX_PLUGINS)
            .map(|image| cap(image, MAX_VALUE_BYTES))
            .collect();
        // `velero install` writes `--features=` when no feature flag is asked for: it sets
        // nothing, so it is no flag of the user's.
        let flags = parse_flags(&args)
            .into_iter()
            .filter(|f| !(f.name == "features" && f.value.as_deref() == Some("")))
            .collect();
        Self {
            path: path.to_string(),
            flags,
            plugins,
            velero_minor: main
                .and_then(|c| c["image"].as_str())
                .and_then(velero_minor_of),
        }
    }

    /// The ConfigMap node-agent reads its configurations from (data-path pods' resources,
    /// loads, ...): `--node-agent-configmap`, the last one given; Velero 1.14 and older have no
    /// such flag and read ConfigMap `node-agent-config` (pkg/nodeagent/node_agent.go
    /// configName), when their image's tag says the version.
    pub fn node_agent_config_map(&self) -> Option<&str> {
        self.last_value("node-agent-configmap").or_else(|| {
            self.velero_minor
                .is_some_and(|minor| minor <= 14)
                .then_some(FIXED_NODE_AGENT_CONFIG_MAP)
        })
    }

    /// Whether `--node-agent-configmap` names node-agent's ConfigMap (else it is 1.14's fixed
    /// name, or none): a ConfigMap a flag names should exist; 1.14's may well not.
    pub fn names_node_agent_config_map(&self) -> bool {
        self.last_value("node-agent-configmap").is_some()
    }

    /// The ConfigMap the Velero server makes repository maintenance Jobs from (their
    /// resources, nodes, ...): `--repo-maintenance-job-configmap`, the last one given.
    pub fn repo_maintenance_config_map(&self) -> Option<&str> {
        self.last_value("repo-maintenance-job-configmap")
    }

    /// How long node-agent waits for a data-path pod to get ready before it cancels the
    /// volume's operation: `--data-mover-prepare-timeout`, the last one given.
    pub fn data_mover_prepare_timeout(&self) -> Option<&str> {
        self.last_value("data-mover-prepare-timeout")
    }

    /// The value of the last `--name=value` or `--name value` given, unless empty.
    fn last_value(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|f| f.name == name)
            .and_then(|f| f.value.as_deref())
            .filter(|v| !v.is_empty())
    }

    /// `--a=1 --b`: the flags as given.
    pub fn flags_line(&self) -> String {
        self.flags
            .iter()
            .map(|f| match &f.value {
                Some(v) => format!("--{}={v}", f.name),
                None => format!("--{}", f.name),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_are_read_in_every_form_go_accepts() {
        let flags = parse_flags(&args(&[
            "server",
            "--features=EnableCSI,EnableAPIGroupVersions",
            "--uploader-type",
            "kopia",
            "--restore-only",
            "--log-format=json",
            "-v",
            "2",
        ]));
        let view: Vec<(&str, Option<&str>)> = flags
            .iter()
            .map(|f| (f.name.as_str(), f.value.as_deref()))
            .collect();
        assert_eq!(
            view,
            [
                ("features", Some("EnableCSI,EnableAPIGroupVersions")),
                ("uploader-type", Some("kopia")),
                ("restore-only", None),
                ("log-format", Some("json")),
                ("v", Some("2")),
            ]
        );
    }

    #[test]
    fn a_workload_gives_its_container_flags_and_plugin_images() {
        let deployment = json!({"spec": {"template": {"spec": {
            "initContainers": [
                {"name": "velero-plugin-for-aws", "image": "velero/velero-plugin-for-aws:v1.14.3"}
            ],
            "containers": [
                {"name": "sidecar", "args": ["--ignored"]},
                {"name": "velero", "command": ["/velero"],
                 "args": ["server", "--fs-backup-timeout=4h", "--log-level", "debug", "--fs-backup-timeout=6h"]}
            ]
        }}}});
        let w = WorkloadArguments::of_workload(
            "resources/deployment-velero.yaml",
            &deployment,
            "velero",
        );
        assert_eq!(w.plugins, ["velero/velero-plugin-for-aws:v1.14.3"]);
        assert_eq!(
            w.flags_line(),
            "--fs-backup-timeout=4h --log-level=debug --fs-backup-timeout=6h"
        );
        let bare = WorkloadArguments::of_workload("x", &json!({}), "node-agent");
        assert!(bare.flags.is_empty() && bare.plugins.is_empty());
    }

    #[test]
    fn the_empty_features_flag_velero_install_writes_is_no_flag() {
        let installed = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "node-agent", "command": ["/velero"], "args": ["node-agent", "server", "--features="]}
        ]}}}});
        let w = WorkloadArguments::of_workload("d", &installed, "node-agent");
        assert!(w.flags.is_empty(), "{:?}", w.flags);
        let asked = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "node-agent", "args": ["--features=EnableCSI"]}
        ]}}}});
        let w = WorkloadArguments::of_workload("d", &asked, "node-agent");
        assert_eq!(w.flags_line(), "--features=EnableCSI");
    }

    /// Velero 1.14's node-agent has no --node-agent-configmap and reads `node-agent-config`;
    /// 1.15+ reads only what the flag names, and an image whose tag is no release says nothing.
    #[test]
    fn node_agent_s_config_map_is_the_flag_s_or_1_14_s_fixed_name() {
        let of = |image: &str, args: serde_json::Value| {
            let ds = json!({"spec": {"template": {"spec": {"containers": [
                {"name": "node-agent", "image": image, "args": args}]}}}});
            WorkloadArguments::of_workload("ds.yaml", &ds, "node-agent")
                .node_agent_config_map()
                .map(str::to_string)
        };
        let plain = json!(["node-agent", "server"]);
        let named = |args: serde_json::Value| {
            let ds = json!({"spec": {"template": {"spec": {"containers": [
                {"name": "node-agent", "image": "velero/velero:v1.14.1", "args": args}]}}}});
            WorkloadArguments::of_workload("ds.yaml", &ds, "node-agent")
                .names_node_agent_config_map()
        };
        // 1.14's fixed name may not exist; one a flag names should.
        assert!(!named(plain.clone()));
        assert!(named(json!(["server", "--node-agent-configmap", "mine"])));
        assert_eq!(
            of("velero/velero:v1.14.1", plain.clone()).as_deref(),
            Some("node-agent-config")
        );
        assert_eq!(
            of("registry.local/velero:v1.13.2@sha256:ab", plain.clone()).as_deref(),
            Some("node-agent-config")
        );
        assert_eq!(of("velero/velero:v1.16.2", plain.clone()), None);
        assert_eq!(of("velero/velero:latest", plain.clone()), None);
        assert_eq!(
            of(
                "velero/velero:v1.18.3",
                json!(["server", "--node-agent-configmap=mine"])
            )
            .as_deref(),
            Some("mine")
        );
    }
}

//! What the collect step saw of the data-path infrastructure, kept small: every node's
//! readiness and taints and whether the node-agent DaemonSet may place a pod there, the
//! node-agent pods by node, the BackupRepositories of the target's storage location and their
//! maintenance jobs, the VolumeSnapshotContents of the backup that are not ready, and the flags
//! Velero runs with. Fed with the objects' JSON as written into the bundle (redacted).

use std::collections::BTreeMap;

use serde_json::Value;

use super::{
    arguments::WorkloadArguments,
    placement::{NodeFacts, Placement},
    text::cap,
    velero_config::{ConfigMapEvidence, ConfigMapRead, VeleroConfigMap},
};

/// The table of every node: its readiness, taints and node-agent pod.
pub(crate) const NODES_TABLE: &str = "resources/nodes.txt";

/// Nodes kept (the list itself is capped at `max_list_items`).
const MAX_NODES: usize = 10_000;
const MAX_REPOSITORIES: usize = 1000;
const MAX_MAINTENANCE_JOBS: usize = 500;
/// VolumeSnapshotContents kept in detail (those with an error or not ready); all are counted.
const MAX_SNAPSHOT_CONTENTS: usize = 100;
const MAX_FIELD_BYTES: usize = 1024;

/// How Velero's repository-maintenance container marks its error in its output (and so in
/// its termination message): pkg/repository/maintenance `TerminationLogIndicator`.
pub(crate) const MAINTENANCE_ERROR_INDICATOR: &str = "Repo maintenance error: ";
/// Velero 1.14's maintenance container writes its error alone to /dev/termination-log, after
/// this (pkg/cmd/cli/repomantenance/maintenance.go).
const MAINTENANCE_ERROR_INDICATOR_1_14: &str = "An error occurred: ";

fn text(v: &Value) -> String {
    v.as_str()
        .map(|s| cap(s, MAX_FIELD_BYTES))
        .unwrap_or_default()
}

fn some_text(v: &Value) -> Option<String> {
    v.as_str()
        .filter(|s| !s.is_empty())
        .map(|s| cap(s, MAX_FIELD_BYTES))
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NodeEvidence {
    pub name: String,
    /// The node's YAML when it was collected, else the nodes table.
    pub path: String,
    /// Status of the Ready condition: `True`, `False`, `Unknown`, or `-` when it has none.
    pub ready: String,
    /// Reason and message of the Ready condition when it is not True.
    pub ready_detail: String,
    pub unschedulable: bool,
    /// `key=value:Effect`, as kubectl shows them.
    pub taints: Vec<String>,
    /// What keeps the node-agent DaemonSet's pod off this node (empty: nothing, or the
    /// DaemonSet is not known).
    pub agent_blockers: Vec<String>,
}

/// The node-agent pod on a node.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AgentPodEvidence {
    pub name: String,
    pub phase: String,
    /// Why it is not running: a container's waiting reason (CrashLoopBackOff,
    /// ImagePullBackOff...), or the pod's own reason (Evicted...).
    pub reason: Option<String>,
    /// The kubelet's message beside that reason (waiting.rs reads it).
    pub message: Option<String>,
    /// Velero's test: phase Running and not being deleted.
    pub running: bool,
}

/// One entry of a BackupRepository's `status.recentMaintenance` (Velero 1.15 on); for Velero
/// 1.14, which has no such field, a failed maintenance read from `status.message`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MaintenanceRun {
    /// `Succeeded` or `Failed`.
    pub result: String,
    pub started: Option<String>,
    pub completed: Option<String>,
    pub message: String,
    /// Read from Velero 1.14's shape: a Ready repository whose `status.message` is the prune
    /// error (1.14 keeps maintenance failures there and leaves the phase Ready).
    pub from_status_message: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RepositoryEvidence {
    pub path: String,
    pub name: String,
    pub volume_namespace: String,
    pub storage_location: String,
    pub repository_type: String,
    /// `New`, `Ready`, `NotReady`, or `<none>`.
    pub phase: String,
    pub message: String,
    pub last_maintenance: Option<String>,
    /// The latest of `status.recentMaintenance`.
    pub latest_maintenance: Option<MaintenanceRun>,
}

impl RepositoryEvidence {
    /// How findings name it.
    pub fn key(&self) -> String {
        format!("BackupRepository/{}", self.name)
    }

    /// Volume namespace, storage location and type: what a maintenance job names.
    pub fn identity(&self) -> (String, String, String) {
        (
            self.volume_namespace.clone(),
            self.storage_location.clone(),
            self.repository_type.clone(),
        )
    }
}

/// The pod of a maintenance job, as its (only) container ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MaintenancePodEvidence {
    pub path: String,
    pub name: String,
    /// `state.terminated.reason` (Error, OOMKilled, Completed...).
    pub reason: Option<String>,
    pub exit_code: Option<i64>,
    /// What the container said of its failure: its termination message from Velero's
    /// `Repo maintenance error: ` on, else the message's last line.
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MaintenanceJobEvidence {
    pub path: String,
    pub name: String,
    pub created: String,
    /// The repository it maintains, from the job's arguments (`--repo-name` is the volume
    /// namespace, `--backup-storage-location`, `--repo-type`).
    pub repository: (String, String, String),
    pub failed: bool,
    pub succeeded: bool,
    /// Reason of the job's Failed condition (BackoffLimitExceeded, DeadlineExceeded...).
    pub failure_reason: Option<String>,
    pub pod: Option<MaintenancePodEvidence>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SnapshotContentEvidence {
    pub path: String,
    pub name: String,
    pub driver: String,
    pub class: Option<String>,
    /// `namespace/name` of the VolumeSnapshot it is bound to.
    pub snapshot: String,
    pub ready: Option<bool>,
    /// `status.error.message`.
    pub error: Option<String>,
}

#[derive(Debug, Default)]
pub(crate) struct InfraEvidence {
    /// DaemonSet node-agent: its file and where it may place pods.
    pub node_agent: Option<(String, Placement)>,
    pub nodes: BTreeMap<String, NodeEvidence>,
    /// Every node of the cluster was listed: a node missing from `nodes` does not exist.
    pub all_nodes_listed: bool,
    /// The node-agent pod of each node (the running one when there are several).
    pub node_agent_pods: BTreeMap<String, AgentPodEvidence>,
    pub repositories: Vec<RepositoryEvidence>,
    pub maintenance_jobs: Vec<MaintenanceJobEvidence>,
    pub snapshot_contents: Vec<SnapshotContentEvidence>,
    pub snapshot_contents_seen: usize,
    pub server_arguments: Option<WorkloadArguments>,
    pub node_agent_arguments: Option<WorkloadArguments>,
    /// The ConfigMaps the workloads' flags name, read or not (velero_config.rs).
    pub velero_config_maps: Vec<ConfigMapEvidence>,
}

/// The part of a termination message that says what failed.
fn maintenance_error(message: &str) -> Option<String> {
    let said = match message.find(MAINTENANCE_ERROR_INDICATOR) {
        Some(at) => &message[at + MAINTENANCE_ERROR_INDICATOR.len()..],
        None => match message
            .trim_start()
            .strip_prefix(MAINTENANCE_ERROR_INDICATOR_1_14)
        {
            Some(rest) => rest,
            None => message.lines().rev().find(|l| !l.trim().is_empty())?,
        },
    };
    let said = said.trim();
    (!said.is_empty()).then(|| cap(said, MAX_FIELD_BYTES))
}

/// Velero 1.14's failed maintenance: no `recentMaintenance`, the phase Ready and the prune
/// error in `status.message` (1.14 and later clear the message whenever a repository becomes
/// Ready, and 1.15 on keep maintenance results in `recentMaintenance`).
fn maintenance_failed_1_14(status: &Value) -> Option<MaintenanceRun> {
    if status.get("recentMaintenance").is_some() || status["phase"] != "Ready" {
        return None;
    }
    some_text(&status["message"]).map(|message| MaintenanceRun {
        result: "Failed".into(),
        started: None,
        completed: None,
        message: cap(&message, MAX_FIELD_BYTES),
        from_status_message: true,
    })
}

/// The value of `--name=value` among a container's arguments.
fn argument<'a>(args: &'a [Value], name: &str) -> Option<&'a str> {
    let prefix = format!("--{name}=");
    args.iter()
        .filter_map(Value::as_str)
        .find_map(|a| a.strip_prefix(prefix.as_str()))
}

impl InfraEvidence {
    /// Deployment `velero` (its JSON): the flags the server runs with and its plugins.
    pub fn set_velero_deployment(&mut self, path: &str, deployment: &Value) {
        self.server_arguments = Some(WorkloadArguments::of_workload(path, deployment, "velero"));
    }

    /// DaemonSet `node-agent` (its JSON): where it may place pods, and its flags. Before the
    /// nodes, whose blockers are worked out against it.
    pub fn set_node_agent_daemonset(&mut self, path: &str, daemonset: &Value) {
        self.node_agent = Some((path.to_string(), Placement::of_daemonset(daemonset)));
        self.node_agent_arguments = Some(WorkloadArguments::of_workload(
            path,
            daemonset,
            "node-agent",
        ));
    }

    /// A ConfigMap a workload's flag names, as read (or why not).
    pub fn add_velero_config_map(
        &mut self,
        role: VeleroConfigMap,
        name: String,
        read: ConfigMapRead,
    ) {
        self.velero_config_maps
            .push(ConfigMapEvidence { role, name, read });
    }

    /// A node-agent pod (its JSON), by the node it is on.
    pub fn add_node_agent_pod(&mut self, pod: &Value) {
        let Some(node) = some_text(&pod["spec"]["nodeName"]) else {
            return;
        };
        let status = &pod["status"];
        let phase = some_text(&status["phase"]).unwrap_or_else(|| "<none>".into());
        let running = phase == "Running" && pod["metadata"]["deletionTimestamp"].is_null();
        let waiting = status["containerStatuses"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|c| {
                let w = &c["state"]["waiting"];
                some_text(&w["reason"]).map(|r| (r, some_text(&w["message"])))
            });
        let (reason, message) = match waiting {
            Some((reason, message)) => (Some(reason), message),
            None => (some_text(&status["reason"]), some_text(&status["message"])),
        };
        let agent = AgentPodEvidence {
            name: text(&pod["metadata"]["name"]),
            phase,
            reason,
            message: message.map(|m| crate::findings::text::cap(&m, 600)),
            running,
        };
        let keep = self
            .node_agent_pods
            .get(&node)
            .is_none_or(|kept| !kept.running);
        if keep && self.node_agent_pods.len() < MAX_NODES {
            self.node_agent_pods.insert(node, agent);
        }
    }

    /// A node (its JSON; `path` its file, or the nodes table).
    pub fn add_node(&mut self, path: &str, node: &Value) {
        if self.nodes.len() >= MAX_NODES {
            return;
        }
        let facts = NodeFacts::of_node(node);
        let ready = node["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "Ready");
        let (ready, ready_detail) = match ready {
            Some(c) => {
                let status = some_text(&c["status"]).unwrap_or_else(|| "Unknown".into());
                let detail = if status == "True" {
                    String::new()
                } else {
                    [text(&c["reason"]), text(&c["message"])]
                        .into_iter()
                        .filter(|s| !s.is_empty())
                        .collect::<Vec<_>>()
                        .join(": ")
                };
                (status, detail)
            }
            None => ("-".to_string(), String::new()),
        };
        let agent_blockers = match &self.node_agent {
            Some((_, placement)) => placement
                .blockers(&facts)
                .iter()
                .map(ToString::to_string)
                .collect(),
            None => Vec::new(),
        };
        let evidence = NodeEvidence {
            name: facts.name.clone(),
            path: path.to_string(),
            ready,
            ready_detail,
            unschedulable: node["spec"]["unschedulable"].as_bool().unwrap_or(false),
            taints: facts.taints.iter().map(ToString::to_string).collect(),
            agent_blockers,
        };
        self.nodes.insert(facts.name, evidence);
    }

    /// A BackupRepository of the target's storage location (its JSON).
    pub fn add_repository(&mut self, path: &str, repo: &Value) {
        if self.repositories.len() >= MAX_REPOSITORIES {
            return;
        }
        let (spec, status) = (&repo["spec"], &repo["status"]);
        let latest_maintenance = status["recentMaintenance"]
            .as_array()
            .and_then(|runs| runs.last())
            .map(|run| MaintenanceRun {
                result: text(&run["result"]),
                started: some_text(&run["startTimestamp"]),
                completed: some_text(&run["completeTimestamp"]),
                message: text(&run["message"]),
                from_status_message: false,
            })
            .or_else(|| maintenance_failed_1_14(status));
        self.repositories.push(RepositoryEvidence {
            path: path.to_string(),
            name: text(&repo["metadata"]["name"]),
            volume_namespace: text(&spec["volumeNamespace"]),
            storage_location: text(&spec["backupStorageLocation"]),
            repository_type: text(&spec["repositoryType"]),
            phase: some_text(&status["phase"]).unwrap_or_else(|| "<none>".into()),
            message: text(&status["message"]),
            last_maintenance: some_text(&status["lastMaintenanceTime"]),
            latest_maintenance,
        });
    }

    /// A repository-maintenance Job (its JSON).
    pub fn add_maintenance_job(&mut self, path: &str, job: &Value) {
        if self.maintenance_jobs.len() >= MAX_MAINTENANCE_JOBS {
            return;
        }
        let status = &job["status"];
        let args = job["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let arg = |name: &str| argument(args, name).unwrap_or_default().to_string();
        let failure_reason = status["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "Failed" && c["status"] == "True")
            .and_then(|c| some_text(&c["reason"]));
        self.maintenance_jobs.push(MaintenanceJobEvidence {
            path: path.to_string(),
            name: text(&job["metadata"]["name"]),
            created: text(&job["metadata"]["creationTimestamp"]),
            repository: (
                arg("repo-name"),
                arg("backup-storage-location"),
                arg("repo-type"),
            ),
            failed: status["failed"].as_i64().unwrap_or(0) > 0 || failure_reason.is_some(),
            succeeded: status["succeeded"].as_i64().unwrap_or(0) > 0,
            failure_reason,
            pod: None,
        });
    }

    /// The pod of a maintenance job (its JSON), found by its `job-name` label; after its job.
    pub fn add_maintenance_pod(&mut self, path: &str, pod: &Value) {
        let labels = &pod["metadata"]["labels"];
        let Some(job_name) = some_text(&labels["job-name"])
            .or_else(|| some_text(&labels["batch.kubernetes.io/job-name"]))
        else {
            return;
        };
        let Some(job) = self
            .maintenance_jobs
            .iter_mut()
            .find(|j| j.name == job_name)
        else {
            return;
        };
        // Velero's job has one container and never restarts it.
        let terminated = &pod["status"]["containerStatuses"][0]["state"]["terminated"];
        job.pod = Some(MaintenancePodEvidence {
            path: path.to_string(),
            name: text(&pod["metadata"]["name"]),
            reason: some_text(&terminated["reason"]),
            exit_code: terminated["exitCode"].as_i64(),
            error: terminated["message"].as_str().and_then(maintenance_error),
        });
    }

    /// A VolumeSnapshotContent of the backup (its JSON); kept in detail when it has an error
    /// or is not ready to use.
    pub fn add_snapshot_content(&mut self, path: &str, content: &Value) {
        self.snapshot_contents_seen += 1;
        let (spec, status) = (&content["spec"], &content["status"]);
        let ready = status["readyToUse"].as_bool();
        let error = some_text(&status["error"]["message"]);
        if (error.is_none() && ready != Some(false))
            || self.snapshot_contents.len() >= MAX_SNAPSHOT_CONTENTS
        {
            return;
        }
        let snapshot = &spec["volumeSnapshotRef"];
        self.snapshot_contents.push(SnapshotContentEvidence {
            path: path.to_string(),
            name: text(&content["metadata"]["name"]),
            driver: text(&spec["driver"]),
            class: some_text(&spec["volumeSnapshotClassName"]),
            snapshot: format!(
                "{}/{}",
                text(&snapshot["namespace"]),
                text(&snapshot["name"])
            ),
            ready,
            error,
        });
    }
}

#[cfg(test)]
#[path = "infrastructure_tests.rs"]
pub(super) mod tests;

//! Data-path infrastructure: the node-agent that moves volume data on each node, and the
//! backup repositories it writes to. A failure here explains the volume operations on the
//! nodes (or of the repository) it touched.

use std::collections::BTreeSet;

use super::{Evidence, Finding, Layer, Severity, from_mentions, plural};
use crate::findings::{
    evidence::PodRole,
    infrastructure::{MaintenanceJobEvidence, NODES_TABLE, RepositoryEvidence},
    last_words,
    next_steps::{self, AgentGap},
    node_key, patterns,
    patterns::{Mention, Pattern},
    text,
    velero_config::{self, VeleroConfigMap},
    waiting,
};

/// Findings of one repository rule are bounded; the rest are in resources/backuprepository/.
const MAX_REPOSITORY_FINDINGS: usize = 10;

/// The operations (`Kind/name`) that ran on `node`.
fn operations_on(e: &Evidence, node: &str) -> Vec<String> {
    e.operations
        .iter()
        .filter(|o| o.node.as_deref() == Some(node))
        .map(|o| o.key())
        .collect()
}

/// Why `node` has no running node-agent, from the nodes and node-agent pods collected: the
/// reason, and the file that shows it.
pub(super) fn why_no_agent(e: &Evidence, node: &str) -> Option<(String, String)> {
    let infra = &e.infra;
    let listed = infra.nodes.get(node);
    if listed.is_none() && infra.all_nodes_listed {
        return Some(("the node no longer exists".into(), NODES_TABLE.into()));
    }
    if let Some(n) = listed.filter(|n| n.ready != "True") {
        let why = match (n.ready.as_str(), n.ready_detail.is_empty()) {
            ("False", true) => "the node is NotReady".to_string(),
            ("False", false) => format!("the node is NotReady ({})", n.ready_detail),
            (_, true) => "the node's readiness is unknown".to_string(),
            (_, false) => format!("the node's readiness is unknown ({})", n.ready_detail),
        };
        return Some((why, n.path.clone()));
    }
    if let Some(pod) = infra.node_agent_pods.get(node).filter(|p| !p.running) {
        let reason = pod
            .reason
            .as_deref()
            .map(|r| format!(", {r}"))
            .unwrap_or_default();
        // The kubelet's own message says what to change; the reason only that it failed.
        let message = pod
            .message
            .as_deref()
            .map(|m| format!(": {}", waiting::essence(m, 120)))
            .unwrap_or_default();
        return Some((
            format!(
                "its node-agent pod {} is {}{reason}{message}",
                pod.name, pod.phase
            ),
            NODES_TABLE.into(),
        ));
    }
    let n = listed.filter(|n| !n.agent_blockers.is_empty())?;
    Some((
        format!(
            "DaemonSet node-agent cannot run there: {}",
            n.agent_blockers.join("; ")
        ),
        n.path.clone(),
    ))
}

/// What the kubelet said of the node-agent pod on `node` that does not run: its waiting
/// reason and the cause its message ends with, within `room` bytes.
fn kubelet_message(e: &Evidence, node: &str, room: usize) -> Option<String> {
    let pod = e.infra.node_agent_pods.get(node).filter(|p| !p.running)?;
    let message = pod.message.as_deref()?;
    let reason = pod.reason.as_deref().unwrap_or("not running");
    let said = format!("{reason}: ");
    Some(format!(
        "{said}{}",
        waiting::essence(message, room.saturating_sub(said.len()))
    ))
}

/// A node that ran (or had to run) a volume operation has no running node-agent: Velero says
/// so in the results, or the node-agent pods listed show none there. Why, when the nodes and
/// the DaemonSet say: a taint it does not tolerate, a selector or affinity the node does not
/// match, the node NotReady or gone, or its pod there not running.
pub(super) fn node_agent_missing(e: &Evidence) -> Vec<Finding> {
    let mut found = Vec::new();
    let mut named = BTreeSet::new();
    for m in e.mentions(Pattern::NodeAgentNotRunning) {
        // The node the message names, before the node of the log it is in: the Velero
        // server's log (its pod on some node) says which node lacks the node-agent.
        let Some(node) = patterns::node_named(&m.quote).or_else(|| m.node.clone()) else {
            continue;
        };
        if !named.insert(node.clone()) {
            continue;
        }
        let explains: Vec<String> = operations_on(e, &node)
            .into_iter()
            .chain([node_key(&node)])
            .collect();
        let why = why_no_agent(e, &node).map(|(why, _)| why);
        // Velero's words say only that no node-agent runs; the kubelet's, why its pod does not.
        let room = crate::findings::text::MAX_QUOTE_BYTES.saturating_sub(m.quote.len() + 2);
        let quote = match kubelet_message(e, &node, room) {
            Some(said) => format!("{}; {said}", m.quote),
            None => m.quote.clone(),
        };
        found.push(
            missing_agent_finding(&node, why.as_deref(), &quote, &m.file)
                .at_line(m.line)
                .explaining(explains)
                .with_next_step(agent_next_step(e, &node)),
        );
    }
    if let Some(agents) = &e.node_agent_nodes {
        for node in e.involved_nodes.difference(agents) {
            if !named.insert(node.clone()) {
                continue;
            }
            let ops = operations_on(e, node);
            let mut quote = format!(
                "no node-agent pod runs on node {node}, which ran {}",
                if ops.is_empty() {
                    "volume operations of this target".to_string()
                } else {
                    ops.join(", ")
                }
            );
            let mut file = e
                .operations
                .iter()
                .find(|o| o.node.as_deref() == Some(node.as_str()))
                .map(|o| o.path.clone())
                .unwrap_or_else(|| "resources/daemonset-node-agent.yaml".into());
            let why = why_no_agent(e, node);
            if let Some((why, shown_in)) = &why {
                quote = format!("{why}; {quote}");
                file = shown_in.clone();
            }
            found.push(
                missing_agent_finding(node, why.map(|(w, _)| w).as_deref(), &quote, &file)
                    .explaining(ops.into_iter().chain([node_key(node)]))
                    .with_next_step(agent_next_step(e, node)),
            );
        }
    }
    found
}

/// A node-agent that restarted or cannot start, explained by its own last words (the exit
/// line, fatal line or panic its previous log ends with: last_words.rs), else the panic in
/// its log, else the reason of its last termination. A crash loop (the container waits to
/// start again) is told apart from a restart that interrupted work: the first never ran an
/// operation, the second canceled those it ran. Known last words get their cause and fix. On
/// a node that ran the target's volumes it explains their failures.
pub(super) fn node_agent_restarted(e: &Evidence) -> Vec<Finding> {
    let mut found = Vec::new();
    for pod in e.pods.iter().filter(|p| p.role == PodRole::NodeAgent) {
        let Some(container) = pod
            .containers
            .iter()
            .filter(|c| c.restarts > 0 || is_crash_looping(c))
            .max_by_key(|c| c.restarts)
        else {
            continue;
        };
        let node = pod.node.clone().unwrap_or_default();
        let involved = e.involved_nodes.contains(&node);
        let said = AgentEnd::read(e, pod, container);
        let explains: Vec<String> = if involved {
            operations_on(e, &node)
                .into_iter()
                .chain([node_key(&node)])
                .collect()
        } else {
            Vec::new()
        };
        found.push(
            Finding::new(
                said.severity(involved),
                Layer::DataPath,
                "node-agent-restarted",
                said.title(&node),
                &said.quote,
                &said.file,
            )
            .at_line(said.line)
            .explaining(explains)
            .next_step(said.next_step(&pod.name, e.target.velero_namespace())),
        );
    }
    found
}

/// Waiting to start again after it ended in error: a crash loop (as CrashLoopBackOff, or, on
/// a kubelet that shows the back-off so, ended in error again after a restart).
fn is_crash_looping(c: &crate::findings::evidence::ContainerEvidence) -> bool {
    let waits = matches!(
        c.waiting.as_deref(),
        Some("CrashLoopBackOff" | "RunContainerError" | "Error")
    );
    let ended_again = c.restarts > 0 && c.terminated.as_ref().is_some_and(|(_, code)| *code != 0);
    waits || ended_again
}

/// How a node-agent's container ended, from its own words first.
struct AgentEnd {
    quote: String,
    file: String,
    line: Option<u64>,
    /// Short, for the title: the words cut, "a panic", the termination's reason.
    why: String,
    crash_loop: bool,
    known: Option<last_words::Known>,
    oom: bool,
}

impl AgentEnd {
    fn read(
        e: &Evidence,
        pod: &crate::findings::evidence::PodEvidence,
        c: &crate::findings::evidence::ContainerEvidence,
    ) -> AgentEnd {
        let crash_loop = is_crash_looping(c);
        let oom = c
            .last_terminated
            .as_ref()
            .is_some_and(|(r, _)| r == "OOMKilled");
        // The previous instance's log holds the end of the one that failed; when it was not
        // read, the current one's exit line is the same start failing (in a crash loop, its
        // last error too).
        let words = e
            .last_words_of(&pod.name, true)
            .or_else(|| {
                e.last_words_of(&pod.name, false)
                    .filter(|(_, w)| crash_loop || w.kind == last_words::LastWordsKind::Exit)
            })
            .filter(|(_, w)| w.kind != last_words::LastWordsKind::Error || crash_loop)
            .filter(|_| !oom);
        if let Some((source, w)) = words {
            let why = if text::is_go_crash(&w.text) {
                "a panic".to_string()
            } else {
                text::cap(&w.text, 120)
            };
            return AgentEnd {
                quote: w.text.clone(),
                file: source.path.clone(),
                line: Some(w.line),
                why,
                crash_loop,
                known: last_words::known(&w.text),
                oom,
            };
        }
        let panic = e.log_hits.iter().find(|h| {
            h.hit.pattern == Pattern::GoPanic && h.source.pod.as_deref() == Some(&pod.name)
        });
        let (quote, file, line, why) = match (panic, c.last_terminated.as_ref()) {
            (Some(p), _) if !oom => (
                p.hit.quote.clone(),
                p.source.path.clone(),
                Some(p.hit.line),
                "a panic".to_string(),
            ),
            (_, Some((reason, code))) => (
                format!(
                    "container {} restarted {} time(s); last exit: {reason}, code {code}",
                    c.name, c.restarts
                ),
                pod.path.clone(),
                None,
                reason.clone(),
            ),
            _ => (
                format!("container {} restarted {} time(s)", c.name, c.restarts),
                pod.path.clone(),
                None,
                "reason unknown".to_string(),
            ),
        };
        AgentEnd {
            quote,
            file,
            line,
            why,
            crash_loop,
            known: None,
            oom,
        }
    }

    fn title(&self, node: &str) -> String {
        match (self.known, self.crash_loop) {
            (Some(last_words::Known::HostPodsFolder), _) => format!(
                "node-agent on node {node} cannot start: its host-pods volume is not the kubelet's pods folder"
            ),
            (Some(last_words::Known::UnknownFlag), _) => format!(
                "node-agent on node {node} cannot start: its arguments name a flag its Velero does not have ({})",
                last_words::unknown_flag(&self.quote).unwrap_or("unknown flag")
            ),
            (None, true) => format!("node-agent on node {node} crash-loops: {}", self.why),
            (None, false) => format!("node-agent on node {node} restarted after {}", self.why),
        }
    }

    fn severity(&self, involved: bool) -> Severity {
        let panic = self.why == "a panic";
        if involved || self.crash_loop || self.known.is_some() || panic || self.oom {
            Severity::Error
        } else {
            Severity::Warning
        }
    }

    fn next_step(&self, pod: &str, namespace: &str) -> String {
        match self.known {
            Some(last_words::Known::HostPodsFolder) => next_steps::node_agent_host_pods(namespace),
            Some(last_words::Known::UnknownFlag) => next_steps::unknown_flag(
                last_words::unknown_flag(&self.quote).unwrap_or("the flag quoted"),
                "daemonset node-agent",
                namespace,
            ),
            None if self.oom => next_steps::node_agent_oom(namespace),
            None if self.crash_loop => next_steps::node_agent_crash_loop(pod, namespace),
            None => next_steps::node_agent_restarted(pod, namespace),
        }
    }
}

pub(super) fn repository_not_initialized(e: &Evidence) -> Vec<Finding> {
    from_mentions(
        e,
        Pattern::RepositoryNotInitialized,
        Severity::Error,
        Layer::DataPath,
        "repository-not-initialized",
        |_, n| {
            format!(
                "Backup repository not initialized in the object store ({})",
                plural(n, "mention", "mentions")
            )
        },
    )
    .map(|f| {
        let volume_namespace = f
            .explains
            .iter()
            .find_map(|key| e.operations.iter().find(|o| &o.key() == key))
            .and_then(|o| o.namespace.as_deref());
        let ns = e.target.velero_namespace();
        f.next_step(next_steps::repository_not_initialized(ns, volume_namespace))
    })
    .into_iter()
    .collect()
}

pub(super) fn repository_locked(e: &Evidence) -> Vec<Finding> {
    from_mentions(
        e,
        Pattern::RepositoryLocked,
        Severity::Error,
        Layer::DataPath,
        "repository-locked",
        |_, n| {
            format!(
                "Backup repository is locked by another process ({})",
                plural(n, "mention", "mentions")
            )
        },
    )
    .map(|f| f.next_step(next_steps::repository_locked(e.target.velero_namespace())))
    .into_iter()
    .collect()
}

/// The BackupRepository of the volumes whose operations said it: the one of their namespace.
/// (The connection the message names, `<location>-<namespace>-<type>`, is kopia's, not the
/// object's name.)
fn repository_of<'a>(e: &'a Evidence, mentions: &[Mention]) -> Option<&'a RepositoryEvidence> {
    let namespaces: BTreeSet<&str> = mentions
        .iter()
        .filter_map(|m| m.operation.as_ref())
        .filter_map(|key| e.operations.iter().find(|o| &o.key() == key))
        .filter_map(|o| o.namespace.as_deref())
        .collect();
    e.infra
        .repositories
        .iter()
        .find(|r| namespaces.contains(r.volume_namespace.as_str()))
}

/// The repository's password (Secret velero-repo-credentials) no longer opens it: every
/// backup and restore of its volumes fails until the password it was made with is back.
pub(super) fn repository_password_invalid(e: &Evidence) -> Vec<Finding> {
    let mentions = e.mentions(Pattern::RepositoryPasswordInvalid);
    let repository = repository_of(e, &mentions);
    // Restic's words name the type when no BackupRepository says it.
    let said_by_restic = mentions
        .iter()
        .any(|m| m.quote.contains("wrong password or no key found"));
    let kind = match repository {
        Some(r) if !r.repository_type.is_empty() => r.repository_type.as_str(),
        _ if said_by_restic => "restic",
        _ => "kopia",
    };
    from_mentions(
        e,
        Pattern::RepositoryPasswordInvalid,
        Severity::Error,
        Layer::DataPath,
        "repository-password-invalid",
        |_, n| {
            let which = repository.map_or("The backup repository".to_string(), |r| {
                format!("BackupRepository {}", r.name)
            });
            format!(
                "{which} refuses the repository password ({})",
                plural(n, "mention", "mentions")
            )
        },
    )
    .map(|f| {
        let explains = repository.map(|r| r.key());
        f.explaining(explains)
            .next_step(next_steps::repository_password_invalid(
                repository.map(|r| r.name.as_str()),
                kind,
                e.target.velero_namespace(),
            ))
    })
    .into_iter()
    .collect()
}

/// The kubelet rejected a data-path pod (more cpu or memory asked than the node has, from
/// node-agent's ConfigMap `podResources`): its volume's operation cannot run there. Velero
/// 1.18.3 cancels it with the kubelet's words in its status.message; older versions write only
/// `Pod is in abnormal state`, and then the pod's own status (kept by the recorder once Velero
/// deleted the pod) holds them.
pub(super) fn data_path_pod_rejected(e: &Evidence) -> Vec<Finding> {
    let mentions = e.mentions(Pattern::PodRejected);
    let node = mentions.iter().find_map(|m| m.node.clone());
    let from_velero = from_mentions(
        e,
        Pattern::PodRejected,
        Severity::Error,
        Layer::DataPath,
        "data-path-pod-rejected",
        |found, n| {
            let why = found
                .iter()
                .find_map(|m| patterns::rejection_reason(&m.quote))
                .unwrap_or_else(|| "rejected".to_string());
            let on = node.as_deref().map(|n| format!(" {n}")).unwrap_or_default();
            format!(
                "A data-path pod was rejected by its node{on}: {why} ({})",
                plural(n, "mention", "mentions")
            )
        },
    );
    let Some(finding) = from_velero else {
        return super::ended_pods::rejected_by_the_kubelet(e);
    };
    let explains = node
        .as_deref()
        .map(|n| operations_on(e, n))
        .unwrap_or_default();
    vec![
        finding
            .explaining(explains)
            .next_step(super::ended_pods::rejected_step(e, node.as_deref())),
    ]
}

/// Operations (`Kind/name`) of volumes in `namespace`: what its repository serves.
fn operations_in(e: &Evidence, namespace: &str) -> Vec<String> {
    e.operations
        .iter()
        .filter(|o| o.namespace.as_deref() == Some(namespace))
        .map(|o| o.key())
        .collect()
}

/// A BackupRepository of the target's location is NotReady (its status says why), or Velero
/// said a repository was not ready. An error when the target met it (its namespace had
/// volumes in the target, or Velero said so), whose failures it explains; else a warning (the
/// next backup of its namespace will fail).
pub(super) fn repository_not_ready(e: &Evidence) -> Vec<Finding> {
    let not_ready: Vec<&RepositoryEvidence> = e
        .infra
        .repositories
        .iter()
        .filter(|r| r.phase == "NotReady")
        .collect();
    if not_ready.is_empty() {
        return from_mentions(
            e,
            Pattern::RepositoryNotReady,
            Severity::Error,
            Layer::DataPath,
            "repository-not-ready",
            |_, n| {
                format!(
                    "Backup repository is not ready ({})",
                    plural(n, "mention", "mentions")
                )
            },
        )
        .map(|f| {
            f.next_step(next_steps::repository_not_ready(
                None,
                e.target.velero_namespace(),
            ))
        })
        .into_iter()
        .collect();
    }
    // Velero said so (results, logs, an operation's status): the target met a repository not
    // ready. The operations whose status says it are explained.
    let mentions = e.mentions(Pattern::RepositoryNotReady);
    let target_met_one = !mentions.is_empty();
    let said_so: Vec<String> = mentions.into_iter().filter_map(|m| m.operation).collect();
    not_ready
        .into_iter()
        .take(MAX_REPOSITORY_FINDINGS)
        .map(|r| {
            let ops = operations_in(e, &r.volume_namespace);
            let quote = if r.message.is_empty() {
                "status.phase: NotReady, no message".to_string()
            } else {
                r.message.clone()
            };
            // An operation that said so, of this namespace or of one not known.
            let said_here = said_so.iter().filter(|key| {
                e.operations.iter().any(|o| {
                    &o.key() == *key
                        && o.namespace
                            .as_deref()
                            .is_none_or(|ns| ns == r.volume_namespace)
                })
            });
            let explains: Vec<String> = ops.into_iter().chain(said_here.cloned()).collect();
            let severity = if explains.is_empty() && !target_met_one {
                Severity::Warning
            } else {
                Severity::Error
            };
            Finding::new(
                severity,
                Layer::DataPath,
                "repository-not-ready",
                format!(
                    "BackupRepository {} ({} repository of namespace {}) is NotReady",
                    r.name, r.repository_type, r.volume_namespace
                ),
                &quote,
                &r.path,
            )
            .explaining(explains)
            .about([r.key()])
            .next_step(next_steps::repository_not_ready(
                Some(&r.name),
                e.target.velero_namespace(),
            ))
        })
        .collect()
}

/// The latest maintenance job of a repository.
fn latest_job<'a>(
    e: &'a Evidence,
    repo: &RepositoryEvidence,
) -> Option<&'a MaintenanceJobEvidence> {
    e.infra
        .maintenance_jobs
        .iter()
        .filter(|j| j.repository == repo.identity())
        .max_by(|a, b| a.created.cmp(&b.created))
}

/// The ConfigMap the server's flags name for maintenance jobs, with `repo`'s key in it.
fn maintenance_config<'a>(
    e: &'a Evidence,
    repo: &RepositoryEvidence,
) -> Option<next_steps::MaintenanceConfig<'a>> {
    let config_map = e
        .infra
        .server_arguments
        .as_ref()?
        .repo_maintenance_config_map()?;
    Some(next_steps::MaintenanceConfig {
        config_map,
        key: format!(
            "{}-{}-{}",
            repo.volume_namespace, repo.storage_location, repo.repository_type
        ),
    })
}

/// Where the memory limit of `repo`'s maintenance jobs is set: its key in the server's
/// maintenance ConfigMap, else `global` (as Velero reads it), quoted when the ConfigMap was
/// read, or why it was not.
fn maintenance_limit(e: &Evidence, repo: &RepositoryEvidence) -> Option<String> {
    let key = format!(
        "{}-{}-{}",
        repo.volume_namespace, repo.storage_location, repo.repository_type
    );
    velero_config::setting(
        &e.infra.velero_config_maps,
        VeleroConfigMap::RepositoryMaintenance,
        &[&key, "global"],
        "podResources.memoryLimit",
    )
    .describe(e.target.velero_namespace(), "podResources.memoryLimit")
}

/// The latest maintenance of a repository failed (its status, or its latest job): kopia's or
/// restic's prune and checks did not run, and the error may be the repository's own.
pub(super) fn repository_maintenance_failed(e: &Evidence) -> Vec<Finding> {
    let mut found = Vec::new();
    for repo in &e.infra.repositories {
        let job = latest_job(e, repo);
        let run = repo
            .latest_maintenance
            .as_ref()
            .filter(|r| r.result == "Failed");
        let failed_job = job.filter(|j| j.failed);
        if run.is_none() && failed_job.is_none() {
            continue;
        }
        let pod = failed_job.and_then(|j| j.pod.as_ref());
        let how = failed_job.map(|j| {
            let ended = match pod.map(|p| (p.reason.as_deref(), p.exit_code)) {
                Some((Some(reason), Some(code))) => format!("{reason}, exit code {code}"),
                Some((Some(reason), None)) => reason.to_string(),
                Some((None, Some(code))) => format!("exit code {code}"),
                _ => j.failure_reason.clone().unwrap_or_else(|| "failed".into()),
            };
            format!(" (job {}: {ended})", j.name)
        });
        let (quote, file) = if let Some((error, pod)) =
            pod.and_then(|p| p.error.as_ref().map(|error| (error, p)))
        {
            (error.clone(), pod.path.clone())
        } else if let Some(run) = run.filter(|r| !r.message.is_empty()) {
            (run.message.clone(), repo.path.clone())
        } else if let Some(job) = failed_job {
            (
                format!(
                    "job {} failed: {}",
                    job.name,
                    job.failure_reason.as_deref().unwrap_or("no reason given")
                ),
                job.path.clone(),
            )
        } else {
            (
                "status.recentMaintenance: Failed, no message".into(),
                repo.path.clone(),
            )
        };
        let killed =
            quote.contains("OOMKilled") || how.as_deref().is_some_and(|h| h.contains("OOMKilled"));
        let quote = match maintenance_limit(e, repo).filter(|_| killed) {
            Some(limit) => format!("{quote}; {limit}"),
            None => quote,
        };
        found.push(
            Finding::new(
                Severity::Warning,
                Layer::DataPath,
                "repository-maintenance-failed",
                format!(
                    "Maintenance of BackupRepository {} failed{}",
                    repo.name,
                    how.unwrap_or_default()
                ),
                &quote,
                &file,
            )
            .about([format!("{}/maintenance", repo.key())])
            .next_step(next_steps::repository_maintenance_failed(
                job.map(|j| j.name.as_str()),
                e.target.velero_namespace(),
                repo.latest_maintenance
                    .as_ref()
                    .is_some_and(|r| r.from_status_message),
                maintenance_config(e, repo),
            )),
        );
        if found.len() >= MAX_REPOSITORY_FINDINGS {
            break;
        }
    }
    found
}

/// The finding for a node that should run a node-agent and does not, with its proof and, when
/// known, why.
/// What to do about a node without a running node-agent, by what the evidence says of it
/// (the same reading as [`why_no_agent`]); none when it says nothing.
pub(super) fn agent_next_step(e: &Evidence, node: &str) -> Option<String> {
    let infra = &e.infra;
    let listed = infra.nodes.get(node);
    let gap = if listed.is_none() && infra.all_nodes_listed {
        AgentGap::NodeGone
    } else if listed.is_some_and(|n| n.ready != "True") {
        AgentGap::NodeNotReady
    } else if let Some(pod) = infra.node_agent_pods.get(node).filter(|p| !p.running) {
        AgentGap::PodNotRunning {
            pod: &pod.name,
            reason: pod.reason.as_deref().unwrap_or_default(),
            message: pod.message.as_deref().unwrap_or_default(),
        }
    } else {
        let blockers = &listed?.agent_blockers;
        if blockers.iter().any(|b| b.starts_with("taint ")) {
            AgentGap::Untolerated
        } else if !blockers.is_empty() {
            AgentGap::Placement
        } else {
            return None;
        }
    };
    Some(next_steps::node_agent_missing(
        node,
        e.target.velero_namespace(),
        gap,
    ))
}

fn missing_agent_finding(node: &str, why: Option<&str>, quote: &str, file: &str) -> Finding {
    let title = match why {
        Some(why) => format!("No running node-agent on node {node}: {why}"),
        None => format!("No running node-agent on node {node}"),
    };
    Finding::new(
        Severity::Error,
        Layer::DataPath,
        "node-agent-missing",
        title,
        quote,
        file,
    )
}

#[cfg(test)]
#[path = "data_path_tests.rs"]
mod tests;

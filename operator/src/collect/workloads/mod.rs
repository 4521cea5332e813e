//! Workloads: the pods the target's volumes belong to, and what decides whether they run.
//!
//! The pods PodVolumeBackups/Restores name (`spec.pod`) and, for a Restore, the restored pods
//! that are not Ready (Velero labels every object it restores `velero.io/restore-name`); their
//! PVCs, the PVs bound to those, the PVs' VolumeAttachments, the StorageClasses; for a Restore
//! the ResourceQuotas and LimitRanges of the restored namespaces; the backup's VolumeSnapshots
//! in those namespaces. All under `resources/workloads/`, and into the findings' evidence.
//!
//! Reads in namespaces other than Velero's are granted per namespace by the chart's
//! `rbac.workloadNamespaces` (cluster-wide only as an opt-in): every namespace refused is named
//! in one warning that names that value, and never fails the bundle. Where the opt-in allows,
//! a kind is one list across the cluster, not one a namespace (spread.rs); objects are listed,
//! not read one by one, but where there is only one.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use serde::Serialize;
use serde_json::Value;

use super::{CollectError, Found, Sink, Sources, TargetObjects};
use crate::{
    kubernetes::{RequestError, is_object_name},
    tar_gz::EntryPath,
    velero::Target,
};

mod namespaced;
mod pods;
mod spread;
mod volumes;

/// Workload pods collected at most (those of operations that did not complete first).
pub(super) const MAX_PODS: usize = 50;
/// Namespaces read at most.
const MAX_NAMESPACES: usize = 20;
/// PVCs read at most.
const MAX_CLAIMS: usize = 100;
/// StorageClasses written at most; a cluster has a handful.
const MAX_STORAGE_CLASSES: usize = 50;
/// Restored Deployments, StatefulSets, DaemonSets and Jobs written at most, all kinds and
/// namespaces together: what the damage by application names as restored.
const MAX_APPLICATIONS: usize = 200;

/// A pod by namespace and name, as a PodVolumeBackup/Restore names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct PodRef {
    pub namespace: String,
    pub name: String,
}

impl PodRef {
    /// The pod a PodVolumeBackup/Restore names (`spec.pod`).
    pub(super) fn named_by(operation: &Value) -> Option<PodRef> {
        let pod = &operation["spec"]["pod"];
        Some(PodRef {
            namespace: pod["namespace"].as_str()?.to_string(),
            name: pod["name"].as_str()?.to_string(),
        })
    }
}

/// Where a Restore put the namespaces it restored.
#[derive(Debug, PartialEq)]
enum Restored {
    /// These (included namespaces, after `namespaceMapping`).
    Namespaces(Vec<String>),
    /// Whichever the backup held, so any; `mapped` are those `namespaceMapping` names.
    Any { mapped: Vec<String> },
}

/// The namespaces a Restore restored into, as Velero maps them.
fn restored_namespaces(restore: &Value) -> Restored {
    let spec = &restore["spec"];
    let mapping = spec["namespaceMapping"].as_object();
    let included: Vec<&str> = spec["includedNamespaces"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    // Nothing, `*` or a pattern may match any namespace.
    if included.is_empty() || included.iter().any(|n| !is_object_name(n)) {
        let mut mapped: Vec<String> = mapping
            .into_iter()
            .flat_map(|m| m.values())
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        mapped.sort();
        mapped.dedup();
        return Restored::Any { mapped };
    }
    let mut out: Vec<String> = included
        .iter()
        .map(|ns| {
            mapping
                .and_then(|m| m.get(*ns))
                .and_then(Value::as_str)
                .unwrap_or(ns)
                .to_string()
        })
        .collect();
    out.sort();
    out.dedup();
    Restored::Namespaces(out)
}

/// A Backup's namespaces when it names them (for its VolumeSnapshots).
fn backup_namespaces(backup: &Value) -> Vec<String> {
    let included: Vec<String> = backup["spec"]["includedNamespaces"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    if included.iter().all(|n| is_object_name(n)) {
        included
    } else {
        Vec::new()
    }
}

/// Ready, or done: not what a bundle about a stuck restore is looking for.
fn is_ready_or_done(pod: &Pod) -> bool {
    let Some(status) = &pod.status else {
        return false;
    };
    status.phase.as_deref() == Some("Succeeded")
        || status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// The PVCs a pod's volumes use; a generic ephemeral volume's claim is `<pod>-<volume>`.
fn claim_names(pod: &Pod) -> Vec<String> {
    pod.spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .filter_map(|v| {
            v.persistent_volume_claim
                .as_ref()
                .map(|c| c.claim_name.clone())
                .or_else(|| {
                    v.ephemeral
                        .as_ref()
                        .map(|_| format!("{}-{}", pod.name_any(), v.name))
                })
        })
        .collect()
}

/// What this step found so far, and what it was refused.
#[derive(Default)]
struct Workloads {
    pods: BTreeSet<PodRef>,
    /// More pods were wanted than [`MAX_PODS`].
    pods_cut: bool,
    /// (namespace, name) of the PVCs the pods use.
    claims: BTreeSet<(String, String)>,
    /// PVs bound to the claims.
    volumes: BTreeSet<String>,
    /// Namespaces the workloads live in: the restored ones, those of the pods.
    namespaces: BTreeSet<String>,
    /// Kinds refused (HTTP 403), by namespace: one warning names them all.
    refused: BTreeMap<String, BTreeSet<&'static str>>,
    /// The restore covers every namespace and listing pods in all of them was refused.
    refused_everywhere: bool,
    /// A list across the cluster was refused (no ClusterRoleBinding): not asked again.
    cluster_refused: bool,
    /// Restored applications written, and whether more were there.
    applications: usize,
    applications_cut: bool,
    /// What was looked for and not there: resources/workloads/collected.txt, not a warning.
    notes: Vec<String>,
}

impl Workloads {
    fn is_refused(&self, namespace: &str, kind: &str) -> bool {
        self.refused
            .get(namespace)
            .is_some_and(|kinds| kinds.contains(kind))
    }

    /// A namespaced read that failed: refusals wait for the one warning, the rest are warned.
    fn failed(
        &mut self,
        out: &mut Sink,
        namespace: &str,
        kind: &'static str,
        what: &str,
        e: RequestError,
    ) {
        if e.is_forbidden() {
            self.refuse(namespace, kind);
        } else {
            out.warn(format!("{what}: {e}"));
        }
    }

    fn refuse(&mut self, namespace: &str, kind: &'static str) {
        self.refused
            .entry(namespace.to_string())
            .or_default()
            .insert(kind);
    }

    /// Namespaces to read, at most [`MAX_NAMESPACES`], names only.
    fn namespaces_to_read(&self) -> Vec<String> {
        self.namespaces
            .iter()
            .filter(|ns| is_object_name(ns))
            .take(MAX_NAMESPACES)
            .cloned()
            .collect()
    }

    /// A namespaced workload object, written and its uid remembered for its events.
    fn add<K: Serialize>(
        &mut self,
        out: &mut Sink,
        found: &mut Found,
        namespace: &str,
        kind: &str,
        name: &str,
        obj: &K,
    ) -> Result<(String, Value), CollectError> {
        let path = EntryPath::new(&["resources", "workloads", namespace, kind], name, "yaml");
        let seen = out.add_object_seen(&path, obj)?;
        if let Some(uid) = seen["metadata"]["uid"].as_str() {
            found
                .workload_uids
                .entry(namespace.to_string())
                .or_default()
                .insert(uid.to_string());
        }
        Ok((path.to_string(), seen))
    }

    fn add_pod(&mut self, out: &mut Sink, found: &mut Found, pod: Pod) -> Result<(), CollectError> {
        let namespace = pod.namespace().unwrap_or_default();
        let name = pod.name_any();
        if !self.pods.insert(PodRef {
            namespace: namespace.clone(),
            name: name.clone(),
        }) {
            return Ok(());
        }
        let (path, seen) = self.add(out, found, &namespace, "pod", &name, &pod)?;
        found.summary.evidence.add_workload_pod(&path, &seen);
        for claim in claim_names(&pod) {
            self.claims.insert((namespace.clone(), claim));
        }
        self.namespaces.insert(namespace);
        Ok(())
    }
}

pub(super) async fn all(
    src: &Sources<'_>,
    out: &mut Sink,
    found: &mut Found,
    objects: &TargetObjects,
) -> Result<(), CollectError> {
    let mut w = Workloads::default();
    let backup_name = match &src.plan.target {
        Target::Restore(name) => {
            let restored = restored_namespaces(&objects.target.data);
            pods::of_restore((src, out), found, &mut w, &restored, name).await?;
            objects.target.data["spec"]["backupName"]
                .as_str()
                .map(str::to_string)
        }
        Target::Backup(name) => {
            pods::of_backup((src, out), found, &mut w).await?;
            Some(name.clone())
        }
    };
    volumes::claims((src, out), found, &mut w).await?;
    volumes::persistent_volumes((src, out), found, &mut w).await?;
    volumes::volume_attachments(src, out, found, &mut w).await?;
    volumes::storage_classes(src, out, found, &mut w).await?;
    match &src.plan.target {
        Target::Restore(name) => {
            namespaced::quotas_and_limits((src, out), found, &mut w).await?;
            namespaced::restored_applications((src, out), found, &mut w, name).await?;
        }
        Target::Backup(_) => w.namespaces.extend(backup_namespaces(&objects.target.data)),
    }
    if let Some(backup) = backup_name {
        namespaced::volume_snapshots((src, out), found, &mut w, &backup).await?;
    }
    report(out, w)
}

/// Why a kind was not collected, in manifest.json's notCollected.
const REFUSED_EVERYWHERE: &str =
    "forbidden across namespaces; rbac.workloadNamespaces: [\"*\"] grants it";

/// One warning for every refusal, naming the chart value that grants the reads; the notes.
fn report(out: &mut Sink, mut w: Workloads) -> Result<(), CollectError> {
    if w.pods_cut {
        out.warn(format!(
            "more than {MAX_PODS} workload pods; only the first {MAX_PODS} were collected"
        ));
    }
    if w.applications_cut {
        w.notes.push(format!(
            "more than {MAX_APPLICATIONS} restored Deployments, StatefulSets, DaemonSets and Jobs; only the first {MAX_APPLICATIONS} were collected"
        ));
    }
    if w.refused_everywhere {
        out.not_collected("pods", None, REFUSED_EVERYWHERE);
        out.warn(
            "restored pods of all namespaces (the restore covers every namespace) are not listable: \
             forbidden; rbac.workloadNamespaces: [\"*\"] allows it, or list the restored namespaces \
             in rbac.workloadNamespaces",
        );
    }
    for (ns, kinds) in &w.refused {
        for kind in kinds {
            out.not_collected(kind, Some(ns), super::REFUSED_IN_NAMESPACE);
        }
    }
    if !w.refused.is_empty() {
        let namespaces: Vec<String> = w
            .refused
            .iter()
            .map(|(ns, kinds)| {
                let kinds: Vec<&str> = kinds.iter().copied().collect();
                format!("{ns} ({})", kinds.join(", "))
            })
            .collect();
        out.warn(format!(
            "workload objects forbidden in namespace {}: the chart grants these reads per namespace with rbac.workloadNamespaces",
            namespaces.join(", ")
        ));
    }
    let mut text = format!(
        "workload pods: {}\nnamespaces: {}\n",
        w.pods.len(),
        w.namespaces.iter().cloned().collect::<Vec<_>>().join(", ")
    );
    // Names come from the cluster: each line is masked like an event's.
    for note in &w.notes {
        text.push_str(&out.redact_line(note));
        text.push('\n');
    }
    out.add_text(
        &EntryPath::new(&["resources", "workloads"], "collected", "txt"),
        &text,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restore_restores_its_included_namespaces_under_their_mapped_names() {
        let restore = serde_json::json!({"spec": {
            "includedNamespaces": ["shop", "db"],
            "namespaceMapping": {"shop": "shop-copy", "other": "elsewhere"}
        }});
        assert_eq!(
            restored_namespaces(&restore),
            Restored::Namespaces(vec!["db".into(), "shop-copy".into()])
        );
    }

    #[test]
    fn a_restore_of_every_namespace_knows_only_its_mapped_ones() {
        for included in [
            serde_json::json!([]),
            serde_json::json!(["*"]),
            serde_json::json!(["app-*"]),
        ] {
            let restore = serde_json::json!({"spec": {
                "includedNamespaces": included,
                "namespaceMapping": {"b": "b2", "a": "a2"}
            }});
            assert_eq!(
                restored_namespaces(&restore),
                Restored::Any {
                    mapped: vec!["a2".into(), "b2".into()]
                },
                "{included}"
            );
        }
    }

    #[test]
    fn a_backup_names_its_namespaces_only_when_all_are_names() {
        let named = serde_json::json!({"spec": {"includedNamespaces": ["shop"]}});
        assert_eq!(backup_namespaces(&named), ["shop"]);
        let any = serde_json::json!({"spec": {"includedNamespaces": ["*"]}});
        assert!(backup_namespaces(&any).is_empty());
    }

    fn pod(value: Value) -> Pod {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn claims_come_from_claim_and_ephemeral_volumes() {
        let p = pod(serde_json::json!({
            "metadata": {"name": "web-0", "namespace": "shop"},
            "spec": {"containers": [], "volumes": [
                {"name": "data", "persistentVolumeClaim": {"claimName": "data-web-0"}},
                {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}},
                {"name": "config", "configMap": {"name": "settings"}}
            ]}
        }));
        assert_eq!(claim_names(&p), ["data-web-0", "web-0-scratch"]);
    }

    #[test]
    fn only_pods_not_ready_and_not_done_are_wanted() {
        let with = |phase: &str, ready: &str| {
            pod(serde_json::json!({
                "metadata": {"name": "p"},
                "status": {"phase": phase, "conditions": [{"type": "Ready", "status": ready}]}
            }))
        };
        assert!(is_ready_or_done(&with("Running", "True")));
        assert!(is_ready_or_done(&with("Succeeded", "False")));
        assert!(!is_ready_or_done(&with("Pending", "False")));
        assert!(!is_ready_or_done(&with("Running", "False")));
        assert!(!is_ready_or_done(&pod(
            serde_json::json!({"metadata": {"name": "p"}})
        )));
    }

    #[test]
    fn operations_name_their_pod_by_namespace_and_name() {
        let pvr = serde_json::json!({"spec": {"pod": {"kind": "Pod", "namespace": "shop", "name": "web-0"}}});
        assert_eq!(
            PodRef::named_by(&pvr),
            Some(PodRef {
                namespace: "shop".into(),
                name: "web-0".into()
            })
        );
        assert_eq!(PodRef::named_by(&serde_json::json!({"spec": {}})), None);
    }
}

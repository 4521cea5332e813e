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
//! in one warning that names that value, and never fails the bundle.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::{
    apps::v1::{DaemonSet, Deployment, StatefulSet},
    batch::v1::Job,
    core::v1::{LimitRange, PersistentVolume, PersistentVolumeClaim, Pod, ResourceQuota},
    storage::v1::{StorageClass, VolumeAttachment},
};
use kube::{
    Api, ResourceExt,
    api::ListParams,
    core::{ApiResource, DynamicObject, GroupVersionKind},
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use super::{CollectError, Found, Sink, Sources, TargetObjects};
use crate::{
    kubernetes::{self, RequestError, is_object_name},
    tar_gz::EntryPath,
    velero::{self, Target},
};

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

fn volume_snapshot_resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "snapshot.storage.k8s.io",
        "v1",
        "VolumeSnapshot",
    ))
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
            self.refused
                .entry(namespace.to_string())
                .or_default()
                .insert(kind);
        } else {
            out.warn(format!("{what}: {e}"));
        }
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
    named_pods(src, out, found, &mut w).await?;
    let backup_name = match &src.plan.target {
        Target::Restore(name) => {
            let restored = restored_namespaces(&objects.target.data);
            restored_pods(src, out, found, &mut w, &restored, name).await?;
            objects.target.data["spec"]["backupName"]
                .as_str()
                .map(str::to_string)
        }
        Target::Backup(name) => Some(name.clone()),
    };
    claims(src, out, found, &mut w).await?;
    persistent_volumes(src, out, found, &mut w).await?;
    volume_attachments(src, out, found, &mut w).await?;
    storage_classes(src, out, found, &mut w).await?;
    match &src.plan.target {
        Target::Restore(name) => {
            quotas_and_limits(src, out, found, &mut w).await?;
            restored_applications(src, out, found, &mut w, name).await?;
        }
        Target::Backup(_) => w.namespaces.extend(backup_namespaces(&objects.target.data)),
    }
    if let Some(backup) = backup_name {
        volume_snapshots(src, out, found, &mut w, &backup).await?;
    }
    report(out, w)
}

/// The pods the target's PodVolumeBackups/Restores name, at most [`MAX_PODS`] read.
async fn named_pods(
    src: &Sources<'_>,
    out: &mut Sink,
    found: &mut Found,
    w: &mut Workloads,
) -> Result<(), CollectError> {
    // Named by an operation's spec, which anyone who may edit it writes.
    let (names, others): (Vec<PodRef>, Vec<PodRef>) = found
        .operation_pods
        .iter()
        .cloned()
        .partition(|p| is_object_name(&p.namespace) && is_object_name(&p.name));
    if let Some(first) = others.first() {
        out.warn(format!(
            "{} pods named by volume operations are not pod names (the first: {:?}/{:?})",
            others.len(),
            first.namespace,
            first.name
        ));
    }
    w.pods_cut |= names.len() > MAX_PODS;
    for pod in names.into_iter().take(MAX_PODS) {
        if w.is_refused(&pod.namespace, "pods") {
            continue;
        }
        let api: Api<Pod> = Api::namespaced(src.client.clone(), &pod.namespace);
        match src.timed_request(api.get_opt(&pod.name)).await {
            Ok(Some(named)) => {
                place_restores(found, &pod, &named);
                w.add_pod(out, found, named)?
            }
            Ok(None) => w.notes.push(format!(
                "pod {}/{} (named by a volume operation) does not exist",
                pod.namespace, pod.name
            )),
            Err(e) => {
                let what = format!("pod {}/{}", pod.namespace, pod.name);
                w.failed(out, &pod.namespace, "pods", &what, e);
            }
        }
    }
    Ok(())
}

/// The PodVolumeRestores of `pod` that name no node (Velero 1.14) ran on the pod's node.
fn place_restores(found: &mut Found, pod: &PodRef, named: &Pod) {
    let node = named.spec.as_ref().and_then(|s| s.node_name.as_deref());
    let Some(node) = node.filter(|_| found.unplaced_restore_pods.contains(pod)) else {
        return;
    };
    found.involved_nodes.insert(node.to_string());
    let key = format!("{}/{}", pod.namespace, pod.name);
    found.summary.evidence.place_pod_volume_restores(&key, node);
}

/// The restored pods that are not Ready, by the label Velero gives every restored object.
async fn restored_pods(
    src: &Sources<'_>,
    out: &mut Sink,
    found: &mut Found,
    w: &mut Workloads,
    restored: &Restored,
    restore: &str,
) -> Result<(), CollectError> {
    let selector = velero::selector(velero::RESTORE_NAME_LABEL, restore);
    let by_label = ListParams::default().labels(&selector);
    let namespaces = match restored {
        Restored::Namespaces(list) => list.clone(),
        Restored::Any { mapped } => {
            let everywhere: Api<Pod> = Api::all(src.client.clone());
            let what = "restored pods";
            match not_ready(src, out, w, &everywhere, by_label.clone(), what).await {
                Ok(pods) => {
                    w.namespaces.extend(mapped.iter().cloned());
                    return add_restored(out, found, w, pods);
                }
                Err(e) if e.is_forbidden() => w.refused_everywhere = true,
                Err(e) => out.warn(format!("restored pods of all namespaces: {e}")),
            }
            // Where the restore is known to have put things.
            let mut known: BTreeSet<String> = mapped.iter().cloned().collect();
            known.extend(w.namespaces.iter().cloned());
            known.into_iter().collect()
        }
    };
    w.namespaces.extend(namespaces.iter().cloned());
    for ns in namespaces
        .iter()
        .filter(|ns| is_object_name(ns))
        .take(MAX_NAMESPACES)
    {
        if w.is_refused(ns, "pods") {
            continue;
        }
        let api: Api<Pod> = Api::namespaced(src.client.clone(), ns);
        let what = format!("restored pods of namespace {ns}");
        match not_ready(src, out, w, &api, by_label.clone(), &what).await {
            Ok(pods) => add_restored(out, found, w, pods)?,
            Err(e) => w.failed(out, ns, "pods", &what, e),
        }
    }
    Ok(())
}

/// The pods of a list that are not Ready, as many as there is room for: a restore of
/// thousands of pods is read page by page, and only those kept are held.
async fn not_ready(
    src: &Sources<'_>,
    out: &mut Sink,
    w: &mut Workloads,
    api: &Api<Pod>,
    lp: ListParams,
    what: &str,
) -> Result<Vec<Pod>, RequestError> {
    let room = MAX_PODS.saturating_sub(w.pods.len());
    if room == 0 {
        w.pods_cut = true;
        return Ok(Vec::new());
    }
    let listed =
        kubernetes::list_keeping(api, lp, src.limits, room, |p| !is_ready_or_done(p)).await?;
    w.pods_cut |= listed.truncated;
    for why in listed.undecodable {
        out.warn(format!("{what}: one left out, it could not be read: {why}"));
    }
    Ok(listed.items)
}

fn add_restored(
    out: &mut Sink,
    found: &mut Found,
    w: &mut Workloads,
    pods: Vec<Pod>,
) -> Result<(), CollectError> {
    for pod in pods {
        w.add_pod(out, found, pod)?;
    }
    Ok(())
}

async fn claims(
    src: &Sources<'_>,
    out: &mut Sink,
    found: &mut Found,
    w: &mut Workloads,
) -> Result<(), CollectError> {
    let wanted: Vec<(String, String)> = w.claims.iter().take(MAX_CLAIMS).cloned().collect();
    if w.claims.len() > MAX_CLAIMS {
        out.warn(format!(
            "the workload pods use {} PersistentVolumeClaims; only the first {MAX_CLAIMS} were collected",
            w.claims.len()
        ));
    }
    for (ns, name) in wanted {
        // A claim name comes from a pod's spec: anyone's writing.
        if !is_object_name(&name) || w.is_refused(&ns, "persistentvolumeclaims") {
            continue;
        }
        let api: Api<PersistentVolumeClaim> = Api::namespaced(src.client.clone(), &ns);
        match src.timed_request(api.get_opt(&name)).await {
            Ok(Some(claim)) => {
                let kind = "persistentvolumeclaim";
                let (path, seen) = w.add(out, found, &ns, kind, &name, &claim)?;
                found.summary.evidence.add_claim(&path, &seen);
                if let Some(volume) = claim.spec.and_then(|s| s.volume_name) {
                    w.volumes.insert(volume);
                }
            }
            Ok(None) => w.notes.push(format!(
                "PersistentVolumeClaim {ns}/{name} (used by a workload pod) does not exist"
            )),
            Err(e) => {
                let what = format!("PersistentVolumeClaim {ns}/{name}");
                w.failed(out, &ns, "persistentvolumeclaims", &what, e);
            }
        }
    }
    Ok(())
}

/// A cluster-scoped object, written.
fn add_cluster_scoped<K: Serialize>(
    out: &mut Sink,
    kind: &str,
    name: &str,
    obj: &K,
) -> Result<Value, CollectError> {
    let path = EntryPath::new(&["resources", "workloads", kind], name, "yaml");
    out.add_object_seen(&path, obj)
}

/// The PVs bound to the claims (get, cluster-scoped).
async fn persistent_volumes(
    src: &Sources<'_>,
    out: &mut Sink,
    found: &mut Found,
    w: &mut Workloads,
) -> Result<(), CollectError> {
    let api: Api<PersistentVolume> = Api::all(src.client.clone());
    for name in w.volumes.clone() {
        if !is_object_name(&name) {
            continue;
        }
        match src.timed(api.get_opt(&name)).await {
            Ok(Some(volume)) => {
                found.volume_uids.extend(volume.uid());
                add_cluster_scoped(out, "persistentvolume", &name, &volume)?;
            }
            Ok(None) => w.notes.push(format!(
                "PersistentVolume {name} (bound to a claim) does not exist"
            )),
            Err(e) => out.warn(format!("PersistentVolume {name}: {e}")),
        }
    }
    Ok(())
}

/// The VolumeAttachments of those PVs: which node holds a volume another pod waits for.
async fn volume_attachments(
    src: &Sources<'_>,
    out: &mut Sink,
    found: &mut Found,
    w: &mut Workloads,
) -> Result<(), CollectError> {
    if w.volumes.is_empty() {
        return Ok(());
    }
    let api: Api<VolumeAttachment> = Api::all(src.client.clone());
    let Some(all) = list_of(src, out, &api, "VolumeAttachments").await else {
        return Ok(());
    };
    for attachment in all {
        let volume = attachment.spec.source.persistent_volume_name.as_deref();
        if volume.is_some_and(|v| w.volumes.contains(v)) {
            let name = attachment.name_any();
            let seen = add_cluster_scoped(out, "volumeattachment", &name, &attachment)?;
            found.summary.evidence.add_volume_attachment(&seen);
        }
    }
    Ok(())
}

/// The cluster's StorageClasses (a handful): which the claims name, and which is the default.
async fn storage_classes(
    src: &Sources<'_>,
    out: &mut Sink,
    found: &mut Found,
    w: &mut Workloads,
) -> Result<(), CollectError> {
    if w.claims.is_empty() {
        return Ok(());
    }
    let api: Api<StorageClass> = Api::all(src.client.clone());
    let Some(all) = list_of(src, out, &api, "StorageClasses").await else {
        return Ok(());
    };
    let whole = all.len() <= MAX_STORAGE_CLASSES;
    let mut seen = Vec::new();
    for class in all.into_iter().take(MAX_STORAGE_CLASSES) {
        seen.push(add_cluster_scoped(
            out,
            "storageclass",
            &class.name_any(),
            &class,
        )?);
    }
    // Only a whole list can say that a class does not exist.
    if whole {
        found.summary.evidence.set_storage_classes(&seen);
    } else {
        w.notes.push(format!(
            "more than {MAX_STORAGE_CLASSES} StorageClasses; only the first were collected"
        ));
    }
    Ok(())
}

/// A cluster-wide list; a failure is a warning.
async fn list_of<K>(src: &Sources<'_>, out: &mut Sink, api: &Api<K>, what: &str) -> Option<Vec<K>>
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    src.list_all(out, api, ListParams::default(), what).await
}

/// ResourceQuotas and LimitRanges of the restored namespaces: what admission held the
/// restored objects to.
async fn quotas_and_limits(
    src: &Sources<'_>,
    out: &mut Sink,
    found: &mut Found,
    w: &mut Workloads,
) -> Result<(), CollectError> {
    for ns in w.namespaces_to_read() {
        if !w.is_refused(&ns, "resourcequotas") {
            let api: Api<ResourceQuota> = Api::namespaced(src.client.clone(), &ns);
            let what = format!("ResourceQuotas of namespace {ns}");
            match src
                .try_list_all(out, &api, ListParams::default(), &what)
                .await
            {
                Ok(quotas) => {
                    for quota in quotas {
                        let name = quota.name_any();
                        let (path, seen) =
                            w.add(out, found, &ns, "resourcequota", &name, &quota)?;
                        found.summary.evidence.add_quota(&path, &seen);
                    }
                }
                Err(e) => w.failed(out, &ns, "resourcequotas", &what, e),
            }
        }
        if !w.is_refused(&ns, "limitranges") {
            let api: Api<LimitRange> = Api::namespaced(src.client.clone(), &ns);
            let what = format!("LimitRanges of namespace {ns}");
            match src
                .try_list_all(out, &api, ListParams::default(), &what)
                .await
            {
                Ok(ranges) => {
                    for range in ranges {
                        let name = range.name_any();
                        let (path, seen) = w.add(out, found, &ns, "limitrange", &name, &range)?;
                        found.summary.evidence.add_limit_range(&path, &seen);
                    }
                }
                Err(e) => w.failed(out, &ns, "limitranges", &what, e),
            }
        }
    }
    Ok(())
}

/// The Deployments, StatefulSets, DaemonSets and Jobs a Restore restored into the workloads'
/// namespaces (by Velero's restore-name label), at most [`MAX_APPLICATIONS`]: the damage by
/// application names those restored whole, and reads the Helm release they belong to.
async fn restored_applications(
    src: &Sources<'_>,
    out: &mut Sink,
    found: &mut Found,
    w: &mut Workloads,
    restore: &str,
) -> Result<(), CollectError> {
    let selector = velero::selector(velero::RESTORE_NAME_LABEL, restore);
    // Where pods were refused, so are these (one ClusterRole grants both): not asked again.
    for ns in w.namespaces_to_read() {
        if w.is_refused(&ns, "pods") {
            continue;
        }
        let lp = ListParams::default().labels(&selector);
        let deployments = ("Deployment", "deployments");
        restored_of::<Deployment>(src, out, found, w, &ns, lp.clone(), deployments).await?;
        let statefulsets = ("StatefulSet", "statefulsets");
        restored_of::<StatefulSet>(src, out, found, w, &ns, lp.clone(), statefulsets).await?;
        let daemonsets = ("DaemonSet", "daemonsets");
        restored_of::<DaemonSet>(src, out, found, w, &ns, lp.clone(), daemonsets).await?;
        restored_of::<Job>(src, out, found, w, &ns, lp, ("Job", "jobs")).await?;
    }
    Ok(())
}

/// The restored objects of one kind (and its resource) in one namespace, as many as there is
/// room for.
async fn restored_of<K>(
    src: &Sources<'_>,
    out: &mut Sink,
    found: &mut Found,
    w: &mut Workloads,
    ns: &str,
    lp: ListParams,
    (kind, resource): (&'static str, &'static str),
) -> Result<(), CollectError>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug,
{
    let room = MAX_APPLICATIONS.saturating_sub(w.applications);
    if room == 0 || w.is_refused(ns, resource) {
        w.applications_cut |= room == 0;
        return Ok(());
    }
    let api: Api<K> = Api::namespaced(src.client.clone(), ns);
    let what = format!("restored {resource} of namespace {ns}");
    let listed = match kubernetes::list_keeping(&api, lp, src.limits, room, |_| true).await {
        Ok(listed) => listed,
        Err(e) => {
            w.failed(out, ns, resource, &what, e);
            return Ok(());
        }
    };
    w.applications_cut |= listed.truncated;
    for why in listed.undecodable {
        out.warn(format!("{what}: one left out, it could not be read: {why}"));
    }
    for obj in listed.items {
        let name = obj.meta().name.clone().unwrap_or_default();
        let (_, seen) = w.add(out, found, ns, &kind.to_lowercase(), &name, &obj)?;
        found.summary.evidence.add_application(kind, &seen);
        w.applications += 1;
    }
    Ok(())
}

/// The backup's CSI VolumeSnapshots in the workloads' namespaces (Velero labels them
/// `velero.io/backup-name`); a cluster without the snapshot API has none, which is no warning.
async fn volume_snapshots(
    src: &Sources<'_>,
    out: &mut Sink,
    found: &mut Found,
    w: &mut Workloads,
    backup: &str,
) -> Result<(), CollectError> {
    let resource = volume_snapshot_resource();
    let selector = velero::selector(velero::BACKUP_NAME_LABEL, backup);
    for ns in w.namespaces_to_read() {
        if w.is_refused(&ns, "volumesnapshots") {
            continue;
        }
        let api: Api<DynamicObject> = Api::namespaced_with(src.client.clone(), &ns, &resource);
        let what = format!("VolumeSnapshots of namespace {ns}");
        let lp = ListParams::default().labels(&selector);
        match src.try_list_all(out, &api, lp, &what).await {
            Ok(snapshots) => {
                for snapshot in snapshots {
                    let snapshot = kubernetes::with_types(snapshot, &resource);
                    let name = snapshot.name_any();
                    w.add(out, found, &ns, "volumesnapshot", &name, &snapshot)?;
                }
            }
            Err(e) if e.is_not_found() => {
                w.notes.push(
                    "VolumeSnapshots: the cluster does not serve snapshot.storage.k8s.io/v1 (no CSI snapshot CRDs)"
                        .to_string(),
                );
                return Ok(());
            }
            Err(e) => w.failed(out, &ns, "volumesnapshots", &what, e),
        }
    }
    Ok(())
}

/// Why a kind was not collected, in manifest.json's notCollected.
const REFUSED_EVERYWHERE: &str =
    "forbidden across namespaces; rbac.workloadNamespaces: [\"*\"] grants it";
const REFUSED_IN_NAMESPACE: &str =
    "forbidden; rbac.workloadNamespaces does not list this namespace";

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
            out.not_collected(kind, Some(ns), REFUSED_IN_NAMESPACE);
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

//! The workload pods' volumes: their claims (a get for one in a namespace, a list keeping
//! them for more), the PVs bound to those (a list keeping them, but for a few), the PVs'
//! VolumeAttachments, and the cluster's StorageClasses.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::{
    core::v1::{PersistentVolume, PersistentVolumeClaim},
    storage::v1::{StorageClass, VolumeAttachment},
};
use kube::{Api, ResourceExt, api::ListParams};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use super::{MAX_CLAIMS, MAX_STORAGE_CLASSES, Workloads, spread};
use crate::{
    collect::{CollectError, Found, Sink, Sources},
    kubernetes::is_object_name,
    tar_gz::EntryPath,
};

/// PVs read one by one at most; past this a list of them all costs fewer requests.
const PERSISTENT_VOLUME_GETS: usize = 3;

pub(super) async fn claims(
    (src, out): (&Sources<'_>, &mut Sink),
    found: &mut Found,
    w: &mut Workloads,
) -> Result<(), CollectError> {
    if w.claims.len() > MAX_CLAIMS {
        out.warn(format!(
            "the workload pods use {} PersistentVolumeClaims; only the first {MAX_CLAIMS} were collected",
            w.claims.len()
        ));
    }
    let mut by_namespace: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    // A claim name comes from a pod's spec: anyone's writing.
    let wanted = w
        .claims
        .iter()
        .take(MAX_CLAIMS)
        .filter(|(_, n)| is_object_name(n));
    for (ns, name) in wanted {
        by_namespace
            .entry(ns.clone())
            .or_default()
            .insert(name.clone());
    }
    for (ns, names) in by_namespace {
        if w.is_refused(&ns, "persistentvolumeclaims") {
            continue;
        }
        let what = format!("PersistentVolumeClaims of namespace {ns}");
        let api: Api<PersistentVolumeClaim> = Api::namespaced(src.client.clone(), &ns);
        let listed = match spread::read_named(src, &api, &names).await {
            Ok(listed) => listed,
            Err(e) => {
                w.failed(out, &ns, "persistentvolumeclaims", &what, e);
                continue;
            }
        };
        for why in listed.undecodable {
            out.warn(format!("{what}: one left out, it could not be read: {why}"));
        }
        let mut seen = BTreeSet::new();
        for claim in listed.items {
            let name = claim.name_any();
            let (path, object) = w.add(out, found, &ns, "persistentvolumeclaim", &name, &claim)?;
            found.summary.evidence.add_claim(&path, &object);
            if let Some(volume) = claim.spec.and_then(|s| s.volume_name) {
                w.volumes.insert(volume);
            }
            seen.insert(name);
        }
        for name in names.difference(&seen) {
            w.notes.push(format!(
                "PersistentVolumeClaim {ns}/{name} (used by a workload pod) does not exist"
            ));
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

/// The PVs bound to the claims (cluster-scoped): one by one when they are few, else one
/// list keeping them.
pub(super) async fn persistent_volumes(
    (src, out): (&Sources<'_>, &mut Sink),
    found: &mut Found,
    w: &mut Workloads,
) -> Result<(), CollectError> {
    let api: Api<PersistentVolume> = Api::all(src.client.clone());
    let names: BTreeSet<String> = w
        .volumes
        .iter()
        .filter(|n| is_object_name(n))
        .cloned()
        .collect();
    let read = if names.len() <= PERSISTENT_VOLUME_GETS {
        let mut items = Vec::new();
        for name in &names {
            match src.timed(api.get_opt(name)).await {
                Ok(volume) => items.extend(volume),
                Err(e) => out.warn(format!("PersistentVolume {name}: {e}")),
            }
        }
        items
    } else {
        let bound = |v: &PersistentVolume| names.contains(&v.name_any());
        let what = "PersistentVolumes bound to the workloads' claims";
        match src
            .list_matching(out, &api, ListParams::default(), what, bound)
            .await
        {
            Some(items) => items,
            None => return Ok(()),
        }
    };
    let mut seen = BTreeSet::new();
    for volume in read {
        let name = volume.name_any();
        found.volume_uids.extend(volume.uid());
        add_cluster_scoped(out, "persistentvolume", &name, &volume)?;
        seen.insert(name);
    }
    for name in names.difference(&seen) {
        w.notes.push(format!(
            "PersistentVolume {name} (bound to a claim) does not exist"
        ));
    }
    Ok(())
}
/// The VolumeAttachments of those PVs: which node holds a volume another pod waits for.
pub(super) async fn volume_attachments(
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
pub(super) async fn storage_classes(
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

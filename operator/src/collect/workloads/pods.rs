//! The workload pods: those the target's PodVolumeBackups/Restores name, and a restore's
//! pods that are not Ready. A restore's are one list by Velero's restore-name label (across
//! the cluster where allowed); a pod named but not found so, and a backup's, are read by
//! namespace: a get for one pod, a list for more.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Pod;
use kube::{Api, ResourceExt, api::ListParams};

use super::{
    MAX_PODS, PodRef, Restored, Workloads, is_ready_or_done,
    spread::{self, Kind, Scope},
};
use crate::{
    collect::{CollectError, Found, Sink, Sources},
    kubernetes::is_object_name,
    velero,
};

/// A restore's pods: those its PodVolumeRestores name and those not Ready, at most
/// [`MAX_PODS`], the named first.
pub(super) async fn of_restore(
    (src, out): (&Sources<'_>, &mut Sink),
    found: &mut Found,
    w: &mut Workloads,
    restored: &Restored,
    restore: &str,
) -> Result<(), CollectError> {
    let named = first_named(out, found, w);
    let (scope, extend) = match restored {
        Restored::Namespaces(list) => (Scope::Namespaces(list), list.clone()),
        Restored::Any { mapped } => (Scope::Everywhere { known: mapped }, mapped.clone()),
    };
    w.namespaces.extend(extend);
    let selector = velero::selector(velero::RESTORE_NAME_LABEL, restore);
    let lp = ListParams::default().labels(&selector);
    let room = MAX_PODS.saturating_sub(named.len());
    let (mut kept, mut cut) = (0, false);
    // The named always; of the others, those not Ready while there is room.
    let keep = |p: &Pod| {
        if named.contains(&pod_ref(p)) {
            return true;
        }
        if is_ready_or_done(p) {
            return false;
        }
        cut |= kept >= room;
        kept += 1;
        kept <= room
    };
    let kind = Kind {
        resource: "pods",
        what: "restored pods",
    };
    let api = |ns: Option<&str>| pods_api(src, ns);
    let listed = w
        .list_in(
            (src.limits, &mut |m| out.warn(m)),
            kind,
            api,
            (scope, lp),
            MAX_PODS,
            keep,
        )
        .await;
    w.pods_cut |= listed.truncated || cut;
    for pod in listed.items {
        add(out, found, w, pod)?;
    }
    // Named but not restored by it (or gone): read by name.
    let missing: Vec<PodRef> = named.into_iter().filter(|p| !w.pods.contains(p)).collect();
    by_name((src, out), found, w, missing).await
}

/// A backup's pods: those its PodVolumeBackups name, at most [`MAX_PODS`].
pub(super) async fn of_backup(
    (src, out): (&Sources<'_>, &mut Sink),
    found: &mut Found,
    w: &mut Workloads,
) -> Result<(), CollectError> {
    let named = first_named(out, found, w);
    by_name((src, out), found, w, named.into_iter().collect()).await
}

/// The first [`MAX_PODS`] pods the operations name (those of operations that did not
/// complete first) that are pod names; the others are warned about.
fn first_named(out: &mut Sink, found: &Found, w: &mut Workloads) -> BTreeSet<PodRef> {
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
    names.into_iter().take(MAX_PODS).collect()
}

/// Pods by name, namespace by namespace: a get for one, a list keeping them for more.
async fn by_name(
    (src, out): (&Sources<'_>, &mut Sink),
    found: &mut Found,
    w: &mut Workloads,
    pods: Vec<PodRef>,
) -> Result<(), CollectError> {
    let mut by_namespace: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for pod in pods {
        by_namespace
            .entry(pod.namespace)
            .or_default()
            .insert(pod.name);
    }
    for (ns, names) in by_namespace {
        if w.is_refused(&ns, "pods") {
            continue;
        }
        let what = format!("pods of namespace {ns} named by volume operations");
        let read = spread::read_named(src, &pods_api(src, Some(&ns)), &names).await;
        match read {
            Ok(listed) => {
                for why in listed.undecodable {
                    out.warn(format!("{what}: one left out, it could not be read: {why}"));
                }
                for pod in listed.items {
                    add(out, found, w, pod)?;
                }
            }
            Err(e) => {
                // Not read is not "does not exist": the warning or the refusal says it.
                w.failed(out, &ns, "pods", &what, e);
                continue;
            }
        }
        for name in names {
            let pod = PodRef {
                namespace: ns.clone(),
                name,
            };
            if !w.pods.contains(&pod) && !w.is_refused(&ns, "pods") {
                w.notes.push(format!(
                    "pod {}/{} (named by a volume operation) does not exist",
                    pod.namespace, pod.name
                ));
            }
        }
    }
    Ok(())
}

fn pods_api(src: &Sources<'_>, ns: Option<&str>) -> Api<Pod> {
    match ns {
        Some(ns) => Api::namespaced(src.client.clone(), ns),
        None => Api::all(src.client.clone()),
    }
}

fn pod_ref(pod: &Pod) -> PodRef {
    PodRef {
        namespace: pod.namespace().unwrap_or_default(),
        name: pod.name_any(),
    }
}

/// A pod written; a PodVolumeRestore naming it that named no node ran on its node.
fn add(out: &mut Sink, found: &mut Found, w: &mut Workloads, pod: Pod) -> Result<(), CollectError> {
    let at = pod_ref(&pod);
    let node = pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
    if let Some(node) = node.filter(|_| found.unplaced_restore_pods.contains(&at)) {
        found.involved_nodes.insert(node.to_string());
        let key = format!("{}/{}", at.namespace, at.name);
        found.summary.evidence.place_pod_volume_restores(&key, node);
    }
    w.add_pod(out, found, pod)
}

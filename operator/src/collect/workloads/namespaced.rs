//! What decides whether a restore's workloads run, namespace by namespace: the ResourceQuotas
//! and LimitRanges, the restored Deployments, StatefulSets, DaemonSets and Jobs, and the
//! backup's VolumeSnapshots. Each kind is one list across the workloads' namespaces where
//! that is allowed (see spread.rs).

use k8s_openapi::{
    NamespaceResourceScope,
    api::{
        apps::v1::{DaemonSet, Deployment, StatefulSet},
        batch::v1::Job,
        core::v1::{LimitRange, ResourceQuota},
    },
};
use kube::{
    Api, Resource, ResourceExt,
    api::ListParams,
    core::{ApiResource, DynamicObject, GroupVersionKind},
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use super::{
    MAX_APPLICATIONS, Workloads,
    spread::{Kind, Scope},
};
use crate::{
    collect::{CollectError, Found, Sink, Sources},
    findings::Evidence,
    kubernetes, velero,
};

/// An `Api` of a namespace, or of all of them.
fn api_in<K>(src: &Sources<'_>, ns: Option<&str>) -> Api<K>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
{
    match ns {
        Some(ns) => Api::namespaced(src.client.clone(), ns),
        None => Api::all(src.client.clone()),
    }
}

/// ResourceQuotas and LimitRanges of the restored namespaces: what admission held the
/// restored objects to.
pub(super) async fn quotas_and_limits(
    (src, out): (&Sources<'_>, &mut Sink),
    found: &mut Found,
    w: &mut Workloads,
) -> Result<(), CollectError> {
    let quotas = Kind {
        resource: "resourcequotas",
        what: "ResourceQuotas",
    };
    all_of::<ResourceQuota>(
        (src, out),
        found,
        w,
        (quotas, "resourcequota"),
        |e, path, seen| e.add_quota(path, seen),
    )
    .await?;
    let ranges = Kind {
        resource: "limitranges",
        what: "LimitRanges",
    };
    all_of::<LimitRange>(
        (src, out),
        found,
        w,
        (ranges, "limitrange"),
        |e, path, seen| e.add_limit_range(path, seen),
    )
    .await
}

/// Every object of a kind in the workloads' namespaces, written under `file_kind` and given
/// to the evidence by `record`.
async fn all_of<K>(
    (src, out): (&Sources<'_>, &mut Sink),
    found: &mut Found,
    w: &mut Workloads,
    (kind, file_kind): (Kind<'_>, &str),
    record: impl Fn(&mut Evidence, &str, &Value),
) -> Result<(), CollectError>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug,
{
    let namespaces = w.namespaces_to_read();
    let scope = (Scope::Namespaces(&namespaces), ListParams::default());
    let max = src.limits.max_list_items;
    let api = |ns: Option<&str>| api_in::<K>(src, ns);
    let warn = &mut |m| out.warn(m);
    let listed = w
        .list_in((src.limits, warn), kind, api, scope, max, |_| true)
        .await;
    warn_if_cut(src, out, kind, listed.truncated);
    for obj in listed.items {
        let (ns, name) = (obj.namespace().unwrap_or_default(), obj.name_any());
        let (path, seen) = w.add(out, found, &ns, file_kind, &name, &obj)?;
        record(&mut found.summary.evidence, &path, &seen);
    }
    Ok(())
}

fn warn_if_cut(src: &Sources<'_>, out: &mut Sink, kind: Kind<'_>, cut: bool) {
    if cut {
        out.warn(format!(
            "{}: more than {} objects; only the first were collected",
            kind.what, src.limits.max_list_items
        ));
    }
}

/// The Deployments, StatefulSets, DaemonSets and Jobs a Restore restored into the workloads'
/// namespaces (by Velero's restore-name label), at most [`MAX_APPLICATIONS`]: the damage by
/// application names those restored whole, and reads the Helm release they belong to.
pub(super) async fn restored_applications(
    (src, out): (&Sources<'_>, &mut Sink),
    found: &mut Found,
    w: &mut Workloads,
    restore: &str,
) -> Result<(), CollectError> {
    // Where pods were refused, so are these (one ClusterRole grants both): not asked again.
    let namespaces: Vec<String> = w
        .namespaces_to_read()
        .into_iter()
        .filter(|ns| !w.is_refused(ns, "pods"))
        .collect();
    let selector = velero::selector(velero::RESTORE_NAME_LABEL, restore);
    let at = (
        Scope::Namespaces(&namespaces),
        ListParams::default().labels(&selector),
    );
    let kinds = [
        ("Deployment", "deployments"),
        ("StatefulSet", "statefulsets"),
        ("DaemonSet", "daemonsets"),
        ("Job", "jobs"),
    ];
    restored_of::<Deployment>((src, out), found, w, &at, kinds[0]).await?;
    restored_of::<StatefulSet>((src, out), found, w, &at, kinds[1]).await?;
    restored_of::<DaemonSet>((src, out), found, w, &at, kinds[2]).await?;
    restored_of::<Job>((src, out), found, w, &at, kinds[3]).await
}

/// The restored objects of one kind (and its resource), as many as there is room for.
async fn restored_of<K>(
    (src, out): (&Sources<'_>, &mut Sink),
    found: &mut Found,
    w: &mut Workloads,
    (scope, lp): &(Scope<'_>, ListParams),
    (kind, resource): (&'static str, &'static str),
) -> Result<(), CollectError>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug,
{
    let room = MAX_APPLICATIONS.saturating_sub(w.applications);
    if room == 0 {
        w.applications_cut = true;
        return Ok(());
    }
    let what = format!("restored {resource}");
    let of_kind = Kind {
        resource,
        what: &what,
    };
    let api = |ns: Option<&str>| api_in::<K>(src, ns);
    let listed = w
        .list_in(
            (src.limits, &mut |m| out.warn(m)),
            of_kind,
            api,
            (*scope, lp.clone()),
            room,
            |_| true,
        )
        .await;
    w.applications_cut |= listed.truncated;
    for obj in listed.items {
        let (ns, name) = (obj.namespace().unwrap_or_default(), obj.name_any());
        let (_, seen) = w.add(out, found, &ns, &kind.to_lowercase(), &name, &obj)?;
        found.summary.evidence.add_application(kind, &seen);
        w.applications += 1;
    }
    Ok(())
}

/// The CSI VolumeSnapshot kind (snapshot.storage.k8s.io/v1).
fn volume_snapshot_resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "snapshot.storage.k8s.io",
        "v1",
        "VolumeSnapshot",
    ))
}

/// The backup's CSI VolumeSnapshots in the workloads' namespaces (Velero labels them
/// `velero.io/backup-name`); a cluster without the snapshot API has none, which is no warning.
pub(super) async fn volume_snapshots(
    (src, out): (&Sources<'_>, &mut Sink),
    found: &mut Found,
    w: &mut Workloads,
    backup: &str,
) -> Result<(), CollectError> {
    let resource = volume_snapshot_resource();
    let namespaces = w.namespaces_to_read();
    let selector = velero::selector(velero::BACKUP_NAME_LABEL, backup);
    let lp = ListParams::default().labels(&selector);
    let kind = Kind {
        resource: "volumesnapshots",
        what: "VolumeSnapshots",
    };
    let api = |ns: Option<&str>| match ns {
        Some(ns) => Api::namespaced_with(src.client.clone(), ns, &resource),
        None => Api::all_with(src.client.clone(), &resource),
    };
    let max = src.limits.max_list_items;
    let scope = (Scope::Namespaces(&namespaces), lp);
    let snapshots = w
        .list_in(
            (src.limits, &mut |m| out.warn(m)),
            kind,
            api,
            scope,
            max,
            |_| true,
        )
        .await;
    if snapshots.not_served {
        w.notes.push(
            "VolumeSnapshots: the cluster does not serve snapshot.storage.k8s.io/v1 (no CSI snapshot CRDs)"
                .to_string(),
        );
        return Ok(());
    }
    warn_if_cut(src, out, kind, snapshots.truncated);
    for snapshot in snapshots.items {
        let snapshot: DynamicObject = kubernetes::with_types(snapshot, &resource);
        let (ns, name) = (
            snapshot.namespace().unwrap_or_default(),
            snapshot.name_any(),
        );
        w.add(out, found, &ns, "volumesnapshot", &name, &snapshot)?;
    }
    Ok(())
}

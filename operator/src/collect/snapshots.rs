//! The CSI snapshots side of the target: the VolumeSnapshotContents of the backup (a Restore's:
//! of its backup), the VolumeSnapshotClasses and the CSIDrivers. A content's `status.error` is
//! what the CSI driver said; Velero quotes it only when it gives up waiting.
//!
//! Velero labels a content with `velero.io/backup-name` once the snapshot is bound to it
//! (pkg/backup/actions/csi/volumesnapshot_action.go); a snapshot that never bound leaves its
//! content unlabelled, and Velero deletes such snapshots, so those are not found here.

use k8s_openapi::api::storage::v1::CSIDriver;
use kube::{
    Api, ResourceExt,
    api::ListParams,
    core::{ApiResource, DynamicObject, GroupVersionKind},
};

use super::{CollectError, Found, Sink, Sources, sources::Unlisted};
use crate::{kubernetes, tar_gz::EntryPath, velero};

fn snapshot_resource(kind: &str) -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "snapshot.storage.k8s.io",
        "v1",
        kind,
    ))
}

const NOT_INSTALLED: &str =
    "the cluster does not serve snapshot.storage.k8s.io/v1 (no CSI snapshot CRDs)";

pub(super) async fn all(
    src: &Sources<'_>,
    out: &mut Sink,
    found: &mut Found,
) -> Result<(), CollectError> {
    let Some(backup) = found.summary.evidence.target_backup_name() else {
        return Ok(());
    };
    if !snapshot_contents(src, out, found, &backup).await?
        || !found.summary.evidence.uses_csi_snapshots()
    {
        return Ok(());
    }
    snapshot_classes(src, out).await?;
    csi_drivers(src, out).await
}

/// The backup's VolumeSnapshotContents; false when the cluster has no snapshot API.
async fn snapshot_contents(
    src: &Sources<'_>,
    out: &mut Sink,
    found: &mut Found,
    backup: &str,
) -> Result<bool, CollectError> {
    let resource = snapshot_resource("VolumeSnapshotContent");
    let api: Api<DynamicObject> = Api::all_with(src.client.clone(), &resource);
    let selector = velero::selector(velero::BACKUP_NAME_LABEL, backup);
    let items = match src
        .list_optional(
            out,
            &api,
            ListParams::default().labels(&selector),
            "VolumeSnapshotContents",
        )
        .await
    {
        Ok(items) => items,
        Err(Unlisted::NotServed) => {
            // Worth saying only to a reader of a target that met CSI snapshots.
            if found.summary.evidence.uses_csi_snapshots() {
                out.warn(format!("VolumeSnapshotContents: none, {NOT_INSTALLED}"));
            }
            return Ok(false);
        }
        Err(Unlisted::Failed) => return Ok(false),
    };
    for content in items {
        let content = kubernetes::with_types(content, &resource);
        let path = EntryPath::new(
            &["resources", "volumesnapshotcontent"],
            &content.name_any(),
            "yaml",
        );
        let seen = out.add_object_seen(&path, &content)?;
        found
            .summary
            .evidence
            .infra
            .add_snapshot_content(&path.to_string(), &seen);
    }
    Ok(true)
}

/// Every VolumeSnapshotClass (when the target used CSI snapshots): which is the default of each driver, and the one Velero picked
/// (label `velero.io/csi-volumesnapshot-class`) are what a reader checks. Clusters have few.
async fn snapshot_classes(src: &Sources<'_>, out: &mut Sink) -> Result<(), CollectError> {
    let resource = snapshot_resource("VolumeSnapshotClass");
    let api: Api<DynamicObject> = Api::all_with(src.client.clone(), &resource);
    let Ok(items) = src
        .list_optional(out, &api, ListParams::default(), "VolumeSnapshotClasses")
        .await
    else {
        return Ok(());
    };
    for class in items {
        let class = kubernetes::with_types(class, &resource);
        let path = EntryPath::new(
            &["resources", "volumesnapshotclass"],
            &class.name_any(),
            "yaml",
        );
        out.add_object(&path, &class)?;
    }
    Ok(())
}

/// Every CSIDriver (when the target used CSI snapshots): whether the driver of a snapshot is installed at all.
async fn csi_drivers(src: &Sources<'_>, out: &mut Sink) -> Result<(), CollectError> {
    let api: Api<CSIDriver> = Api::all(src.client.clone());
    let Some(items) = src
        .list_all(out, &api, ListParams::default(), "CSIDrivers")
        .await
    else {
        return Ok(());
    };
    for driver in items {
        let path = EntryPath::new(&["resources", "csidriver"], &driver.name_any(), "yaml");
        out.add_object(&path, &driver)?;
    }
    Ok(())
}

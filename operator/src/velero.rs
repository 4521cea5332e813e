//! What the operator knows about Velero: its resource types, the labels that link objects to a
//! Backup or Restore, and where Velero keeps a target's files in the object store.
//! Pure: no I/O. See shared/velero-facts.md for the sources of these facts.

use kube::core::{ApiResource, DynamicObject, GroupVersionKind};

pub(crate) const GROUP: &str = "velero.io";

pub fn resource(kind: &str) -> ApiResource {
    let version = match kind {
        "DataUpload" | "DataDownload" => "v2alpha1",
        _ => "v1",
    };
    ApiResource::from_gvk(&GroupVersionKind::gvk(GROUP, version, kind))
}

pub(crate) const BACKUP_NAME_LABEL: &str = "velero.io/backup-name";
pub(crate) const BACKUP_UID_LABEL: &str = "velero.io/backup-uid";
pub(crate) const RESTORE_NAME_LABEL: &str = "velero.io/restore-name";
pub(crate) const RESTORE_UID_LABEL: &str = "velero.io/restore-uid";
/// Longest label value (a DNS-1035 label, as Velero's `validation.DNS1035LabelMaxLength`).
const MAX_LABEL_VALUE_LEN: usize = 63;

/// The label selector `<label>=<label_value(name)>`: Velero's objects for `name`.
pub(crate) fn selector(label: &str, name: &str) -> String {
    format!("{label}={}", label_value(name))
}

/// A name as Velero writes it into a label value (`label.GetValidName` in pkg/label/label.go):
/// unchanged up to 63 bytes; a longer one is cut to 57 bytes and ended with the first 6 hex
/// digits of the sha256 of the whole name. Restored objects carry
/// `velero.io/restore-name=<label_value(restore)>`, CSI VolumeSnapshots
/// `velero.io/backup-name=<label_value(backup)>`.
pub(crate) fn label_value(name: &str) -> String {
    use sha2::{Digest, Sha256};
    if name.len() <= MAX_LABEL_VALUE_LEN {
        return name.to_string();
    }
    let digest = hex::encode(Sha256::digest(name.as_bytes()));
    let kept = MAX_LABEL_VALUE_LEN - 6;
    // Go slices bytes; Kubernetes names are ASCII, anything else is cut as bytes too.
    let head = String::from_utf8_lossy(&name.as_bytes()[..kept]);
    format!("{head}{}", &digest[..6])
}

/// Pods of the Velero server Deployment.
pub(crate) const SERVER_POD_SELECTOR: &str = "deploy=velero";
/// Pods of the node-agent DaemonSets, by the label every Velero version gives them: `name`,
/// the DaemonSet's own selector (`node-agent`, and `node-agent-windows` where Velero 1.18 runs
/// one for Windows nodes). Velero 1.18 also labels both `role=node-agent` and finds them by
/// that; Velero 1.14's pods have no `role` label (pkg/nodeagent finds them by `name`), so
/// `role` alone would see no node-agent at all there.
pub const NODE_AGENT_POD_SELECTOR: &str = "name in (node-agent,node-agent-windows)";
/// Labels of data-path pods, each naming the operation object the pod serves.
pub(crate) const DATA_PATH_POD_LABELS: [&str; 4] = [
    "velero.io/pod-volume-backup",
    "velero.io/pod-volume-restore",
    "velero.io/data-upload",
    "velero.io/data-download",
];

/// The kind of operation object the data-path pod label `label` names.
pub(crate) fn data_path_label_kind(label: &str) -> Option<&'static str> {
    match label {
        "velero.io/pod-volume-backup" => Some("PodVolumeBackup"),
        "velero.io/pod-volume-restore" => Some("PodVolumeRestore"),
        "velero.io/data-upload" => Some("DataUpload"),
        "velero.io/data-download" => Some("DataDownload"),
        _ => None,
    }
}

/// BackupRepositories: the storage location they live in (pkg/repository/backup_repo_op.go).
pub(crate) const STORAGE_LOCATION_LABEL: &str = "velero.io/storage-location";
/// Repository-maintenance Jobs (and their pods): the repository they maintain
/// (pkg/repository/maintenance `RepositoryNameLabel`).
pub(crate) const REPOSITORY_NAME_LABEL: &str = "velero.io/repo-name";

/// The top-level folders Velero accepts under a BSL prefix; anything else makes the BSL
/// Unavailable, so everything the operator writes sits under `plugins/` (tests check it).
#[cfg(test)]
pub(crate) const ALLOWED_TOP_LEVEL_DIRS: [&str; 6] = [
    "backups", "restores", "restic", "metadata", "plugins", "kopia",
];

/// Which Velero operation a bundle is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    Backup(String),
    Restore(String),
}

impl Target {
    pub fn kind(&self) -> &'static str {
        match self {
            Target::Backup(_) => "Backup",
            Target::Restore(_) => "Restore",
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Target::Backup(n) | Target::Restore(n) => n,
        }
    }

    /// `restore/<name>` or `backup/<name>`.
    pub fn display(&self) -> String {
        format!("{}/{}", self.kind().to_lowercase(), self.name())
    }

    /// The label selector that finds the target's operation objects: its uid label. Velero
    /// sets the name label too, but cuts and hashes names over 63 characters there, and finds
    /// its own operations by the uid (a second list by name only read each object again).
    pub fn operation_selector(&self, uid: &str) -> String {
        let uid_label = match self {
            Target::Backup(_) => BACKUP_UID_LABEL,
            Target::Restore(_) => RESTORE_UID_LABEL,
        };
        format!("{uid_label}={uid}")
    }

    /// Kinds of the operation objects a target owns.
    pub fn operation_kinds(&self) -> [&'static str; 2] {
        match self {
            Target::Backup(_) => ["PodVolumeBackup", "DataUpload"],
            Target::Restore(_) => ["PodVolumeRestore", "DataDownload"],
        }
    }
}

/// A file Velero writes to the object store for a target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StoredArtifact {
    /// Key relative to the BSL prefix.
    pub key: String,
    /// Where it goes in the bundle (decompressed).
    pub bundle_path: String,
    pub gzipped: bool,
    /// Velero writes it only when there is something to record (CSI snapshots, item
    /// operations), so its absence is normal and not a warning.
    pub optional: bool,
}

/// Velero's own files for a target, relative to the BSL prefix.
pub(crate) fn stored_artifacts(target: &Target) -> Vec<StoredArtifact> {
    let n = target.name();
    let gz = |key: String, path: String| StoredArtifact {
        optional: is_optional(&path),
        key,
        bundle_path: path,
        gzipped: true,
    };
    match target {
        Target::Backup(_) => {
            let d = format!("backups/{n}");
            let mut v = vec![
                StoredArtifact {
                    key: format!("{d}/velero-backup.json"),
                    bundle_path: "object-store/velero-backup.json".into(),
                    gzipped: false,
                    optional: false,
                },
                gz(format!("{d}/{n}-logs.gz"), "object-store/backup.log".into()),
            ];
            for suffix in [
                "results",
                "podvolumebackups.json",
                "volumesnapshots.json",
                "itemoperations.json",
                "resource-list.json",
                "volumeinfo.json",
                "csi-volumesnapshots.json",
                "csi-volumesnapshotcontents.json",
                "csi-volumesnapshotclasses.json",
            ] {
                let file = if suffix == "results" {
                    "results.json".to_string()
                } else {
                    suffix.to_string()
                };
                v.push(gz(
                    format!("{d}/{n}-{suffix}.gz"),
                    format!("object-store/{file}"),
                ));
            }
            v
        }
        Target::Restore(_) => {
            let d = format!("restores/{n}");
            vec![
                gz(
                    format!("{d}/restore-{n}-logs.gz"),
                    "object-store/restore.log".into(),
                ),
                gz(
                    format!("{d}/restore-{n}-results.gz"),
                    "object-store/results.json".into(),
                ),
                gz(
                    format!("{d}/restore-{n}-resource-list.json.gz"),
                    "object-store/resource-list.json".into(),
                ),
                gz(
                    format!("{d}/restore-{n}-itemoperations.json.gz"),
                    "object-store/itemoperations.json".into(),
                ),
                gz(
                    format!("{d}/{n}-volumeinfo.json.gz"),
                    "object-store/volumeinfo.json".into(),
                ),
            ]
        }
    }
}

/// Where a Restore's backup's results file goes in the bundle.
pub(crate) const BACKUP_RESULTS_PATH: &str = "object-store/backup-results.json";

/// A Restore's backup's results file (in the same location as the restore's files): what the
/// backup itself missed. Optional: a restore's bundle does not need it.
pub(crate) fn backup_results_artifact(backup: &str) -> StoredArtifact {
    StoredArtifact {
        key: format!("backups/{backup}/{backup}-results.gz"),
        bundle_path: BACKUP_RESULTS_PATH.into(),
        gzipped: true,
        optional: true,
    }
}

fn is_optional(bundle_path: &str) -> bool {
    let file = bundle_path.rsplit('/').next().unwrap_or_default();
    file.starts_with("csi-")
        || matches!(
            file,
            "volumesnapshots.json" | "itemoperations.json" | "volumeinfo.json"
        )
}

/// Joins a BSL prefix and a relative key the way Velero does (no leading or doubled slash).
pub(crate) fn prefixed_key(prefix: Option<&str>, key: &str) -> String {
    match prefix
        .map(|p| p.trim_matches('/'))
        .filter(|p| !p.is_empty())
    {
        Some(p) => format!("{p}/{key}"),
        None => key.to_string(),
    }
}

/// The nodes a target's operation objects ran on: PodVolumeBackup `spec.node`, the others'
/// `status.node`.
pub(crate) fn operation_node(obj: &DynamicObject) -> Option<String> {
    let kind = obj.types.as_ref().map(|t| t.kind.as_str()).unwrap_or("");
    let node = if kind == "PodVolumeBackup" {
        obj.data["spec"]["node"].as_str()
    } else {
        obj.data["status"]["node"]
            .as_str()
            .or_else(|| obj.data["status"]["acceptedByNode"].as_str())
    };
    node.filter(|n| !n.is_empty()).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_artifacts_follow_velero_naming() {
        let keys: Vec<String> = stored_artifacts(&Target::Restore("r1".into()))
            .into_iter()
            .map(|a| a.key)
            .collect();
        assert_eq!(
            keys,
            [
                "restores/r1/restore-r1-logs.gz",
                "restores/r1/restore-r1-results.gz",
                "restores/r1/restore-r1-resource-list.json.gz",
                "restores/r1/restore-r1-itemoperations.json.gz",
                "restores/r1/r1-volumeinfo.json.gz",
            ]
        );
    }

    #[test]
    fn backup_artifacts_include_log_and_metadata() {
        let arts = stored_artifacts(&Target::Backup("b1".into()));
        assert!(
            arts.iter()
                .any(|a| a.key == "backups/b1/b1-logs.gz" && a.bundle_path.ends_with("backup.log"))
        );
        assert!(
            arts.iter()
                .any(|a| a.key == "backups/b1/velero-backup.json" && !a.gzipped)
        );
        assert!(arts.iter().all(|a| a.key.starts_with("backups/b1/")));
    }

    #[test]
    fn prefixes_join_without_stray_slashes() {
        assert_eq!(prefixed_key(Some("/a/b/"), "plugins/x"), "a/b/plugins/x");
        assert_eq!(prefixed_key(Some(""), "plugins/x"), "plugins/x");
        assert_eq!(prefixed_key(None, "plugins/x"), "plugins/x");
    }

    #[test]
    fn label_values_are_cut_and_hashed_as_velero_does() {
        // Velero's own case (pkg/label/label_test.go, TestGetValidLabelName).
        assert_eq!(
            label_value("this_is_a_very_long_label_value_that_will_be_rejected_by_Kubernetes"),
            "this_is_a_very_long_label_value_that_will_be_rejected_by_8d0722"
        );
        assert_eq!(label_value("short label value"), "short label value");
        let exactly = "r".repeat(63);
        assert_eq!(label_value(&exactly), exactly);
        let long = label_value(&"r".repeat(64));
        assert_eq!(long.len(), 63);
        assert!(long.starts_with(&"r".repeat(57)));
        let long = "a".repeat(70);
        // 57 characters, then the start of sha256("a" x 70).
        assert_eq!(label_value(&long), format!("{}6bd5e5", "a".repeat(57)));
    }

    #[test]
    fn operations_are_found_by_the_uid_label_whatever_the_name() {
        let long = Target::Restore("r".repeat(70));
        assert_eq!(long.operation_selector("u-1"), "velero.io/restore-uid=u-1");
        let short = Target::Backup("b".into());
        assert_eq!(short.operation_selector("u-2"), "velero.io/backup-uid=u-2");
    }

    #[test]
    fn operation_node_reads_the_right_field_per_kind() {
        let pvb: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "velero.io/v1", "kind": "PodVolumeBackup",
            "metadata": {"name": "p"}, "spec": {"node": "node-1"}
        }))
        .unwrap();
        let pvr: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "velero.io/v1", "kind": "PodVolumeRestore",
            "metadata": {"name": "p"}, "status": {"node": "node-2"}
        }))
        .unwrap();
        assert_eq!(operation_node(&pvb).as_deref(), Some("node-1"));
        assert_eq!(operation_node(&pvr).as_deref(), Some("node-2"));
    }
}

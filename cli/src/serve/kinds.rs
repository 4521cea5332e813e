//! The kinds `serve` knows: Kubernetes' own (a table here) and Velero's (velero_kinds.json,
//! generated from Velero's CRDs by cli/scripts/velero-kinds.py, with their printer columns).
//! Every known kind is discovered even when the bundle holds none of it, so `kubectl get`
//! answers an empty list (with a warning, see coverage.rs) rather than "no such resource".

use serde::Deserialize;

/// A printer column of a CRD (additionalPrinterColumns).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub json_path: String,
    #[serde(default)]
    pub priority: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Kind {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub namespaced: bool,
    #[serde(default)]
    pub short_names: Vec<String>,
    /// Set for Velero's kinds only; Kubernetes' kinds have their own tables (tables.rs).
    #[serde(default)]
    pub columns: Option<Vec<Column>>,
}

impl Kind {
    pub(crate) fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub(crate) fn singular(&self) -> String {
        self.kind.to_lowercase()
    }
}

/// (group, version, kind, plural, namespaced, short names).
type KubeKind = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    bool,
    &'static [&'static str],
);

const KUBERNETES: &[KubeKind] = &[
    ("", "v1", "Pod", "pods", true, &["po"]),
    (
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        true,
        &["pvc"],
    ),
    (
        "",
        "v1",
        "PersistentVolume",
        "persistentvolumes",
        false,
        &["pv"],
    ),
    ("", "v1", "Event", "events", true, &["ev"]),
    ("", "v1", "Namespace", "namespaces", false, &["ns"]),
    ("", "v1", "Node", "nodes", false, &["no"]),
    ("", "v1", "ConfigMap", "configmaps", true, &["cm"]),
    ("", "v1", "Service", "services", true, &["svc"]),
    ("", "v1", "ServiceAccount", "serviceaccounts", true, &["sa"]),
    (
        "",
        "v1",
        "ResourceQuota",
        "resourcequotas",
        true,
        &["quota"],
    ),
    ("", "v1", "LimitRange", "limitranges", true, &["limits"]),
    ("apps", "v1", "Deployment", "deployments", true, &["deploy"]),
    ("apps", "v1", "DaemonSet", "daemonsets", true, &["ds"]),
    ("apps", "v1", "StatefulSet", "statefulsets", true, &["sts"]),
    ("apps", "v1", "ReplicaSet", "replicasets", true, &["rs"]),
    ("batch", "v1", "Job", "jobs", true, &[]),
    ("batch", "v1", "CronJob", "cronjobs", true, &["cj"]),
    (
        "storage.k8s.io",
        "v1",
        "StorageClass",
        "storageclasses",
        false,
        &["sc"],
    ),
    (
        "storage.k8s.io",
        "v1",
        "CSIDriver",
        "csidrivers",
        false,
        &[],
    ),
    ("storage.k8s.io", "v1", "CSINode", "csinodes", false, &[]),
    (
        "storage.k8s.io",
        "v1",
        "VolumeAttachment",
        "volumeattachments",
        false,
        &[],
    ),
    (
        "snapshot.storage.k8s.io",
        "v1",
        "VolumeSnapshot",
        "volumesnapshots",
        true,
        &["vs"],
    ),
    (
        "snapshot.storage.k8s.io",
        "v1",
        "VolumeSnapshotContent",
        "volumesnapshotcontents",
        false,
        &["vsc", "vscs"],
    ),
    (
        "snapshot.storage.k8s.io",
        "v1",
        "VolumeSnapshotClass",
        "volumesnapshotclasses",
        false,
        &["vsclass", "vsclasses"],
    ),
];

/// Kubernetes' kinds, then Velero's.
pub(crate) fn known() -> Vec<Kind> {
    let mut kinds: Vec<Kind> = KUBERNETES
        .iter()
        .map(|&(group, version, kind, plural, namespaced, short)| Kind {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            plural: plural.into(),
            namespaced,
            short_names: short.iter().map(|s| s.to_string()).collect(),
            columns: None,
        })
        .collect();
    let velero: Vec<Kind> = serde_json::from_str(include_str!("velero_kinds.json"))
        .expect("velero_kinds.json is generated, valid JSON");
    kinds.extend(velero.into_iter().map(|mut k| {
        k.columns.get_or_insert_with(Vec::new);
        k
    }));
    kinds
}

/// A kind found in the bundle that no table above names: its plural guessed as the API
/// server's convention guesses it, its scope from the object.
pub(crate) fn guessed(api_version: &str, kind: &str, namespaced: bool) -> Kind {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let lower = kind.to_lowercase();
    let plural = if lower.ends_with('s') || lower.ends_with('x') {
        format!("{lower}es")
    } else if let Some(stem) = lower.strip_suffix('y') {
        format!("{stem}ies")
    } else {
        format!("{lower}s")
    };
    Kind {
        group: group.into(),
        version: version.into(),
        kind: kind.into(),
        plural,
        namespaced,
        short_names: Vec::new(),
        columns: Some(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn velero_kinds_carry_their_crd_columns_and_both_versions() {
        let kinds = known();
        let pvr = kinds
            .iter()
            .find(|k| k.plural == "podvolumerestores")
            .unwrap();
        assert_eq!(pvr.api_version(), "velero.io/v1");
        let columns = pvr.columns.as_ref().unwrap();
        assert!(columns.iter().any(|c| c.json_path == ".status.phase"));
        assert!(
            kinds
                .iter()
                .any(|k| k.api_version() == "velero.io/v2alpha1")
        );
        let pod = kinds.iter().find(|k| k.plural == "pods").unwrap();
        assert!(pod.columns.is_none() && pod.namespaced);
    }

    #[test]
    fn an_unknown_kind_gets_the_conventional_plural() {
        assert_eq!(guessed("x.io/v1", "Policy", true).plural, "policies");
        assert_eq!(guessed("x.io/v1", "Class", false).plural, "classes");
        assert_eq!(guessed("v1", "Widget", true).group, "");
    }
}

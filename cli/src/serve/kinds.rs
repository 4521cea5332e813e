//! The kinds `serve` knows: Kubernetes' own (a table here) and Velero's (velero_kinds*.json,
//! generated from Velero's CRDs by cli/scripts/velero-kinds.py, with their printer columns),
//! of the Velero release the bundle's server runs: its CRDs' columns differ between releases.
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

/// Velero's kinds by the release whose CRDs they were generated from, oldest first. A bundle
/// is served with the newest release not newer than its server's.
const VELERO_RELEASES: &[((u64, u64), &str)] = &[
    ((1, 14), include_str!("velero_kinds_v1.14.json")),
    ((1, 18), include_str!("velero_kinds.json")),
];

/// The release (major, minor) of a Velero version such as `v1.14.0` or `1.18.3-rc.1`.
fn release_of(version: &str) -> Option<(u64, u64)> {
    let mut parts = version
        .trim()
        .trim_start_matches('v')
        .split(['.', '-', '+']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// The release whose kinds serve server version `velero`: the newest not newer than it; the
/// oldest for an older one; the newest when the version is unknown.
fn release_for(velero: Option<&str>) -> &'static ((u64, u64), &'static str) {
    let newest = &VELERO_RELEASES[VELERO_RELEASES.len() - 1];
    let Some(release) = velero.and_then(release_of) else {
        return newest;
    };
    VELERO_RELEASES
        .iter()
        .rev()
        .find(|(r, _)| *r <= release)
        .unwrap_or(&VELERO_RELEASES[0])
}

/// What a person reading `kubectl get` of Velero's kinds should know when the columns are not
/// those of the bundle's own Velero release; None when they are.
pub(crate) fn columns_note(velero: Option<&str>) -> Option<String> {
    let (major, minor) = release_for(velero).0;
    let Some(wanted) = velero.and_then(release_of) else {
        return Some(format!(
            "the bundle names no Velero server version: Velero's kinds are printed with Velero {major}.{minor}'s columns"
        ));
    };
    ((major, minor) != wanted).then(|| {
        format!(
            "Velero's kinds are printed with Velero {major}.{minor}'s columns; the bundle's server ran {}, whose may differ",
            velero
                .unwrap_or_default()
                .chars()
                .take(64)
                .collect::<String>()
                .escape_debug()
        )
    })
}

/// Kubernetes' kinds, then Velero's newest release's.
#[cfg(test)]
pub(crate) fn known() -> Vec<Kind> {
    known_for(None)
}

/// Kubernetes' kinds, then Velero's as the release of server version `velero` defines them.
pub(crate) fn known_for(velero: Option<&str>) -> Vec<Kind> {
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
    let velero: Vec<Kind> = serde_json::from_str(release_for(velero).1)
        .expect("velero_kinds*.json are generated, valid JSON");
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

    fn velero_columns(velero: Option<&str>, plural: &str) -> Vec<String> {
        let kinds = known_for(velero);
        let kind = kinds.iter().find(|k| k.plural == plural).unwrap();
        kind.columns
            .iter()
            .flatten()
            .map(|c| c.name.clone())
            .collect()
    }

    #[test]
    fn a_bundle_gets_the_columns_of_its_servers_velero_release() {
        // 1.14's PodVolumeRestore shows its pod; 1.18's its node instead.
        let old = velero_columns(Some("v1.14.0"), "podvolumerestores");
        let new = velero_columns(Some("v1.18.3"), "podvolumerestores");
        let has = |columns: &[String], name: &str| columns.iter().any(|c| c == name);
        assert!(has(&old, "Pod") && !has(&old, "Node"), "{old:?}");
        assert!(has(&new, "Node") && !has(&new, "Pod"), "{new:?}");
        // Between releases and after the newest: the newest not newer.
        assert_eq!(velero_columns(Some("v1.16.2"), "podvolumerestores"), old);
        assert_eq!(velero_columns(Some("v1.21.0"), "podvolumerestores"), new);
        // Older than the oldest: the oldest; unknown or not a version: the newest.
        assert_eq!(velero_columns(Some("v1.9.1"), "podvolumerestores"), old);
        for unknown in [None, Some(""), Some("main"), Some("v1"), Some("\u{0}../x")] {
            assert_eq!(
                velero_columns(unknown, "podvolumerestores"),
                new,
                "{unknown:?}"
            );
        }
    }

    #[test]
    fn columns_of_another_release_are_said_and_their_own_are_not() {
        assert_eq!(columns_note(Some("v1.14.0")), None);
        assert_eq!(columns_note(Some("v1.18.3")), None);
        let between = columns_note(Some("v1.16.2")).unwrap();
        assert!(between.contains("Velero 1.14's columns") && between.contains("v1.16.2"));
        let newer = columns_note(Some("v1.21.0")).unwrap();
        assert!(newer.contains("Velero 1.18's columns"), "{newer}");
        for unknown in [None, Some("main")] {
            let note = columns_note(unknown).unwrap();
            assert!(note.contains("no Velero server version"), "{note}");
        }
        // What the bundle says is shown escaped and cut.
        let hostile = format!("v1.16.0\u{1b}[2J{}", "x".repeat(200));
        let note = columns_note(Some(&hostile)).unwrap();
        assert!(!note.contains('\u{1b}') && note.len() < 250, "{note}");
    }

    #[test]
    fn velero_versions_are_read_by_release() {
        assert_eq!(release_of("v1.14.0"), Some((1, 14)));
        assert_eq!(release_of("1.18.3-rc.1"), Some((1, 18)));
        assert_eq!(release_of(" v1.15 "), Some((1, 15)));
        assert_eq!(release_of("v1"), None);
        assert_eq!(release_of("latest"), None);
        assert_eq!(release_of("v1.x.0"), None);
    }

    #[test]
    fn an_unknown_kind_gets_the_conventional_plural() {
        assert_eq!(guessed("x.io/v1", "Policy", true).plural, "policies");
        assert_eq!(guessed("x.io/v1", "Class", false).plural, "classes");
        assert_eq!(guessed("v1", "Widget", true).group, "");
    }
}

//! Velero's CLI reads its files (logs, results, resource lists) through DownloadRequests: it
//! creates one, polls it until status.downloadURL is set, GETs that URL and gunzips the answer
//! (every kind but BackupContents). Here a created DownloadRequest is answered at once with a
//! URL on this same loopback server, which serves the bundle's copy of the file, gzipped again
//! as it is in the object store (the bundle holds it inflated).

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// DownloadRequests kept at most: a client creating them in a loop cannot grow memory.
const MAX_KEPT: usize = 256;

/// What the bundle is of: its manifest's target, and a Restore's backup.
#[derive(Debug, Clone, Default)]
pub(crate) struct BundleTarget {
    pub kind: String,
    pub name: String,
    pub backup_of_restore: Option<String>,
}

/// The bundle file (under object-store/) holding Velero's file for a DownloadRequest target,
/// if this bundle has it.
pub(crate) fn file_for(target: &BundleTarget, kind: &str, name: &str) -> Option<&'static str> {
    let own = name == target.name;
    let file = match (target.kind.as_str(), kind) {
        ("Restore", "RestoreLog") if own => "restore.log",
        ("Restore", "RestoreResults") if own => "results.json",
        ("Restore", "RestoreResourceList") if own => "resource-list.json",
        ("Restore", "RestoreItemOperations") if own => "itemoperations.json",
        ("Restore", "RestoreVolumeInfo") if own => "volumeinfo.json",
        ("Restore", "BackupResults") if target.backup_of_restore.as_deref() == Some(name) => {
            "backup-results.json"
        }
        ("Backup", "BackupLog") if own => "backup.log",
        ("Backup", "BackupResults") if own => "results.json",
        ("Backup", "BackupResourceList") if own => "resource-list.json",
        ("Backup", "BackupItemOperations") if own => "itemoperations.json",
        ("Backup", "BackupVolumeInfos") if own => "volumeinfo.json",
        ("Backup", "BackupVolumeSnapshots") if own => "volumesnapshots.json",
        ("Backup", "CSIBackupVolumeSnapshots") if own => "csi-volumesnapshots.json",
        ("Backup", "CSIBackupVolumeSnapshotContents") if own => "csi-volumesnapshotcontents.json",
        _ => return None,
    };
    Some(file)
}

/// The DownloadRequests created since `serve` started.
#[derive(Debug, Default)]
pub(crate) struct DownloadRequests {
    requests: Vec<Value>,
}

impl DownloadRequests {
    /// Records `body` (a DownloadRequest) as created in `namespace`, already Processed with the
    /// URL `url_of` gives its name.
    pub(crate) fn create(
        &mut self,
        namespace: &str,
        mut body: Value,
        url_of: impl Fn(&str) -> String,
    ) -> Result<Value, String> {
        let name = match (
            body["metadata"]["name"].as_str(),
            body["metadata"]["generateName"].as_str(),
        ) {
            (Some(n), _) => n.to_string(),
            (None, Some(prefix)) => format!("{prefix}{}", self.requests.len()),
            _ => return Err("a DownloadRequest needs metadata.name".into()),
        };
        if !valid_name(&name) || body["spec"]["target"]["kind"].as_str().is_none() {
            return Err(format!("invalid DownloadRequest {name:?}"));
        }
        if self.get(namespace, &name).is_some() {
            return Err(format!(
                "downloadrequests.velero.io {name:?} already exists"
            ));
        }
        let now = jiff::Timestamp::now();
        let expires = now + jiff::SignedDuration::from_mins(10);
        body["apiVersion"] = "velero.io/v1".into();
        body["kind"] = "DownloadRequest".into();
        body["metadata"]["name"] = name.clone().into();
        body["metadata"]["namespace"] = namespace.into();
        body["metadata"]["creationTimestamp"] =
            now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string().into();
        body["metadata"]["uid"] = format!("served-{}", self.requests.len()).into();
        body["status"] = json!({"phase": "Processed",
            "downloadURL": url_of(&name),
            "expiration": expires.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()});
        if self.requests.len() >= MAX_KEPT {
            self.requests.remove(0);
        }
        self.requests.push(body.clone());
        Ok(body)
    }

    pub(crate) fn get(&self, namespace: &str, name: &str) -> Option<&Value> {
        self.requests
            .iter()
            .find(|r| r["metadata"]["namespace"] == namespace && r["metadata"]["name"] == name)
    }

    pub(crate) fn all(&self) -> &[Value] {
        &self.requests
    }

    pub(crate) fn delete(&mut self, namespace: &str, name: &str) -> Option<Value> {
        let i = self.requests.iter().position(|r| {
            r["metadata"]["namespace"] == namespace && r["metadata"]["name"] == name
        })?;
        Some(self.requests.remove(i))
    }
}

/// A name the API server would take (DNS subdomain): it becomes part of a URL path here.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && !name.starts_with('.')
}

/// The bundle file a DownloadRequest's URL serves: `root/object-store/<file>`.
pub(crate) fn path_of(root: &Path, target: &BundleTarget, request: &Value) -> Option<PathBuf> {
    let t = &request["spec"]["target"];
    let file = file_for(target, t["kind"].as_str()?, t["name"].as_str()?)?;
    let path = root.join("object-store").join(file);
    path.is_file().then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn restore_bundle() -> BundleTarget {
        BundleTarget {
            kind: "Restore".into(),
            name: "r1".into(),
            backup_of_restore: Some("b1".into()),
        }
    }

    #[test]
    fn each_target_kind_maps_to_its_bundled_file_only_for_this_bundles_target() {
        let r = restore_bundle();
        assert_eq!(file_for(&r, "RestoreLog", "r1"), Some("restore.log"));
        assert_eq!(file_for(&r, "RestoreResults", "r1"), Some("results.json"));
        assert_eq!(
            file_for(&r, "BackupResults", "b1"),
            Some("backup-results.json")
        );
        assert_eq!(file_for(&r, "RestoreLog", "r2"), None);
        assert_eq!(file_for(&r, "BackupLog", "b1"), None);
        let b = BundleTarget {
            kind: "Backup".into(),
            name: "b1".into(),
            backup_of_restore: None,
        };
        assert_eq!(file_for(&b, "BackupLog", "b1"), Some("backup.log"));
        assert_eq!(file_for(&b, "BackupContents", "b1"), None);
    }

    #[test]
    fn a_created_request_is_processed_at_once_and_can_be_deleted() {
        let mut d = DownloadRequests::default();
        let body = json!({"metadata": {"name": "r1-uuid"},
            "spec": {"target": {"kind": "RestoreLog", "name": "r1"}}});
        let url = |n: &str| format!("http://127.0.0.1:9/downloads/velero/{n}?key=k");
        let made = d.create("velero", body.clone(), url).unwrap();
        assert_eq!(made["status"]["phase"], "Processed");
        assert_eq!(
            made["status"]["downloadURL"],
            "http://127.0.0.1:9/downloads/velero/r1-uuid?key=k"
        );
        assert!(
            d.create("velero", body, url)
                .unwrap_err()
                .contains("already exists")
        );
        let bad = json!({"metadata": {"name": "../x"}, "spec": {"target": {"kind": "RestoreLog"}}});
        assert!(d.create("velero", bad, url).is_err());
        assert!(d.delete("velero", "r1-uuid").is_some());
        assert!(d.get("velero", "r1-uuid").is_none());
    }
}

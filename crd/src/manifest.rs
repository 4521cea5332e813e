//! manifest.json, the bundle's index for tools: the operator writes it beside summary.md, and
//! the plugin (`kubectl velero-debug serve`) and other tools read it back. The operator writes
//! [`Manifest`] with its own details (timings, requests, findings, damage); a reader decodes
//! `Manifest` (the details skipped), tolerating fields it does not know (a newer operator's)
//! and missing ones (an older operator's, or a hand-made bundle's): each has a default.

use serde::{Deserialize, Serialize};

/// The version of manifest.json's layout; a change that breaks readers raises it.
pub const FORMAT_VERSION: u32 = 1;

/// manifest.json. `D` holds what only the writer knows the types of; readers leave it
/// [`Skipped`].
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Manifest<D = Skipped> {
    pub format_version: u32,
    pub operator_version: String,
    pub target: ManifestTarget,
    /// RFC 3339.
    pub created_at: String,
    /// The folder every file is in: the bundle's name, sanitized.
    pub root_folder: String,
    /// By their names in the archive below `root_folder`.
    pub files: Vec<ArchivedFile>,
    pub warnings: Vec<String>,
    #[serde(flatten)]
    pub details: D,
    /// What could not be collected, and why.
    pub not_collected: Vec<NotCollected>,
}

/// The details a reader does not decode.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Skipped {}

/// The Backup or Restore the bundle is of.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct ManifestTarget {
    /// `Backup` or `Restore`.
    pub kind: String,
    pub name: String,
    pub uid: String,
    /// Its phase when the bundle was collected.
    pub phase: String,
}

/// One file in the bundle.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct ArchivedFile {
    /// Its name in the archive below the root folder.
    pub path: String,
    pub size: u64,
}

/// A kind the bundle could not collect, in one namespace or (`namespace` absent) in all, and
/// why: `kubectl velero-debug serve` answers a list of it with this, not an empty list.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct NotCollected {
    /// The resource's plural (`pods`).
    pub resource: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase")]
    struct Details {
        api_requests: u64,
    }

    #[test]
    fn the_writers_details_sit_among_the_shared_fields_and_a_reader_skips_them() {
        let written = Manifest {
            format_version: FORMAT_VERSION,
            target: ManifestTarget {
                kind: "Restore".into(),
                name: "r1".into(),
                ..Default::default()
            },
            files: vec![ArchivedFile {
                path: "summary.md".into(),
                size: 3,
            }],
            details: Details { api_requests: 7 },
            not_collected: vec![NotCollected {
                resource: "pods".into(),
                namespace: None,
                reason: "forbidden".into(),
            }],
            ..Default::default()
        };
        let json = serde_json::to_value(&written).unwrap();
        assert_eq!(json["apiRequests"], 7);
        assert_eq!(json["target"]["kind"], "Restore");
        assert_eq!(json["notCollected"][0]["resource"], "pods");
        assert!(json["notCollected"][0].get("namespace").is_none());
        // The order tools see: the shared fields, the details, then what was not collected.
        let text = serde_json::to_string(&written).unwrap();
        let at = |k: &str| text.find(&format!("\"{k}\":")).unwrap();
        assert!(at("warnings") < at("apiRequests") && at("apiRequests") < at("notCollected"));
        let read: Manifest = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(read.target, written.target);
        assert_eq!(read.not_collected, written.not_collected);
        let read_again: Manifest<Details> = serde_json::from_value(json).unwrap();
        assert_eq!(read_again, written);
    }

    #[test]
    fn an_older_or_newer_bundles_manifest_still_reads() {
        // An older bundle: few fields; a newer one: fields this reader does not know.
        let read: Manifest = serde_json::from_str(
            r#"{"formatVersion": 1, "target": {"kind": "Restore", "name": "r"},
                "rootFolder": "b", "comesLater": {"x": 1},
                "notCollected": [{"resource": "pods", "reason": "forbidden", "why": 2}]}"#,
        )
        .unwrap();
        assert_eq!(read.target.name, "r");
        assert_eq!(read.target.uid, "");
        assert!(read.files.is_empty());
        assert_eq!(read.not_collected[0].namespace, None);
        assert_eq!(
            serde_json::from_str::<Manifest>("{}").unwrap(),
            Manifest::default()
        );
        // A field of the wrong type is an error, not a silent default.
        assert!(serde_json::from_str::<Manifest>(r#"{"target": 3}"#).is_err());
    }
}

//! The record of what this install wrote to its stores, so that the garbage collector
//! (orphans.rs) deletes only what it can prove is ours: the ConfigMap [`INSTALL_RECORD`] the
//! chart makes in Velero's namespace.
//!
//! - `writer.<id>`: each process that led a term, by a random id made at its start, and when
//!   it last began one. An archive's mark names its writer; one whose writer is not recorded
//!   here is not ours. The CRD's uid alone is not enough: a cluster cloned from an etcd
//!   snapshot has the same uid and the same ConfigMap, but the writers each registers after
//!   the clone are in its own copy only.
//! - `upload.<hash>`: each upload begun and not yet finished (sha256 of location, key and
//!   upload id), and when. S3 cannot show an open upload's metadata, so the store alone
//!   cannot prove an upload ours; an upload another cluster began in the same folder is in no
//!   record of ours.
//!
//! Every write is a JSON merge patch of its own keys, so writers never conflict.
//!
//! [`INSTALL_RECORD`]: velero_debug_crd::INSTALL_RECORD

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api, Client,
    api::{Patch, PatchParams},
};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use velero_debug_crd::INSTALL_RECORD;

use crate::kubernetes;

const WRITER: &str = "writer.";
const UPLOAD: &str = "upload.";
/// Writers kept: a crash-looping pod registers one per start, and a ConfigMap holds 1 MiB.
/// An archive whose writer was dropped is left to its bundle's finalizer (never collected).
const MAX_WRITERS: usize = 1000;
/// Writers not seen leading for this long are dropped (see MAX_WRITERS).
const WRITER_RETENTION: Duration = Duration::from_secs(90 * 24 * 3600);
/// Upload records older than this are dropped: Azure discards uncommitted blocks after a
/// week, and an upload outlives its bundle deadline only when its process died.
const UPLOAD_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// A fresh writer id: 16 hex digits.
pub(crate) fn new_writer() -> String {
    let mut bytes = [0u8; 8];
    // aws-lc's generator fails only without a system source of randomness; the time then
    // still tells writers of different processes apart.
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        bytes = (Timestamp::now().as_nanosecond() as u64).to_be_bytes();
    }
    hex::encode(bytes)
}

/// The key recording an open upload: the store's names are anything the BSL and the store
/// say, so they are hashed into a ConfigMap key.
pub fn upload_entry(location: &str, key: &str, upload_id: &str) -> String {
    let digest = Sha256::new()
        .chain_update(location)
        .chain_update([0])
        .chain_update(key)
        .chain_update([0])
        .chain_update(upload_id)
        .finalize();
    format!("{UPLOAD}{}", &hex::encode(digest)[..40])
}

/// The record's key for writer `id`.
pub fn writer_entry(id: &str) -> String {
    format!("{WRITER}{id}")
}

/// What the record says, as read.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Recorded {
    pub writers: BTreeSet<String>,
    /// Entry keys of the open uploads recorded.
    pub uploads: BTreeSet<String>,
}

impl Recorded {
    pub(crate) fn parse(data: &BTreeMap<String, String>) -> Self {
        Recorded {
            writers: data
                .keys()
                .filter_map(|k| k.strip_prefix(WRITER))
                .map(str::to_string)
                .collect(),
            uploads: data
                .keys()
                .filter(|k| k.starts_with(UPLOAD))
                .cloned()
                .collect(),
        }
    }
}

fn time(now: Timestamp) -> Value {
    Value::String(now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// The merge patch that registers `writer` at `now` and drops the writers and upload records
/// past their retention (and the oldest writers beyond MAX_WRITERS). An entry whose time
/// cannot be read is dropped with them: nothing of ours writes one.
pub(crate) fn register_patch(
    writer: &str,
    data: &BTreeMap<String, String>,
    now: Timestamp,
) -> Value {
    let age = |value: &str| {
        value
            .parse::<Timestamp>()
            .map(|t| now.duration_since(t).unsigned_abs())
            .unwrap_or(Duration::MAX)
    };
    let mut entries = Map::new();
    let mut writers: Vec<(Duration, &String)> = Vec::new();
    for (key, value) in data {
        let retention = if key.starts_with(WRITER) {
            WRITER_RETENTION
        } else if key.starts_with(UPLOAD) {
            UPLOAD_RETENTION
        } else {
            continue;
        };
        if age(value) > retention {
            entries.insert(key.clone(), Value::Null);
        } else if key.starts_with(WRITER) && *key != writer_entry(writer) {
            writers.push((age(value), key));
        }
    }
    writers.sort();
    for (_, key) in writers.into_iter().skip(MAX_WRITERS - 1) {
        entries.insert(key.clone(), Value::Null);
    }
    entries.insert(writer_entry(writer), time(now));
    json!({ "data": entries })
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum RecordError {
    #[error(
        "ConfigMap {namespace}/{INSTALL_RECORD}, the record of what this install wrote, does not exist: the Helm chart makes it"
    )]
    Missing { namespace: String },
    #[error("ConfigMap {namespace}/{INSTALL_RECORD}: {message}")]
    Api { namespace: String, message: String },
}

/// The record in one namespace, as this process writes it.
#[derive(Clone)]
pub(crate) struct InstallRecord {
    api: Api<ConfigMap>,
    namespace: String,
    timeout: Duration,
}

impl InstallRecord {
    pub(crate) fn new(client: Client, namespace: &str, timeout: Duration) -> Self {
        InstallRecord {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_string(),
            timeout,
        }
    }

    fn error(&self, e: kubernetes::RequestError) -> RecordError {
        let namespace = self.namespace.clone();
        if e.is_not_found() {
            RecordError::Missing { namespace }
        } else {
            RecordError::Api {
                namespace,
                message: e.to_string(),
            }
        }
    }

    async fn data(&self) -> Result<BTreeMap<String, String>, RecordError> {
        let map = kubernetes::request_within(self.timeout, self.api.get(INSTALL_RECORD))
            .await
            .map_err(|e| self.error(e))?;
        Ok(map.data.unwrap_or_default())
    }

    async fn patch(&self, patch: Value) -> Result<(), RecordError> {
        let params = PatchParams::default();
        let patch = Patch::Merge(&patch);
        let patched = self.api.patch(INSTALL_RECORD, &params, &patch);
        kubernetes::request_within(self.timeout, patched)
            .await
            .map(drop)
            .map_err(|e| self.error(e))
    }

    /// What the record says now.
    pub(crate) async fn read(&self) -> Result<Recorded, RecordError> {
        Ok(Recorded::parse(&self.data().await?))
    }

    /// Registers `writer` as this install's (and prunes what is past its retention).
    pub(crate) async fn register(&self, writer: &str) -> Result<(), RecordError> {
        let data = self.data().await?;
        self.patch(register_patch(writer, &data, Timestamp::now()))
            .await
    }

    /// Records an upload begun.
    pub(crate) async fn upload_begun(&self, entry: &str) -> Result<(), RecordError> {
        self.patch(json!({ "data": { entry: time(Timestamp::now()) } }))
            .await
    }

    /// Forgets an upload finished or aborted.
    pub(crate) async fn upload_ended(&self, entry: &str) -> Result<(), RecordError> {
        self.patch(json!({ "data": { entry: Value::Null } })).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn data(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn registering_adds_the_writer_and_drops_only_what_is_past_its_retention() {
        let now = at("2026-11-28T10:00:00Z");
        let recorded = data(&[
            ("writer.old", "2026-08-01T00:00:00Z"),
            ("writer.recent", "2026-11-01T00:00:00Z"),
            ("writer.garbled", "yesterday"),
            ("upload.stale", "2026-11-20T00:00:00Z"),
            ("upload.open", "2026-11-28T09:00:00Z"),
            ("someone-else", "left alone"),
        ]);
        let patch = register_patch("abc", &recorded, now);
        assert_eq!(
            patch,
            json!({"data": {
                "writer.old": null, "writer.garbled": null, "upload.stale": null,
                "writer.abc": "2026-11-28T10:00:00Z",
            }})
        );
    }

    #[test]
    fn the_oldest_writers_beyond_the_cap_are_dropped() {
        let now = at("2026-11-28T10:00:00Z");
        let recorded: BTreeMap<String, String> = (0..MAX_WRITERS + 5)
            .map(|i| {
                let seen = now - jiff::SignedDuration::from_secs(i as i64 * 60);
                (format!("writer.w{i:05}"), seen.to_string())
            })
            .collect();
        let patch = register_patch("new", &recorded, now);
        let dropped: BTreeSet<&str> = patch["data"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, v)| v.is_null())
            .map(|(k, _)| k.as_str())
            .collect();
        // The new one and the 999 most recent stay.
        assert_eq!(dropped.len(), 6);
        assert!(dropped.contains("writer.w01004") && !dropped.contains("writer.w00998"));
    }

    #[test]
    fn an_upload_entry_is_a_configmap_key_whatever_the_names() {
        let entry = upload_entry("loc", "a/../b c\u{0}.tar.gz", "id+/=~");
        assert!(entry.starts_with("upload.") && entry.len() == 47);
        assert!(entry.chars().all(|c| c.is_ascii_alphanumeric() || c == '.'));
        assert_ne!(entry, upload_entry("loc", "a/../b c\u{0}.tar.gz", "id+/="));
        // The parts are separated: moving a character across them is another upload.
        assert_ne!(upload_entry("ab", "c", "d"), upload_entry("a", "bc", "d"));
    }

    #[test]
    fn the_record_is_read_as_writers_and_upload_entries() {
        let recorded = Recorded::parse(&data(&[
            ("writer.a1", "2026-11-28T10:00:00Z"),
            ("upload.ff", "2026-11-28T10:00:00Z"),
            ("other", "x"),
        ]));
        assert_eq!(recorded.writers, BTreeSet::from(["a1".to_string()]));
        assert_eq!(recorded.uploads, BTreeSet::from(["upload.ff".to_string()]));
    }
}

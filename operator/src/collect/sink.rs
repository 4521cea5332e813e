//! Where collection writes: the bundle's archive and its spool folder, every byte taken from
//! the bundle's budget and redacted first; and what writing them leaves to say (warnings,
//! values masked, time per part).

use std::{
    borrow::Cow,
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    sync::Arc,
    time::Instant,
};

use serde::Serialize;

use super::{CollectError, Collected, budget::ContentBudget, workload_env::WorkloadEnv};
use crate::{
    config::size_text,
    gzip_members::{CompressedFile, Compression},
    redact::{MaskCounts, Redactor},
    summary::Summary,
    tar_gz::{EntryPath, TarGzWriter},
};

/// The archive collection writes into, what writing it takes, and what it has said so far.
pub(crate) struct Sink {
    pub(super) archive: TarGzWriter,
    /// Taken from before anything is written for the bundle (spool files, archive entries).
    pub(super) budget: ContentBudget,
    spool_dir: PathBuf,
    spool_seq: u64,
    pub(super) redactor: Arc<Redactor>,
    /// Whose literal env values are masked before the redactor runs.
    workload_env: WorkloadEnv,
    pub(super) compression: Compression,
    /// What the redactor masked so far, from every source.
    pub(super) masks: MaskCounts,
    pub(super) warnings: Vec<String>,
    not_collected: Vec<crate::summary::NotCollected>,
    timings: BTreeMap<String, u64>,
    /// Uids of every object written, so events about them can be found.
    pub(super) collected_uids: BTreeSet<String>,
}

impl Sink {
    /// Writes into `archive`, spooling into `spool_dir` (the archive's folder), at most
    /// `max_bundle_bytes` of content.
    pub(crate) fn new(
        archive: TarGzWriter,
        spool_dir: PathBuf,
        max_bundle_bytes: u64,
        redactor: Arc<Redactor>,
        workload_env: WorkloadEnv,
        compression: Compression,
    ) -> Self {
        Self {
            archive,
            budget: ContentBudget::new(max_bundle_bytes),
            spool_dir,
            spool_seq: 0,
            redactor,
            workload_env,
            compression,
            masks: MaskCounts::default(),
            warnings: Vec::new(),
            not_collected: Vec::new(),
            timings: BTreeMap::new(),
            collected_uids: BTreeSet::new(),
        }
    }

    /// What was written, with `summary`, for the archive step.
    pub(super) fn into_collected(self, summary: Summary) -> Collected {
        Collected {
            archive: self.archive,
            summary,
            warnings: self.warnings,
            timings: self.timings,
            masks: self.masks,
            not_collected: self.not_collected,
        }
    }

    pub(super) fn record_timing(&mut self, step: &str, start: Instant) {
        self.timings
            .insert(step.to_string(), start.elapsed().as_millis() as u64);
    }

    pub(super) fn warn(&mut self, message: impl Into<String>) {
        let message = message.into();
        tracing::info!(warning = %message, "bundle warning");
        self.warnings.push(message);
    }

    /// Records that `resource` (a plural) of `namespace` (None: of every namespace) was not
    /// collected, and why, for manifest.json.
    pub(super) fn not_collected(&mut self, resource: &str, namespace: Option<&str>, reason: &str) {
        self.not_collected.push(crate::summary::NotCollected {
            resource: resource.into(),
            namespace: namespace.map(String::from),
            reason: reason.into(),
        });
    }

    /// A line from the cluster, redacted, its masks counted.
    pub(super) fn redact_line<'a>(&mut self, line: &'a str) -> Cow<'a, str> {
        self.redactor.redact_line_counted(line, &mut self.masks)
    }

    /// A fresh spool file path inside the bundle's spool folder.
    pub(super) fn spool_path(&mut self, hint: &str) -> PathBuf {
        self.spool_seq += 1;
        let safe: String = hint
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(60)
            .collect();
        self.spool_dir.join(format!("{}-{safe}", self.spool_seq))
    }

    /// Adds a Kubernetes object as redacted YAML.
    pub(super) fn add_object(
        &mut self,
        path: &EntryPath,
        obj: &impl Serialize,
    ) -> Result<(), CollectError> {
        self.add_object_seen(path, obj).map(drop)
    }

    /// [`add_object`](Self::add_object), returning the object as written (redacted JSON): what
    /// the findings may quote.
    pub(super) fn add_object_seen(
        &mut self,
        path: &EntryPath,
        obj: &impl Serialize,
    ) -> Result<serde_json::Value, CollectError> {
        let value = self.as_written(obj);
        let yaml = serde_yaml::to_string(&value).unwrap_or_default();
        self.add_text(path, &yaml)?;
        Ok(value)
    }

    /// Adds `items` as one YAML list, each item made JSON, stripped and redacted on its own and
    /// handed to `seen` as written: a list of thousands (a namespace's events) holds one item's
    /// JSON at a time beside its YAML, not a tree of values for all of them (ten times their
    /// text; BENCHMARKS.md, issue 38).
    pub(super) fn add_list_seen<T: Serialize>(
        &mut self,
        path: &EntryPath,
        items: &[T],
        mut seen: impl FnMut(&serde_json::Value),
    ) -> Result<(), CollectError> {
        let yaml = yaml_list(items.iter().map(|item| {
            let value = self.as_written(item);
            seen(&value);
            value
        }));
        self.add_text(path, &yaml)
    }

    /// `obj` as JSON, as the bundle holds it: without its noise, redacted (the masks counted),
    /// its uid noted as collected.
    fn as_written(&mut self, obj: &impl Serialize) -> serde_json::Value {
        let mut value = serde_json::to_value(obj).unwrap_or_default();
        strip_noise(&mut value);
        self.workload_env.apply(&mut value, &mut self.masks);
        self.redactor
            .redact_json_counted(&mut value, &mut self.masks);
        if let Some(uid) = value["metadata"]["uid"].as_str() {
            self.collected_uids.insert(uid.to_string());
        }
        value
    }

    /// Adds text (already redacted by the caller, its masks counted, when it comes from
    /// outside), unless the bundle's budget has no room for all of it.
    pub(super) fn add_text(&mut self, path: &EntryPath, text: &str) -> Result<(), CollectError> {
        if !self.budget.take_all(text.len() as u64) {
            self.warn_left_out(path);
            return Ok(());
        }
        tokio::task::block_in_place(|| self.archive.append_bytes(path, text.as_bytes()))?;
        Ok(())
    }

    /// Adds a spooled file, whose bytes were taken from the budget as they were written, and
    /// removes it; counts what was masked in it.
    pub(super) fn add_spooled(
        &mut self,
        path: &EntryPath,
        file: &Path,
        masks: &MaskCounts,
    ) -> Result<(), CollectError> {
        let added = tokio::task::block_in_place(|| self.archive.append_file(path, file));
        let _ = std::fs::remove_file(file);
        added?;
        self.masks.merge(masks);
        Ok(())
    }

    /// Adds a spooled file compressed ahead (see [`gzip_members`](crate::gzip_members)),
    /// whose bytes were taken from the budget as they were written; counts what was masked in
    /// it.
    pub(super) fn add_compressed(
        &mut self,
        path: &EntryPath,
        content: &CompressedFile,
        masks: &MaskCounts,
    ) -> Result<(), CollectError> {
        tokio::task::block_in_place(|| self.archive.append_compressed(path, content))?;
        self.masks.merge(masks);
        Ok(())
    }

    /// A file left out whole: the budget was used up before it.
    pub(super) fn warn_left_out(&mut self, path: &EntryPath) {
        self.warn(format!(
            "{path} left out: the bundle reached its size limit of {} (MAX_BUNDLE_BYTES)",
            size_text(self.budget.total())
        ));
    }
}

/// The YAML of a list, written an item at a time: each item is a one-item list of its own, and
/// their text put together is the list's.
fn yaml_list(items: impl Iterator<Item = serde_json::Value>) -> String {
    let mut yaml = String::new();
    for item in items {
        yaml.push_str(&serde_yaml::to_string(std::slice::from_ref(&item)).unwrap_or_default());
    }
    if yaml.is_empty() {
        yaml.push_str("[]\n");
    }
    yaml
}

/// managedFields only make YAML long; nobody debugging a restore reads them.
fn strip_noise(value: &mut serde_json::Value) {
    if let Some(meta) = value.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        meta.remove("managedFields");
        if let Some(annotations) = meta.get_mut("annotations").and_then(|a| a.as_object_mut()) {
            annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_list_written_an_item_at_a_time_reads_as_the_list() {
        let items = vec![
            json!({"metadata": {"name": "a", "managedFields": [{"manager": "m"}]}, "type": "Warning"}),
            json!({"metadata": {"name": "b"}, "message": "two\nlines: and a colon", "count": 3}),
            json!({"metadata": {"name": "c"}, "list": [1, "2", null]}),
        ];
        let yaml = yaml_list(items.iter().cloned().map(|mut item| {
            strip_noise(&mut item);
            item
        }));
        let read: Vec<serde_json::Value> = serde_yaml::from_str(&yaml).unwrap();
        let mut expected = items.clone();
        expected[0]["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("managedFields");
        assert_eq!(read, expected);
        assert_eq!(yaml, serde_yaml::to_string(&expected).unwrap());
        let none: Vec<serde_json::Value> =
            serde_yaml::from_str(&yaml_list(std::iter::empty())).unwrap();
        assert!(none.is_empty());
    }
}

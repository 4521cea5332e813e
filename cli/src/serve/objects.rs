//! The bundle's objects, read from every .yaml file under its folder (one object, a `List`, a
//! YAML sequence such as events/related.yaml, or several documents), grouped by kind. Logs and
//! Velero's files stay on disk: only objects are held in memory.

use std::{
    collections::{BTreeSet, HashSet},
    path::{Path, PathBuf},
};

use serde_json::Value;

use super::{
    bounded_yaml,
    kinds::{self, Kind},
};

/// A .yaml file larger than this is not an object the operator wrote; it is skipped.
const MAX_OBJECT_FILE: u64 = 16 << 20;
/// The objects are held in memory: past this many bytes of YAML, the rest are skipped (the
/// operator's bundles hold far less; a hostile one cannot grow the server without bound).
const MAX_OBJECT_BYTES: u64 = 256 << 20;

pub(crate) struct Store {
    pub kinds: Vec<Kind>,
    /// Parallel to `kinds`.
    objects: Vec<Vec<Value>>,
    /// (kind, namespace, name) of every object held: a second copy is found without a scan.
    held: HashSet<(usize, Option<String>, String)>,
    /// .yaml files not read: too big alone, or past [`MAX_OBJECT_BYTES`] together.
    pub skipped_files: usize,
    /// .yaml files read only up to a document that is not YAML or expands past the file's
    /// bound (aliases).
    pub cut_files: usize,
    /// The first of them, and why.
    pub first_cut: Option<(PathBuf, String)>,
    /// The Velero server version the bundle names, whose release's kinds `kinds` holds.
    pub velero_version: Option<String>,
}

impl Store {
    /// Every object of `dir` (the bundle's root folder).
    pub(crate) fn load(dir: &Path) -> Store {
        Store::load_within(dir, MAX_OBJECT_BYTES)
    }

    fn load_within(dir: &Path, budget: u64) -> Store {
        let velero_version = server_version(dir);
        let mut store = Store::new(kinds::known_for(velero_version.as_deref()));
        store.velero_version = velero_version;
        let mut files = Vec::new();
        yaml_files(dir, &mut files, 0);
        files.sort();
        let mut left = budget;
        for file in files {
            let size = std::fs::metadata(&file).map_or(u64::MAX, |m| m.len());
            if size > MAX_OBJECT_FILE || size > left {
                store.skipped_files += 1;
                continue;
            }
            left -= size;
            let (objects, cut) = objects_in(&file);
            for object in objects {
                store.add(object);
            }
            if let Some(why) = cut {
                store.cut_files += 1;
                store.first_cut.get_or_insert((file, why));
            }
        }
        store.add_missing_namespaces();
        store
    }

    pub(crate) fn new(kinds: Vec<Kind>) -> Store {
        let objects = vec![Vec::new(); kinds.len()];
        Store {
            kinds,
            objects,
            held: HashSet::new(),
            skipped_files: 0,
            cut_files: 0,
            first_cut: None,
            velero_version: None,
        }
    }

    /// Files in the bundle may hold the same object twice (a target's YAML and its kind's
    /// folder): the first is kept. Secrets are never served.
    pub(crate) fn add(&mut self, object: Value) {
        let (Some(api_version), Some(kind)) =
            (object["apiVersion"].as_str(), object["kind"].as_str())
        else {
            return;
        };
        if kind == "Secret" {
            return;
        }
        let Some(name) = object["metadata"]["name"].as_str().map(String::from) else {
            return;
        };
        let index = match self
            .kinds
            .iter()
            .position(|k| k.kind == kind && k.api_version() == api_version)
        {
            Some(i) => i,
            None => {
                let namespaced = object["metadata"]["namespace"].is_string();
                self.kinds
                    .push(kinds::guessed(api_version, kind, namespaced));
                self.objects.push(Vec::new());
                self.kinds.len() - 1
            }
        };
        let namespace = object["metadata"]["namespace"].as_str().map(String::from);
        if self.held.insert((index, namespace, name)) {
            self.objects[index].push(object);
        }
    }

    pub(crate) fn kind_of(&self, group: &str, version: &str, plural: &str) -> Option<usize> {
        self.kinds
            .iter()
            .position(|k| k.group == group && k.version == version && k.plural == plural)
    }

    pub(crate) fn objects(&self, kind: usize) -> &[Value] {
        &self.objects[kind]
    }

    /// A namespaced or cluster object by name, the first found.
    pub(crate) fn find(&self, group: &str, plural: &str, name: &str) -> Option<&Value> {
        let kind = self
            .kinds
            .iter()
            .position(|k| k.group == group && k.plural == plural)?;
        self.objects[kind]
            .iter()
            .find(|o| o["metadata"]["name"] == name)
    }

    pub(crate) fn count(&self) -> usize {
        self.objects.iter().map(Vec::len).sum()
    }

    /// The plurals of the kinds the bundle holds objects of.
    pub(crate) fn held_plurals(&self) -> Vec<String> {
        self.kinds
            .iter()
            .zip(&self.objects)
            .filter(|(_, o)| !o.is_empty())
            .map(|(k, _)| k.plural.clone())
            .collect()
    }

    /// `kubectl get ns` and `-n X` show the namespaces the bundle's objects live in, even when
    /// the operator did not collect the Namespace objects themselves.
    fn add_missing_namespaces(&mut self) {
        let named: BTreeSet<String> = self
            .objects
            .iter()
            .flatten()
            .filter_map(|o| o["metadata"]["namespace"].as_str().map(String::from))
            .collect();
        for name in named {
            self.add(serde_json::json!({
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": name,
                    "annotations": {
                        "velero-debug.io/served-from-bundle":
                            "the bundle holds objects of this namespace, not the Namespace itself"
                    }
                },
                "status": {"phase": "Active"}
            }));
        }
    }
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) {
    // The operator writes a few levels; a deeper tree is not its work.
    if depth > 8 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        if kind.is_dir() {
            yaml_files(&path, out, depth + 1);
        } else if kind.is_file() && path.extension().is_some_and(|e| e == "yaml") {
            out.push(path);
        }
    }
}

/// The objects of one file; a file that is not YAML of objects holds none.
/// The server status file is a few lines; anything bigger is not the operator's.
const MAX_SERVER_STATUS_FILE: u64 = 64 << 10;

/// The Velero server's version the bundle names in `velero/server-status.yaml` (the answer to
/// a ServerStatusRequest, or the Deployment's image tag); None when absent or unreadable.
pub(crate) fn server_version(dir: &Path) -> Option<String> {
    let file = dir.join("velero").join("server-status.yaml");
    if std::fs::metadata(&file).ok()?.len() > MAX_SERVER_STATUS_FILE {
        return None;
    }
    let status = bounded_yaml::document(&std::fs::read_to_string(&file).ok()?)?;
    status["serverVersion"].as_str().map(str::to_string)
}

/// The objects of one file, up to a document that is not YAML or expands past the file's
/// bound (bounded_yaml.rs), and why it stopped there.
fn objects_in(file: &Path) -> (Vec<Value>, Option<String>) {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) => return (Vec::new(), Some(e.to_string())),
    };
    let (documents, cut) =
        bounded_yaml::documents(&text, bounded_yaml::budget_for(text.len() as u64));
    let mut out = Vec::new();
    for value in documents {
        flatten(value, &mut out);
    }
    (out, cut)
}

fn flatten(value: Value, out: &mut Vec<Value>) {
    match value {
        Value::Array(items) => items.into_iter().for_each(|i| flatten(i, out)),
        Value::Object(ref map)
            if map.get("items").is_some_and(Value::is_array)
                && map
                    .get("kind")
                    .and_then(Value::as_str)
                    .is_some_and(|k| k.ends_with("List")) =>
        {
            if let Some(Value::Array(items)) = value.get("items").cloned() {
                items.into_iter().for_each(|i| flatten(i, out));
            }
        }
        Value::Object(_) => out.push(value),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_sequences_and_documents_are_read_secrets_dropped_namespaces_added() {
        let dir = tempfile::tempdir().unwrap();
        let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: shop}\n";
        std::fs::write(dir.path().join("p.yaml"), format!("{pod}---\n{pod}")).unwrap();
        std::fs::create_dir(dir.path().join("events")).unwrap();
        std::fs::write(
            dir.path().join("events/related.yaml"),
            "- apiVersion: v1\n  kind: Event\n  metadata: {name: e1, namespace: velero}\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("s.yaml"),
            "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Secret, metadata: {name: s}}\n- {apiVersion: x.io/v1, kind: Thing, metadata: {name: t}}\n",
        )
        .unwrap();
        let store = Store::load(dir.path());
        let count =
            |p: &str, g: &str, v: &str| store.objects(store.kind_of(g, v, p).unwrap()).len();
        assert_eq!(count("pods", "", "v1"), 1);
        assert_eq!(count("events", "", "v1"), 1);
        assert_eq!(count("things", "x.io", "v1"), 1);
        assert_eq!(count("namespaces", "", "v1"), 2);
        assert!(store.kinds.iter().all(|k| k.kind != "Secret"));
    }

    #[test]
    fn files_past_the_budget_are_skipped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["a", "b", "c"] {
            let pod =
                format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: shop}}\n");
            std::fs::write(dir.path().join(format!("{name}.yaml")), pod).unwrap();
        }
        let one = std::fs::metadata(dir.path().join("a.yaml")).unwrap().len();
        let store = Store::load_within(dir.path(), 2 * one);
        let pods = store
            .objects(store.kind_of("", "v1", "pods").unwrap())
            .len();
        assert_eq!((pods, store.skipped_files), (2, 1));
        assert_eq!(Store::load(dir.path()).skipped_files, 0);
    }

    #[test]
    fn an_anchor_bomb_in_the_bundle_is_not_served() {
        let dir = tempfile::tempdir().unwrap();
        let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: shop}\n";
        std::fs::write(dir.path().join("p.yaml"), pod).unwrap();
        let bomb = bounded_yaml::tests::anchor_bomb(400);
        std::fs::write(dir.path().join("bomb.yaml"), bomb).unwrap();
        let started = std::time::Instant::now();
        let store = Store::load(dir.path());
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        let pods = store.objects(store.kind_of("", "v1", "pods").unwrap());
        assert_eq!(pods.len(), 1);
        assert_eq!(store.count(), 2, "the pod and its namespace only");
        let (path, why) = store.first_cut.as_ref().unwrap();
        assert_eq!(
            (path.file_name().unwrap(), store.cut_files),
            ("bomb.yaml".as_ref(), 1)
        );
        assert!(
            why.contains("expands to more bytes than its size allows"),
            "{why}"
        );
    }

    /// The column names of PodVolumeRestores as a bundle whose server status says `status`
    /// is served.
    fn pvr_columns(status: Option<&[u8]>) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        if let Some(status) = status {
            std::fs::create_dir(dir.path().join("velero")).unwrap();
            std::fs::write(dir.path().join("velero/server-status.yaml"), status).unwrap();
        }
        let store = Store::load(dir.path());
        let pvr = store
            .kind_of("velero.io", "v1", "podvolumerestores")
            .unwrap();
        store.kinds[pvr]
            .columns
            .iter()
            .flatten()
            .map(|c| c.name.clone())
            .collect()
    }

    #[test]
    fn velero_kinds_are_those_of_the_release_the_server_status_names() {
        let processed = b"phase: Processed\nserverVersion: v1.14.0\nplugins: []\n";
        let from_image = b"source: image tag of Deployment velero\nimage: velero/velero:v1.14.0\nserverVersion: v1.14.0\n";
        let newest = pvr_columns(None);
        let old = pvr_columns(Some(processed));
        assert_ne!(old, newest);
        assert_eq!(pvr_columns(Some(from_image)), old);
        assert_eq!(pvr_columns(Some(b"serverVersion: v1.18.3\n")), newest);
        // Unreadable, undecodable, oversized or expanding past its size: the newest release's.
        let huge = format!("serverVersion: v1.14.0\n#{}\n", "x".repeat(70 << 10));
        let mut aliases = format!(
            "serverVersion: v1.14.0\na: &a {}\nb:\n",
            "x".repeat(16 << 10)
        );
        aliases.push_str(&"- *a\n".repeat(8000));
        assert!(aliases.len() < 64 << 10);
        let bad = [
            &b"serverVersion: [\n"[..],
            b"\xff\xfe\x00",
            huge.as_bytes(),
            aliases.as_bytes(),
        ];
        for bad in bad {
            assert_eq!(pvr_columns(Some(bad)), newest);
        }
    }
}

//! `kubectl logs` from the bundle: the operator writes a container's log to
//! logs/<group>/<pod>/<container>.log and its previous instance's to <container>.previous.log.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

/// (pod, container, previous) -> file.
#[derive(Debug, Default)]
pub(crate) struct LogIndex {
    files: BTreeMap<(String, String, bool), PathBuf>,
}

impl LogIndex {
    /// The logs under `root/logs`; a name that is not the operator's layout is skipped.
    pub(crate) fn load(root: &Path) -> LogIndex {
        let mut index = LogIndex::default();
        let Ok(groups) = std::fs::read_dir(root.join("logs")) else {
            return index;
        };
        for pod_dir in groups
            .flatten()
            .filter_map(|g| std::fs::read_dir(g.path()).ok())
            .flatten()
            .flatten()
        {
            let pod = pod_dir.file_name().to_string_lossy().to_string();
            let Ok(files) = std::fs::read_dir(pod_dir.path()) else {
                continue;
            };
            for file in files.flatten() {
                if !file.file_type().is_ok_and(|t| t.is_file()) {
                    continue;
                }
                let name = file.file_name().to_string_lossy().to_string();
                let Some(stem) = name.strip_suffix(".log") else {
                    continue;
                };
                let (container, previous) = match stem.strip_suffix(".previous") {
                    Some(c) => (c, true),
                    None => (stem, false),
                };
                index
                    .files
                    .insert((pod.clone(), container.to_string(), previous), file.path());
            }
        }
        index
    }

    pub(crate) fn find(&self, pod: &str, container: &str, previous: bool) -> Option<&Path> {
        self.files
            .get(&(pod.to_string(), container.to_string(), previous))
            .map(PathBuf::as_path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_and_previous_logs_are_found_by_pod_and_container() {
        let dir = tempfile::tempdir().unwrap();
        let pod = dir.path().join("logs/velero/velero-abc");
        std::fs::create_dir_all(&pod).unwrap();
        std::fs::write(pod.join("velero.log"), "now\n").unwrap();
        std::fs::write(pod.join("velero.previous.log"), "before\n").unwrap();
        std::fs::write(pod.join("notes.txt"), "x").unwrap();
        let index = LogIndex::load(dir.path());
        assert!(
            index
                .find("velero-abc", "velero", false)
                .unwrap()
                .ends_with("velero.log")
        );
        assert!(
            index
                .find("velero-abc", "velero", true)
                .unwrap()
                .ends_with("velero.previous.log")
        );
        assert!(index.find("velero-abc", "notes", false).is_none());
        assert!(index.find("other", "velero", false).is_none());
    }
}

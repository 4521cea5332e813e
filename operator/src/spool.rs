//! The spool folder (SPOOL_DIR): each operator process builds its bundles in a folder of its
//! own there, and holds a lock on a file in it for as long as it lives. A process killed
//! mid-collection (OOM, SIGKILL, a node restart) leaves its files behind, and the chart's
//! emptyDir outlives a restarted container; so at start every folder whose lock can be taken
//! belongs to a dead process and is removed. A lock (rather than removing everything) because
//! SPOOL_DIR defaults to the system's temp folder, which another process may share; the kernel
//! drops a dead process's locks, pids are reused in every container.

use std::{
    fs::{self, File},
    io,
    path::{Path, PathBuf},
};

use tempfile::TempDir;

/// Names of the folders of operator processes; the lock file inside each.
const PROCESS_PREFIX: &str = "velero-debug-operator-";
const LOCK_FILE: &str = "process.lock";

#[derive(Debug, thiserror::Error)]
#[error("spool folder {path}: {source}")]
pub(crate) struct SpoolError {
    path: PathBuf,
    source: io::Error,
}

/// This process's folder under the spool folder; removed when dropped.
#[derive(Debug)]
pub(crate) struct ProcessSpool {
    dir: TempDir,
    /// Locked while this lives: the folder is in use.
    _lock: File,
}

impl ProcessSpool {
    /// Removes the folders of dead processes under `root`, then makes this process's own.
    pub fn claim(root: &Path) -> Result<Self, SpoolError> {
        let failed = |path: &Path| {
            let path = path.to_path_buf();
            move |source| SpoolError { path, source }
        };
        for removed in remove_dead(root).map_err(failed(root))? {
            tracing::info!(folder = %removed.display(), "removed the spool folder of a process that is gone");
        }
        let dir = tempfile::Builder::new()
            .prefix(PROCESS_PREFIX)
            .tempdir_in(root)
            .map_err(failed(root))?;
        let lock_path = dir.path().join(LOCK_FILE);
        let lock = File::create(&lock_path).map_err(failed(&lock_path))?;
        // A file system without locks only costs the clean-up of this folder after a crash:
        // a folder whose lock cannot be tried is never removed.
        if let Err(e) = lock.try_lock() {
            tracing::warn!(error = %e, folder = %dir.path().display(), "the spool folder cannot be locked; if this process dies, its files stay");
        }
        Ok(Self { dir, _lock: lock })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Removes every process folder under `root` whose lock is free; the folders removed. A
/// folder without a lock file is kept: its process may be between making it and locking.
/// Reading `root` failing is an error: SPOOL_DIR unusable is worth stopping for.
fn remove_dead(root: &Path) -> io::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for entry in fs::read_dir(root)? {
        let entry = entry?;
        let is_process_folder = entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.starts_with(PROCESS_PREFIX))
            && entry.file_type()?.is_dir();
        if !is_process_folder {
            continue;
        }
        let folder = entry.path();
        let Ok(lock) = File::open(folder.join(LOCK_FILE)) else {
            continue;
        };
        // Locked: in use. An error: cannot tell, so kept.
        if lock.try_lock().is_err() {
            continue;
        }
        // Another process starting now may remove it first.
        match fs::remove_dir_all(&folder) {
            Ok(()) => removed.push(folder),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            // Leftovers are not worth refusing to start over.
            Err(e) => {
                tracing::warn!(error = %e, folder = %folder.display(), "could not remove the spool folder of a process that is gone");
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A process folder as a dead process leaves it: its lock file unlocked, files inside.
    fn dead_folder(root: &Path, name: &str) -> PathBuf {
        let folder = root.join(format!("{PROCESS_PREFIX}{name}"));
        fs::create_dir_all(folder.join("velero-debug-bundle")).unwrap();
        fs::write(folder.join(LOCK_FILE), b"").unwrap();
        fs::write(folder.join("velero-debug-bundle/bundle.tar.gz"), b"partial").unwrap();
        folder
    }

    #[test]
    fn folders_of_dead_processes_go_and_live_ones_stay() {
        let root = tempfile::tempdir().unwrap();
        let dead = dead_folder(root.path(), "dead1");
        let live = ProcessSpool::claim(root.path()).unwrap();
        assert!(!dead.exists());
        assert!(live.path().starts_with(root.path()));
        // Not ours: other files in a shared temp folder, and a folder not yet locked.
        let other = root.path().join("velero-debug-x");
        fs::create_dir(&other).unwrap();
        let unlocked = root.path().join(format!("{PROCESS_PREFIX}starting"));
        fs::create_dir(&unlocked).unwrap();
        let dead = dead_folder(root.path(), "dead2");

        let second = ProcessSpool::claim(root.path()).unwrap();
        assert!(!dead.exists());
        assert!(live.path().is_dir(), "a live process's folder was removed");
        assert!(other.is_dir() && unlocked.is_dir());
        assert_ne!(second.path(), live.path());

        let gone = live.path().to_path_buf();
        drop(live);
        assert!(!gone.exists());
    }
}

//! `logs`: the files of a verified archive, and one of them by its path or a unique end of it.
//! The archive is downloaded and its sha256 checked first (download.rs), so nothing printed
//! comes from an archive that does not match its status.

use std::{
    fs::File,
    io::{self, Write},
    ops::ControlFlow,
    path::Path,
};

use velero_debug_crd::printable;

use super::entries::{ArchiveError, Budget, DEFAULT_MAX_BYTES, MAX_ENTRIES, read_entries};

/// What `logs` may read of an archive: as much as `download --extract` unpacks by default.
const LOGS_BUDGET: Budget = Budget {
    bytes: DEFAULT_MAX_BYTES,
    entries: MAX_ENTRIES,
    bytes_named: "the most `logs` reads",
};

#[derive(Debug, thiserror::Error)]
pub(crate) enum BundleFileError {
    #[error("reading the archive: {0}")]
    Read(#[from] io::Error),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error("no file {wanted:?} in the bundle (`kubectl velero-debug logs BUNDLE` lists them)")]
    NotFound { wanted: String },
    #[error("{wanted:?} names {} files; give more of the path: {}", candidates.len(), candidates.join(", "))]
    Ambiguous {
        wanted: String,
        candidates: Vec<String>,
    },
}

/// A file of the bundle: its path below the bundle's root folder, and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BundleFile {
    pub path: String,
    pub size: u64,
}

/// Every regular file of the archive, in archive order.
pub(crate) fn list(archive: &Path) -> Result<Vec<BundleFile>, BundleFileError> {
    let mut files = Vec::new();
    read_entries(File::open(archive)?, LOGS_BUDGET, |entry| {
        if entry.header().entry_type().is_file() {
            files.push(BundleFile {
                path: below_root(&entry.path()?.to_string_lossy()),
                size: entry.size(),
            });
        }
        Ok::<_, BundleFileError>(ControlFlow::Continue(()))
    })?;
    Ok(files)
}

/// The one path `wanted` names: the whole path (with or without the root folder), else the
/// only path ending in `/wanted`.
pub(crate) fn choose<'a>(paths: &'a [String], wanted: &str) -> Result<&'a str, BundleFileError> {
    let wanted_trimmed = wanted.trim_start_matches("./").trim_start_matches('/');
    if let Some(exact) = paths
        .iter()
        .find(|p| *p == wanted_trimmed || below_root(wanted_trimmed) == **p)
    {
        return Ok(exact);
    }
    let suffix = format!("/{wanted_trimmed}");
    let matches: Vec<&String> = paths.iter().filter(|p| p.ends_with(&suffix)).collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(BundleFileError::NotFound {
            wanted: printable(wanted).into_owned(),
        }),
        many => Err(BundleFileError::Ambiguous {
            wanted: printable(wanted).into_owned(),
            candidates: many.iter().map(|p| printable(p).into_owned()).collect(),
        }),
    }
}

/// Copies the file at `path` (as [`list`] names it) to `out`; on a terminal, as text with
/// control sequences made visible, so a hostile log cannot drive the terminal.
pub(crate) fn copy(
    archive: &Path,
    path: &str,
    out: &mut impl Write,
    to_terminal: bool,
) -> Result<(), BundleFileError> {
    let mut found = false;
    read_entries(File::open(archive)?, LOGS_BUDGET, |entry| {
        if below_root(&entry.path()?.to_string_lossy()) != path {
            return Ok::<_, BundleFileError>(ControlFlow::Continue(()));
        }
        found = true;
        if to_terminal {
            copy_as_text(entry, out)?;
        } else {
            io::copy(entry, out)?;
        }
        Ok(ControlFlow::Break(()))
    })?;
    if found {
        return Ok(());
    }
    Err(BundleFileError::NotFound {
        wanted: printable(path).into_owned(),
    })
}

/// `file` as text with control sequences made visible, line by line.
fn copy_as_text(file: impl io::Read, out: &mut impl Write) -> io::Result<()> {
    let mut reader = io::BufReader::new(file);
    let mut line = Vec::new();
    while io::BufRead::read_until(&mut reader, b'\n', &mut line)? > 0 {
        let text = String::from_utf8_lossy(&line);
        let (body, newline) = match text.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (&*text, ""),
        };
        write!(out, "{}{newline}", printable(body))?;
        line.clear();
    }
    Ok(())
}

/// The operator puts every file in one folder named after the bundle; users name files
/// below it.
fn below_root(path: &str) -> String {
    match path.split_once('/') {
        Some((_, rest)) if !rest.is_empty() => rest.to_string(),
        _ => path.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::summary::fixtures::gzip_member;

    fn archive(dir: &Path) -> std::path::PathBuf {
        let mut bytes = gzip_member(&[("b1/summary.md", b"# s\n")], false);
        bytes.extend(gzip_member(
            &[
                ("b1/velero/velero.log", b"level=info msg=a\n"),
                ("b1/node-agent/n1/node-agent.log", b"line\x1b[31m red\n"),
                ("b1/node-agent/n2/node-agent.log", b"other\n"),
            ],
            true,
        ));
        let path = dir.join("b1.tar.gz");
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn lists_files_below_the_root_folder() {
        let dir = tempfile::tempdir().unwrap();
        let files = list(&archive(dir.path())).unwrap();
        let paths: Vec<_> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "summary.md",
                "velero/velero.log",
                "node-agent/n1/node-agent.log",
                "node-agent/n2/node-agent.log"
            ]
        );
        assert_eq!(files[1].size, 17);
    }

    #[test]
    fn chooses_by_path_or_a_unique_end() {
        let paths: Vec<String> = [
            "summary.md",
            "velero/velero.log",
            "a/n1/x.log",
            "a/n2/x.log",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            choose(&paths, "velero/velero.log").unwrap(),
            "velero/velero.log"
        );
        assert_eq!(
            choose(&paths, "b1/velero/velero.log").unwrap(),
            "velero/velero.log"
        );
        assert_eq!(choose(&paths, "velero.log").unwrap(), "velero/velero.log");
        assert_eq!(choose(&paths, "n2/x.log").unwrap(), "a/n2/x.log");
        let err = choose(&paths, "x.log").unwrap_err();
        assert!(
            matches!(&err, BundleFileError::Ambiguous { candidates, .. } if candidates.len() == 2)
        );
        assert!(matches!(
            choose(&paths, "elero.log").unwrap_err(),
            BundleFileError::NotFound { .. }
        ));
    }

    #[test]
    fn copies_raw_to_a_pipe_and_shows_controls_on_a_terminal() {
        let dir = tempfile::tempdir().unwrap();
        let path = archive(dir.path());
        let mut raw = Vec::new();
        copy(&path, "node-agent/n1/node-agent.log", &mut raw, false).unwrap();
        assert_eq!(raw, b"line\x1b[31m red\n");
        let mut shown = Vec::new();
        copy(&path, "node-agent/n1/node-agent.log", &mut shown, true).unwrap();
        let shown = String::from_utf8(shown).unwrap();
        assert!(!shown.contains('\x1b'), "{shown:?}");
        assert!(shown.ends_with(" red\n"), "{shown:?}");
    }
}

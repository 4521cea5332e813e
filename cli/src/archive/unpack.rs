//! A bundle's .tar.gz unpacked as hostile input: into a folder made for it alone, never one
//! that was there; regular files and folders only, each inside that folder; within a budget
//! counted as the archive inflates (entries.rs). `report`, `serve` and `download --extract`
//! all unpack through [`unpack_into_new_folder`].

use std::{
    ffi::OsString,
    fs::File,
    io,
    ops::ControlFlow,
    path::{Path, PathBuf},
};

use super::entries::{ArchiveError, Budget, LimitHit, data_end, read_entries};

/// How many `-N` names are tried beside a taken one.
const MAX_SUFFIX: u32 = 1000;

#[derive(Debug, thiserror::Error)]
pub(crate) enum UnpackError {
    #[error("opening {}: {source}", path.display())]
    Open { path: PathBuf, source: io::Error },
    #[error("making a new folder at {}: {source}", path.display())]
    NewFolder { path: PathBuf, source: io::Error },
    #[error("{}: {why}", archive.display())]
    Refused { archive: PathBuf, why: Refusal },
}

/// Why an archive was not unpacked (what it left is removed).
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refusal {
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error("unpacking: {0}")]
    Write(io::Error),
    #[error("an entry leaves the folder; refused")]
    Leaves,
}

/// `wanted`, or `wanted/name` when `wanted` ends in no name of its own (`.`, `..`, `/`): the
/// folder to make is always a new one, never the folder the user stands in.
pub(crate) fn folder_for(wanted: &Path, name: &str) -> PathBuf {
    match wanted.file_name() {
        Some(_) => wanted.to_path_buf(),
        None => wanted.join(name),
    }
}

/// Unpacks `archive` into a folder made for it (see [`new_folder`]); that folder's path. On
/// any refusal the folder is removed with what was unpacked into it.
pub(crate) fn unpack_into_new_folder(
    archive: &Path,
    wanted: &Path,
    budget: Budget,
) -> Result<PathBuf, UnpackError> {
    let file = File::open(archive).map_err(|source| UnpackError::Open {
        path: archive.to_path_buf(),
        source,
    })?;
    let folder = new_folder(wanted)?;
    match unpack_entries(file, &folder, budget) {
        Ok(()) => Ok(folder),
        Err(why) => {
            // Made by this run and holding only the files and folders it wrote.
            let _ = std::fs::remove_dir_all(&folder);
            Err(UnpackError::Refused {
                archive: archive.to_path_buf(),
                why,
            })
        }
    }
}

fn unpack_entries(file: File, folder: &Path, budget: Budget) -> Result<(), Refusal> {
    read_entries(file, budget, |entry| {
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_dir()) {
            return Ok(ControlFlow::Continue(()));
        }
        // Refused before any of it is written, rather than cut where the budget ends.
        if data_end(entry) > budget.bytes {
            let hit = LimitHit::Bytes {
                limit: budget.bytes,
                named: budget.bytes_named,
            };
            return Err(ArchiveError::Limit(hit).into());
        }
        // The tar crate refuses a path leaving `folder` (`..`, absolute, through a link).
        if !entry.unpack_in(folder).map_err(Refusal::Write)? {
            return Err(Refusal::Leaves);
        }
        Ok(ControlFlow::Continue(()))
    })
}

/// A folder made here: `wanted` when free, else the first free of `wanted-1`, `wanted-2`...
/// beside it. Each is made by one create_dir, which fails on a name already taken (a folder,
/// a file, a link) rather than opening it: a bundle never lands among files that were there
/// (`report bin.tar.gz`, run from $HOME, once replaced ~/bin/kubectl).
pub(crate) fn new_folder(wanted: &Path) -> Result<PathBuf, UnpackError> {
    let error = |source| UnpackError::NewFolder {
        path: wanted.to_path_buf(),
        source,
    };
    let Some(name) = wanted.file_name() else {
        return Err(error(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the path ends in no folder name of its own",
        )));
    };
    if let Some(parent) = wanted.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(error)?;
    }
    for n in 0..=MAX_SUFFIX {
        let candidate = match n {
            0 => wanted.to_path_buf(),
            n => {
                let mut numbered = OsString::from(name);
                numbered.push(format!("-{n}"));
                wanted.with_file_name(numbered)
            }
        };
        match private_folder(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(error(e)),
        }
    }
    Err(error(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("it and the names -1 to -{MAX_SUFFIX} beside it are taken"),
    )))
}

/// A new folder readable by its owner only (other users of the machine share /tmp), made so
/// at once rather than changed after.
#[cfg(unix)]
fn private_folder(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().mode(0o700).create(path)
}

#[cfg(not(unix))]
fn private_folder(path: &Path) -> io::Result<()> {
    std::fs::create_dir(path)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn archive_of(entries: &[(&str, &[u8])]) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        let gz = flate2::write::GzEncoder::new(file.reopen().unwrap(), Default::default());
        let mut tar = tar::Builder::new(gz);
        for (path, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            // set_path refuses `..`; the raw name field takes it, as a hostile archive would.
            let name = &mut h.as_old_mut().name;
            name[..path.len()].copy_from_slice(path.as_bytes());
            h.set_cksum();
            tar.append(&h, *data).unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap();
        file
    }

    /// A file whose ustar header says 0 bytes and whose PAX record says `data.len()`.
    fn archive_with_pax_size(data: &[u8]) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        let gz = flate2::write::GzEncoder::new(file.reopen().unwrap(), Default::default());
        let mut tar = tar::Builder::new(gz);
        let size = data.len().to_string();
        tar.append_pax_extensions([("size", size.as_bytes())])
            .unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_path("b/big").unwrap();
        h.set_size(0);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        // The builder copies all of `data` after the header, as the PAX size says it should.
        tar.append(&h, data).unwrap();
        tar.into_inner().unwrap().finish().unwrap();
        file
    }

    fn budget(bytes: u64) -> Budget {
        Budget::max_bytes(bytes)
    }

    #[test]
    fn a_pax_size_larger_than_the_header_s_counts_and_is_refused_before_writing() {
        let data = vec![7u8; 4096];
        let a = archive_with_pax_size(&data);
        let dir = tempfile::tempdir().unwrap();
        let into = dir.path().join("in");
        let e = unpack_into_new_folder(a.path(), &into, budget(1000)).unwrap_err();
        assert!(e.to_string().contains("more than 1000 bytes"), "{e}");
        assert!(!into.exists(), "the refused bundle's folder is left");
        // Under a cap it fits, the bytes written are the PAX size's.
        let folder = unpack_into_new_folder(a.path(), &into, budget(1 << 20)).unwrap();
        assert_eq!(folder, into);
        assert_eq!(std::fs::read(into.join("b/big")).unwrap(), data);
    }

    #[cfg(unix)]
    #[test]
    fn what_is_unpacked_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let a = archive_of(&[("b/report.html", b"<html>")]);
        let dir = tempfile::tempdir().unwrap();
        let into = dir.path().join("in");
        unpack_into_new_folder(a.path(), &into, budget(1 << 20)).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&into), 0o700);
        // Folders made on the way keep the umask's mode: the top one already shuts others out.
        assert_eq!(
            mode(&into.join("b/report.html")) & 0o077,
            0,
            "file readable by others"
        );
    }

    #[cfg(unix)]
    #[test]
    fn an_archive_named_after_a_taken_folder_leaves_it_as_it_was() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(bin.join("kubectl"), b"the real kubectl").unwrap();
        std::fs::set_permissions(bin.join("kubectl"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        // A name taken by a file is passed over too.
        std::fs::write(dir.path().join("bin-2"), b"a file").unwrap();
        let snapshot = |p: &Path| {
            let mut files: Vec<(String, u32, Vec<u8>)> = std::fs::read_dir(p)
                .unwrap()
                .map(|e| {
                    let path = e.unwrap().path();
                    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
                    let name = path.file_name().unwrap().to_string_lossy().into_owned();
                    (name, mode, std::fs::read(&path).unwrap())
                })
                .collect();
            files.sort();
            (std::fs::metadata(p).unwrap().permissions().mode(), files)
        };
        let before = snapshot(&bin);
        // Its entries at the archive's root, as `bin.tar.gz` unpacked from $HOME had them.
        let a = archive_of(&[("kubectl", b"evil"), ("b1/report.html", b"<html>")]);
        let first = unpack_into_new_folder(a.path(), &bin, budget(1 << 20)).unwrap();
        let second = unpack_into_new_folder(a.path(), &bin, budget(1 << 20)).unwrap();
        assert_eq!(snapshot(&bin), before, "the folder that was there changed");
        assert_eq!(first, dir.path().join("bin-1"));
        assert_eq!(second, dir.path().join("bin-3"));
        assert_eq!(std::fs::read(first.join("kubectl")).unwrap(), b"evil");
        assert_eq!(std::fs::read(dir.path().join("bin-2")).unwrap(), b"a file");
    }

    #[test]
    fn a_path_without_a_name_of_its_own_gets_the_bundle_s() {
        assert_eq!(folder_for(Path::new("."), "b1"), Path::new("./b1"));
        assert_eq!(folder_for(Path::new("a/.."), "b1"), Path::new("a/../b1"));
        assert_eq!(folder_for(Path::new("out/x"), "b1"), Path::new("out/x"));
        let e = new_folder(Path::new("..")).unwrap_err();
        assert!(e.to_string().contains("no folder name"), "{e}");
    }

    #[test]
    fn every_gzip_member_is_unpacked() {
        use crate::archive::summary::fixtures::gzip_member;
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("b.tar.gz");
        let mut bytes = gzip_member(&[("b1/summary.md", b"# hi")], false);
        bytes.extend(gzip_member(&[("b1/logs/velero.log", b"log")], true));
        std::fs::write(&archive, bytes).unwrap();
        let out =
            unpack_into_new_folder(&archive, &dir.path().join("out"), budget(1 << 20)).unwrap();
        let read = |p: &str| std::fs::read_to_string(out.join(p)).unwrap();
        assert_eq!(read("b1/summary.md"), "# hi");
        assert_eq!(read("b1/logs/velero.log"), "log");
    }

    #[test]
    fn an_entry_leaving_the_folder_and_a_bundle_too_big_are_refused() {
        let a = archive_of(&[("../evil.html", b"x")]);
        let dir = tempfile::tempdir().unwrap();
        let into = dir.path().join("in");
        let e = unpack_into_new_folder(a.path(), &into, budget(1 << 20)).unwrap_err();
        assert!(e.to_string().contains("leaves the folder"), "{e}");
        assert!(!dir.path().join("evil.html").exists());
        let big = archive_of(&[("b/a", &[0u8; 600]), ("b/b", &[0u8; 600])]);
        let e = unpack_into_new_folder(big.path(), &into, budget(1000)).unwrap_err();
        assert!(e.to_string().contains("more than 1000 bytes"), "{e}");
    }
}

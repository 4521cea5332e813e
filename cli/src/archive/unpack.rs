//! A bundle's .tar.gz unpacked as hostile input: regular files and folders only, each inside
//! the folder, no more bytes than asked. `report`, `serve` and `download --extract` all unpack
//! bundles so, through [`unpack_bounded`] alone.

use std::path::Path;

use anyhow::{Context, bail};

/// Unpacks regular files and folders only, each inside `dir` (the tar crate refuses a path
/// leaving it), and stops at `max_bytes` inflated: a bundle from elsewhere is hostile input.
pub(crate) fn unpack_bounded(archive: &Path, dir: &Path, max_bytes: u64) -> anyhow::Result<()> {
    // A folder made here is private; one the user named (`report --dir .`) keeps its mode.
    let made = !dir.exists();
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    if made {
        owner_only(dir)?;
    }
    let file =
        std::fs::File::open(archive).with_context(|| format!("opening {}", archive.display()))?;
    let mut tar = tar::Archive::new(flate2::read::MultiGzDecoder::new(file));
    // What a bundle holds is for the user alone: folders at most 0700, files at most 0600,
    // whatever modes the archive asks for.
    tar.set_mask(0o077);
    let mut total = 0u64;
    for entry in tar.entries().context("reading the archive")? {
        let mut entry = entry.context("reading the archive")?;
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_dir()) {
            continue;
        }
        // The size the entry will write: a PAX `size` record overrides the header's field,
        // and the entry's reader stops there, so the count bounds what is written.
        total = total.saturating_add(entry.size());
        if total > max_bytes {
            bail!(
                "{}: more than {max_bytes} bytes unpacked; refusing the rest (--max-bytes)",
                archive.display()
            );
        }
        let unpacked = entry
            .unpack_in(dir)
            .with_context(|| format!("unpacking {}", archive.display()))?;
        if !unpacked {
            bail!("{}: an entry leaves the folder; refused", archive.display());
        }
    }
    Ok(())
}

/// The unpacked folder readable by its owner only (other users of the machine share /tmp).
#[cfg(unix)]
fn owner_only(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("making {} private", dir.display()))
}

#[cfg(not(unix))]
fn owner_only(_dir: &Path) -> anyhow::Result<()> {
    Ok(())
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

    #[test]
    fn a_pax_size_larger_than_the_header_s_counts_and_is_refused_before_writing() {
        let data = vec![7u8; 4096];
        let a = archive_with_pax_size(&data);
        let dir = tempfile::tempdir().unwrap();
        let e = unpack_bounded(a.path(), dir.path(), 1000).unwrap_err();
        assert!(format!("{e:#}").contains("more than 1000 bytes"), "{e:#}");
        assert!(
            !dir.path().join("b/big").exists(),
            "written before the check"
        );
        // Under a cap it fits, the bytes written are the PAX size's.
        let dir = tempfile::tempdir().unwrap();
        unpack_bounded(a.path(), dir.path(), 1 << 20).unwrap();
        assert_eq!(std::fs::read(dir.path().join("b/big")).unwrap(), data);
    }

    #[cfg(unix)]
    #[test]
    fn what_is_unpacked_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let a = archive_of(&[("b/report.html", b"<html>")]);
        let dir = tempfile::tempdir().unwrap();
        let into = dir.path().join("in");
        unpack_bounded(a.path(), &into, 1 << 20).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&into), 0o700);
        // Folders made on the way keep the umask's mode: the top one already shuts others out.
        assert_eq!(
            mode(&into.join("b/report.html")) & 0o077,
            0,
            "file readable by others"
        );
    }

    #[test]
    fn every_gzip_member_is_unpacked() {
        use crate::archive::summary::fixtures::gzip_member;
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("b.tar.gz");
        let mut bytes = gzip_member(&[("b1/summary.md", b"# hi")], false);
        bytes.extend(gzip_member(&[("b1/logs/velero.log", b"log")], true));
        std::fs::write(&archive, bytes).unwrap();
        let out = dir.path().join("out");
        unpack_bounded(&archive, &out, 1 << 20).unwrap();
        let read = |p: &str| std::fs::read_to_string(out.join(p)).unwrap();
        assert_eq!(read("b1/summary.md"), "# hi");
        assert_eq!(read("b1/logs/velero.log"), "log");
    }

    #[test]
    fn an_entry_leaving_the_folder_and_a_bundle_too_big_are_refused() {
        let a = archive_of(&[("../evil.html", b"x")]);
        let dir = tempfile::tempdir().unwrap();
        let e = unpack_bounded(a.path(), &dir.path().join("in"), 1 << 20).unwrap_err();
        assert!(format!("{e:#}").contains("leaves the folder"), "{e:#}");
        assert!(!dir.path().join("evil.html").exists());
        let big = archive_of(&[("b/a", &[0u8; 600]), ("b/b", &[0u8; 600])]);
        let e = unpack_bounded(big.path(), dir.path(), 1000).unwrap_err();
        assert!(format!("{e:#}").contains("more than 1000 bytes"), "{e:#}");
    }
}

//! A bundle's .tar.gz unpacked as hostile input: regular files and folders only, each inside
//! the folder, no more bytes than asked. `report` and `serve` both read bundles so.

use std::{io::Read, path::Path};

use anyhow::{Context, bail};

/// Unpacks regular files and folders only, each inside `dir` (the tar crate refuses a path
/// leaving it), and stops at `max_bytes` inflated: a bundle from elsewhere is hostile input.
pub(crate) fn unpack_bounded(archive: &Path, dir: &Path, max_bytes: u64) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let file =
        std::fs::File::open(archive).with_context(|| format!("opening {}", archive.display()))?;
    let mut tar = tar::Archive::new(flate2::read::MultiGzDecoder::new(file));
    let mut total = 0u64;
    for entry in tar.entries().context("reading the archive")? {
        let mut entry = entry.context("reading the archive")?;
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_dir()) {
            continue;
        }
        total = total.saturating_add(entry.header().size().unwrap_or(u64::MAX));
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
        // An entry whose header understates its size is not read past it.
        let mut rest = [0u8; 1];
        if entry.read(&mut rest).unwrap_or(0) != 0 {
            bail!(
                "{}: an entry is larger than its header says",
                archive.display()
            );
        }
    }
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

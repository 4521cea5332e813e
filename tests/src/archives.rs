//! Bundle archives: downloaded through their presigned URL and checked against their status,
//! unpacked (refusing what a user could not extract safely), and read file by file.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail, ensure};
use velero_debug_crd::{DebugBundle, Phase};

use crate::bundles::condition_reason;

/// Downloads the bundle through its presigned URL with plain HTTP and checks the sha256.
pub async fn download(b: &DebugBundle) -> Result<BTreeMap<String, Vec<u8>>> {
    let status = b.status.as_ref().context("no status")?;
    ensure!(
        status.phase == Some(Phase::Completed),
        "bundle not Completed: {}",
        condition_reason(b)
    );
    let url = status.download_url.as_ref().context("no URL")?;
    let resp = reqwest::get(url).await?;
    ensure!(resp.status() == 200, "GET {url}: {}", resp.status());
    let bytes = resp.bytes().await?;
    let archive = status.archive.as_ref().context("no archive status")?;
    ensure!(sha256_hex(&bytes) == archive.sha256, "sha256 differs");
    ensure!(bytes.len() as i64 == archive.size_bytes, "size differs");
    let files = untar(&bytes)?;
    ensure!(
        files.len() as i32 == archive.file_count,
        "file count differs"
    );
    // Strip the bundle's root folder.
    Ok(files
        .into_iter()
        .map(|(k, v)| {
            (
                k.split_once('/').map(|(_, p)| p.to_string()).unwrap_or(k),
                v,
            )
        })
        .collect())
}

/// The path of the bundle's one Velero server log (`logs/velero/<pod>/velero.log`); an error
/// when there is none or more than one.
pub fn server_log(files: &BTreeMap<String, Vec<u8>>) -> Result<&String> {
    let logs: Vec<&String> = files
        .keys()
        .filter(|k| k.starts_with("logs/velero/") && k.ends_with("/velero.log"))
        .collect();
    ensure!(logs.len() == 1, "server logs: {logs:?}");
    Ok(logs[0])
}

pub fn text(files: &BTreeMap<String, Vec<u8>>, path: &str) -> Result<String> {
    let bytes = files.get(path).with_context(|| {
        format!(
            "{path} not in bundle: {:?}",
            files.keys().collect::<Vec<_>>()
        )
    })?;
    Ok(String::from_utf8_lossy(bytes).into_owned())
}

/// Every file of a tar.gz (all its gzip members: the operator writes summary.md and
/// manifest.json in a first one), by path; an error unless the archive is one a user can extract
/// safely: every entry a regular file (no link, device or folder entry) under one common root
/// folder, its path relative, of UTF-8 components that are neither empty, `.` nor `..` and
/// hold no `\` or control character, and no name given twice, even ignoring case, or given to
/// both a file and a folder.
pub fn untar(bytes: &[u8]) -> Result<std::collections::BTreeMap<String, Vec<u8>>> {
    use std::{collections::BTreeSet, io::Read};
    let mut archive = tar::Archive::new(flate2::read::MultiGzDecoder::new(bytes));
    let mut files = std::collections::BTreeMap::new();
    let mut root_folder: Option<String> = None;
    // Lowercased: names differing only in case overwrite each other on macOS and Windows.
    let mut file_names = BTreeSet::new();
    let mut folder_names = BTreeSet::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        // The raw name (GNU long name or PAX path included), not one the OS reinterprets.
        let path = String::from_utf8(entry.path_bytes().into_owned())
            .map_err(|e| anyhow::anyhow!("entry name not UTF-8: {:?}", e.as_bytes()))?;
        let kind = entry.header().entry_type();
        if !kind.is_file() {
            bail!("entry {path:?} is not a regular file: {kind:?}");
        }
        let components: Vec<&str> = path.split('/').collect();
        if let Some(bad) = components.iter().find(|c| {
            c.is_empty()
                || **c == "."
                || **c == ".."
                || c.contains(|ch: char| ch == '\\' || ch.is_control())
        }) {
            bail!("entry {path:?} has the component {bad:?} (or is absolute)");
        }
        let [first, .., _] = components.as_slice() else {
            bail!("entry {path:?} is not in a root folder");
        };
        let root = root_folder.get_or_insert_with(|| first.to_string());
        if root.as_str() != *first {
            bail!("entry {path:?} is not under the root folder {root:?}");
        }
        for depth in 1..components.len() {
            let folder = components[..depth].join("/").to_lowercase();
            if file_names.contains(&folder) {
                bail!("entry {path:?} is in a folder that is also a file");
            }
            folder_names.insert(folder);
        }
        let key = path.to_lowercase();
        if folder_names.contains(&key) || !file_names.insert(key) {
            bail!("entry {path:?} is in the archive twice (or is also a folder)");
        }
        let mut content = Vec::new();
        entry.read_to_end(&mut content)?;
        files.insert(path, content);
    }
    Ok(files)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[cfg(test)]
mod untar_tests {
    use super::untar;

    /// A tar.gz of `(name, entry type)` entries, names written raw (the tar crate's builder
    /// refuses some of these).
    fn archive(entries: &[(&str, tar::EntryType)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        for (name, kind) in entries {
            let mut header = tar::Header::new_gnu();
            header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            header.set_entry_type(*kind);
            header.set_size(if kind.is_file() { 1 } else { 0 });
            header.set_mode(0o644);
            header.set_cksum();
            let data: &[u8] = if kind.is_file() { b"x" } else { b"" };
            builder.append(&header, data).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn every_gzip_member_is_read() {
        let mut first = files(&["b/summary.md"]);
        // The first member without the end-of-archive marker, as the operator writes it.
        let mut tar = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&first[..]), &mut tar)
            .unwrap();
        tar.truncate(tar.len() - 1024);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        first = gz.finish().unwrap();
        first.extend(files(&["b/logs/velero.log"]));
        let read = untar(&first).unwrap();
        assert_eq!(
            read.keys().collect::<Vec<_>>(),
            ["b/logs/velero.log", "b/summary.md"]
        );
    }

    fn files(names: &[&str]) -> Vec<u8> {
        let entries: Vec<_> = names
            .iter()
            .map(|n| (*n, tar::EntryType::Regular))
            .collect();
        archive(&entries)
    }

    #[test]
    fn a_well_formed_bundle_is_read() {
        let read = untar(&files(&["b/summary.md", "b/logs/velero/p/velero.log"])).unwrap();
        assert_eq!(
            read.keys().collect::<Vec<_>>(),
            ["b/logs/velero/p/velero.log", "b/summary.md"]
        );
    }

    #[test]
    fn unsafe_names_are_refused() {
        for names in [
            &["/b/abs"][..],
            &["b/../../etc/passwd"],
            &["b/./x"],
            &["b//x"],
            &["b/x/"],
            &["b\\..\\x"],
            &["b/x\ty"],
            &["toplevel"],
            &["b/x", "c/y"],
            &["b/x", "b/x"],
            &["b/x", "b/X"],
            &["b/x", "b/x/y"],
            &["b/x/y", "b/x"],
        ] {
            assert!(untar(&files(names)).is_err(), "{names:?} accepted");
        }
    }

    #[test]
    fn links_devices_and_folders_are_refused() {
        for kind in [
            tar::EntryType::Symlink,
            tar::EntryType::Link,
            tar::EntryType::Char,
            tar::EntryType::Block,
            tar::EntryType::Fifo,
            tar::EntryType::Directory,
        ] {
            let bytes = archive(&[("b/ok", tar::EntryType::Regular), ("b/x", kind)]);
            assert!(untar(&bytes).is_err(), "{kind:?} accepted");
        }
    }
}

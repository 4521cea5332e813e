//! `report`: a bundle's report.html (the operator writes it into every bundle), unpacked with
//! the rest of the bundle so its links work, then opened in the user's browser, or its path
//! printed where there is none. The bundle is a file here, or a DebugBundle downloaded first.

use std::{
    io::Read,
    path::{Path, PathBuf},
};

use anyhow::{Context, bail};
use kube::Api;
use velero_debug_crd::DebugBundle;

use super::{archive, parse_timeout};
use crate::{args::ReportArgs, exit::ExitStatus};

/// `report FILE.tar.gz`: no cluster needed.
pub(crate) fn from_file(args: &ReportArgs) -> anyhow::Result<ExitStatus> {
    let archive = Path::new(&args.bundle);
    let stem = archive
        .file_name()
        .and_then(|n| n.to_str())
        .map(|n| n.trim_end_matches(".tar.gz").trim_end_matches(".tgz"))
        .unwrap_or("bundle");
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from(stem));
    show(archive, &dir, args)
}

/// `report NAME`: the DebugBundle's archive downloaded (and verified) first.
pub(crate) async fn from_cluster(
    api: &Api<DebugBundle>,
    args: &ReportArgs,
) -> anyhow::Result<ExitStatus> {
    let bundle = api.get(&args.bundle).await?;
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.bundle));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("{}.tar.gz", args.bundle));
    archive::save(api, bundle, &path, parse_timeout(&args.timeout)?).await?;
    show(&path, &dir, args)
}

fn show(archive: &Path, dir: &Path, args: &ReportArgs) -> anyhow::Result<ExitStatus> {
    unpack_bounded(archive, dir, args.max_bytes)?;
    let report = find_report(dir)?;
    println!("{}", report.display());
    if args.no_open {
        return Ok(ExitStatus::Success);
    }
    match open_in_browser(&report) {
        Some(how) => eprintln!("opened with {how}"),
        None => eprintln!(
            "no browser here (no $BROWSER, DISPLAY or WAYLAND_DISPLAY): open the file above"
        ),
    }
    Ok(ExitStatus::Success)
}

/// Unpacks regular files and folders only, each inside `dir` (the tar crate refuses a path
/// leaving it), and stops at `max_bytes` inflated: a bundle from elsewhere is hostile input.
fn unpack_bounded(archive: &Path, dir: &Path, max_bytes: u64) -> anyhow::Result<()> {
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

/// `DIR/<bundle folder>/report.html`.
fn find_report(dir: &Path) -> anyhow::Result<PathBuf> {
    for entry in std::fs::read_dir(dir)? {
        let candidate = entry?.path().join("report.html");
        if candidate.is_file() {
            return Ok(std::fs::canonicalize(&candidate)?);
        }
    }
    bail!(
        "no report.html in {}: the bundle was made by an operator older than 0.2",
        dir.display()
    )
}

/// `$BROWSER`, else the desktop's opener when there is a display; what was used.
fn open_in_browser(report: &Path) -> Option<String> {
    let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
    let opener = var("BROWSER").or_else(|| {
        if cfg!(target_os = "macos") {
            Some("open".into())
        } else if var("DISPLAY").is_some() || var("WAYLAND_DISPLAY").is_some() {
            Some("xdg-open".into())
        } else {
            None
        }
    })?;
    std::process::Command::new(&opener)
        .arg(report)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()
        .map(|_| opener)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive_of(entries: &[(&str, &[u8])]) -> tempfile::NamedTempFile {
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
    fn the_report_is_found_in_the_bundles_folder() {
        let a = archive_of(&[
            ("b1/report.html", b"<!DOCTYPE html>"),
            ("b1/summary.md", b"x"),
        ]);
        let dir = tempfile::tempdir().unwrap();
        unpack_bounded(a.path(), dir.path(), 1 << 20).unwrap();
        let report = find_report(dir.path()).unwrap();
        assert!(report.ends_with("b1/report.html"));
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

    #[test]
    fn no_report_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let e = find_report(dir.path()).unwrap_err();
        assert!(e.to_string().contains("no report.html"));
    }
}

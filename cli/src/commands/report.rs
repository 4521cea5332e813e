//! `report`: a bundle's report.html (the operator writes it into every bundle), unpacked with
//! the rest of the bundle so its links work, then opened in the user's browser, or its path
//! printed where there is none. The bundle is a file here, or a DebugBundle downloaded first.
//! A bundle may come from anyone: it is unpacked only into a folder made for it, and opened
//! only when every page in it has the shape the operator writes (archive/pages.rs).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use kube::Api;
use velero_debug_crd::DebugBundle;

use super::{archive, parse_timeout};
use crate::{
    archive::{
        entries::Budget,
        pages::every_page_ours,
        unpack::{folder_for, unpack_into_new_folder},
    },
    args::ReportArgs,
    exit::ExitStatus,
};

/// `report FILE.tar.gz`: no cluster needed.
pub(crate) fn from_file(args: &ReportArgs) -> anyhow::Result<ExitStatus> {
    let archive = Path::new(&args.bundle);
    let wanted = match &args.dir {
        Some(dir) => {
            let name = folder_named_after(archive).unwrap_or_else(|_| "bundle".into());
            folder_for(dir, &name)
        }
        None => PathBuf::from(folder_named_after(archive)?),
    };
    let folder = unpack(archive, &wanted, args.max_bytes)?;
    show(&folder, args)
}

/// The folder `report` unpacks `archive` into when none is named: its name without `.tar.gz`,
/// refused when that names no folder of its own (`..tar.gz` would unpack into the parent).
fn folder_named_after(archive: &Path) -> anyhow::Result<String> {
    let name = archive.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let stem = name.trim_end_matches(".tar.gz").trim_end_matches(".tgz");
    if matches!(stem.trim(), "" | "." | "..") {
        bail!(
            "{}: its name leaves no folder to unpack into; name one with --dir",
            archive.display()
        );
    }
    Ok(stem.to_string())
}

/// `report NAME`: the DebugBundle's archive downloaded (and verified) first, beside the
/// folder, then moved into it once unpacked.
pub(crate) async fn from_cluster(
    api: &Api<DebugBundle>,
    args: &ReportArgs,
) -> anyhow::Result<ExitStatus> {
    let bundle = api.get(&args.bundle).await?;
    let wanted = folder_for(
        args.dir.as_deref().unwrap_or(Path::new(&args.bundle)),
        &args.bundle,
    );
    let beside = match wanted.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(beside).with_context(|| format!("creating {}", beside.display()))?;
    let download = tempfile::Builder::new()
        .prefix(".velero-debug-")
        .tempdir_in(beside)
        .with_context(|| format!("creating a temporary folder in {}", beside.display()))?;
    let file_name = format!("{}.tar.gz", args.bundle);
    let path = download.path().join(&file_name);
    archive::save(api, bundle, &path, parse_timeout(&args.timeout)?).await?;
    let folder = unpack(&path, &wanted, args.max_bytes)?;
    keep_archive(&path, &folder.join(file_name));
    show(&folder, args)
}

/// Unpacks `archive` into a new folder (`wanted`, or a free name beside it); that folder.
fn unpack(archive: &Path, wanted: &Path, max_bytes: u64) -> anyhow::Result<PathBuf> {
    let folder = unpack_into_new_folder(archive, wanted, Budget::max_bytes(max_bytes))?;
    if folder != wanted {
        eprintln!(
            "{} is taken: unpacked into {}",
            wanted.display(),
            folder.display()
        );
    }
    Ok(folder)
}

/// Moves the downloaded archive into the bundle's folder, unless the bundle holds a file of
/// that name (the folder is new and this run's alone: nothing else can).
fn keep_archive(from: &Path, to: &Path) {
    let kept = match to.symlink_metadata() {
        Ok(_) => Err(format!("the bundle holds {}", to.display())),
        Err(_) => std::fs::rename(from, to).map_err(|e| e.to_string()),
    };
    if let Err(why) = kept {
        eprintln!("note: the archive is not kept: {why}");
    }
}

fn show(folder: &Path, args: &ReportArgs) -> anyhow::Result<ExitStatus> {
    let report = find_report(folder)?;
    println!("{}", report.display());
    if args.no_open {
        return Ok(ExitStatus::Success);
    }
    if let Err(why) = every_page_ours(folder) {
        eprintln!(
            "not opened: {why}. The bundle may come from anyone: read the file above as text, \
             not in a browser."
        );
        return Ok(ExitStatus::Error);
    }
    match open_in_browser(&report) {
        Some(how) => eprintln!("opened with {how}"),
        None => eprintln!(
            "no browser here (no $BROWSER, DISPLAY or WAYLAND_DISPLAY): open the file above"
        ),
    }
    Ok(ExitStatus::Success)
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
    use crate::archive::unpack::tests::archive_of;

    #[test]
    fn the_report_is_found_in_the_bundles_folder() {
        let a = archive_of(&[
            ("b1/report.html", b"<!DOCTYPE html>"),
            ("b1/summary.md", b"x"),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let folder = unpack(a.path(), &dir.path().join("b1"), 1 << 20).unwrap();
        let report = find_report(&folder).unwrap();
        assert!(
            report.ends_with("b1/b1/report.html"),
            "{}",
            report.display()
        );
    }

    #[test]
    fn a_bundle_named_after_a_taken_folder_lands_in_a_new_one_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        std::fs::write(bin.join("kubectl"), b"the real kubectl").unwrap();
        let a = archive_of(&[("kubectl", b"evil"), ("b1/report.html", b"<html>")]);
        let folder = unpack(a.path(), &bin, 1 << 20).unwrap();
        assert_eq!(folder, dir.path().join("bin-1"));
        let report = find_report(&folder).unwrap();
        assert!(
            report.ends_with("bin-1/b1/report.html"),
            "{}",
            report.display()
        );
        assert_eq!(
            std::fs::read(bin.join("kubectl")).unwrap(),
            b"the real kubectl"
        );
        assert_eq!(std::fs::read_dir(&bin).unwrap().count(), 1);
    }

    #[test]
    fn a_name_that_leaves_no_folder_of_its_own_is_refused() {
        for name in ["..tar.gz", ".tar.gz", " .. .tgz", "dir/..tar.gz"] {
            let e = folder_named_after(Path::new(name)).unwrap_err();
            assert!(e.to_string().contains("--dir"), "{name}: {e}");
        }
        assert_eq!(
            folder_named_after(Path::new("/tmp/why-restore.tar.gz")).unwrap(),
            "why-restore"
        );
    }

    #[test]
    fn a_scripted_page_from_a_bundle_is_not_opened() {
        let a = archive_of(&[(
            "b1/report.html",
            b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>",
        )]);
        let dir = tempfile::tempdir().unwrap();
        let folder = unpack(a.path(), &dir.path().join("in"), 1 << 20).unwrap();
        let e = every_page_ours(&folder).unwrap_err();
        assert!(
            e.to_string().contains("b1/report.html is not a page"),
            "{e}"
        );
        assert!(e.to_string().contains("head"), "{e}");
    }

    #[test]
    fn an_archive_kept_in_its_folder_never_replaces_a_file_of_the_bundle() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("a.tar.gz");
        std::fs::write(&from, b"archive").unwrap();
        let to = dir.path().join("kept.tar.gz");
        std::fs::write(&to, b"the bundle's own").unwrap();
        keep_archive(&from, &to);
        assert_eq!(std::fs::read(&to).unwrap(), b"the bundle's own");
        std::fs::remove_file(&to).unwrap();
        keep_archive(&from, &to);
        assert_eq!(std::fs::read(&to).unwrap(), b"archive");
    }

    #[test]
    fn no_report_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let e = find_report(dir.path()).unwrap_err();
        assert!(e.to_string().contains("no report.html"));
    }
}

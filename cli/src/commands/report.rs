//! `report`: a bundle's report.html (the operator writes it into every bundle), unpacked with
//! the rest of the bundle so its links work, then opened in the user's browser, or its path
//! printed where there is none. The bundle is a file here, or a DebugBundle downloaded first.
//! A bundle may come from anyone: its page is opened only when it has the shape the operator
//! writes (velero_debug_crd::report_page), a head whose policy forbids every script first.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use kube::Api;
use velero_debug_crd::{
    DebugBundle,
    report_page::{MAX_REPORT_PAGE_BYTES, check_report_page},
};

use super::{archive, parse_timeout};
use crate::{archive::unpack::unpack_bounded, args::ReportArgs, exit::ExitStatus};

/// `report FILE.tar.gz`: no cluster needed.
pub(crate) fn from_file(args: &ReportArgs) -> anyhow::Result<ExitStatus> {
    let archive = Path::new(&args.bundle);
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => folder_named_after(archive)?,
    };
    show(archive, &dir, args)
}

/// The folder `report` unpacks `archive` into when none is named: its name without `.tar.gz`,
/// refused when that names no folder of its own (`..tar.gz` would unpack into the parent).
fn folder_named_after(archive: &Path) -> anyhow::Result<PathBuf> {
    let name = archive.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let stem = name.trim_end_matches(".tar.gz").trim_end_matches(".tgz");
    if matches!(stem.trim(), "" | "." | "..") {
        bail!(
            "{}: its name leaves no folder to unpack into; name one with --dir",
            archive.display()
        );
    }
    Ok(PathBuf::from(stem))
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
    if let Err(why) = ours(&report) {
        eprintln!(
            "not opened: this report.html is not one the operator writes ({why}). The bundle \
             may come from anyone: read the file above as text, not in a browser."
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

/// Ok when the page at `report` has the operator's shape (read up to its size bound).
fn ours(report: &Path) -> anyhow::Result<()> {
    use std::io::Read;
    let mut page = Vec::new();
    std::fs::File::open(report)?
        .take(MAX_REPORT_PAGE_BYTES + 1)
        .read_to_end(&mut page)?;
    if page.len() as u64 > MAX_REPORT_PAGE_BYTES {
        bail!("more than {MAX_REPORT_PAGE_BYTES} bytes");
    }
    check_report_page(&page)?;
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

    #[test]
    fn the_report_is_found_in_the_bundles_folder() {
        let a = crate::archive::unpack::tests::archive_of(&[
            ("b1/report.html", b"<!DOCTYPE html>"),
            ("b1/summary.md", b"x"),
        ]);
        let dir = tempfile::tempdir().unwrap();
        unpack_bounded(a.path(), dir.path(), 1 << 20).unwrap();
        let report = find_report(dir.path()).unwrap();
        assert!(report.ends_with("b1/report.html"));
    }

    #[test]
    fn a_name_that_leaves_no_folder_of_its_own_is_refused() {
        for name in ["..tar.gz", ".tar.gz", " .. .tgz", "dir/..tar.gz"] {
            let e = folder_named_after(Path::new(name)).unwrap_err();
            assert!(e.to_string().contains("--dir"), "{name}: {e}");
        }
        assert_eq!(
            folder_named_after(Path::new("/tmp/why-restore.tar.gz")).unwrap(),
            PathBuf::from("why-restore")
        );
    }

    #[test]
    fn a_scripted_page_from_a_bundle_is_not_opened() {
        let a = crate::archive::unpack::tests::archive_of(&[(
            "b1/report.html",
            b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>",
        )]);
        let dir = tempfile::tempdir().unwrap();
        unpack_bounded(a.path(), dir.path(), 1 << 20).unwrap();
        let report = find_report(dir.path()).unwrap();
        let e = ours(&report).unwrap_err();
        assert!(e.to_string().contains("head"), "{e}");
    }

    #[test]
    fn no_report_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let e = find_report(dir.path()).unwrap_err();
        assert!(e.to_string().contains("no report.html"));
    }
}

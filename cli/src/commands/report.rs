//! `report`: a bundle's report.html (the operator writes it into every bundle), unpacked with
//! the rest of the bundle so its links work, then opened in the user's browser, or its path
//! printed where there is none. The bundle is a file here, or a DebugBundle downloaded first.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use kube::Api;
use velero_debug_crd::DebugBundle;

use super::{archive, parse_timeout};
use crate::{args::ReportArgs, exit::ExitStatus, unpack::unpack_bounded};

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
        let a = crate::unpack::tests::archive_of(&[
            ("b1/report.html", b"<!DOCTYPE html>"),
            ("b1/summary.md", b"x"),
        ]);
        let dir = tempfile::tempdir().unwrap();
        unpack_bounded(a.path(), dir.path(), 1 << 20).unwrap();
        let report = find_report(dir.path()).unwrap();
        assert!(report.ends_with("b1/report.html"));
    }

    #[test]
    fn no_report_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let e = find_report(dir.path()).unwrap_err();
        assert!(e.to_string().contains("no report.html"));
    }
}

//! `download`, `summary`, `logs` and `refresh-url`: the archive through its presigned URL,
//! re-signed by the operator when it expired or the store refuses it.

use std::{
    io::Write,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::bail;
use jiff::Timestamp;
use kube::Api;
use velero_debug_crd::{DebugBundle, printable};

use super::{parse_timeout, print_object};
use crate::{
    archive::{
        bundle_files,
        download::{self, DownloadError, UrlState},
        entries::Budget,
        summary,
        unpack::{folder_for, unpack_into_new_folder},
    },
    args::{DownloadArgs, LogsArgs, RefreshUrlArgs, SummaryArgs},
    cluster::refresh,
    exit::ExitStatus,
    print::output,
};

pub(crate) async fn print_summary(
    api: &Api<DebugBundle>,
    args: &SummaryArgs,
) -> anyhow::Result<ExitStatus> {
    let bundle = api.get(&args.name).await?;
    let (bundle, response) = open_archive(api, bundle, Duration::from_secs(120)).await?;
    let (size, _) = download::expected_archive(&bundle)?;
    let text = summary::summary_from_response(response, size).await?;
    print!("{}", printable(&text));
    Ok(ExitStatus::Success)
}

/// `refresh-url`: prints the new URL (its expiry on stderr), or the bundle as asked.
pub(crate) async fn refresh_url(
    api: &Api<DebugBundle>,
    args: &RefreshUrlArgs,
) -> anyhow::Result<ExitStatus> {
    let bundle = api.get(&args.name).await?;
    let bundle = refresh::refresh_url(api, &bundle, parse_timeout(&args.timeout)?).await?;
    match &args.output {
        Some(format) => print_object(&bundle, format)?,
        None => {
            let status = bundle.status.clone().unwrap_or_default();
            println!("{}", status.download_url.unwrap_or_default());
            if let Some(t) = status.download_url_expires_at {
                eprintln!("valid until {}", t.0);
            }
        }
    }
    Ok(ExitStatus::Success)
}

pub(crate) async fn download(
    api: &Api<DebugBundle>,
    args: &DownloadArgs,
) -> anyhow::Result<ExitStatus> {
    let to_stdout = args.output.as_deref() == Some(Path::new("-"));
    if to_stdout && args.extract.is_some() {
        bail!("--extract needs a file, not -o -");
    }
    if to_stdout && output::stdout_is_terminal() {
        bail!("refusing to write a tar.gz to a terminal: redirect stdout or use -o FILE");
    }
    let bundle = api.get(&args.name).await?;
    let timeout = parse_timeout(&args.timeout)?;
    if to_stdout {
        fetch_verified(api, bundle, timeout, Sink::Stdout).await?;
        return Ok(ExitStatus::Success);
    }
    let path = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.tar.gz", args.name)));
    let sha256 = save(api, bundle, &path, timeout).await?;
    eprintln!("{}: sha256 {sha256} verified", path.display());
    if let Some(wanted) = &args.extract {
        let wanted = folder_for(wanted, &args.name);
        let folder = unpack_into_new_folder(&path, &wanted, Budget::max_bytes(args.max_bytes))?;
        eprintln!("extracted into {}", folder.display());
    }
    Ok(ExitStatus::Success)
}

/// `logs`: the archive is downloaded into a temporary folder and verified before any of it is
/// printed.
pub(crate) async fn logs(api: &Api<DebugBundle>, args: &LogsArgs) -> anyhow::Result<ExitStatus> {
    let bundle = api.get(&args.name).await?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("bundle.tar.gz");
    save(api, bundle, &path, parse_timeout(&args.timeout)?).await?;
    let files = bundle_files::list(&path)?;
    let Some(wanted) = &args.file else {
        let rows: Vec<Vec<String>> = files
            .iter()
            .map(|f| vec![f.path.clone(), output::human_bytes(f.size as i64)])
            .collect();
        print!("{}", printable(&output::table(&["FILE", "SIZE"], &rows)));
        return Ok(ExitStatus::Success);
    };
    let paths: Vec<String> = files.into_iter().map(|f| f.path).collect();
    let chosen = bundle_files::choose(&paths, wanted)?;
    let mut stdout = std::io::stdout().lock();
    bundle_files::copy(&path, chosen, &mut stdout, output::stdout_is_terminal())?;
    stdout.flush()?;
    Ok(ExitStatus::Success)
}

/// Where a verified download goes.
enum Sink<'a> {
    Stdout,
    File(&'a Path),
}

/// Downloads the archive to `path`, checking its size and sha256; returns the sha256.
pub(super) async fn save(
    api: &Api<DebugBundle>,
    bundle: DebugBundle,
    path: &Path,
    timeout: Duration,
) -> anyhow::Result<String> {
    fetch_verified(api, bundle, timeout, Sink::File(path)).await
}

/// Streams the archive into `sink`, checking its size and sha256 on the way (a file is kept
/// only when both match); returns the sha256.
async fn fetch_verified(
    api: &Api<DebugBundle>,
    bundle: DebugBundle,
    timeout: Duration,
    sink: Sink<'_>,
) -> anyhow::Result<String> {
    let (bundle, response) = open_archive(api, bundle, timeout).await?;
    let (size, sha256) = download::expected_archive(&bundle)?;
    let expected = download::Expected {
        size,
        sha256: &sha256,
    };
    let bar = download::progress_bar(size);
    let chunks = response.bytes_stream();
    let result = match sink {
        Sink::Stdout => download::stream_verified(chunks, &expected, &bar).await,
        Sink::File(path) => download::save_verified(chunks, path, &expected, &bar).await,
    };
    bar.finish_and_clear();
    result?;
    Ok(sha256)
}

/// The bundle with a URL that works now, asking the operator for a new one if it expired.
async fn with_valid_url(
    api: &Api<DebugBundle>,
    bundle: DebugBundle,
    timeout: Duration,
) -> anyhow::Result<DebugBundle> {
    download::expected_archive(&bundle)?;
    match download::url_state(&bundle, Timestamp::now(), download::RENEW_MARGIN) {
        UrlState::Valid(_) => Ok(bundle),
        UrlState::NeedsRefresh => {
            eprintln!("the download URL expired; asking the operator for a new one");
            Ok(refresh::refresh_url(api, &bundle, timeout).await?)
        }
    }
}

fn current_url(bundle: &DebugBundle) -> anyhow::Result<String> {
    // Just signed: usable until it expires, even with a TTL under the renewal margin.
    match download::url_state(bundle, Timestamp::now(), jiff::SignedDuration::ZERO) {
        UrlState::Valid(url) => Ok(url),
        UrlState::NeedsRefresh => bail!("the operator signed no usable download URL"),
    }
}

/// Starts the archive's GET. A URL refused with 403 although its expiry is still ahead (a
/// clock apart from the store's, a rotated key) is re-signed once and tried again.
async fn open_archive(
    api: &Api<DebugBundle>,
    bundle: DebugBundle,
    timeout: Duration,
) -> anyhow::Result<(DebugBundle, reqwest::Response)> {
    let bundle = with_valid_url(api, bundle, timeout).await?;
    let (size, _) = download::expected_archive(&bundle)?;
    let client = download::http_client(download::READ_TIMEOUT)?;
    match download::get(&client, &current_url(&bundle)?, size).await {
        Err(DownloadError::HttpStatus { status }) if status == reqwest::StatusCode::FORBIDDEN => {
            eprintln!(
                "the object store refused the download URL; asking the operator for a new one"
            );
            let bundle = refresh::refresh_url(api, &bundle, timeout).await?;
            let response = download::get(&client, &current_url(&bundle)?, size).await?;
            Ok((bundle, response))
        }
        result => Ok((bundle, result?)),
    }
}

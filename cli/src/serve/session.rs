//! One `serve` session: unpack, load, bind 127.0.0.1, write the kubeconfig, answer until
//! Ctrl-C (or the --shell exits), then remove the temporary folder.

use std::{
    net::{Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use anyhow::{Context, bail};
use tempfile::TempDir;
use velero_debug_crd::{manifest::Manifest, printable};

use super::{
    access::Access,
    coverage::Coverage,
    downloads::{BundleTarget, DownloadRequests},
    kinds, kubeconfig,
    logs::LogIndex,
    objects::Store,
    server::{self, App, Bundle},
};
use crate::archive::{entries::Budget, unpack::unpack_into_new_folder};

pub(crate) struct Options {
    pub port: u16,
    pub shell: bool,
    pub max_bytes: u64,
}

/// The temporary folder of a session: in `parent` (--dir) or the system's.
pub(crate) fn temp_folder(parent: Option<&Path>) -> anyhow::Result<TempDir> {
    let builder = tempfile::Builder::new()
        .prefix("velero-debug-serve-")
        .tempdir_in(parent.map_or_else(std::env::temp_dir, Path::to_path_buf));
    builder.context("creating the temporary folder")
}

/// Serves `archive` until stopped; `temp` is removed when this returns.
pub(crate) async fn serve(temp: TempDir, archive: &Path, options: &Options) -> anyhow::Result<()> {
    let unpacked = unpack_into_new_folder(
        archive,
        &temp.path().join("bundle"),
        Budget::max_bytes(options.max_bytes),
    )?;
    let bundle = load(&unpacked)?;
    let namespace = target_namespace(&bundle.store, &bundle.target);
    let listener =
        tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, options.port)))
            .await
            .context("binding 127.0.0.1")?;
    let address = listener.local_addr()?;
    let base = format!("http://{address}");
    let access = Access::new(address.port()).context("making the server's token")?;
    let config = temp.path().join("kubeconfig");
    kubeconfig::write(
        &config,
        &access.server_url(&base),
        &access.token,
        &namespace,
    )
    .context("writing the kubeconfig")?;
    let how_to_stop = if options.shell {
        "exit the shell to stop"
    } else {
        "Ctrl-C stops"
    };
    eprintln!(
        "serving {} {} ({} objects) read-only at {base}; {how_to_stop}",
        bundle.target.kind,
        bundle.target.name,
        bundle.store.count()
    );
    println!("{}", config.display());
    let app = Arc::new(App {
        bundle,
        downloads: Mutex::new(DownloadRequests::default()),
        base,
        access,
    });
    let stop = stopped(options.shell, config.clone());
    axum::serve(listener, server::router(app))
        .with_graceful_shutdown(stop)
        .await
        .context("serving")?;
    temp.close().context("removing the temporary folder")
}

/// The bundle's root folder (the one holding manifest.json) loaded.
fn load(unpacked: &Path) -> anyhow::Result<Bundle> {
    let root = root_folder(unpacked)?;
    let bytes = std::fs::read(root.join("manifest.json")).context("reading manifest.json")?;
    // Fields a newer or an older operator writes or leaves out are tolerated; a field of the
    // wrong type is not.
    let manifest: Manifest = serde_json::from_slice(&bytes)
        .context("manifest.json is not a velero-debug manifest: not a velero-debug bundle")?;
    let store = Store::load(&root);
    if let Some(note) = kinds::columns_note(store.velero_version.as_deref()) {
        eprintln!("note: {note}");
    }
    if store.skipped_files > 0 {
        eprintln!(
            "warning: {} .yaml files of the bundle are not served: each over 16 MiB, or past 256 MiB of objects in all",
            store.skipped_files
        );
    }
    if let Some((path, why)) = &store.first_cut {
        let count = store.cut_files;
        let path = path
            .strip_prefix(&root)
            .unwrap_or(path)
            .display()
            .to_string();
        eprintln!(
            "warning: {count} .yaml files of the bundle are served only up to a document that \
             is not YAML or expands past the file's size (aliases); the first, {}: {}",
            printable(&path),
            printable(why)
        );
    }
    let mut target = BundleTarget {
        kind: manifest.target.kind,
        name: manifest.target.name,
        backup_of_restore: None,
    };
    if target.kind == "Restore" {
        target.backup_of_restore = store
            .find("velero.io", "restores", &target.name)
            .and_then(|r| r["spec"]["backupName"].as_str().map(String::from));
    }
    let coverage = Coverage::new(manifest.not_collected, store.held_plurals());
    Ok(Bundle {
        logs: LogIndex::load(&root),
        store,
        root,
        target,
        coverage,
    })
}

fn root_folder(unpacked: &Path) -> anyhow::Result<PathBuf> {
    for entry in std::fs::read_dir(unpacked)?.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir())
            && entry.path().join("manifest.json").is_file()
        {
            return Ok(entry.path());
        }
    }
    bail!("no manifest.json in the archive's folder: not a velero-debug bundle")
}

fn target_namespace(store: &Store, target: &BundleTarget) -> String {
    let plural = if target.kind == "Backup" {
        "backups"
    } else {
        "restores"
    };
    store
        .find("velero.io", plural, &target.name)
        .and_then(|o| o["metadata"]["namespace"].as_str().map(String::from))
        .unwrap_or_else(|| "velero".into())
}

/// Resolves when the session should end: Ctrl-C or SIGTERM; with --shell, when the shell
/// exits (Ctrl-C then belongs to the shell's programs).
async fn stopped(shell: bool, config: PathBuf) {
    if shell {
        let program = std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into());
        // Registered before the shell starts: a Ctrl-C for the shell's program leaves us be.
        let _interrupts = interrupts();
        match tokio::process::Command::new(&program)
            .env("KUBECONFIG", &config)
            .spawn()
        {
            Ok(mut child) => {
                let _ = child.wait().await;
            }
            Err(e) => eprintln!("error: starting {program}: {e}"),
        }
        return;
    }
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminated() => {}
    }
    eprintln!("stopping; removing the temporary folder");
}

#[cfg(unix)]
fn interrupts() -> Option<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok()
}

#[cfg(not(unix))]
fn interrupts() -> Option<()> {
    None
}

#[cfg(unix)]
async fn terminated() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            term.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn terminated() {
    std::future::pending().await
}

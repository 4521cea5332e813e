//! The image `make image` builds, run as a container would run it: its root filesystem
//! unpacked and mounted read-only, its entrypoint, user and environment, nothing of the host's
//! (operator-up.sh, VDO_OPERATOR_IMAGE). Bundles complete through it, over plain and HTTPS
//! (private CA) object stores, and its `probe` answers the chart's `helm test`.

use std::{path::PathBuf, time::Duration};

use anyhow::{Context, Result, ensure};
use velero_debug_e2e::{
    archives::{download, text},
    backups::real_backup,
    bundles::{apply_bundle, wait_completed},
    context::TestCtx,
    operators::restart_operators,
    stores::object_exists,
};

/// The OCI layout under test: VDO_IMAGE_DIR, else what `make image` wrote.
fn image_dir() -> Result<PathBuf> {
    let dir = std::env::var_os("VDO_IMAGE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| velero_debug_e2e::env::tests_dir().join("../target/image/oci"));
    ensure!(
        dir.join("index.json").is_file(),
        "no OCI image layout at {}: run 'make image'",
        dir.display()
    );
    Ok(dir)
}

#[tokio::test]
async fn serial_the_operator_runs_from_its_image_and_completes_bundles() -> Result<()> {
    let image = image_dir()?;
    restart_operators(1, &[("VDO_OPERATOR_IMAGE", image.display().to_string())]).await?;
    let outcome = from_the_image().await;
    // The working tree's operator again for the tests after this one, whatever happened.
    restart_operators(1, &[]).await?;
    outcome
}

/// With a context of its own: what it made is deleted before the operator is restarted.
async fn from_the_image() -> Result<()> {
    let t = &TestCtx::new().await?;
    let env = &t.env;
    let root = env.state_dir()?.join("image/rootfs");
    let pid = env.operator_pid("operator-0")?;
    process_is_contained(pid, &root)?;

    let (_, backup, _) = real_backup(t, "image").await?;
    for bsl in ["default", "tls-ca"] {
        let name = apply_bundle(
            t,
            serde_json::json!({"backup": backup, "storageLocation": bsl}),
        )
        .await?;
        let b = wait_completed(t, &name, Duration::from_secs(180)).await?;
        let key = &b
            .status
            .as_ref()
            .and_then(|s| s.archive.as_ref())
            .context("no archive")?
            .key;
        ensure!(
            object_exists(env, key).await?,
            "{bsl}: {key} not in the store"
        );
        if bsl == "default" {
            let files = download(&b).await?;
            ensure!(text(&files, "summary.md")?.contains(&backup));
        }
    }
    // Still the same process: nothing above restarted it.
    ensure!(env.operator_pid("operator-0")? == pid);

    let port = std::fs::read_to_string(env.state_dir()?.join("operator-0.metrics-port"))?;
    let readyz = format!("http://127.0.0.1:{}/readyz", port.trim());
    let answered = probe(&root, &readyz).await?;
    ensure!(answered.status.success(), "probe {readyz}: {answered:?}");
    ensure!(String::from_utf8_lossy(&answered.stdout).contains("HTTP 200"));
    let missing = format!("http://127.0.0.1:{}/no-such-path", port.trim());
    let refused = probe(&root, &missing).await?;
    ensure!(!refused.status.success(), "probe {missing} passed");
    Ok(())
}

/// What a container runtime promises: the image's user, a read-only root that is the image's,
/// and every file the process maps (binary, libraries) from that root.
fn process_is_contained(pid: u32, root: &std::path::Path) -> Result<()> {
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let status = std::fs::read_to_string(proc_dir.join("status"))?;
    let uids = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .context("no Uid line")?;
    ensure!(uids.split_whitespace().all(|u| u == "65532"), "uids {uids}");
    let gids = status
        .lines()
        .find_map(|l| l.strip_prefix("Gid:"))
        .context("no Gid line")?;
    ensure!(gids.split_whitespace().all(|g| g == "65532"), "gids {gids}");

    ensure!(
        std::fs::read_link(proc_dir.join("root"))? == root,
        "the process's root is not the image's {}",
        root.display()
    );
    // mountinfo fields: id parent major:minor root mount-point options ...
    let mountinfo = std::fs::read_to_string(proc_dir.join("mountinfo"))?;
    let root_mount = mountinfo
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .rfind(|f| f.len() > 5 && f[4] == "/")
        .context("no / in its mountinfo")?;
    ensure!(
        root_mount[5].split(',').any(|o| o == "ro"),
        "its / is mounted {}",
        root_mount[5]
    );
    let spool = mountinfo
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() > 5 && f[4] == "/spool")
        .context("no /spool mount")?;
    ensure!(
        spool[5].split(',').any(|o| o == "rw"),
        "/spool is {}",
        spool[5]
    );

    // Every file mapped into the process (binary, loader, libraries) is the image's copy:
    // the inode in /proc/<pid>/maps is that of the file under the unpacked root, not the
    // host's file of the same name.
    let maps = std::fs::read_to_string(proc_dir.join("maps"))?;
    let mut mapped: Vec<(u64, String)> = maps
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f.len() > 5 && f[5].starts_with('/'))
        .map(|f| Ok((f[4].parse()?, f[5].to_string())))
        .collect::<Result<_>>()?;
    mapped.sort();
    mapped.dedup();
    let root_text = root.display().to_string();
    let names: Vec<&str> = mapped.iter().map(|(_, p)| p.as_str()).collect();
    ensure!(
        names
            .iter()
            .any(|p| p.ends_with("/usr/local/bin/velero-debug-operator")),
        "the image's binary is not mapped: {names:?}"
    );
    ensure!(
        names.iter().any(|p| p.contains("libc.so")),
        "no libc: {names:?}"
    );
    for (inode, path) in &mapped {
        let inside = path.strip_prefix(&root_text).unwrap_or(path);
        let in_image = root.join(inside.trim_start_matches('/'));
        let meta = std::fs::metadata(&in_image)
            .with_context(|| format!("{path} is mapped but the image has no {inside}"))?;
        ensure!(
            std::os::unix::fs::MetadataExt::ino(&meta) == *inode,
            "{path} is mapped from a file that is not the image's {inside}"
        );
    }
    Ok(())
}

/// The image's binary as the chart's `helm test` runs it: `probe <url>`, as its user, in its
/// root.
async fn probe(root: &std::path::Path, url: &str) -> Result<std::process::Output> {
    Ok(tokio::process::Command::new("/usr/sbin/chroot")
        .arg("--userspec=65532:65532")
        .arg(root)
        .args(["/usr/local/bin/velero-debug-operator", "probe", url])
        .env_clear()
        .output()
        .await?)
}

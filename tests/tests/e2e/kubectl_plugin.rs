//! The built kubectl plugin (`kubectl-velero_debug`, cli/) driven as a user would, against the
//! real environment: create -> wait -> download -> verified -> extracted; a tampered archive;
//! an expired URL; a bundle that fails; completion. Output is not a terminal here, so it must
//! hold no control characters. run-e2e.sh builds the binary.

use std::{path::PathBuf, time::Duration};

use anyhow::{Context, Result, ensure};
use kube::Api;
use velero_debug_crd::DebugBundle;
use velero_debug_e2e::{
    backups::real_backup,
    bundles::wait_finished,
    cleanup::Cleanup,
    context::{TestCtx, unique_name},
    env::Env,
    polling::eventually,
    restores::partially_failed_restore,
    stores::object_exists,
};
use velero_debug_operator::velero::resource as velero_resource;

use velero_debug_e2e::{
    plugin::{bash_completion_script, binary, run, run_with, text},
    store_proxy::{Answer, StoreProxy},
};

#[tokio::test]
async fn create_wait_download_verify_and_extract_then_tampered_bytes_are_refused() -> Result<()> {
    let t = &TestCtx::new().await?;
    let (_, backup, _) = real_backup(t, "plugin").await?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("bundle.tar.gz");
    let name = unique_name("plugin");
    t.cleanup.object::<DebugBundle>(&t.env.namespace, &name);
    let file_arg = file.to_string_lossy().to_string();
    let out = run(
        &t.env,
        &[
            "create",
            "backup",
            &backup,
            "--name",
            &name,
            "--download",
            &file_arg,
        ],
    )
    .await?;
    ensure!(out.status.success(), "create --download: {}", text(&out));
    ensure!(file.exists(), "no archive at {file:?}: {}", text(&out));

    let extracted = dir.path().join("x");
    let extract_arg = extracted.to_string_lossy().to_string();
    let second = dir.path().join("again.tar.gz");
    let second_arg = second.to_string_lossy().to_string();
    let out = run(
        &t.env,
        &[
            "download",
            &name,
            "-o",
            &second_arg,
            "--extract",
            &extract_arg,
        ],
    )
    .await?;
    ensure!(out.status.success(), "download --extract: {}", text(&out));
    ensure!(
        std::fs::read(&file)? == std::fs::read(&second)?,
        "two downloads differ"
    );
    let summary = walk(&extracted)
        .into_iter()
        .find(|p| p.ends_with("summary.md"))
        .context("no summary.md extracted")?;
    ensure!(std::fs::read_to_string(summary)?.contains(&backup));

    let out = run(&t.env, &["summary", &name]).await?;
    ensure!(
        out.status.success() && text(&out).contains(&backup),
        "summary: {}",
        text(&out)
    );

    // The object is replaced in the bucket: the download fails its check and keeps nothing.
    let bundle = Api::<DebugBundle>::namespaced(t.client.clone(), &t.env.namespace)
        .get(&name)
        .await?;
    let status = bundle.status.context("no status")?;
    let archive = status.archive.context("no archive")?;
    // What `wait` showed: every step done, every byte of the archive uploaded.
    let progress = status.progress.context("no progress")?;
    ensure!(
        progress.items_done == progress.items_total
            && progress.bytes_uploaded == Some(archive.size_bytes)
            && progress.bytes_total == Some(archive.size_bytes),
        "progress at the end: {progress:?}, archive {} bytes",
        archive.size_bytes
    );
    let key = archive.key;
    t.env
        .s3_client(&t.env.s3.endpoint)
        .put_object()
        .bucket(&t.env.s3.bucket)
        .key(&key)
        .body(
            std::fs::read(&file)?
                .into_iter()
                .rev()
                .collect::<Vec<u8>>()
                .into(),
        )
        .send()
        .await?;
    let tampered = dir.path().join("tampered.tar.gz");
    let tampered_arg = tampered.to_string_lossy().to_string();
    let before = walk(dir.path());
    let out = run(&t.env, &["download", &name, "-o", &tampered_arg]).await?;
    ensure!(
        out.status.code() == Some(3),
        "a tampered archive: exit {:?}: {}",
        out.status.code(),
        text(&out)
    );
    ensure!(text(&out).contains("sha256"), "{}", text(&out));
    // Nothing kept: neither the file nor the part it was written through.
    let left: Vec<PathBuf> = walk(dir.path())
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    ensure!(left.is_empty(), "the tampered download left {left:?}");
    Ok(())
}

#[tokio::test]
async fn an_expired_url_is_signed_anew_and_the_download_succeeds() -> Result<()> {
    let t = &TestCtx::new().await?;
    let (_, backup, _) = real_backup(t, "plugin-url").await?;
    let name = unique_name("plugin-url");
    t.cleanup.object::<DebugBundle>(&t.env.namespace, &name);
    let out = run(
        &t.env,
        &[
            "create",
            "backup",
            &backup,
            "--name",
            &name,
            "--url-ttl",
            "1m",
            "--wait",
        ],
    )
    .await?;
    ensure!(out.status.success(), "create --wait: {}", text(&out));
    let done = wait_finished(t, &name, Duration::from_secs(30)).await?;
    let expires = done
        .status
        .as_ref()
        .and_then(|s| s.download_url_expires_at.clone())
        .context("no expiry")?
        .0;
    let left = expires.duration_since(jiff::Timestamp::now());
    tokio::time::sleep(Duration::try_from(left).unwrap_or_default() + Duration::from_secs(2)).await;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("late.tar.gz");
    let file_arg = file.to_string_lossy().to_string();
    let out = run(&t.env, &["download", &name, "-o", &file_arg]).await?;
    ensure!(
        out.status.success(),
        "download after expiry: {}",
        text(&out)
    );
    ensure!(file.exists());
    let after = wait_finished(t, &name, Duration::from_secs(5)).await?;
    let status = after.status.context("no status")?;
    ensure!(
        status.url_refreshed_for.is_some(),
        "the URL was not re-signed"
    );
    ensure!(
        status.download_url_expires_at.map(|t| t.0) > Some(expires),
        "the expiry did not move"
    );
    Ok(())
}

#[tokio::test]
async fn waiting_on_a_bundle_that_fails_exits_1_with_its_reason() -> Result<()> {
    let env = Env::load()?;
    let name = unique_name("plugin-fail");
    let cleanup = Cleanup::new(&env);
    cleanup.object::<DebugBundle>(&env.namespace, &name);
    let out = run(
        &env,
        &["create", "backup", "no-such-backup", "--name", &name],
    )
    .await?;
    ensure!(out.status.success(), "create: {}", text(&out));
    let out = run(&env, &["wait", &name, "--timeout", "2m"]).await?;
    ensure!(
        out.status.code() == Some(1),
        "wait: exit {:?}: {}",
        out.status.code(),
        text(&out)
    );
    ensure!(text(&out).contains("TargetNotFound"), "{}", text(&out));
    // kubectl's own wait ends on failure too (condition Finished), and the event's reason is
    // the condition's.
    let waited = tokio::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&env.kubeconfig)
        .args(["-n", &env.namespace, "wait", "--for=condition=Finished"])
        .arg(format!("debugbundle/{name}"))
        .arg("--timeout=10s")
        .output()
        .await?;
    ensure!(
        waited.status.success(),
        "kubectl wait --for=condition=Finished: {}",
        String::from_utf8_lossy(&waited.stderr)
    );
    // The operator records the event after the status write kubectl waited for.
    let client = env.client().await?;
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client, &env.namespace);
    let about = kube::api::ListParams::default().fields(&format!("regarding.name={name}"));
    eventually(
        &format!("a TargetNotFound event on DebugBundle {name}"),
        Duration::from_secs(30),
        || async {
            let listed = events.list(&about).await?.items;
            let found = listed
                .iter()
                .any(|e| e.reason.as_deref() == Some("TargetNotFound"));
            Ok(found.then_some(()))
        },
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn completion_for_bash_is_a_script_bash_accepts() -> Result<()> {
    let env = Env::load()?;
    let out = run(&env, &["completion", "bash"]).await?;
    ensure!(out.status.success(), "{}", text(&out));
    let dir = tempfile::tempdir()?;
    let script = dir.path().join("completion.bash");
    std::fs::write(&script, &out.stdout)?;
    let checked = tokio::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {} && complete -p kubectl-velero_debug",
            script.display()
        ))
        .output()
        .await?;
    ensure!(
        checked.status.success(),
        "bash refused the completion: {}",
        String::from_utf8_lossy(&checked.stderr)
    );
    Ok(())
}

/// `kubectl velero-debug <TAB>` through kubectl's own bash completion, with the plugin installed
/// as krew installs it (kubectl-velero_debug on PATH) and the shipped
/// kubectl_complete-velero_debug beside it: kubectl asks the plugin, the plugin asks the
/// cluster. Returns COMPREPLY.
async fn complete_through_kubectl(env: &Env, words: &[&str]) -> Result<Vec<String>> {
    let bin = tempfile::tempdir()?;
    let repo = velero_debug_e2e::env::tests_dir().join("..");
    std::os::unix::fs::symlink(binary(), bin.path().join("kubectl-velero_debug"))?;
    std::os::unix::fs::symlink(
        repo.join("cli/kubectl_complete-velero_debug")
            .canonicalize()?,
        bin.path().join("kubectl_complete-velero_debug"),
    )?;
    let line = format!("kubectl velero-debug {}", words.join(" "));
    let script = format!(
        r#"source '{bash_completion}'
source <(kubectl completion bash)
COMP_WORDS=(kubectl velero-debug {words})
COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1))
COMP_LINE='{line}'
COMP_POINT=${{#COMP_LINE}}
__start_kubectl
printf '%s\n' "${{COMPREPLY[@]}}""#,
        words = words
            .iter()
            .map(|w| format!("'{w}'"))
            .collect::<Vec<_>>()
            .join(" "),
        bash_completion = bash_completion_script()?.display(),
    );
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = tokio::process::Command::new("bash")
        .args(["-c", &script])
        .env("PATH", path)
        .env("KUBECONFIG", &env.kubeconfig)
        .env("VELERO_NAMESPACE", &env.namespace)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), out).await??;
    ensure!(
        out.status.success(),
        "bash completion failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

#[tokio::test]
async fn kubectl_completes_bundle_names_through_the_shipped_completion_helper() -> Result<()> {
    let t = &TestCtx::new().await?;
    // Two bundles sharing a prefix, one that does not: only the two are offered.
    let stem = unique_name("cmpl");
    let names = [format!("{stem}-a"), format!("{stem}-b")];
    let other = unique_name("other");
    for name in names.iter().chain([&other]) {
        let bundle: DebugBundle = serde_json::from_value(serde_json::json!({
            "apiVersion": "velerodebug.io/v1alpha1", "kind": "DebugBundle",
            "metadata": {"name": name, "namespace": t.env.namespace},
            "spec": {"restore": "no-such-restore"},
        }))?;
        Api::<DebugBundle>::namespaced(t.client.clone(), &t.env.namespace)
            .create(&Default::default(), &bundle)
            .await?;
        t.cleanup.object::<DebugBundle>(&t.env.namespace, name);
    }
    let mut offered = complete_through_kubectl(&t.env, &["describe", &stem]).await?;
    offered.sort();
    ensure!(offered == names, "describe {stem}<TAB> offered {offered:?}");
    let subcommands = complete_through_kubectl(&t.env, &["des"]).await?;
    ensure!(
        subcommands == ["describe"],
        "des<TAB> offered {subcommands:?}"
    );
    Ok(())
}

/// The restore that just failed, without its name: picked, bundled, waited for, downloaded;
/// then read with `logs`, shown with -o name/jsonpath, completed by name, deleted.
#[tokio::test]
async fn create_restore_latest_failed_then_logs_get_and_delete() -> Result<()> {
    let t = &TestCtx::new().await?;
    let ours = partially_failed_restore(t).await?;
    let restores = Api::<kube::api::DynamicObject>::namespaced_with(
        t.client.clone(),
        &t.env.namespace,
        &velero_resource("Restore"),
    );
    let ours_ended = ended_at(&restores.get(&ours).await?)?;
    let offered = complete_through_kubectl(&t.env, &["create", "restore", &ours]).await?;
    ensure!(
        offered == [ours.clone()],
        "create restore {ours}<TAB> offered {offered:?}"
    );

    let dir = tempfile::tempdir()?;
    let file = dir.path().join("latest.tar.gz");
    let file_arg = file.to_string_lossy().to_string();
    let out = run(
        &t.env,
        &[
            "create",
            "restore",
            "--latest-failed",
            "--wait",
            "--download",
            &file_arg,
        ],
    )
    .await?;
    ensure!(
        out.status.success(),
        "create --latest-failed: {}",
        text(&out)
    );
    let name = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    t.cleanup.object::<DebugBundle>(&t.env.namespace, &name);
    ensure!(file.exists(), "no archive: {}", text(&out));

    // Ours, or one that other tests ended later still: never an older one.
    let out = run(&t.env, &["get", &name, "-o", "jsonpath={.spec.restore}"]).await?;
    ensure!(out.status.success(), "get -o jsonpath: {}", text(&out));
    let picked = String::from_utf8_lossy(&out.stdout).to_string();
    let picked_restore = restores.get(&picked).await?;
    let phase = picked_restore.data["status"]["phase"]
        .as_str()
        .unwrap_or_default();
    ensure!(
        matches!(phase, "Failed" | "PartiallyFailed") && ended_at(&picked_restore)? >= ours_ended,
        "picked {picked:?} ({phase}), older than {ours}"
    );
    ensure!(
        out.stderr.is_empty(),
        "get -o jsonpath warned: {}",
        text(&out)
    );
    let out = run(&t.env, &["get", &name, "-o", "name", "--no-headers"]).await?;
    ensure!(
        String::from_utf8_lossy(&out.stdout) == format!("debugbundle.velerodebug.io/{name}\n"),
        "-o name: {}",
        text(&out)
    );

    let out = run(&t.env, &["logs", &name]).await?;
    ensure!(
        out.status.success() && text(&out).contains("summary.md"),
        "logs: {}",
        text(&out)
    );
    let out = run(&t.env, &["logs", &name, "summary.md"]).await?;
    ensure!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains(&picked),
        "logs summary.md: {}",
        text(&out)
    );

    let key = Api::<DebugBundle>::namespaced(t.client.clone(), &t.env.namespace)
        .get(&name)
        .await?
        .status
        .and_then(|s| s.archive)
        .context("no archive in status")?
        .key;
    let out = run(&t.env, &["delete", &name]).await?;
    ensure!(
        out.status.success() && text(&out).contains("deleted"),
        "delete: {}",
        text(&out)
    );
    ensure!(
        Api::<DebugBundle>::namespaced(t.client.clone(), &t.env.namespace)
            .get_opt(&name)
            .await?
            .is_none(),
        "the bundle is still there after delete --wait"
    );
    ensure!(
        !object_exists(&t.env, &key).await?,
        "the archive {key} is still in the store"
    );
    Ok(())
}

fn ended_at(restore: &kube::api::DynamicObject) -> Result<String> {
    restore.data["status"]["completionTimestamp"]
        .as_str()
        .map(str::to_string)
        .context("a finished restore has a completionTimestamp")
}

/// A Completed bundle of a real backup, made with the plugin: the bundle as it is then.
async fn completed_with_plugin(t: &TestCtx, prefix: &str) -> Result<DebugBundle> {
    let (_, backup, _) = real_backup(t, prefix).await?;
    let name = unique_name(prefix);
    t.cleanup.object::<DebugBundle>(&t.env.namespace, &name);
    let out = run(
        &t.env,
        &["create", "backup", &backup, "--name", &name, "--wait"],
    )
    .await?;
    ensure!(out.status.success(), "create --wait: {}", text(&out));
    wait_finished(t, &name, Duration::from_secs(30)).await
}

/// The plugin run with its store requests sent through `proxy` (the kube API is https, so
/// `HTTP_PROXY` leaves it alone).
async fn run_through(
    t: &TestCtx,
    proxy: &StoreProxy,
    args: &[&str],
) -> Result<std::process::Output> {
    let vars = [("HTTP_PROXY", proxy.endpoint()), ("NO_PROXY", "")];
    run_with(&t.env, args, &vars).await
}

/// The query of the bundle's presigned URL: each of its values must stay unprinted.
fn signed_query(bundle: &DebugBundle) -> Result<Vec<String>> {
    let url = bundle
        .status
        .as_ref()
        .and_then(|s| s.download_url.clone())
        .context("no download URL")?;
    let query = url
        .split_once('?')
        .context("a presigned URL has a query")?
        .1;
    ensure!(query.contains("X-Amz-Signature="), "{url}");
    Ok(query
        .split('&')
        .filter_map(|p| p.split_once('=').map(|(_, v)| v.to_string()))
        .filter(|v| v.len() >= 8)
        .collect())
}

#[tokio::test]
async fn a_download_failing_mid_way_prints_no_signature_and_keeps_nothing() -> Result<()> {
    let t = &TestCtx::new().await?;
    let bundle = completed_with_plugin(t, "plugin-cut").await?;
    let name = bundle.metadata.name.clone().unwrap_or_default();
    let size = bundle
        .status
        .as_ref()
        .and_then(|s| s.archive.as_ref())
        .context("no archive")?
        .size_bytes as usize;
    let secrets = signed_query(&bundle)?;
    let dir = tempfile::tempdir()?;
    // Before any answer (reqwest names the URL of a request that got none), then half way
    // through the body.
    for answer in [Answer::CloseUnanswered, Answer::CutBody(size / 2)] {
        let proxy = StoreProxy::start(answer).await?;
        let file = dir.path().join("cut.tar.gz");
        let file_arg = file.to_string_lossy().to_string();
        let out = run_through(t, &proxy, &["download", &name, "-o", &file_arg]).await?;
        let shown = text(&out);
        ensure!(
            proxy.requests() >= 1,
            "{answer:?}: the download bypassed the proxy: {shown}"
        );
        ensure!(
            out.status.code() == Some(4),
            "{answer:?}: exit {:?}: {shown}",
            out.status.code()
        );
        for secret in secrets
            .iter()
            .map(String::as_str)
            .chain(["X-Amz-Signature", "X-Amz-Credential"])
        {
            ensure!(
                !shown.contains(secret),
                "{answer:?}: {secret:?} printed: {shown}"
            );
        }
        ensure!(
            shown.contains("download"),
            "{answer:?}: no clear error: {shown}"
        );
        let left = walk(dir.path());
        ensure!(
            left.is_empty(),
            "{answer:?}: the failed download left {left:?}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn summary_from_a_store_sending_an_endless_gzip_is_cut_at_the_cap() -> Result<()> {
    let t = &TestCtx::new().await?;
    let bundle = completed_with_plugin(t, "plugin-gzip").await?;
    let name = bundle.metadata.name.clone().unwrap_or_default();
    let proxy = StoreProxy::start(Answer::EndlessGzip).await?;
    let out = tokio::time::timeout(
        Duration::from_secs(90),
        run_through(t, &proxy, &["summary", &name]),
    )
    .await
    .context("summary kept reading an endless archive for 90 s")??;
    let shown = text(&out);
    ensure!(
        proxy.requests() == 1,
        "requests {}: {shown}",
        proxy.requests()
    );
    ensure!(
        out.status.code() == Some(4) && shown.contains("stopped reading there"),
        "exit {:?}: {shown}",
        out.status.code()
    );
    ensure!(!shown.contains("X-Amz-Signature"), "{shown}");
    // The plugin is gone, so the proxy's writes fail: what it sent is what socket buffers hold
    // past the cap, far below what an unbounded read would have taken in 90 s.
    eventually(
        "the endless answer to end",
        Duration::from_secs(10),
        || async { Ok((proxy.ended() == 1).then_some(())) },
    )
    .await?;
    ensure!(proxy.sent() < 32 << 20, "{} bytes sent", proxy.sent());
    Ok(())
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

//! The chart's uninstall hook (templates/uninstall-hook.yaml, `velero-debug-operator
//! uninstall`), run as the chart renders it, under the operator's ServiceAccount, against the
//! real API server: with the operator running, bundles and their archives go; with no
//! operator, no bundle keeps a finalizer and the archives left are collected once an operator
//! runs again; with `uninstall.deleteBundles=false` bundles and archives stay. Each restarts
//! or stops the operator, so their names start with `serial_`.

use std::{path::PathBuf, time::Duration};

use anyhow::{Context, Result, ensure};
use kube::{Api, ResourceExt};
use velero_debug_crd::{DebugBundle, FINALIZER};
use velero_debug_e2e::{
    backups::real_backup,
    bundles::{apply_bundle, bundle_gone, wait_completed},
    context::TestCtx,
    env::Env,
    operators::restart_operators,
    polling::eventually,
    stores::object_exists,
};

/// The hook Job's container arguments as the chart renders them with `set`.
async fn hook_args(set: &[&str]) -> Result<Vec<String>> {
    let helm = velero_debug_e2e::env::tests_dir().join("env/tools/helm.sh");
    let mut cmd = tokio::process::Command::new("bash");
    cmd.arg(helm).args([
        "template",
        "velero-debug-operator",
        "charts/velero-debug-operator",
        "--namespace",
        "velero",
        "--show-only",
        "templates/uninstall-hook.yaml",
    ]);
    for s in set {
        cmd.args(["--set", s]);
    }
    let out = cmd.output().await?;
    ensure!(
        out.status.success(),
        "helm template: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let yaml = String::from_utf8(out.stdout)?;
    ensure!(
        yaml.contains("helm.sh/hook: pre-delete"),
        "not a pre-delete hook:\n{yaml}"
    );
    ensure!(
        yaml.contains("serviceAccountName: velero-debug-operator\n"),
        "not the operator's ServiceAccount:\n{yaml}"
    );
    // The block list under `args:`, up to the next key.
    let args = yaml
        .lines()
        .skip_while(|l| l.trim() != "args:")
        .skip(1)
        .take_while(|l| l.trim_start().starts_with("- "))
        .map(|l| {
            l.trim_start()
                .trim_start_matches("- ")
                .trim_matches('"')
                .to_string()
        })
        .collect::<Vec<_>>();
    ensure!(
        args.first().map(String::as_str) == Some("uninstall"),
        "{yaml}"
    );
    Ok(args)
}

/// Runs the operator binary with the hook's arguments as the chart's ServiceAccount.
async fn run_hook(env: &Env, args: &[String]) -> Result<String> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| velero_debug_e2e::env::tests_dir().join("../target"));
    let out = tokio::process::Command::new(target.join("debug/velero-debug-operator"))
        .args(args)
        .env("KUBECONFIG", env.state_dir()?.join("operator-kubeconfig"))
        .env("VELERO_NAMESPACE", &env.namespace)
        .env("RUST_LOG", "info")
        .output()
        .await?;
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(out.status.success(), "the uninstall hook failed:\n{log}");
    Ok(log)
}

/// Two completed bundles of one backup; their names and archive keys.
async fn completed_bundles(t: &TestCtx, prefix: &str) -> Result<Vec<(String, String)>> {
    let (_, backup, _) = real_backup(t, prefix).await?;
    let mut made = Vec::new();
    for _ in 0..2 {
        let name = apply_bundle(t, serde_json::json!({"backup": backup})).await?;
        let done = wait_completed(t, &name, Duration::from_secs(180)).await?;
        let key = done
            .status
            .and_then(|s| s.archive)
            .context("no archive")?
            .key;
        ensure!(object_exists(&t.env, &key).await?, "{key} not uploaded");
        made.push((name, key));
    }
    Ok(made)
}

#[tokio::test]
async fn serial_uninstall_with_the_operator_running_deletes_bundles_and_archives() -> Result<()> {
    let t = &TestCtx::new().await?;
    restart_operators(1, &[]).await?;
    let made = completed_bundles(t, "uninstall").await?;
    let args = hook_args(&[]).await?;
    ensure!(args.contains(&"--delete-bundles".to_string()), "{args:?}");
    let log = run_hook(&t.env, &args).await?;
    for (name, key) in &made {
        bundle_gone(t, name, Duration::from_secs(5)).await?;
        ensure!(!object_exists(&t.env, key).await?, "{key} stayed:\n{log}");
        ensure!(
            !log.contains(key.as_str()),
            "{key} reported as left:\n{log}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn serial_uninstall_without_an_operator_leaves_no_finalizer_and_names_what_it_left()
-> Result<()> {
    let t = &TestCtx::new().await?;
    restart_operators(1, &[]).await?;
    let made = completed_bundles(t, "uninstall-alone").await?;
    restart_operators(0, &[]).await?;
    let mut args = hook_args(&["uninstall.timeoutSeconds=3"]).await?;
    ensure!(
        args.contains(&"--timeout-seconds=3".to_string()),
        "{args:?}"
    );
    args.retain(|a| !a.is_empty());
    let log = run_hook(&t.env, &args).await;
    // Whatever happened, an operator runs again for the next tests.
    restart_operators(1, &[]).await?;
    let log = log?;
    for (name, key) in &made {
        bundle_gone(t, name, Duration::from_secs(5)).await?;
        ensure!(
            log.contains(key.as_str()),
            "{key} not named as left:\n{log}"
        );
        // The operator's garbage collector takes it (the e2e operator sweeps every 3 s).
        eventually(
            "the archive left to be collected",
            Duration::from_secs(60),
            || async { Ok((!object_exists(&t.env, key).await?).then_some(())) },
        )
        .await?;
    }
    Ok(())
}

#[tokio::test]
async fn serial_uninstall_keeping_bundles_only_releases_finalizers() -> Result<()> {
    let t = &TestCtx::new().await?;
    restart_operators(1, &[]).await?;
    let made = completed_bundles(t, "uninstall-keep").await?;
    restart_operators(0, &[]).await?;
    let args = hook_args(&["uninstall.deleteBundles=false"]).await?;
    ensure!(!args.contains(&"--delete-bundles".to_string()), "{args:?}");
    let log = run_hook(&t.env, &args).await;
    let bundles: Api<DebugBundle> = Api::namespaced(t.client.clone(), &t.env.namespace);
    let mut released = Vec::new();
    for (name, _) in &made {
        released.push(bundles.get(name).await.map(|b| b.finalizers().to_vec()));
    }
    restart_operators(1, &[]).await?;
    log?;
    for ((name, key), finalizers) in made.iter().zip(released) {
        let finalizers = finalizers?;
        ensure!(
            !finalizers.iter().any(|f| f == FINALIZER),
            "{name} kept the finalizer: {finalizers:?}"
        );
        ensure!(object_exists(&t.env, key).await?, "{key} was deleted");
        // An operator installed again takes the bundle back.
        eventually("the finalizer back", Duration::from_secs(60), || async {
            let b = bundles.get(name).await?;
            Ok(b.finalizers().iter().any(|f| f == FINALIZER).then_some(()))
        })
        .await?;
    }
    Ok(())
}

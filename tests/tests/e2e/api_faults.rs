//! The operator's API traffic through a fault proxy in front of the API server
//! (tests/env/doubles/api-fault-proxy.py, issue 32): its log requests throttled with 429, a restarted
//! node-agent's previous log cut mid-stream, the leader cut off from the API server in the
//! middle of an upload while a standby takes over. The proxy is real TLS with the operator's
//! own ServiceAccount token passing through; the API server, kwok and the store behind it are
//! the environment's. Every test here restarts the operator, so their names start with
//! `serial_`, and each brings the usual operator back however it ends ([`OperatorsBack`]).

use std::{path::PathBuf, time::Duration};

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::core::v1::Pod;
use kube::{Api, api::LogParams};
use velero_debug_crd::{DebugBundle, Phase};
use velero_debug_e2e::{
    api_proxy::ApiFaultProxy,
    archives::{download, server_log, sha256_hex, text},
    backups::real_backup,
    bundles::{apply_bundle, wait_completed},
    context::TestCtx,
    kwok_logs::data_path_log,
    nodes::{fake_node, restart_node_agent_on},
    operations::failed_pod_volume_backup_on,
    operators::{OperatorsBack, operator_metric, restart_operator_replica, restart_operators},
    polling::eventually,
    recorded_events::times_recorded_once_made,
};

/// Every log request of Velero's namespace is answered 429 with Retry-After: 1 the first time,
/// and forwarded when asked again: the operator's log client retries (as kube's client does)
/// and the bundle holds every log, with no warning about one. Without the retry no log of
/// Velero's pods would be in it (checked with `log_client::RETRIES` at 0: "server logs: []").
#[tokio::test]
async fn serial_api_throttled_log_reads_are_retried_and_every_log_is_kept() -> Result<()> {
    throttled_log_reads(&TestCtx::new().await?, "direct").await
}

/// The same with `LOG_CLIENT=kube`: the fallback to kube's own client retries as well.
#[tokio::test]
async fn serial_api_throttled_log_reads_through_kubes_client_are_retried_too() -> Result<()> {
    throttled_log_reads(&TestCtx::new().await?, "kube").await
}

async fn throttled_log_reads(t: &TestCtx, log_client: &str) -> Result<()> {
    let proxy = ApiFaultProxy::start(&t.env).await?;
    let back = OperatorsBack::armed();
    let mut settings = proxy.operator_settings();
    settings.push(("LOG_CLIENT", log_client.to_string()));
    restart_operators(1, &settings).await?;
    let (_, backup, _) = real_backup(t, "throttled").await?;
    let pods = format!("/api/v1/namespaces/{}/pods/", t.env.namespace);
    let before = proxy.throttle_logs(2, &[&pods]).await?;
    let name = apply_bundle(t, serde_json::json!({"backup": backup})).await?;
    let bundle = wait_completed(t, &name, Duration::from_secs(120)).await;
    let after = proxy.throttle_logs(0, &[]).await?;
    back.done().await?;
    let bundle = bundle?;
    println!("proxy before the bundle {before:?}, after it {after:?}");
    // The server's container and the plugin's init container at least.
    ensure!(
        after.throttled >= before.throttled + 2,
        "too few log requests were throttled: {after:?}"
    );
    let files = download(&bundle).await?;
    let server_log = server_log(&files)?;
    ensure!(
        text(&files, server_log)?.contains(&backup),
        "the server log lacks the backup"
    );
    ensure!(
        files
            .keys()
            .any(|k| k.ends_with("/velero-plugin-for-aws.log")),
        "the plugin's init container log is missing: {:?}",
        files.keys()
    );
    let warnings = &bundle.status.as_ref().context("no status")?.warnings;
    ensure!(
        !warnings
            .iter()
            .any(|w| w.contains("could not be read") || w.contains("429")),
        "{warnings:?}"
    );
    Ok(())
}

/// A restarted node-agent whose previous log is cut once mid-stream (the proxy relays the
/// answer's head and 16 KiB of its body, then drops the connection): the bundle keeps the part
/// read (not empty, a prefix of the whole log) and warns that the read broke off. Before
/// issue 32 any error on a previous log counted as "no previous instance" and the part read
/// was deleted without a word (checked with a cut read deleted again: the file is missing).
#[tokio::test]
async fn serial_api_a_previous_log_cut_mid_stream_keeps_the_part_read_and_warns() -> Result<()> {
    let t = &TestCtx::new().await?;
    let node = fake_node(&t.client, &t.cleanup, "node-cut", serde_json::json!([])).await?;
    // About 200 KiB: the cut falls well inside it.
    let previous: Vec<String> = (0..2000)
        .map(|i| format!("time=\"2026-11-23T04:00:00Z\" level=info msg=\"data path progress {i:05}\" logSource=\"pkg/datapath/file_system.go:1\" node={node}"))
        .collect();
    let current = [format!(
        "time=\"2026-11-23T04:01:00Z\" level=info msg=\"node-agent server started\" node={node}"
    )];
    let agent = restart_node_agent_on(t, &node, &current, &previous).await?;
    let whole = Api::<Pod>::namespaced(t.client.clone(), &t.env.namespace)
        .logs(
            &agent,
            &LogParams {
                previous: true,
                ..LogParams::default()
            },
        )
        .await?;
    ensure!(
        whole.lines().count() == previous.len(),
        "kwok served {} lines",
        whole.lines().count()
    );
    let (ns, backup, backup_uid) = real_backup(t, "cut-src").await?;
    // A PodVolumeBackup on the agent's node: the node is involved, its node-agent's logs go in.
    failed_pod_volume_backup_on(t, &backup, &backup_uid, &ns, &node).await?;

    let proxy = ApiFaultProxy::start(&t.env).await?;
    let back = OperatorsBack::armed();
    restart_operators(1, &proxy.operator_settings()).await?;
    let armed = proxy
        .cut_once(&[&format!("/pods/{agent}/log?"), "previous=true"], 16 << 10)
        .await?;
    let name = apply_bundle(t, serde_json::json!({"backup": backup})).await?;
    let bundle = wait_completed(t, &name, Duration::from_secs(120)).await;
    let after = proxy.stats().await?;
    back.done().await?;
    let bundle = bundle?;
    ensure!(
        after.cut == armed.cut + 1,
        "the previous log's answer was not cut: {after:?}"
    );
    let files = download(&bundle).await?;
    let path = format!("logs/node-agent/{agent}/node-agent.previous.log");
    let kept = text(&files, &path)?;
    println!(
        "kept {} of {} bytes of the previous log",
        kept.len(),
        whole.len()
    );
    ensure!(!kept.is_empty(), "{path} is empty");
    // A line broken off may be kept with or without its end of line.
    let kept = kept.trim_end_matches('\n');
    ensure!(
        kept.len() < whole.len() && whole.starts_with(kept),
        "{path} is not a strict prefix of the whole log ({} of {} bytes); it ends {:?}",
        kept.len(),
        whole.len(),
        &kept[kept.len().saturating_sub(200)..]
    );
    let warnings = &bundle.status.as_ref().context("no status")?.warnings;
    ensure!(
        warnings
            .iter()
            .any(|w| w.contains(&path) && w.contains("kept what was read")),
        "no warning says the previous log was cut: {warnings:?}"
    );
    Ok(())
}

/// Removes a file when dropped (the CRI log file a data-path pod's log is served from).
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

async fn lease_holder(t: &TestCtx) -> Result<String> {
    velero_debug_e2e::operators::lease_holder(&t.client, &t.env.namespace).await
}

/// The leader (operator-0) reaches the API server through the proxy and uploads slowly; the
/// standby (operator-1) reaches it directly and uploads at full speed. While the leader is
/// uploading, the proxy drops its connections and every new one (the store stays reachable):
/// the leader's fence ends its term, the standby takes the lease and completes the bundles.
/// Then the proxy forwards again and the deposed leader comes back as a standby, its own count
/// of bundles in flight at 0. Every bundle is Completed once (one Completed event, its
/// completion unchanged once the deposed leader is back), and its `status.archive.sha256` is
/// the sha256 of the object in the store: had the deposed leader's slower upload gone on and
/// completed after the new leader's, the object would be its archive, not the one in status.
#[tokio::test]
async fn serial_api_a_leader_cut_off_mid_upload_leaves_each_bundle_completed_once_with_its_archive()
-> Result<()> {
    let t = &TestCtx::new().await?;
    let (ns, backup, backup_uid) = real_backup(t, "cut-off").await?;
    let _log = RemoveOnDrop(data_path_log(t, (&backup, &backup_uid, &ns), 8 << 20).await?);
    let proxy = ApiFaultProxy::start(&t.env).await?;
    let back = OperatorsBack::armed();
    let mut leader = proxy.operator_settings();
    leader.push(("VDO_UPLOAD_BYTES_PER_SECOND", (32u64 << 10).to_string()));
    restart_operators(1, &leader).await?;
    ensure!(
        lease_holder(t).await? == "operator-0",
        "operator-0 does not lead"
    );
    restart_operator_replica(1, &[]).await?;
    let outcome = cut_off_mid_upload(t, &proxy, &backup).await;
    proxy.restore().await?;
    back.done().await?;
    outcome
}

async fn cut_off_mid_upload(t: &TestCtx, proxy: &ApiFaultProxy, backup: &str) -> Result<()> {
    let bundles: Api<DebugBundle> = Api::namespaced(t.client.clone(), &t.env.namespace);
    let mut names = Vec::new();
    for _ in 0..2 {
        names.push(apply_bundle(t, serde_json::json!({"backup": backup})).await?);
    }
    // A bundle whose upload has begun (its id in status): its one part (the archive is below
    // the 5 MiB part size) is on its way at 32 KiB/s, for about 30 s: past the takeover.
    let (uploading, total) = eventually("a bundle uploading", Duration::from_secs(120), || async {
        for name in &names {
            let s = bundles.get(name).await?.status.unwrap_or_default();
            let total = s.progress.and_then(|p| p.bytes_total).unwrap_or(0);
            if s.phase == Some(Phase::Uploading) && s.upload_id.is_some() {
                return Ok(Some((name.clone(), total)));
            }
        }
        Ok(None)
    })
    .await?;
    let severed = proxy.sever().await?;
    println!("{uploading} uploading {total} bytes when operator-0 was cut off: {severed:?}");
    eventually(
        "operator-1 to take the lease",
        Duration::from_secs(60),
        || async { Ok((lease_holder(t).await? == "operator-1").then_some(())) },
    )
    .await?;
    // Never two leaders: operator-0's fence ended its term before its lease could expire, so
    // by now it leads nothing and has nothing in flight (its metrics are read directly, not
    // through the proxy). Without the fence it would go on uploading (checked: "still leads").
    let leading = operator_metric(&t.env, "operator-0", "velero_debug_leader").await?;
    let in_flight = operator_metric(&t.env, "operator-0", "velero_debug_bundles_in_flight").await?;
    ensure!(
        leading == 0 && in_flight == 0,
        "operator-0 still leads ({leading}) with {in_flight} bundle(s) in flight while operator-1 holds the lease"
    );
    let mut completed = Vec::new();
    for name in &names {
        completed.push(wait_completed(t, name, Duration::from_secs(180)).await?);
    }
    // The deposed leader talks to the API server again, and works on nothing.
    proxy.restore().await?;
    let restored = proxy.stats().await?;
    eventually(
        "operator-0 back as a standby with nothing in flight",
        Duration::from_secs(60),
        || async {
            let requests = proxy.stats().await?.requests;
            let leading = operator_metric(&t.env, "operator-0", "velero_debug_leader").await?;
            let in_flight =
                operator_metric(&t.env, "operator-0", "velero_debug_bundles_in_flight").await?;
            Ok((requests > restored.requests && leading == 0 && in_flight == 0).then_some(()))
        },
    )
    .await?;
    let s3 = t.env.s3_client(&t.env.s3.endpoint);
    for before in &completed {
        let name = before.metadata.name.clone().unwrap_or_default();
        let now = bundles.get(&name).await?;
        let status = now.status.clone().context("no status")?;
        ensure!(
            status.phase == Some(Phase::Completed)
                && status.completion_time
                    == before
                        .status
                        .as_ref()
                        .and_then(|s| s.completion_time.clone()),
            "{name} changed after the deposed leader came back: {:?}",
            status.phase
        );
        let archive = status.archive.context("no archive")?;
        let stored = s3
            .get_object()
            .bucket(&archive.bucket)
            .key(&archive.key)
            .send()
            .await?
            .body
            .collect()
            .await?
            .into_bytes();
        ensure!(
            sha256_hex(&stored) == archive.sha256,
            "{name}: the stored object's sha256 is not status.archive.sha256"
        );
        let completed = times_recorded_once_made(t, &name, "Completed").await?;
        ensure!(
            completed == 1,
            "{name} was recorded Completed {completed} times"
        );
        download(&now).await?;
    }
    Ok(())
}

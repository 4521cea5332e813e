//! Smoke tests proving the local environment is real: a real API server, Velero's CRDs, a real
//! Velero server writing to a real S3 server, and pod logs served through the API.

use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, ensure};
use aws_sdk_s3::presigning::PresigningConfig;
use k8s_openapi::api::core::v1::Pod;
use kube::{
    Api, ResourceExt,
    api::{DynamicObject, ListParams, LogParams},
    discovery::Discovery,
};
use velero_debug_e2e::{
    backups::real_backup,
    context::{TestCtx, unique_name},
    env::Env,
    polling::eventually,
};
use velero_debug_operator::velero::resource as velero_resource;

#[tokio::test]
async fn api_server_is_at_least_1_33() -> Result<()> {
    let env = Env::load()?;
    let info = env.client().await?.apiserver_version().await?;
    let minor: u32 = info.minor.trim_end_matches('+').parse()?;
    ensure!(
        info.major == "1" && minor >= 33,
        "API server is {}",
        info.git_version
    );
    Ok(())
}

#[tokio::test]
async fn velero_crds_are_served() -> Result<()> {
    let env = Env::load()?;
    let client = env.client().await?;
    let discovery = Discovery::new(client.clone())
        .filter(&["velero.io"])
        .run()
        .await?;
    let kinds: Vec<String> = discovery
        .groups()
        .flat_map(|g| {
            g.versions()
                .flat_map(|v| g.versioned_resources(v))
                .collect::<Vec<_>>()
        })
        .map(|(ar, _)| ar.kind)
        .collect();
    for kind in [
        "Backup",
        "Restore",
        "BackupStorageLocation",
        "VolumeSnapshotLocation",
        "PodVolumeBackup",
        "PodVolumeRestore",
        "ServerStatusRequest",
        "DownloadRequest",
    ] {
        ensure!(
            kinds.iter().any(|k| k == kind),
            "{kind} not served: {kinds:?}"
        );
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), &env.namespace, &velero_resource(kind));
        api.list(&ListParams::default().limit(1))
            .await
            .with_context(|| format!("listing {kind}"))?;
    }
    // Data movers live in velero.io/v2alpha1.
    for kind in ["DataUpload", "DataDownload"] {
        ensure!(kinds.iter().any(|k| k == kind), "{kind} not served");
    }
    Ok(())
}

#[tokio::test]
async fn bsl_default_is_reported_available_by_velero() -> Result<()> {
    let env = Env::load()?;
    let api: Api<DynamicObject> = Api::namespaced_with(
        env.client().await?,
        &env.namespace,
        &velero_resource("BackupStorageLocation"),
    );
    eventually("BSL default Available", Duration::from_secs(60), || async {
        let bsl = api.get("default").await?;
        Ok((bsl.data["status"]["phase"] == "Available").then_some(()))
    })
    .await
}

#[tokio::test]
async fn velero_backup_create_uploads_its_log_to_the_bucket() -> Result<()> {
    let t = &TestCtx::new().await?;
    // `velero backup create --wait` through the real CLI.
    let (_, backup, _) = real_backup(t, "smoke-backup").await?;
    let backups: Api<DynamicObject> = Api::namespaced_with(
        t.client.clone(),
        &t.env.namespace,
        &velero_resource("Backup"),
    );
    let phase = backups.get(&backup).await?.data["status"]["phase"].clone();
    ensure!(phase == "Completed", "backup phase {phase}");

    let key = format!("{}/backups/{backup}/{backup}-logs.gz", t.env.s3.prefix);
    t.env
        .s3_client(&t.env.s3.endpoint)
        .head_object()
        .bucket(&t.env.s3.bucket)
        .key(&key)
        .send()
        .await
        .with_context(|| format!("{key} is not in the bucket"))?;
    Ok(())
}

#[tokio::test]
async fn pod_logs_are_served_through_the_api_including_previous() -> Result<()> {
    let env = Env::load()?;
    let pods: Api<Pod> = Api::namespaced(env.client().await?, &env.namespace);

    let velero = pods
        .list(&ListParams::default().labels("component=velero,deploy=velero"))
        .await?;
    let velero = velero.items.first().context("no velero pod")?;
    let params = LogParams {
        container: Some("velero".into()),
        ..LogParams::default()
    };
    let log = pods.logs(&velero.name_any(), &params).await?;
    // The real server's own log, as the process writes it, of the version asked for.
    let started = format!("Starting Velero server {}", env.velero.version);
    ensure!(
        log.contains(&started),
        "velero pod log is not the server's: {}",
        &log[..log.len().min(500)]
    );

    // The environment's own three nodes: a test's fake node (nodes::fake_node) gets a
    // node-agent of its own from the DaemonSet, which stays a while after that node is gone
    // (the pod garbage collector's quarantine), whatever test binary runs next.
    let env_nodes = ["node-0", "node-1", "node-2"];
    let agents: Vec<Pod> = pods
        .list(&ListParams::default().labels(velero_debug_operator::velero::NODE_AGENT_POD_SELECTOR))
        .await?
        .items
        .into_iter()
        .filter(|p| {
            let node = p.spec.as_ref().and_then(|s| s.node_name.as_deref());
            node.is_some_and(|n| env_nodes.contains(&n))
        })
        .collect();
    ensure!(
        agents.len() == 3,
        "expected one node-agent per node of the environment"
    );
    let mut previous_logs = 0;
    for agent in &agents {
        let current = pods.logs(&agent.name_any(), &LogParams::default()).await?;
        ensure!(current.contains("node-agent server started"), "{current}");
        let previous = LogParams {
            previous: true,
            ..LogParams::default()
        };
        if let Ok(log) = pods.logs(&agent.name_any(), &previous).await {
            ensure!(log.contains("previous instance"), "{log}");
            previous_logs += 1;
        }
    }
    ensure!(
        previous_logs == 1,
        "one restarted node-agent expected, got {previous_logs}"
    );
    Ok(())
}

#[tokio::test]
async fn presigned_urls_work_and_tampered_or_expired_ones_are_refused() -> Result<()> {
    let env = Env::load()?;
    let key = format!("smoke/{}", unique_name("presign"));
    let body = b"presigned content".to_vec();
    env.s3_client(&env.s3.endpoint)
        .put_object()
        .bucket(&env.s3.bucket)
        .key(&key)
        .body(body.clone().into())
        .send()
        .await?;

    // Presigned through the second address, as a BSL publicUrl does.
    let public = env.s3_client(&env.s3.public_endpoint);
    let presign = |config: PresigningConfig| {
        let public = public.clone();
        let (bucket, key) = (env.s3.bucket.clone(), key.clone());
        async move {
            let req = public
                .get_object()
                .bucket(bucket)
                .key(key)
                .presigned(config)
                .await?;
            anyhow::Ok(req.uri().to_string())
        }
    };
    let url = presign(PresigningConfig::expires_in(Duration::from_secs(300))?).await?;
    ensure!(url.starts_with(&env.s3.public_endpoint), "{url}");
    let http = reqwest::Client::new();
    let resp = http.get(&url).send().await?;
    ensure!(resp.status() == 200, "presigned GET: {}", resp.status());
    ensure!(resp.bytes().await?.as_ref() == body.as_slice());

    let tampered = tamper_signature(&url)?;
    let status = http.get(&tampered).send().await?.status();
    ensure!(status == 403, "tampered URL gave {status}");

    let expired_config = PresigningConfig::builder()
        .start_time(SystemTime::now() - Duration::from_secs(3600))
        .expires_in(Duration::from_secs(60))
        .build()?;
    let expired = presign(expired_config).await?;
    let status = http.get(&expired).send().await?.status();
    ensure!(status == 403, "expired URL gave {status}");
    Ok(())
}

/// Flips one hex digit of the X-Amz-Signature query value.
fn tamper_signature(url: &str) -> Result<String> {
    let at = url
        .find("X-Amz-Signature=")
        .context("no signature in URL")?
        + "X-Amz-Signature=".len();
    let mut out = url.to_string();
    let flipped = if &url[at..at + 1] == "0" { "1" } else { "0" };
    out.replace_range(at..at + 1, flipped);
    Ok(out)
}

/// Real stores answer NoSuchBucket to a write into a bucket that was never made; the local
/// store must too (tests/env/tools/s3s-fs-bucket-guard.py), or a BackupStorageLocation naming a
/// missing bucket turns Available after a bundle writes into it.
#[tokio::test]
async fn the_store_refuses_writes_into_a_bucket_that_does_not_exist() -> Result<()> {
    let env = Env::load()?;
    let s3 = env.s3_client(&env.s3.endpoint);
    let missing = unique_name("no-such-bucket");
    let put = s3
        .put_object()
        .bucket(&missing)
        .key("k")
        .body(b"x".to_vec().into())
        .send()
        .await;
    let code = put.map_err(aws_sdk_s3::error::DisplayErrorContext);
    ensure!(
        matches!(&code, Err(e) if e.to_string().contains("NoSuchBucket")),
        "PutObject into a missing bucket: {code:?}"
    );
    let multipart = s3
        .create_multipart_upload()
        .bucket(&missing)
        .key("k")
        .send()
        .await
        .map_err(aws_sdk_s3::error::DisplayErrorContext);
    ensure!(
        matches!(&multipart, Err(e) if e.to_string().contains("NoSuchBucket")),
        "CreateMultipartUpload into a missing bucket: {multipart:?}"
    );
    let data_dir = env.s3.data_dir.join(&missing);
    ensure!(!data_dir.exists(), "the store created {data_dir:?}");
    // The bucket that exists still takes writes.
    let key = format!("{}/{}", env.s3.prefix, unique_name("guard"));
    s3.put_object()
        .bucket(&env.s3.bucket)
        .key(&key)
        .body(b"x".to_vec().into())
        .send()
        .await
        .context("PutObject into the environment's bucket")?;
    s3.delete_object()
        .bucket(&env.s3.bucket)
        .key(&key)
        .send()
        .await?;
    Ok(())
}

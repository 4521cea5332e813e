//! BSLs whose object store speaks HTTPS with a private CA (env-up puts the S3 server behind a
//! TLS proxy): `caCert` and `insecureSkipTLSVerify` are honoured, and a certificate nobody
//! vouched for fails the bundle with a reason that says so.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use kube::{
    Api,
    api::{DynamicObject, PostParams},
};
use velero_debug_crd::{DebugBundle, Phase};
use velero_debug_e2e::{
    archives::sha256_hex,
    backups::real_backup,
    bundles::{apply_bundle, condition_reason, wait_finished},
    context::{TestCtx, unique_name},
    env::Env,
};
use velero_debug_operator::velero::resource as velero_resource;

/// Downloads through the presigned https URL, trusting the environment's CA.
async fn download_https(env: &Env, b: &DebugBundle) -> Result<Vec<u8>> {
    let status = b.status.as_ref().context("no status")?;
    let url = status.download_url.as_ref().context("no URL")?;
    ensure!(url.starts_with("https://"), "{url}");
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&env.s3.ca_file)?)?;
    let client = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()?;
    let resp = client.get(url).send().await?;
    ensure!(resp.status() == 200, "GET {url}: {}", resp.status());
    let bytes = resp.bytes().await?.to_vec();
    let archive = status.archive.as_ref().context("no archive")?;
    ensure!(sha256_hex(&bytes) == archive.sha256, "sha256 differs");
    Ok(bytes)
}

#[tokio::test]
async fn bundles_reach_https_object_stores_through_ca_cert_or_insecure_skip_verify() -> Result<()> {
    let t = &TestCtx::new().await?;
    let (_, backup, _) = real_backup(t, "tls").await?;
    for bsl in ["tls-ca", "tls-insecure"] {
        let name = apply_bundle(
            t,
            serde_json::json!({"backup": backup, "storageLocation": bsl}),
        )
        .await?;
        let b = wait_finished(t, &name, Duration::from_secs(180)).await?;
        ensure!(
            b.status.as_ref().and_then(|s| s.phase) == Some(Phase::Completed),
            "{bsl}: {}",
            condition_reason(&b)
        );
        let key = b
            .status
            .as_ref()
            .and_then(|s| s.archive.as_ref())
            .context("no archive")?
            .key
            .clone();
        ensure!(
            key.starts_with(&format!("{bsl}/plugins/")),
            "{bsl}: key {key}"
        );
        download_https(&t.env, &b).await?;
    }

    // The same endpoint with neither: the certificate is not trusted, and retrying would not
    // change that.
    let bsl_resource = velero_resource("BackupStorageLocation");
    let bsls: Api<DynamicObject> =
        Api::namespaced_with(t.client.clone(), &t.env.namespace, &bsl_resource);
    let untrusted = unique_name("bsl-untrusted");
    let obj: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "velero.io/v1", "kind": "BackupStorageLocation",
        "metadata": {"name": untrusted, "namespace": t.env.namespace},
        "spec": {"provider": "aws", "objectStorage": {"bucket": t.env.s3.bucket, "prefix": "untrusted"},
                 "config": {"region": t.env.s3.region, "s3ForcePathStyle": "true",
                            "s3Url": t.env.s3.tls_endpoint, "checksumAlgorithm": ""}},
    }))?;
    bsls.create(&PostParams::default(), &obj).await?;
    t.cleanup
        .delete(&bsl_resource, Some(&t.env.namespace), &untrusted);
    let name = apply_bundle(
        t,
        serde_json::json!({"backup": backup, "storageLocation": untrusted}),
    )
    .await?;
    let b = wait_finished(t, &name, Duration::from_secs(60)).await?;
    let reason = condition_reason(&b);
    ensure!(
        reason.starts_with("CertificateUntrusted") && reason.contains("caCert"),
        "{reason}"
    );
    ensure!(
        b.status.as_ref().and_then(|s| s.attempts).is_none(),
        "an untrusted certificate was retried"
    );
    // A caCert that is not a certificate is refused before anything is sent: plain text, and a
    // PEM block that only looks like a certificate (the SDK's trust store panics on that one
    // when it first connects, so the operator must refuse it first).
    for (what, ca_cert) in [
        ("text", "bm90IGEgY2VydA=="),
        (
            "fake PEM",
            "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUIKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=",
        ),
    ] {
        let bad_ca = unique_name("bsl-bad-ca");
        let mut obj = obj.clone();
        obj.metadata.name = Some(bad_ca.clone());
        obj.metadata.resource_version = None;
        obj.data["spec"]["objectStorage"]["caCert"] = serde_json::json!(ca_cert);
        bsls.create(&PostParams::default(), &obj).await?;
        t.cleanup
            .delete(&bsl_resource, Some(&t.env.namespace), &bad_ca);
        let name = apply_bundle(
            t,
            serde_json::json!({"backup": backup, "storageLocation": bad_ca}),
        )
        .await?;
        let b = wait_finished(t, &name, Duration::from_secs(60)).await?;
        let reason = condition_reason(&b);
        ensure!(
            reason.starts_with("UnsupportedStorageLocation")
                && reason.contains("caCert is unusable"),
            "{what}: {reason}"
        );
    }
    Ok(())
}

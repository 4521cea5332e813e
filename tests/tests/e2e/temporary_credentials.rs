//! A download URL is no longer valid than the credentials it is signed with. The operator
//! gets temporary credentials (a session token, an expiry ten minutes out) from the AWS
//! default chain's container endpoint, served here by the test, as IRSA or an ECS task role
//! would give them; the bundle's URL then expires with them, not after its urlTTL, and the
//! condition says so. Restarts the operator, so its name starts with `serial_`.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api,
    api::{DeleteParams, PostParams},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use velero_debug_e2e::{
    archives::download,
    backups::real_backup,
    bundles::{apply_bundle, wait_completed},
    context::TestCtx,
    env::Env,
    operators::restart_operators,
};

/// Serves the environment's keys as temporary credentials expiring at `expiry`, to every
/// request, until the test ends; returns the endpoint's URL.
async fn credentials_endpoint(env: &Env, expiry: jiff::Timestamp) -> Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let body = serde_json::json!({
        "AccessKeyId": env.s3.access_key,
        "SecretAccessKey": env.s3.secret_key,
        "Token": "e2e-session-token",
        "Expiration": expiry.to_string(),
    })
    .to_string();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = conn.read(&mut request).await;
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(response.as_bytes()).await;
            });
        }
    });
    Ok(format!("http://127.0.0.1:{port}/credentials"))
}

/// Velero's default credential Secret, put back when the test ends however it ends: with it
/// gone the operator falls back to the AWS default chain.
struct SecretAway {
    kubeconfig: std::path::PathBuf,
    saved: std::path::PathBuf,
}

impl Drop for SecretAway {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["apply", "-f"])
            .arg(&self.saved)
            .output();
        let _ = std::fs::remove_file(&self.saved);
    }
}

#[tokio::test]
async fn serial_a_url_signed_with_temporary_credentials_expires_with_them() -> Result<()> {
    let t = &TestCtx::new().await?;
    let (_, backup, _) = real_backup(t, "session").await?;

    let secrets: Api<Secret> = Api::namespaced(t.client.clone(), &t.env.namespace);
    let mut secret = secrets.get("cloud-credentials").await?;
    secret.metadata.resource_version = None;
    secret.metadata.uid = None;
    secret.metadata.creation_timestamp = None;
    secret.metadata.managed_fields = None;
    let saved = t.env.state_dir()?.join("cloud-credentials.saved.json");
    std::fs::write(&saved, serde_json::to_vec(&secret)?)?;
    let _back = SecretAway {
        kubeconfig: t.env.kubeconfig.clone(),
        saved,
    };
    secrets
        .delete("cloud-credentials", &DeleteParams::default())
        .await?;

    let expiry = jiff::Timestamp::now() + jiff::SignedDuration::from_mins(10);
    let endpoint = credentials_endpoint(&t.env, expiry).await?;
    restart_operators(1, &[("VDO_AWS_CONTAINER_CREDENTIALS_FULL_URI", endpoint)]).await?;
    let name = apply_bundle(t, serde_json::json!({"backup": backup, "urlTTL": "24h"})).await?;
    let done = wait_completed(t, &name, Duration::from_secs(180)).await;
    // The Secret back (before the operator restarts for the next tests).
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .context("putting cloud-credentials back")?;
    restart_operators(1, &[]).await?;
    let done = done?;

    let status = done.status.clone().context("no status")?;
    let expires = status
        .download_url_expires_at
        .as_ref()
        .context("no URL expiry")?
        .0;
    let off = expires.duration_since(expiry).abs();
    ensure!(
        off <= jiff::SignedDuration::from_secs(5),
        "URL expires at {expires}, the credentials at {expiry}"
    );
    let condition = status
        .conditions
        .iter()
        .find(|c| c.type_ == "DownloadURLValid")
        .context("no DownloadURLValid condition")?;
    ensure!(
        condition.status == "True" && condition.message.contains("credentials"),
        "{condition:?}"
    );
    let url = status.download_url.clone().context("no URL")?;
    ensure!(
        url.contains("X-Amz-Security-Token=e2e-session-token"),
        "the URL is not signed with the session: {url}"
    );
    // It works while they do.
    download(&done).await?;
    Ok(())
}

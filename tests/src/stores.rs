//! The object stores of the environment as the tests reach them without the operator: the S3
//! bucket through the AWS SDK, Azurite through Microsoft's own Python client
//! (tests/env/doubles/azure-blob.py), fake-gcs-server through its JSON API, and Google's Python client
//! for the signed URL the operator must match.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use crate::env::{Env, tests_dir};

/// Whether `key` is in the environment's bucket.
pub async fn object_exists(env: &Env, key: &str) -> Result<bool> {
    let s3 = env.s3_client(&env.s3.endpoint);
    match s3
        .head_object()
        .bucket(&env.s3.bucket)
        .key(key)
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Writes `text` gzipped into the environment's bucket at `<prefix>/<key>`, as Velero writes
/// its logs and results.
pub async fn put_gzipped(env: &Env, key: &str, text: &str) -> Result<()> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(text.as_bytes())?;
    env.s3_client(&env.s3.endpoint)
        .put_object()
        .bucket(&env.s3.bucket)
        .key(format!("{}/{key}", env.s3.prefix))
        .body(gz.finish()?.into())
        .send()
        .await
        .with_context(|| format!("writing {key}"))?;
    Ok(())
}

fn script(name: &str) -> PathBuf {
    tests_dir().join("env").join(name)
}

/// Runs a script of tests/env with the environment's pytools Python; its stdout.
pub async fn python(env: &Env, name: &str, args: &[&str], vars: &[(&str, &str)]) -> Result<String> {
    let run = tokio::process::Command::new(&env.pytools)
        .arg(script(name))
        .args(args)
        .envs(vars.iter().copied())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(120), run)
        .await
        .with_context(|| format!("{name} {args:?} did not finish"))??;
    if !out.status.success() {
        bail!(
            "{name} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// An Azurite operation of azure-blob.py on the environment's container.
pub async fn azure_blob(env: &Env, args: &[&str]) -> Result<String> {
    let a = &env.azure;
    let ca = a
        .ca_file
        .as_ref()
        .map(|p| p.to_string_lossy().to_string())
        .unwrap_or_default();
    let vars = [
        ("VDO_AZURE_URL", a.endpoint.as_str()),
        ("VDO_AZURE_ACCOUNT", a.account.as_str()),
        ("VDO_AZURE_KEY", a.key.as_str()),
        ("VDO_AZURE_CONTAINER", a.container.as_str()),
        ("VDO_AZURE_CA", ca.as_str()),
    ];
    python(env, "doubles/azure-blob.py", args, &vars).await
}

pub async fn azure_exists(env: &Env, key: &str) -> Result<bool> {
    Ok(azure_blob(env, &["exists", key]).await? == "yes")
}

/// An object's resource in fake-gcs-server (None: there is none).
pub async fn gcs_object(env: &Env, key: &str) -> Result<Option<serde_json::Value>> {
    let url = reqwest::Url::parse_with_params(
        &format!(
            "{}/storage/v1/b/{}/o/{}",
            env.gcs.endpoint,
            env.gcs.bucket,
            encode(key)
        ),
        &[("alt", "json")],
    )?;
    let resp = reqwest::get(url).await?;
    match resp.status().as_u16() {
        200 => Ok(Some(resp.json().await?)),
        404 => Ok(None),
        other => bail!("fake-gcs-server answered {other} for {key}"),
    }
}

/// Puts an object into fake-gcs-server with `metadata` (a multipart upload of its JSON API).
pub async fn gcs_put(env: &Env, key: &str, body: &[u8], metadata: serde_json::Value) -> Result<()> {
    let boundary = "vdo-e2e-boundary";
    let resource = serde_json::json!({"name": key, "metadata": metadata});
    let mut payload = format!(
        "--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{resource}\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    payload.extend_from_slice(body);
    payload.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let url = format!(
        "{}/upload/storage/v1/b/{}/o?uploadType=multipart",
        env.gcs.endpoint, env.gcs.bucket
    );
    let resp = reqwest::Client::new()
        .post(url)
        .header(
            "Content-Type",
            format!("multipart/related; boundary={boundary}"),
        )
        .body(payload)
        .send()
        .await?;
    if !resp.status().is_success() {
        bail!("fake-gcs-server refused {key}: {}", resp.status());
    }
    Ok(())
}

/// Percent-encodes a whole object name for a JSON API path.
pub fn encode(key: &str) -> String {
    key.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

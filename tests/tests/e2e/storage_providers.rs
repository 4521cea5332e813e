//! Google Cloud Storage and Azure Blob storage locations on the real environment: BSL gcs on
//! fake-gcs-server, written by the real Velero server through the real GCP plugin; BSL azure
//! on Azurite, which verifies every SAS (the Azure plugin cannot be had here, so Velero's files
//! are laid into Azurite in Velero's layout and Velero shows that BSL Unavailable). On each: a
//! bundle made, downloaded and verified by the kubectl plugin, its archive deleted with it; the
//! read URL refused once tampered with (Azure) or byte for byte Google's own (GCS); orphans
//! collected; a credential that cannot work named as such (so is an AWS Secret's role
//! directive, on the S3 store).

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api,
    api::{DeleteParams, DynamicObject, PostParams},
};
use velero_debug_crd::{DebugBundle, Phase};
use velero_debug_e2e::{
    backups::{real_backup, real_backup_in},
    bundles::{apply_bundle, bundle_gone, condition_reason, wait_completed, wait_finished},
    context::{TestCtx, unique_name},
    env::Env,
    plugin,
    polling::eventually,
    restores::real_restore,
    storage_locations::credential_secret,
    stores,
};
use velero_debug_operator::velero::resource as velero_resource;

const INSTALL_MARK: &str = "velero-debug-install";

/// The kubectl plugin makes a bundle of `target` (`backup NAME` or `restore NAME`) and
/// downloads it (verifying its sha256); the Completed bundle.
async fn bundle_through_plugin(
    t: &TestCtx,
    target: [&str; 2],
    extra: &[&str],
    vars: &[(&str, &str)],
) -> Result<DebugBundle> {
    let name = unique_name("vdb-store");
    t.cleanup.object::<DebugBundle>(&t.env.namespace, &name);
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("bundle.tar.gz");
    let file_arg = file.to_string_lossy().to_string();
    let mut args = vec![
        "create",
        target[0],
        target[1],
        "--name",
        &name,
        "--download",
        &file_arg,
    ];
    args.extend_from_slice(extra);
    let out = plugin::run_with(&t.env, &args, vars).await?;
    ensure!(
        out.status.success(),
        "create --download: {}",
        plugin::text(&out)
    );
    let bundle = wait_completed(t, &name, Duration::from_secs(30)).await?;
    let archive = bundle
        .status
        .as_ref()
        .and_then(|s| s.archive.as_ref())
        .context("no archive")?;
    ensure!(
        std::fs::metadata(&file)?.len() == archive.size_bytes as u64,
        "the download is not the archive"
    );
    Ok(bundle)
}

/// The plugin has the URL re-signed, and downloads (and verifies) through the new one.
async fn resign_and_download(t: &TestCtx, name: &str, vars: &[(&str, &str)]) -> Result<()> {
    let out = plugin::run_with(&t.env, &["refresh-url", name], vars).await?;
    ensure!(out.status.success(), "refresh-url: {}", plugin::text(&out));
    let dir = tempfile::tempdir()?;
    let file = dir
        .path()
        .join("again.tar.gz")
        .to_string_lossy()
        .to_string();
    let out = plugin::run_with(&t.env, &["download", name, "-o", &file], vars).await?;
    ensure!(
        out.status.success(),
        "download after refresh-url: {}",
        plugin::text(&out)
    );
    let b = wait_finished(t, name, Duration::from_secs(5)).await?;
    ensure!(
        b.status.and_then(|s| s.url_refreshed_for).is_some(),
        "the URL was not re-signed"
    );
    Ok(())
}

fn archive_key(b: &DebugBundle) -> Result<String> {
    Ok(b.status
        .as_ref()
        .and_then(|s| s.archive.as_ref())
        .context("no archive")?
        .key
        .clone())
}

fn download_url(b: &DebugBundle) -> Result<String> {
    b.status
        .as_ref()
        .and_then(|s| s.download_url.clone())
        .context("no download URL")
}

/// Deletes the bundle and waits until it is gone (its finalizer deletes the archive).
async fn delete_bundle(t: &TestCtx, name: &str) -> Result<()> {
    Api::<DebugBundle>::namespaced(t.client.clone(), &t.env.namespace)
        .delete(name, &DeleteParams::default())
        .await?;
    bundle_gone(t, name, Duration::from_secs(60)).await
}

/// A BSL of the test's own: `spec` with the test's name, deleted at cleanup.
async fn own_location(t: &TestCtx, prefix: &str, spec: serde_json::Value) -> Result<String> {
    let name = unique_name(prefix);
    let resource = velero_resource("BackupStorageLocation");
    let obj: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "velero.io/v1", "kind": "BackupStorageLocation",
        "metadata": {"name": name, "namespace": t.env.namespace},
        "spec": spec,
    }))?;
    Api::<DynamicObject>::namespaced_with(t.client.clone(), &t.env.namespace, &resource)
        .create(&PostParams::default(), &obj)
        .await?;
    t.cleanup.delete(&resource, Some(&t.env.namespace), &name);
    Ok(name)
}

/// A bundle of `backup` into `location`, finished: its Ready condition's reason and message.
async fn failed_reason(t: &TestCtx, backup: &str, location: &str) -> Result<String> {
    let name = apply_bundle(
        t,
        serde_json::json!({"backup": backup, "storageLocation": location}),
    )
    .await?;
    let b = wait_finished(t, &name, Duration::from_secs(90)).await?;
    ensure!(
        b.status.as_ref().and_then(|s| s.phase) == Some(Phase::Failed),
        "{location}: not Failed: {}",
        condition_reason(&b)
    );
    Ok(condition_reason(&b))
}

/// The query parameter `name` of `url`.
fn query_param(url: &str, name: &str) -> Result<String> {
    let url = reqwest::Url::parse(url)?;
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .with_context(|| format!("no {name} in the URL"))
}

#[tokio::test]
async fn a_gcs_bundle_is_made_signed_as_google_signs_and_deleted_with_its_archive() -> Result<()> {
    let t = &TestCtx::new().await?;
    let env = &t.env;
    // A real backup: the real Velero server wrote it through the real GCP plugin.
    let (_, backup, _) = real_backup_in(t, "gcs", Some("gcs")).await?;
    let bundle = bundle_through_plugin(t, ["backup", &backup], &[], &[]).await?;
    let name = bundle.metadata.name.clone().unwrap_or_default();
    let key = archive_key(&bundle)?;
    ensure!(
        key.starts_with(&format!("{}/plugins/", env.gcs.prefix)),
        "{key}"
    );
    let object = stores::gcs_object(env, &key)
        .await?
        .context("the archive is not in the bucket")?;
    ensure!(
        is_install_mark(t, &object["metadata"][INSTALL_MARK]).await?,
        "not this install's mark: {object}"
    );
    ensure!(object["contentType"] == "application/gzip", "{object}");

    // The URL is the one Google's own client makes for the same key, time and object.
    let url = download_url(&bundle)?;
    let endpoint = &env.gcs.endpoint;
    let object_name = reqwest::Url::parse(&url)?
        .path()
        .strip_prefix(&format!("/{}/", env.gcs.bucket))
        .context("the URL names another bucket")?
        .to_string();
    let object_name = percent_decode(&object_name);
    let google = stores::python(
        env,
        "doubles/gcs-v4-sign.py",
        &[
            &env.gcs.credentials_file.to_string_lossy(),
            &env.gcs.bucket,
            &object_name,
            &query_param(&url, "X-Goog-Date")?,
            &query_param(&url, "X-Goog-Expires")?,
            endpoint,
        ],
        &[],
    )
    .await?;
    ensure!(url == google, "ours:   {url}\nGoogle: {google}");
    resign_and_download(t, &name, &[]).await?;

    delete_bundle(t, &name).await?;
    ensure!(
        stores::gcs_object(env, &key).await?.is_none(),
        "the archive outlived its bundle"
    );
    Ok(())
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = text.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Velero's files of `kind` (`backups` or `restores`) `name` from the S3 store, laid into
/// Azurite under the azure BSL's prefix: what the Azure plugin would have written.
async fn lay_into_azurite(env: &Env, kind: &str, name: &str) -> Result<()> {
    let from = env
        .s3
        .data_dir
        .join(&env.s3.bucket)
        .join(&env.s3.prefix)
        .join(kind)
        .join(name);
    ensure!(from.is_dir(), "no Velero files at {from:?}");
    let prefix = format!("{}/{kind}/{name}", env.azure.prefix);
    let count = stores::azure_blob(env, &["put-tree", &prefix, &from.to_string_lossy()]).await?;
    ensure!(count != "0", "no file laid from {from:?}");
    Ok(())
}

/// The plugin trusts the system's roots (SSL_CERT_FILE), as kubectl and curl do: with it set
/// to the environment's CA it downloads from Azurite over https.
fn trust_vars(env: &Env) -> Vec<(&'static str, String)> {
    env.azure
        .ca_file
        .as_ref()
        .map(|ca| vec![("SSL_CERT_FILE", ca.to_string_lossy().to_string())])
        .unwrap_or_default()
}

#[tokio::test]
async fn azure_bundles_of_a_backup_and_a_restore_are_read_with_a_sas_that_cannot_be_forged()
-> Result<()> {
    let t = &TestCtx::new().await?;
    let env = &t.env;
    let (ns, backup, _) = real_backup(t, "azure").await?;
    let restore = real_restore(t, &backup, &ns, &unique_name("azure-rs")).await?;
    let restore = restore.metadata.name.clone().unwrap_or_default();
    lay_into_azurite(env, "backups", &backup).await?;
    lay_into_azurite(env, "restores", &restore).await?;
    let vars = trust_vars(env);
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let location = ["--storage-location", "azure"];

    let of_backup = bundle_through_plugin(t, ["backup", &backup], &location, &vars).await?;
    let of_restore = bundle_through_plugin(t, ["restore", &restore], &location, &vars).await?;
    for b in [&of_backup, &of_restore] {
        let key = archive_key(b)?;
        ensure!(
            key.starts_with(&format!("{}/plugins/", env.azure.prefix)),
            "{key}"
        );
        ensure!(
            stores::azure_exists(env, &key).await?,
            "{key} is not in Azurite"
        );
        let metadata: serde_json::Value =
            serde_json::from_str(&stores::azure_blob(env, &["metadata", &key]).await?)?;
        ensure!(
            is_install_mark(t, &metadata["velero_debug_install"]).await?,
            "not this install's mark: {metadata}"
        );
    }
    // Velero's own files of the restore were read from Azurite.
    let files = download_verified(env, &of_restore).await?;
    for file in ["object-store/restore.log", "object-store/results.json"] {
        ensure!(
            files.keys().any(|k| k.ends_with(file)),
            "no {file} from the store: {:?}",
            files.keys().collect::<Vec<_>>()
        );
    }

    // The SAS is read-only, for this blob, and signed: a changed signature or a changed
    // permission is refused by Azurite.
    let url = download_url(&of_backup)?;
    ensure!(query_param(&url, "sp")? == "r", "{url:.60}");
    let sig = query_param(&url, "sig")?;
    let forged_sig = url.replace(
        &format!("sig={}", encode_query(&sig)),
        &format!("sig={}", encode_query(&flip_first_char(&sig))),
    );
    let forged_perm = url.replace("sp=r&", "sp=rw&");
    ensure!(
        forged_sig != url && forged_perm != url,
        "the URL was not changed"
    );
    let client = https_client(env)?;
    for (what, forged) in [("signature", &forged_sig), ("permission", &forged_perm)] {
        let status = client.get(forged).send().await?.status();
        ensure!(status == 403, "a changed {what}: HTTP {status}");
    }
    ensure!(
        client.get(&url).send().await?.status() == 200,
        "the real URL"
    );

    let name = of_backup.metadata.name.clone().unwrap_or_default();
    resign_and_download(t, &name, &vars).await?;
    let key = archive_key(&of_backup)?;
    delete_bundle(t, &name).await?;
    ensure!(
        !stores::azure_exists(env, &key).await?,
        "the archive outlived its bundle"
    );
    Ok(())
}

/// A signature differing in its first character; a fixed replacement would equal one
/// signature in 64 and leave the URL unchanged.
fn flip_first_char(sig: &str) -> String {
    let replacement = if sig.starts_with('A') { 'B' } else { 'A' };
    format!("{replacement}{}", sig.get(1..).unwrap_or_default())
}

fn encode_query(value: &str) -> String {
    reqwest::Url::parse_with_params("http://x/", &[("v", value)])
        .map(|u| {
            u.query()
                .unwrap_or_default()
                .trim_start_matches("v=")
                .to_string()
        })
        .unwrap_or_default()
}

fn https_client(env: &Env) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder();
    if let Some(ca) = &env.azure.ca_file {
        builder =
            builder.add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(ca)?)?);
    }
    Ok(builder.build()?)
}

/// Downloads through the bundle's URL, checks its sha256 and returns its files.
async fn download_verified(
    env: &Env,
    b: &DebugBundle,
) -> Result<std::collections::BTreeMap<String, Vec<u8>>> {
    let url = download_url(b)?;
    let bytes = https_client(env)?
        .get(&url)
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    let archive = b
        .status
        .as_ref()
        .and_then(|s| s.archive.as_ref())
        .context("no archive")?;
    ensure!(
        velero_debug_e2e::archives::sha256_hex(&bytes) == archive.sha256,
        "sha256 differs"
    );
    velero_debug_e2e::archives::untar(&bytes)
}

#[tokio::test]
async fn an_azure_url_stops_working_when_it_expires() -> Result<()> {
    let t = &TestCtx::new().await?;
    let env = &t.env;
    let (_, backup, _) = real_backup(t, "azure-exp").await?;
    lay_into_azurite(env, "backups", &backup).await?;
    let name = apply_bundle(
        t,
        serde_json::json!({"backup": backup, "storageLocation": "azure", "urlTTL": "1m"}),
    )
    .await?;
    let b = wait_completed(t, &name, Duration::from_secs(120)).await?;
    let url = download_url(&b)?;
    let client = https_client(env)?;
    ensure!(client.get(&url).send().await?.status() == 200);
    let expires = b
        .status
        .as_ref()
        .and_then(|s| s.download_url_expires_at.clone())
        .context("no expiry")?
        .0;
    let left = expires.duration_since(jiff::Timestamp::now());
    tokio::time::sleep(Duration::try_from(left).unwrap_or_default() + Duration::from_secs(2)).await;
    let status = client.get(&url).send().await?.status();
    ensure!(status == 403, "an expired SAS: HTTP {status}");
    Ok(())
}

#[tokio::test]
async fn gcs_and_azure_orphans_are_collected_and_foreign_objects_left() -> Result<()> {
    let t = &TestCtx::new().await?;
    let env = &t.env;
    let mark = install_mark(t).await?;
    let gone = "00000000-0000-0000-0000-00000000abcd";
    let gcs_orphan = format!(
        "{}/plugins/velero-debug-operator/bundles/{}/gone-{}-{}.tar.gz",
        env.gcs.prefix,
        env.namespace,
        std::process::id(),
        &gone[..8]
    );
    let gcs_foreign = gcs_orphan.replace("gone-", "other-cluster-");
    let azure_orphan = gcs_orphan.replacen(&env.gcs.prefix, &env.azure.prefix, 1);
    let azure_foreign = azure_orphan.replace("gone-", "other-cluster-");
    let blob = tempfile::NamedTempFile::new()?;
    std::fs::write(blob.path(), b"x")?;
    let blob_path = blob.path().to_string_lossy().to_string();
    let mark_arg = format!("velero_debug_install={mark}");
    // Another cluster's archives first: every sweep that sees an orphan also sees them, so
    // the orphans' collection proves they were passed over, not missed.
    stores::gcs_put(
        env,
        &gcs_foreign,
        b"x",
        serde_json::json!({INSTALL_MARK: "another"}),
    )
    .await?;
    stores::azure_blob(
        env,
        &[
            "put",
            &azure_foreign,
            &blob_path,
            "velero_debug_install=another",
        ],
    )
    .await?;
    stores::gcs_put(
        env,
        &gcs_orphan,
        b"x",
        serde_json::json!({INSTALL_MARK: mark}),
    )
    .await?;
    stores::azure_blob(env, &["put", &azure_orphan, &blob_path, &mark_arg]).await?;

    // The e2e operator sweeps every 3 s with no grace period.
    eventually(
        "the orphans to be collected",
        Duration::from_secs(60),
        || async {
            let gcs = stores::gcs_object(env, &gcs_orphan).await?.is_none();
            let azure = !stores::azure_exists(env, &azure_orphan).await?;
            Ok((gcs && azure).then_some(()))
        },
    )
    .await?;
    ensure!(
        stores::gcs_object(env, &gcs_foreign).await?.is_some(),
        "another cluster's GCS archive was deleted"
    );
    ensure!(
        stores::azure_exists(env, &azure_foreign).await?,
        "another cluster's Azure archive was deleted"
    );
    Ok(())
}

/// This install: the CRD's uid and the namespace it serves (`<uid>/<namespace>`), and the
/// writers its install record lists.
async fn this_install(t: &TestCtx) -> Result<(String, Vec<String>)> {
    use k8s_openapi::{
        api::core::v1::ConfigMap,
        apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    };
    use kube::ResourceExt;
    let crd = Api::<CustomResourceDefinition>::all(t.client.clone())
        .get("debugbundles.velerodebug.io")
        .await?;
    let record = Api::<ConfigMap>::namespaced(t.client.clone(), &t.env.namespace)
        .get(velero_debug_crd::INSTALL_RECORD)
        .await?;
    let writers = record
        .data
        .unwrap_or_default()
        .into_keys()
        .filter_map(|k| k.strip_prefix("writer.").map(str::to_string))
        .collect();
    let install = format!("{}/{}", crd.uid().unwrap_or_default(), t.env.namespace);
    Ok((install, writers))
}

/// A mark of this install, with a writer its install record lists.
async fn install_mark(t: &TestCtx) -> Result<String> {
    let (install, writers) = this_install(t).await?;
    let writer = writers
        .first()
        .ok_or_else(|| anyhow::anyhow!("no writer in the install record"))?;
    Ok(format!("{install}/{writer}"))
}

/// Whether `mark` is this install's: its cluster and namespace, a writer it recorded.
async fn is_install_mark(t: &TestCtx, mark: &serde_json::Value) -> Result<bool> {
    let (install, writers) = this_install(t).await?;
    let Some((base, writer)) = mark.as_str().and_then(|m| m.rsplit_once('/')) else {
        return Ok(false);
    };
    Ok(base == install && writers.iter().any(|w| w == writer))
}

#[tokio::test]
async fn gcs_and_azure_credentials_and_buckets_that_cannot_work_are_named() -> Result<()> {
    let t = &TestCtx::new().await?;
    let env = &t.env;
    let (_, backup, _) = real_backup(t, "stores-bad").await?;
    let gcs = |secret: &str, bucket: &str| {
        serde_json::json!({"provider": "gcp", "objectStorage": {"bucket": bucket, "prefix": "bad"},
                           "credential": {"name": secret, "key": "cloud"}})
    };
    let azure = |secret: &str, container: &str| {
        serde_json::json!({"provider": "azure", "objectStorage": {"bucket": container, "prefix": "bad"},
            "credential": {"name": secret, "key": "cloud"},
            "config": {"storageAccount": env.azure.account, "storageAccountURI": env.azure.endpoint,
                       "resourceGroup": "rg", "subscriptionId": "s",
                       "storageAccountKeyEnvVar": "AZURE_STORAGE_ACCOUNT_ACCESS_KEY"}})
    };
    let azure_with_ca = |spec: serde_json::Value| {
        let mut spec = spec;
        if let Some(ca) = &env.azure.ca_file {
            use base64::Engine;
            let pem = std::fs::read(ca).unwrap_or_default();
            spec["objectStorage"]["caCert"] =
                serde_json::json!(base64::engine::general_purpose::STANDARD.encode(pem));
        }
        spec
    };

    // GCS: a federation whose subject token a command would make is refused by name (the
    // operator runs nothing a Secret names); a missing bucket is named.
    let federation = serde_json::json!({
        "type": "external_account",
        "audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/k",
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "credential_source": {"executable": {"command": "/bin/sh -c id"}},
    });
    credential_secret(t, "gcs-bad-credentials", &federation.to_string()).await?;
    let bsl = own_location(
        t,
        "gcs-federated",
        gcs("gcs-bad-credentials", &env.gcs.bucket),
    )
    .await?;
    let reason = failed_reason(t, &backup, &bsl).await?;
    ensure!(
        reason.starts_with("UnsupportedStorageLocation")
            && reason.contains("credential_source.executable"),
        "{reason}"
    );
    // A federation naming a universe of its own would send the pod's projected token to that
    // universe's sts. host and the IAM bearer to its iamcredentials. host: refused, naming the
    // key and the value, before any request.
    let foreign = serde_json::json!({
        "type": "external_account",
        "audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/k",
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "universe_domain": "evil.example",
        "token_url": "https://sts.evil.example/v1/token",
        "credential_source": {"file": "/var/run/service-account/token"},
    });
    credential_secret(t, "gcs-bad-credentials", &foreign.to_string()).await?;
    let bsl = own_location(
        t,
        "gcs-universe",
        gcs("gcs-bad-credentials", &env.gcs.bucket),
    )
    .await?;
    let reason = failed_reason(t, &backup, &bsl).await?;
    ensure!(
        reason.starts_with("UnsupportedStorageLocation")
            && reason.contains("universe_domain of the")
            && reason.contains("\"evil.example\""),
        "{reason}"
    );
    let bsl = own_location(t, "gcs-nobucket", gcs("gcs-credentials", "no-such-bucket")).await?;
    let reason = failed_reason(t, &backup, &bsl).await?;
    ensure!(reason.starts_with("BucketNotFound"), "{reason}");

    // Azure: a wrong key is refused by Azurite; a missing key is named; a missing container
    // is named.
    let wrong_key = "AZURE_STORAGE_ACCOUNT_ACCESS_KEY=d3Jvbmcga2V5IGZvciB0aGUgYWNjb3VudA==";
    credential_secret(t, "azure-bad-credentials", wrong_key).await?;
    let bsl = own_location(
        t,
        "azure-wrongkey",
        azure_with_ca(azure("azure-bad-credentials", &env.azure.container)),
    )
    .await?;
    let reason = failed_reason(t, &backup, &bsl).await?;
    ensure!(reason.starts_with("CredentialsInvalid"), "{reason}");
    let bsl = own_location(
        t,
        "azure-nocontainer",
        azure_with_ca(azure("azure-credentials", "no-such-container")),
    )
    .await?;
    let reason = failed_reason(t, &backup, &bsl).await?;
    ensure!(reason.starts_with("BucketNotFound"), "{reason}");
    credential_secret(
        t,
        "azure-bad-credentials",
        "AZURE_CLIENT_ID=c\nAZURE_TENANT_ID=t\nAZURE_CLIENT_SECRET=s\n",
    )
    .await?;
    let bsl = own_location(
        t,
        "azure-entra",
        azure_with_ca(azure("azure-bad-credentials", &env.azure.container)),
    )
    .await?;
    let reason = failed_reason(t, &backup, &bsl).await?;
    // config.storageAccountKeyEnvVar names a key the Secret lacks: as in Velero, the key is
    // what is used then, not the Secret's Entra ID identity, and the message says so.
    ensure!(
        reason.starts_with("CredentialsInvalid")
            && reason.contains("AZURE_STORAGE_ACCOUNT_ACCESS_KEY")
            && reason.contains("remove config.storageAccountKeyEnvVar"),
        "{reason}"
    );
    a_foreign_account_uri_gets_nothing_signed(
        t,
        &backup,
        azure("azure-credentials", &env.azure.container),
    )
    .await
}

/// Whoever may edit a BSL but not read its Secret points storageAccountURI at their own
/// host: the bundle fails naming the key and the host, and that host is never connected to,
/// neither by the bundle nor by the garbage collector's sweeps of the location.
async fn a_foreign_account_uri_gets_nothing_signed(
    t: &TestCtx,
    backup: &str,
    mut spec: serde_json::Value,
) -> Result<()> {
    let collector = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = collector.local_addr()?;
    let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = connections.clone();
    let accepting = tokio::spawn(async move {
        while collector.accept().await.is_ok() {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    spec["config"]["storageAccountURI"] =
        serde_json::json!(format!("http://{address}/{}", t.env.azure.account));
    let bsl = own_location(t, "azure-collector", spec).await?;
    let reason = failed_reason(t, backup, &bsl).await?;
    // The environment's sweeps run every 3 s: a few of them see the location too.
    tokio::time::sleep(Duration::from_secs(8)).await;
    accepting.abort();
    ensure!(
        reason.starts_with("UnsupportedStorageLocation")
            && reason.contains("config.storageAccountURI")
            && reason.contains(&address.to_string()),
        "{reason}"
    );
    let seen = connections.load(std::sync::atomic::Ordering::SeqCst);
    ensure!(
        seen == 0,
        "the collector at {address} was connected to {seen} times"
    );
    Ok(())
}

/// An AWS BSL's Secret may name a role's web identity token only where the operator's pod has
/// its own: a profile that would have the operator read a token file of the Secret's choosing
/// (here the Kubernetes ServiceAccount token) is refused, naming the file, before any file is
/// read or endpoint called.
#[tokio::test]
async fn an_aws_secret_naming_a_token_file_of_its_choosing_is_refused_by_name() -> Result<()> {
    let t = &TestCtx::new().await?;
    let env = &t.env;
    let (_, backup, _) = real_backup(t, "aws-role").await?;
    credential_secret(
        t,
        "aws-bad-credentials",
        "[default]\nrole_arn = arn:aws:iam::123456789012:role/velero\n\
         web_identity_token_file = /var/run/secrets/kubernetes.io/serviceaccount/token\n",
    )
    .await?;
    let bsl = own_location(
        t,
        "aws-role",
        serde_json::json!({"provider": "aws",
            "objectStorage": {"bucket": env.s3.bucket, "prefix": "bad"},
            "credential": {"name": "aws-bad-credentials", "key": "cloud"},
            "config": {"region": env.s3.region, "s3Url": env.s3.endpoint,
                       "s3ForcePathStyle": "true"}}),
    )
    .await?;
    let reason = failed_reason(t, &backup, &bsl).await?;
    ensure!(
        reason.starts_with("CredentialsInvalid")
            && reason.contains(
                "web_identity_token_file /var/run/secrets/kubernetes.io/serviceaccount/token in \
                 profile [default] is refused"
            ),
        "{reason}"
    );
    Ok(())
}

/// An archive of several parts (40 MiB) goes through each store's upload protocol: five S3
/// parts, two Azure blocks (32 MiB and the rest) committed in order, one GCS resumable
/// session fed in one streamed request.
#[tokio::test]
async fn an_archive_of_several_parts_is_uploaded_to_each_store() -> Result<()> {
    use std::io::Write;
    let t = &TestCtx::new().await?;
    // The port reaches BSL gcs as the operator does (run-e2e.sh exports it).
    ensure!(
        std::env::var("STORAGE_EMULATOR_HOST").ok().as_deref() == Some(t.env.gcs.endpoint.as_str()),
        "STORAGE_EMULATOR_HOST must be {} (run the suite with make e2e)",
        t.env.gcs.endpoint
    );
    let mut file = tempfile::NamedTempFile::new()?;
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..(40 << 20) / 8 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        file.write_all(&state.to_le_bytes())?;
    }
    file.flush()?;
    let bsls: Api<DynamicObject> = Api::namespaced_with(
        t.client.clone(),
        &t.env.namespace,
        &velero_resource("BackupStorageLocation"),
    );
    let secrets: Api<Secret> = Api::namespaced(t.client.clone(), &t.env.namespace);
    for (bsl, secret) in [
        ("default", "cloud-credentials"),
        ("gcs", "gcs-credentials"),
        ("azure", "azure-credentials"),
    ] {
        let text = secrets
            .get(secret)
            .await?
            .data
            .and_then(|mut d| d.remove("cloud"))
            .map(|b| String::from_utf8_lossy(&b.0).into_owned());
        let object = unique_name("parts");
        velero_debug_operator::measure_upload(
            &bsls.get(bsl).await?,
            text.as_deref(),
            file.path(),
            &object,
        )
        .await
        .with_context(|| format!("BSL {bsl}"))?;
    }
    Ok(())
}

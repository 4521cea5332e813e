//! Azure locations reached with Entra ID (`useAAD`), as AKS installs set them: the Secret
//! holds a service principal, the operator exchanges its secret for a token at the
//! environment's Entra token endpoint (NAV's mock-oauth2-server at the BSL's
//! activeDirectoryAuthorityURI), and Azurite in its OAuth mode takes the token: the archive is
//! written with it and the read URL is a user-delegation SAS, which Azurite verifies. A secret
//! that is not the principal's gets a token of another issuer, which Azurite refuses: the
//! bundle ends CredentialsInvalid. Workload identity likewise: the operator's own federated
//! token (AZURE_FEDERATED_TOKEN_FILE in its environment, as AKS's webhook sets it) exchanged
//! for the principal's token; a token the issuer does not take ends CredentialsInvalid.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use kube::{
    Api,
    api::{DynamicObject, PostParams},
};
use velero_debug_crd::{DebugBundle, Phase};
use velero_debug_e2e::{
    archives,
    backups::real_backup,
    bundles::{apply_bundle, condition_reason, wait_completed, wait_finished},
    context::{TestCtx, unique_name},
    env::{EntraEnv, Env},
    operators::restart_operators,
    storage_locations::credential_secret,
};
use velero_debug_operator::velero::resource as velero_resource;

fn entra(env: &Env) -> Result<&EntraEnv> {
    env.entra
        .as_ref()
        .context("this environment has no Entra token issuer: restart it (make env-down env-up)")
}

/// A BSL over Azurite's container with `useAAD`, its credential Secret `secret` (one the
/// chart lets the operator read: tests/env/lifecycle/operator/chart-install.sh) holding `dotenv`.
async fn entra_location(t: &TestCtx, secret: &str, dotenv: &str) -> Result<String> {
    entra_location_edited(t, secret, dotenv, |_| {}).await
}

/// The same, its spec edited by `edit` before it is made.
async fn entra_location_edited(
    t: &TestCtx,
    secret: &str,
    dotenv: &str,
    edit: impl FnOnce(&mut serde_json::Value),
) -> Result<String> {
    let (env, entra) = (&t.env, entra(&t.env)?);
    let name = unique_name("aad");
    credential_secret(t, secret, dotenv).await?;
    let ca = std::fs::read(env.azure.ca_file.as_ref().context("Azurite has no CA")?)?;
    use base64::Engine;
    let spec = serde_json::json!({
        "provider": "azure",
        "objectStorage": {"bucket": env.azure.container, "prefix": format!("{name}-prefix"),
                          "caCert": base64::engine::general_purpose::STANDARD.encode(ca)},
        "credential": {"name": secret, "key": "cloud"},
        "config": {"storageAccount": env.azure.account, "storageAccountURI": env.azure.endpoint,
                   "useAAD": "true", "activeDirectoryAuthorityURI": entra.authority,
                   "resourceGroup": "rg", "subscriptionId": "s"},
    });
    let mut spec = spec;
    edit(&mut spec);
    let resource = velero_resource("BackupStorageLocation");
    let obj: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "velero.io/v1", "kind": "BackupStorageLocation",
        "metadata": {"name": name, "namespace": env.namespace},
        "spec": spec,
    }))?;
    Api::<DynamicObject>::namespaced_with(t.client.clone(), &env.namespace, &resource)
        .create(&PostParams::default(), &obj)
        .await?;
    t.cleanup.delete(&resource, Some(&env.namespace), &name);
    Ok(name)
}

/// A bundle of a fresh backup into `location`, finished.
async fn bundle_of_backup(t: &TestCtx, location: &str, prefix: &str) -> Result<DebugBundle> {
    let (_, backup, _) = real_backup(t, prefix).await?;
    let name = apply_bundle(
        t,
        serde_json::json!({"backup": backup, "storageLocation": location}),
    )
    .await?;
    wait_finished(t, &name, Duration::from_secs(120)).await
}

fn principal(entra: &EntraEnv, secret: &str) -> String {
    format!(
        "AZURE_TENANT_ID={}\nAZURE_CLIENT_ID={}\nAZURE_CLIENT_SECRET={secret}\n",
        entra.tenant, entra.client_id
    )
}

fn https_client(env: &Env) -> Result<reqwest::Client> {
    let ca = std::fs::read(env.azure.ca_file.as_ref().context("Azurite has no CA")?)?;
    Ok(reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca)?)
        .build()?)
}

fn query_param(url: &str, name: &str) -> Option<String> {
    reqwest::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[tokio::test]
async fn a_service_principal_writes_the_bundle_with_its_token_and_signs_a_user_delegation_sas()
-> Result<()> {
    let t = &TestCtx::new().await?;
    let entra = entra(&t.env)?.clone();
    let location = entra_location(
        t,
        "azure-entra-credentials",
        &principal(&entra, &entra.client_secret),
    )
    .await?;
    let (_, backup, _) = real_backup(t, "aad").await?;
    let name = apply_bundle(
        t,
        serde_json::json!({"backup": backup, "storageLocation": location}),
    )
    .await?;
    let done: DebugBundle = wait_completed(t, &name, Duration::from_secs(120)).await?;
    let status = done.status.as_ref().context("no status")?;
    let url = status.download_url.clone().context("no URL")?;
    let archive = status.archive.as_ref().context("no archive")?;

    // A user-delegation SAS, read-only, from a key handed to the principal.
    ensure!(
        query_param(&url, "skoid").as_deref() == Some(entra.object_id.as_str()),
        "not a delegation SAS of the principal: {:.100}",
        url.split('?').nth(1).unwrap_or_default()
    );
    ensure!(query_param(&url, "sktid").as_deref() == Some(entra.tenant.as_str()));
    ensure!(query_param(&url, "sp").as_deref() == Some("r"));
    let client = https_client(&t.env)?;
    let bytes = client
        .get(&url)
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    ensure!(
        archives::sha256_hex(&bytes) == archive.sha256,
        "the download is not the archive"
    );
    ensure!(
        !archives::untar(&bytes)?.is_empty(),
        "the archive holds no file"
    );

    // Azurite verifies the delegation SAS: another object id changes what was signed.
    let forged = url.replace(
        &format!("skoid={}", entra.object_id),
        &format!("skoid={}", uuid_like(&entra.object_id)),
    );
    ensure!(forged != url, "the URL was not changed");
    let status = client.get(&forged).send().await?.status();
    ensure!(status == 403, "a SAS of another object id: HTTP {status}");
    Ok(())
}

/// Another id of the same shape: its first hex digit changed.
fn uuid_like(id: &str) -> String {
    let first = if id.starts_with('0') { '1' } else { '0' };
    format!("{first}{}", &id[1..])
}

#[tokio::test]
async fn a_secret_that_is_not_the_principals_ends_credentials_invalid() -> Result<()> {
    let t = &TestCtx::new().await?;
    let entra = entra(&t.env)?.clone();
    let location = entra_location(
        t,
        "azure-entra-wrong-credentials",
        &principal(&entra, "not-the-secret"),
    )
    .await?;
    let (_, backup, _) = real_backup(t, "aad-bad").await?;
    let name = apply_bundle(
        t,
        serde_json::json!({"backup": backup, "storageLocation": location}),
    )
    .await?;
    let b = wait_finished(t, &name, Duration::from_secs(120)).await?;
    let reason = condition_reason(&b);
    ensure!(
        b.status.as_ref().and_then(|s| s.phase) == Some(Phase::Failed)
            && reason.starts_with("CredentialsInvalid"),
        "{reason}"
    );
    ensure!(
        reason.contains("AuthenticationFailed")
            && reason.contains(&format!("service principal {}", entra.client_id)),
        "Azurite's refusal or the principal is not named: {reason}"
    );
    ensure!(
        !reason.contains("not-the-secret"),
        "the secret is in: {reason}"
    );
    Ok(())
}

/// The operator runs with its own federated token file for this test only (a restart, so
/// `serial_`): the Secret names the principal without a secret, as a workload identity's does.
#[tokio::test]
async fn serial_a_workload_identity_token_writes_the_bundle_and_one_the_issuer_refuses_fails_it()
-> Result<()> {
    let t = &TestCtx::new().await?;
    let entra = entra(&t.env)?.clone();
    let dir = tempfile::tempdir()?;
    let token_file = dir.path().join("azure-identity-token");
    std::fs::copy(&entra.federated_token_file, &token_file)?;
    let path = token_file.display().to_string();
    restart_operators(1, &[("VDO_AZURE_FEDERATED_TOKEN_FILE", path)]).await?;
    let tested = workload_identity(t, &entra, &token_file).await;
    // The usual operator back, however the test went.
    restart_operators(1, &[]).await?;
    tested
}

async fn workload_identity(
    t: &TestCtx,
    entra: &EntraEnv,
    token_file: &std::path::Path,
) -> Result<()> {
    let ids = format!(
        "AZURE_TENANT_ID={}\nAZURE_CLIENT_ID={}\n",
        entra.tenant, entra.client_id
    );
    let location = entra_location(t, "azure-entra-workload-credentials", &ids).await?;
    let done = bundle_of_backup(t, &location, "aad-wi").await?;
    let status = done.status.as_ref().context("no status")?;
    ensure!(
        status.phase == Some(Phase::Completed),
        "{}",
        condition_reason(&done)
    );
    let url = status.download_url.clone().context("no URL")?;
    ensure!(query_param(&url, "skoid").as_deref() == Some(entra.object_id.as_str()));
    https_client(&t.env)?
        .get(&url)
        .send()
        .await?
        .error_for_status()?;

    // A token the issuer does not take (expired, of another pod): the next bundle, which reads
    // the file anew, fails naming the workload identity.
    std::fs::write(token_file, expired_token(&entra.client_id))?;
    let failed = bundle_of_backup(t, &location, "aad-wi-bad").await?;
    let reason = condition_reason(&failed);
    ensure!(
        failed.status.as_ref().and_then(|s| s.phase) == Some(Phase::Failed)
            && reason.starts_with("CredentialsInvalid")
            && reason.contains(&format!(
                "workload identity token of client {}",
                entra.client_id
            )),
        "{reason}"
    );
    Ok(())
}

/// A federated token of the principal's shape that expired an hour ago.
fn expired_token(client: &str) -> String {
    use base64::Engine;
    let b64 = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
    };
    let now = jiff::Timestamp::now().as_second();
    format!(
        "{}.{}.c2lnbmVkIGJ5IG5vYm9keQ",
        b64(serde_json::json!({"alg": "HS256", "typ": "JWT"})),
        b64(
            serde_json::json!({"iss": client, "sub": client, "aud": "api://AzureADTokenExchange",
                               "iat": now - 7200, "exp": now - 3600, "jti": "expired"})
        )
    )
}

/// Whoever may edit a BSL but not read its Secret names an "account" that is a host of their
/// own: with useAAD, `storageAccount: "127.0.0.1:PORT/x"` would make the blob address
/// `https://127.0.0.1:PORT/x.blob.core.windows.net` and carry the service principal's bearer
/// token there. The account name is refused, naming the key and the value; the listener the
/// test starts is never connected to, neither by the bundle nor by the garbage collector's
/// sweeps, which tell of the refusal in a Warning event on the BSL.
#[tokio::test]
async fn an_account_name_that_names_a_host_gets_no_token() -> Result<()> {
    use k8s_openapi::api::events::v1::Event;
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };
    let t = &TestCtx::new().await?;
    let entra = entra(&t.env)?.clone();
    let collector = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = collector.local_addr()?;
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    let accepting = tokio::spawn(async move {
        while collector.accept().await.is_ok() {
            counted.fetch_add(1, Ordering::SeqCst);
        }
    });
    let account = format!("{address}/x");
    // A Secret of its own: the service principal's test rewrites azure-entra-credentials
    // meanwhile.
    let location = entra_location_edited(
        t,
        "azure-entra-injected-credentials",
        &principal(&entra, &entra.client_secret),
        |spec| {
            spec["config"]["storageAccount"] = serde_json::json!(account);
            spec["config"]
                .as_object_mut()
                .map(|c| c.remove("storageAccountURI"));
        },
    )
    .await?;
    let done = bundle_of_backup(t, &location, "aad-injected").await?;
    let reason = condition_reason(&done);
    // The environment's sweeps run every 3 s: a few of them see the location too.
    tokio::time::sleep(Duration::from_secs(8)).await;
    accepting.abort();
    ensure!(
        reason.starts_with("UnsupportedStorageLocation")
            && reason.contains("config.storageAccount")
            && reason.contains(&format!("{account:?}"))
            && reason.contains("3 to 24 lowercase letters and digits"),
        "{reason}"
    );
    let seen = connections.load(Ordering::SeqCst);
    ensure!(
        seen == 0,
        "the host the account named was connected to {seen} times"
    );
    let events: Api<Event> = Api::namespaced(t.client.clone(), &t.env.namespace);
    let regarding = kube::api::ListParams::default().fields(&format!("regarding.name={location}"));
    let told = events
        .list(&regarding)
        .await?
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(&location))
        .filter(|e| e.reason.as_deref() == Some("StorageLocationRefused"))
        .collect::<Vec<_>>();
    ensure!(
        told.len() == 1
            && told[0]
                .note
                .as_deref()
                .is_some_and(|n| n.contains("config.storageAccount")),
        "the sweeps told of the refused location {} times: {told:?}",
        told.len()
    );
    Ok(())
}

//! AWS role profiles in a BSL's Secret, as EKS installs write them: `role_arn` with
//! `web_identity_token_file` (IRSA's projected token) and `role_arn` with `source_profile`.
//! The operator assumes the role through the AWS SDK's own providers at the environment's STS
//! (moto's server, the operator's AWS_ENDPOINT_URL_STS), then writes the archive and signs its
//! URL with the role's keys, which s3s-fs accepts because moto issued them. The same Secret
//! makes the BSL Available through Velero's own AWS plugin. A role that cannot be assumed ends
//! the bundle CredentialsInvalid, naming the role and STS's answer.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use kube::{Api, api::DynamicObject};
use velero_debug_crd::{DebugBundle, Phase};
use velero_debug_e2e::{
    archives::download,
    backups::real_backup,
    bundles::{apply_bundle, condition_reason, wait_completed, wait_finished},
    context::{TestCtx, unique_name},
    operators::restart_operators,
    polling::eventually,
    storage_locations::{credential_secret, storage_location},
    sts::{IamChecks, assumed_roles, sts_env, user_without_rights},
};
use velero_debug_operator::velero::resource as velero_resource;

/// moto's default account: any role ARN of it can be assumed while moto's IAM checks are off.
const ACCOUNT: &str = "123456789012";

/// A BSL over the environment's bucket whose credential is Secret `secret` holding `profile`.
async fn role_location(t: &TestCtx, secret: &str, profile: &str) -> Result<String> {
    credential_secret(t, secret, profile).await?;
    storage_location(
        t,
        serde_json::json!({"credential": {"name": secret, "key": "cloud"}}),
    )
    .await
}

/// A bundle of a real backup into `location`, Completed and downloaded; the bundle.
async fn bundle_into(t: &TestCtx, location: &str) -> Result<DebugBundle> {
    let (_, backup, _) = real_backup(t, "role").await?;
    let name = apply_bundle(
        t,
        serde_json::json!({"backup": backup, "storageLocation": location}),
    )
    .await?;
    let done = wait_completed(t, &name, Duration::from_secs(120)).await?;
    download(&done).await?;
    Ok(done)
}

/// The bundle's URL is signed with the keys STS handed out for session `session` of `role`:
/// its credential is the role's key and its security token the role's session token.
async fn signed_by_the_role(
    t: &TestCtx,
    bundle: &DebugBundle,
    role: &str,
    session: &str,
) -> Result<()> {
    let sts = sts_env(&t.env)?;
    let assumed = assumed_roles(sts, session).await?;
    let url = bundle
        .status
        .as_ref()
        .and_then(|s| s.download_url.clone())
        .context("no URL")?;
    let url = reqwest::Url::parse(&url)?;
    let param = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let (credential, token) = (param("X-Amz-Credential"), param("X-Amz-Security-Token"));
    let signer = assumed
        .iter()
        .find(|r| credential.starts_with(&format!("{}/", r.access_key_id)))
        .with_context(|| {
            format!("the URL's credential {credential} is no key STS handed out for {session}: {assumed:?}")
        })?;
    ensure!(signer.role_arn == role, "{signer:?} is not {role}");
    ensure!(
        token == signer.session_token,
        "the URL carries another session token"
    );
    Ok(())
}

/// Velero's own AWS plugin, given the same Secret, finds the location Available: it assumed
/// the same role at the same STS.
async fn velero_finds_it_available(t: &TestCtx, location: &str) -> Result<()> {
    let api: Api<DynamicObject> = Api::namespaced_with(
        t.client.clone(),
        &t.env.namespace,
        &velero_resource("BackupStorageLocation"),
    );
    eventually(
        &format!("BSL {location} Available to Velero"),
        Duration::from_secs(150),
        || async {
            let bsl = api.get(location).await?;
            Ok((bsl.data["status"]["phase"] == "Available").then_some(()))
        },
    )
    .await
}

/// The operator runs with its own web identity token (AWS_WEB_IDENTITY_TOKEN_FILE, as EKS's
/// webhook sets it) for this test only: without AWS_ROLE_ARN beside it the AWS default chain
/// stops there, which the tests of the default chain must not meet. Restarts the operator, so
/// its name starts with `serial_`.
#[tokio::test]
async fn serial_a_role_with_a_web_identity_token_is_assumed_through_sts_and_its_keys_write_the_bundle()
-> Result<()> {
    let t = &TestCtx::new().await?;
    let token_file = sts_env(&t.env)?
        .web_identity_token_file
        .display()
        .to_string();
    restart_operators(
        1,
        &[("VDO_AWS_WEB_IDENTITY_TOKEN_FILE", token_file.clone())],
    )
    .await?;
    let tested = web_identity_role(t, &token_file).await;
    // The usual operator back, however the test went.
    restart_operators(1, &[]).await?;
    tested
}

async fn web_identity_role(t: &TestCtx, token_file: &str) -> Result<()> {
    let session = unique_name("wi");
    let role = format!("arn:aws:iam::{ACCOUNT}:role/velero-debug-wi");
    let location = role_location(
        t,
        "aws-web-identity-credentials",
        &format!(
            "[default]\nrole_arn = {role}\nweb_identity_token_file = {token_file}\n\
             role_session_name = {session}\n"
        ),
    )
    .await?;
    let bundle = bundle_into(t, &location).await?;
    signed_by_the_role(t, &bundle, &role, &session).await?;
    velero_finds_it_available(t, &location).await
}

#[tokio::test]
async fn a_role_assumed_with_a_source_profiles_keys_writes_the_bundle_with_the_roles_keys()
-> Result<()> {
    let t = &TestCtx::new().await?;
    let session = unique_name("src");
    let role = format!("arn:aws:iam::{ACCOUNT}:role/velero-debug-src");
    let location = role_location(
        t,
        "aws-assume-role-credentials",
        &format!(
            "[base]\naws_access_key_id = AKIAE2EBASE\naws_secret_access_key = base-secret\n\
             [default]\nrole_arn = {role}\nsource_profile = base\nrole_session_name = {session}\n"
        ),
    )
    .await?;
    let bundle = bundle_into(t, &location).await?;
    signed_by_the_role(t, &bundle, &role, &session).await?;
    velero_finds_it_available(t, &location).await
}

/// With moto's IAM checks on, the source profile's keys are a user's with no right to assume
/// any role: STS answers AccessDenied, and the bundle fails at once naming the role, however
/// often it could retry. Serial: the checks would refuse the other tests' unsigned calls.
#[tokio::test]
async fn serial_a_role_that_cannot_be_assumed_ends_the_bundle_credentials_invalid() -> Result<()> {
    let t = &TestCtx::new().await?;
    let sts = sts_env(&t.env)?;
    let (_, backup, _) = real_backup(t, "denied").await?;
    let (key, secret) = user_without_rights(sts, &unique_name("no-rights")).await?;
    let role = format!("arn:aws:iam::{ACCOUNT}:role/velero-debug-denied");
    let location = role_location(
        t,
        "aws-denied-role-credentials",
        &format!(
            "[base]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n\
             [default]\nrole_arn = {role}\nsource_profile = base\n"
        ),
    )
    .await?;
    let _checks = IamChecks::on(sts).await?;
    let name = apply_bundle(
        t,
        serde_json::json!({"backup": backup, "storageLocation": location}),
    )
    .await?;
    let done = wait_finished(t, &name, Duration::from_secs(120)).await?;
    let reason = condition_reason(&done);
    ensure!(
        done.status.as_ref().and_then(|s| s.phase) == Some(Phase::Failed),
        "not Failed: {reason}"
    );
    ensure!(
        reason.starts_with("CredentialsInvalid")
            && reason.contains(&role)
            && reason.contains("AccessDenied"),
        "{reason}"
    );
    // Failed on the first answer, not after the attempts a transient error gets.
    let attempts = done.status.as_ref().and_then(|s| s.attempts);
    ensure!(attempts == Some(1), "attempts: {attempts:?}");
    Ok(())
}

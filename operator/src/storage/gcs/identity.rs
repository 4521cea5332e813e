//! GCS credentials that hold no key, as velero-plugin-for-gcp takes them through Google's
//! libraries: no Secret means the metadata server (GKE Workload Identity); a Secret of type
//! `external_account` means workload identity federation, `authorized_user` a user's refresh
//! token, `impersonated_service_account` a service account impersonated with either. Tokens come from Google's own auth
//! crate (google-cloud-auth), which caches them and fetches the next before the last expires;
//! we wrote no token exchange. Read URLs are signed by IAM `signBlob` (written here: one POST,
//! which the crate offers only for the metadata server's own account) as the BSL's
//! `serviceAccount`, the plugin's way, else as the account a federation impersonates.

use std::time::Duration;

use base64::Engine;
use google_cloud_auth::credentials::{
    AccessTokenCredentials, external_account, impersonated, mds, user_account,
};
use serde::Deserialize;

use crate::config::TrustedHosts;
use crate::storage::{
    location::StorageLocation, port::ReadError, provider_names, transport::trust,
};

/// A token exchange that takes longer is given up (and retried by the bundle, within its
/// deadline): a metadata server or STS that never answers must not hold a bundle.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(30);
const SIGN_TIMEOUT: Duration = Duration::from_secs(30);
/// The most of an IAM or token error kept in a message.
const MESSAGE_LIMIT: usize = 300;

/// Google-documented path of the projected token a Kubernetes pod exchanges through workload
/// identity federation, beside the other clouds' projected token paths.
const TOKEN_FILES: [&str; 4] = [
    "/var/run/service-account/token",
    "/var/run/secrets/eks.amazonaws.com/serviceaccount/token",
    "/var/run/secrets/openshift/serviceaccount/token",
    "/var/run/secrets/azure/tokens/azure-identity-token",
];
/// The hosts AWS's instance metadata answers on, the only ones an `aws1` source may name.
const AWS_METADATA_HOSTS: [&str; 2] = ["169.254.169.254", "[fd00:ec2::254]"];

/// A token-bearing identity: what requests are made as and who signs read URLs.
pub(in crate::storage) struct TokenIdentity {
    credentials: AccessTokenCredentials,
    /// What the token is, for messages: never the token.
    pub(in crate::storage) summary: String,
    /// The service account IAM signs read URLs as.
    pub(in crate::storage) signer: Option<String>,
    /// IAM credentials' API root: `https://iamcredentials.googleapis.com`.
    pub(in crate::storage) iam: String,
}

impl std::fmt::Debug for TokenIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIdentity")
            .field("summary", &self.summary)
            .field("signer", &self.signer)
            .finish_non_exhaustive()
    }
}

/// Why a token or a signature could not be had.
#[derive(Debug)]
pub(in crate::storage) struct TokenFailure {
    /// Trying again may help: the server was out of reach, slow or overloaded.
    pub transient: bool,
    pub message: String,
}

/// The metadata server's token (no Secret): GKE Workload Identity, or the node's account.
/// `GCE_METADATA_HOST` in the operator's environment moves it, as in Google's libraries.
/// `endpoint` None: the crate's, which `GCE_METADATA_HOST` moves.
pub(in crate::storage) fn metadata_server(
    location: &StorageLocation,
    scope: &str,
    endpoint: Option<&str>,
) -> Result<TokenIdentity, ReadError> {
    let signer = signer(location)?.ok_or_else(|| ReadError::Unsupported {
        what: "a GCS location without a key and without config.serviceAccount".into(),
        instead: "set config.serviceAccount to the Google service account that signs read URLs through IAM signBlob (velero-plugin-for-gcp requires it too), or put a service-account key in the Secret".into(),
    })?;
    let mut builder = mds::Builder::default().with_scopes([scope]);
    if let Some(endpoint) = endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    let credentials = builder
        .build_access_token_credentials()
        .map_err(|e| ReadError::Unusable(format!("the metadata server's credentials: {e}")))?;
    Ok(TokenIdentity {
        credentials,
        summary: "the metadata server's token (GKE Workload Identity)".into(),
        signer: Some(signer),
        iam: iam_root(location.config("universeDomain")),
    })
}

/// `config.serviceAccount`, checked to be an email: it becomes part of a URL path.
fn signer(location: &StorageLocation) -> Result<Option<String>, ReadError> {
    let Some(email) = location.config("serviceAccount") else {
        return Ok(None);
    };
    if is_service_account(email) {
        Ok(Some(email.to_string()))
    } else {
        Err(ReadError::Unusable(format!(
            "config.serviceAccount {:?} is not a service account's email",
            crate::storage::transport::http::printable(email, 80)
        )))
    }
}

fn is_service_account(email: &str) -> bool {
    let (name, domain) = email.split_once('@').unwrap_or(("", ""));
    !name.is_empty()
        && domain.contains('.')
        && email.len() <= 254
        && email
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@.-_".contains(&b))
}

fn iam_root(universe: Option<&str>) -> String {
    format!(
        "https://iamcredentials.{}",
        universe
            .filter(|u| !u.is_empty())
            .unwrap_or("googleapis.com")
    )
}

/// An `external_account` file: the settings read, each checked; the rest is ignored.
#[derive(Deserialize, Default)]
struct ExternalAccount {
    #[serde(default)]
    audience: String,
    #[serde(default)]
    subject_token_type: String,
    #[serde(default)]
    token_url: Option<String>,
    #[serde(default)]
    service_account_impersonation_url: Option<String>,
    #[serde(default)]
    credential_source: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    universe_domain: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    workforce_pool_user_project: Option<String>,
}

/// Workload identity federation from the Secret's `external_account` file. The crate never
/// sees the Secret: it gets a file rebuilt from the checked settings, whose token is the pod's
/// own projected token (`token_files`), exchanged at Google's STS only (or a trusted host).
pub(in crate::storage) fn external_account(
    location: &StorageLocation,
    contents: &str,
    scope: &str,
    trusted: &TrustedHosts,
    token_files: &[String],
) -> Result<TokenIdentity, ReadError> {
    let file: ExternalAccount = serde_json::from_str(contents)
        .map_err(|e| ReadError::Unusable(format!("it is not an external_account file ({e})")))?;
    if file.audience.is_empty() || file.subject_token_type.is_empty() {
        return Err(ReadError::Unusable(
            "the external_account file lacks audience or subject_token_type".into(),
        ));
    }
    let universe = provider_names::gcs_universe(
        "universe_domain of the external_account file",
        file.universe_domain.as_deref(),
        trusted,
    )?;
    let token_url = file
        .token_url
        .clone()
        .unwrap_or_else(|| format!("https://sts.{universe}/v1/token"));
    trust::check_endpoint(
        "token_url",
        &token_url,
        &[&format!("sts.{universe}")],
        trusted,
    )?;
    let impersonated = impersonated_account(&file, &universe, trusted)?;
    let source = credential_source(&file.credential_source, token_files)?;
    let mut rebuilt = serde_json::json!({
        "type": "external_account",
        "audience": file.audience,
        "subject_token_type": file.subject_token_type,
        "token_url": token_url,
        "credential_source": source,
        "universe_domain": universe,
    });
    let optional = [
        (
            "service_account_impersonation_url",
            &file.service_account_impersonation_url,
        ),
        ("client_id", &file.client_id),
        ("client_secret", &file.client_secret),
        (
            "workforce_pool_user_project",
            &file.workforce_pool_user_project,
        ),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            rebuilt[key] = value.clone().into();
        }
    }
    let credentials = external_account::Builder::new(rebuilt)
        .with_scopes([scope])
        .build_access_token_credentials()
        .map_err(|e| ReadError::Unusable(format!("the external_account file: {e}")))?;
    let summary = match &impersonated {
        Some(email) => format!("the federated token of {}, as {email}", file.audience),
        None => format!("the federated token of {}", file.audience),
    };
    let signer = required_signer(location, impersonated, "an external_account")?;
    Ok(TokenIdentity {
        credentials,
        summary,
        signer: Some(signer),
        iam: iam_root(Some(&universe)),
    })
}

/// Who signs read URLs: config.serviceAccount, else the account the credential impersonates;
/// without either the bundle could be written but never handed out.
fn required_signer(
    location: &StorageLocation,
    impersonated: Option<String>,
    what: &str,
) -> Result<String, ReadError> {
    signer(location)?
        .or(impersonated)
        .ok_or_else(|| ReadError::Unsupported {
            what: format!("{what} credential that names no service account to sign read URLs"),
            instead: "set config.serviceAccount to the Google service account whose identity signs read URLs through IAM signBlob".into(),
        })
}

/// Where a user's refresh token is exchanged: Google's token endpoint, whatever the file's
/// `token_uri` says, as google-auth does ("always overrides").
pub(in crate::storage) const GOOGLE_TOKEN_ENDPOINT: &str = "https://oauth2.googleapis.com/token";

/// A user's refresh token (`authorized_user`, as `gcloud auth application-default login`
/// writes it), exchanged at `token_endpoint` ([`GOOGLE_TOKEN_ENDPOINT`]).
pub(in crate::storage) fn authorized_user(
    location: &StorageLocation,
    contents: &str,
    scope: &str,
    token_endpoint: &str,
) -> Result<TokenIdentity, ReadError> {
    let file: serde_json::Value = serde_json::from_str(contents)
        .map_err(|e| ReadError::Unusable(format!("it is not an authorized_user file ({e})")))?;
    let rebuilt = user_file(&file, token_endpoint)?;
    let client = rebuilt["client_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let credentials = user_account::Builder::new(rebuilt)
        .with_scopes([scope])
        .build_access_token_credentials()
        .map_err(|e| ReadError::Unusable(format!("the authorized_user file: {e}")))?;
    Ok(TokenIdentity {
        credentials,
        summary: format!("the refresh token of OAuth client {}", printable(&client)),
        signer: Some(required_signer(location, None, "an authorized_user")?),
        iam: iam_root(location.config("universeDomain")),
    })
}

/// An `authorized_user` file rebuilt from its settings, its refresh token sent to
/// `token_endpoint` (never the file's `token_uri`).
fn user_file(
    file: &serde_json::Value,
    token_endpoint: &str,
) -> Result<serde_json::Value, ReadError> {
    let text = |key: &str| file.get(key).and_then(|v| v.as_str()).unwrap_or_default();
    for key in ["client_id", "client_secret", "refresh_token"] {
        if text(key).is_empty() {
            return Err(ReadError::Unusable(format!(
                "the authorized_user file has no {key}"
            )));
        }
    }
    Ok(serde_json::json!({
        "type": "authorized_user", "client_id": text("client_id"),
        "client_secret": text("client_secret"), "refresh_token": text("refresh_token"),
        "token_uri": token_endpoint,
    }))
}

/// A service account impersonated with a key or a user's refresh token
/// (`impersonated_service_account`, as `gcloud auth application-default login
/// --impersonate-service-account` writes it); the impersonated account signs read URLs.
pub(in crate::storage) fn impersonated_account_file(
    location: &StorageLocation,
    contents: &str,
    scope: &str,
    trusted: &TrustedHosts,
    token_endpoint: &str,
) -> Result<TokenIdentity, ReadError> {
    let file: serde_json::Value = serde_json::from_str(contents).map_err(|e| {
        ReadError::Unusable(format!(
            "it is not an impersonated_service_account file ({e})"
        ))
    })?;
    let url = file["service_account_impersonation_url"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let universe = location
        .config("universeDomain")
        .unwrap_or("googleapis.com");
    let shape = ExternalAccount {
        service_account_impersonation_url: Some(url.clone()),
        ..ExternalAccount::default()
    };
    let email = impersonated_account(&shape, universe, trusted)?
        .ok_or_else(|| ReadError::Unusable("no service_account_impersonation_url".into()))?;
    let source = &file["source_credentials"];
    let source = match source["type"].as_str() {
        Some("authorized_user") => user_file(source, token_endpoint)?,
        Some("service_account") => key_file(source, trusted)?,
        other => {
            return Err(ReadError::Unsupported {
                what: format!(
                    "source_credentials of type {:?} in an impersonated_service_account file",
                    printable(other.unwrap_or_default())
                ),
                instead: "impersonate with a service-account key or a user's refresh token".into(),
            });
        }
    };
    let mut rebuilt = serde_json::json!({
        "type": "impersonated_service_account",
        "service_account_impersonation_url": url,
        "source_credentials": source,
    });
    if let Some(delegates) = file.get("delegates").filter(|d| d.is_array()) {
        rebuilt["delegates"] = delegates.clone();
    }
    let credentials = impersonated::Builder::new(rebuilt)
        .with_scopes([scope])
        .build_access_token_credentials()
        .map_err(|e| ReadError::Unusable(format!("the impersonated_service_account file: {e}")))?;
    Ok(TokenIdentity {
        credentials,
        summary: format!("the token of {email}, impersonated"),
        signer: Some(required_signer(
            location,
            Some(email),
            "an impersonated_service_account",
        )?),
        iam: iam_root(Some(universe)),
    })
}

/// A service-account key as a source of impersonation, its token endpoint checked.
fn key_file(
    file: &serde_json::Value,
    trusted: &TrustedHosts,
) -> Result<serde_json::Value, ReadError> {
    let text = |key: &str| file.get(key).and_then(|v| v.as_str()).unwrap_or_default();
    if text("client_email").is_empty() || text("private_key").is_empty() {
        return Err(ReadError::Unusable(
            "the source service-account key has no client_email or private_key".into(),
        ));
    }
    let token_uri = match text("token_uri") {
        "" => GOOGLE_TOKEN_ENDPOINT.to_string(),
        uri => {
            trust::check_endpoint("token_uri", uri, &["oauth2.googleapis.com"], trusted)?;
            uri.to_string()
        }
    };
    Ok(serde_json::json!({
        "type": "service_account", "client_email": text("client_email"),
        "private_key": text("private_key"), "private_key_id": text("private_key_id"),
        "token_uri": token_uri,
    }))
}

fn printable(text: &str) -> String {
    crate::storage::transport::http::printable(text, 120)
}

/// The account an `external_account` impersonates, read from its IAM URL (which must be
/// Google's: the federated token is sent there).
fn impersonated_account(
    file: &ExternalAccount,
    universe: &str,
    trusted: &TrustedHosts,
) -> Result<Option<String>, ReadError> {
    let Some(url) = &file.service_account_impersonation_url else {
        return Ok(None);
    };
    trust::check_endpoint(
        "service_account_impersonation_url",
        url,
        &[&format!("iamcredentials.{universe}")],
        trusted,
    )?;
    let email = url
        .rsplit_once("/serviceAccounts/")
        .and_then(|(_, rest)| rest.strip_suffix(":generateAccessToken"))
        .filter(|e| is_service_account(e));
    match email {
        Some(email) => Ok(Some(email.to_string())),
        None => Err(ReadError::Unusable(
            "service_account_impersonation_url does not name a service account's generateAccessToken".into(),
        )),
    }
}

/// The subject token's source: the pod's own projected token file, or AWS's instance
/// metadata. A URL or a command the Secret chooses is refused by name.
fn credential_source(
    source: &serde_json::Map<String, serde_json::Value>,
    token_files: &[String],
) -> Result<serde_json::Value, ReadError> {
    let text = |key: &str| source.get(key).and_then(|v| v.as_str());
    let refused = |key: &str, why: &str| {
        Err(ReadError::Unsupported {
            what: format!("credential_source.{key} in an external_account file ({why})"),
            instead: format!(
                "use credential_source.file with the pod's own projected token ({})",
                token_files.join(", ")
            ),
        })
    };
    if source.contains_key("executable") {
        return refused("executable", "the operator runs no command a Secret names");
    }
    if let Some(id) = text("environment_id") {
        return aws_source(source, id);
    }
    if source.contains_key("url") {
        return refused(
            "url",
            "the operator fetches no token from a URL a Secret names",
        );
    }
    let Some(file) = text("file") else {
        return Err(ReadError::Unusable(
            "the external_account file's credential_source has no file".into(),
        ));
    };
    if !token_files.iter().any(|f| f == file) {
        return refused(
            "file",
            &format!(
                "{:?} is not one of the pod's projected tokens",
                crate::storage::transport::http::printable(file, 120)
            ),
        );
    }
    let mut out = serde_json::json!({ "file": file });
    if let Some(format) = source.get("format") {
        out["format"] = format.clone();
    }
    Ok(out)
}

/// An `aws1` source: its URLs may name only AWS's instance metadata.
fn aws_source(
    source: &serde_json::Map<String, serde_json::Value>,
    id: &str,
) -> Result<serde_json::Value, ReadError> {
    if !id.starts_with("aws") {
        return Err(ReadError::Unusable(format!(
            "credential_source.environment_id {:?} is not aws1",
            crate::storage::transport::http::printable(id, 40)
        )));
    }
    let mut out = serde_json::json!({ "environment_id": id });
    for key in [
        "region_url",
        "url",
        "imdsv2_session_token_url",
        "regional_cred_verification_url",
    ] {
        let Some(value) = source.get(key).and_then(|v| v.as_str()) else {
            continue;
        };
        let host = reqwest::Url::parse(value)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string));
        if key == "regional_cred_verification_url" {
            // Not fetched here: Google's STS is asked to call it with the signed request.
            provider_names::aws_verification_url(&format!("credential_source.{key}"), value)?;
        } else if !host.is_some_and(|h| AWS_METADATA_HOSTS.contains(&h.as_str())) {
            return Err(ReadError::Unsupported {
                what: format!(
                    "credential_source.{key} {:?} (not AWS's instance metadata)",
                    crate::storage::transport::http::printable(value, 120)
                ),
                instead: "leave the AWS source's URLs as gcloud writes them".into(),
            });
        }
        out[key] = value.into();
    }
    Ok(out)
}

/// The projected token files an `external_account` may read: the paths above, and those the
/// EKS and AKS webhooks name in the operator's environment (each is the pod's own token).
pub(in crate::storage) fn token_files() -> Vec<String> {
    let named = ["AWS_WEB_IDENTITY_TOKEN_FILE", "AZURE_FEDERATED_TOKEN_FILE"]
        .into_iter()
        .filter_map(|v| std::env::var(v).ok())
        .filter(|f| !f.is_empty());
    TOKEN_FILES
        .into_iter()
        .map(str::to_string)
        .chain(named)
        .collect()
}

impl TokenIdentity {
    /// A current access token, fetched or renewed by the crate's cache.
    pub(in crate::storage) async fn access_token(&self) -> Result<String, TokenFailure> {
        match tokio::time::timeout(TOKEN_TIMEOUT, self.credentials.access_token()).await {
            Ok(Ok(token)) => Ok(token.token),
            Ok(Err(e)) => Err(TokenFailure {
                transient: e.is_transient(),
                message: format!(
                    "getting {}: {}",
                    self.summary,
                    crate::storage::transport::http::printable(&e.to_string(), MESSAGE_LIMIT)
                ),
            }),
            Err(_) => Err(TokenFailure {
                transient: true,
                message: format!(
                    "getting {}: no answer in {}s",
                    self.summary,
                    TOKEN_TIMEOUT.as_secs()
                ),
            }),
        }
    }

    /// Signs `message` as the signer account through IAM's signBlob, as
    /// velero-plugin-for-gcp signs read URLs without a key.
    pub(in crate::storage) async fn sign_blob(
        &self,
        http: &reqwest::Client,
        message: &[u8],
    ) -> Result<Vec<u8>, TokenFailure> {
        let Some(email) = &self.signer else {
            return Err(TokenFailure {
                transient: false,
                message: format!(
                    "no service account signs read URLs for {}: set the BSL's config.serviceAccount",
                    self.summary
                ),
            });
        };
        let token = self.access_token().await?;
        let request = sign_blob_request(http, &self.iam, email, &token, message);
        let failed = |transient: bool, why: String| TokenFailure {
            transient,
            message: format!("IAM signBlob as {email}: {why}"),
        };
        let response = request.timeout(SIGN_TIMEOUT).send().await.map_err(|e| {
            failed(
                true,
                crate::storage::transport::http::printable(&e.to_string(), MESSAGE_LIMIT),
            )
        })?;
        let status = response.status().as_u16();
        let body = crate::storage::transport::http::read_at_most(response, 64 << 10)
            .await
            .unwrap_or_default();
        let body = body.as_slice();
        if status != 200 {
            let transient = status == 429 || status >= 500;
            return Err(failed(
                transient,
                crate::storage::transport::http::json_refusal(status, body, "status"),
            ));
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Signed {
            signed_blob: String,
        }
        serde_json::from_slice::<Signed>(body)
            .ok()
            .and_then(|s| {
                base64::engine::general_purpose::STANDARD
                    .decode(s.signed_blob)
                    .ok()
            })
            .ok_or_else(|| failed(false, "the answer holds no signedBlob".into()))
    }
}

/// The signBlob request as Google's libraries send it: `{"payload": "<base64>"}` (the spacing
/// of Python's json.dumps, which the byte comparison with google-auth holds us to).
fn sign_blob_request(
    http: &reqwest::Client,
    iam: &str,
    email: &str,
    token: &str,
    message: &[u8],
) -> reqwest::RequestBuilder {
    let payload = base64::engine::general_purpose::STANDARD.encode(message);
    http.post(format!(
        "{iam}/v1/projects/-/serviceAccounts/{email}:signBlob"
    ))
    .header("content-type", "application/json")
    .bearer_auth(token)
    .body(format!("{{\"payload\": \"{payload}\"}}"))
}

#[cfg(test)]
#[path = "identity_tests.rs"]
mod tests;

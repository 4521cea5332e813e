//! Entra ID identities of an Azure location (`useAAD`), as Velero's `pkg/util/azure` builds
//! them: a service principal's secret or certificate, or a user's password, from the Secret
//! (with `AZURE_TENANT_ID` and `AZURE_CLIENT_ID`); else, when the operator's environment holds
//! `AZURE_FEDERATED_TOKEN_FILE` (AKS workload identity), that token; else a managed identity
//! (user-assigned when the Secret names `AZURE_CLIENT_ID`). The Secret's own secret, certificate
//! or password: MSAL's requests, written in token_grant.rs; workload and managed
//! identity: Microsoft's `azure_identity` crate, which caches tokens and renews them before
//! they expire. All go out on our HTTP client (EntraTransport): the same
//! proxy and trust roots as the storage requests (the BSL's caCert, as Velero's transport
//! has it), and never `insecureSkipTLSVerify`, since a secret travels on them.

use std::{collections::HashMap, sync::Arc, time::Duration};

use azure_core::{
    cloud::{CloudConfiguration, CustomConfiguration},
    credentials::{Secret, TokenCredential},
    http::{AsyncRawResponse, ClientOptions, Transport},
};
use azure_identity::{
    ClientAssertionCredentialOptions, ManagedIdentityCredential, ManagedIdentityCredentialOptions,
    UserAssignedId, WorkloadIdentityCredential, WorkloadIdentityCredentialOptions,
};

use crate::config::TrustedHosts;
use crate::storage::{
    azure::certificate::CertificateAssertion,
    azure::token_grant::{Grant, GrantCredential, token_endpoint},
    location::StorageLocation,
    port::ReadError,
    transport::trust,
};

/// The scope of a token for Blob storage.
pub(in crate::storage) const STORAGE_SCOPE: &str = "https://storage.azure.com/.default";
const TOKEN_TIMEOUT: Duration = Duration::from_secs(30);
const MESSAGE_LIMIT: usize = 300;

/// The Entra authority of each cloud Velero knows by `AZURE_CLOUD_NAME`.
pub(in crate::storage) fn authority_of_cloud(cloud: &str) -> &'static str {
    match cloud {
        "azurechinacloud" => "https://login.chinacloudapi.cn",
        "azureusgovernment" | "azureusgovernmentcloud" => "https://login.microsoftonline.us",
        _ => "https://login.microsoftonline.com",
    }
}

/// An Entra ID identity and what it is, for messages (never a secret or token).
pub(in crate::storage) struct EntraIdentity {
    credential: Arc<dyn TokenCredential>,
    pub(in crate::storage) summary: String,
}

impl std::fmt::Debug for EntraIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntraIdentity")
            .field("summary", &self.summary)
            .finish_non_exhaustive()
    }
}

/// Why no token could be had.
#[derive(Debug)]
pub(in crate::storage) struct TokenFailure {
    pub transient: bool,
    pub message: String,
}

/// The operator's own environment, where AKS's webhook puts workload identity's settings.
pub(in crate::storage) struct PodIdentity {
    pub federated_token_file: Option<String>,
    pub client_id: Option<String>,
    pub tenant_id: Option<String>,
}

impl PodIdentity {
    pub(in crate::storage) fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        PodIdentity {
            federated_token_file: var("AZURE_FEDERATED_TOKEN_FILE"),
            client_id: var("AZURE_CLIENT_ID"),
            tenant_id: var("AZURE_TENANT_ID"),
        }
    }
}

/// The identity `vars` (the Secret's dotenv) and the pod name, its token requests sent to
/// the cloud's authority or the BSL's `activeDirectoryAuthorityURI` (checked: the secret
/// travels there) through `transport` ([`over`] our HTTP client).
pub(in crate::storage) fn read(
    location: &StorageLocation,
    vars: &HashMap<String, String>,
    cloud: &str,
    pod: &PodIdentity,
    trusted: &TrustedHosts,
    transport: Arc<dyn azure_core::http::HttpClient>,
) -> Result<EntraIdentity, ReadError> {
    let authority = authority(location, cloud, trusted)?;
    let options = client_options(&authority, Transport::new(transport.clone()));
    let var = |name: &str| vars.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    // Velero reads a certificate file its own pod holds; the operator reads no file a Secret
    // names.
    if var("AZURE_CLIENT_SECRET").is_none() && var("AZURE_CLIENT_CERTIFICATE_PATH").is_some() {
        return Err(ReadError::Unsupported {
            what: "Entra ID credential AZURE_CLIENT_CERTIFICATE_PATH (the operator reads no file a Secret names)".into(),
            instead: "put the PEM certificate and key in AZURE_CLIENT_CERTIFICATE (and its password in AZURE_CLIENT_CERTIFICATE_PASSWORD)".into(),
        });
    }
    if let Some((tenant, client, grant)) = held_grant(&var, &authority)? {
        let summary = match &grant {
            Grant::ClientSecret(_) => format!("service principal {client} (tenant {tenant})"),
            Grant::ClientCertificate(_) => {
                format!("service principal {client} (tenant {tenant}, certificate)")
            }
            Grant::Password { username, .. } => {
                format!("user {username} (client {client}, tenant {tenant})")
            }
        };
        let credential =
            GrantCredential::new(&authority, tenant, client, grant, transport).map_err(unusable)?;
        return Ok(EntraIdentity {
            credential: Arc::new(credential),
            summary: format!("the token of {summary} from {authority}"),
        });
    }
    if let Some(file) = &pod.federated_token_file {
        let client = var("AZURE_CLIENT_ID")
            .map(str::to_string)
            .or(pod.client_id.clone());
        let tenant = var("AZURE_TENANT_ID")
            .map(str::to_string)
            .or(pod.tenant_id.clone());
        return workload_identity(file, client, tenant, &authority, options);
    }
    managed_identity(var("AZURE_CLIENT_ID"), options)
}

/// The identity the Secret holds itself, in Velero's order: a service principal's secret,
/// else its certificate, else a user's password; each with its tenant and client.
fn held_grant<'a>(
    var: &impl Fn(&str) -> Option<&'a str>,
    authority: &str,
) -> Result<Option<(&'a str, &'a str, Grant)>, ReadError> {
    let held = [
        "AZURE_CLIENT_SECRET",
        "AZURE_CLIENT_CERTIFICATE",
        "AZURE_USERNAME",
    ]
    .into_iter()
    .find_map(|name| Some((name, var(name)?)));
    let Some((what, value)) = held else {
        return Ok(None);
    };
    let (Some(tenant), Some(client)) = (var("AZURE_TENANT_ID"), var("AZURE_CLIENT_ID")) else {
        return Err(ReadError::Unusable(format!(
            "{what} needs AZURE_TENANT_ID and AZURE_CLIENT_ID beside it"
        )));
    };
    let grant = match what {
        "AZURE_CLIENT_SECRET" => Grant::ClientSecret(Secret::new(value.to_string())),
        "AZURE_CLIENT_CERTIFICATE" => {
            let password = var("AZURE_CLIENT_CERTIFICATE_PASSWORD");
            let audience = token_endpoint(authority, tenant);
            Grant::ClientCertificate(CertificateAssertion::read(
                value, password, client, &audience,
            )?)
        }
        _ => {
            let password = var("AZURE_PASSWORD").ok_or_else(|| {
                ReadError::Unusable("AZURE_USERNAME needs AZURE_PASSWORD beside it".into())
            })?;
            Grant::Password {
                username: value.to_string(),
                password: Secret::new(password.to_string()),
            }
        }
    };
    Ok(Some((tenant, client, grant)))
}

/// The cloud's Entra authority, or the BSL's `activeDirectoryAuthorityURI` when it is that or
/// a trusted host.
fn authority(
    location: &StorageLocation,
    cloud: &str,
    trusted: &TrustedHosts,
) -> Result<String, ReadError> {
    let own = authority_of_cloud(cloud);
    match location.config("activeDirectoryAuthorityURI") {
        Some(uri) => {
            let own_host = own.trim_start_matches("https://");
            trust::check_endpoint("activeDirectoryAuthorityURI", uri, &[own_host], trusted)?;
            Ok(uri.trim_end_matches('/').to_string())
        }
        None => Ok(own.to_string()),
    }
}

fn unusable(e: azure_core::Error) -> ReadError {
    ReadError::Unusable(printable(&e.to_string()))
}

fn workload_identity(
    file: &str,
    client: Option<String>,
    tenant: Option<String>,
    authority: &str,
    options: ClientOptions,
) -> Result<EntraIdentity, ReadError> {
    let summary = format!(
        "the workload identity token of client {} (tenant {}) from {authority}",
        client.as_deref().unwrap_or("?"),
        tenant.as_deref().unwrap_or("?")
    );
    let credential = WorkloadIdentityCredential::new(Some(WorkloadIdentityCredentialOptions {
        credential_options: ClientAssertionCredentialOptions {
            client_options: options,
        },
        client_id: client,
        tenant_id: tenant,
        token_file_path: Some(file.into()),
    }))
    .map_err(unusable)?;
    Ok(EntraIdentity {
        credential,
        summary,
    })
}

fn managed_identity(
    client: Option<&str>,
    options: ClientOptions,
) -> Result<EntraIdentity, ReadError> {
    let credential = ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
        user_assigned_id: client.map(|c| UserAssignedId::ClientId(c.to_string())),
        client_options: options,
    }))
    .map_err(unusable)?;
    let summary = match client {
        Some(c) => format!("the token of managed identity {c}"),
        None => "the token of the node's managed identity".into(),
    };
    Ok(EntraIdentity {
        credential,
        summary,
    })
}

/// azure_identity's transport on our HTTP client.
pub(in crate::storage) fn over(http: reqwest::Client) -> Arc<dyn azure_core::http::HttpClient> {
    Arc::new(EntraTransport(http))
}

fn client_options(authority: &str, transport: Transport) -> ClientOptions {
    let mut cloud = CustomConfiguration::default();
    cloud.authority_host = authority.to_string();
    ClientOptions {
        transport: Some(transport),
        // No retries of its own: a bundle retries a transient failure within its deadline, and
        // the crate's backoff would outlast TOKEN_TIMEOUT on a 5xx.
        retry: azure_core::http::RetryOptions::none(),
        cloud: Some(Arc::new(CloudConfiguration::Custom(cloud))),
        ..Default::default()
    }
}

fn printable(text: &str) -> String {
    crate::storage::transport::http::printable(text, MESSAGE_LIMIT)
}

impl EntraIdentity {
    /// A current token for Blob storage.
    pub(in crate::storage) async fn token(&self) -> Result<String, TokenFailure> {
        self.token_for(STORAGE_SCOPE).await
    }

    /// A current token for `scope` (Blob storage's, or Resource Manager's).
    pub(in crate::storage) async fn token_for(&self, scope: &str) -> Result<String, TokenFailure> {
        let scopes = [scope];
        let asked = self.credential.get_token(&scopes, None);
        match tokio::time::timeout(TOKEN_TIMEOUT, asked).await {
            Ok(Ok(token)) => Ok(token.token.secret().to_string()),
            Ok(Err(e)) => Err(TokenFailure {
                transient: is_transient(&e),
                message: format!("getting {}: {}", self.summary, printable(&e.to_string())),
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
}

/// Whether Entra (or the path to it) may answer on a later try: the crate wraps the answer's
/// error in a credential error, so the whole chain is looked at.
fn is_transient(e: &azure_core::Error) -> bool {
    use azure_core::error::ErrorKind;
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(error) = current {
        if let Some(azure) = error.downcast_ref::<azure_core::Error>() {
            match azure.kind() {
                ErrorKind::HttpResponse { status, .. } => {
                    let status = u16::from(*status);
                    return status == 429 || status >= 500;
                }
                ErrorKind::Io | ErrorKind::Connection => return true,
                _ => {}
            }
        }
        current = error.source();
    }
    false
}

/// azure_identity's requests on our reqwest client.
#[derive(Debug)]
struct EntraTransport(reqwest::Client);

#[async_trait::async_trait]
impl azure_core::http::HttpClient for EntraTransport {
    async fn execute_request(
        &self,
        request: &azure_core::http::Request,
    ) -> azure_core::Result<AsyncRawResponse> {
        use azure_core::error::{Error, ErrorKind};
        let method = reqwest::Method::from_bytes(request.method().as_ref().as_bytes())
            .map_err(|e| Error::new(ErrorKind::Other, e))?;
        let mut outgoing = self
            .0
            .request(method, request.url().as_str())
            .timeout(TOKEN_TIMEOUT);
        for (name, value) in request.headers().iter() {
            outgoing = outgoing.header(name.as_str(), value.as_str());
        }
        if let azure_core::http::Body::Bytes(bytes) = request.body() {
            outgoing = outgoing.body(bytes.to_vec());
        }
        let response = outgoing
            .send()
            .await
            .map_err(|e| Error::new(ErrorKind::Io, e))?;
        let status = response.status().as_u16();
        let mut headers = azure_core::http::headers::Headers::new();
        for (name, value) in response.headers() {
            if let Ok(value) = value.to_str() {
                headers.insert(name.as_str().to_string(), value.to_string());
            }
        }
        // A token answer is a few KiB; a hostile authority's is cut.
        let body = crate::storage::transport::http::read_at_most(response, 256 << 10)
            .await
            .map_err(|e| Error::new(ErrorKind::Io, e))?;
        Ok(AsyncRawResponse::from_bytes(status.into(), headers, body))
    }
}

#[cfg(test)]
#[path = "entra_tests.rs"]
mod tests;

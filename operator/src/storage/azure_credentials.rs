//! The credential of an Azure location, read from Velero's dotenv Secret as Velero's
//! `pkg/util/azure` reads it: the storage account, its blob endpoint, and either the account's
//! access key or (with `useAAD`) an Entra ID identity (azure_entra.rs). A storageAccountURI on
//! another host than the account's own gets nothing unless trusted (trust.rs).

use std::{collections::HashMap, sync::Arc};

use base64::Engine;

use super::{
    ReadError, TrustedHosts,
    azure_entra::{self, EntraIdentity},
    http,
    location::StorageLocation,
    trust,
};

/// The variable the access key is in when `storageAccountKeyEnvVar` does not name one.
const DEFAULT_KEY_VARIABLE: &str = "AZURE_STORAGE_ACCOUNT_ACCESS_KEY";

/// The credential of an Azure location: the storage account and its access key or Entra ID
/// identity.
#[derive(Clone)]
pub(crate) struct AzureCredentials {
    pub(super) account: String,
    pub(super) auth: AzureAuth,
    /// `https://<account>.blob.core.windows.net`, or the BSL's storageAccountURI.
    pub(super) account_url: String,
}

#[derive(Clone)]
pub(super) enum AzureAuth {
    Key(Vec<u8>),
    Entra(Arc<EntraIdentity>),
}

impl std::fmt::Debug for AzureCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureCredentials")
            .field("account", &self.account)
            .field("account_url", &self.account_url)
            .field(
                "identity",
                &match &self.auth {
                    AzureAuth::Key(_) => "the account key",
                    AzureAuth::Entra(e) => e.summary.as_str(),
                },
            )
            .finish_non_exhaustive()
    }
}

impl AzureCredentials {
    /// The Secret's dotenv text as Velero reads it: the account key under the variable the BSL
    /// names, or with `useAAD` an Entra ID identity (azure_entra.rs).
    pub(super) fn read(
        location: &StorageLocation,
        contents: Option<&str>,
        trusted: &TrustedHosts,
    ) -> Result<Self, ReadError> {
        let pod = azure_entra::PodIdentity::from_env();
        Self::read_with(location, contents, trusted, &pod)
    }

    pub(super) fn read_with(
        location: &StorageLocation,
        contents: Option<&str>,
        trusted: &TrustedHosts,
        pod: &azure_entra::PodIdentity,
    ) -> Result<Self, ReadError> {
        let vars = contents.map(dotenv).unwrap_or_default();
        let cloud = cloud_name(&vars)?;
        let (account, account_url) = account_endpoint(location, storage_suffix(&cloud), trusted)?;
        let auth = if location.flag("useAAD") {
            // A secret travels to the authority: never over an unverified connection.
            let http =
                http::verified_client(location).map_err(|e| ReadError::Unusable(e.to_string()))?;
            let transport = azure_entra::over(http);
            let identity = azure_entra::read(location, &vars, &cloud, pod, trusted, transport)?;
            AzureAuth::Entra(Arc::new(identity))
        } else {
            AzureAuth::Key(account_key(location, contents.is_some(), &vars)?)
        };
        Ok(AzureCredentials {
            account,
            auth,
            account_url,
        })
    }
}

/// `AZURE_CLOUD_NAME`, lowercased, among the names Velero knows.
fn cloud_name(vars: &HashMap<String, String>) -> Result<String, ReadError> {
    let name = vars
        .get("AZURE_CLOUD_NAME")
        .map(|c| c.trim().to_ascii_lowercase())
        .unwrap_or_default();
    match name.as_str() {
        "" | "azurecloud" | "azurepubliccloud" => Ok("azurepubliccloud".into()),
        "azurechinacloud" | "azureusgovernment" | "azureusgovernmentcloud" => Ok(name),
        _ => Err(ReadError::Unusable(
            "AZURE_CLOUD_NAME is none of AzurePublicCloud, AzureUSGovernmentCloud, AzureChinaCloud"
                .into(),
        )),
    }
}

fn storage_suffix(cloud: &str) -> &'static str {
    match cloud {
        "azurechinacloud" => "core.chinacloudapi.cn",
        "azureusgovernment" | "azureusgovernmentcloud" => "core.usgovcloudapi.net",
        _ => "core.windows.net",
    }
}

/// The account and its blob endpoint as Velero's plugin derives them; a storageAccountURI on
/// another host gets no request unless trusted.
fn account_endpoint(
    location: &StorageLocation,
    suffix: &str,
    trusted: &TrustedHosts,
) -> Result<(String, String), ReadError> {
    let uri = location
        .config("storageAccountURI")
        .map(|u| u.trim_end_matches('/'));
    let account = match (location.config("storageAccount"), uri) {
        (Some(a), _) => a.to_string(),
        // `https://<account>.blob...`, or an emulator's `http://host:port/<account>`.
        (None, Some(u)) => account_of_uri(u).ok_or_else(|| {
            ReadError::Unusable("config.storageAccountURI names no account".into())
        })?,
        (None, None) => return Err(ReadError::Unusable("no config.storageAccount".into())),
    };
    let own = format!("{account}.blob.{suffix}");
    if let Some(uri) = uri {
        trust::check_endpoint("storageAccountURI", uri, &[&own], trusted)?;
    }
    let url = uri.map_or_else(|| format!("https://{own}"), str::to_string);
    Ok((account, url))
}

/// The account key, without `useAAD`.
fn account_key(
    location: &StorageLocation,
    has_secret: bool,
    vars: &HashMap<String, String>,
) -> Result<Vec<u8>, ReadError> {
    let variable = location
        .config("storageAccountKeyEnvVar")
        .unwrap_or(DEFAULT_KEY_VARIABLE);
    let instead = format!(
        "set config.useAAD: \"true\" to reach the account with an Entra ID identity (it needs a Storage Blob Data role on the account), or put the account's access key in the credential Secret as {variable}=<key>"
    );
    if !has_secret {
        return Err(ReadError::Unsupported {
            what: "an Azure location with neither a credential Secret nor config.useAAD".into(),
            instead,
        });
    }
    let Some(key) = vars.get(variable) else {
        let entra = [
            "AZURE_CLIENT_SECRET",
            "AZURE_CLIENT_ID",
            "AZURE_FEDERATED_TOKEN_FILE",
        ]
        .iter()
        .any(|v| vars.contains_key(*v));
        return Err(if entra {
            ReadError::Unsupported {
                what: "Entra ID credentials without config.useAAD (Velero then fetches the account key through Azure Resource Manager, which the operator does not)".into(),
                instead,
            }
        } else {
            ReadError::Unusable(format!("it has no {variable}"))
        });
    };
    base64::engine::general_purpose::STANDARD
        .decode(key.trim())
        .map_err(|_| ReadError::Unusable(format!("{variable} is not a base64 account key")))
}

pub(super) fn account_of_uri(uri: &str) -> Option<String> {
    let rest = uri.split_once("://")?.1;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let account = if path.is_empty() {
        host.split('.').next()?
    } else {
        path.split('/').next()?
    };
    (!account.is_empty()).then(|| account.to_string())
}

/// `NAME=value` lines, as Velero reads its Azure credential file: blank lines and `#`
/// comments skipped, `export ` and matching quotes taken off.
fn dotenv(text: &str) -> HashMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.strip_prefix("export ").unwrap_or(l).split_once('=')?;
            let value = value.trim();
            let unquoted = ['"', '\'']
                .iter()
                .find_map(|q| value.strip_prefix(*q)?.strip_suffix(*q))
                .unwrap_or(value);
            Some((name.trim().to_string(), unquoted.to_string()))
        })
        .collect()
}

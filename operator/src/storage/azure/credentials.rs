//! The credential of an Azure location, read from Velero's dotenv Secret as Velero's
//! `pkg/util/azure` reads it: the storage account, its blob endpoint, and either the account's
//! access key or (with `useAAD`) an Entra ID identity (entra.rs). A storageAccountURI on
//! another host than the account's own gets nothing unless trusted (trust.rs).

use std::{collections::HashMap, sync::Arc};

use base64::Engine;

use crate::config::TrustedHosts;
use crate::storage::{
    azure::entra::{self, EntraIdentity},
    azure::key_exchange::{self, KeyExchange},
    location::StorageLocation,
    port::ReadError,
    provider_names,
    transport::http,
    transport::trust,
};

/// The variable the access key is in when `storageAccountKeyEnvVar` does not name one.
const DEFAULT_KEY_VARIABLE: &str = "AZURE_STORAGE_ACCOUNT_ACCESS_KEY";

/// The credential of an Azure location: the storage account and its access key or Entra ID
/// identity.
#[derive(Clone)]
pub(crate) struct AzureCredentials {
    pub(in crate::storage) account: String,
    pub(in crate::storage) auth: AzureAuth,
    /// `https://<account>.blob.core.windows.net`, or the BSL's storageAccountURI.
    pub(in crate::storage) account_url: String,
}

#[derive(Clone)]
pub(in crate::storage) enum AzureAuth {
    Key(Vec<u8>),
    Entra(Arc<EntraIdentity>),
    /// The key is to be listed through Resource Manager first ([`AzureCredentials::resolved`],
    /// which credentials.rs calls before any store is connected).
    Exchange(Arc<KeyExchange>),
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
                    AzureAuth::Exchange(_) => "the account key, to list through Resource Manager",
                },
            )
            .finish_non_exhaustive()
    }
}

impl AzureCredentials {
    /// The Secret's dotenv text as Velero's `GetStorageAccountCredentials` reads it: the key
    /// under the variable `storageAccountKeyEnvVar` names; else with `useAAD` an Entra ID
    /// identity (entra.rs); else the key listed through Resource Manager with that
    /// identity (key_exchange.rs). A key under the default variable is taken too when
    /// there is one, saving the listing.
    pub(in crate::storage) fn read(
        location: &StorageLocation,
        contents: Option<&str>,
        trusted: &TrustedHosts,
    ) -> Result<Self, ReadError> {
        let pod = entra::PodIdentity::from_env();
        Self::read_with(location, contents, trusted, &pod)
    }

    pub(in crate::storage) fn read_with(
        location: &StorageLocation,
        contents: Option<&str>,
        trusted: &TrustedHosts,
        pod: &entra::PodIdentity,
    ) -> Result<Self, ReadError> {
        let vars = contents.map(dotenv).unwrap_or_default();
        let cloud = cloud_name(&vars)?;
        let (account, account_url) = account_endpoint(location, storage_suffix(&cloud), trusted)?;
        // A secret travels to the authority: never over an unverified connection.
        let http =
            || http::verified_client(location).map_err(|e| ReadError::Unusable(e.to_string()));
        let entra = |http: reqwest::Client| {
            entra::read(location, &vars, &cloud, pod, trusted, entra::over(http))
        };
        let default_key = vars.get(DEFAULT_KEY_VARIABLE);
        let auth = match location.config("storageAccountKeyEnvVar") {
            Some(variable) => AzureAuth::Key(named_key(&vars, variable)?),
            None if location.flag("useAAD") => AzureAuth::Entra(Arc::new(entra(http()?)?)),
            None if default_key.is_some() => {
                AzureAuth::Key(named_key(&vars, DEFAULT_KEY_VARIABLE)?)
            }
            None => {
                let http = http()?;
                let identity = entra(http.clone())?;
                let endpoint = key_exchange::resource_manager_of_cloud(&cloud);
                let exchange =
                    key_exchange::plan(location, &vars, &account, endpoint, identity, http)?;
                AzureAuth::Exchange(Arc::new(exchange))
            }
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
    // Checked whichever names it: it becomes the first label of the account's host.
    let key = if location.config("storageAccount").is_some() {
        "config.storageAccount"
    } else {
        "the account of config.storageAccountURI"
    };
    provider_names::azure_account(key, &account)?;
    let own = format!("{account}.blob.{suffix}");
    if let Some(uri) = uri {
        trust::check_endpoint("storageAccountURI", uri, &[&own], trusted)?;
    }
    let url = uri.map_or_else(|| format!("https://{own}"), str::to_string);
    Ok((account, url))
}

/// The account key under `variable` of the Secret.
fn named_key(vars: &HashMap<String, String>, variable: &str) -> Result<Vec<u8>, ReadError> {
    let Some(key) = vars.get(variable) else {
        let entra =
            vars.contains_key("AZURE_CLIENT_ID") || vars.contains_key("AZURE_CLIENT_SECRET");
        let hint = if entra {
            " (for its Entra ID identity, remove config.storageAccountKeyEnvVar: Velero then uses the identity)"
        } else {
            ""
        };
        return Err(ReadError::Unusable(format!(
            "it has no {variable}, which config.storageAccountKeyEnvVar names{hint}"
        )));
    };
    base64::engine::general_purpose::STANDARD
        .decode(key.trim())
        .map_err(|_| ReadError::Unusable(format!("{variable} is not a base64 account key")))
}

impl AzureCredentials {
    /// The credential ready for requests: a key to be listed through Resource Manager is
    /// listed now.
    pub(in crate::storage) async fn resolved(self) -> Result<Self, entra::TokenFailure> {
        let AzureAuth::Exchange(exchange) = &self.auth else {
            return Ok(self);
        };
        let key = exchange.key().await?;
        Ok(AzureCredentials {
            auth: AzureAuth::Key(key),
            ..self
        })
    }
}

pub(in crate::storage) fn account_of_uri(uri: &str) -> Option<String> {
    let rest = uri.split_once("://")?.1;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let account = if path.is_empty() {
        host.split('.').next()?
    } else {
        path.split('/').next()?
    };
    (!account.is_empty()).then(|| account.to_string())
}

/// `NAME=value` lines, as Velero reads its Azure credential file (godotenv): blank lines and
/// `#` comments skipped, `export ` and matching quotes taken off; a double-quoted value may go
/// on over lines (a PEM certificate) and has its `\n` escapes read as newlines.
pub(in crate::storage) fn dotenv(text: &str) -> HashMap<String, String> {
    let mut vars = HashMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, value)) = line.strip_prefix("export ").unwrap_or(line).split_once('=')
        else {
            continue;
        };
        let mut value = value.trim().to_string();
        if value.starts_with('"') && (value.len() == 1 || !value.ends_with('"')) {
            // A double-quoted value open at the line's end goes on to its closing quote.
            for next in lines.by_ref() {
                value.push('\n');
                value.push_str(next.trim_end());
                if next.trim_end().ends_with('"') {
                    break;
                }
            }
        }
        let unquoted = if let Some(inner) =
            value.strip_prefix('"').and_then(|v| v.strip_suffix('"'))
        {
            inner.replace("\\n", "\n").replace("\\\"", "\"")
        } else if let Some(inner) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
            inner.to_string()
        } else {
            value
        };
        vars.insert(name.trim().to_string(), unquoted);
    }
    vars
}

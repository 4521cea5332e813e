//! Velero's default Azure setup, neither `useAAD` nor a key in the Secret: the account's key is
//! listed through Azure Resource Manager with the Secret's Entra ID identity, as Velero's
//! `exchangeStorageAccountAccessKey` does (`listKeys` with `$expand=kerb`, the first key with
//! Full permissions), then used as a key in the Secret would be. One POST of our own on the
//! HTTP client in http.rs: no Resource Manager crate is needed for it, and the token is
//! azure_identity's.

use serde::Deserialize;

use crate::storage::{
    azure::entra::{EntraIdentity, TokenFailure},
    location::StorageLocation,
    port::ReadError,
    provider_names,
};

/// Resource Manager's api-version the request names (listKeys with `$expand` exists since
/// 2016; this one is current).
const API_VERSION: &str = "2023-05-01";
const MESSAGE_LIMIT: usize = 300;

/// A planned key listing: who asks, and where.
pub(in crate::storage) struct KeyExchange {
    identity: EntraIdentity,
    /// Resource Manager's root: `https://management.azure.com`.
    endpoint: String,
    /// `/subscriptions/.../storageAccounts/<account>`.
    account: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for KeyExchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyExchange")
            .field("identity", &self.identity.summary)
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

/// Resource Manager of each cloud Velero knows by `AZURE_CLOUD_NAME`.
pub(in crate::storage) fn resource_manager_of_cloud(cloud: &str) -> &'static str {
    match cloud {
        "azurechinacloud" => "https://management.chinacloudapi.cn",
        "azureusgovernment" | "azureusgovernmentcloud" => "https://management.usgovcloudapi.net",
        _ => "https://management.azure.com",
    }
}

/// Subscription, resource group and account, from the BSL's config or else the Secret's
/// (`AZURE_SUBSCRIPTION_ID`, `AZURE_RESOURCE_GROUP`), as Velero reads them; each goes into a
/// URL path, so each is checked to be an Azure name.
pub(in crate::storage) fn plan(
    location: &StorageLocation,
    vars: &std::collections::HashMap<String, String>,
    account: &str,
    endpoint: &str,
    identity: EntraIdentity,
    http: reqwest::Client,
) -> Result<KeyExchange, ReadError> {
    let setting = |config: &str, var: &str| {
        location
            .config(config)
            .or_else(|| vars.get(var).map(|v| v.trim()))
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let missing = |what: &str| {
        ReadError::Unusable(format!(
            "without useAAD or an account key, the key is listed through Azure Resource Manager, which needs {what}"
        ))
    };
    let subscription = setting("subscriptionId", "AZURE_SUBSCRIPTION_ID")
        .ok_or_else(|| missing("config.subscriptionId or AZURE_SUBSCRIPTION_ID"))?;
    let group = setting("resourceGroup", "AZURE_RESOURCE_GROUP")
        .ok_or_else(|| missing("config.resourceGroup or AZURE_RESOURCE_GROUP"))?;
    let named = |config: &str, var: &str| {
        if location.config(config).is_some() {
            format!("config.{config}")
        } else {
            format!("{var} of the Secret")
        }
    };
    provider_names::azure_subscription(
        &named("subscriptionId", "AZURE_SUBSCRIPTION_ID"),
        &subscription,
    )?;
    provider_names::azure_resource_group(&named("resourceGroup", "AZURE_RESOURCE_GROUP"), &group)?;
    Ok(KeyExchange {
        identity,
        endpoint: endpoint.to_string(),
        account: format!(
            "/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Storage/storageAccounts/{account}"
        ),
        http,
    })
}

impl KeyExchange {
    /// The listKeys request, as Velero's armstorage client sends it.
    pub(in crate::storage) fn request(&self, token: &str) -> reqwest::RequestBuilder {
        self.http
            .post(format!(
                "{}{}/listKeys?api-version={API_VERSION}&$expand=kerb",
                self.endpoint, self.account
            ))
            .bearer_auth(token)
            .header("content-length", "0")
            .timeout(std::time::Duration::from_secs(30))
    }

    /// The account's first key with Full permissions.
    pub(in crate::storage) async fn key(&self) -> Result<Vec<u8>, TokenFailure> {
        let scope = format!("{}/.default", self.endpoint);
        let token = self.identity.token_for(&scope).await?;
        let failed = |transient: bool, why: String| TokenFailure {
            transient,
            message: format!(
                "listing the account key through Azure Resource Manager with {}: {why}",
                self.identity.summary
            ),
        };
        let response = self.request(&token).send().await.map_err(|e| {
            failed(
                true,
                crate::storage::transport::http::printable(&e.to_string(), MESSAGE_LIMIT),
            )
        })?;
        let status = response.status().as_u16();
        let body = crate::storage::transport::http::read_at_most(response, 64 << 10)
            .await
            .unwrap_or_default();
        if status != 200 {
            return Err(failed(
                status == 429 || status >= 500,
                crate::storage::transport::http::json_refusal(status, &body, "code"),
            ));
        }
        full_key(&body).ok_or_else(|| failed(false, "no key with Full permissions".into()))
    }
}

/// The first key of a listKeys answer with Full permissions, decoded.
fn full_key(body: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine;
    #[derive(Deserialize)]
    struct Keys {
        #[serde(default)]
        keys: Vec<Key>,
    }
    #[derive(Deserialize)]
    struct Key {
        #[serde(default)]
        value: String,
        #[serde(default)]
        permissions: String,
    }
    let keys: Keys = serde_json::from_slice(body).ok()?;
    keys.keys
        .into_iter()
        .find(|k| k.permissions.eq_ignore_ascii_case("full"))
        .and_then(|k| {
            base64::engine::general_purpose::STANDARD
                .decode(k.value.trim())
                .ok()
        })
}

#[cfg(test)]
#[path = "key_exchange_tests.rs"]
mod tests;

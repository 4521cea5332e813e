use std::{collections::HashMap, sync::Arc};

use super::*;
use crate::config::TrustedHosts;
use crate::storage::{
    azure::entra::{self, PodIdentity},
    transport::request_recorder::{Recorded, Recorder, identity_requests},
};

const SUBSCRIPTION: &str = "6e8e6f5a-0000-4000-8000-00000000005b";
const KEY_B64: &str = "dGhpcyBpcyBub3QgYSByZWFsIGtleSBmb3IgYXp1cmU=";

fn location(config: &[(&str, &str)]) -> StorageLocation {
    StorageLocation {
        name: "az".into(),
        bucket: "velero".into(),
        provider: crate::storage::location::Provider::Azure,
        config: config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    }
}

/// Entra's side for the tests: every token request gets a token.
#[derive(Debug)]
struct Tokens;

#[async_trait::async_trait]
impl azure_core::http::HttpClient for Tokens {
    async fn execute_request(
        &self,
        _: &azure_core::http::Request,
    ) -> azure_core::Result<azure_core::http::AsyncRawResponse> {
        let mut headers = azure_core::http::headers::Headers::new();
        headers.insert("content-type", "application/json");
        let body = r#"{"token_type":"Bearer","expires_in":3599,"access_token":"arm-token"}"#;
        Ok(azure_core::http::AsyncRawResponse::from_bytes(
            200u16.into(),
            headers,
            body.as_bytes().to_vec(),
        ))
    }
}

fn identity() -> entra::EntraIdentity {
    let vars: HashMap<String, String> = [
        ("AZURE_TENANT_ID", "72f988bf-86f1-41af-91ab-2d7cd011db47"),
        ("AZURE_CLIENT_ID", "c"),
        ("AZURE_CLIENT_SECRET", "s"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let pod = PodIdentity {
        federated_token_file: None,
        client_id: None,
        tenant_id: None,
    };
    entra::read(
        &location(&[]),
        &vars,
        "azurepubliccloud",
        &pod,
        &TrustedHosts::default(),
        Arc::new(Tokens),
    )
    .unwrap()
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    reqwest::Client::new()
}

fn exchange(endpoint: &str, config: &[(&str, &str)]) -> Result<KeyExchange, ReadError> {
    plan(
        &location(config),
        &HashMap::from([("AZURE_RESOURCE_GROUP".to_string(), "velero-rg".to_string())]),
        "vdoaccount",
        endpoint,
        identity(),
        client(),
    )
}

#[tokio::test]
async fn the_list_keys_request_is_azure_mgmt_storages() {
    let plan = exchange(
        "https://management.azure.com",
        &[("subscriptionId", SUBSCRIPTION)],
    )
    .unwrap();
    let ours = plan.request("arm-token").build().unwrap();
    let out = identity_requests(&[
        "arm-list-keys",
        SUBSCRIPTION,
        "velero-rg",
        "vdoaccount",
        "arm-token",
    ])
    .await;
    let theirs: Vec<serde_json::Value> = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(theirs.len(), 1, "{theirs:?}");
    let theirs = &theirs[0];
    // The same call; each library names the api-version it was generated for.
    let without_version = |url: &str| {
        let url = reqwest::Url::parse(url).unwrap();
        let mut pairs: Vec<(String, String)> = url
            .query_pairs()
            .into_owned()
            .filter(|(n, _)| n != "api-version")
            .collect();
        pairs.sort();
        (
            url.origin().ascii_serialization(),
            url.path().to_string(),
            pairs,
        )
    };
    assert_eq!(ours.method().as_str(), theirs["method"].as_str().unwrap());
    assert_eq!(
        without_version(ours.url().as_str()),
        without_version(theirs["url"].as_str().unwrap())
    );
    assert_eq!(
        ours.headers()["authorization"].to_str().unwrap(),
        theirs["headers"]["authorization"].as_str().unwrap()
    );
    assert!(
        ours.url().as_str().contains("$expand=kerb"),
        "{}",
        ours.url()
    );
}

#[tokio::test]
async fn the_first_full_key_is_taken_and_a_refusal_is_named() {
    let keys = format!(
        r#"{{"keys":[{{"keyName":"kerb1","value":"a2VyYg==","permissions":"READ"}},{{"keyName":"key1","value":"{KEY_B64}","permissions":"FULL"}}]}}"#
    );
    let recorder = Recorder::start(move |r: &Recorded| {
        if r.target.contains("/denied/") {
            let doc = r#"{"error":{"code":"AuthorizationFailed","message":"The client 'c' does not have authorization to perform action 'Microsoft.Storage/storageAccounts/listKeys/action'."}}"#;
            return (403, "application/json", doc.to_string());
        }
        (200, "application/json", keys.clone())
    })
    .await;
    let ok = exchange(&recorder.url(), &[("subscriptionId", SUBSCRIPTION)]).unwrap();
    assert_eq!(ok.key().await.unwrap(), b"this is not a real key for azure");
    let sent = recorder.requests();
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0]
            .headers
            .contains(&("authorization".into(), "Bearer arm-token".into()))
    );

    let denied = exchange(
        &recorder.url(),
        &[
            ("subscriptionId", SUBSCRIPTION),
            ("resourceGroup", "denied"),
        ],
    )
    .unwrap();
    let failure = denied.key().await.unwrap_err();
    assert!(!failure.transient);
    assert!(
        failure.message.contains("HTTP 403 AuthorizationFailed"),
        "{}",
        failure.message
    );
    assert!(
        failure.message.contains("service principal c"),
        "{}",
        failure.message
    );
    assert_eq!(
        full_key(br#"{"keys":[{"value":"eA==","permissions":"READ"}]}"#),
        None
    );
    assert_eq!(full_key(b"<html>"), None);
}

#[tokio::test]
async fn names_that_go_into_the_path_are_azure_names() {
    let e = exchange("https://management.azure.com", &[]).unwrap_err();
    assert!(format!("{e:?}").contains("subscriptionId"), "{e:?}");
    let e = exchange(
        "https://management.azure.com",
        &[("subscriptionId", "../../providers/x")],
    )
    .unwrap_err();
    assert!(
        format!("{e:?}").contains("config.subscriptionId")
            && format!("{e:?}").contains("Azure subscription id"),
        "{e:?}"
    );
    let e = exchange(
        "https://management.azure.com",
        &[("subscriptionId", SUBSCRIPTION), ("resourceGroup", "..")],
    )
    .unwrap_err();
    assert!(format!("{e:?}").contains("config.resourceGroup"), "{e:?}");
}

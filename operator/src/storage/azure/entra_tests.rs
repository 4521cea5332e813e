use std::sync::Mutex;

use super::*;
use crate::storage::transport::request_recorder::identity_requests;

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT: &str = "5d8f2a5e-0000-4000-8000-00000000c11e";

/// A request as a library handed it to its transport.
#[derive(Debug, Clone, PartialEq)]
struct Handed {
    method: String,
    url: String,
    headers: std::collections::BTreeMap<String, String>,
    body: String,
}

/// A request as Entra reads it, but for the headers that name the library that sent it (its
/// name and version, its telemetry and request ids, MSAL's `x-ms-lib-capability`): method,
/// URL, every other header, and the body's bytes.
fn as_sent(h: &Handed) -> Handed {
    let library = [
        "user-agent",
        "x-ms-client-request-id",
        "client-request-id",
        "x-ms-lib-capability",
    ];
    Handed {
        headers: h
            .headers
            .iter()
            .filter(|(n, _)| !library.contains(&n.as_str()) && !n.starts_with("x-client-"))
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect(),
        ..h.clone()
    }
}

/// azure_identity's transport in the tests: keeps each request, answers as Entra does.
#[derive(Debug, Default)]
struct Capture {
    handed: Mutex<Vec<Handed>>,
    status: u16,
}

#[async_trait::async_trait]
impl azure_core::http::HttpClient for Capture {
    async fn execute_request(
        &self,
        request: &azure_core::http::Request,
    ) -> azure_core::Result<AsyncRawResponse> {
        let body = match request.body() {
            azure_core::http::Body::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
            _ => String::new(),
        };
        self.handed.lock().unwrap().push(Handed {
            method: request.method().as_ref().to_string(),
            url: request.url().to_string(),
            headers: request
                .headers()
                .iter()
                .map(|(n, v)| (n.as_str().to_ascii_lowercase(), v.as_str().to_string()))
                .collect(),
            body,
        });
        let mut headers = azure_core::http::headers::Headers::new();
        headers.insert("content-type", "application/json");
        let body = if self.status == 200 {
            r#"{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"expires_on":"4102444800","resource":"https://storage.azure.com","access_token":"eyJ0eXAiOiJKV1QifQ.e30.recorded"}"#
        } else {
            r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.","error_codes":[7000215]}"#
        };
        Ok(AsyncRawResponse::from_bytes(
            self.status.into(),
            headers,
            body.as_bytes().to_vec(),
        ))
    }
}

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

fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn no_pod() -> PodIdentity {
    PodIdentity {
        federated_token_file: None,
        client_id: None,
        tenant_id: None,
    }
}

/// Our token request for `vars` and `pod`, and the identity.
async fn ours(
    vars: &HashMap<String, String>,
    pod: &PodIdentity,
    status: u16,
) -> (Vec<Handed>, Result<String, TokenFailure>, String) {
    let capture = Arc::new(Capture {
        status,
        ..Default::default()
    });
    let identity = read(
        &location(&[("useAAD", "true")]),
        vars,
        "azurepubliccloud",
        pod,
        &TrustedHosts::default(),
        capture.clone(),
    )
    .unwrap();
    let token = identity.token().await;
    let handed = capture.handed.lock().unwrap().clone();
    (handed, token, identity.summary.clone())
}

async fn microsofts(args: &[&str]) -> Vec<Handed> {
    let out = identity_requests(args).await;
    let raw: Vec<serde_json::Value> = serde_json::from_str(out.trim()).unwrap();
    raw.iter()
        .map(|r| Handed {
            method: r["method"].as_str().unwrap().into(),
            url: r["url"].as_str().unwrap().into(),
            headers: r["headers"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(n, v)| (n.clone(), v.as_str().unwrap_or_default().into()))
                .collect(),
            body: r["body"].as_str().unwrap_or_default().into(),
        })
        .collect()
}

/// The one request of `handed` that asks for the token.
fn token_request(handed: &[Handed]) -> &Handed {
    let asked: Vec<&Handed> = handed
        .iter()
        .filter(|h| !h.url.contains("openid-configuration"))
        .collect();
    assert_eq!(asked.len(), 1, "{handed:?}");
    asked[0]
}

#[tokio::test]
async fn a_service_principals_token_request_is_azure_identitys() {
    let secret = vars(&[
        ("AZURE_TENANT_ID", TENANT),
        ("AZURE_CLIENT_ID", CLIENT),
        ("AZURE_CLIENT_SECRET", "s3cr3t~with&odd=chars"),
    ]);
    let (handed, token, summary) = ours(&secret, &no_pod(), 200).await;
    assert_eq!(token.unwrap(), "eyJ0eXAiOiJKV1QifQ.e30.recorded");
    assert!(
        summary.contains(CLIENT) && summary.contains(TENANT),
        "{summary}"
    );
    let python = microsofts(&[
        "entra-secret",
        TENANT,
        CLIENT,
        "s3cr3t~with&odd=chars",
        "login.microsoftonline.com",
    ])
    .await;
    let (ours, theirs) = (token_request(&handed), token_request(&python));
    assert_eq!(as_sent(ours), as_sent(theirs));
    assert_eq!(
        ours.url,
        format!("https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token")
    );
}

#[tokio::test]
async fn a_workload_identity_token_request_is_azure_identitys() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("azure-identity-token");
    std::fs::write(&file, "eyJhbGciOiJSUzI1NiJ9.e30.projected").unwrap();
    let pod = PodIdentity {
        federated_token_file: Some(file.to_str().unwrap().into()),
        client_id: Some(CLIENT.into()),
        tenant_id: Some(TENANT.into()),
    };
    let (handed, token, summary) = ours(&vars(&[]), &pod, 200).await;
    assert!(token.is_ok(), "{token:?}");
    assert!(summary.contains("workload identity"), "{summary}");
    let python = microsofts(&[
        "entra-federated",
        TENANT,
        CLIENT,
        file.to_str().unwrap(),
        "login.microsoftonline.com",
    ])
    .await;
    assert_eq!(
        as_sent(token_request(&handed)),
        as_sent(token_request(&python))
    );
    assert!(
        token_request(&handed)
            .body
            .contains("client_assertion=eyJhbGciOiJSUzI1NiJ9.e30.projected")
    );
}

#[tokio::test]
async fn a_managed_identity_token_request_is_azure_identitys() {
    let (handed, token, summary) =
        ours(&vars(&[("AZURE_CLIENT_ID", CLIENT)]), &no_pod(), 200).await;
    assert!(token.is_ok(), "{token:?}");
    assert!(summary.contains("managed identity"), "{summary}");
    let python = microsofts(&["entra-managed", CLIENT]).await;
    let query = |h: &Handed| {
        let url = reqwest::Url::parse(&h.url).unwrap();
        // The Rust crate asks IMDS's api-version 2019-08-01, the Python library 2018-02-01:
        // both are IMDS versions of the same token request.
        let mut pairs: Vec<(String, String)> = url
            .query_pairs()
            .into_owned()
            .filter(|(n, _)| n != "api-version")
            .collect();
        pairs.sort();
        (
            h.method.clone(),
            url.origin().ascii_serialization(),
            url.path().to_string(),
            pairs,
            h.headers.get("metadata").cloned(),
        )
    };
    assert_eq!(query(token_request(&handed)), query(token_request(&python)));
    assert!(
        token_request(&handed)
            .url
            .contains("api-version=2019-08-01")
    );
}

#[tokio::test]
async fn a_refused_secret_is_named_and_not_retried() {
    let secret = vars(&[
        ("AZURE_TENANT_ID", TENANT),
        ("AZURE_CLIENT_ID", CLIENT),
        ("AZURE_CLIENT_SECRET", "wrong"),
    ]);
    let (_, token, _) = ours(&secret, &no_pod(), 401).await;
    let failure = token.unwrap_err();
    assert!(!failure.transient, "{failure:?}");
    assert!(
        failure.message.contains("AADSTS7000215"),
        "{}",
        failure.message
    );
    assert!(failure.message.contains(CLIENT), "{}", failure.message);
    assert!(!failure.message.contains("wrong"), "{}", failure.message);
    let (_, token, _) = ours(&secret, &no_pod(), 503).await;
    assert!(token.unwrap_err().transient);
}

#[tokio::test]
async fn the_secret_goes_only_to_the_clouds_authority_or_a_trusted_host() {
    let read_at = |config: &[(&str, &str)], cloud: &str, secret: &[(&str, &str)]| {
        read(
            &location(config),
            &vars(secret),
            cloud,
            &no_pod(),
            &TrustedHosts::new(["login.stack.example"]),
            Arc::new(Capture::default()),
        )
    };
    let sp = [
        ("AZURE_TENANT_ID", TENANT),
        ("AZURE_CLIENT_ID", CLIENT),
        ("AZURE_CLIENT_SECRET", "s"),
    ];
    let china = read_at(&[], "azurechinacloud", &sp).unwrap();
    assert!(
        china.summary.contains("https://login.chinacloudapi.cn"),
        "{}",
        china.summary
    );
    let stack = read_at(
        &[(
            "activeDirectoryAuthorityURI",
            "https://login.stack.example/",
        )],
        "azurepubliccloud",
        &sp,
    )
    .unwrap();
    assert!(
        stack.summary.contains("login.stack.example"),
        "{}",
        stack.summary
    );
    let e = read_at(
        &[("activeDirectoryAuthorityURI", "https://collector.example")],
        "azurepubliccloud",
        &sp,
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            ReadError::UntrustedHost {
                key: "activeDirectoryAuthorityURI",
                ..
            }
        ),
        "{e:?}"
    );
    let e = read_at(&[], "azurepubliccloud", &[("AZURE_CLIENT_SECRET", "s")]).unwrap_err();
    assert!(format!("{e:?}").contains("AZURE_TENANT_ID"), "{e:?}");
    let e = read_at(
        &[],
        "azurepubliccloud",
        &[("AZURE_CLIENT_CERTIFICATE_PATH", "/x")],
    )
    .unwrap_err();
    assert!(matches!(e, ReadError::Unsupported { .. }), "{e:?}");
}

#[tokio::test]
async fn a_certificate_principals_token_request_is_azure_identitys() {
    certificate_request(
        include_str!("../../../testdata/unit-test-azure-client.pem"),
        None,
    )
    .await;
    certificate_request(
        include_str!("../../../testdata/unit-test-azure-client-encrypted.pem"),
        Some("vdo-unit-test"),
    )
    .await;
    certificate_request(
        include_str!("../../../testdata/unit-test-azure-client-legacy.pem"),
        Some("vdo-unit-test"),
    )
    .await;
}

/// The clock and the assertion id of both libraries, in the certificate tests.
const AT: i64 = 1_800_000_000;
const ASSERTION_ID: &str = "6f2b0c1e-0000-4000-8000-000000000001";

/// Our token request with the certificate `pem` (its key opened with `password`) against
/// azure-identity's CertificateCredential's, both clocks at AT and both ids ASSERTION_ID:
/// RS256 signs deterministically, so the assertion, and the whole request, are the same bytes.
async fn certificate_request(pem: &str, password: Option<&str>) {
    let mut pairs = vec![
        ("AZURE_TENANT_ID", TENANT),
        ("AZURE_CLIENT_ID", CLIENT),
        ("AZURE_CLIENT_CERTIFICATE", pem),
    ];
    pairs.extend(password.map(|p| ("AZURE_CLIENT_CERTIFICATE_PASSWORD", p)));
    let (_, token, summary) = ours(&vars(&pairs), &no_pod(), 200).await;
    assert!(token.is_ok(), "{token:?}");
    assert!(summary.contains("certificate"), "{summary}");

    let authority = "https://login.microsoftonline.com";
    let audience = token_endpoint(authority, TENANT);
    let assertion = CertificateAssertion::read(pem, password, CLIENT, &audience).unwrap();
    let capture = Arc::new(Capture {
        status: 200,
        ..Default::default()
    });
    let grant = Grant::ClientCertificate(assertion);
    let credential = GrantCredential::new(authority, TENANT, CLIENT, grant, capture.clone())
        .unwrap()
        .stamped(|| (AT, ASSERTION_ID.to_string()));
    credential.get_token(&[STORAGE_SCOPE], None).await.unwrap();
    let handed = capture.handed.lock().unwrap().clone();

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("client.pem");
    std::fs::write(&file, pem).unwrap();
    let at = AT.to_string();
    let mut args = vec![
        "--at",
        &at,
        "--id",
        ASSERTION_ID,
        "entra-certificate",
        TENANT,
        CLIENT,
        file.to_str().unwrap(),
        "login.microsoftonline.com",
    ];
    args.extend(password);
    let python = microsofts(&args).await;
    let (ours, theirs) = (token_request(&handed), token_request(&python));
    assert!(ours.body.contains("client_assertion=ey"), "{}", ours.body);
    assert_eq!(as_sent(ours), as_sent(theirs));
}

#[tokio::test]
async fn a_certificate_file_a_secret_names_is_not_read() {
    let e = read(
        &location(&[("useAAD", "true")]),
        &vars(&[
            ("AZURE_TENANT_ID", TENANT),
            ("AZURE_CLIENT_ID", CLIENT),
            (
                "AZURE_CLIENT_CERTIFICATE_PATH",
                "/var/run/secrets/kubernetes.io/serviceaccount/token",
            ),
        ]),
        "azurepubliccloud",
        &no_pod(),
        &TrustedHosts::default(),
        Arc::new(Capture::default()),
    )
    .unwrap_err();
    assert!(
        format!("{e:?}").contains("reads no file a Secret names"),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_users_password_token_request_is_azure_identitys_and_its_token_is_kept() {
    let user = vars(&[
        ("AZURE_TENANT_ID", TENANT),
        ("AZURE_CLIENT_ID", CLIENT),
        ("AZURE_USERNAME", "velero@contoso.example"),
        ("AZURE_PASSWORD", "pa ss&word=1"),
    ]);
    let capture = Arc::new(Capture {
        status: 200,
        ..Default::default()
    });
    let identity = read(
        &location(&[("useAAD", "true")]),
        &user,
        "azurepubliccloud",
        &no_pod(),
        &TrustedHosts::default(),
        capture.clone(),
    )
    .unwrap();
    assert!(
        identity.summary.contains("user velero@contoso.example"),
        "{}",
        identity.summary
    );
    assert_eq!(
        identity.token().await.unwrap(),
        "eyJ0eXAiOiJKV1QifQ.e30.recorded"
    );
    assert_eq!(
        identity.token().await.unwrap(),
        "eyJ0eXAiOiJKV1QifQ.e30.recorded"
    );
    let handed = capture.handed.lock().unwrap().clone();
    assert_eq!(handed.len(), 1, "the token is kept: {handed:?}");
    let python = microsofts(&[
        "entra-user",
        TENANT,
        CLIENT,
        "velero@contoso.example",
        "pa ss&word=1",
        "login.microsoftonline.com",
    ])
    .await;
    let theirs: Vec<Handed> = python
        .into_iter()
        .filter(|h| !h.url.contains("/userrealm/"))
        .collect();
    assert_eq!(
        as_sent(token_request(&handed)),
        as_sent(token_request(&theirs))
    );
    let e = read(
        &location(&[("useAAD", "true")]),
        &vars(&[
            ("AZURE_TENANT_ID", TENANT),
            ("AZURE_CLIENT_ID", CLIENT),
            ("AZURE_USERNAME", "u"),
        ]),
        "azurepubliccloud",
        &no_pod(),
        &TrustedHosts::default(),
        capture,
    )
    .unwrap_err();
    assert!(format!("{e:?}").contains("AZURE_PASSWORD"), "{e:?}");
}

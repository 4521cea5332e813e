use super::*;
use crate::storage::transport::request_recorder::{Recorded, Recorder, identity_requests};

const SCOPE: &str = "https://www.googleapis.com/auth/devstorage.read_write";
const EMAIL: &str = "vdo-signer@p.iam.gserviceaccount.com";
/// What names the client library or the connection, never what is asked.
const LIBRARY_HEADERS: [&str; 5] = [
    "user-agent",
    "x-goog-api-client",
    "accept-encoding",
    "connection",
    "accept",
];

fn location(config: &[(&str, &str)]) -> StorageLocation {
    StorageLocation {
        name: "gcs".into(),
        bucket: "bkt".into(),
        provider: crate::storage::location::Provider::Gcp,
        config: config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    }
}

/// Answers enough of Google's metadata server, STS and IAM for each client to send the
/// request under comparison.
fn google_answers(request: &Recorded) -> (u16, &'static str, String) {
    let json = "application/json";
    let target = request.target.as_str();
    if target.ends_with("/?recursive=true") {
        let info = serde_json::json!({"email": EMAIL, "scopes": [SCOPE], "aliases": ["default"]});
        return (200, json, info.to_string());
    }
    if target.contains("/universe/universe-domain") {
        return (200, "text/plain", "googleapis.com".into());
    }
    if target.contains(":generateAccessToken") {
        let token = serde_json::json!({"accessToken": "impersonated", "expireTime": "2099-01-01T00:00:00Z"});
        return (200, json, token.to_string());
    }
    if target.contains(":signBlob") {
        return (
            200,
            json,
            r#"{"keyId": "k1", "signedBlob": "c2lnbmVk"}"#.into(),
        );
    }
    let token = serde_json::json!({
        "access_token": "ya29.recorded", "expires_in": 3599, "token_type": "Bearer",
        "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
    });
    (200, json, token.to_string())
}

/// The requests sent whose target contains `part`, comparable.
fn sent(recorder: &Recorder, part: &str) -> Vec<String> {
    recorder
        .requests()
        .iter()
        .filter(|r| r.target.contains(part))
        .map(|r| r.comparable(&LIBRARY_HEADERS))
        .collect()
}

#[tokio::test]
async fn the_metadata_token_request_is_google_auths() {
    let recorder = Recorder::start(google_answers).await;
    let identity = metadata_server(
        &location(&[("serviceAccount", EMAIL)]),
        SCOPE,
        Some(&recorder.url()),
    )
    .unwrap();
    assert_eq!(identity.access_token().await.unwrap(), "ya29.recorded");
    let ours = sent(&recorder, "/default/token");
    recorder.clear();
    identity_requests(&["gce-token", &recorder.addr.to_string(), SCOPE]).await;
    let google = sent(&recorder, "/default/token");
    assert_eq!(ours.len(), 1, "{ours:?}");
    assert_eq!(ours, google);
    assert!(ours[0].contains("metadata-flavor: Google"), "{}", ours[0]);
    assert!(
        ours[0].contains("scopes=https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fdevstorage.read_write"),
        "{}",
        ours[0]
    );
}

#[tokio::test]
async fn the_sign_blob_request_is_google_auths() {
    let recorder = Recorder::start(google_answers).await;
    let identity = TokenIdentity {
        credentials: static_token("ya29.caller"),
        summary: "a test token".into(),
        signer: Some(EMAIL.into()),
        iam: recorder.url(),
    };
    let to_sign = b"GOOG4-RSA-SHA256\n20261128T000000Z\nscope\nhash";
    let signature = identity.sign_blob(&client(), to_sign).await.unwrap();
    assert_eq!(signature, b"signed");
    let ours = sent(&recorder, ":signBlob");
    recorder.clear();
    let message = base64::engine::general_purpose::STANDARD.encode(to_sign);
    identity_requests(&["sign-blob", &recorder.url(), EMAIL, "ya29.caller", &message]).await;
    let google = sent(&recorder, ":signBlob");
    assert_eq!(ours.len(), 1, "{ours:?}");
    assert_eq!(ours, google);
    assert!(ours[0].starts_with(&format!(
        "POST /v1/projects/-/serviceAccounts/{EMAIL}:signBlob"
    )));
    assert!(ours[0].contains("authorization: Bearer ya29.caller"));
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    reqwest::Client::new()
}

/// A request's meaning when two libraries order the same form fields or JSON members
/// differently: the form's pairs sorted, the JSON parsed with its nulls dropped.
fn meaning(request: &str) -> (String, serde_json::Value) {
    let (head, body) = request.split_once("\n\n").unwrap();
    let head = head
        .lines()
        .filter(|l| !l.starts_with("content-length"))
        .collect::<Vec<_>>()
        .join("\n");
    let body = match serde_json::from_str::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(mut members)) => {
            members.retain(|_, v| !v.is_null());
            serde_json::Value::Object(members)
        }
        _ => {
            let form = reqwest::Url::parse(&format!("http://form/?{body}")).unwrap();
            let mut pairs: Vec<(String, String)> = form.query_pairs().into_owned().collect();
            pairs.sort();
            serde_json::json!(pairs)
        }
    };
    (head, body)
}

/// Credentials that always give `token`: the sign_blob test is about IAM's request only.
fn static_token(token: &str) -> AccessTokenCredentials {
    type Result<T> = std::result::Result<T, google_cloud_auth::errors::CredentialsError>;
    #[derive(Debug)]
    struct Fixed(String);
    impl google_cloud_auth::credentials::AccessTokenCredentialsProvider for Fixed {
        async fn access_token(&self) -> Result<google_cloud_auth::credentials::AccessToken> {
            Ok(google_cloud_auth::credentials::AccessToken {
                token: self.0.clone(),
            })
        }
    }
    impl google_cloud_auth::credentials::CredentialsProvider for Fixed {
        async fn headers(
            &self,
            _: http::Extensions,
        ) -> Result<google_cloud_auth::credentials::CacheableResource<http::HeaderMap>> {
            unreachable!("only access_token is asked")
        }
        async fn universe_domain(&self) -> Option<String> {
            None
        }
    }
    AccessTokenCredentials::from(Fixed(token.to_string()))
}

fn external_file(recorder: &Recorder, token_file: &str) -> serde_json::Value {
    serde_json::json!({
        "type": "external_account",
        "audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/k8s",
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_url": format!("{}/v1/token", recorder.url()),
        "service_account_impersonation_url": format!(
            "{}/v1/projects/-/serviceAccounts/{EMAIL}:generateAccessToken", recorder.url()
        ),
        "credential_source": {"file": token_file, "format": {"type": "text"}},
    })
}

fn trusting(recorder: &Recorder) -> TrustedHosts {
    TrustedHosts::new([format!("http://{}", recorder.addr)])
}

#[tokio::test]
async fn the_federation_requests_are_google_auths() {
    let recorder = Recorder::start(google_answers).await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "eyJhbGciOiJSUzI1NiJ9.e30.projected").unwrap();
    let token_file = token_file.to_str().unwrap().to_string();
    let file = external_file(&recorder, &token_file);
    let identity = external_account(
        &location(&[]),
        &file.to_string(),
        SCOPE,
        &trusting(&recorder),
        std::slice::from_ref(&token_file),
    )
    .unwrap();
    assert_eq!(
        identity.signer.as_deref(),
        Some(EMAIL),
        "the impersonated account signs"
    );
    assert_eq!(identity.access_token().await.unwrap(), "impersonated");
    let ours = (
        sent(&recorder, "/v1/token"),
        sent(&recorder, ":generateAccessToken"),
    );
    recorder.clear();
    let path = dir.path().join("external.json");
    std::fs::write(&path, file.to_string()).unwrap();
    identity_requests(&["external-account", path.to_str().unwrap(), SCOPE]).await;
    let google = (
        sent(&recorder, "/v1/token"),
        sent(&recorder, ":generateAccessToken"),
    );
    assert_eq!(ours.0.len(), 1, "{ours:?}");
    assert_eq!(ours.1.len(), 1, "{ours:?}");
    // Google's Rust and Python libraries order the STS form's fields differently, and Python
    // sends `"delegates": null`: the same exchange, not the same bytes.
    assert_eq!(meaning(&ours.0[0]), meaning(&google.0[0]));
    assert_eq!(meaning(&ours.1[0]), meaning(&google.1[0]));
    assert!(ours.0[0].contains("subject_token=eyJhbGciOiJSUzI1NiJ9.e30.projected"));
}

#[tokio::test]
async fn a_federation_sends_the_pods_token_to_googles_sts_only() {
    let files = vec!["/var/run/service-account/token".to_string()];
    let read = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut file = serde_json::json!({
            "type": "external_account",
            "audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/k8s",
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "token_url": "https://sts.googleapis.com/v1/token",
            "credential_source": {"file": "/var/run/service-account/token"},
        });
        edit(&mut file);
        external_account(
            &location(&[]),
            &file.to_string(),
            SCOPE,
            &TrustedHosts::default(),
            &files,
        )
    };
    let e = read(&|_| {}).unwrap_err();
    assert!(
        format!("{e:?}").contains("config.serviceAccount"),
        "nothing names a signer: {e:?}"
    );
    let identity = read(&|f| {
        f["service_account_impersonation_url"] = format!(
            "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/{EMAIL}:generateAccessToken"
        )
        .into()
    })
    .unwrap();
    assert!(
        identity.summary.contains("workloadIdentityPools/p"),
        "{}",
        identity.summary
    );

    let refused = |edit: &dyn Fn(&mut serde_json::Value)| match read(edit) {
        Err(e) => format!("{e:?}"),
        Ok(i) => panic!("accepted: {i:?}"),
    };
    let e = refused(&|f| f["token_url"] = "https://evil.example/v1/token".into());
    assert!(
        e.contains("UntrustedHost") && e.contains("evil.example"),
        "{e}"
    );
    let e = refused(&|f| {
        f["service_account_impersonation_url"] =
            "https://evil.example/v1/projects/-/serviceAccounts/a@b.c:generateAccessToken".into()
    });
    assert!(e.contains("service_account_impersonation_url"), "{e}");
    let e = refused(&|f| {
        f["credential_source"] =
            serde_json::json!({"file": "/var/run/secrets/kubernetes.io/serviceaccount/token"})
    });
    assert!(e.contains("not one of the pod's projected tokens"), "{e}");
    let e = refused(&|f| {
        f["credential_source"] =
            serde_json::json!({"file": "/var/run/service-account/../../../etc/shadow"})
    });
    assert!(e.contains("credential_source.file"), "{e}");
    let e =
        refused(&|f| f["credential_source"] = serde_json::json!({"url": "http://evil.example/t"}));
    assert!(e.contains("credential_source.url"), "{e}");
    let e = refused(&|f| {
        f["credential_source"] = serde_json::json!({"executable": {"command": "/bin/sh -c id"}})
    });
    assert!(e.contains("credential_source.executable"), "{e}");
    let e = refused(&|f| {
        f["credential_source"] = serde_json::json!({
            "environment_id": "aws1", "region_url": "http://evil.example/zone"
        })
    });
    assert!(e.contains("region_url"), "{e}");
    let aws = read(&|f| {
        f["credential_source"] = serde_json::json!({
            "environment_id": "aws1",
            "region_url": "http://169.254.169.254/latest/meta-data/placement/availability-zone",
            "url": "http://169.254.169.254/latest/meta-data/iam/security-credentials",
            "regional_cred_verification_url": "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15",
        });
        f["service_account_impersonation_url"] = format!(
            "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/{EMAIL}:generateAccessToken"
        )
        .into();
    });
    assert!(aws.is_ok(), "{aws:?}");
    let e = refused(&|f| {
        f["service_account_impersonation_url"] =
            "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/../../x:generateAccessToken".into()
    });
    assert!(e.contains("does not name a service account"), "{e}");
}

#[tokio::test]
async fn the_metadata_server_signs_only_as_a_named_service_account() {
    let e = metadata_server(&location(&[]), SCOPE, None).unwrap_err();
    assert!(format!("{e:?}").contains("config.serviceAccount"), "{e:?}");
    let e =
        metadata_server(&location(&[("serviceAccount", "a/../b@c.d")]), SCOPE, None).unwrap_err();
    assert!(format!("{e:?}").contains("not a service account"), "{e:?}");
    let identity = metadata_server(
        &location(&[
            ("serviceAccount", EMAIL),
            ("universeDomain", "example.goog"),
        ]),
        SCOPE,
        None,
    )
    .unwrap();
    assert_eq!(identity.signer.as_deref(), Some(EMAIL));
    assert_eq!(identity.iam, "https://iamcredentials.example.goog");
}

#[tokio::test]
async fn a_token_or_signature_refused_is_named_and_not_retried() {
    let recorder = Recorder::start(|r: &Recorded| {
        if r.target.contains(":signBlob") {
            let doc = r#"{"error": {"code": 403, "status": "PERMISSION_DENIED", "message": "Permission 'iam.serviceAccounts.signBlob' denied on resource (or it may not exist)."}}"#;
            return (403, "application/json", doc.into());
        }
        (401, "application/json", r#"{"error": "invalid_grant", "error_description": "The token has expired.\u0007"}"#.into())
    })
    .await;
    let identity = TokenIdentity {
        credentials: static_token("ya29.caller"),
        summary: "a test token".into(),
        signer: Some(EMAIL.into()),
        iam: recorder.url(),
    };
    let failure = identity.sign_blob(&client(), b"x").await.unwrap_err();
    assert!(!failure.transient);
    assert!(
        failure.message.contains(
            "HTTP 403 PERMISSION_DENIED: Permission 'iam.serviceAccounts.signBlob' denied"
        ),
        "{}",
        failure.message
    );

    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "expired").unwrap();
    let token_file = token_file.to_str().unwrap().to_string();
    let identity = external_account(
        &location(&[]),
        &external_file(&recorder, &token_file).to_string(),
        SCOPE,
        &trusting(&recorder),
        std::slice::from_ref(&token_file),
    )
    .unwrap();
    let failure = identity.access_token().await.unwrap_err();
    assert!(!failure.transient, "{failure:?}");
    assert!(
        failure.message.contains("federated token"),
        "{}",
        failure.message
    );
    assert!(!failure.message.contains('\u{7}'), "{}", failure.message);
}

fn user_file(recorder: &Recorder) -> serde_json::Value {
    serde_json::json!({
        "type": "authorized_user", "client_id": "764086051850-x.apps.googleusercontent.com",
        "client_secret": "d-FL95Q19q7MQmFpd7hHD0Ty", "refresh_token": "1//0refresh",
        "token_uri": format!("{}/token", recorder.url()),
    })
}

/// A request's first line and its fields as sorted pairs, whether sent as a form or as JSON:
/// Google's Rust library sends a refresh as JSON, its Python library as a form, and Google's
/// token endpoint takes both.
fn fields(request: &str) -> (String, Vec<(String, String)>) {
    let (head, body) = request.split_once("\n\n").unwrap();
    let first = head.lines().next().unwrap_or_default().to_string();
    let mut pairs: Vec<(String, String)> = match serde_json::from_str::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(members)) => members
            .into_iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_string)))
            .collect(),
        _ => reqwest::Url::parse(&format!("http://form/?{body}"))
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect(),
    };
    pairs.sort();
    (first, pairs)
}

/// Our requests for credential file `file` and google-auth's, by meaning.
async fn compare_file(
    recorder: &Recorder,
    identity: TokenIdentity,
    file: &serde_json::Value,
    parts: &[&str],
) {
    identity.access_token().await.unwrap();
    let ours: Vec<Vec<String>> = parts.iter().map(|p| sent(recorder, p)).collect();
    recorder.clear();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("credential.json");
    std::fs::write(&path, file.to_string()).unwrap();
    identity_requests(&["google-file", path.to_str().unwrap(), SCOPE]).await;
    let google: Vec<Vec<String>> = parts.iter().map(|p| sent(recorder, p)).collect();
    for (ours, google) in ours.iter().zip(&google) {
        assert_eq!(ours.len(), 1, "{ours:?}");
        assert_eq!(google.len(), 1, "{google:?}");
        let (ours, google) = (&ours[0], &google[0]);
        if ours.contains("generateAccessToken") {
            assert_eq!(meaning(ours), meaning(google));
        } else {
            assert_eq!(fields(ours), fields(google));
        }
    }
}

#[tokio::test]
async fn a_users_refresh_and_an_impersonation_ask_as_google_auth_does() {
    let recorder = Recorder::start(google_answers).await;
    let endpoint = format!("{}/token", recorder.url());
    let file = user_file(&recorder);
    let signer = location(&[("serviceAccount", EMAIL)]);
    let identity = authorized_user(&signer, &file.to_string(), SCOPE, &endpoint).unwrap();
    assert!(
        identity.summary.contains("764086051850-x"),
        "{}",
        identity.summary
    );
    compare_file(&recorder, identity, &file, &["/token"]).await;

    recorder.clear();
    let file = serde_json::json!({
        "type": "impersonated_service_account",
        "service_account_impersonation_url": format!(
            "{}/v1/projects/-/serviceAccounts/{EMAIL}:generateAccessToken", recorder.url()
        ),
        "delegates": [],
        "source_credentials": user_file(&recorder),
    });
    let identity = impersonated_account_file(
        &location(&[]),
        &file.to_string(),
        SCOPE,
        &trusting(&recorder),
        &endpoint,
    )
    .unwrap();
    assert_eq!(
        identity.signer.as_deref(),
        Some(EMAIL),
        "the impersonated account signs"
    );
    compare_file(
        &recorder,
        identity,
        &file,
        &["/token", ":generateAccessToken"],
    )
    .await;
}

#[tokio::test]
async fn a_refresh_token_goes_to_googles_token_endpoint_only() {
    let recorder = Recorder::start(google_answers).await;
    let endpoint = format!("{}/token", recorder.url());
    // The file's token_uri is not where its refresh token goes.
    let file = serde_json::json!({
        "type": "authorized_user", "client_id": "c", "client_secret": "s",
        "refresh_token": "r", "token_uri": "https://collector.example/token",
    });
    let signer = location(&[("serviceAccount", EMAIL)]);
    let identity = authorized_user(&signer, &file.to_string(), SCOPE, &endpoint).unwrap();
    identity.access_token().await.unwrap();
    assert_eq!(sent(&recorder, "/token").len(), 1);

    let e = authorized_user(
        &location(&[]),
        &file.to_string(),
        SCOPE,
        GOOGLE_TOKEN_ENDPOINT,
    )
    .unwrap_err();
    assert!(format!("{e:?}").contains("config.serviceAccount"), "{e:?}");
    let impersonating = |source: serde_json::Value| {
        serde_json::json!({
            "type": "impersonated_service_account",
            "service_account_impersonation_url": format!(
                "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/{EMAIL}:generateAccessToken"
            ),
            "source_credentials": source,
        })
        .to_string()
    };
    let read = |source: serde_json::Value| {
        impersonated_account_file(
            &location(&[]),
            &impersonating(source),
            SCOPE,
            &TrustedHosts::default(),
            GOOGLE_TOKEN_ENDPOINT,
        )
    };
    let e = read(serde_json::json!({"type": "external_account"})).unwrap_err();
    assert!(matches!(e, ReadError::Unsupported { .. }), "{e:?}");
    // A key's token_uri receives an assertion the key signed: Google's or a trusted host only.
    let e = read(serde_json::json!({
        "type": "service_account", "client_email": EMAIL, "private_key": "k",
        "token_uri": "https://collector.example/token",
    }))
    .unwrap_err();
    assert!(
        matches!(
            e,
            ReadError::UntrustedHost {
                key: "token_uri",
                ..
            }
        ),
        "{e:?}"
    );
}

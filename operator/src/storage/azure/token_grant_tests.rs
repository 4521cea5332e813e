use std::sync::atomic::{AtomicUsize, Ordering};

use azure_core::http::AsyncRawResponse;

use super::*;

/// Answers every token request with `status` and `body`, counting them.
#[derive(Debug)]
struct Entra {
    status: u16,
    body: &'static str,
    asked: AtomicUsize,
}

#[async_trait::async_trait]
impl HttpClient for Entra {
    async fn execute_request(&self, _: &Request) -> azure_core::Result<AsyncRawResponse> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        Ok(AsyncRawResponse::from_bytes(
            self.status.into(),
            azure_core::http::headers::Headers::new(),
            self.body.as_bytes().to_vec(),
        ))
    }
}

fn answering(status: u16, body: &'static str) -> (Arc<Entra>, GrantCredential) {
    let entra = Arc::new(Entra {
        status,
        body,
        asked: AtomicUsize::new(0),
    });
    let grant = Grant::Password {
        username: "velero@contoso.example".into(),
        password: Secret::new("hunter2".to_string()),
    };
    let credential = GrantCredential::new(
        "https://login.microsoftonline.com",
        "tenant-1",
        "client-1",
        grant,
        entra.clone(),
    )
    .unwrap();
    (entra, credential)
}

#[test]
fn a_form_is_encoded_as_pythons_urlencode_encodes_it() {
    // `urllib.parse.urlencode` of the same pairs (Python 3.11), which azure-identity's
    // transport uses.
    let fields = [
        ("a", "s3cr3t~with&odd=chars".to_string()),
        ("b", "pa ss*x%20/é+".to_string()),
        ("c", "-_.~!'()".to_string()),
    ];
    assert_eq!(
        form_encoded(&fields),
        "a=s3cr3t~with%26odd%3Dchars&b=pa+ss%2Ax%2520%2F%C3%A9%2B&c=-_.~%21%27%28%29"
    );
}

#[test]
fn an_assertion_id_is_a_random_version_4_uuid() {
    let id = uuid4();
    assert_eq!(id.len(), 36);
    assert_eq!((&id[14..15], &id[8..9]), ("4", "-"));
    assert!("89ab".contains(&id[19..20]), "{id}");
    assert_ne!(uuid4(), id);
}

#[tokio::test]
async fn a_token_is_kept_for_its_scope_and_asked_again_for_another() {
    let (entra, credential) = answering(
        200,
        r#"{"token_type":"Bearer","expires_in":3599,"access_token":"t-1"}"#,
    );
    for scope in ["https://storage.azure.com/.default"; 2] {
        let token = credential.get_token(&[scope], None).await.unwrap();
        assert_eq!(token.token.secret(), "t-1");
    }
    assert_eq!(entra.asked.load(Ordering::SeqCst), 1);
    credential
        .get_token(&["https://management.azure.com/.default"], None)
        .await
        .unwrap();
    assert_eq!(entra.asked.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_token_about_to_expire_is_asked_again() {
    // Under RENEW_BEFORE: kept for no time at all.
    let (entra, credential) = answering(200, r#"{"expires_in":"240","access_token":"t-2"}"#);
    for _ in 0..2 {
        let token = credential.get_token(&["s"], None).await.unwrap();
        assert!(token.expires_on > OffsetDateTime::now_utc() + Duration::seconds(200));
    }
    assert_eq!(entra.asked.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_refusal_carries_entras_code_and_status() {
    let (_, credential) = answering(
        400,
        r#"{"error":"invalid_grant","error_description":"AADSTS50126: Error validating credentials due to invalid username or password."}"#,
    );
    let e = credential.get_token(&["s"], None).await.unwrap_err();
    match e.kind() {
        ErrorKind::HttpResponse {
            status, error_code, ..
        } => {
            assert_eq!(u16::from(*status), 400);
            assert_eq!(error_code.as_deref(), Some("invalid_grant"));
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("AADSTS50126"), "{e}");
    assert!(!e.to_string().contains("hunter2"), "{e}");
}

#[tokio::test]
async fn a_proxys_page_is_an_error_of_its_status_not_of_its_json() {
    let (_, credential) = answering(502, "<html>\u{0}Bad Gateway</html>");
    let e = credential.get_token(&["s"], None).await.unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::HttpResponse { status, .. } if u16::from(*status) == 502),
        "{e:?}"
    );
    assert!(e.to_string().contains("Bad Gateway"), "{e}");
    assert!(!e.to_string().contains('\u{0}'), "{e:?}");
    let (_, credential) = answering(200, r#"{"token_type":"Bearer"}"#);
    let e = credential.get_token(&["s"], None).await.unwrap_err();
    assert!(e.to_string().contains("without an access_token"), "{e}");
}

#[test]
fn neither_a_secret_nor_a_password_is_printed() {
    let (_, credential) = answering(200, "{}");
    let printed = format!("{credential:?}");
    assert!(printed.contains("password of velero@contoso.example"));
    assert!(!printed.contains("hunter2"), "{printed}");
    let secret = GrantCredential::new(
        "https://login.microsoftonline.com",
        "t",
        "c",
        Grant::ClientSecret(Secret::new("s3cr3t".to_string())),
        Arc::new(Entra {
            status: 200,
            body: "{}",
            asked: AtomicUsize::new(0),
        }),
    )
    .unwrap();
    assert!(!format!("{secret:?}").contains("s3cr3t"));
}

//! A user's name and password in Velero's Secret (`AZURE_USERNAME`, `AZURE_PASSWORD`, with
//! `AZURE_CLIENT_ID` and `AZURE_TENANT_ID`): Entra ID's resource-owner password grant, which
//! Velero takes through azidentity's UsernamePasswordCredential. Written here because
//! azure_identity for Rust has no such credential (Microsoft is retiring the flow: it fails for
//! accounts with multi-factor sign-in); one form POST on the same transport as the crate's,
//! its token kept until five minutes before it expires.

use std::sync::{Arc, Mutex};

use azure_core::{
    credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions},
    error::{Error, ErrorKind},
    http::{HttpClient, Method, Request, Url},
    time::{Duration, OffsetDateTime},
};
use serde::Deserialize;

/// A token this close to its expiry is asked for again.
const RENEW_BEFORE: Duration = Duration::minutes(5);

pub(super) struct UserPassword {
    endpoint: Url,
    client_id: String,
    username: String,
    password: Secret,
    transport: Arc<dyn HttpClient>,
    /// The last token, by the scope it was asked for.
    cache: Mutex<Option<(String, AccessToken)>>,
}

impl std::fmt::Debug for UserPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserPassword")
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl UserPassword {
    pub(super) fn new(
        authority: &str,
        tenant: &str,
        client_id: &str,
        username: &str,
        password: &str,
        transport: Arc<dyn HttpClient>,
    ) -> azure_core::Result<Self> {
        let endpoint = Url::parse(&format!("{authority}/{tenant}/oauth2/v2.0/token"))?;
        Ok(UserPassword {
            endpoint,
            client_id: client_id.to_string(),
            username: username.to_string(),
            password: Secret::new(password.to_string()),
            transport,
            cache: Mutex::new(None),
        })
    }

    fn cached(&self, scope: &str) -> Option<AccessToken> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .as_ref()
            .filter(|(s, t)| s == scope && t.expires_on - RENEW_BEFORE > OffsetDateTime::now_utc())
            .map(|(_, t)| t.clone())
    }
}

#[async_trait::async_trait]
impl TokenCredential for UserPassword {
    async fn get_token(
        &self,
        scopes: &[&str],
        _: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let scope = scopes.join(" ");
        if let Some(token) = self.cached(&scope) {
            return Ok(token);
        }
        let mut request = Request::new(self.endpoint.clone(), Method::Post);
        request.insert_header("content-type", "application/x-www-form-urlencoded");
        // As MSAL asks (Velero's azidentity and azure-identity alike): the user's home tenant
        // hint, and the OpenID scopes of a user's sign-in.
        request.insert_header("x-anchormailbox", format!("upn:{}", self.username));
        // A form, encoded as a URL's query is (application/x-www-form-urlencoded).
        let mut form = Url::parse("http://form/").expect("a literal URL parses");
        form.query_pairs_mut()
            .append_pair("client_id", &self.client_id)
            .append_pair("grant_type", "password")
            .append_pair("username", &self.username)
            .append_pair("password", self.password.secret())
            .append_pair("scope", &format!("{scope} offline_access openid profile"));
        request.set_body(form.query().unwrap_or_default().to_string());
        let response = self.transport.execute_request(&request).await?;
        let response = response.try_into_raw_response().await?;
        let status = response.status();
        #[derive(Deserialize)]
        struct Answer {
            #[serde(default)]
            access_token: String,
            #[serde(default)]
            expires_in: i64,
            #[serde(default)]
            error: String,
            #[serde(default)]
            error_description: String,
        }
        let answer: Answer = serde_json::from_slice(response.body().as_ref())
            .map_err(|e| Error::new(ErrorKind::DataConversion, e))?;
        if !status.is_success() || answer.access_token.is_empty() {
            let message = format!("{} {}", answer.error, answer.error_description);
            return Err(Error::with_message(
                ErrorKind::HttpResponse {
                    status,
                    error_code: Some(answer.error),
                    raw_response: None,
                },
                message.trim().to_string(),
            ));
        }
        let token = AccessToken::new(
            answer.access_token,
            OffsetDateTime::now_utc() + Duration::seconds(answer.expires_in),
        );
        *self.cache.lock().unwrap_or_else(|p| p.into_inner()) = Some((scope, token.clone()));
        Ok(token)
    }
}

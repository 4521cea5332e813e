//! Entra ID's token requests for what Velero's Secret itself holds: a service principal's
//! secret or certificate (`AZURE_CLIENT_SECRET`, `AZURE_CLIENT_CERTIFICATE`), or a user's
//! password (`AZURE_USERNAME`, `AZURE_PASSWORD`). One form POST each, written here so that it is
//! the request Microsoft's MSAL sends (the library under azure-identity and under Velero's
//! azidentity): MSAL's fields in MSAL's order, `client_info=1` among them, encoded as
//! azure-identity encodes them, and compared with azure-identity's byte for byte
//! (entra_tests.rs). azure_identity for Rust sends the same fields in its own order and
//! has no password grant; the workload and managed identities stay its own. The requests go
//! out on the transport the crate's credentials use; a token is kept until five minutes
//! before it expires.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use azure_core::{
    credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions},
    error::{Error, ErrorKind},
    http::{HttpClient, Method, Request, StatusCode, Url},
    time::{Duration, OffsetDateTime},
};
use percent_encoding::utf8_percent_encode;

use crate::storage::azure::certificate::CertificateAssertion;

/// A token this close to its expiry is asked for again.
const RENEW_BEFORE: Duration = Duration::minutes(5);
/// What a client assertion is, to Entra (RFC 7523).
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// An answer's message is cut to this in an error.
const MESSAGE_LIMIT: usize = 300;

/// What the client proves itself with.
pub(in crate::storage) enum Grant {
    ClientSecret(Secret),
    ClientCertificate(CertificateAssertion),
    Password { username: String, password: Secret },
}

/// When a client assertion is made, in Unix seconds, and its id: the system's clock and a
/// random UUID, or a test's.
pub(in crate::storage) type Stamp = fn() -> (i64, String);

/// One client's tokens from one tenant's token endpoint.
pub(in crate::storage) struct GrantCredential {
    endpoint: Url,
    client_id: String,
    grant: Grant,
    transport: Arc<dyn HttpClient>,
    stamp: Stamp,
    /// The last token of each scope asked for.
    cache: Mutex<HashMap<String, AccessToken>>,
}

impl std::fmt::Debug for GrantCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let grant = match &self.grant {
            Grant::ClientSecret(_) => "client secret".to_string(),
            Grant::ClientCertificate(c) => format!("{c:?}"),
            Grant::Password { username, .. } => format!("password of {username}"),
        };
        f.debug_struct("GrantCredential")
            .field("endpoint", &self.endpoint.as_str())
            .field("client_id", &self.client_id)
            .field("grant", &grant)
            .finish_non_exhaustive()
    }
}

impl GrantCredential {
    /// The token endpoint of `tenant` at `authority` (checked by the caller).
    pub(in crate::storage) fn new(
        authority: &str,
        tenant: &str,
        client_id: &str,
        grant: Grant,
        transport: Arc<dyn HttpClient>,
    ) -> azure_core::Result<Self> {
        Ok(GrantCredential {
            endpoint: Url::parse(&token_endpoint(authority, tenant))?,
            client_id: client_id.to_string(),
            grant,
            transport,
            stamp: system_stamp,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The same, its assertions stamped by `stamp`.
    #[cfg(test)]
    pub(in crate::storage) fn stamped(self, stamp: Stamp) -> Self {
        GrantCredential { stamp, ..self }
    }

    fn cached(&self, scope: &str) -> Option<AccessToken> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(scope)
            .filter(|t| t.expires_on - RENEW_BEFORE > OffsetDateTime::now_utc())
            .cloned()
    }

    /// The form MSAL posts for this grant and `scope`, field by field in its order.
    fn form(&self, scope: &str) -> String {
        let mut fields: Vec<(&str, String)> = vec![("client_id", self.client_id.clone())];
        match &self.grant {
            Grant::ClientSecret(secret) => fields.extend([
                ("grant_type", "client_credentials".into()),
                ("client_info", "1".into()),
                ("client_secret", secret.secret().into()),
                ("scope", scope.into()),
            ]),
            Grant::ClientCertificate(certificate) => {
                let (now, id) = (self.stamp)();
                fields.extend([
                    ("grant_type", "client_credentials".into()),
                    ("client_assertion", certificate.assertion(now, &id)),
                    ("client_info", "1".into()),
                    ("client_assertion_type", JWT_BEARER.into()),
                    ("scope", scope.into()),
                ]);
            }
            Grant::Password { username, password } => fields.extend([
                ("grant_type", "password".into()),
                ("client_info", "1".into()),
                ("username", username.clone()),
                ("password", password.secret().into()),
                // A user's sign-in asks for the OpenID scopes too.
                ("scope", format!("{scope} offline_access openid profile")),
            ]),
        }
        form_encoded(&fields)
    }

    fn request(&self, scope: &str) -> Request {
        let mut request = Request::new(self.endpoint.clone(), Method::Post);
        request.insert_header("content-type", "application/x-www-form-urlencoded");
        request.insert_header("accept", "application/json");
        if let Grant::Password { username, .. } = &self.grant {
            // The user's home tenant, as MSAL hints it.
            request.insert_header("x-anchormailbox", format!("upn:{username}"));
        }
        request.set_body(self.form(scope));
        request
    }
}

/// Where `tenant` asks for tokens at `authority`, and an assertion's audience.
pub(in crate::storage) fn token_endpoint(authority: &str, tenant: &str) -> String {
    format!("{authority}/{tenant}/oauth2/v2.0/token")
}

fn system_stamp() -> (i64, String) {
    (jiff::Timestamp::now().as_second(), uuid4())
}

/// A random version-4 UUID, an assertion's id.
fn uuid4() -> String {
    use aws_lc_rs::rand::SecureRandom;
    let mut b = [0u8; 16];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut b)
        .expect("the system's random source works");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// `name=value&...` as Python's `urlencode` (and so azure-identity) writes a form: each value
/// percent-encoded but for the unreserved characters, a space as `+` (an encoded `%20` only
/// ever comes from a space: a `%` itself is encoded).
pub(in crate::storage) fn form_encoded(fields: &[(&str, String)]) -> String {
    fields
        .iter()
        .map(|(name, value)| {
            let value =
                utf8_percent_encode(value, crate::storage::transport::http::UNRESERVED).to_string();
            format!("{name}={}", value.replace("%20", "+"))
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[async_trait::async_trait]
impl TokenCredential for GrantCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let scope = scopes.join(" ");
        if let Some(token) = self.cached(&scope) {
            return Ok(token);
        }
        let response = self
            .transport
            .execute_request(&self.request(&scope))
            .await?;
        let response = response.try_into_raw_response().await?;
        let token = token_of(response.status(), response.body().as_ref())?;
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(scope, token.clone());
        Ok(token)
    }
}

/// The token of Entra's answer, or an error that carries its status (so a 429 or 5xx is
/// retried) and its `error` and `error_description`, or the start of a body that is not JSON
/// (a proxy's page).
fn token_of(status: StatusCode, body: &[u8]) -> azure_core::Result<AccessToken> {
    let answer: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let token = answer["access_token"].as_str().filter(|t| !t.is_empty());
    if let (true, Some(token)) = (status.is_success(), token) {
        // Entra writes a number; ADFS and older endpoints a string.
        let expires_in = answer["expires_in"]
            .as_i64()
            .or_else(|| answer["expires_in"].as_str()?.parse().ok())
            .unwrap_or(0);
        return Ok(AccessToken::new(
            token.to_string(),
            OffsetDateTime::now_utc() + Duration::seconds(expires_in),
        ));
    }
    let code = answer["error"].as_str().map(str::to_string);
    let message = match (&code, answer["error_description"].as_str()) {
        (Some(code), Some(description)) => format!("{code} {description}"),
        (Some(code), None) => code.clone(),
        _ if status.is_success() => "an answer without an access_token".to_string(),
        _ => format!(
            "HTTP {}: {}",
            u16::from(status),
            String::from_utf8_lossy(body)
        ),
    };
    Err(Error::with_message(
        ErrorKind::HttpResponse {
            status,
            error_code: code,
            raw_response: None,
        },
        crate::storage::transport::http::printable(&message, MESSAGE_LIMIT),
    ))
}

#[cfg(test)]
#[path = "token_grant_tests.rs"]
mod tests;

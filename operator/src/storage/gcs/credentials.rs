//! The credential of a GCS location, read as velero-plugin-for-gcp reads `credentialsFile`: a
//! service-account key, which signs the requests' JWTs and the read URLs here; or a keyless
//! identity (the metadata server, a federation, a refresh token, an impersonation) whose
//! tokens identity.rs gets. The endpoints a key's token may go to are checked here.

use std::sync::Arc;

use aws_lc_rs::{rand::SystemRandom, signature};
use base64::Engine;
use serde::Deserialize;

use crate::config::TrustedHosts;
use crate::storage::{
    gcs::identity::{self, TokenIdentity},
    location::StorageLocation,
    port::ReadError,
    provider_names,
    transport::http,
    transport::trust,
};

/// Google's public cloud, where a BSL and a key name no other.
pub(in crate::storage) const DEFAULT_UNIVERSE: &str = provider_names::GOOGLE_UNIVERSE;

pub(in crate::storage) const SCOPE: &str = "https://www.googleapis.com/auth/devstorage.read_write";

/// The credential of a GCS location.
#[derive(Clone)]
pub(crate) struct GcsCredentials {
    pub(in crate::storage) auth: Auth,
}

#[derive(Clone)]
pub(in crate::storage) enum Auth {
    /// A service-account key: it signs the requests' JWTs and the read URLs.
    Key(Arc<ServiceAccountKey>),
    /// A token from the metadata server or a federation; IAM signs the read URLs.
    Token(Arc<TokenIdentity>),
}

pub(in crate::storage) struct ServiceAccountKey {
    pub(in crate::storage) client_email: String,
    pub(in crate::storage) private_key_id: String,
    pub(in crate::storage) pair: signature::RsaKeyPair,
}

impl std::fmt::Debug for GcsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.auth {
            Auth::Key(key) => f
                .debug_struct("GcsCredentials")
                .field("client_email", &key.client_email)
                .finish_non_exhaustive(),
            Auth::Token(identity) => identity.fmt(f),
        }
    }
}

#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    client_email: String,
    #[serde(default)]
    private_key_id: String,
    #[serde(default)]
    private_key: String,
    /// Where the key is valid; Google's libraries refuse a client of another universe.
    #[serde(default)]
    universe_domain: Option<String>,
}

impl GcsCredentials {
    /// The Secret's text as the plugin reads `credentialsFile` (a service-account key or an
    /// `external_account` file); no Secret means the metadata server, as Google's default
    /// credentials find it.
    pub(in crate::storage) fn read(
        location: &StorageLocation,
        contents: Option<&str>,
        trusted: &TrustedHosts,
    ) -> Result<Self, ReadError> {
        let token = |identity: TokenIdentity| GcsCredentials {
            auth: Auth::Token(Arc::new(identity)),
        };
        let Some(contents) = contents else {
            check_endpoints(location, None, trusted)?;
            return identity::metadata_server(location, SCOPE, None).map(token);
        };
        // serde_json's error names a line and column, never the text.
        let file: KeyFile = serde_json::from_str(contents).map_err(|e| {
            ReadError::Unusable(format!("it is not a JSON service-account key ({e})"))
        })?;
        match file.kind.as_str() {
            "service_account" => {}
            "external_account" => {
                check_endpoints(location, file.universe_domain.as_deref(), trusted)?;
                let files = identity::token_files();
                return identity::external_account(location, contents, SCOPE, trusted, &files)
                    .map(token);
            }
            "authorized_user" => {
                check_endpoints(location, None, trusted)?;
                return identity::authorized_user(
                    location,
                    contents,
                    SCOPE,
                    identity::GOOGLE_TOKEN_ENDPOINT,
                )
                .map(token);
            }
            "impersonated_service_account" => {
                check_endpoints(location, None, trusted)?;
                return identity::impersonated_account_file(
                    location,
                    contents,
                    SCOPE,
                    trusted,
                    identity::GOOGLE_TOKEN_ENDPOINT,
                )
                .map(token);
            }
            other => {
                return Err(ReadError::Unsupported {
                    what: format!("credential type {:?}", http::printable(other, 40)),
                    instead: "put a service-account key (JSON, type service_account), an external_account, authorized_user or impersonated_service_account file in the Secret named by the BSL's spec.credential, or use no Secret on GKE (Workload Identity)".into(),
                });
            }
        }
        if file.client_email.is_empty() {
            return Err(ReadError::Unusable("the key has no client_email".into()));
        }
        check_endpoints(location, file.universe_domain.as_deref(), trusted)?;
        let pair = rsa_key(&file.private_key).map_err(ReadError::Unusable)?;
        Ok(GcsCredentials {
            auth: Auth::Key(Arc::new(ServiceAccountKey {
                client_email: file.client_email,
                private_key_id: file.private_key_id,
                pair,
            })),
        })
    }
}

/// The token a key signs is good for an hour on any host: the credential file's
/// `universe_domain` and the location's `universeDomain` must each be Google's or a universe
/// trusted by name (provider_names.rs), and the location's `universeDomain` and
/// `storeEndpoint` must name the key's own universe's storage host, or a trusted one
/// (trust.rs). The emulator (STORAGE_EMULATOR_HOST, the operator's own setting) gets no token.
fn check_endpoints(
    location: &StorageLocation,
    key_universe: Option<&str>,
    trusted: &TrustedHosts,
) -> Result<(), ReadError> {
    let key_universe = provider_names::gcs_universe(
        "universe_domain of the credential file",
        key_universe,
        trusted,
    )?;
    let own = format!("storage.{key_universe}");
    if let Some(universe) = location.config("universeDomain") {
        provider_names::gcs_universe("config.universeDomain", Some(universe), trusted)?;
        let url = format!("https://storage.{universe}");
        trust::check_endpoint("universeDomain", &url, &[&own], trusted)?;
    }
    if let Some(endpoint) = location.config("storeEndpoint") {
        trust::check_endpoint("storeEndpoint", endpoint, &[&own], trusted)?;
    }
    Ok(())
}

/// The key pair of a `private_key` (PKCS#8 PEM, as Google issues them).
fn rsa_key(pem: &str) -> Result<signature::RsaKeyPair, String> {
    use rustls::pki_types::{PrivatePkcs8KeyDer, pem::PemObject};
    let der = PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|_| "private_key is not a PKCS#8 PEM key".to_string())?;
    signature::RsaKeyPair::from_pkcs8(der.secret_pkcs8_der())
        .map_err(|e| format!("private_key is not a usable RSA key ({e})"))
}

impl ServiceAccountKey {
    pub(in crate::storage) fn sign(&self, message: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                message,
                &mut out,
            )
            .expect("an RSA key pair signs into a buffer of its modulus' length");
        out
    }

    /// A self-signed JWT for the Storage scope, valid an hour from `now`.
    pub(in crate::storage) fn bearer(&self, now: jiff::Timestamp) -> String {
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": self.private_key_id});
        let iat = now.as_second();
        let claims = serde_json::json!({
            "iss": self.client_email, "sub": self.client_email, "scope": SCOPE,
            "iat": iat, "exp": iat + 3600,
        });
        let signed = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let signature = b64(&self.sign(signed.as_bytes()));
        format!("{signed}.{signature}")
    }
}

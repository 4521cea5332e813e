//! V4 signed GET URLs (GOOG4-RSA-SHA256) as Google's client libraries make them: the
//! canonical request and string to sign, signed by a service-account key here or by IAM
//! `signBlob` for a keyless identity (gcs.rs asks it).

use std::time::Duration;

use percent_encoding::{AsciiSet, utf8_percent_encode};

use crate::storage::gcs::credentials::ServiceAccountKey;

/// What `urllib.parse.quote(safe="~")` leaves as it is, as Google's signers encode a query.
const QUERY: &AsciiSet = crate::storage::transport::http::UNRESERVED;
/// An object name in a signed URL's path: `/` kept too.
const PATH: &AsciiSet = crate::storage::transport::http::UNRESERVED_AND_SLASH;
/// V4 signed URLs live at most seven days.
pub(in crate::storage) const MAX_URL_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// A V4 GET URL before its signature: the URL the signature is appended to, and what is
/// signed.
pub(in crate::storage) struct UnsignedV4 {
    pub(in crate::storage) url: String,
    pub(in crate::storage) to_sign: String,
}

impl UnsignedV4 {
    pub(in crate::storage) fn signed(self, signature: &[u8]) -> String {
        format!("{}&X-Goog-Signature={}", self.url, hex::encode(signature))
    }
}

/// A V4 signed GET URL signed with a key.
pub(in crate::storage) fn sign_v4(
    key: &ServiceAccountKey,
    endpoint: &str,
    bucket: &str,
    object: &str,
    at: jiff::Timestamp,
    expires: Duration,
) -> String {
    let unsigned = unsigned_v4(&key.client_email, endpoint, bucket, object, at, expires);
    let signature = key.sign(unsigned.to_sign.as_bytes());
    unsigned.signed(&signature)
}

/// A V4 GET URL (GOOG4-RSA-SHA256, host the only signed header) as Google's client libraries
/// make it, for `signer` to sign: `endpoint` is scheme and host
/// (`https://storage.googleapis.com`).
pub(in crate::storage) fn unsigned_v4(
    signer: &str,
    endpoint: &str,
    bucket: &str,
    object: &str,
    at: jiff::Timestamp,
    expires: Duration,
) -> UnsignedV4 {
    use sha2::{Digest, Sha256};
    let stamp = at.strftime("%Y%m%dT%H%M%SZ").to_string();
    let scope = format!("{}/auto/storage/goog4_request", &stamp[..8]);
    let host = endpoint.split_once("://").map_or(endpoint, |(_, h)| h);
    let resource = format!("/{bucket}/{}", utf8_percent_encode(object, PATH));
    let mut query = [
        ("X-Goog-Algorithm", "GOOG4-RSA-SHA256".to_string()),
        ("X-Goog-Credential", format!("{signer}/{scope}")),
        ("X-Goog-Date", stamp.clone()),
        ("X-Goog-Expires", expires.as_secs().to_string()),
        ("X-Goog-SignedHeaders", "host".to_string()),
    ]
    .iter()
    .map(|(k, v)| {
        format!(
            "{}={}",
            utf8_percent_encode(k, QUERY),
            utf8_percent_encode(v, QUERY)
        )
    })
    .collect::<Vec<_>>();
    query.sort();
    let query = query.join("&");
    let canonical = format!("GET\n{resource}\n{query}\nhost:{host}\n\nhost\nUNSIGNED-PAYLOAD");
    let to_sign = format!(
        "GOOG4-RSA-SHA256\n{stamp}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    UnsignedV4 {
        url: format!("{endpoint}{resource}?{query}"),
        to_sign,
    }
}

//! Read URLs of an Azure location reached with Entra ID (no account key): a user-delegation
//! SAS, signed with a key the service hands out (Get User Delegation Key) to the identity, as
//! Velero's plugin signs them with Entra credentials. Written by hand like the service SAS in
//! sas.rs: Microsoft's Rust storage crate makes no SAS. Its string to sign and query are
//! those of Microsoft's Python library (azure-storage-blob 12.30), byte for byte (the unit
//! test compares them), at that library's SAS version, which Azurite verifies.

use base64::Engine;
use percent_encoding::{AsciiSet, utf8_percent_encode};

use crate::storage::azure::sas::{iso, signature};

/// A SAS value, quoted as Python's urllib quote does (unreserved characters and `/` kept), as
/// Microsoft's library writes it.
const SAS_VALUE: &AsciiSet = crate::storage::transport::http::UNRESERVED_AND_SLASH;

/// The SAS version the URL is signed at (the Python library's newest).
pub(in crate::storage) const SAS_VERSION: &str = "2026-06-06";
/// A delegation key lives at most seven days.
pub(in crate::storage) const MAX_KEY_DAYS: i64 = 7;

/// A user delegation key, as Get User Delegation Key answers it.
#[derive(Debug, Clone, PartialEq)]
pub(in crate::storage) struct DelegationKey {
    pub object_id: String,
    pub tenant_id: String,
    pub start: String,
    pub expiry: String,
    pub service: String,
    pub version: String,
    /// Base64, as sent; decoded to sign.
    pub value: String,
}

/// The request's body: the key's validity.
pub(in crate::storage) fn key_request(start: jiff::Timestamp, expiry: jiff::Timestamp) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><KeyInfo><Start>{}</Start><Expiry>{}</Expiry></KeyInfo>",
        iso(start),
        iso(expiry)
    )
}

/// The key from the service's answer; None when it is not one.
pub(in crate::storage) fn read_key(xml: &str) -> Option<DelegationKey> {
    let doc = roxmltree::Document::parse(xml.trim_start_matches('\u{feff}')).ok()?;
    let field = |name: &str| {
        doc.descendants()
            .find(|n| n.has_tag_name(name))
            .and_then(|n| n.text())
            .map(|t| t.trim().to_string())
    };
    Some(DelegationKey {
        object_id: field("SignedOid")?,
        tenant_id: field("SignedTid")?,
        start: field("SignedStart")?,
        expiry: field("SignedExpiry")?,
        service: field("SignedService")?,
        version: field("SignedVersion")?,
        value: field("Value")?,
    })
}

/// A read-only user-delegation SAS for one blob: the query string, without `?`. None when the
/// key's value is not base64.
pub(in crate::storage) fn read_sas(
    key: &DelegationKey,
    account: &str,
    container: &str,
    blob: &str,
    start: jiff::Timestamp,
    expiry: jiff::Timestamp,
    protocol: &str,
) -> Option<String> {
    let secret = base64::engine::general_purpose::STANDARD
        .decode(&key.value)
        .ok()?;
    let (st, se) = (iso(start), iso(expiry));
    let resource = format!("/blob/{account}/{container}/{blob}");
    // 2026-04-06 and later: the key's six fields, then authorized and unauthorized object
    // ids, correlation id, delegated user tenant and object ids, IP, protocol, version,
    // resource, snapshot time, encryption scope, signed request headers and query, and the
    // five response headers.
    let lines: [&str; 28] = [
        "r",
        &st,
        &se,
        &resource,
        &key.object_id,
        &key.tenant_id,
        &key.start,
        &key.expiry,
        &key.service,
        &key.version,
        "",
        "",
        "",
        "",
        "",
        "",
        protocol,
        SAS_VERSION,
        "b",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
    ];
    let signature = signature(&secret, &lines.join("\n"));
    // Each value quoted as Python's urllib quote does (`/` kept), in the library's order.
    let q = |v: &str| utf8_percent_encode(v, SAS_VALUE).to_string();
    Some(format!(
        "st={}&se={}&sp=r&spr={}&sv={SAS_VERSION}&sr=b&skoid={}&sktid={}&skt={}&ske={}&sks={}&skv={}&sig={}",
        q(&st),
        q(&se),
        q(protocol),
        q(&key.object_id),
        q(&key.tenant_id),
        q(&key.start),
        q(&key.expiry),
        q(&key.service),
        q(&key.version),
        q(&signature)
    ))
}

#[cfg(test)]
#[path = "delegation_tests.rs"]
mod tests;

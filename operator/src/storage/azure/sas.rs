//! The service SAS our Azure requests and read URLs carry when the location has an account
//! key: Azure's string-to-sign for the version we speak, signed with HMAC-SHA256. (A
//! user-delegation SAS, for Entra ID, is delegation.rs.)

use aws_lc_rs::hmac;
use base64::Engine;
use percent_encoding::utf8_percent_encode;

use crate::storage::transport::http;

/// The REST and SAS version we speak.
pub(in crate::storage) const VERSION: &str = "2022-11-02";

/// Velero's plugin starts a read URL's validity this far back, for clocks that differ.
pub(in crate::storage) const CLOCK_SKEW: i64 = 600;

/// The one permission a request's SAS grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::storage) enum Permission {
    /// Get a blob, its properties or its block list.
    Read,
    /// Put a block or a block list.
    Write,
    Delete,
    /// List the container (a container SAS).
    List,
}

impl Permission {
    pub(in crate::storage) fn letter(self) -> &'static str {
        match self {
            Permission::Read => "r",
            Permission::Write => "w",
            Permission::Delete => "d",
            Permission::List => "l",
        }
    }
}

/// A service SAS (blob `sr=b` or container `sr=c`), signed with the account key: the query
/// string, without `?`.
pub(in crate::storage) struct Sas<'a> {
    pub(in crate::storage) account: &'a str,
    pub(in crate::storage) container: &'a str,
    /// None: the container itself.
    pub(in crate::storage) blob: Option<&'a str>,
    pub(in crate::storage) permissions: &'a str,
    pub(in crate::storage) start: jiff::Timestamp,
    pub(in crate::storage) expiry: jiff::Timestamp,
    pub(in crate::storage) protocol: &'a str,
}

impl Sas<'_> {
    pub(in crate::storage) fn sign(&self, key: &[u8]) -> String {
        let (start, expiry) = (iso(self.start), iso(self.expiry));
        let (resource, kind) = match self.blob {
            Some(blob) => (
                format!("/blob/{}/{}/{blob}", self.account, self.container),
                "b",
            ),
            None => (format!("/blob/{}/{}", self.account, self.container), "c"),
        };
        // Version 2020-12-06 and later: permissions, start, expiry, resource, identifier, IP,
        // protocol, version, resource kind, snapshot time, encryption scope, then the five
        // response headers.
        let to_sign = [
            self.permissions,
            &start,
            &expiry,
            &resource,
            "",
            "",
            self.protocol,
            VERSION,
            kind,
            "",
            "",
            "",
            "",
            "",
            "",
            "",
        ]
        .join("\n");
        let signature = signature(key, &to_sign);
        let q = |v: &str| utf8_percent_encode(v, http::UNRESERVED).to_string();
        format!(
            "sv={VERSION}&st={}&se={}&sr={kind}&sp={}&spr={}&sig={}",
            q(&start),
            q(&expiry),
            self.permissions,
            q(self.protocol),
            q(&signature)
        )
    }
}

/// A SAS time: UTC to the second.
pub(in crate::storage) fn iso(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A SAS signature: HMAC-SHA256 of the string to sign with `key`, in base64. The same for a
/// service SAS (the account key) and a user-delegation SAS (the delegation key).
pub(in crate::storage) fn signature(key: &[u8], to_sign: &str) -> String {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
}

#[cfg(test)]
#[path = "sas_tests.rs"]
mod tests;

//! What every provider's client shares: the HTTP client of Azure and GCS (http.rs), the TLS
//! of a BSL's endpoint (tls.rs), which hosts may receive a credential (trust.rs), and, in
//! tests, a server that records the requests a client makes (request_recorder.rs).

pub(in crate::storage) mod http;
#[cfg(test)]
pub(in crate::storage) mod request_recorder;
pub(in crate::storage) mod tls;
pub(crate) mod trust;

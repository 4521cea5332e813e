//! TLS to an object store as the BSL configures it, the way Velero's AWS plugin reads it:
//! `objectStorage.caCert` (base64 PEM) adds a private CA to the trusted roots, through the AWS
//! SDK's own HTTP client; `config.insecureSkipTLSVerify: "true"` turns verification off, which
//! that client cannot do, so such a BSL is served by a small connector over reqwest whose
//! rustls verifier accepts any certificate (signatures are still checked).

use std::sync::{Arc, Once};

use aws_smithy_http_client::{
    proxy::ProxyConfig,
    tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode},
};
use aws_smithy_runtime_api::client::{
    http::{
        HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
        SharedHttpConnector,
    },
    orchestrator::{HttpRequest, HttpResponse},
    result::ConnectorError,
    runtime_components::RuntimeComponents,
};
use aws_smithy_types::body::SdkBody;
use rustls::{
    DigitallySignedStruct, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::CryptoProvider,
    pki_types::{CertificateDer, ServerName, UnixTime},
};

use crate::storage::location::{LocationError, StorageLocation, ca_pem};

/// The HTTP client for the BSL's endpoint; None: the SDK's default (system roots; proxies from
/// the environment, as every client here: proxy.rs).
pub(crate) fn http_client(
    location: &StorageLocation,
) -> Result<Option<SharedHttpClient>, LocationError> {
    if location.flag("insecureSkipTLSVerify") {
        static WARN: Once = Once::new();
        WARN.call_once(|| {
            tracing::warn!(
                location = %location.name,
                "insecureSkipTLSVerify: the object store's certificate is not verified"
            );
        });
        return Ok(Some(SharedHttpClient::new(InsecureClient::new())));
    }
    let Some(pem) = ca_pem(location)? else {
        return Ok(None);
    };
    let context = TlsContext::builder()
        .with_trust_store(TrustStore::default().with_pem_certificate(pem))
        .build()
        .map_err(|e| LocationError::InvalidCaCert(location.name.clone(), e.to_string()))?;
    // As the SDK's default client is built (aws-smithy-runtime's default_https_client), with
    // the location's trust store: its builder's build_https would leave proxies out.
    let client = aws_smithy_http_client::Builder::new().build_with_connector_fn(
        move |settings, components| {
            let mut builder = aws_smithy_http_client::Connector::builder()
                .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
                .tls_context(context.clone())
                .proxy_config(ProxyConfig::from_env());
            builder.set_connector_settings(settings.cloned());
            if let Some(components) = components {
                builder.set_sleep_impl(components.sleep_impl());
            }
            builder.build()
        },
    );
    Ok(Some(client))
}

/// Accepts any server certificate; handshake signatures are still verified.
#[derive(Debug)]
pub(in crate::storage) struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl AcceptAnyCertificate {
    pub(in crate::storage) fn new(provider: Arc<CryptoProvider>) -> Self {
        Self(provider)
    }
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[derive(Debug, Clone)]
struct InsecureClient {
    client: reqwest::Client,
}

impl InsecureClient {
    fn new() -> Self {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("aws-lc-rs supports the default protocol versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth();
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(config)
            .connect_timeout(std::time::Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a reqwest client with a preconfigured rustls config builds");
        Self { client }
    }
}

impl HttpClient for InsecureClient {
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

impl HttpConnector for InsecureClient {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let client = self.client.clone();
        HttpConnectorFuture::new(async move {
            let request = request
                .try_into_http1x()
                .map_err(|e| ConnectorError::other(e.into(), None))?;
            let (parts, body) = request.into_parts();
            // The operator sends bodies from memory (one upload part at most); a streaming one
            // is passed through as it is.
            let body = match body.bytes() {
                Some(bytes) => reqwest::Body::from(bytes.to_vec()),
                None => reqwest::Body::wrap(body),
            };
            let response = client
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await
                .map_err(|e| {
                    if e.is_timeout() {
                        ConnectorError::timeout(e.into())
                    } else {
                        ConnectorError::io(e.into())
                    }
                })?;
            let response: http::Response<reqwest::Body> = response.into();
            let (parts, body) = response.into_parts();
            let response = http::Response::from_parts(parts, SdkBody::from_body_1_x(body));
            HttpResponse::try_from(response).map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;

    use super::*;

    fn location(ca_cert: Option<&str>) -> StorageLocation {
        StorageLocation {
            provider: Default::default(),
            name: "tls".into(),
            bucket: "b".into(),
            prefix: None,
            read_only: false,
            config: Default::default(),
            credential: None,
            ca_cert: ca_cert.map(str::to_string),
        }
    }

    /// A throwaway self-signed CA (P-256), made with openssl for these tests only.
    const CA_PEM: &str = include_str!("../../../testdata/unit-test-ca.pem");

    fn b64(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    #[test]
    fn ca_cert_must_be_base64_pem() {
        assert_eq!(ca_pem(&location(None)).unwrap(), None);
        assert_eq!(
            ca_pem(&location(Some(&b64(CA_PEM)))).unwrap().unwrap(),
            CA_PEM.as_bytes()
        );
        // A bundle of two, with surrounding text, as `cat` of several files gives.
        let bundle = format!("# private CA\n{CA_PEM}\n{CA_PEM}");
        assert!(ca_pem(&location(Some(&b64(&bundle)))).unwrap().is_some());

        let err = ca_pem(&location(Some("%%%"))).unwrap_err().to_string();
        assert!(err.contains("tls") && err.contains("base64"), "{err}");
        let err = ca_pem(&location(Some(&b64("hello")))).unwrap_err();
        assert!(matches!(err, LocationError::InvalidCaCert(..)), "{err}");
        assert!(err.to_string().contains("no PEM certificate"), "{err}");
    }

    /// A PEM that only looks like a certificate is refused here: the SDK's trust store would
    /// panic on it when it first connects.
    #[test]
    fn ca_cert_must_hold_usable_certificates() {
        let truncated = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let err = ca_pem(&location(Some(&b64(truncated))))
            .unwrap_err()
            .to_string();
        assert!(err.contains("caCert is unusable"), "{err}");
        let not_der = "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n";
        let err = ca_pem(&location(Some(&b64(not_der))))
            .unwrap_err()
            .to_string();
        assert!(err.contains("certificate 1 is not usable"), "{err}");
        let unterminated = CA_PEM.replace("-----END CERTIFICATE-----", "");
        let err = ca_pem(&location(Some(&b64(&unterminated))))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a readable PEM bundle"), "{err}");
        assert!(http_client(&location(Some(&b64(not_der)))).is_err());
    }
}

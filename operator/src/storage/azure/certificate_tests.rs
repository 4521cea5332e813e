use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};

use super::*;

/// A throwaway self-signed certificate and its key, made with openssl for these tests only.
pub(super) const PEM: &str = include_str!("../../../testdata/unit-test-azure-client.pem");
/// `openssl enc -aes-256-cbc -P -S 0102030405060708 -pass pass:vdo -md md5`'s key.
const EVP_KEY: &str = "20a16ac1e752ecc0d05e0db84b5cc61d87639b40f9595f106e753769897db474";

fn decode(part: &str) -> serde_json::Value {
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

#[test]
fn an_assertion_is_an_rs256_jwt_for_the_token_endpoint_the_key_signed() {
    let audience = "https://login.microsoftonline.com/t/oauth2/v2.0/token";
    let cert = CertificateAssertion::read(PEM, None, "client-1", audience).unwrap();
    let jwt = cert.assertion(1_800_000_000, "6f2b0c1e-0000-4000-8000-000000000001");
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header = decode(parts[0]);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(
        header["x5t"].as_str().unwrap().len(),
        28,
        "a SHA-1, padded base64url"
    );
    assert_eq!(
        decode(parts[1]),
        serde_json::json!({"aud": audience, "iss": "client-1", "sub": "client-1",
                           "exp": 1_800_000_600i64, "iat": 1_800_000_000i64,
                           "jti": "6f2b0c1e-0000-4000-8000-000000000001"})
    );
    let public = cert.key.public_key().as_ref().to_vec();
    let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[2])
        .unwrap();
    let signed = format!("{}.{}", parts[0], parts[1]);
    assert!(
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &public)
            .verify(signed.as_bytes(), &signature)
            .is_ok()
    );
    assert!(!format!("{cert:?}").contains("PRIVATE"));
}

#[test]
fn a_pem_without_a_usable_key_or_certificate_is_named() {
    let cert_only = PEM.split("-----BEGIN PRIVATE KEY-----").next().unwrap();
    let e = CertificateAssertion::read(cert_only, None, "c", "a").unwrap_err();
    assert!(format!("{e:?}").contains("no PEM private key"), "{e:?}");
    let key_only = &PEM[PEM.find("-----BEGIN PRIVATE KEY-----").unwrap()..];
    let e = CertificateAssertion::read(key_only, None, "c", "a").unwrap_err();
    assert!(format!("{e:?}").contains("no PEM certificate"), "{e:?}");
}

#[test]
fn an_encrypted_key_is_opened_with_its_password() {
    let encrypted = include_str!("../../../testdata/unit-test-azure-client-encrypted.pem");
    let plain = CertificateAssertion::read(PEM, None, "c", "a").unwrap();
    let opened = CertificateAssertion::read(encrypted, Some("vdo-unit-test"), "c", "a").unwrap();
    assert_eq!(
        opened.key.public_key().as_ref(),
        plain.key.public_key().as_ref(),
        "the same key"
    );
    let said = |password: Option<&str>| {
        format!(
            "{:?}",
            CertificateAssertion::read(encrypted, password, "c", "a").unwrap_err()
        )
    };
    assert!(
        said(None).contains("AZURE_CLIENT_CERTIFICATE_PASSWORD"),
        "{}",
        said(None)
    );
    assert!(
        said(Some("wrong")).contains("does not open"),
        "{}",
        said(Some("wrong"))
    );
    // OpenSSL's legacy encryption (openssl rsa -aes256 -traditional) opens the same way.
    let legacy = include_str!("../../../testdata/unit-test-azure-client-legacy.pem");
    let opened = CertificateAssertion::read(legacy, Some("vdo-unit-test"), "c", "a").unwrap();
    assert_eq!(
        opened.key.public_key().as_ref(),
        plain.key.public_key().as_ref()
    );
    let e = CertificateAssertion::read(legacy, Some("wrong"), "c", "a").unwrap_err();
    assert!(
        format!("{e:?}").contains("does not open") || format!("{e:?}").contains("not a usable"),
        "{e:?}"
    );
    let other = legacy.replace("AES-256-CBC", "BF-CBC");
    let e = CertificateAssertion::read(&other, Some("vdo-unit-test"), "c", "a").unwrap_err();
    assert!(format!("{e:?}").contains("BF-CBC"), "{e:?}");
    // EVP_BytesToKey's known answer: openssl enc -aes-256-cbc -P -S 0102030405060708 -pass pass:vdo -md md5
    assert_eq!(
        hex::encode(bytes_to_key(b"vdo", &[1, 2, 3, 4, 5, 6, 7, 8], 32)),
        EVP_KEY
    );
}

//! A service principal's client certificate (`AZURE_CLIENT_CERTIFICATE` in Velero's Secret, a
//! PEM certificate with its RSA key): each token request carries a client assertion, a JWT
//! the key signs, as Microsoft's libraries make it (RS256, the certificate's SHA-1 thumbprint
//! in `x5t`, ten minutes), its key possibly encrypted (`AZURE_CLIENT_CERTIFICATE_PASSWORD`).
//! Made here: azure_identity's own certificate credential reads keys only through OpenSSL,
//! which the operator does not link; aws-lc-rs signs. token_grant.rs presents it.

use std::sync::Arc;

use aws_lc_rs::{digest, signature};
use base64::Engine;

use crate::storage::port::ReadError;

/// How long an assertion is valid, as MSAL makes them.
const LIFETIME_SECONDS: i64 = 600;

/// The certificate and key of a service principal, and where its assertions are presented.
pub(in crate::storage) struct CertificateAssertion {
    client_id: String,
    /// The token endpoint, the assertion's audience.
    audience: String,
    /// The certificate's SHA-1 (its thumbprint, as Entra names it), base64url with its `=`
    /// padding kept, as MSAL writes it.
    thumbprint: String,
    key: Arc<signature::RsaKeyPair>,
}

impl std::fmt::Debug for CertificateAssertion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAssertion")
            .field("client_id", &self.client_id)
            .field("thumbprint", &self.thumbprint)
            .finish_non_exhaustive()
    }
}

impl CertificateAssertion {
    /// From the PEM text (a certificate, then or before its RSA key; the key encrypted with
    /// `password` when it is an `ENCRYPTED PRIVATE KEY`).
    pub(in crate::storage) fn read(
        pem: &str,
        password: Option<&str>,
        client_id: &str,
        audience: &str,
    ) -> Result<Self, ReadError> {
        use rustls::pki_types::{CertificateDer, pem::PemObject};
        let cert = CertificateDer::pem_slice_iter(pem.as_bytes())
            .next()
            .and_then(Result::ok)
            .ok_or_else(|| unusable("holds no PEM certificate"))?;
        let key = rsa_key(pem, password)?;
        let sha1 = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, cert.as_ref());
        Ok(CertificateAssertion {
            client_id: client_id.to_string(),
            audience: audience.to_string(),
            thumbprint: base64::engine::general_purpose::URL_SAFE.encode(sha1.as_ref()),
            key: Arc::new(key),
        })
    }

    /// A signed assertion valid from `now`.
    pub(in crate::storage) fn assertion(&self, now: i64, jti: &str) -> String {
        let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "x5t": self.thumbprint});
        let claims = Claims {
            aud: &self.audience,
            iss: &self.client_id,
            sub: &self.client_id,
            exp: now + LIFETIME_SECONDS,
            iat: now,
            jti,
        };
        let claims = serde_json::to_string(&claims).expect("claims serialize");
        let signed = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.as_bytes())
        );
        let mut signature = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                signed.as_bytes(),
                &mut signature,
            )
            .expect("an RSA key pair signs into a buffer of its modulus' length");
        format!("{signed}.{}", b64url(&signature))
    }
}

/// An assertion's claims, in the order MSAL writes them (the header's keys are sorted, as
/// serde_json's map and PyJWT's header both are): RS256 signs deterministically, so the same
/// key, time and id give MSAL's assertion to the byte.
#[derive(serde::Serialize)]
struct Claims<'a> {
    aud: &'a str,
    iss: &'a str,
    sub: &'a str,
    exp: i64,
    iat: i64,
    jti: &'a str,
}

fn unusable(why: &str) -> ReadError {
    ReadError::Unusable(format!("AZURE_CLIENT_CERTIFICATE {why}"))
}

/// The RSA key of the PEM text: PKCS#8 or PKCS#1, or PKCS#8 encrypted with `password` (PBES2,
/// as `openssl pkcs8 -topk8` and `openssl genpkey -aes256` write it).
fn rsa_key(pem: &str, password: Option<&str>) -> Result<signature::RsaKeyPair, ReadError> {
    use rustls::pki_types::{PrivateKeyDer, pem::PemObject};
    let not_rsa = |_| unusable("holds a key that is not a usable RSA key");
    if pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        let password = password.ok_or_else(|| {
            unusable(
                "holds an encrypted key: put its password in AZURE_CLIENT_CERTIFICATE_PASSWORD",
            )
        })?;
        let start = pem
            .find("-----BEGIN ENCRYPTED PRIVATE KEY-----")
            .unwrap_or(0);
        let end = pem
            .find("-----END ENCRYPTED PRIVATE KEY-----")
            .map_or(pem.len(), |e| {
                e + "-----END ENCRYPTED PRIVATE KEY-----".len()
            });
        let (_, der) = pkcs8::SecretDocument::from_pem(&pem[start..end])
            .map_err(|_| unusable("holds an encrypted key that is not PEM"))?;
        let encrypted = pkcs8::EncryptedPrivateKeyInfo::try_from(der.as_bytes())
            .map_err(|_| unusable("holds an encrypted key that is not PKCS#8"))?;
        let plain = encrypted
            .decrypt(password)
            .map_err(|_| unusable("holds a key AZURE_CLIENT_CERTIFICATE_PASSWORD does not open"))?;
        return signature::RsaKeyPair::from_pkcs8(plain.as_bytes()).map_err(not_rsa);
    }
    if pem.contains("Proc-Type: 4,ENCRYPTED") {
        let password = password.ok_or_else(|| {
            unusable(
                "holds an encrypted key: put its password in AZURE_CLIENT_CERTIFICATE_PASSWORD",
            )
        })?;
        let der = legacy_key(pem, password)?;
        return signature::RsaKeyPair::from_der(&der).map_err(not_rsa);
    }
    let key = PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|_| unusable("holds no PEM private key"))?;
    match &key {
        PrivateKeyDer::Pkcs8(der) => {
            signature::RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).map_err(not_rsa)
        }
        PrivateKeyDer::Pkcs1(der) => {
            signature::RsaKeyPair::from_der(der.secret_pkcs1_der()).map_err(not_rsa)
        }
        _ => Err(unusable("holds a key that is not RSA")),
    }
}

/// The PKCS#1 key of OpenSSL's legacy encrypted PEM (`Proc-Type: 4,ENCRYPTED`, `DEK-Info:
/// <cipher>,<iv>`): the key derived from the password as OpenSSL's EVP_BytesToKey does (MD5,
/// one round, the IV's first 8 bytes as salt), then CBC with PKCS#7 padding. By hand: RustCrypto's
/// pkcs1 and pkcs8 do not read this format (Velero's azidentity does), and the openssl crate
/// would link OpenSSL; the ciphers are RustCrypto's.
fn legacy_key(pem: &str, password: &str) -> Result<Vec<u8>, ReadError> {
    use cbc::cipher::{BlockDecryptMut, KeyIvInit, block_padding::Pkcs7};
    let start = pem
        .find("-----BEGIN RSA PRIVATE KEY-----")
        .ok_or_else(|| unusable("holds an encrypted key that is not an RSA key"))?;
    let block = &pem[start..];
    let end = block
        .find("-----END RSA PRIVATE KEY-----")
        .unwrap_or(block.len());
    let block = &block[..end];
    let info = block
        .lines()
        .find_map(|l| l.trim().strip_prefix("DEK-Info:"))
        .ok_or_else(|| unusable("holds an encrypted key without DEK-Info"))?;
    let (cipher, iv) = info.trim().split_once(',').unwrap_or((info.trim(), ""));
    let iv = hex::decode(iv.trim()).map_err(|_| unusable("holds a DEK-Info IV that is not hex"))?;
    let body: String = block
        .split_once("\n\n")
        .or_else(|| block.split_once("\r\n\r\n"))
        .map(|(_, b)| b)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let data = base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|_| unusable("holds an encrypted key that is not base64"))?;
    let key_len = match cipher {
        "AES-128-CBC" => 16,
        "AES-192-CBC" => 24,
        "AES-256-CBC" => 32,
        "DES-EDE3-CBC" => 24,
        other => {
            return Err(unusable(&format!(
                "holds a key encrypted with {}, which is not supported (AES-CBC or DES-EDE3-CBC are)",
                crate::storage::transport::http::printable(other, 30)
            )));
        }
    };
    if iv.len() < 8 {
        return Err(unusable("holds a DEK-Info IV too short"));
    }
    let key = bytes_to_key(password.as_bytes(), &iv[..8], key_len);
    let wrong = |_| unusable("holds a key AZURE_CLIENT_CERTIFICATE_PASSWORD does not open");
    let wrong_iv = |_| unusable("holds a DEK-Info IV of the wrong length");
    match cipher {
        "AES-128-CBC" => cbc::Decryptor::<aes::Aes128>::new_from_slices(&key, &iv)
            .map_err(wrong_iv)?
            .decrypt_padded_vec_mut::<Pkcs7>(&data)
            .map_err(wrong),
        "AES-192-CBC" => cbc::Decryptor::<aes::Aes192>::new_from_slices(&key, &iv)
            .map_err(wrong_iv)?
            .decrypt_padded_vec_mut::<Pkcs7>(&data)
            .map_err(wrong),
        "AES-256-CBC" => cbc::Decryptor::<aes::Aes256>::new_from_slices(&key, &iv)
            .map_err(wrong_iv)?
            .decrypt_padded_vec_mut::<Pkcs7>(&data)
            .map_err(wrong),
        _ => cbc::Decryptor::<des::TdesEde3>::new_from_slices(&key, &iv)
            .map_err(wrong_iv)?
            .decrypt_padded_vec_mut::<Pkcs7>(&data)
            .map_err(wrong),
    }
}

/// OpenSSL's EVP_BytesToKey with MD5 and one round: D_i = MD5(D_(i-1) || password || salt).
fn bytes_to_key(password: &[u8], salt: &[u8], len: usize) -> Vec<u8> {
    use md5::{Digest, Md5};
    let mut key = Vec::with_capacity(len + 16);
    let mut last: Vec<u8> = Vec::new();
    while key.len() < len {
        let mut md5 = Md5::new();
        md5.update(&last);
        md5.update(password);
        md5.update(salt);
        last = md5.finalize().to_vec();
        key.extend_from_slice(&last);
    }
    key.truncate(len);
    key
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
#[path = "certificate_tests.rs"]
mod tests;

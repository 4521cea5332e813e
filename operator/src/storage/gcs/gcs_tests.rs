use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};

use super::*;
use crate::config::TrustedHosts;
use crate::storage::{
    gcs::credentials::{SCOPE, ServiceAccountKey},
    port::ReadError,
};

/// A throwaway RSA key, made with openssl for these tests only.
const KEY_PEM: &str = include_str!("../../../testdata/unit-test-gcs-key.pem");

fn key_json(kind: &str) -> String {
    serde_json::json!({
        "type": kind,
        "project_id": "p",
        "private_key_id": "kid-1",
        "private_key": KEY_PEM,
        "client_email": "vdo@p.iam.gserviceaccount.com",
        "token_uri": "https://oauth2.googleapis.com/token",
    })
    .to_string()
}

fn location() -> StorageLocation {
    StorageLocation {
        name: "gcs".into(),
        bucket: "bkt".into(),
        provider: crate::storage::location::Provider::Gcp,
        ..Default::default()
    }
}

fn credentials() -> GcsCredentials {
    GcsCredentials::read(
        &location(),
        Some(&key_json("service_account")),
        &TrustedHosts::default(),
    )
    .unwrap()
}

fn key_of(creds: &GcsCredentials) -> &ServiceAccountKey {
    match &creds.auth {
        Auth::Key(key) => key,
        Auth::Token(identity) => panic!("not a key: {identity:?}"),
    }
}

fn verifies(key: &ServiceAccountKey, message: &[u8], signature: &[u8]) -> bool {
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key.pair.public_key().as_ref())
        .verify(message, signature)
        .is_ok()
}

#[test]
fn a_service_account_key_is_read_and_other_kinds_are_named() {
    let creds = credentials();
    assert_eq!(key_of(&creds).client_email, "vdo@p.iam.gserviceaccount.com");
    assert!(
        !format!("{creds:?}").contains("PRIVATE"),
        "Debug shows no key"
    );

    let unsupported = |text: Option<&str>| match GcsCredentials::read(
        &location(),
        text,
        &TrustedHosts::default(),
    ) {
        Err(ReadError::Unsupported { what, instead }) => (what, instead),
        other => panic!("{:?}", other.map(|_| ())),
    };
    // No Secret is the metadata server, which signs URLs only as config.serviceAccount.
    let (what, instead) = unsupported(None);
    assert!(what.contains("serviceAccount"), "{what}");
    assert!(instead.contains("signBlob"), "{instead}");
    let (what, instead) = unsupported(Some(&key_json("gdch_service_account")));
    assert!(what.contains("gdch_service_account"), "{what}");
    assert!(instead.contains("external_account"), "{instead}");

    let unusable = |text: &str| match GcsCredentials::read(
        &location(),
        Some(text),
        &TrustedHosts::default(),
    ) {
        Err(ReadError::Unusable(why)) => why,
        other => panic!("{:?}", other.map(|_| ())),
    };
    assert!(unusable("[default]\naws_access_key_id=x").contains("not a JSON"));
    let broken = key_json("service_account").replace("MII", "XXX");
    assert!(
        unusable(&broken).contains("private_key"),
        "{}",
        unusable(&broken)
    );
    let no_email = key_json("service_account").replace("vdo@p.iam.gserviceaccount.com", "");
    assert!(unusable(&no_email).contains("client_email"));
}

#[test]
fn a_v4_url_is_signed_over_googles_canonical_request() {
    let creds = credentials();
    let at: jiff::Timestamp = "2026-11-25T10:20:30Z".parse().unwrap();
    let url = sign_v4(
        key_of(&creds),
        "https://storage.googleapis.com",
        "bkt",
        "cluster-a/plugins/x/ns/b 1+ü.tar.gz",
        at,
        Duration::from_secs(3600),
    );
    let (base, signature) = url.split_once("&X-Goog-Signature=").unwrap();
    assert_eq!(
        base,
        "https://storage.googleapis.com/bkt/cluster-a/plugins/x/ns/b%201%2B%C3%BC.tar.gz?\
         X-Goog-Algorithm=GOOG4-RSA-SHA256\
         &X-Goog-Credential=vdo%40p.iam.gserviceaccount.com%2F20261125%2Fauto%2Fstorage%2Fgoog4_request\
         &X-Goog-Date=20261125T102030Z&X-Goog-Expires=3600&X-Goog-SignedHeaders=host"
    );
    // The signature is the key's over the string to sign of that canonical request.
    use sha2::{Digest, Sha256};
    let canonical = "GET\n/bkt/cluster-a/plugins/x/ns/b%201%2B%C3%BC.tar.gz\n".to_string()
        + base.split_once('?').unwrap().1
        + "\nhost:storage.googleapis.com\n\nhost\nUNSIGNED-PAYLOAD";
    let to_sign = format!(
        "GOOG4-RSA-SHA256\n20261125T102030Z\n20261125/auto/storage/goog4_request\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    assert!(verifies(
        key_of(&creds),
        to_sign.as_bytes(),
        &hex::decode(signature).unwrap()
    ));
    // The emulator's endpoint: its host and port are what is signed.
    let local = sign_v4(
        key_of(&creds),
        "http://127.0.0.1:4443",
        "bkt",
        "k",
        at,
        Duration::from_secs(60),
    );
    assert!(
        local.starts_with("http://127.0.0.1:4443/bkt/k?X-Goog-Algorithm="),
        "{local}"
    );
}

#[test]
fn the_bearer_is_a_jwt_the_key_signed_for_the_storage_scope() {
    let creds = credentials();
    let at: jiff::Timestamp = "2026-11-25T10:20:30Z".parse().unwrap();
    let jwt = key_of(&creds).bearer(at);
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    let decode = |p: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(p)
            .unwrap()
    };
    let header: serde_json::Value = serde_json::from_slice(&decode(parts[0])).unwrap();
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["kid"], "kid-1");
    let claims: serde_json::Value = serde_json::from_slice(&decode(parts[1])).unwrap();
    assert_eq!(claims["iss"], "vdo@p.iam.gserviceaccount.com");
    assert_eq!(claims["scope"], SCOPE);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
    let signed = format!("{}.{}", parts[0], parts[1]);
    assert!(verifies(
        key_of(&creds),
        signed.as_bytes(),
        &decode(parts[2])
    ));
}

#[test]
fn errors_are_read_from_googles_error_document() {
    let doc = r#"{"error":{"code":404,"message":"The specified bucket does not exist.","errors":[{"reason":"notFound"}]}}"#;
    let a = read_error(404, doc);
    assert_eq!(
        (a.code.as_str(), a.message.as_str()),
        ("notFound", "The specified bucket does not exist.")
    );
    assert_eq!(refusal(&a), Refusal::BucketMissing);
    assert_eq!(
        refusal(&read_error(
            404,
            r#"{"error":{"message":"No such object: bkt/k"}}"#
        )),
        Refusal::NotFound
    );
    assert_eq!(refusal(&read_error(401, "")), Refusal::Credentials);
    assert_eq!(
        refusal(&read_error(403, "not json at all")),
        Refusal::Credentials
    );
    assert_eq!(
        read_error(500, "not json at all").message,
        "not json at all"
    );
    assert_eq!(refusal(&read_error(503, "")), Refusal::Other);
}

#[test]
fn endpoints_follow_the_emulator_then_store_endpoint_then_the_universe() {
    let creds = credentials();
    let mut loc = location();
    // SAFETY of the test: no other test reads STORAGE_EMULATOR_HOST.
    assert!(std::env::var("STORAGE_EMULATOR_HOST").is_err());
    let store = GcsStore::connect(&loc, &creds);
    assert_eq!(store.api, "https://storage.googleapis.com/storage/v1");
    assert_eq!(
        store.upload,
        "https://storage.googleapis.com/upload/storage/v1"
    );
    assert!(store.authenticate);
    loc.config
        .insert("universeDomain".into(), "example-universe.test".into());
    assert_eq!(
        GcsStore::connect(&loc, &creds).url_endpoint,
        "https://storage.example-universe.test"
    );
    loc.config.insert(
        "storeEndpoint".into(),
        "http://127.0.0.1:9/storage/v1/".into(),
    );
    let store = GcsStore::connect(&loc, &creds);
    assert_eq!(store.api, "http://127.0.0.1:9/storage/v1");
    assert_eq!(store.upload, "http://127.0.0.1:9/upload/storage/v1");
    assert_eq!(
        store.object_url("a/b c"),
        "http://127.0.0.1:9/storage/v1/b/bkt/o/a%2Fb%20c"
    );
}

#[test]
fn an_endpoint_outside_the_keys_universe_gets_no_token_unless_trusted() {
    let read = |config: &[(&str, &str)], key_universe: Option<&str>, trusted: &[&str]| {
        let mut key: serde_json::Value =
            serde_json::from_str(&key_json("service_account")).unwrap();
        if let Some(u) = key_universe {
            key["universe_domain"] = u.into();
        }
        let mut location = location();
        location.config = config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        GcsCredentials::read(
            &location,
            Some(&key.to_string()),
            &TrustedHosts::new(trusted),
        )
    };
    let refused_key = |r: Result<GcsCredentials, ReadError>| match r {
        Err(ReadError::UntrustedHost { key, .. }) => key.to_string(),
        Err(ReadError::Refused { key, .. }) => key,
        Err(e) => panic!("{e:?}"),
        Ok(_) => panic!("allowed"),
    };
    assert_eq!(
        refused_key(read(&[("universeDomain", "example.com")], None, &[])),
        "config.universeDomain"
    );
    assert_eq!(
        refused_key(read(
            &[("storeEndpoint", "https://collector.example.com")],
            None,
            &[]
        )),
        "storeEndpoint"
    );
    // A key's own universe chooses no host unless that universe is trusted by name: its
    // sts., iamcredentials. and storage. hosts would get the token.
    for universe in ["evil.example", "127.0.0.1:9000"] {
        assert_eq!(
            refused_key(read(&[("universeDomain", universe)], Some(universe), &[])),
            "universe_domain of the credential file"
        );
    }
    // The key's own trusted universe, its storage host, and a trusted private endpoint are
    // fine.
    read(
        &[("universeDomain", "apis.example.goog")],
        Some("apis.example.goog"),
        &["apis.example.goog"],
    )
    .unwrap();
    read(
        &[("storeEndpoint", "https://storage.googleapis.com/storage/v1")],
        None,
        &[],
    )
    .unwrap();
    read(
        &[("storeEndpoint", "https://storage-psc.p.googleapis.com")],
        None,
        &["storage-psc.p.googleapis.com"],
    )
    .unwrap();
}

use super::*;
use crate::storage::s3::profile::RoleProfile;
use aws_sdk_s3::error::ConnectorError;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

#[tokio::test]
async fn a_parts_checksum_is_the_one_the_sdk_would_send_for_it() {
    use aws_smithy_checksums::ChecksumAlgorithm;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("archive");
    let text: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&file, &text).unwrap();
    for (offset, length) in [(0, 200_000), (70_000, 100_001), (199_999, 1), (5, 0)] {
        let mut sdk = ChecksumAlgorithm::Crc32.into_impl();
        sdk.update(&text[offset..offset + length]);
        let ours = part_crc32(&file, offset as u64, length as u64)
            .await
            .unwrap();
        assert_eq!(
            ours,
            sdk.header_value().to_str().unwrap(),
            "{offset}+{length}"
        );
    }
}

/// A store whose endpoint is a local server answering every request with `answer`, then
/// closing the connection.
async fn store_answering(answer: &'static [u8]) -> S3Store {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = socket.write_all(answer).await;
            });
        }
    });
    store_at(&format!("http://{address}")).await
}

/// A store of static keys at `endpoint`.
async fn store_at(endpoint: &str) -> S3Store {
    let credentials = AwsCredentials::Keys {
        access_key_id: "a".into(),
        secret_access_key: "b".into(),
        session_token: None,
    };
    store_with(endpoint, &credentials).await
}

/// A store of `credentials` at `endpoint`.
async fn store_with(endpoint: &str, credentials: &AwsCredentials) -> S3Store {
    let location = StorageLocation {
        provider: Default::default(),
        name: "default".into(),
        bucket: "velero".into(),
        prefix: None,
        read_only: false,
        config: [
            ("region", "minio".to_string()),
            ("s3Url", endpoint.to_string()),
            ("s3ForcePathStyle", "true".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
        credential: None,
        ca_cert: None,
    };
    S3Store::connect(&location, credentials).await
}

#[tokio::test]
async fn a_role_whose_credential_cannot_be_had_is_credentials_invalid_naming_the_role() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("no-such-token");
    let role = RoleProfile {
        file: format!(
            "[default]\nrole_arn = arn:aws:iam::1:role/r\nweb_identity_token_file = {}\n",
            token.display()
        ),
        profile: "default".into(),
        summary: "role arn:aws:iam::1:role/r, assumed with the web identity token".into(),
    };
    // Nothing listens there: the credential fails before any request is sent.
    let store = store_with("http://127.0.0.1:9", &AwsCredentials::Role(role)).await;
    let listed = store.list("p/", 10).await.expect_err("no credential");
    let signed = store
        .presign_get("k", Duration::from_secs(60))
        .await
        .expect_err("no credential to sign with");
    for (operation, error) in [("ListObjectsV2", listed), ("Presign", signed)] {
        assert!(
            matches!(&error, StorageError::CredentialsInvalid { message, .. }
                if message.starts_with(&format!("{operation}: getting role arn:aws:iam::1:role/r"))),
            "{error:?}"
        );
    }
}

#[tokio::test]
async fn sts_out_of_reach_or_too_slow_is_transient_a_refusal_is_not() {
    let store = store_at("http://127.0.0.1:9").await;
    let unreachable = CredentialsError::provider_error(ConnectorError::io(
        std::io::Error::other("connection refused").into(),
    ));
    let slow = CredentialsError::provider_timed_out(Duration::from_secs(5));
    for failure in [unreachable, slow] {
        let error = store.credentials_error("GetObject", &failure);
        assert!(
            matches!(error, StorageError::Unreachable { .. }),
            "{error:?}"
        );
    }
    let refused = CredentialsError::provider_error("AccessDenied: not authorized");
    let error = store.credentials_error("GetObject", &refused);
    assert!(
        matches!(&error, StorageError::CredentialsInvalid { message, .. }
            if message.contains("the location's credential") && message.contains("AccessDenied")),
        "{error:?}"
    );
}

/// A store that answers every request with headers and then chunks of `chunk`, with no
/// Content-Length and no end.
async fn endless_store(status: &'static str, chunk: &'static [u8]) -> S3Store {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nTransfer-Encoding: chunked\r\n\r\n"
                );
                let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
                frame.extend_from_slice(chunk);
                frame.extend_from_slice(b"\r\n");
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                while socket.write_all(&frame).await.is_ok() {}
            });
        }
    });
    store_at(&format!("http://{address}")).await
}

#[tokio::test]
async fn an_endless_listing_or_error_fails_at_the_bound_instead_of_filling_the_memory() {
    for status in ["200 OK", "403 Forbidden"] {
        let store = endless_store(status, &[b' '; 64 * 1024]).await;
        let error = tokio::time::timeout(Duration::from_secs(60), store.list("p/", 10))
            .await
            .unwrap_or_else(|_| panic!("{status}: the answer was read on past its bound"))
            .expect_err("an endless answer");
        assert!(
            format!("{error:?}").contains("larger than 16 MiB"),
            "{status}: {error:?}"
        );
    }
}

#[tokio::test]
async fn a_body_cut_off_is_the_store_unreachable_not_the_disk() {
    // Headers for 100 bytes, 10 sent, then the connection closes: what a stall past the
    // grace period also ends in, an error reading the body.
    let store = store_answering(
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nContent-Type: text/plain\r\n\r\n0123456789",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let error = store
        .download("backups/b/b-logs.gz", &dir.path().join("raw"), 1000)
        .await
        .expect_err("a body cut short");
    assert!(
        matches!(&error, StorageError::Unreachable { message, .. } if message.starts_with("GetObject backups/b/b-logs.gz: reading the body")),
        "{error:?}"
    );
    assert!(error.is_transient());
}

#[tokio::test]
async fn a_stalled_upload_is_the_store_unreachable() {
    use aws_sdk_s3::operation::upload_part::UploadPartError;
    use aws_smithy_runtime_api::client::result::ConnectorError;
    let store = store_answering(b"").await;
    // What the SDK's stalled-stream protection ends an upload with.
    let stalled = ConnectorError::timeout(
        "minimum throughput was specified at 1 B/s, but throughput of 0 B/s was observed".into(),
    );
    let error = store.error(
        "UploadPart",
        "k",
        SdkError::<UploadPartError, HttpResponse>::dispatch_failure(stalled),
    );
    assert!(
        matches!(&error, StorageError::Unreachable { message, .. } if message.contains("minimum throughput")),
        "{error:?}"
    );
    assert!(error.is_transient());
}

#[tokio::test]
async fn a_store_error_says_the_operation_and_the_status_even_without_a_body() {
    // What s3s-fs answered to every request once its working folder was deleted: 500 and
    // no code a HEAD can carry. The message said only ": " before.
    let store =
        store_answering(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n").await;
    let error = store.metadata("k").await.expect_err("a 500");
    assert!(
        matches!(&error, StorageError::Unreachable { message, .. } if message == "HeadObject: HTTP 500"),
        "{error:?}"
    );
    assert!(error.is_transient());
    // With an S3 error document, its code and message follow the status.
    let store = store_answering(
        b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nContent-Length: 99\r\n\r\n<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code><Message>no</Message></Error>",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let error = store
        .download("k", &dir.path().join("raw"), 10)
        .await
        .expect_err("a 403");
    assert_eq!(
        error.to_string(),
        "the object store refused the credentials of default: GetObject: HTTP 403 AccessDenied: no"
    );
}

#[tokio::test]
async fn a_download_stops_one_byte_past_its_cap() {
    let store = store_answering(
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nContent-Type: text/plain\r\n\r\n0123456789",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw");
    assert_eq!(store.download("k", &raw, 4).await.unwrap(), 5);
    assert_eq!(std::fs::read(&raw).unwrap(), b"01234");
    assert_eq!(store.download("k", &raw, 100).await.unwrap(), 10);
}

use super::*;

#[test]
fn listings_and_errors_are_read_from_azures_xml() {
    let xml = r#"<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="http://x/" ContainerName="velero"><Prefix>p/</Prefix><Blobs><Blob><Name>p/a.tar.gz</Name><Properties><Last-Modified>Wed, 25 Nov 2026 10:00:00 GMT</Last-Modified></Properties></Blob><Blob><Name>p/b &amp; c</Name><Properties/></Blob></Blobs><NextMarker>m2</NextMarker></EnumerationResults>"#;
    let page = read_listing(xml).unwrap();
    assert_eq!(
        page.blobs,
        vec![
            StoredObject {
                key: "p/a.tar.gz".into(),
                written: 1_795_600_800
            },
            StoredObject {
                key: "p/b & c".into(),
                written: 0
            },
        ]
    );
    assert_eq!(page.next_marker, "m2");
    assert!(
        read_listing("<EnumerationResults><Blobs/><NextMarker/></EnumerationResults>")
            .unwrap()
            .next_marker
            .is_empty()
    );
    assert!(read_listing("not xml").is_err());

    let error = "\u{feff}<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>ContainerNotFound</Code><Message>The specified container does not exist.\nRequestId:1</Message></Error>";
    let answer = read_error(404, error);
    assert_eq!(answer.code, "ContainerNotFound");
    assert_eq!(answer.message, "The specified container does not exist.");
    assert_eq!(refusal(&answer.code), Refusal::BucketMissing);
    assert_eq!(refusal("AuthenticationFailed"), Refusal::Credentials);
    assert_eq!(refusal("BlobNotFound"), Refusal::NotFound);
    assert_eq!(read_error(500, "").code, "");
}

#[test]
fn block_ids_carry_the_upload_id_at_one_length() {
    let first = block_id("0123456789abcdef", 0);
    assert_eq!(first.len(), block_id("0123456789abcdef", 999_999).len());
    let list = format!(
        "<BlockList><CommittedBlocks/><UncommittedBlocks><Block><Name>{first}</Name><Size>8</Size></Block></UncommittedBlocks></BlockList>"
    );
    assert_eq!(
        first_block_upload_id(&list).as_deref(),
        Some("0123456789abcdef")
    );
    // Another writer's blocks are not taken for ours.
    let foreign = base64::engine::general_purpose::STANDARD.encode("block-1");
    assert_eq!(first_block_upload_id(&list.replace(&first, &foreign)), None);
}

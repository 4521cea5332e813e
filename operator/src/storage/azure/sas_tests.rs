use super::*;

#[test]
fn a_sas_signs_azures_string_for_its_version() {
    let at: jiff::Timestamp = "2026-11-25T10:00:00Z".parse().unwrap();
    let sas = Sas {
        account: "acct",
        container: "velero",
        blob: Some("a/b c.tar.gz"),
        permissions: "r",
        start: at,
        expiry: at + jiff::SignedDuration::from_secs(3600),
        protocol: "https",
    };
    let query = sas.sign(b"key");
    let expected_sign = "r\n2026-11-25T10:00:00Z\n2026-11-25T11:00:00Z\n/blob/acct/velero/a/b c.tar.gz\n\n\nhttps\n2022-11-02\nb\n\n\n\n\n\n\n";
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, b"key"),
        expected_sign.as_bytes(),
    );
    let sig = base64::engine::general_purpose::STANDARD.encode(tag.as_ref());
    assert_eq!(
        query,
        format!(
            "sv=2022-11-02&st=2026-11-25T10%3A00%3A00Z&se=2026-11-25T11%3A00%3A00Z&sr=b&sp=r&spr=https&sig={}",
            utf8_percent_encode(&sig, http::UNRESERVED)
        )
    );
    let container = Sas {
        blob: None,
        permissions: "rcwdl",
        ..sas
    }
    .sign(b"key");
    assert!(container.contains("&sr=c&sp=rcwdl&"), "{container}");
}

use super::*;
use crate::storage::transport::request_recorder::identity_requests;

fn key() -> DelegationKey {
    DelegationKey {
        object_id: "5d8f2a5e-0000-4000-8000-0000000000ob".into(),
        tenant_id: "72f988bf-86f1-41af-91ab-2d7cd011db47".into(),
        start: "2026-11-28T00:50:00Z".into(),
        expiry: "2026-12-05T00:50:00Z".into(),
        service: "b".into(),
        version: "2022-11-02".into(),
        value: "a2V5IHZhbHVlIG9mIHRoZSB1c2VyIGRlbGVnYXRpb24gdGVzdA==".into(),
    }
}

#[tokio::test]
async fn a_user_delegation_sas_is_azure_storage_blobs() {
    let start: jiff::Timestamp = "2026-11-28T00:50:00Z".parse().unwrap();
    let expiry: jiff::Timestamp = "2026-11-29T01:00:00Z".parse().unwrap();
    let blob = "velero/plugins/bundles/ns/a b+c%d.tar.gz";
    let ours = read_sas(&key(), "acct", "ctr", blob, start, expiry, "https").unwrap();
    let k = key();
    let microsofts = identity_requests(&[
        "user-delegation-sas",
        &serde_json::json!({
            "account": "acct", "container": "ctr", "blob": blob,
            "start": "2026-11-28T00:50:00Z", "expiry": "2026-11-29T01:00:00Z",
            "protocol": "https",
            "key": {"signed_oid": k.object_id, "signed_tid": k.tenant_id,
                    "signed_start": k.start, "signed_expiry": k.expiry,
                    "signed_service": k.service, "signed_version": k.version,
                    "value": k.value},
        })
        .to_string(),
    ])
    .await;
    assert_eq!(ours, microsofts.trim());
    // Another key value signs differently: the comparison sees the signature.
    let mut other = key();
    other.value = "b3RoZXI=".into();
    let forged = read_sas(&other, "acct", "ctr", blob, start, expiry, "https").unwrap();
    assert_ne!(forged, ours);
}

#[test]
fn a_delegation_key_is_read_from_the_services_answer() {
    let xml = "\u{feff}<?xml version=\"1.0\" encoding=\"utf-8\"?><UserDelegationKey><SignedOid>5d8f2a5e-0000-4000-8000-0000000000ob</SignedOid><SignedTid>72f988bf-86f1-41af-91ab-2d7cd011db47</SignedTid><SignedStart>2026-11-28T00:50:00Z</SignedStart><SignedExpiry>2026-12-05T00:50:00Z</SignedExpiry><SignedService>b</SignedService><SignedVersion>2022-11-02</SignedVersion><Value>a2V5IHZhbHVlIG9mIHRoZSB1c2VyIGRlbGVnYXRpb24gdGVzdA==</Value></UserDelegationKey>";
    assert_eq!(read_key(xml), Some(key()));
    assert_eq!(
        read_key("<UserDelegationKey><Value>x</Value></UserDelegationKey>"),
        None
    );
    assert_eq!(read_key("not xml"), None);
    let mut broken = key();
    broken.value = "not base64!".into();
    let t = jiff::Timestamp::UNIX_EPOCH;
    assert_eq!(read_sas(&broken, "a", "c", "b", t, t, "https"), None);
    assert_eq!(
        key_request(
            "2026-11-28T00:50:00Z".parse().unwrap(),
            "2026-12-05T00:49:00Z".parse().unwrap()
        ),
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><KeyInfo><Start>2026-11-28T00:50:00Z</Start><Expiry>2026-12-05T00:49:00Z</Expiry></KeyInfo>"
    );
}

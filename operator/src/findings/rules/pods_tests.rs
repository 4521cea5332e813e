//! A restore whose claim stays Pending (its class's provisioner never answers) ends when
//! Velero's pod volume timeout expires. The claim is the cause on every shape of that end: a
//! PodVolumeRestore left New (Velero 1.14-1.16), or canceled when the wait ran out (1.17+);
//! the timeout and the canceled operation are its consequences, and nothing advises a longer
//! wait. The claim's finding names the provisioner and quotes the claim's last event.

use crate::findings::{Evidence, Severity, diagnose, rules::tests::load};

const TIMEOUT: &str = "timed out waiting for all PodVolumeRestores to complete";
const WAITING: &str = "waiting for a volume to be created, either by external provisioner \"rancher.io/local-path\" or manually created by system administrator";

/// The fixture's restore ended PartiallyFailed at the timeout, its claim on the existing class
/// `standard` (provisioner rancher.io/local-path) with only the provisioning event.
fn timed_out(pvr_phase: &str) -> Evidence {
    let mut e = load("pvr-stuck-pvc-pending");
    e.target.phase = "PartiallyFailed".into();
    e.results
        .add("object-store/results.json", "errors", "velero", TIMEOUT);
    e.operations[0].phase = pvr_phase.into();
    e.claims[0].storage_class = Some("standard".into());
    e.events
        .retain(|ev| ev.object.contains("PersistentVolumeClaim"));
    let claim_event = e.events.first_mut().expect("the claim's event");
    claim_event.reason = "ExternalProvisioning".into();
    claim_event.message = WAITING.into();
    e
}

#[test]
fn a_pending_claim_explains_the_pod_volume_timeout_whatever_became_of_the_restore() {
    for phase in ["New", "Canceled"] {
        let found = diagnose(&timed_out(phase));
        let cause = &found[0];
        assert_eq!(cause.rule, "pvc-pending", "{phase}: {found:#?}");
        assert_eq!(cause.severity, Severity::Error, "{phase}");
        assert!(
            cause
                .title
                .contains("PVC data-web-0 waits for provisioner rancher.io/local-path"),
            "{phase}: {}",
            cause.title
        );
        assert_eq!(cause.quote, format!("ExternalProvisioning: {WAITING}"));
        let step = cause.next_step.as_deref().unwrap_or_default();
        assert!(
            step.contains("provisioner rancher.io/local-path of StorageClass standard")
                && step.contains("grep -i local-path"),
            "{step}"
        );
        let timeout = found
            .iter()
            .find(|f| f.rule == "pod-volume-timeout")
            .expect("the timeout");
        assert_eq!(timeout.consequence_of, Some(1), "{phase}");
        for f in &found[1..] {
            let step = f.next_step.as_deref().unwrap_or_default();
            assert!(!step.contains("--fs-backup-timeout"), "{phase}: {step}");
        }
    }
}

/// A claim whose only Warning event is a write that lost a race (the real PV controller's
/// `Operation cannot be fulfilled ... the object has been modified`) is explained by its class
/// and provisioner, not by that event (Normal events such as ExternalProvisioning are not
/// collected).
#[test]
fn a_lost_write_race_is_no_explanation_of_a_pending_claim() {
    let mut e = timed_out("New");
    let event = e.events.first_mut().expect("the claim's event");
    event.reason = "ProvisioningFailed".into();
    event.message = "Error saving claim: Operation cannot be fulfilled on persistentvolumeclaims \"data-web-0\": the object has been modified; please apply your changes to the latest version and try again".into();
    let found = diagnose(&e);
    assert_eq!(found[0].rule, "pvc-pending");
    assert_eq!(
        found[0].quote,
        "status.phase: Pending, spec.storageClassName: standard (provisioner rancher.io/local-path), no PersistentVolume made for it"
    );
    assert!(
        found[0]
            .title
            .contains("waits for provisioner rancher.io/local-path")
    );
}

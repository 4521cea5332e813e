//! Which finished Backups and Restores get an automatic DebugBundle, and what it looks like.
//! Pure: decided from the object, the operator's policy and the time, so every rule is
//! unit-tested on YAML fixtures.

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::{
    ResourceExt,
    api::{DynamicObject, ObjectMeta},
};
use sha2::{Digest, Sha256};
use velero_debug_crd::{
    ANNOTATION_AUTO_BUNDLE, ANNOTATION_AUTO_BUNDLE_CREATED, ANNOTATION_STALLED_SINCE,
    ANNOTATION_STALLS_WITHHELD, DebugBundle, DebugBundleSpec, LABEL_AUTO, LABEL_AUTO_REASON,
    LABEL_TARGET_UID,
};

use super::stall_decision::{self, Still};
use crate::{config::Policy, velero};

#[derive(Debug, PartialEq)]
pub(crate) enum Decision {
    Create(Box<DebugBundle>),
    Skip(String),
}

/// Kubernetes names of objects we make stay within a label value's 63 characters.
const MAX_NAME: usize = 63;

/// `auto-restore-<name>`; a name too long keeps its start and ends in a hash of the whole.
pub(crate) fn bundle_name(kind: &str, target: &str) -> String {
    let full = format!("auto-{}-{target}", kind.to_ascii_lowercase());
    if full.len() <= MAX_NAME {
        return full;
    }
    let hash = hex::encode(Sha256::digest(target.as_bytes()));
    let keep = full[..MAX_NAME - 9].trim_end_matches(['-', '.']);
    format!("{keep}-{}", &hash[..8])
}

pub(crate) fn decide(kind: &str, obj: &DynamicObject, policy: &Policy, now: Timestamp) -> Decision {
    let phase = obj.data["status"]["phase"].as_str().unwrap_or("");
    if !policy.phases(kind).iter().any(|p| p == phase) {
        return Decision::Skip(format!("phase {phase:?} does not get a bundle"));
    }
    if obj.metadata.deletion_timestamp.is_some() {
        return Decision::Skip("being deleted".into());
    }
    let annotations = obj.annotations();
    if annotations.get(ANNOTATION_AUTO_BUNDLE).map(String::as_str) == Some("false") {
        return Decision::Skip(format!("annotated {ANNOTATION_AUTO_BUNDLE}=false"));
    }
    // The older record of a bundle made: read, never written.
    if let Some(made) = annotations.get(ANNOTATION_AUTO_BUNDLE_CREATED) {
        return Decision::Skip(format!("already has its bundle {made}"));
    }
    let ended = obj.data["status"]["completionTimestamp"]
        .as_str()
        .and_then(|t| t.parse::<Timestamp>().ok())
        .or_else(|| obj.metadata.creation_timestamp.as_ref().map(|t| t.0));
    let lookback = SignedDuration::try_from(policy.lookback).unwrap_or(SignedDuration::MAX);
    if ended.is_some_and(|t| now.duration_since(t) > lookback) {
        return Decision::Skip("ended before the look-back window".into());
    }
    let (Some(name), Some(uid)) = (obj.metadata.name.clone(), obj.uid()) else {
        return Decision::Skip("has no name or uid".into());
    };
    Decision::Create(Box::new(owned_bundle(
        kind,
        obj,
        bundle_name(kind, &name),
        name,
        uid,
    )))
}

/// The stall bundle of a running `obj` that has been `still` (stall_decision.rs); None when it opts
/// out, is being deleted or has no name. Named for the stall, so a later stall of the same
/// operation gets a bundle of its own; labelled apart from the bundles of final phases.
pub(crate) fn stall_bundle(
    kind: &str,
    obj: &DynamicObject,
    still: &Still,
    withheld: &[String],
) -> Option<DebugBundle> {
    if obj.metadata.deletion_timestamp.is_some()
        || obj
            .annotations()
            .get(ANNOTATION_AUTO_BUNDLE)
            .map(String::as_str)
            == Some("false")
    {
        return None;
    }
    let (name, uid) = (obj.metadata.name.clone()?, obj.uid()?);
    let bundle_name = bundle_name(kind, &format!("{name}-stall-{}", still.motion));
    let mut bundle = owned_bundle(kind, obj, bundle_name, name, uid);
    let meta = &mut bundle.metadata;
    meta.labels
        .get_or_insert_default()
        .insert(LABEL_AUTO_REASON.into(), "stall".into());
    let annotations = meta.annotations.get_or_insert_default();
    annotations.insert(
        ANNOTATION_STALLED_SINCE.into(),
        stall_decision::since_text(still),
    );
    if !withheld.is_empty() {
        annotations.insert(ANNOTATION_STALLS_WITHHELD.into(), withheld.join(", "));
    }
    Some(bundle)
}

/// An automatic bundle of the `kind` named `name` (uid `uid`), owned by it.
fn owned_bundle(
    kind: &str,
    obj: &DynamicObject,
    bundle_name: String,
    name: String,
    uid: String,
) -> DebugBundle {
    let mut spec = DebugBundleSpec::default();
    match kind {
        "Restore" => spec.restore = Some(name.clone()),
        _ => spec.backup = Some(name.clone()),
    }
    let resource = velero::resource(kind);
    DebugBundle {
        metadata: ObjectMeta {
            name: Some(bundle_name),
            namespace: obj.metadata.namespace.clone(),
            labels: Some(
                [
                    (LABEL_AUTO.to_string(), "true".to_string()),
                    (LABEL_TARGET_UID.to_string(), uid.clone()),
                ]
                .into(),
            ),
            // Deleting the Backup or Restore deletes its bundle (and, by the finalizer, the
            // archive).
            owner_references: Some(vec![OwnerReference {
                api_version: resource.api_version,
                kind: kind.to_string(),
                name,
                uid,
                ..OwnerReference::default()
            }]),
            ..ObjectMeta::default()
        },
        spec,
        status: None,
    }
}

/// The automatic bundles beyond the cap, oldest first.
pub(crate) fn beyond_cap(bundles: &[DebugBundle], cap: usize) -> Vec<String> {
    let mut auto: Vec<&DebugBundle> = bundles
        .iter()
        .filter(|b| b.labels().get(LABEL_AUTO).map(String::as_str) == Some("true"))
        .filter(|b| b.metadata.deletion_timestamp.is_none())
        .collect();
    if auto.len() <= cap {
        return Vec::new();
    }
    auto.sort_by_key(|b| {
        (
            b.metadata.creation_timestamp.as_ref().map(|t| t.0),
            b.name_any(),
        )
    });
    let excess = auto.len() - cap;
    auto.into_iter()
        .take(excess)
        .map(|b| b.name_any())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn restore(extra_meta: &str, status: &str) -> DynamicObject {
        serde_yaml::from_str(&format!(
            "apiVersion: velero.io/v1\nkind: Restore\nmetadata: {{name: r1, namespace: velero, uid: u-1, creationTimestamp: '2026-11-22T09:00:00Z'{extra_meta}}}\nspec: {{backupName: b1}}\nstatus: {status}\n"
        ))
        .unwrap()
    }

    fn now() -> Timestamp {
        "2026-11-22T10:00:00Z".parse().unwrap()
    }

    const PARTIAL: &str = "{phase: PartiallyFailed, completionTimestamp: '2026-11-22T09:59:00Z'}";

    #[test]
    fn a_partially_failed_restore_gets_an_owned_labelled_bundle() {
        let Decision::Create(b) =
            decide("Restore", &restore("", PARTIAL), &Policy::default(), now())
        else {
            panic!("no bundle");
        };
        assert_eq!(b.name_any(), "auto-restore-r1");
        assert_eq!(b.namespace().as_deref(), Some("velero"));
        assert_eq!(b.spec.restore.as_deref(), Some("r1"));
        assert_eq!(b.spec.backup, None);
        assert_eq!(b.labels()[LABEL_AUTO], "true");
        assert_eq!(b.labels()[LABEL_TARGET_UID], "u-1");
        let owner = &b.owner_references()[0];
        assert_eq!(
            (
                owner.api_version.as_str(),
                owner.kind.as_str(),
                owner.name.as_str(),
                owner.uid.as_str()
            ),
            ("velero.io/v1", "Restore", "r1", "u-1")
        );
    }

    #[test]
    fn phases_follow_the_policy() {
        let p = Policy::default();
        for phase in ["Completed", "InProgress", "Failed", ""] {
            let r = restore("", &format!("{{phase: '{phase}'}}"));
            assert!(
                matches!(decide("Restore", &r, &p, now()), Decision::Skip(_)),
                "{phase}"
            );
        }
        let with_failed = Policy {
            restore_phases: vec!["PartiallyFailed".into(), "Failed".into()],
            ..Policy::default()
        };
        let failed = restore(
            "",
            "{phase: Failed, completionTimestamp: '2026-11-22T09:59:00Z'}",
        );
        assert!(matches!(
            decide("Restore", &failed, &with_failed, now()),
            Decision::Create(_)
        ));
        // Backups get none by default.
        let backup: DynamicObject = serde_yaml::from_str(
            "apiVersion: velero.io/v1\nkind: Backup\nmetadata: {name: b1, namespace: velero, uid: u-2}\nstatus: {phase: PartiallyFailed}\n",
        )
        .unwrap();
        assert!(matches!(
            decide("Backup", &backup, &p, now()),
            Decision::Skip(_)
        ));
        let backups = Policy {
            backup_phases: vec!["PartiallyFailed".into()],
            ..Policy::default()
        };
        let Decision::Create(b) = decide("Backup", &backup, &backups, now()) else {
            panic!("no bundle for the backup");
        };
        assert_eq!(b.spec.backup.as_deref(), Some("b1"));
        assert_eq!(b.name_any(), "auto-backup-b1");
    }

    #[test]
    fn opt_out_record_and_look_back_are_honoured() {
        let p = Policy::default();
        let opted_out = restore(
            ", annotations: {velerodebug.io/auto-bundle: 'false'}",
            PARTIAL,
        );
        assert!(matches!(
            decide("Restore", &opted_out, &p, now()),
            Decision::Skip(_)
        ));
        let made = restore(
            ", annotations: {velerodebug.io/auto-bundle-created: auto-restore-r1}",
            PARTIAL,
        );
        assert!(matches!(
            decide("Restore", &made, &p, now()),
            Decision::Skip(_)
        ));
        let old = restore(
            "",
            "{phase: PartiallyFailed, completionTimestamp: '2026-11-22T03:59:59Z'}",
        );
        assert!(matches!(
            decide("Restore", &old, &p, now()),
            Decision::Skip(_)
        ));
        let just_inside = restore(
            "",
            "{phase: PartiallyFailed, completionTimestamp: '2026-11-22T04:00:00Z'}",
        );
        assert!(matches!(
            decide("Restore", &just_inside, &p, now()),
            Decision::Create(_)
        ));
    }

    #[test]
    fn long_names_are_hashed_within_63_characters() {
        let long = "r".repeat(200);
        let a = bundle_name("Restore", &long);
        assert!(a.len() <= 63, "{a}");
        assert!(a.starts_with("auto-restore-rrr"));
        let other = bundle_name("Restore", &format!("{}x", "r".repeat(199)));
        assert_ne!(a, other, "names differing only at the end must not collide");
        assert_eq!(a, bundle_name("Restore", &long), "deterministic");
    }

    #[test]
    fn the_oldest_automatic_bundles_beyond_the_cap_go_first() {
        let b = |name: &str, created: &str, auto: bool| -> DebugBundle {
            let labels = if auto {
                "{velerodebug.io/auto: 'true'}"
            } else {
                "{}"
            };
            serde_yaml::from_str(&format!(
                "apiVersion: velerodebug.io/v1alpha1\nkind: DebugBundle\nmetadata: {{name: {name}, creationTimestamp: '{created}', labels: {labels}}}\nspec: {{restore: r}}\n"
            ))
            .unwrap()
        };
        let list = [
            b("c", "2026-11-22T03:00:00Z", true),
            b("manual", "2026-11-22T00:00:00Z", false),
            b("a", "2026-11-22T01:00:00Z", true),
            b("b", "2026-11-22T02:00:00Z", true),
        ];
        assert_eq!(beyond_cap(&list, 1), ["a", "b"]);
        assert!(beyond_cap(&list, 3).is_empty());
    }
}

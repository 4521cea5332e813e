//! Step 2, dereference: reads what a bundle names (its target, for a restore the target's
//! backup, the storage location and its credential). The only decision made here is which
//! objects to read; whether they make a bundle is the plan's to say.

use jiff::Timestamp;
use kube::{
    Api, Client, ResourceExt,
    api::ListParams,
    core::{ApiResource, DynamicObject},
};
use velero_debug_crd::{DebugBundle, DebugBundleSpec};

use crate::{
    collect::TargetObjects,
    config::Limits,
    kubernetes,
    storage::{
        Credentials, ObjectStore, StorageLocation, TrustedHosts, credentials,
        credentials::CredentialError, location::LocationError,
    },
    velero::{self, Target},
};

#[derive(Debug, thiserror::Error)]
pub(crate) enum DereferenceError {
    #[error("spec must name exactly one of backup or restore")]
    NoSingleTarget,
    #[error(
        "spec.{field}: {name:?} is not a Kubernetes object name (lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters)"
    )]
    InvalidName { field: &'static str, name: String },
    #[error("{kind} {name} does not exist in namespace {namespace} (waited {waited_seconds}s)")]
    TargetNotFound {
        kind: &'static str,
        name: String,
        namespace: String,
        waited_seconds: u64,
    },
    #[error("{kind} {name} names no storage location and there is no default one")]
    NoStorageLocation { kind: &'static str, name: String },
    #[error("BackupStorageLocation {name} does not exist in namespace {namespace}")]
    StorageLocationNotFound { name: String, namespace: String },
    #[error(transparent)]
    Location(#[from] LocationError),
    #[error(transparent)]
    Credential(#[from] CredentialError),
    #[error("reading {what}: {}", kubernetes::message(.source))]
    Api {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("listing {what}: {message}")]
    List { what: String, message: String },
}

fn api_error(what: impl Into<String>) -> impl FnOnce(kube::Error) -> DereferenceError {
    let what = what.into();
    move |source| DereferenceError::Api { what, source }
}

/// Everything a bundle names, read.
pub(crate) struct Dereferenced {
    pub target: Target,
    pub objects: TargetObjects,
    pub location: StorageLocation,
    pub credentials: Credentials,
}

pub(crate) enum Outcome {
    Found(Box<Dereferenced>),
    /// The target does not exist (yet): the bundle may have been applied with its restore.
    TargetMissing,
}

/// The target named by a spec, once every name in the spec is an object name: checked before
/// anything is read, since a request for any other name fails, and always will.
pub(crate) fn named_target(spec: &DebugBundleSpec) -> Result<Target, DereferenceError> {
    let names = [
        ("backup", &spec.backup),
        ("restore", &spec.restore),
        ("storageLocation", &spec.storage_location),
    ];
    for (field, name) in names {
        if let Some(name) = name.as_deref().filter(|n| !kubernetes::is_object_name(n)) {
            return Err(DereferenceError::InvalidName {
                field,
                name: name.to_string(),
            });
        }
    }
    match (&spec.backup, &spec.restore) {
        (Some(b), None) => Ok(Target::Backup(b.clone())),
        (None, Some(r)) => Ok(Target::Restore(r.clone())),
        _ => Err(DereferenceError::NoSingleTarget),
    }
}

pub(crate) async fn objects(
    client: &Client,
    bundle: &DebugBundle,
    target: &Target,
    limits: &Limits,
    trusted: &TrustedHosts,
) -> Result<Outcome, DereferenceError> {
    let namespace = bundle.namespace().unwrap_or_default();
    let Some(objects) = target_objects(client, &namespace, target).await? else {
        return Ok(Outcome::TargetMissing);
    };
    let named =
        |default: Option<&str>| storage_location_name(&bundle.spec, target, &objects, default);
    // The default BSL is listed only when neither the spec nor the backup names one.
    let location_name = match named(None) {
        Some(name) => name,
        None => {
            let default = default_storage_location(client, &namespace, limits).await?;
            named(default.as_deref()).ok_or_else(|| DereferenceError::NoStorageLocation {
                kind: target.kind(),
                name: target.name().to_string(),
            })?
        }
    };
    let location = storage_location(client, &namespace, &location_name).await?;
    let credentials = credentials::fetch(client, &namespace, &location, trusted).await?;
    Ok(Outcome::Found(Box::new(Dereferenced {
        target: target.clone(),
        objects,
        location,
        credentials,
    })))
}

/// The storage location to read the target's files from and write the bundle to: the
/// spec's, else the backup's, else the default one.
pub(crate) fn storage_location_name(
    spec: &DebugBundleSpec,
    target: &Target,
    objects: &TargetObjects,
    default: Option<&str>,
) -> Option<String> {
    if let Some(name) = &spec.storage_location {
        return Some(name.clone());
    }
    let backup = match target {
        Target::Backup(_) => Some(&objects.target),
        Target::Restore(_) => objects.backup.as_ref(),
    };
    backup
        .and_then(|b| b.data["spec"]["storageLocation"].as_str())
        .filter(|s| !s.is_empty())
        .or(default)
        .map(str::to_string)
}

/// The target and, for a restore, its backup; `None` when the target does not exist.
async fn target_objects(
    client: &Client,
    namespace: &str,
    target: &Target,
) -> Result<Option<TargetObjects>, DereferenceError> {
    let resource = velero::resource(target.kind());
    let Some(obj) = get(client, namespace, &resource, target.name()).await? else {
        return Ok(None);
    };
    let backup = match (target, obj.data["spec"]["backupName"].as_str()) {
        (Target::Restore(_), Some(name)) if !name.is_empty() => {
            get(client, namespace, &velero::resource("Backup"), name).await?
        }
        _ => None,
    };
    Ok(Some(TargetObjects {
        target: obj,
        backup,
    }))
}

async fn get(
    client: &Client,
    namespace: &str,
    resource: &ApiResource,
    name: &str,
) -> Result<Option<DynamicObject>, DereferenceError> {
    // A name read from another object (a restore's backupName, a backup's storageLocation)
    // goes into the request's path: one that is no object name is no object.
    if !kubernetes::is_object_name(name) {
        tracing::warn!(kind = %resource.kind, name = ?name, "not an object name; treated as missing");
        return Ok(None);
    }
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, resource);
    let obj = api
        .get_opt(name)
        .await
        .map_err(api_error(format!("{} {name}", resource.kind)))?;
    Ok(obj.map(|o| kubernetes::with_types(o, resource)))
}

async fn storage_location(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<StorageLocation, DereferenceError> {
    let resource = velero::resource("BackupStorageLocation");
    let bsl = get(client, namespace, &resource, name)
        .await?
        .ok_or_else(|| DereferenceError::StorageLocationNotFound {
            name: name.to_string(),
            namespace: namespace.to_string(),
        })?;
    Ok(StorageLocation::from_bsl(&bsl)?)
}

/// The name of the BSL marked `spec.default: true`, if any.
async fn default_storage_location(
    client: &Client,
    namespace: &str,
    limits: &Limits,
) -> Result<Option<String>, DereferenceError> {
    let api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        namespace,
        &velero::resource("BackupStorageLocation"),
    );
    let listed = kubernetes::list_all(&api, ListParams::default(), limits)
        .await
        .map_err(|e| DereferenceError::List {
            what: "BackupStorageLocations".into(),
            message: e.message,
        })?;
    Ok(listed
        .items
        .into_iter()
        .find(|b| b.data["spec"]["default"] == true)
        .and_then(|b| b.metadata.name))
}

/// The store of a recorded archive's location, when the location and its credential can
/// still be had ([`archive_store_lookup`] tells why not).
pub(crate) async fn archive_store(
    client: &Client,
    namespace: &str,
    location_name: &str,
    trusted: &TrustedHosts,
) -> Result<Option<ObjectStore>, DereferenceError> {
    Ok(
        match archive_store_lookup(client, namespace, location_name, trusted).await? {
            ArchiveStore::Ready(store) => Some(*store),
            ArchiveStore::Gone | ArchiveStore::Refused(_) => None,
        },
    )
}

/// What a location offers for its archives: its store, nothing (the location or its
/// credential is gone or unusable), or a refusal of the location itself (a value that would
/// send its credential to a host it names), which its owner should hear of.
pub(crate) enum ArchiveStore {
    Ready(Box<ObjectStore>),
    Gone,
    Refused(CredentialError),
}

pub(crate) async fn archive_store_lookup(
    client: &Client,
    namespace: &str,
    location_name: &str,
    trusted: &TrustedHosts,
) -> Result<ArchiveStore, DereferenceError> {
    let location = match storage_location(client, namespace, location_name).await {
        Ok(l) => l,
        Err(DereferenceError::StorageLocationNotFound { .. } | DereferenceError::Location(_)) => {
            return Ok(ArchiveStore::Gone);
        }
        Err(e) => return Err(e),
    };
    match credentials::fetch(client, namespace, &location, trusted).await {
        Ok(c) => Ok(ArchiveStore::Ready(Box::new(
            ObjectStore::connect(&location, &c).await,
        ))),
        Err(e @ (CredentialError::UntrustedHost { .. } | CredentialError::Refused { .. })) => {
            Ok(ArchiveStore::Refused(e))
        }
        Err(
            CredentialError::Missing { .. }
            | CredentialError::Forbidden { .. }
            | CredentialError::Unsupported { .. }
            | CredentialError::Unusable { .. }
            | CredentialError::KeyExchange { .. },
        ) => Ok(ArchiveStore::Gone),
        Err(e) => Err(e.into()),
    }
}

/// How long a missing target is still waited for; `None` once the wait is over.
pub(crate) fn target_wait_left(
    bundle: &DebugBundle,
    wait: std::time::Duration,
    now: Timestamp,
) -> Option<std::time::Duration> {
    let age = bundle
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| now.duration_since(t.0).unsigned_abs())
        .unwrap_or_default();
    wait.checked_sub(age).filter(|left| !left.is_zero())
}

#[cfg(test)]
mod tests {
    use velero_debug_crd::reasons;

    use super::*;
    use crate::bundle::failure::Failure;

    fn obj(yaml: &str) -> DynamicObject {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn restore_uses_the_storage_location_of_its_backup() {
        let spec = DebugBundleSpec {
            restore: Some("r1".into()),
            ..Default::default()
        };
        let restore = obj(
            "apiVersion: velero.io/v1\nkind: Restore\nmetadata: {name: r1}\nspec: {backupName: b1}\n",
        );
        let backup = obj(
            "apiVersion: velero.io/v1\nkind: Backup\nmetadata: {name: b1}\nspec: {storageLocation: secondary}\n",
        );
        let t = named_target(&spec).unwrap();
        let with_backup = TargetObjects {
            target: restore.clone(),
            backup: Some(backup),
        };
        assert_eq!(
            storage_location_name(&spec, &t, &with_backup, Some("default")).as_deref(),
            Some("secondary")
        );
        let without = TargetObjects {
            target: restore,
            backup: None,
        };
        assert_eq!(
            storage_location_name(&spec, &t, &without, Some("default")).as_deref(),
            Some("default")
        );
        assert_eq!(storage_location_name(&spec, &t, &without, None), None);
    }

    #[test]
    fn exactly_one_target() {
        let both = DebugBundleSpec {
            backup: Some("b".into()),
            restore: Some("r".into()),
            ..Default::default()
        };
        assert!(matches!(
            named_target(&both),
            Err(DereferenceError::NoSingleTarget)
        ));
        assert!(named_target(&DebugBundleSpec::default()).is_err());
    }

    #[test]
    fn names_are_kubernetes_object_names() {
        let longest = "a".repeat(253);
        for good in ["b1", "nightly-2026.11.20", "0", "a-b.c-d", longest.as_str()] {
            assert!(kubernetes::is_object_name(good), "{good:?} refused");
        }
        let too_long = "a".repeat(254);
        for bad in [
            "",
            "a b",
            "B1",
            "-a",
            "a-",
            ".a",
            "a.",
            "a..b",
            "a.-b",
            "a_b",
            "a/b",
            "ä",
            "a\n",
            too_long.as_str(),
        ] {
            assert!(!kubernetes::is_object_name(bad), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_bad_name_fails_before_anything_is_read() {
        let spec = |yaml: &str| serde_yaml::from_str::<DebugBundleSpec>(yaml).unwrap();
        let field = |yaml: &str| match named_target(&spec(yaml)) {
            Err(DereferenceError::InvalidName { field, .. }) => field,
            other => panic!("{yaml}: not InvalidName: {:?}", other.map(|t| t.display())),
        };
        assert_eq!(field("{backup: 'B 1'}"), "backup");
        assert_eq!(field("{restore: r_1}"), "restore");
        assert_eq!(
            field("{restore: r1, storageLocation: 'my bsl'}"),
            "storageLocation"
        );
        assert!(named_target(&spec("{restore: r1, storageLocation: default}")).is_ok());
        let failure = Failure::from(named_target(&spec("{backup: 'B 1'}")).unwrap_err());
        assert_eq!(failure.reason, reasons::INVALID_SPEC);
        assert!(!failure.transient, "a bad name is never retried");
    }

    #[test]
    fn a_missing_target_is_waited_for_from_the_bundle_creation() {
        let bundle: DebugBundle = serde_yaml::from_str(
            "apiVersion: velerodebug.io/v1alpha1\nkind: DebugBundle\nmetadata: {name: b, creationTimestamp: '2026-11-22T10:00:00Z'}\nspec: {restore: r}\n",
        )
        .unwrap();
        let wait = std::time::Duration::from_secs(120);
        let at = |t: &str| t.parse::<Timestamp>().unwrap();
        assert_eq!(
            target_wait_left(&bundle, wait, at("2026-11-22T10:01:00Z")),
            Some(std::time::Duration::from_secs(60))
        );
        assert_eq!(
            target_wait_left(&bundle, wait, at("2026-11-22T10:02:00Z")),
            None
        );
    }
}

//! The fetch step of reconcile: reads what a bundle depends on (its target, the storage
//! location and its credential). Nothing is decided here; plan.rs decides.

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client, api::ListParams, core::DynamicObject};

use crate::{
    collect::{TargetObjects, list_paginated},
    plan::StorageLocation,
    storage::Credentials,
    velero::{self, Target},
};

/// Velero's default credential when a BSL names none.
pub const DEFAULT_CREDENTIAL: (&str, &str) = ("cloud-credentials", "cloud");

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("reading {what}: {source}")]
    Kube {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("listing {what}: {message}")]
    List { what: String, message: String },
    #[error(
        "Secret {secret} named by BackupStorageLocation {location} does not exist or lacks key {key}"
    )]
    CredentialMissing {
        location: String,
        secret: String,
        key: String,
    },
    #[error(
        "the operator may not read Secret {secret}, the credential of BackupStorageLocation {location}: add it to the Helm value rbac.credentialSecrets"
    )]
    CredentialForbidden { location: String, secret: String },
}

fn kube_err(what: impl Into<String>) -> impl FnOnce(kube::Error) -> FetchError {
    let what = what.into();
    move |source| FetchError::Kube { what, source }
}

/// The target and, for a restore, its backup; `None` when the target does not exist.
pub async fn target(
    client: &Client,
    namespace: &str,
    target: &Target,
) -> Result<Option<TargetObjects>, FetchError> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &velero::resource(target.kind()));
    let Some(mut obj) = api
        .get_opt(target.name())
        .await
        .map_err(kube_err(target.display()))?
    else {
        return Ok(None);
    };
    set_types(&mut obj, target.kind());
    let backup = match target {
        Target::Backup(_) => None,
        Target::Restore(_) => match obj.data["spec"]["backupName"].as_str() {
            Some(name) if !name.is_empty() => {
                let backups: Api<DynamicObject> =
                    Api::namespaced_with(client.clone(), namespace, &velero::resource("Backup"));
                let mut b = backups
                    .get_opt(name)
                    .await
                    .map_err(kube_err(format!("backup/{name}")))?;
                if let Some(b) = b.as_mut() {
                    set_types(b, "Backup");
                }
                b
            }
            _ => None,
        },
    };
    Ok(Some(TargetObjects {
        target: obj,
        backup,
    }))
}

fn set_types(obj: &mut DynamicObject, kind: &str) {
    obj.types = Some(kube::core::TypeMeta {
        api_version: velero::resource(kind).api_version,
        kind: kind.to_string(),
    });
}

pub async fn storage_location(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<Option<DynamicObject>, FetchError> {
    let api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        namespace,
        &velero::resource("BackupStorageLocation"),
    );
    api.get_opt(name)
        .await
        .map_err(kube_err(format!("BackupStorageLocation {name}")))
}

/// The name of the BSL marked `spec.default: true`, if any.
pub async fn default_storage_location(
    client: &Client,
    namespace: &str,
    limits: &crate::collect::Limits,
) -> Result<Option<String>, FetchError> {
    let api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        namespace,
        &velero::resource("BackupStorageLocation"),
    );
    let (items, _) = list_paginated(&api, ListParams::default(), limits)
        .await
        .map_err(|message| FetchError::List {
            what: "BackupStorageLocations".into(),
            message,
        })?;
    Ok(items
        .into_iter()
        .find(|b| b.data["spec"]["default"] == true)
        .and_then(|b| b.metadata.name))
}

/// The BSL's credential: the Secret key it names, else Velero's default Secret, else (when
/// that does not exist either) the default AWS credential chain. This is the only Secret the
/// operator ever reads.
pub async fn credentials(
    client: &Client,
    namespace: &str,
    location: &StorageLocation,
) -> Result<Credentials, FetchError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let (name, key, named) = match &location.credential {
        Some((n, k)) => (n.clone(), k.clone(), true),
        None => (
            DEFAULT_CREDENTIAL.0.to_string(),
            DEFAULT_CREDENTIAL.1.to_string(),
            false,
        ),
    };
    let secret = match secrets.get_opt(&name).await {
        Ok(s) => s,
        // Least privilege: the operator reads only the Secrets it was granted; this one is not
        // among them, which no retry changes.
        Err(kube::Error::Api(e)) if e.code == 403 => {
            return Err(FetchError::CredentialForbidden {
                location: location.name.clone(),
                secret: name,
            });
        }
        Err(e) => return Err(kube_err(format!("Secret {name}"))(e)),
    };
    let contents = secret
        .and_then(|s| s.data)
        .and_then(|mut d| d.remove(&key))
        .map(|b| String::from_utf8_lossy(&b.0).into_owned());
    match contents {
        Some(contents) => Ok(Credentials::SharedFile {
            contents,
            profile: location.config("profile").map(str::to_string),
        }),
        None if named => Err(FetchError::CredentialMissing {
            location: location.name.clone(),
            secret: name,
            key,
        }),
        None => Ok(Credentials::DefaultChain),
    }
}

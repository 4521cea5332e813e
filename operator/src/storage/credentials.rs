//! Where the credentials of a BSL come from: the Secret key it names, else Velero's default
//! Secret, else (when that does not exist either) the default AWS credential chain. This is
//! the only Secret the operator ever reads.

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};

use super::location::StorageLocation;
use crate::kubernetes;

/// Velero's default credential when a BSL names none.
pub(crate) const DEFAULT_SECRET: (&str, &str) = ("cloud-credentials", "cloud");

#[derive(Clone)]
pub(crate) enum Credentials {
    /// An AWS shared-credentials file (the content of the BSL's credential Secret key).
    SharedFile {
        contents: String,
        profile: Option<String>,
    },
    /// IRSA, workload identity, instance profiles: the default AWS credential chain.
    DefaultChain,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::SharedFile { profile, .. } => f
                .debug_struct("SharedFile")
                .field("profile", profile)
                .finish_non_exhaustive(),
            Credentials::DefaultChain => f.write_str("DefaultChain"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum CredentialError {
    #[error(
        "Secret {secret} named by BackupStorageLocation {location} does not exist or lacks key {key}"
    )]
    Missing {
        location: String,
        secret: String,
        key: String,
    },
    #[error(
        "the operator may not read Secret {secret}, the credential of BackupStorageLocation {location}: add it to the Helm value rbac.credentialSecrets"
    )]
    Forbidden { location: String, secret: String },
    #[error("reading Secret {secret}: {}", kubernetes::message(.source))]
    Api {
        secret: String,
        #[source]
        source: kube::Error,
    },
}

/// Reads the credential of `location` from Velero's namespace.
pub(crate) async fn fetch(
    client: &Client,
    namespace: &str,
    location: &StorageLocation,
) -> Result<Credentials, CredentialError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let (name, key, named) = match &location.credential {
        Some((n, k)) => (n.clone(), k.clone(), true),
        None => (DEFAULT_SECRET.0.into(), DEFAULT_SECRET.1.into(), false),
    };
    if !kubernetes::is_object_name(&name) {
        return Err(CredentialError::Missing {
            location: location.name.clone(),
            secret: name,
            key,
        });
    }
    let secret = match secrets.get_opt(&name).await {
        Ok(s) => s,
        // Least privilege: the operator reads only the Secrets it was granted; this one is not
        // among them, which no retry changes.
        Err(e) if kubernetes::is_forbidden(&e) => {
            return Err(CredentialError::Forbidden {
                location: location.name.clone(),
                secret: name,
            });
        }
        Err(source) => {
            return Err(CredentialError::Api {
                secret: name,
                source,
            });
        }
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
        None if named => Err(CredentialError::Missing {
            location: location.name.clone(),
            secret: name,
            key,
        }),
        None => Ok(Credentials::DefaultChain),
    }
}

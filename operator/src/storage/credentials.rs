//! Where the credentials of a BSL come from: the Secret key it names, else Velero's default
//! Secret, else (when that does not exist either) what the provider finds by itself. This is
//! the only Secret the operator ever reads. What the Secret holds is read the way the
//! provider's Velero plugin reads it: an AWS shared-credentials file (its static keys only), an
//! Azure dotenv file, a GCP service-account key. A kind of credential the operator cannot use yet is refused with
//! the key that names it and what to set instead, never passed over for another.

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};

use crate::config::TrustedHosts;
use crate::kubernetes;
use crate::storage::{
    location::{Provider, StorageLocation},
    port::ReadError,
};

pub(crate) use crate::storage::{
    azure::AzureCredentials, gcs::GcsCredentials, s3::profile::AwsCredentials,
};

/// Velero's default credential when a BSL names none (`velero install` makes it for every
/// provider).
pub(crate) const DEFAULT_SECRET: (&str, &str) = ("cloud-credentials", "cloud");

/// A BSL's credential, read for its provider.
#[derive(Clone, Debug)]
pub(crate) enum Credentials {
    Aws(AwsCredentials),
    Azure(AzureCredentials),
    Gcs(GcsCredentials),
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
    /// The Secret holds a credential of a kind the operator cannot use (yet).
    #[error(
        "BackupStorageLocation {location}: {what} is not supported by the operator yet; {instead}"
    )]
    Unsupported {
        location: String,
        what: String,
        instead: String,
    },
    /// The location names an endpoint that is not its provider's own for its account, on a
    /// host the operator was not told to trust (trust.rs): nothing is sent there.
    #[error(
        "BackupStorageLocation {location}: config.{key} names {host}, which is not {expected}; the operator sends the location's credential only to the provider's own endpoint for its account, or to a host it is told to trust (Helm value storage.trustedHosts, flag --trusted-storage-host)"
    )]
    UntrustedHost {
        location: String,
        key: &'static str,
        host: String,
        expected: String,
    },
    /// A value of the location or its credential file that would become part of a host or a
    /// URL is not of its provider's shape (provider_names.rs): nothing is sent.
    #[error(
        "BackupStorageLocation {location}: {key} is {value:?}, which is not {allowed}; nothing was sent with the location's credential"
    )]
    Refused {
        location: String,
        key: String,
        value: String,
        allowed: &'static str,
    },
    /// The Secret's identity could not get the account's key from Azure Resource Manager;
    /// `transient`: it may on a later try (the service was out of reach).
    #[error("BackupStorageLocation {location}: {message}")]
    KeyExchange {
        location: String,
        message: String,
        transient: bool,
    },
    /// The Secret holds something that is no credential of the provider's.
    #[error(
        "BackupStorageLocation {location}: the credential in Secret {secret} cannot be used: {why}"
    )]
    Unusable {
        location: String,
        secret: String,
        why: String,
    },
}

/// Reads the credential of `location` from Velero's namespace.
pub(crate) async fn fetch(
    client: &Client,
    namespace: &str,
    location: &StorageLocation,
    trusted: &TrustedHosts,
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
    if contents.is_none() && named {
        return Err(CredentialError::Missing {
            location: location.name.clone(),
            secret: name,
            key,
        });
    }
    let read = read(location, contents.as_deref(), trusted).map_err(|e| match e {
        ReadError::Unsupported { what, instead } => CredentialError::Unsupported {
            location: location.name.clone(),
            what,
            instead,
        },
        ReadError::Unusable(why) => CredentialError::Unusable {
            location: location.name.clone(),
            secret: name,
            why,
        },
        ReadError::UntrustedHost {
            key,
            host,
            expected,
        } => CredentialError::UntrustedHost {
            location: location.name.clone(),
            key,
            host,
            expected,
        },
        ReadError::Refused {
            key,
            value,
            allowed,
        } => CredentialError::Refused {
            location: location.name.clone(),
            key,
            value,
            allowed,
        },
    })?;
    resolved(location, read).await
}

/// A credential ready for requests: an Azure key still to be listed is listed.
async fn resolved(
    location: &StorageLocation,
    credentials: Credentials,
) -> Result<Credentials, CredentialError> {
    let Credentials::Azure(azure) = credentials else {
        return Ok(credentials);
    };
    azure
        .resolved()
        .await
        .map(Credentials::Azure)
        .map_err(|f| CredentialError::KeyExchange {
            location: location.name.clone(),
            message: f.message,
            transient: f.transient,
        })
}

/// The credential of `location` from its Secret's text (None: there is no Secret), refused
/// when the location would send it to a host outside `trusted` that is not the provider's.
pub(super) fn read(
    location: &StorageLocation,
    contents: Option<&str>,
    trusted: &TrustedHosts,
) -> Result<Credentials, ReadError> {
    match location.provider {
        Provider::Aws => AwsCredentials::read(location, contents).map(Credentials::Aws),
        Provider::Azure => {
            AzureCredentials::read(location, contents, trusted).map(Credentials::Azure)
        }
        Provider::Gcp => GcsCredentials::read(location, contents, trusted).map(Credentials::Gcs),
    }
}

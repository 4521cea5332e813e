//! The S3 side of a BackupStorageLocation, read from its spec the way Velero's AWS plugin
//! reads it, and where the operator's archives sit in it.

use std::collections::BTreeMap;

use base64::Engine;
use kube::core::DynamicObject;
use rustls::pki_types::{CertificateDer, pem::PemObject};

use crate::velero::prefixed_key;

#[derive(Debug, thiserror::Error, PartialEq)]
pub(crate) enum LocationError {
    #[error("BackupStorageLocation {0} has no objectStorage.bucket")]
    NoBucket(String),
    #[error(
        "BackupStorageLocation {name} uses provider {provider:?}; supported are aws (S3 and S3-compatible), azure and gcp"
    )]
    UnsupportedProvider { name: String, provider: String },
    #[error(
        "BackupStorageLocation {name} (provider azure) has neither config.storageAccount nor config.storageAccountURI"
    )]
    NoStorageAccount { name: String },
    #[error("BackupStorageLocation {0}: caCert is unusable: {1}")]
    InvalidCaCert(String, String),
}

/// Which of Velero's object-store plugins the BSL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Provider {
    /// velero-plugin-for-aws: AWS S3 and S3-compatible servers.
    #[default]
    Aws,
    /// velero-plugin-for-microsoft-azure: Azure Blob storage.
    Azure,
    /// velero-plugin-for-gcp: Google Cloud Storage.
    Gcp,
}

impl Provider {
    /// Velero accepts a plugin's short name and its `velero.io/` name alike.
    fn parse(name: &str) -> Option<Self> {
        match name.strip_prefix("velero.io/").unwrap_or(name) {
            "aws" => Some(Provider::Aws),
            "azure" => Some(Provider::Azure),
            "gcp" => Some(Provider::Gcp),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct StorageLocation {
    pub name: String,
    pub provider: Provider,
    pub bucket: String,
    pub prefix: Option<String>,
    pub read_only: bool,
    pub config: BTreeMap<String, String>,
    /// `spec.credential`: (secret name, key).
    pub credential: Option<(String, String)>,
    /// `objectStorage.caCert`, base64 PEM.
    pub ca_cert: Option<String>,
}

impl StorageLocation {
    /// Reads a BSL; its caCert is checked here, as the S3 client will use it.
    pub fn from_bsl(bsl: &DynamicObject) -> Result<Self, LocationError> {
        let name = bsl.metadata.name.clone().unwrap_or_default();
        let spec = &bsl.data["spec"];
        let provider_name = spec["provider"].as_str().unwrap_or_default();
        let provider =
            Provider::parse(provider_name).ok_or_else(|| LocationError::UnsupportedProvider {
                name: name.clone(),
                provider: provider_name.into(),
            })?;
        let bucket = spec["objectStorage"]["bucket"]
            .as_str()
            .filter(|b| !b.is_empty())
            .ok_or_else(|| LocationError::NoBucket(name.clone()))?;
        let location = StorageLocation {
            provider,
            bucket: bucket.into(),
            prefix: non_empty(&spec["objectStorage"]["prefix"]),
            read_only: spec["accessMode"] == "ReadOnly",
            config: string_map(&spec["config"]),
            credential: spec["credential"]["name"].as_str().map(|n| {
                let key = spec["credential"]["key"].as_str().unwrap_or("cloud");
                (n.to_string(), key.to_string())
            }),
            ca_cert: non_empty(&spec["objectStorage"]["caCert"]),
            name,
        };
        ca_pem(&location)?;
        if provider == Provider::Azure
            && location.config("storageAccount").is_none()
            && location.config("storageAccountURI").is_none()
        {
            return Err(LocationError::NoStorageAccount {
                name: location.name,
            });
        }
        Ok(location)
    }

    pub fn config(&self, key: &str) -> Option<&str> {
        self.config
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn flag(&self, key: &str) -> bool {
        self.config(key)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// A key relative to the BSL's prefix.
    pub fn key(&self, relative: &str) -> String {
        prefixed_key(self.prefix.as_deref(), relative)
    }

    /// Key of a bundle's archive: under `plugins/`, the only top-level folder of a BSL that
    /// Velero tolerates and that is not its own, so the BSL stays Available.
    pub fn archive_key(&self, namespace: &str, name: &str, uid: &str) -> String {
        self.key(&format!(
            "{ARCHIVES_FOLDER}{}",
            ArchiveOwner::of(namespace, name, uid).relative_key()
        ))
    }

    /// The folder every archive key of this location starts with.
    pub fn archives_prefix(&self) -> String {
        self.key(ARCHIVES_FOLDER)
    }

    /// The folder of the archives of bundles of `namespace`.
    pub fn namespace_archives_prefix(&self, namespace: &str) -> String {
        format!("{}{namespace}/", self.archives_prefix())
    }

    /// Whose archive `key` (a key of this location) is, when it has the shape of one.
    pub fn archive_owner(&self, key: &str) -> Option<ArchiveOwner> {
        ArchiveOwner::parse(key.strip_prefix(&self.archives_prefix())?)
    }
}

/// Object metadata naming the install that wrote an archive (`x-amz-meta-...`).
pub(crate) const INSTALL_MARK: &str = "velero-debug-install";

/// The value of [`INSTALL_MARK`]: the cluster (the DebugBundle CRD's uid), the namespace
/// served (`*` for all: two installs in one cluster share the CRD, so the uid alone would name
/// both) and the writer, this process, as recorded in the install record (a cluster cloned
/// from an etcd snapshot shares the uid; see install_record.rs). Empty when the cluster or
/// the writer is not known (nothing is then collected).
pub(crate) fn install_mark(cluster: &str, namespace: Option<&str>, writer: &str) -> String {
    if cluster.is_empty() || writer.is_empty() {
        return String::new();
    }
    format!("{cluster}/{}/{writer}", namespace.unwrap_or("*"))
}

/// Whether an object marked `mark` was written by this install, whose own mark is `own`:
/// the same cluster and namespace, and a writer the install record lists. A mark of the
/// form before writers were recorded (`<uid>/<namespace>`) is not provably ours.
pub(crate) fn written_by_us(
    mark: &str,
    own: &str,
    writers: &std::collections::BTreeSet<String>,
) -> bool {
    match (own.rsplit_once('/'), mark.rsplit_once('/')) {
        (Some((install, _)), Some((theirs, writer))) => {
            !install.is_empty() && install == theirs && writers.contains(writer)
        }
        _ => false,
    }
}

/// Below the BSL's prefix, where archives go.
const ARCHIVES_FOLDER: &str = "plugins/velero-debug-operator/bundles/";

/// The DebugBundle an archive key names: its namespace, name and the first 8 hex digits of
/// its uid (what the key holds of it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ArchiveOwner {
    pub namespace: String,
    pub name: String,
    pub short_uid: String,
}

impl ArchiveOwner {
    pub fn of(namespace: &str, name: &str, uid: &str) -> Self {
        Self {
            namespace: namespace.to_string(),
            name: name.to_string(),
            short_uid: uid.chars().filter(|c| *c != '-').take(8).collect(),
        }
    }

    fn relative_key(&self) -> String {
        format!("{}/{}-{}.tar.gz", self.namespace, self.name, self.short_uid)
    }

    /// `<namespace>/<name>-<8 hex>.tar.gz` and nothing else (another file in the folder is
    /// not an archive of ours and is left alone).
    fn parse(relative: &str) -> Option<Self> {
        let (namespace, file) = relative.split_once('/')?;
        let stem = file.strip_suffix(".tar.gz")?;
        let (name, short_uid) = stem.rsplit_once('-')?;
        let hex = short_uid.len() == 8 && short_uid.bytes().all(|b| b.is_ascii_hexdigit());
        let owner = Self {
            namespace: namespace.to_string(),
            name: name.to_string(),
            short_uid: short_uid.to_string(),
        };
        (hex && crate::kubernetes::is_object_name(namespace)
            && crate::kubernetes::is_object_name(name)
            && owner.relative_key() == relative)
            .then_some(owner)
    }
}

fn non_empty(value: &serde_json::Value) -> Option<String> {
    value.as_str().filter(|s| !s.is_empty()).map(str::to_string)
}

/// `spec.config`: values as strings, whatever JSON type they were written as.
fn string_map(value: &serde_json::Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let v = v.as_str().map(str::to_string).unwrap_or(v.to_string());
                    (k.clone(), v)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The PEM bundle of `objectStorage.caCert`, decoded; an error names the BSL.
pub(crate) fn ca_pem(location: &StorageLocation) -> Result<Option<Vec<u8>>, LocationError> {
    let Some(b64) = location.ca_cert.as_deref() else {
        return Ok(None);
    };
    let invalid = |why: &str| LocationError::InvalidCaCert(location.name.clone(), why.to_string());
    let pem = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| invalid(&format!("not base64: {e}")))?;
    // Parsed here exactly as the SDK's trust store will parse it when it first connects: it
    // panics (`expect`) on a PEM it cannot read or a certificate it cannot use as a root.
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(&format!("not a readable PEM bundle: {e}")))?;
    if certs.is_empty() {
        return Err(invalid("no PEM certificate in it"));
    }
    let mut roots = rustls::RootCertStore::empty();
    for (i, cert) in certs.into_iter().enumerate() {
        roots
            .add(cert)
            .map_err(|e| invalid(&format!("certificate {} is not usable: {e}", i + 1)))?;
    }
    Ok(Some(pem))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(yaml: &str) -> DynamicObject {
        serde_yaml::from_str(yaml).unwrap()
    }

    const BSL: &str = r#"
apiVersion: velero.io/v1
kind: BackupStorageLocation
metadata: {name: default, namespace: velero}
spec:
  provider: aws
  objectStorage: {bucket: velero, prefix: cluster-a}
  credential: {name: bsl-creds, key: cloud}
  config: {region: minio, s3ForcePathStyle: "true", s3Url: "http://127.0.0.1:9000", checksumAlgorithm: ""}
"#;

    #[test]
    fn bsl_is_read_with_its_config_and_credential() {
        let loc = StorageLocation::from_bsl(&obj(BSL)).unwrap();
        assert_eq!(loc.bucket, "velero");
        assert_eq!(loc.prefix.as_deref(), Some("cluster-a"));
        assert!(loc.flag("s3ForcePathStyle"));
        assert_eq!(loc.config("checksumAlgorithm"), None, "empty means unset");
        assert_eq!(loc.config("s3Url"), Some("http://127.0.0.1:9000"));
        assert_eq!(loc.credential, Some(("bsl-creds".into(), "cloud".into())));
        assert!(!loc.read_only);
        let ro = obj(&BSL.replace("provider: aws", "provider: aws\n  accessMode: ReadOnly"));
        assert!(StorageLocation::from_bsl(&ro).unwrap().read_only);
    }

    #[test]
    fn archive_key_sits_under_plugins() {
        let loc = StorageLocation::from_bsl(&obj(BSL)).unwrap();
        let key = loc.archive_key("velero", "b1", "1234abcd-ef00-0000-0000-000000000000");
        assert_eq!(
            key,
            "cluster-a/plugins/velero-debug-operator/bundles/velero/b1-1234abcd.tar.gz"
        );
        let top = key.strip_prefix("cluster-a/").unwrap().split('/').next();
        assert!(crate::velero::ALLOWED_TOP_LEVEL_DIRS.contains(&top.unwrap()));
    }

    #[test]
    fn archive_keys_name_their_bundle_and_nothing_else_does() {
        let loc = StorageLocation::from_bsl(&obj(BSL)).unwrap();
        let key = loc.archive_key("velero", "b-1", "1234abcd-ef00-0000-0000-000000000000");
        assert_eq!(
            loc.archive_owner(&key),
            Some(ArchiveOwner::of("velero", "b-1", "1234abcd-ef00"))
        );
        for other in [
            "cluster-a/plugins/velero-debug-operator/bundles/velero/b-1-1234abcd.tar",
            "cluster-a/plugins/velero-debug-operator/bundles/velero/notes.txt",
            "cluster-a/plugins/velero-debug-operator/bundles/velero/b-1-1234abcz.tar.gz",
            "cluster-a/plugins/velero-debug-operator/bundles/velero/x/b-1-1234abcd.tar.gz",
            "cluster-a/plugins/velero-debug-operator/bundles/Velero/b-1-1234abcd.tar.gz",
            "cluster-a/plugins/velero-debug-operator/bundles/velero/-1234abcd.tar.gz",
            "cluster-b/plugins/velero-debug-operator/bundles/velero/b-1-1234abcd.tar.gz",
            "cluster-a/backups/velero/b-1-1234abcd.tar.gz",
        ] {
            assert_eq!(loc.archive_owner(other), None, "{other}");
        }
    }

    #[test]
    fn providers_are_read_by_either_name_and_others_refused() {
        for (name, provider) in [
            ("aws", Provider::Aws),
            ("velero.io/aws", Provider::Aws),
            ("gcp", Provider::Gcp),
            ("velero.io/gcp", Provider::Gcp),
            ("azure", Provider::Azure),
            ("velero.io/azure", Provider::Azure),
        ] {
            let bsl = BSL
                .replace("provider: aws", &format!("provider: {name}"))
                .replace("region: minio", "region: minio, storageAccount: acct");
            let loc = StorageLocation::from_bsl(&obj(&bsl)).unwrap();
            assert_eq!(loc.provider, provider, "{name}");
        }
        for other in ["alibabacloud", "velero.io/", "", "AWS"] {
            let bsl = obj(&BSL.replace("provider: aws", &format!("provider: \"{other}\"")));
            let err = StorageLocation::from_bsl(&bsl).unwrap_err();
            assert!(
                matches!(err, LocationError::UnsupportedProvider { .. }),
                "{other}"
            );
            assert!(
                err.to_string()
                    .contains("aws (S3 and S3-compatible), azure and gcp")
            );
        }
    }

    #[test]
    fn an_azure_location_names_its_storage_account() {
        let azure = obj(&BSL.replace("provider: aws", "provider: azure"));
        assert_eq!(
            StorageLocation::from_bsl(&azure),
            Err(LocationError::NoStorageAccount {
                name: "default".into()
            })
        );
        let with_uri = obj(&BSL.replace("provider: aws", "provider: azure").replace(
            "region: minio",
            "storageAccountURI: \"https://acct.blob.core.windows.net\"",
        ));
        assert!(StorageLocation::from_bsl(&with_uri).is_ok());
    }

    #[test]
    fn ca_cert_is_read_from_object_storage_and_validated() {
        use base64::Engine;
        let b64 = |t: &str| base64::engine::general_purpose::STANDARD.encode(t);
        let ca = include_str!("../../testdata/unit-test-ca.pem");
        let with = |ca_cert: &str| {
            obj(&BSL.replace(
                "prefix: cluster-a}",
                &format!("prefix: cluster-a, caCert: \"{ca_cert}\"}}"),
            ))
        };
        let loc = StorageLocation::from_bsl(&with(&b64(ca))).unwrap();
        assert_eq!(loc.ca_cert, Some(b64(ca)));
        assert_eq!(StorageLocation::from_bsl(&with("")).unwrap().ca_cert, None);
        for bad in ["not base64!", &b64("not a certificate")] {
            let err = StorageLocation::from_bsl(&with(bad)).unwrap_err();
            assert!(
                matches!(&err, LocationError::InvalidCaCert(name, _) if name == "default"),
                "{err}"
            );
            assert!(err.to_string().contains("caCert is unusable"), "{err}");
        }
    }
}

//! velero-debug-operator: collects everything relevant to a Velero Backup or Restore into a
//! tar.gz in the BackupStorageLocation's object store.

pub mod archive;
pub mod auto_bundles;
pub mod collect;
pub mod controller;
pub mod fetch;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod plan;
pub mod redact;
pub mod s3_tls;
pub mod status;
pub mod storage;
pub mod summary;
pub mod velero;

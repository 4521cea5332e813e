//! velero-debug-operator: collects everything relevant to a Velero Backup or Restore into a
//! tar.gz in the BackupStorageLocation's object store. See CONTRIBUTING.md, "Architecture",
//! for the walk of one DebugBundle through these modules.

pub mod allocator;
mod api_timeout;
mod args;
mod auto_bundles;
mod bundle;
mod collect;
mod config;
mod context;
mod event_publisher;
mod findings;
mod gzip_members;
mod health;
mod http;
pub mod install_record;
mod kubernetes;
mod leader;
/// The client pod logs are read with; the benchmark's source floor reads with it too.
pub mod log_client;
mod metrics;
mod orphans;
mod own_crd;
mod probe;
mod process;
mod proxy;
mod recorder;
mod redact;
mod report;
mod request_tally;
mod spool;
mod storage;
mod summary;
mod tar_gz;
#[cfg(test)]
mod test_support;
mod uninstall;
/// What the operator knows about Velero (resource types, labels, object-store layout); the
/// end-to-end tests use it too.
pub mod velero;

pub use args::Args;
pub use process::run;
/// For `make bench` only: one upload to a storage location's store, timed.
pub use storage::measure::{AZURE_UPLOAD_SHAPE, upload_time as measure_upload};
// The Go duration parser lives with the API types so the kubectl plugin reads the same grammar.
use velero_debug_crd::duration;

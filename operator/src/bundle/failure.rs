//! Why a bundle failed, in one type: every step's error converts into a [`Failure`] here, so
//! each `Ready` reason is chosen in one place and the same cause gets the same reason at every
//! step. Transient failures are retried with backoff up to the attempt limit; permanent ones
//! end the bundle Failed.

use velero_debug_crd::reasons;

use super::{
    archive::ArchiveError, collect::CollectStepError, deadline::DeadlineExceeded,
    dereference::DereferenceError, plan::PlanError, run::WriteError, upload::UploadError,
};
use crate::{
    collect::CollectError, kubernetes, storage::StorageError, storage::credentials::CredentialError,
};

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Failure {
    /// The `Ready` condition's reason (velero_debug_crd::reasons).
    pub reason: &'static str,
    pub message: String,
    /// Retrying may help (an outage); a refusal or a bad spec will not.
    pub transient: bool,
}

impl Failure {
    fn permanent(reason: &'static str, message: impl ToString) -> Self {
        Self {
            reason,
            message: message.to_string(),
            transient: false,
        }
    }

    fn transient(reason: &'static str, message: impl ToString) -> Self {
        Self {
            reason,
            message: message.to_string(),
            transient: true,
        }
    }

    /// Every attempt allowed was cut short by the operator stopping while collecting: the
    /// bundle itself may be what kills it (a log or object too big for its memory), so it is
    /// not tried again.
    pub fn cut_short(attempts: i32) -> Self {
        Self::permanent(
            reasons::OPERATOR_STOPPED_WHILE_COLLECTING,
            format!(
                "the operator stopped while collecting this bundle in each of its {attempts} attempts (crash, out-of-memory kill or restart; the operator pod's last state and log say which); not trying again"
            ),
        )
    }

    /// A panic while making the bundle: not retried, since the same input hits the same bug.
    pub fn bug(panic: &str) -> Self {
        Self::permanent(
            reasons::INTERNAL_ERROR,
            format!(
                "the operator hit a bug while making this bundle ({panic}); it keeps running, and this is worth a report"
            ),
        )
    }

    fn api(error: &kube::Error, message: impl ToString) -> Self {
        Self {
            reason: reasons::KUBERNETES_API_ERROR,
            message: message.to_string(),
            transient: kubernetes::is_transient(error),
        }
    }
}

impl From<DereferenceError> for Failure {
    fn from(e: DereferenceError) -> Self {
        use DereferenceError as E;
        match &e {
            E::NoSingleTarget | E::InvalidName { .. } => Self::permanent(reasons::INVALID_SPEC, e),
            E::TargetNotFound { .. } => Self::permanent(reasons::TARGET_NOT_FOUND, e),
            E::NoStorageLocation { .. } | E::StorageLocationNotFound { .. } => {
                Self::permanent(reasons::STORAGE_LOCATION_NOT_FOUND, e)
            }
            E::Location(_) => Self::permanent(reasons::UNSUPPORTED_STORAGE_LOCATION, e),
            E::Credential(
                CredentialError::Missing { .. }
                | CredentialError::Forbidden { .. }
                | CredentialError::Unusable { .. },
            ) => Self::permanent(reasons::CREDENTIALS_INVALID, e),
            // A kind of credential the operator cannot use yet: the message says what to set.
            E::Credential(
                CredentialError::Unsupported { .. }
                | CredentialError::UntrustedHost { .. }
                | CredentialError::Refused { .. },
            ) => Self::permanent(reasons::UNSUPPORTED_STORAGE_LOCATION, e),
            E::Credential(CredentialError::KeyExchange { transient, .. }) => {
                if *transient {
                    Self::transient(reasons::STORAGE_UNREACHABLE, e)
                } else {
                    Self::permanent(reasons::CREDENTIALS_INVALID, e)
                }
            }
            E::Credential(CredentialError::Api { source, .. }) | E::Api { source, .. } => {
                Self::api(source, &e)
            }
            E::List { .. } => Self::transient(reasons::KUBERNETES_API_ERROR, e),
        }
    }
}

impl From<PlanError> for Failure {
    fn from(e: PlanError) -> Self {
        match &e {
            PlanError::InvalidSpec { .. } => Self::permanent(reasons::INVALID_SPEC, e),
            PlanError::ReadOnly(_) => Self::permanent(reasons::STORAGE_LOCATION_READ_ONLY, e),
        }
    }
}

/// Not for `StorageError::Cancelled`: a shutdown is no failure of the bundle (see pipeline.rs).
impl From<StorageError> for Failure {
    fn from(e: StorageError) -> Self {
        use StorageError as E;
        match &e {
            E::CredentialsInvalid { .. } => Self::permanent(reasons::CREDENTIALS_INVALID, e),
            E::Unreachable { .. } => Self::transient(reasons::STORAGE_UNREACHABLE, e),
            E::UploadGone { .. } => Self::transient(reasons::UPLOAD_FAILED, e),
            E::CertificateUntrusted { .. } => Self::permanent(reasons::CERTIFICATE_UNTRUSTED, e),
            E::BucketMissing { .. } => Self::permanent(reasons::BUCKET_NOT_FOUND, e),
            // Reading the spooled archive back: the disk may recover.
            E::Io(_) => Self::transient(reasons::UPLOAD_FAILED, e),
            E::NotFound { .. } | E::Failed { .. } | E::Cancelled => {
                Self::permanent(reasons::UPLOAD_FAILED, e)
            }
        }
    }
}

impl From<ArchiveError> for Failure {
    fn from(e: ArchiveError) -> Self {
        Self::archive(&e.0, &e)
    }
}

/// Collection fails only when its archive cannot be written (disk).
impl From<CollectError> for Failure {
    fn from(e: CollectError) -> Self {
        match &e {
            CollectError::Archive(io) => Self::archive(io, &e),
        }
    }
}

impl Failure {
    /// Writing the archive to the spool: a full disk (ENOSPC, EDQUOT) or another I/O error may
    /// pass (other bundles finish and free their spool), so it is retried up to the attempt
    /// limit. An error the code makes itself (`io::Error::other`: a broken invariant) would
    /// come back every time.
    fn archive(io: &std::io::Error, message: impl ToString) -> Self {
        if io.kind() == std::io::ErrorKind::Other {
            Self::permanent(reasons::ARCHIVE_FAILED, message)
        } else {
            Self::transient(reasons::ARCHIVE_FAILED, message)
        }
    }
}

/// A hung step (a store trickling bytes, a huge log) may go through on the next attempt; one
/// that hangs every time ends Failed at the attempt limit like any outage.
impl From<DeadlineExceeded> for Failure {
    fn from(e: DeadlineExceeded) -> Self {
        Self::transient(reasons::DEADLINE_EXCEEDED, e)
    }
}

/// Why the pipeline stopped before the bundle was done.
#[derive(Debug)]
pub(crate) enum Stop {
    /// The bundle failed: Failed now, or retried when the failure may pass.
    Failed(Failure),
    /// Its status could not be written: the reconcile is retried.
    Api(kube::Error),
    /// SIGTERM or a lost lease (this term is over): the bundle is left as it is for the next
    /// leader, and nothing more is written.
    ShuttingDown,
}

impl<F: Into<Failure>> From<F> for Stop {
    fn from(failure: F) -> Self {
        Stop::Failed(failure.into())
    }
}

impl Stop {
    pub fn status(e: WriteError) -> Self {
        match e {
            WriteError::Api(e) => Stop::Api(e),
            WriteError::NotLeading(_) | WriteError::Superseded => Stop::ShuttingDown,
        }
    }

    pub fn from_collect(e: CollectStepError) -> Self {
        match e {
            CollectStepError::Collection(e) => Stop::Failed(e.into()),
            CollectStepError::Status(e) => Stop::status(e),
            CollectStepError::Cancelled => Stop::ShuttingDown,
        }
    }

    pub fn from_upload(e: UploadError) -> Self {
        match e {
            UploadError::Store(StorageError::Cancelled) => Stop::ShuttingDown,
            UploadError::Store(e) => Stop::Failed(e.into()),
            UploadError::Status(e) => Stop::status(e),
            UploadError::NotLeading(_) => Stop::ShuttingDown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_store_outage_has_the_same_reason_at_every_step() {
        let unreachable = || StorageError::Unreachable {
            location: "default".into(),
            via: String::new(),
            message: "connection refused".into(),
        };
        let preflight = Failure::from(unreachable());
        let upload = Failure::from(unreachable());
        assert_eq!(preflight, upload);
        assert_eq!(preflight.reason, reasons::STORAGE_UNREACHABLE);
        assert!(preflight.transient);
    }

    #[test]
    fn a_deadline_is_retried_under_a_reason_of_its_own() {
        let f = Failure::from(DeadlineExceeded {
            limit: std::time::Duration::from_secs(1800),
            step: super::super::deadline::Step::Collect,
        });
        assert_eq!(f.reason, reasons::DEADLINE_EXCEEDED);
        assert!(f.transient);
        assert!(f.message.contains("30m (BUNDLE_DEADLINE)"), "{}", f.message);
        assert!(f.message.ends_with("in step collect"), "{}", f.message);
    }

    #[test]
    fn an_unusable_ca_cert_is_an_unsupported_location() {
        let e = DereferenceError::Location(crate::storage::location::LocationError::InvalidCaCert(
            "tls".into(),
            "no PEM certificate in it".into(),
        ));
        let f = Failure::from(e);
        assert_eq!(f.reason, reasons::UNSUPPORTED_STORAGE_LOCATION);
        assert!(!f.transient);
        assert!(f.message.contains("caCert is unusable"), "{}", f.message);
    }

    /// Archive entries written to a body file on a disk that is full (`/dev/full` answers
    /// every write ENOSPC): an error, not a panic, and a failure that is retried.
    #[test]
    fn a_full_disk_while_archiving_is_retried_not_a_panic() {
        use crate::{
            gzip_members::Compression,
            tar_gz::{EntryPath, TarGzWriter},
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bundle.tar.gz");
        std::os::unix::fs::symlink("/dev/full", dir.path().join("bundle.tar.gz.body")).unwrap();
        let mut archive = TarGzWriter::create(&path, "b", 0, Compression::default()).unwrap();
        // Incompressible, more than the writer buffers: it reaches the disk.
        let noise = crate::test_support::noise(4 << 20, 0x9e37_79b9_7f4a_7c15);
        let written = archive
            .append_bytes(&EntryPath::new(&["logs"], "l", "log"), &noise)
            .and_then(|_| archive.finish().map(|_| ()));
        let full = written.expect_err("the disk is full");
        assert_eq!(full.kind(), std::io::ErrorKind::StorageFull, "{full}");
        for failure in [
            Failure::from(CollectError::Archive(full)),
            Failure::from(ArchiveError(std::io::Error::from_raw_os_error(
                libc::EDQUOT,
            ))),
        ] {
            assert_eq!(failure.reason, reasons::ARCHIVE_FAILED);
            assert!(failure.transient, "{failure:?}");
        }
        let broken = ArchiveError(std::io::Error::other("tar ended without its end marker"));
        assert!(!Failure::from(broken).transient);
    }

    #[test]
    fn api_refusals_are_permanent_and_outages_transient() {
        let status = |code| {
            kube::Error::Api(Box::new(
                kube::core::Status::failure("boom", "Reason").with_code(code),
            ))
        };
        let e = |code| DereferenceError::Api {
            what: "Restore r1".into(),
            source: status(code),
        };
        assert!(Failure::from(e(503)).transient);
        let forbidden = Failure::from(e(403));
        assert!(!forbidden.transient);
        assert_eq!(forbidden.reason, reasons::KUBERNETES_API_ERROR);
        assert_eq!(forbidden.message, "reading Restore r1: boom (HTTP 403)");
        let missing = CredentialError::Missing {
            location: "default".into(),
            secret: "s".into(),
            key: "cloud".into(),
        };
        assert_eq!(
            Failure::from(DereferenceError::from(missing)).reason,
            reasons::CREDENTIALS_INVALID
        );
    }
}

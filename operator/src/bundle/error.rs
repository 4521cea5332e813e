//! What can end a reconcile of a DebugBundle without a status saying why: the API server
//! refusing a write, the archive's store during cleanup, a shutdown. Whether a retry may help
//! is decided here, for `error_policy`.

use kube::runtime::finalizer;

use super::{dereference::DereferenceError, run::WriteError};
use crate::{context::NotLeading, kubernetes, storage::StorageError};

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("kubernetes API: {}", kubernetes::message(.0))]
    Kube(#[from] kube::Error),
    #[error("reading the storage location of the archive: {0}")]
    Dereference(#[from] DereferenceError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Finalizer(#[from] Box<finalizer::Error<Error>>),
    #[error(
        "stopped: this process no longer leads (SIGTERM, or the Lease lost); the next leader carries on with this bundle"
    )]
    ShuttingDown,
}

impl From<NotLeading> for Error {
    fn from(_: NotLeading) -> Self {
        Error::ShuttingDown
    }
}

impl From<WriteError> for Error {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Api(e) => Error::Kube(e),
            WriteError::NotLeading(e) => e.into(),
            WriteError::Superseded => Error::ShuttingDown,
        }
    }
}

impl Error {
    /// Whether a retry may help; a permanent error waits for a change of the bundle.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Kube(e) => kubernetes::is_transient(e),
            Error::Dereference(_) | Error::Storage(_) => true,
            Error::Finalizer(e) => match e.as_ref() {
                finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e) => {
                    e.is_transient()
                }
                // The API server may refuse every update of an object it admitted (a CEL
                // rule failing on a stored value): that waits for a change, not a retry.
                finalizer::Error::AddFinalizer(e) | finalizer::Error::RemoveFinalizer(e) => {
                    kubernetes::is_transient(e)
                }
                finalizer::Error::UnnamedObject | finalizer::Error::InvalidFinalizer => false,
            },
            Error::ShuttingDown => false,
        }
    }
}

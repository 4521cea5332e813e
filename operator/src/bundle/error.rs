//! What can end a reconcile of a DebugBundle without a status saying why: the API server
//! refusing a write, the archive's store during cleanup, a shutdown. Whether a retry may help
//! is decided here, for `error_policy`.

use kube::runtime::finalizer;

use super::dereference::DereferenceError;
use crate::{kubernetes, storage::StorageError};

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
    #[error("stopped: the operator is shutting down; the next leader collects this bundle")]
    ShuttingDown,
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

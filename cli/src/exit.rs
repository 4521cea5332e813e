//! The process's exit statuses, one meaning each (README, "kubectl plugin").

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExitStatus {
    Success = 0,
    /// `wait` (or `create --wait`): the bundle ended Failed.
    BundleFailed = 1,
    /// `wait`: the timeout passed first.
    TimedOut = 2,
    /// `download`: the archive's sha256 differs from status.archive.sha256.
    ChecksumMismatch = 3,
    /// Anything else: a usage error, the API server, the bundle missing, the network.
    Error = 4,
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(status: ExitStatus) -> Self {
        std::process::ExitCode::from(status as u8)
    }
}

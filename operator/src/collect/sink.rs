//! Where collection writes: the bundle's archive and its spool folder, every byte taken from
//! the bundle's budget and redacted first.

use std::{path::PathBuf, sync::Arc};

use super::budget::ContentBudget;
use crate::{gzip_members::Compression, redact::Redactor, tar_gz::TarGzWriter};

/// The archive collection writes into, and what writing it takes.
pub(crate) struct Sink {
    pub(super) archive: TarGzWriter,
    /// Taken from before anything is written for the bundle (spool files, archive entries).
    pub(super) budget: ContentBudget,
    pub(super) spool_dir: PathBuf,
    pub(super) redactor: Arc<Redactor>,
    pub(super) compression: Compression,
}

impl Sink {
    /// Writes into `archive`, spooling into `spool_dir` (the archive's folder), at most
    /// `max_bundle_bytes` of content.
    pub(crate) fn new(
        archive: TarGzWriter,
        spool_dir: PathBuf,
        max_bundle_bytes: u64,
        redactor: Arc<Redactor>,
        compression: Compression,
    ) -> Self {
        Self {
            archive,
            budget: ContentBudget::new(max_bundle_bytes),
            spool_dir,
            redactor,
            compression,
        }
    }
}

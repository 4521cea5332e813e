//! Step 6, archive: summary.md and manifest.json go first into the archive, which is then
//! closed (its size and sha256 known).

use jiff::Timestamp;
use tempfile::TempDir;

use super::collect::Spooled;
use crate::{
    collect::Collected,
    findings::{Finding, SiteRules},
    summary::{FORMAT_VERSION, Manifest, ManifestTarget},
    tar_gz::{EntryPath, FinishedArchive},
};

pub(crate) const OPERATOR_VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Debug, thiserror::Error)]
#[error("writing the archive: {0}")]
pub(crate) struct ArchiveError(#[from] pub(super) std::io::Error);

/// The closed archive, in the spool folder that lives as long as this does.
pub(crate) struct FinishedBundle {
    pub archive: FinishedArchive,
    pub warnings: Vec<String>,
    /// Ranked, most probable cause first (as in summary.md and manifest.json).
    pub findings: Vec<Finding>,
    _spool: TempDir,
}

/// Diagnoses, renders and closes the archive on a blocking thread: the findings' rules and
/// the archive's last gzip members are CPU work that must not hold up other reconciles.
pub(crate) async fn finish(
    spooled: Spooled,
    site_rules: SiteRules,
) -> Result<FinishedBundle, ArchiveError> {
    match tokio::task::spawn_blocking(move || finish_blocking(spooled, &site_rules)).await {
        Ok(finished) => finished,
        // A panic is the reconcile's, failing this bundle alone (see `bundle::apply`).
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(ArchiveError(std::io::Error::other(e))),
    }
}

fn finish_blocking(
    spooled: Spooled,
    site_rules: &SiteRules,
) -> Result<FinishedBundle, ArchiveError> {
    let Spooled {
        collected,
        api_requests,
        spool,
    } = spooled;
    let Collected {
        mut archive,
        summary,
        warnings,
        timings,
        masks,
    } = collected;
    let findings = crate::findings::diagnose_with(&summary.evidence, site_rules);
    let summary_md = summary.render(&findings, &warnings);
    // First in the archive, so a reader wanting only them stops early (see tar_gz).
    archive.put_first(
        &EntryPath::new(&[], "summary", "md"),
        summary_md.into_bytes(),
    );
    let files = archive.files().to_vec();
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        operator_version: OPERATOR_VERSION,
        target: ManifestTarget {
            kind: &summary.evidence.target.kind,
            name: &summary.evidence.target.name,
            uid: &summary.evidence.target.uid,
            phase: &summary.evidence.target.phase,
        },
        created_at: Timestamp::now().to_string(),
        root_folder: archive.root(),
        files: &files,
        warnings: &warnings,
        timings_ms: &timings,
        api_requests,
        masked_by_rule: &masks,
        findings: &findings,
    };
    let json = serde_json::to_vec_pretty(&manifest).map_err(std::io::Error::other)?;
    archive.put_first(&EntryPath::new(&[], "manifest", "json"), json);
    let archive = archive.finish()?;
    Ok(FinishedBundle {
        archive,
        warnings,
        findings,
        _spool: spool,
    })
}

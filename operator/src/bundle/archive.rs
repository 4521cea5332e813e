//! Step 6, archive: summary.md and manifest.json go first into the archive, which is then
//! closed (its size known; its sha256 is read beside the upload, [`sha256`]).

use jiff::Timestamp;
use tempfile::TempDir;

use super::collect::Spooled;
use crate::{
    collect::Collected,
    findings::{Finding, MAX_MANIFEST_APPLICATIONS, SiteRules},
    summary::{FORMAT_VERSION, Manifest, ManifestDetails, ManifestTarget},
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
    on_blocking_thread(move || finish_blocking(spooled, &site_rules)).await
}

/// The closed archive's sha256, read on a blocking thread. The upload reads the same file; run
/// beside it, the hash costs the bundle no time of its own (it was most of the archive step).
pub(crate) async fn sha256(path: std::path::PathBuf) -> Result<String, ArchiveError> {
    on_blocking_thread(move || Ok(crate::tar_gz::sha256_of_file(&path)?)).await
}

async fn on_blocking_thread<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ArchiveError> + Send + 'static,
) -> Result<T, ArchiveError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(done) => done,
        // A panic is the reconcile's, failing this bundle alone (see `bundle::apply`).
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(ArchiveError(std::io::Error::other(e))),
    }
}

/// report.html, from the same evidence and findings as summary.md.
fn report_html(
    evidence: &crate::findings::Evidence,
    findings: &[crate::findings::Finding],
    damage: &crate::findings::Damage,
    files: &[crate::summary::ArchivedFile],
) -> String {
    let restore = evidence.target.kind == "Restore";
    let damage_lines: Vec<String> = damage
        .applications
        .iter()
        .take(MAX_MANIFEST_APPLICATIONS)
        .map(|d| crate::summary::damage_line(d, restore, findings))
        .collect();
    crate::report::render(&crate::report::ReportInput {
        evidence,
        findings,
        damage,
        damage_lines: &damage_lines,
        files,
    })
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
        mut summary,
        warnings,
        timings,
        masks,
        not_collected,
    } = collected;
    summary.evidence.not_allowed = crate::summary::not_allowed(&not_collected);
    let findings = crate::findings::diagnose_with(&summary.evidence, site_rules);
    let summary_md = summary.render(&findings, &warnings);
    let all_damage = crate::findings::damage(&summary.evidence, &findings);
    let report = report_html(&summary.evidence, &findings, &all_damage, archive.files());
    let damage = all_damage.applications;
    let kept = damage.len().min(MAX_MANIFEST_APPLICATIONS);
    // First in the archive, so a reader wanting only them stops early (see tar_gz).
    archive.put_first(&EntryPath::new(&[], "report", "html"), report.into_bytes());
    archive.put_first(
        &EntryPath::new(&[], "summary", "md"),
        summary_md.into_bytes(),
    );
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        operator_version: OPERATOR_VERSION.to_string(),
        target: ManifestTarget {
            kind: summary.evidence.target.kind.clone(),
            name: summary.evidence.target.name.clone(),
            uid: summary.evidence.target.uid.clone(),
            phase: summary.evidence.target.phase.clone(),
        },
        created_at: Timestamp::now().to_string(),
        root_folder: archive.root().to_string(),
        files: archive.files().to_vec(),
        warnings: warnings.clone(),
        details: ManifestDetails {
            timings_ms: &timings,
            api_requests: api_requests.values().sum(),
            api_requests_by_kind: &api_requests,
            masked_by_rule: &masks,
            findings: &findings,
            damage: &damage[..kept],
            damage_left_out: damage.len() - kept,
        },
        not_collected,
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

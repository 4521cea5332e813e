//! Assertions on a bundle's diagnosis: the first finding of summary.md and of status.findings,
//! and the ProbableCause event announced on the diagnosed Velero object.

use std::{collections::BTreeMap, time::Duration};

use anyhow::{Context, Result, ensure};
use kube::Api;
use velero_debug_crd::DebugBundle;

use crate::{archives::text, context::TestCtx, polling::eventually};

/// The first entry under `## Findings` in summary.md, and the line number of that heading.
pub fn first_finding(summary: &str) -> Result<(usize, String)> {
    let at = summary
        .lines()
        .position(|l| l == "## Findings")
        .with_context(|| format!("summary.md has no Findings:\n{summary}"))?;
    let first = summary
        .lines()
        .skip(at + 1)
        .find(|l| !l.trim().is_empty())
        .context("summary.md's Findings are empty")?;
    Ok((at, first.to_string()))
}

/// Asserts the bundle's probable cause is `rule`: first in summary.md's Findings (within its
/// first 40 lines, containing `words`) and first in status.findings.
pub fn assert_first_finding(
    bundle: &DebugBundle,
    files: &BTreeMap<String, Vec<u8>>,
    rule: &str,
    words: &[&str],
) -> Result<()> {
    ensure!(
        !words.is_empty(),
        "no word to find in the first finding of {rule}"
    );
    let summary = text(files, "summary.md")?;
    let (at, first) = first_finding(&summary)?;
    ensure!(
        at < 40 && words.iter().all(|w| first.contains(w)),
        "first finding (heading at line {at}) should say {words:?}: {first}\n{summary}"
    );
    assert_first_status_finding(bundle, rule)
}

/// Asserts status.findings[0] is `rule` (what `kubectl describe` shows, also when the upload
/// failed).
pub fn assert_first_status_finding(bundle: &DebugBundle, rule: &str) -> Result<()> {
    let findings = status_findings(bundle);
    ensure!(
        findings.first().is_some_and(|f| f.rule == rule),
        "status.findings should start with {rule}: {findings:?}"
    );
    Ok(())
}

/// The message of the `ProbableCause` Warning event that the DebugBundle `bundle` announced on
/// a Velero object (kind, name), waiting up to 30 s for it: each bundle's event names it as its
/// related object, so another bundle's diagnosis of the same object is never read in its place.
pub async fn probable_cause_event(
    t: &TestCtx,
    (kind, name): (&str, &str),
    bundle: &str,
) -> Result<String> {
    let (env, client) = (&t.env, &t.client);
    let events: Api<k8s_openapi::api::core::v1::Event> =
        Api::namespaced(client.clone(), &env.namespace);
    let selector =
        format!("involvedObject.kind={kind},involvedObject.name={name},reason=ProbableCause");
    eventually(
        &format!("a ProbableCause event of DebugBundle {bundle} on {kind} {name}"),
        Duration::from_secs(30),
        || async {
            let listed = events
                .list(&kube::api::ListParams::default().fields(&selector))
                .await?;
            Ok(listed
                .items
                .into_iter()
                .find(|e| {
                    e.type_.as_deref() == Some("Warning")
                        && e.related.as_ref().is_some_and(|r| {
                            r.kind.as_deref() == Some("DebugBundle")
                                && r.name.as_deref() == Some(bundle)
                        })
                })
                .map(|e| e.message.unwrap_or_default()))
        },
    )
    .await
}

/// The bundle's status.findings (none before it finished).
/// The first finding's next step in status; empty when there is none.
/// Checks that summary.md's first 40 lines (where the first finding, its quote and next step
/// are) say `words` on one line.
pub fn said_first(files: &BTreeMap<String, Vec<u8>>, words: &str) -> Result<()> {
    let summary = text(files, "summary.md")?;
    let head: Vec<&str> = summary.lines().take(40).collect();
    ensure!(
        head.iter().any(|l| l.contains(words)),
        "summary.md's first 40 lines do not say {words:?}:\n{}",
        head.join("\n")
    );
    Ok(())
}

pub fn first_next_step(bundle: &DebugBundle) -> String {
    status_findings(bundle)
        .into_iter()
        .next()
        .and_then(|f| f.next_step)
        .unwrap_or_default()
}

pub fn status_findings(bundle: &DebugBundle) -> Vec<velero_debug_crd::StatusFinding> {
    bundle
        .status
        .as_ref()
        .map(|s| s.findings.clone())
        .unwrap_or_default()
}

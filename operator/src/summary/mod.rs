//! The bundle's `summary.md` (what a support engineer reads first) and `manifest.json` (what
//! tools read). Pure rendering of what the collect steps found.

mod bounded;
mod render;

pub(crate) use render::damage_line;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::{
    findings::{AppDamage, Evidence, Finding},
    redact::MaskCounts,
};

pub(crate) use velero_debug_crd::manifest::{
    ArchivedFile, FORMAT_VERSION, Manifest, ManifestTarget, NotCollected,
};

/// What the collect steps saw, for summary.md and the findings.
#[derive(Debug, Default)]
pub(crate) struct Summary {
    pub evidence: Evidence,
    pub server_version: Option<String>,
}

impl Summary {
    /// summary.md: the header, the findings (most probable cause first, within the first 40
    /// lines), then the details; bounded in size.
    pub fn render(&self, findings: &[Finding], warnings: &[String]) -> String {
        let damage = crate::findings::damage(&self.evidence, findings);
        render::summary_md(self, findings, &damage, warnings)
    }
}

/// What only the operator knows the types of, among manifest.json's shared fields
/// (`velero_debug_crd::manifest`, which the plugin reads).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ManifestDetails<'a> {
    /// Milliseconds per collect step.
    pub timings_ms: &'a BTreeMap<String, u64>,
    /// API requests the collection made (of the whole process while it ran), container log
    /// reads included.
    pub api_requests: u64,
    /// The same by kind: "pods list", "pods/log get" (see request_tally.rs).
    pub api_requests_by_kind: &'a BTreeMap<String, u64>,
    /// Values masked in everything collected (logs, object-store files, objects, events), by
    /// redaction rule; a rule that masked nothing is not listed.
    pub masked_by_rule: &'a MaskCounts,
    /// What the rules found, most probable cause first (summary.md shows the first ones).
    pub findings: &'a [Finding],
    /// The damage by application, the most damaged first (summary.md shows the first ones),
    /// at most [`crate::findings::MAX_MANIFEST_APPLICATIONS`].
    pub damage: &'a [AppDamage],
    /// Applications beyond those in `damage`.
    pub damage_left_out: usize,
}

/// The reads the API server refused, by namespace ("" for the whole cluster), each resource
/// with its reason: the entries of `not_collected` whose reason is a refusal (collection writes
/// them "forbidden; <the chart value that grants it>").
pub(crate) fn not_allowed(
    not_collected: &[NotCollected],
) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut refused = BTreeMap::<String, BTreeMap<String, String>>::new();
    for n in not_collected
        .iter()
        .filter(|n| n.reason.starts_with("forbidden"))
    {
        refused
            .entry(n.namespace.clone().unwrap_or_default())
            .or_default()
            .insert(n.resource.clone(), n.reason.clone());
    }
    refused
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_lists_masks_by_rule() {
        let mut masks = MaskCounts::default();
        let redactor = crate::redact::Redactor::new();
        redactor.redact_line_counted("password=x token=y", &mut masks);
        redactor.redact_line_counted("Authorization: Bearer abc", &mut masks);
        let manifest = Manifest {
            format_version: FORMAT_VERSION,
            operator_version: "0.0.0".into(),
            target: ManifestTarget {
                kind: "Restore".into(),
                name: "r1".into(),
                uid: "u1".into(),
                phase: "PartiallyFailed".into(),
            },
            created_at: String::new(),
            root_folder: "b".into(),
            files: Vec::new(),
            warnings: Vec::new(),
            details: ManifestDetails {
                timings_ms: &BTreeMap::new(),
                api_requests: 0,
                api_requests_by_kind: &BTreeMap::new(),
                masked_by_rule: &masks,
                findings: &[],
                damage: &[],
                damage_left_out: 0,
            },
            not_collected: vec![NotCollected {
                resource: "pods".into(),
                namespace: Some("shop".into()),
                reason: "forbidden".into(),
            }],
        };
        let json = serde_json::to_value(&manifest).unwrap();
        assert_eq!(
            json["maskedByRule"],
            serde_json::json!({"authorization-header": 1, "secret-named-key-value": 2})
        );
        assert_eq!(
            json["notCollected"],
            serde_json::json!([{"resource": "pods", "namespace": "shop", "reason": "forbidden"}])
        );
    }
}

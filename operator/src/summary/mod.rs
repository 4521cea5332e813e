//! The bundle's `summary.md` (what a support engineer reads first) and `manifest.json` (what
//! tools read). Pure rendering of what the collect steps found.

use std::collections::BTreeMap;

use kube::{ResourceExt, core::DynamicObject};
use serde::Serialize;

use crate::{redact::MaskCounts, tar_gz::ArchivedFile};

/// At most this many log lines and result messages are quoted in summary.md.
pub const MAX_QUOTED: usize = 50;
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Summary {
    pub kind: String,
    pub name: String,
    pub uid: String,
    pub phase: String,
    pub failure_reason: Option<String>,
    pub status_errors: Option<i64>,
    pub status_warnings: Option<i64>,
    /// (severity, scope, message) from the results file.
    pub results: Vec<(String, String, String)>,
    /// kind -> phase -> count
    pub operations: BTreeMap<String, BTreeMap<String, u32>>,
    pub error_lines: Vec<String>,
    pub server_version: Option<String>,
}

impl Summary {
    pub fn set_target(&mut self, obj: &DynamicObject) {
        self.kind = obj
            .types
            .as_ref()
            .map(|t| t.kind.clone())
            .unwrap_or_default();
        self.name = obj.name_any();
        self.uid = obj.uid().unwrap_or_default();
        let status = &obj.data["status"];
        self.phase = status["phase"].as_str().unwrap_or("<none>").to_string();
        self.failure_reason = status["failureReason"].as_str().map(str::to_string);
        self.status_errors = status["errors"].as_i64();
        self.status_warnings = status["warnings"].as_i64();
    }

    /// Velero's results file: `{"errors": {velero, cluster, namespaces{ns: [..]}}, "warnings": ..}`.
    pub fn set_results(&mut self, results: &serde_json::Value) {
        for severity in ["errors", "warnings"] {
            let r = &results[severity];
            for scope in ["velero", "cluster"] {
                for msg in r[scope].as_array().into_iter().flatten() {
                    self.push_result(severity, scope, msg);
                }
            }
            if let Some(namespaces) = r["namespaces"].as_object() {
                for (ns, msgs) in namespaces {
                    for msg in msgs.as_array().into_iter().flatten() {
                        self.push_result(severity, &format!("namespace {ns}"), msg);
                    }
                }
            }
        }
    }

    fn push_result(&mut self, severity: &str, scope: &str, msg: &serde_json::Value) {
        let text = msg.as_str().map(str::to_string).unwrap_or(msg.to_string());
        self.results
            .push((severity.trim_end_matches('s').into(), scope.into(), text));
    }

    pub fn count_operation(&mut self, kind: &str, obj: &DynamicObject) {
        let phase = obj.data["status"]["phase"]
            .as_str()
            .filter(|p| !p.is_empty())
            .unwrap_or("<none>");
        *self
            .operations
            .entry(kind.into())
            .or_default()
            .entry(phase.into())
            .or_default() += 1;
    }

    /// Keeps an error-level line of the operation's own log.
    pub fn offer_log_line(&mut self, line: &str) {
        if self.error_lines.len() < MAX_QUOTED && line.contains("level=error") {
            self.error_lines.push(line.to_string());
        }
    }

    pub fn render(&self, warnings: &[String]) -> String {
        let mut md = format!("# {} {}\n\n", self.kind, self.name);
        md += &format!("- Phase: **{}**\n", self.phase);
        if let Some(r) = &self.failure_reason {
            md += &format!("- Failure reason: {r}\n");
        }
        if let (Some(e), Some(w)) = (self.status_errors, self.status_warnings) {
            md += &format!("- Errors: {e}, warnings: {w} (from status)\n");
        }
        if let Some(v) = &self.server_version {
            md += &format!("- Velero server: {v}\n");
        }
        md += "\n## Volume operations\n\n";
        if self.operations.is_empty() {
            md += "None found.\n";
        }
        for (kind, phases) in &self.operations {
            let counts: Vec<String> = phases.iter().map(|(p, n)| format!("{p}: {n}")).collect();
            md += &format!("- {kind}: {}\n", counts.join(", "));
        }
        md += "\n## Results file\n\n";
        if self.results.is_empty() {
            md += "No errors or warnings recorded (or no results file; see warnings below).\n";
        }
        for (severity, scope, msg) in self.results.iter().take(MAX_QUOTED) {
            md += &format!("- {severity} ({scope}): {msg}\n");
        }
        if self.results.len() > MAX_QUOTED {
            md += &format!(
                "- ... {} more in object-store/results.json\n",
                self.results.len() - MAX_QUOTED
            );
        }
        md += "\n## Error lines of the operation's log\n\n";
        if self.error_lines.is_empty() {
            md += "None.\n";
        } else {
            md += "```\n";
            for line in &self.error_lines {
                md += line;
                md += "\n";
            }
            md += "```\n";
        }
        md += "\n## What could not be collected\n\n";
        if warnings.is_empty() {
            md += "Nothing: every item was collected.\n";
        }
        for w in warnings {
            md += &format!("- {w}\n");
        }
        md
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest<'a> {
    pub format_version: u32,
    pub operator_version: &'a str,
    pub target: ManifestTarget<'a>,
    pub created_at: String,
    /// The folder every file is in: the bundle's name, sanitized.
    pub root_folder: &'a str,
    /// By their names in the archive below `root_folder`.
    pub files: &'a [ArchivedFile],
    pub warnings: &'a [String],
    /// Milliseconds per collect step.
    pub timings_ms: &'a BTreeMap<String, u64>,
    /// API requests the collection made (of the whole process while it ran).
    pub api_requests: u64,
    /// Values masked in everything collected (logs, object-store files, objects, events), by
    /// redaction rule; a rule that masked nothing is not listed.
    pub masked_by_rule: &'a MaskCounts,
}

#[derive(Debug, Serialize)]
pub struct ManifestTarget<'a> {
    pub kind: &'a str,
    pub name: &'a str,
    pub uid: &'a str,
    pub phase: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_file_errors_and_warnings_are_listed_by_scope() {
        let mut s = Summary::default();
        s.set_results(&serde_json::json!({
            "errors": {"namespaces": {"shop": ["error restoring widgets.example.com/shop/w1: the server could not find the requested resource"]}},
            "warnings": {"velero": ["plugin warning"], "cluster": []}
        }));
        assert_eq!(
            s.results,
            vec![
                ("error".to_string(), "namespace shop".to_string(), "error restoring widgets.example.com/shop/w1: the server could not find the requested resource".to_string()),
                ("warning".to_string(), "velero".to_string(), "plugin warning".to_string()),
            ]
        );
        let md = s.render(&[]);
        assert!(md.contains("- error (namespace shop): error restoring widgets"));
    }

    #[test]
    fn summary_names_phase_operations_and_warnings() {
        let restore: DynamicObject = serde_yaml::from_str(
            "apiVersion: velero.io/v1\nkind: Restore\nmetadata: {name: r1, uid: u1}\nstatus: {phase: PartiallyFailed, errors: 2, warnings: 1}\n",
        )
        .unwrap();
        let pvr: DynamicObject = serde_yaml::from_str(
            "apiVersion: velero.io/v1\nkind: PodVolumeRestore\nmetadata: {name: p}\nstatus: {phase: Failed}\n",
        )
        .unwrap();
        let mut s = Summary::default();
        s.set_target(&restore);
        s.count_operation("PodVolumeRestore", &pvr);
        s.count_operation("PodVolumeRestore", &pvr);
        s.offer_log_line("time=x level=error msg=\"boom\"");
        s.offer_log_line("time=x level=info msg=\"fine\"");
        let md = s.render(&["restore log missing".to_string()]);
        assert!(md.starts_with("# Restore r1\n"));
        assert!(md.contains("- Phase: **PartiallyFailed**"));
        assert!(md.contains("- Errors: 2, warnings: 1"));
        assert!(md.contains("- PodVolumeRestore: Failed: 2"));
        assert!(md.contains("msg=\"boom\"") && !md.contains("fine"));
        assert!(md.contains("- restore log missing"));
    }

    #[test]
    fn manifest_lists_masks_by_rule() {
        let mut masks = MaskCounts::default();
        let redactor = crate::redact::Redactor::new();
        redactor.redact_line_counted("password=x token=y", &mut masks);
        redactor.redact_line_counted("Authorization: Bearer abc", &mut masks);
        let manifest = Manifest {
            format_version: FORMAT_VERSION,
            operator_version: "0.0.0",
            target: ManifestTarget {
                kind: "Restore",
                name: "r1",
                uid: "u1",
                phase: "PartiallyFailed",
            },
            created_at: String::new(),
            root_folder: "b",
            files: &[],
            warnings: &[],
            timings_ms: &BTreeMap::new(),
            api_requests: 0,
            masked_by_rule: &masks,
        };
        let json = serde_json::to_value(&manifest).unwrap();
        assert_eq!(
            json["maskedByRule"],
            serde_json::json!({"authorization-header": 1, "secret-named-key-value": 2})
        );
    }
}

//! Printing: tables, json and yaml, and whether stdout/stderr are terminals (no progress bars
//! and no colour otherwise; this CLI prints no colour at all).

use std::io::IsTerminal;

use jiff::Timestamp;
use serde::Serialize;
use velero_debug_crd::{CONDITION_DOWNLOAD_URL_VALID, CONDITION_READY, DebugBundle, StatusFinding};

use super::{age::age, jsonpath::Template};

#[derive(Debug, thiserror::Error)]
pub(crate) enum OutputError {
    #[error("encoding json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("encoding yaml: {0}")]
    Yaml(#[from] serde_yaml::Error),
}

pub(crate) fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

pub(crate) fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}

pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<String, OutputError> {
    Ok(serde_json::to_string_pretty(value)? + "\n")
}

pub(crate) fn to_yaml<T: Serialize>(value: &T) -> Result<String, OutputError> {
    Ok(serde_yaml::to_string(value)?)
}

/// `-o` of commands that print one object.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ObjectFormat {
    Json,
    Yaml,
    /// `debugbundle.velerodebug.io/NAME`, as `kubectl get -o name`.
    Name,
    JsonPath(Template),
}

/// What `kubectl get -o name` calls a DebugBundle.
const NAME_PREFIX: &str = "debugbundle.velerodebug.io/";

/// An object (or a list: its items) in an `-o` format other than the table.
pub(crate) fn render<T: Serialize>(
    value: &T,
    format: &ObjectFormat,
) -> Result<String, OutputError> {
    match format {
        ObjectFormat::Json => to_json(value),
        ObjectFormat::Yaml => to_yaml(value),
        ObjectFormat::Name => {
            let value = serde_json::to_value(value)?;
            let items = match value.get("items").and_then(|i| i.as_array()) {
                Some(items) => items.iter().collect(),
                None => vec![&value],
            };
            Ok(items
                .iter()
                .filter_map(|item| item.pointer("/metadata/name")?.as_str())
                .map(|name| format!("{NAME_PREFIX}{name}\n"))
                .collect())
        }
        ObjectFormat::JsonPath(template) => Ok(template.render(&serde_json::to_value(value)?)),
    }
}

/// A finding as people read it: `[error] title (file:line)`, the proof when there is one, and
/// under it (for a `  - ` list) what to do, when the operator says.
pub(crate) fn finding_line(f: &StatusFinding) -> String {
    let proof = match (&f.file, f.line) {
        (Some(file), Some(line)) => format!(" ({file}:{line})"),
        (Some(file), None) => format!(" ({file})"),
        _ => String::new(),
    };
    let next = match &f.next_step {
        Some(step) => format!("\n    next step: {step}"),
        None => String::new(),
    };
    format!("[{}] {}{proof}{next}", f.severity, f.title)
}

/// Columns of `list`/`get` (FINDING: the first finding's title, as `kubectl get` shows it);
/// `wide` adds the Ready reason, the URL state and the archive's storage location.
pub(crate) fn header(all_namespaces: bool, wide: bool) -> Vec<&'static str> {
    let mut columns = Vec::new();
    if all_namespaces {
        columns.push("NAMESPACE");
    }
    columns.extend([
        "NAME",
        "TARGET",
        "PHASE",
        "SIZE",
        "URL EXPIRES",
        "FINDING",
        "AGE",
    ]);
    if wide {
        columns.extend(["REASON", "URL", "LOCATION"]);
    }
    columns
}

pub(crate) fn row(
    bundle: &DebugBundle,
    all_namespaces: bool,
    wide: bool,
    now: Timestamp,
) -> Vec<String> {
    let status = bundle.status.clone().unwrap_or_default();
    let none = || "<none>".to_string();
    let mut cells = Vec::new();
    if all_namespaces {
        cells.push(bundle.metadata.namespace.clone().unwrap_or_else(none));
    }
    cells.push(bundle.metadata.name.clone().unwrap_or_else(none));
    cells.push(status.target.clone().unwrap_or_else(none));
    cells.push(
        status
            .phase
            .map(|p| format!("{p:?}"))
            .unwrap_or_else(|| "Pending".into()),
    );
    cells.push(
        status
            .archive
            .as_ref()
            .map(|a| human_bytes(a.size_bytes))
            .unwrap_or_else(none),
    );
    cells.push(
        status
            .download_url_expires_at
            .as_ref()
            .map(|t| t.0.to_string())
            .unwrap_or_else(none),
    );
    cells.push(
        status
            .findings
            .first()
            .map(|f| f.title.clone())
            .unwrap_or_else(none),
    );
    cells.push(
        bundle
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| age(t.0, now))
            .unwrap_or_else(none),
    );
    if wide {
        let reason = |kind: &str| {
            status
                .conditions
                .iter()
                .find(|c| c.type_ == kind)
                .map(|c| c.reason.clone())
                .unwrap_or_else(none)
        };
        cells.push(reason(CONDITION_READY));
        cells.push(reason(CONDITION_DOWNLOAD_URL_VALID));
        cells.push(
            status
                .archive
                .as_ref()
                .map(|a| a.storage_location.clone())
                .unwrap_or_else(none),
        );
    }
    cells
}

/// Left-aligned columns three spaces apart, as kubectl prints them; `--no-headers` drops the
/// header line (the columns keep the widths they would have with it).
pub(crate) fn table_without_header(header: &[&str], rows: &[Vec<String>]) -> String {
    let text = table(header, rows);
    text.split_once('\n')
        .map(|(_, rest)| rest.to_string())
        .unwrap_or_default()
}

/// Left-aligned columns three spaces apart, as kubectl prints them.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for line in std::iter::once(&header).chain(rows) {
        let last = line.len().saturating_sub(1);
        for (i, (cell, width)) in line.iter().zip(&widths).enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}   "));
            }
        }
        out.push('\n');
    }
    out
}

/// "14.1 KiB"-style sizes, exact bytes below 1 KiB.
pub(crate) fn human_bytes(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
pub(crate) mod fixtures {
    use velero_debug_crd::DebugBundle;

    /// A finished bundle, as the operator writes it.
    pub(crate) fn completed() -> DebugBundle {
        serde_yaml::from_str(
            r#"
apiVersion: velerodebug.io/v1alpha1
kind: DebugBundle
metadata:
  name: why-restore-failed
  namespace: velero
  creationTimestamp: "2026-11-22T11:55:00Z"
spec:
  restore: restore-1
status:
  target: restore/restore-1
  phase: Completed
  progress: {itemsDone: 7, itemsTotal: 7}
  archive:
    storageLocation: default
    bucket: velero
    key: plugins/velero-debug-operator/bundles/velero/why-restore-failed-u1.tar.gz
    sizeBytes: 14142
    sha256: a38dc53a9d8867184260628df7d9ae29685cd519450a53acd450b57b82949c9b
    fileCount: 19
  downloadURL: http://127.0.0.1:38201/velero/x?X-Amz-Signature=s
  downloadURLExpiresAt: "2026-11-23T11:56:00Z"
  conditions:
  - {type: Ready, status: "True", reason: Completed, message: done, lastTransitionTime: "2026-11-22T11:56:00Z"}
  - {type: DownloadURLValid, status: "True", reason: URLValid, message: ok, lastTransitionTime: "2026-11-22T11:56:00Z"}
"#,
        )
        .unwrap()
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;

    fn now() -> Timestamp {
        "2026-11-22T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_row_from_a_finished_bundle() {
        let bundle = fixtures::completed();
        assert_eq!(
            row(&bundle, false, false, now()),
            [
                "why-restore-failed",
                "restore/restore-1",
                "Completed",
                "13.8 KiB",
                "2026-11-23T11:56:00Z",
                "<none>",
                "5m"
            ]
        );
        let wide = row(&bundle, true, true, now());
        assert_eq!(wide[0], "velero");
        assert_eq!(&wide[8..], ["Completed", "URLValid", "default"]);
        assert_eq!(wide.len(), header(true, true).len());
    }

    #[test]
    fn a_new_bundle_shows_pending_and_none() {
        let mut bundle = fixtures::completed();
        bundle.status = None;
        bundle.metadata.creation_timestamp = None;
        assert_eq!(
            row(&bundle, false, false, now())[1..],
            ["<none>", "Pending", "<none>", "<none>", "<none>", "<none>"]
        );
    }

    #[test]
    fn the_finding_column_shows_the_first_finding() {
        let mut bundle = fixtures::completed();
        let status = bundle.status.as_mut().unwrap();
        status.findings = serde_yaml::from_str(
            "- {severity: error, rule: bsl-unavailable, title: BSL default is Unavailable}\n\
             - {severity: warning, rule: other, title: second}",
        )
        .unwrap();
        let cells = row(&bundle, false, false, now());
        assert_eq!(cells[5], "BSL default is Unavailable");
        assert_eq!(header(false, false)[5], "FINDING");
    }

    #[test]
    fn a_finding_line_carries_its_next_step_below() {
        let mut f: StatusFinding = serde_yaml::from_str(
            "{severity: error, rule: quota-exceeded, title: refused, file: results.json}",
        )
        .unwrap();
        assert_eq!(finding_line(&f), "[error] refused (results.json)");
        f.next_step = Some("Raise spec.hard of ResourceQuota shop/q".into());
        assert_eq!(
            finding_line(&f),
            "[error] refused (results.json)\n    next step: Raise spec.hard of ResourceQuota shop/q"
        );
    }

    #[test]
    fn table_aligns_columns() {
        let out = table(
            &["NAME", "PHASE"],
            &[vec!["a-long-name".into(), "Completed".into()]],
        );
        assert_eq!(out, "NAME          PHASE\na-long-name   Completed\n");
    }

    #[test]
    fn names_and_jsonpath_of_an_object_and_a_list() {
        let bundle = fixtures::completed();
        assert_eq!(
            render(&bundle, &ObjectFormat::Name).unwrap(),
            "debugbundle.velerodebug.io/why-restore-failed\n"
        );
        let list = serde_json::json!({"items": [bundle.clone(), bundle.clone()]});
        assert_eq!(
            render(&list, &ObjectFormat::Name).unwrap().lines().count(),
            2
        );
        let template = Template::parse("{.status.archive.sizeBytes}").unwrap();
        assert_eq!(
            render(&bundle, &ObjectFormat::JsonPath(template)).unwrap(),
            "14142"
        );
        let out = table_without_header(&["NAME", "PHASE"], &[vec!["a".into(), "b".into()]]);
        assert_eq!(out, "a      b\n");
    }

    #[test]
    fn sizes() {
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }

    #[test]
    fn the_age_column_rounds_as_kubectls() {
        let aged = |seconds: i64| {
            let mut bundle = fixtures::completed();
            let created = now() - jiff::SignedDuration::from_secs(seconds);
            bundle.metadata.creation_timestamp = Some(Time(created));
            row(&bundle, false, false, now()).pop().unwrap()
        };
        assert_eq!(aged(7300), "121m");
        assert_eq!(aged(3 * 3600 + 60), "3h1m");
        assert_eq!(aged(3 * 86_400 + 3600), "3d1h");
    }
}

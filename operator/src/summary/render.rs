//! summary.md, section by section: a short header, the findings (all within the first 40
//! lines), then what a reader checks next, each list bounded.

use std::collections::BTreeMap;

use super::{Summary, bounded::Markdown};
use crate::findings::{
    AppDamage, Damage, Evidence, Finding, HELM_RELEASE, LogRole, NAMESPACE, OperationEvidence,
    WorkloadArguments, text::cap,
};

/// Findings shown in full; the others are in manifest.json.
pub(crate) const MAX_FINDINGS: usize = 8;
/// Lines of each detail list.
const MAX_LIST: usize = 40;
const MAX_EVENTS: usize = 15;
/// Applications in the damage section; manifest.json has more.
const MAX_APPLICATIONS: usize = 50;

pub(super) fn summary_md(
    s: &Summary,
    findings: &[Finding],
    damage: &Damage,
    warnings: &[String],
) -> String {
    let mut md = Markdown::default();
    header(&mut md, s);
    findings_section(&mut md, findings);
    not_allowed_section(&mut md, &s.evidence);
    damage_section(&mut md, &s.evidence, findings, damage);
    operations(&mut md, &s.evidence);
    workloads(&mut md, &s.evidence);
    item_operations(&mut md, &s.evidence);
    validation_and_hooks(&mut md, &s.evidence);
    results(&mut md, &s.evidence);
    log_lines(&mut md, &s.evidence);
    events(&mut md, &s.evidence);
    not_collected(&mut md, warnings);
    md.finish()
}

fn header(md: &mut Markdown, s: &Summary) {
    let t = &s.evidence.target;
    md.line(&format!("# {} {}", t.kind, t.name));
    md.blank();
    // Velero leaves out a zero count, so a missing one is 0.
    let (errors, warnings) = (t.errors.unwrap_or(0), t.warnings.unwrap_or(0));
    if t.phase == "Completed" && errors == 0 && warnings > 0 {
        md.line(&format!("- Phase: **Completed with {warnings} warnings**"));
    } else {
        md.line(&format!("- Phase: **{}**", t.phase));
    }
    if let Some(stalled) = t.stalled.as_ref().filter(|_| !t.is_final()) {
        md.line(&format!(
            "- Taken while it ran: it had not moved for {} (since {}); what it waits on is in the findings",
            crate::findings::text::duration_words(stalled.still_for),
            stalled.since
        ));
        if let Some(withheld) = stalled.withheld.as_deref().filter(|w| !w.is_empty()) {
            md.line(&format!(
                "- Stall bundles withheld before this one (at most autoBundles.maxStallBundlesPerHour an hour): {}",
                withheld
            ));
        }
    }
    if t.started.is_some() || t.completed.is_some() {
        let or_none = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        md.line(&format!(
            "- Started: {}, completed: {}",
            or_none(&t.started),
            or_none(&t.completed)
        ));
    }
    if t.is_final() || t.errors.is_some() || t.warnings.is_some() {
        md.line(&format!(
            "- Errors: {errors}, warnings: {warnings} (from status)"
        ));
    }
    if let Some(r) = &t.failure_reason {
        md.line(&format!("- Failure reason: {r}"));
    }
    if let Some(backup) = &t.backup_name {
        let phase = t.backup_phase.as_deref().unwrap_or("gone");
        let r = &s.evidence.backup_results;
        let (errors, warnings) = (r.total("error"), r.total("warning"));
        let results = if errors + warnings > 0 {
            format!("; its results: {errors} errors, {warnings} warnings")
        } else {
            String::new()
        };
        md.line(&format!("- Backup: {backup} ({phase}){results}"));
    }
    if let Some(v) = &s.server_version {
        md.line(&format!("- Velero server: {v}"));
    }
    velero_flags(md, &s.evidence);
}

/// What the server and node-agent run with (a flag left out is Velero's default) and the
/// server's plugins: two lines.
fn velero_flags(md: &mut Markdown, e: &Evidence) {
    let flags = |w: &WorkloadArguments| {
        if w.flags.is_empty() {
            "none (Velero's defaults)".to_string()
        } else {
            format!("`{}`", w.flags_line())
        }
    };
    if let Some(server) = &e.infra.server_arguments {
        let plugins = if server.plugins.is_empty() {
            String::new()
        } else {
            format!("; plugins: {}", server.plugins.join(", "))
        };
        md.line(&format!("- Server flags: {}{plugins}", flags(server)));
    }
    if let Some(agent) = &e.infra.node_agent_arguments {
        md.line(&format!("- node-agent flags: {}", flags(agent)));
    }
}

/// Right after the findings: what the operator was refused, so a reader knows what no
/// finding could see, each with its reason, which names the chart value that grants it.
fn not_allowed_section(md: &mut Markdown, e: &Evidence) {
    if e.not_allowed.is_empty() {
        return;
    }
    md.heading("## Not allowed to read");
    for (namespace, refused) in e.not_allowed.iter().take(MAX_LIST) {
        let place = if namespace.is_empty() {
            "across the cluster".to_string()
        } else {
            format!("in namespace {namespace}")
        };
        // One line a reason: the resources it withheld.
        let mut by_reason: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (resource, reason) in refused {
            by_reason.entry(reason).or_default().push(resource);
        }
        for (reason, resources) in by_reason {
            md.line(&format!("- {} {place}: {reason}", resources.join(", ")));
        }
    }
    if e.not_allowed.len() > MAX_LIST {
        md.line(&format!(
            "- and {} more namespaces (manifest.json, notCollected)",
            e.not_allowed.len() - MAX_LIST
        ));
    }
}

fn findings_section(md: &mut Markdown, findings: &[Finding]) {
    md.heading("## Findings");
    if findings.is_empty() {
        md.line("No rule found a problem; the sections below have the details.");
        return;
    }
    for (i, f) in findings.iter().take(MAX_FINDINGS).enumerate() {
        let n = i + 1;
        if let Some(cause) = f.consequence_of {
            md.line(&format!("{n}. {}: consequence of #{cause}", f.title));
            continue;
        }
        let severity = match f.severity {
            crate::findings::Severity::Error => "error",
            crate::findings::Severity::Warning => "warning",
        };
        md.line(&format!("{n}. **{}** ({severity}, `{}`)", f.title, f.rule));
        md.line(&format!("   > {}", f.quote));
        let at = match f.line {
            Some(line) => format!("{}:{line}", f.file),
            None => f.file.clone(),
        };
        let explains = if f.explains.is_empty() {
            String::new()
        } else {
            format!("; explains {}", cap(&f.explains.join(", "), 200))
        };
        md.line(&format!("   `{at}`{explains}"));
        if let Some(step) = &f.next_step {
            md.line(&format!("   Next step: {step}"));
        }
    }
    if findings.len() > MAX_FINDINGS {
        md.line(&format!(
            "- {} more in manifest.json (`findings`)",
            findings.len() - MAX_FINDINGS
        ));
    }
}

/// Each application the target damaged (or restored whole, when the evidence knows it), the
/// most damaged first, with the findings that explain it.
fn damage_section(md: &mut Markdown, e: &Evidence, findings: &[Finding], damage: &Damage) {
    if damage.applications.is_empty() {
        return;
    }
    md.heading("## Damage by application");
    let restore = e.target.kind == "Restore";
    for d in damage.applications.iter().take(MAX_APPLICATIONS) {
        md.line(&damage_line(d, restore, findings));
    }
    let more = damage.applications.len().saturating_sub(MAX_APPLICATIONS);
    if more > 0 {
        md.line(&format!(
            "- ... and {more} more in manifest.json (`damage`)"
        ));
    }
    if damage.items_left_out > 0 || damage.operations_left_out > 0 {
        md.line(&format!(
            "- ... {} more messages of the results file and {} more volume operations not attributed to an application",
            damage.items_left_out, damage.operations_left_out
        ));
    }
}

/// `- StatefulSet shop/db: 1 of 2 volumes not restored; 1 pod not Ready (db-0: Pending,
/// Unschedulable) (#2 `volume-operation-failed`)`.
pub(crate) fn damage_line(d: &AppDamage, restore: bool, findings: &[Finding]) -> String {
    let app = match d.kind.as_str() {
        NAMESPACE => format!("namespace {} (no owner)", d.namespace),
        HELM_RELEASE => format!("Helm release {}/{}", d.namespace, d.name),
        kind => format!("{kind} {}/{}", d.namespace, d.name),
    };
    if d.is_whole() {
        let whole = if restore {
            "restored whole"
        } else {
            "nothing failed"
        };
        return format!("- {app}: {whole}");
    }
    let mut parts = Vec::new();
    if d.items_failed > 0 {
        parts.push(counted(d.items_failed, "item failed", "items failed"));
    }
    if d.items_warned > 0 {
        parts.push(counted(d.items_warned, "item warned", "items warned"));
    }
    if d.volumes_failed > 0 {
        let done = if restore { "restored" } else { "backed up" };
        let of = d
            .volumes_total
            .map(|t| format!(" of {t}"))
            .unwrap_or_default();
        let volumes = if d.volumes_failed == 1 && d.volumes_total.is_none_or(|t| t == 1) {
            "volume"
        } else {
            "volumes"
        };
        parts.push(format!("{}{of} {volumes} not {done}", d.volumes_failed));
    }
    if d.pods_not_ready > 0 {
        let pods: Vec<String> = d
            .not_ready_pods
            .iter()
            .map(|p| format!("{}: {}", p.name, p.reason))
            .collect();
        let noun = if d.pods_not_ready == 1 { "pod" } else { "pods" };
        parts.push(format!(
            "{} {noun} not Ready ({})",
            d.pods_not_ready,
            pods.join("; ")
        ));
    }
    let cited: Vec<String> = d
        .findings
        .iter()
        .filter_map(|n| findings.get(n - 1).map(|f| format!("#{n} `{}`", f.rule)))
        .collect();
    let explained = if cited.is_empty() {
        String::new()
    } else {
        format!(" ({})", cited.join(", "))
    };
    format!("- {app}: {}{explained}", parts.join("; "))
}

/// `1 item failed`, `3 items failed`.
fn counted(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

fn operation_line(op: &OperationEvidence) -> String {
    let mut parts = Vec::new();
    if let Some(pod) = &op.pod {
        parts.push(format!("pod {pod}"));
    }
    if let Some(volume) = &op.volume {
        parts.push(format!("volume {volume}"));
    }
    parts.push(format!("node {}", op.node.as_deref().unwrap_or("-")));
    let message = if op.message.is_empty() {
        String::new()
    } else {
        format!(": {}", op.message)
    };
    format!(
        "  - {} {}: {} ({}){message}",
        op.kind,
        op.name,
        op.phase,
        parts.join(", ")
    )
}

fn operations(md: &mut Markdown, e: &Evidence) {
    md.heading("## Volume operations");
    if e.operation_counts.is_empty() {
        md.line("None found.");
        return;
    }
    // `- Kind: Phase: n, ...`: tools and tests read this line.
    for (kind, phases) in &e.operation_counts {
        let counts: Vec<String> = phases.iter().map(|(p, n)| format!("{p}: {n}")).collect();
        md.line(&format!("- {kind}: {}", counts.join(", ")));
    }
    if !e.operations.is_empty() {
        md.line("- Not completed:");
    }
    for op in e.operations.iter().take(MAX_LIST) {
        md.line(&operation_line(op));
    }
    let more = e.operations.len().saturating_sub(MAX_LIST) + e.operations_left_out;
    if more > 0 {
        md.line(&format!("  - ... {more} more in resources/"));
    }
}

/// The workload pods that do not run and the claims not bound (resources/workloads/ has all).
fn workloads(md: &mut Markdown, e: &Evidence) {
    let pods: Vec<_> = e.workload_pods.iter().filter(|p| !p.is_fine()).collect();
    let claims: Vec<_> = e.claims.iter().filter(|c| c.phase != "Bound").collect();
    if pods.is_empty() && claims.is_empty() {
        return;
    }
    md.heading("## Workload pods not running");
    for p in pods.iter().take(MAX_LIST) {
        let mut parts = vec![format!("node {}", p.node.as_deref().unwrap_or("-"))];
        if let Some((reason, message)) = &p.unschedulable {
            parts.push(format!("PodScheduled False, {reason}: {message}"));
        }
        for w in &p.waiting {
            let init = if w.init { " (init)" } else { "" };
            parts.push(format!("{}{init} waiting: {}", w.name, w.reason));
        }
        if !p.claims.is_empty() {
            parts.push(format!("PVCs {}", p.claims.join(", ")));
        }
        md.line(&format!("- {}: {}; {}", p.key(), p.phase, parts.join("; ")));
    }
    for c in claims.iter().take(MAX_LIST) {
        let class = match c.storage_class.as_deref() {
            Some("") => "none".to_string(),
            Some(class) => class.to_string(),
            None => "default".to_string(),
        };
        md.line(&format!(
            "- PVC {}/{}: {} (StorageClass {class})",
            c.namespace, c.name, c.phase
        ));
    }
    let more = pods.len().saturating_sub(MAX_LIST) + claims.len().saturating_sub(MAX_LIST);
    if more > 0 {
        md.line(&format!("- ... {more} more in resources/workloads/"));
    }
}

fn item_operations(md: &mut Markdown, e: &Evidence) {
    let (attempted, completed, failed) = e.target.item_operations;
    if attempted == 0 && e.item_operation_phases.is_empty() {
        return;
    }
    md.heading("## Item operations");
    md.line(&format!(
        "- From status: attempted {attempted}, completed {completed}, failed {failed}"
    ));
    if !e.item_operation_phases.is_empty() {
        let counts: Vec<String> = e
            .item_operation_phases
            .iter()
            .map(|(p, n)| format!("{p}: {n}"))
            .collect();
        md.line(&format!("- itemoperations.json: {}", counts.join(", ")));
    }
    for op in e.item_operations.iter().take(MAX_LIST) {
        let error = if op.error.is_empty() {
            String::new()
        } else {
            format!(": {}", op.error)
        };
        md.line(&format!(
            "  - {} {} ({}, id {}){error}",
            op.phase, op.item, op.action, op.operation_id
        ));
    }
}

fn validation_and_hooks(md: &mut Markdown, e: &Evidence) {
    let t = &e.target;
    if t.validation_errors.is_empty() && t.hooks_attempted == 0 {
        return;
    }
    md.heading("## Validation and hooks");
    for v in &t.validation_errors {
        md.line(&format!("- Validation error: {v}"));
    }
    if t.hooks_attempted > 0 {
        md.line(&format!(
            "- Hooks: attempted {}, failed {}",
            t.hooks_attempted, t.hooks_failed
        ));
    }
}

fn results(md: &mut Markdown, e: &Evidence) {
    md.heading("## Results file");
    let r = &e.results;
    if r.groups.is_empty() {
        md.line("No errors or warnings recorded (or no results file; see below).");
        return;
    }
    let mut groups: Vec<_> = r.groups.iter().collect();
    // Errors first, then the most frequent.
    groups.sort_by(|a, b| a.severity.cmp(&b.severity).then(b.count.cmp(&a.count)));
    for g in groups.iter().take(MAX_LIST) {
        md.line(&format!(
            "- {}{} ({}): {}",
            g.severity,
            times(g.count),
            g.scope,
            g.example
        ));
    }
    let more_groups = groups.len().saturating_sub(MAX_LIST);
    let left_out: u64 = r.left_out.values().sum();
    if more_groups > 0 || left_out > 0 {
        md.line(&format!(
            "- ... {more_groups} more kinds of message and {left_out} more messages in {}",
            r.path
        ));
    }
}

/// " x3" after a message seen three times; nothing for once.
fn times(count: u64) -> String {
    if count > 1 {
        format!(" x{count}")
    } else {
        String::new()
    }
}

fn log_lines(md: &mut Markdown, e: &Evidence) {
    md.heading("## Warning and error lines of the logs");
    if e.log_lines.is_empty() {
        md.line("None that no finding covers.");
        return;
    }
    let role_order = |r: LogRole| match r {
        LogRole::Operation => 0,
        LogRole::Server => 1,
        LogRole::NodeAgent => 2,
        LogRole::DataPath => 3,
    };
    let mut lines: Vec<_> = e.log_lines.iter().collect();
    // The operation's own log first, errors before warnings, each file's lines in order.
    lines.sort_by_key(|(s, g)| {
        (
            role_order(s.role),
            std::cmp::Reverse(g.level),
            s.path.clone(),
            g.first_line,
        )
    });
    for (source, group) in lines.iter().take(MAX_LIST) {
        md.line(&format!(
            "- `{}:{}` {}{}: {}",
            source.path,
            group.first_line,
            group.level.name(),
            times(group.count),
            group.message
        ));
    }
    let more = lines.len().saturating_sub(MAX_LIST) as u64 + e.log_lines_left_out;
    if more > 0 {
        md.line(&format!("- ... {more} more warning/error lines in logs/"));
    }
}

fn events(md: &mut Markdown, e: &Evidence) {
    if e.events.is_empty() {
        return;
    }
    md.heading("## Last Warning events");
    let skip = e.events.len().saturating_sub(MAX_EVENTS);
    for ev in e.events.iter().skip(skip) {
        md.line(&format!("- {}", ev.line()));
    }
    if e.events_seen > MAX_EVENTS {
        md.line("- ... the rest in events/timeline.txt");
    }
}

fn not_collected(md: &mut Markdown, warnings: &[String]) {
    md.heading("## What could not be collected");
    if warnings.is_empty() {
        md.line("Nothing: every item was collected.");
    }
    for w in warnings.iter().take(MAX_LIST) {
        md.line(&format!("- {w}"));
    }
    if warnings.len() > MAX_LIST {
        md.line(&format!(
            "- ... {} more in manifest.json (`warnings`)",
            warnings.len() - MAX_LIST
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        findings::{LogScan, LogSource, diagnose},
        summary::bounded::{MAX_SUMMARY_BYTES, TRUNCATED},
    };

    /// A Backup with thousands of failed volumes, a huge results file, long logs and many
    /// collection warnings.
    fn huge() -> (Summary, Vec<String>) {
        let mut e = Evidence::default();
        e.set_target(
            "resources/backup.yaml",
            &serde_json::json!({"kind": "Backup", "metadata": {"name": "huge"},
                "status": {"phase": "PartiallyFailed", "errors": 100000, "warnings": 5,
                    "failureReason": "x".repeat(5000),
                    "validationErrors": ["v".repeat(3000)],
                    "hookStatus": {"hooksAttempted": 9, "hooksFailed": 2}}}),
        );
        for i in 0..5_000 {
            e.add_operation(
                &format!("resources/podvolumebackup/p{i}.yaml"),
                "PodVolumeBackup",
                &serde_json::json!({"metadata": {"name": format!("p{i}")},
                    "spec": {"node": format!("node-{}", i % 50), "volume": "data",
                        "pod": {"namespace": "shop", "name": format!("web-{i}")}},
                    "status": {"phase": "Failed", "message": format!("error {i}: {}", "m".repeat(900))}}),
            );
        }
        for i in 0..30_000 {
            e.results.add(
                "object-store/results.json",
                "errors",
                "namespace shop",
                &format!("failure number {i} of {}", "r".repeat(300)),
            );
        }
        let mut scan = LogScan::new(LogSource {
            path: "object-store/backup.log".into(),
            role: LogRole::Operation,
            pod: None,
            node: None,
            previous: false,
        });
        for i in 0..50_000 {
            scan.offer(&format!(
                "time=\"t\" level=error msg=\"line {i} {}\"",
                "l".repeat(500)
            ));
        }
        e.add_log_scan(scan);
        let warnings = (0..1_000)
            .map(|i| format!("warning {i} {}", "w".repeat(500)))
            .collect();
        (
            Summary {
                evidence: e,
                server_version: Some("v1.18.1".into()),
            },
            warnings,
        )
    }

    #[test]
    fn a_huge_input_stays_within_64_kib_with_findings_first() {
        let (summary, warnings) = huge();
        let findings = diagnose(&summary.evidence);
        assert!(findings.len() > MAX_FINDINGS, "{}", findings.len());
        let md = summary.render(&findings, &warnings);
        assert!(md.len() <= MAX_SUMMARY_BYTES, "{}", md.len());
        // Every list is cut: the tail of each long list says where the rest is.
        assert!(
            md.contains("more in resources/") && md.contains("more in manifest.json (`warnings`)")
        );
        assert!(!md.contains(TRUNCATED) || md.ends_with(TRUNCATED));
        assert!(
            md.contains("- namespace shop (no owner): 2000 items failed; 500 volumes not backed up")
                && md.contains("- ... 28000 more messages of the results file and 4500 more volume operations not attributed"),
            "{md}"
        );
        let head: Vec<&str> = md.lines().take(40).collect();
        let at = head
            .iter()
            .position(|l| *l == "## Findings")
            .expect("no findings heading");
        assert!(
            head[at..].iter().any(|l| l.starts_with("8. ")),
            "{}",
            head.join("\n")
        );
        assert!(
            head.iter()
                .any(|l| l.contains("more in manifest.json (`findings`)"))
        );
        assert!(
            md.lines()
                .all(|l| l.len() <= crate::summary::bounded::MAX_LINE_BYTES)
        );
    }

    #[test]
    fn the_summary_keeps_the_lines_tools_and_tests_read() {
        let mut e = Evidence::default();
        e.set_target(
            "resources/backup.yaml",
            &serde_json::json!({"kind": "Backup", "metadata": {"name": "b1"},
                "status": {"phase": "PartiallyFailed", "errors": 1,
                    "startTimestamp": "2026-05-01T10:00:00Z",
                    "backupItemOperationsAttempted": 1}}),
        );
        e.add_operation(
            "resources/podvolumebackup/p.yaml",
            "PodVolumeBackup",
            &serde_json::json!({"metadata": {"name": "p"}, "spec": {"node": "n1", "volume": "v",
                "pod": {"namespace": "shop", "name": "web"}},
                "status": {"phase": "Failed", "message": "boom"}}),
        );
        e.add_operation(
            "resources/dataupload/d.yaml",
            "DataUpload",
            &serde_json::json!({"metadata": {"name": "d"}, "status": {"phase": "Completed"}}),
        );
        let mut scan = LogScan::new(LogSource {
            path: "object-store/backup.log".into(),
            role: LogRole::Operation,
            pod: None,
            node: None,
            previous: false,
        });
        scan.offer(r#"{"level":"error","msg":"json boom","time":"t"}"#);
        scan.offer(r#"time="t" level=info msg="fine""#);
        e.add_log_scan(scan);
        let summary = Summary {
            evidence: e,
            server_version: None,
        };
        let findings = diagnose(&summary.evidence);
        let md = summary.render(&findings, &["restore log missing".to_string()]);
        assert!(md.starts_with("# Backup b1\n"), "{md}");
        assert!(md.contains("- Phase: **PartiallyFailed**"));
        assert!(md.contains("- Errors: 1, warnings: 0 (from status)"));
        assert!(md.contains("- Started: 2026-05-01T10:00:00Z, completed: -"));
        assert!(md.contains("- PodVolumeBackup: Failed: 1"));
        assert!(md.contains("- DataUpload: Completed: 1"));
        assert!(
            md.contains("  - PodVolumeBackup p: Failed (pod shop/web, volume v, node n1): boom")
        );
        assert!(md.contains("1. **PodVolumeBackup p Failed (pod shop/web, volume v, node n1)**"));
        assert!(
            md.contains("- `object-store/backup.log:1` error: json boom"),
            "{md}"
        );
        assert!(!md.contains("fine"));
        assert!(md.contains("- From status: attempted 1, completed 0, failed 0"));
        assert!(md.contains("- restore log missing"));
        let findings_at = md.find("## Findings").unwrap();
        assert!(findings_at < md.find("## Volume operations").unwrap());
    }

    #[test]
    fn a_stall_bundle_says_it_was_taken_while_the_operation_ran_and_since_when() {
        let mut e = Evidence::default();
        e.set_target(
            "resources/backup.yaml",
            &serde_json::json!({"kind": "Backup", "metadata": {"name": "b1"},
                "status": {"phase": "InProgress"}}),
        );
        e.target.stalled = Some(crate::findings::StalledEvidence {
            since: "2026-11-28T10:00:00Z".into(),
            still_for: std::time::Duration::from_secs(125 * 60),
            taken_at: "2026-11-28T12:05:00Z".parse().unwrap(),
            withheld: Some("Backup velero/flood-1, Backup velero/flood-2".into()),
        });
        let summary = Summary {
            evidence: e,
            server_version: None,
        };
        let md = summary.render(&[], &[]);
        let said = "- Taken while it ran: it had not moved for 2h5m (since 2026-11-28T10:00:00Z)";
        assert!(md.lines().take(5).any(|l| l.starts_with(said)), "{md}");
        assert!(
            md.lines()
                .take(6)
                .any(|l| l.starts_with("- Stall bundles withheld")
                    && l.ends_with("Backup velero/flood-1, Backup velero/flood-2")),
            "{md}"
        );
        // Once the operation ended, the bundle of its final phase says nothing of the kind.
        let mut ended = summary;
        ended.evidence.target.phase = "Failed".into();
        assert!(!ended.render(&[], &[]).contains("Taken while it ran"));
        let words = crate::findings::text::duration_words;
        assert_eq!(words(std::time::Duration::from_secs(35 * 60)), "35m");
        assert_eq!(words(std::time::Duration::from_secs(2 * 3600)), "2h");
    }
}

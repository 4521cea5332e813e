use super::*;
use crate::findings::timeline::TimedOperation;

fn evidence(ops: usize) -> Evidence {
    let mut e = Evidence::default();
    e.target.kind = "Restore".into();
    e.target.name = "shop-restore".into();
    e.target.phase = "PartiallyFailed".into();
    e.target.started = Some("2026-11-22T10:00:00Z".into());
    e.target.completed = Some("2026-11-22T10:30:00Z".into());
    for i in 0..ops {
        e.timeline.operations.push(TimedOperation {
            path: format!("velero/podvolumerestores/r-{i}.yaml"),
            kind: "PodVolumeRestore".into(),
            name: format!("r-{i}-{}", "x".repeat(200)),
            node: Some(format!("node-{}", i % 200)),
            pod: None,
            phase: if i % 7 == 0 { "Failed" } else { "Completed" }.into(),
            created: "2026-11-22T10:01:00Z".parse().ok(),
            started: "2026-11-22T10:02:00Z".parse().ok(),
            completed: "2026-11-22T10:03:00Z".parse().ok(),
        });
    }
    e
}

fn finding(title: &str) -> Finding {
    Finding {
        severity: crate::findings::Severity::Error,
        layer: crate::findings::Layer::DataPath,
        rule: "volume-operation-failed",
        title: title.into(),
        quote: "time=\"2026-11-22T10:05:00Z\" level=error msg=\"boom\"".into(),
        file: "logs/velero/velero.log".into(),
        line: Some(12),
        explains: vec![],
        subjects: vec![],
        waited: false,
        consequence_of: None,
        next_step: Some("Delete VolumeAttachment csi-1 <now>".into()),
    }
}

/// The page, which must pass the plugin's check before it opens one.
fn render_of(e: &Evidence, findings: &[Finding]) -> String {
    checked(render(&ReportInput {
        evidence: e,
        findings,
        damage: &Damage::default(),
        damage_lines: &["- StatefulSet `shop/db`: 1 of 2 volumes not restored".into()],
        files: &[ArchivedFile {
            path: "logs/velero/velero.log".into(),
            size: 10,
        }],
    }))
}

fn checked(page: String) -> String {
    if let Err(why) = velero_debug_crd::report_page::check_report_page(page.as_bytes()) {
        panic!("the plugin would refuse this page: {why}");
    }
    page
}

#[test]
fn hostile_names_stay_text_and_the_page_keeps_the_shape_the_plugin_opens() {
    let mut e = evidence(2);
    e.target.name = "\"><script>alert(1)</script>".into();
    e.timeline.operations[0].name = "<img src=x onerror=alert(1)> javascript:alert(1)".into();
    let findings = [finding(
        "<p onclick=\"x()\"> <iframe> javascript:void(0) <!-- -->",
    )];
    let page = checked(render(&ReportInput {
        evidence: &e,
        findings: &findings,
        damage: &Damage::default(),
        damage_lines: &["- <meta http-equiv=refresh>".into()],
        files: &[ArchivedFile {
            path: "javascript:alert(1)/../x\" onmouseover=\"y".into(),
            size: 1,
        }],
    }));
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
}

#[test]
fn the_page_has_the_first_finding_its_next_step_the_damage_and_a_bar_per_operation() {
    let e = evidence(3);
    let page = render_of(&e, &[finding("3 volumes not restored on node-1")]);
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains("<strong>3 volumes not restored on node-1</strong>"));
    assert!(page.contains("Delete VolumeAttachment csi-1 &lt;now&gt;"));
    assert!(page.contains("StatefulSet shop/db: 1 of 2 volumes not restored"));
    assert_eq!(page.matches(r#"<g class="op "#).count(), 3);
    assert!(page.contains(r#"<a href="./logs/velero/velero.log">"#));
    assert!(!page.contains("<script"));
}

#[test]
fn the_policy_allows_exactly_the_pages_own_stylesheet() {
    let page = render_of(&evidence(1), &[]);
    let digest = sha2::Sha256::digest(STYLE.as_bytes());
    let hash = base64::engine::general_purpose::STANDARD.encode(digest);
    assert!(page.contains(&format!("default-src 'none'; style-src 'sha256-{hash}'")));
    assert!(page.contains(&format!("<style>{STYLE}</style>")));
}

#[test]
fn a_page_too_big_draws_fewer_bars_and_says_so() {
    let e = evidence(5_000);
    let page = render_of(&e, &[]);
    assert!(page.len() <= MAX_REPORT_BYTES, "{} bytes", page.len());
    assert!(page.contains("completed operations not drawn"));
    // Every failed operation is still drawn.
    let failed = e
        .timeline
        .operations
        .iter()
        .filter(|o| o.phase == "Failed")
        .count();
    assert_eq!(page.matches(r#"<g class="op failed""#).count(), failed);
}

#[test]
fn a_restore_without_operations_events_or_log_hits_gets_a_sentence_not_an_empty_axis() {
    let page = render_of(&evidence(0), &[]);
    assert!(page.contains("This restore ran no volume operation (PodVolumeRestore, DataDownload)"));
    assert!(!page.contains("<svg"));
    assert!(render_of(&evidence(1), &[]).contains("<svg"));
}

#[test]
fn without_any_time_there_is_no_picture_but_a_sentence() {
    let mut e = evidence(1);
    let op = &mut e.timeline.operations[0];
    (op.created, op.started, op.completed) = (None, None, None);
    e.target.started = None;
    e.target.completed = None;
    let page = render_of(&e, &[]);
    assert!(page.contains("there is no timeline to draw"));
    assert!(!page.contains("<svg"));
}

#[test]
fn a_log_lines_time_is_read_from_logrus_and_from_its_start() {
    assert_eq!(
        line_time("time=\"2026-11-22T10:05:00Z\" level=error"),
        "2026-11-22T10:05:00Z".parse().ok()
    );
    assert_eq!(
        line_time("2026-11-22T10:05:00.5Z stdout F x"),
        "2026-11-22T10:05:00.5Z".parse().ok()
    );
    assert_eq!(line_time("no time here"), None);
}

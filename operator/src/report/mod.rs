//! The bundle's `report.html`, next to summary.md: the same findings (with their next steps),
//! the damage by application, the restore on one time axis (timeline_svg.rs), links into the
//! bundle's files. One self-contained file: no script, no font or image from anywhere, a
//! Content-Security-Policy that allows only its own stylesheet (by hash), so it works opened
//! from disk and served under a strict policy; its head is the one the plugin checks before it
//! opens a report (velero_debug_crd::report_page). Built from the evidence the findings read,
//! bounded to [`MAX_REPORT_BYTES`]; what did not fit is said in the page.

mod html;
mod timeline_svg;

use std::fmt::Write;

use base64::Engine;
use jiff::Timestamp;
use sha2::Digest;
use velero_debug_crd::report_page::{REPORT_HEAD_END, REPORT_HEAD_START};

use self::html::{esc, file_href};
use self::timeline_svg::{Mark, TimelineInput};
use crate::{
    findings::{Damage, Evidence, Finding},
    summary::ArchivedFile,
};

pub(crate) const MAX_REPORT_BYTES: usize = 2 * 1024 * 1024;
/// Bars drawn at first; halved until the page fits.
const MAX_BARS: usize = 5_000;
/// Files linked one by one.
const MAX_FILES: usize = 2_000;

const STYLE: &str = include_str!("report.css");

pub(crate) struct ReportInput<'a> {
    pub evidence: &'a Evidence,
    pub findings: &'a [Finding],
    pub damage: &'a Damage,
    pub damage_lines: &'a [String],
    pub files: &'a [ArchivedFile],
}

/// report.html, at most [`MAX_REPORT_BYTES`].
pub(crate) fn render(input: &ReportInput) -> String {
    let mut bars = MAX_BARS;
    loop {
        let page = page(input, bars);
        if page.len() <= MAX_REPORT_BYTES || bars == 0 {
            return page;
        }
        bars /= 2;
    }
}

fn page(input: &ReportInput, max_bars: usize) -> String {
    let e = input.evidence;
    let t = &e.target;
    let title = format!("{} {}: {}", t.kind, t.name, t.phase);
    let mut out = String::with_capacity(64 * 1024);
    let _ = write!(
        out,
        "{REPORT_HEAD_START}{hash}{REPORT_HEAD_END}{t}</title><style>{STYLE}</style></head><body><header><h1>{t}</h1>",
        hash = style_hash(),
        t = esc(&title),
    );
    header_facts(&mut out, e);
    out.push_str("</header><main>");
    findings(&mut out, input.findings);
    damage(&mut out, input.damage_lines, input.damage);
    timeline(&mut out, e, max_bars);
    files(&mut out, input.files);
    out.push_str("</main></body></html>\n");
    out
}

/// The stylesheet's SHA-256, base64, for the policy's `sha256-...`.
fn style_hash() -> String {
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(STYLE.as_bytes()))
}

fn header_facts(out: &mut String, e: &Evidence) {
    let t = &e.target;
    let mut facts = vec![];
    if let Some(s) = &t.started {
        facts.push(format!("started {s}"));
    }
    if let Some(c) = &t.completed {
        facts.push(format!("completed {c}"));
    }
    if let Some(n) = t.errors {
        facts.push(format!("{n} errors"));
    }
    if let Some(n) = t.warnings {
        facts.push(format!("{n} warnings"));
    }
    if let Some(b) = &t.backup_name {
        facts.push(format!("backup {b}"));
    }
    let _ = write!(out, "<p>{}</p>", esc(&facts.join(" · ")));
}

fn findings(out: &mut String, findings: &[Finding]) {
    out.push_str(r#"<section id="findings"><h2>Findings</h2>"#);
    if findings.is_empty() {
        out.push_str("<p>No finding: nothing known went wrong.</p></section>");
        return;
    }
    out.push_str("<ol>");
    for f in findings {
        let severity = format!("{:?}", f.severity).to_lowercase();
        let _ = write!(
            out,
            r#"<li class="finding {severity}"><p><span class="badge">{severity}</span> <strong>{}</strong> <code>{}</code></p>"#,
            esc(&f.title),
            esc(f.rule),
        );
        if let Some(step) = &f.next_step {
            let _ = write!(
                out,
                r#"<p class="next"><b>Next step:</b> {}</p>"#,
                esc(step)
            );
        }
        if !f.quote.is_empty() {
            let _ = write!(out, "<pre>{}</pre>", esc(&f.quote));
        }
        if !f.file.is_empty() {
            let line = f.line.map(|l| format!(", line {l}")).unwrap_or_default();
            let _ = write!(
                out,
                r#"<p class="file"><a href="{}">{}</a>{line}</p>"#,
                esc(&file_href(&f.file)),
                esc(&f.file)
            );
        }
        out.push_str("</li>");
    }
    out.push_str("</ol></section>");
}

fn damage(out: &mut String, lines: &[String], damage: &Damage) {
    if lines.is_empty() {
        return;
    }
    out.push_str(r#"<section id="damage"><h2>Damage by application</h2><ul>"#);
    for line in lines {
        let text = line.trim_start_matches("- ").replace('`', "");
        let _ = write!(out, "<li>{}</li>", esc(&text));
    }
    out.push_str("</ul>");
    if damage.items_left_out > 0 || damage.operations_left_out > 0 {
        let _ = write!(
            out,
            "<p>{} more messages of the results file and {} more volume operations were not attributed to an application.</p>",
            damage.items_left_out, damage.operations_left_out
        );
    }
    out.push_str("</section>");
}

fn timeline(out: &mut String, e: &Evidence, max_bars: usize) {
    out.push_str(r#"<section id="timeline"><h2>Timeline</h2>"#);
    let events: Vec<Mark> = e
        .events
        .iter()
        .filter_map(|ev| {
            Some(Mark {
                time: ev.time.parse().ok()?,
                text: ev.line(),
            })
        })
        .collect();
    let log_hits: Vec<Mark> = e
        .log_hits
        .iter()
        .filter_map(|h| {
            Some(Mark {
                time: line_time(&h.hit.quote)?,
                text: format!("{} ({}x): {}", h.source.path, h.hit.count, h.hit.quote),
            })
        })
        .collect();
    let ops = &e.timeline.operations;
    if ops.is_empty() && events.is_empty() && log_hits.is_empty() {
        let _ = write!(
            out,
            "<p>This {} ran no volume operation (PodVolume{kind}, Data{transfer}) and no Warning event or log warning of it carries a time: there is nothing to place on a time axis.</p></section>",
            esc(&e.target.kind.to_lowercase()),
            kind = esc(&e.target.kind),
            transfer = if e.target.kind == "Backup" {
                "Upload"
            } else {
                "Download"
            },
        );
        return;
    }
    let Some((start, end)) = span(e, &events, &log_hits) else {
        out.push_str("<p>No operation, event or log line of this target carries a time: there is no timeline to draw.</p></section>");
        return;
    };
    let input = TimelineInput {
        start,
        end,
        operations: ops,
        events: &events,
        log_hits: &log_hits,
    };
    let (svg, drawn) = timeline_svg::svg(&input, max_bars);
    out.push_str(r#"<div class="scroll">"#);
    out.push_str(&svg);
    out.push_str("</div>");
    legend(out);
    left_out(out, &drawn, e.timeline.left_out);
    out.push_str("</section>");
}

fn legend(out: &mut String) {
    out.push_str(r#"<p class="legend">Bars: dotted = queued (created, not started), solid = running or done; <span class="key completed">completed</span> <span class="key running">running</span> <span class="key failed">failed (hatched)</span> <span class="key waiting">other phase</span>. A lane is named by its node and (operations not completed/all). Hover or focus (Tab) a bar or mark for what it is.</p>"#);
}

fn left_out(out: &mut String, drawn: &timeline_svg::Drawn, not_collected: usize) {
    let mut notes = vec![];
    if drawn.left_out > 0 {
        notes.push(format!(
            "{} completed operations not drawn (the page stays under {} MiB)",
            drawn.left_out,
            MAX_REPORT_BYTES >> 20
        ));
    }
    if not_collected > 0 {
        notes.push(format!(
            "{not_collected} operations beyond the bundle's bound not collected"
        ));
    }
    if drawn.grouped_nodes > 0 {
        notes.push(format!("{} nodes share the last lane", drawn.grouped_nodes));
    }
    if !notes.is_empty() {
        let _ = write!(
            out,
            r#"<p class="left-out">Left out: {}.</p>"#,
            esc(&notes.join("; "))
        );
    }
}

/// From the earliest to the latest time known: the target's, its operations', its marks'.
fn span(e: &Evidence, events: &[Mark], hits: &[Mark]) -> Option<(Timestamp, Timestamp)> {
    let parse = |t: &Option<String>| t.as_deref().and_then(|t| t.parse::<Timestamp>().ok());
    let times = e
        .timeline
        .operations
        .iter()
        .flat_map(|o| [o.created, o.started, o.completed])
        .flatten()
        .chain(parse(&e.target.started))
        .chain(parse(&e.target.completed))
        .chain(events.iter().map(|m| m.time))
        .chain(hits.iter().map(|m| m.time));
    times.fold(None, |acc, t| match acc {
        None => Some((t, t)),
        Some((a, b)) => Some((a.min(t), b.max(t))),
    })
}

/// The time a log line starts with or carries in `time="..."` (logrus), if any.
fn line_time(line: &str) -> Option<Timestamp> {
    if let Some((_, rest)) = line.split_once("time=\"") {
        return rest.split('"').next()?.parse().ok();
    }
    line.split_whitespace().next()?.parse().ok()
}

fn files(out: &mut String, files: &[ArchivedFile]) {
    let _ = write!(
        out,
        r#"<section id="files"><h2>Files</h2><details><summary>{} files in the bundle</summary><ul>"#,
        files.len()
    );
    for f in files.iter().take(MAX_FILES) {
        let _ = write!(
            out,
            r#"<li><a href="{}">{}</a> ({} bytes)</li>"#,
            esc(&file_href(&f.path)),
            esc(&f.path),
            f.size
        );
    }
    out.push_str("</ul>");
    if files.len() > MAX_FILES {
        let _ = write!(
            out,
            "<p>{} more in manifest.json.</p>",
            files.len() - MAX_FILES
        );
    }
    out.push_str("</details></section>");
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;

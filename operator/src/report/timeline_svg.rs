//! The timeline: the operation's span on one time axis, a lane per node with each volume
//! operation as a bar (queued, then running until it ended; its phase in colour and in a
//! pattern, so colour is not the only carrier), Warning events and the operation's own log hits
//! as marks on lanes of their own. Each bar and mark has a `<title>` (shown on hover) and the
//! ones that matter (not completed, every mark) take keyboard focus.
//!
//! Lanes beyond [`MAX_LANES`] are grouped into one, and bars beyond the caller's limit are left
//! out, completed ones first; the page says how many.

use std::{collections::BTreeMap, fmt::Write};

use jiff::Timestamp;

use super::html::esc;
use crate::findings::timeline::TimedOperation;

/// Node lanes drawn one by one; the others share the last lane.
pub(crate) const MAX_LANES: usize = 40;
/// Rows a lane stacks overlapping bars into.
const ROWS_PER_LANE: usize = 4;
const ROW_HEIGHT: f64 = 6.0;
const LABEL_WIDTH: f64 = 190.0;
const PLOT_WIDTH: f64 = 900.0;
const AXIS_HEIGHT: f64 = 24.0;

/// A mark on a lane of its own: an event or a log line, at a time.
pub(crate) struct Mark {
    pub time: Timestamp,
    pub text: String,
}

pub(crate) struct TimelineInput<'a> {
    pub start: Timestamp,
    pub end: Timestamp,
    pub operations: &'a [TimedOperation],
    pub events: &'a [Mark],
    pub log_hits: &'a [Mark],
}

/// What was drawn, for the text around the picture.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Drawn {
    pub bars: usize,
    pub left_out: usize,
    pub lanes: usize,
    pub grouped_nodes: usize,
}

/// The SVG, drawing at most `max_bars` bars.
pub(crate) fn svg(input: &TimelineInput, max_bars: usize) -> (String, Drawn) {
    let (lanes, grouped_nodes) = lanes(input.operations);
    let kept = keep(input.operations, max_bars);
    let span = (input.end.as_millisecond() - input.start.as_millisecond()).max(1) as f64;
    let x = |t: Timestamp| {
        let ms = (t.as_millisecond() - input.start.as_millisecond()) as f64;
        LABEL_WIDTH + (ms / span).clamp(0.0, 1.0) * PLOT_WIDTH
    };
    let lane_height = ROW_HEIGHT * ROWS_PER_LANE as f64 + 4.0;
    let height = AXIS_HEIGHT + lane_height * (lanes.len() + 2) as f64;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="timeline" role="img" aria-labelledby="tl-title tl-desc" viewBox="0 0 {w} {height}" width="{w}" height="{height}"><title id="tl-title">Timeline</title><desc id="tl-desc">{desc}</desc>"#,
        w = LABEL_WIDTH + PLOT_WIDTH + 10.0,
        desc = esc(&describe(input, &lanes, kept.len())),
    );
    out.push_str(PATTERNS);
    axis(&mut out, input, &x);
    let mut y = AXIS_HEIGHT;
    marks(&mut out, "Warning events", input.events, "event", y, &x);
    y += lane_height;
    marks(
        &mut out,
        "Log warnings/errors",
        input.log_hits,
        "log",
        y,
        &x,
    );
    y += lane_height;
    let lane_of: BTreeMap<&str, usize> = lanes
        .iter()
        .enumerate()
        .flat_map(|(i, l)| l.nodes.iter().map(move |n| (n.as_str(), i)))
        .collect();
    let mut rows: Vec<Vec<f64>> = vec![vec![f64::MIN; ROWS_PER_LANE]; lanes.len()];
    for (i, lane) in lanes.iter().enumerate() {
        let ly = y + lane_height * i as f64;
        let _ = write!(
            out,
            r#"<text class="lane" x="4" y="{}">{}</text><line class="sep" x1="0" x2="{}" y1="{ly}" y2="{ly}"/>"#,
            ly + lane_height - 6.0,
            esc(&lane.label),
            LABEL_WIDTH + PLOT_WIDTH
        );
    }
    for op in &kept {
        let lane = lane_of[node_of(op)];
        bar(
            &mut out,
            op,
            &x,
            y + lane_height * lane as f64,
            &mut rows[lane],
            input.end,
        );
    }
    out.push_str("</svg>");
    let drawn = Drawn {
        bars: kept.len(),
        left_out: input.operations.len() - kept.len(),
        lanes: lanes.len(),
        grouped_nodes,
    };
    (out, drawn)
}

const PATTERNS: &str = r#"<defs><pattern id="hatch-failed" width="4" height="4" patternUnits="userSpaceOnUse"><path d="M0,4 L4,0" class="hatch"/></pattern><pattern id="dots-queued" width="3" height="3" patternUnits="userSpaceOnUse"><circle cx="1.5" cy="1.5" r="0.7" class="dot"/></pattern></defs>"#;

struct Lane {
    label: String,
    nodes: Vec<String>,
}

fn node_of(op: &TimedOperation) -> &str {
    op.node.as_deref().unwrap_or("(no node)")
}

/// A lane per node, the nodes with most operations not completed first; beyond
/// [`MAX_LANES`], the rest share one lane.
fn lanes(ops: &[TimedOperation]) -> (Vec<Lane>, usize) {
    let mut by_node: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for op in ops {
        let e = by_node.entry(node_of(op)).or_default();
        e.0 += usize::from(op.phase != "Completed");
        e.1 += 1;
    }
    let mut nodes: Vec<(&str, (usize, usize))> = by_node.into_iter().collect();
    nodes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut lanes: Vec<Lane> = nodes
        .iter()
        .take(MAX_LANES - 1)
        .map(|(n, (bad, all))| Lane {
            label: format!("{n} ({bad}/{all})"),
            nodes: vec![n.to_string()],
        })
        .collect();
    let rest: Vec<String> = nodes
        .iter()
        .skip(MAX_LANES - 1)
        .map(|(n, _)| n.to_string())
        .collect();
    let grouped = if rest.len() == 1 { 0 } else { rest.len() };
    if !rest.is_empty() {
        let label = if rest.len() == 1 {
            rest[0].clone()
        } else {
            format!("{} other nodes", rest.len())
        };
        lanes.push(Lane { label, nodes: rest });
    }
    (lanes, grouped)
}

/// At most `max` operations: those not completed first, then the completed, in time order.
fn keep(ops: &[TimedOperation], max: usize) -> Vec<&TimedOperation> {
    let mut kept: Vec<&TimedOperation> = ops.iter().filter(|o| o.phase != "Completed").collect();
    kept.truncate(max);
    let room = max - kept.len();
    kept.extend(ops.iter().filter(|o| o.phase == "Completed").take(room));
    kept.sort_by_key(|o| (o.created.or(o.started), o.name.clone()));
    kept
}

fn describe(input: &TimelineInput, lanes: &[Lane], bars: usize) -> String {
    let not_completed = input
        .operations
        .iter()
        .filter(|o| o.phase != "Completed")
        .count();
    format!(
        "{} volume operations ({not_completed} not completed, {bars} drawn) on {} lanes from {} to {}; {} Warning events and {} log warnings or errors marked.",
        input.operations.len(),
        lanes.len(),
        input.start,
        input.end,
        input.events.len(),
        input.log_hits.len()
    )
}

fn axis(out: &mut String, input: &TimelineInput, x: &dyn Fn(Timestamp) -> f64) {
    let span = input.end.as_millisecond() - input.start.as_millisecond();
    for i in 0..=4 {
        let t = Timestamp::from_millisecond(input.start.as_millisecond() + span * i / 4)
            .unwrap_or(input.start);
        let tx = x(t);
        // Under four seconds apart, whole seconds would repeat the same label.
        let label = if span < 4_000 {
            t.strftime("%H:%M:%S%.3f").to_string()
        } else {
            t.strftime("%H:%M:%S").to_string()
        };
        // The ends' labels stay inside the picture.
        let anchor = match i {
            0 => "start",
            4 => "end",
            _ => "middle",
        };
        let _ = write!(
            out,
            r#"<line class="tick" x1="{tx}" x2="{tx}" y1="{AXIS_HEIGHT}" y2="100%"/><text class="axis" text-anchor="{anchor}" x="{tx}" y="14">{label}</text>"#
        );
    }
}

fn marks(
    out: &mut String,
    label: &str,
    marks: &[Mark],
    class: &str,
    y: f64,
    x: &dyn Fn(Timestamp) -> f64,
) {
    let _ = write!(
        out,
        r#"<text class="lane" x="4" y="{}">{label} ({})</text>"#,
        y + 16.0,
        marks.len()
    );
    for m in marks {
        let mx = x(m.time);
        let _ = write!(
            out,
            r#"<g class="mark {class}" tabindex="0" role="img" aria-label="{t}"><title>{t}</title><path d="M{mx},{} l-4,8 h8 z"/></g>"#,
            y + 4.0,
            t = esc(&format!("{} {}", m.time, m.text)),
        );
    }
}

fn bar(
    out: &mut String,
    op: &TimedOperation,
    x: &dyn Fn(Timestamp) -> f64,
    lane_y: f64,
    rows: &mut [f64],
    end: Timestamp,
) {
    let queued_at = op.created.or(op.started).unwrap_or(end);
    let started_at = op.started.unwrap_or(op.completed.unwrap_or(end));
    let ended_at = op.completed.unwrap_or(end);
    let (x0, x1, x2) = (
        x(queued_at),
        x(started_at),
        x(ended_at).max(x(started_at) + 1.0),
    );
    // The first row whose last bar ended before this one starts, else the last row.
    let row = rows.iter().position(|&r| r <= x0).unwrap_or(rows.len() - 1);
    rows[row] = x2 + 1.0;
    let y = lane_y + 2.0 + ROW_HEIGHT * row as f64;
    let phase = phase_class(&op.phase);
    let focus = if op.phase == "Completed" {
        ""
    } else {
        r#" tabindex="0""#
    };
    let when = |t: Option<Timestamp>| t.map_or("-".to_string(), |t| t.to_string());
    let title = format!(
        "{} {} on {}: {} (queued {}, started {}, ended {})",
        op.kind,
        op.name,
        node_of(op),
        op.phase,
        when(op.created),
        when(op.started),
        when(op.completed)
    );
    let _ = write!(
        out,
        r#"<g class="op {phase}" data-kind="{kind}" data-node="{node}"{focus} role="img" aria-label="{t}"><title>{t}</title><rect class="queued" x="{x0:.1}" y="{y:.1}" width="{:.1}" height="{h}"/><rect class="run" x="{x1:.1}" y="{y:.1}" width="{:.1}" height="{h}"/></g>"#,
        (x1 - x0).max(0.0),
        x2 - x1,
        h = ROW_HEIGHT - 1.0,
        kind = esc(&op.kind),
        node = esc(node_of(op)),
        t = esc(&title),
    );
}

fn phase_class(phase: &str) -> &'static str {
    match phase {
        "Completed" => "completed",
        "Failed" | "Canceled" | "Cancelled" => "failed",
        "InProgress" | "Prepared" | "Accepted" | "Canceling" => "running",
        _ => "waiting",
    }
}

#[cfg(test)]
#[path = "timeline_svg_tests.rs"]
mod tests;

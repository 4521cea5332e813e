//! What the scenarios measure a process by (its CPU seconds and resident set, from /proc) and
//! how they report rounds: the median, each round's figure, the operator's peak RSS row.

use anyhow::{Context, Result};

/// CPU seconds (user + system) a process has used so far.
pub(crate) fn cpu_seconds(pid: u32) -> Result<f64> {
    stat_seconds(pid, 11)
}

/// CPU seconds (user + system) of this process's children that ended: `velero debug`'s.
pub(crate) fn children_cpu_seconds() -> Result<f64> {
    stat_seconds(std::process::id(), 13)
}

/// Two clock-tick fields of `/proc/<pid>/stat` (user, system) summed, in seconds; `at` is the
/// first one's index among the fields after the command name.
fn stat_seconds(pid: u32, at: usize) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')').context("bad stat")? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[at].parse::<u64>()? + fields[at + 1].parse::<u64>()?;
    Ok(ticks as f64 / 100.0)
}

pub(crate) fn peak_rss_kib(pid: u32) -> Result<u64> {
    status_kib(pid, "VmHWM:")
}

/// The resident set now: sampled during the load scenario, whose peak VmHWM may predate.
pub(crate) fn rss_kib(pid: u32) -> Result<u64> {
    status_kib(pid, "VmRSS:")
}

/// A `kB` field of `/proc/<pid>/status`.
pub(crate) fn status_kib(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .with_context(|| format!("no {field}"))?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .with_context(|| format!("bad {field}"))?
        .parse()?)
}

/// The table row of the operator's peak RSS before and after a scenario (both in KiB).
pub(crate) fn peak_rss_row(before_kib: u64, after_kib: u64) -> String {
    format!(
        "| operator peak RSS (VmHWM) before / after | {} / {} MiB |",
        before_kib / 1024,
        after_kib / 1024
    )
}

/// The median of a round's measurements.
pub(crate) fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// Each round's value, in order, for the table: `16.1 / 15.8 / 17.0`.
pub(crate) fn each(values: &[f64]) -> String {
    values
        .iter()
        .map(|v| format!("{v:.1}"))
        .collect::<Vec<_>>()
        .join(" / ")
}

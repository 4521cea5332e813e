//! One handler per command: each reads the cluster or the store through the modules above and
//! prints. Shared here: durations from flags, printing objects, how a wait ended.

pub(crate) mod archive;
pub(crate) mod complete;
pub(crate) mod create;
pub(crate) mod delete;
pub(crate) mod report;
pub(crate) mod serve;
pub(crate) mod show;

use std::{io::Write, time::Duration};

use anyhow::Context;
use velero_debug_crd::{duration, printable};

use crate::{
    cluster::{wait, wait::Outcome},
    exit::ExitStatus,
    print::{output, output::ObjectFormat},
};

pub(crate) fn parse_timeout(text: &str) -> anyhow::Result<Duration> {
    let parsed = duration::parse(text).map_err(|e| anyhow::anyhow!("--timeout: {e}"))?;
    Duration::try_from(parsed)
        .ok()
        .filter(|d| !d.is_zero())
        .with_context(|| format!("--timeout {text:?} must be positive"))
}

pub(crate) fn print_object<T: serde::Serialize>(
    value: &T,
    format: &ObjectFormat,
) -> anyhow::Result<()> {
    let text = output::render(value, format)?;
    std::io::stdout().write_all(text.as_bytes())?;
    Ok(())
}

/// Prints how a wait ended (a Failed bundle's reason, message, findings and warnings on
/// stderr).
pub(crate) fn report_outcome(name: &str, outcome: &Outcome) -> ExitStatus {
    match outcome {
        Outcome::Completed(_) => eprintln!("DebugBundle {name} Completed"),
        Outcome::Failed(bundle) => eprint!("{}", printable(&wait::failure_report(bundle))),
        Outcome::TimedOut => eprintln!("DebugBundle {name}: timed out waiting for it to finish"),
    }
    outcome.exit_status()
}

//! Velero-like log files for the scenarios to bundle, the same bytes every run: in CRI format
//! for kwok to serve, and plain (what the operator receives) for the gzip baseline.

use std::{io::Write, path::Path};

use anyhow::Result;

/// A cheap deterministic generator, so every run compresses the same bytes.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// Writes `bytes` of Velero-like log lines twice: in CRI format for kwok to serve, and as
/// plain content (what the operator receives) for the gzip baseline.
pub(crate) fn write_logs(cri: &Path, plain: &Path, bytes: u64, seed: u64) -> Result<()> {
    let mut rng = Lcg(seed);
    let mut cri_out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(cri)?);
    let mut plain_out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(plain)?);
    let levels = ["info", "info", "info", "debug", "warning", "error"];
    let messages = [
        "Processing item",
        "Backed up 1 items out of an estimated total of 240",
        "Executing post hooks",
        "Got volume dir",
        "PodVolumeBackup progress updated",
        "data path failed: context deadline exceeded",
        "Found associated CRD to add to backup",
    ];
    let mut written = 0u64;
    let mut second = 0u64;
    // kwok filters by the CRI timestamp; the bundle's window starts just before the backup.
    let stamp = jiff::Timestamp::now().to_string();
    while written < bytes {
        let r = rng.next();
        second += r % 3;
        let line = format!(
            "time=\"2026-11-22T{:02}:{:02}:{:02}Z\" level={} msg=\"{}\" backup=velero/nightly-{} logSource=\"pkg/backup/item_backupper.go:{}\" name=pod-{:x} namespace=ns-{} progress={}/{} resource=pods",
            (second / 3600) % 24,
            (second / 60) % 60,
            second % 60,
            levels[(r % 6) as usize],
            messages[((r >> 8) % 7) as usize],
            (r >> 12) % 30,
            (r >> 16) % 900,
            r.wrapping_mul(2654435761) & 0xffff_ffff,
            (r >> 20) % 64,
            (r >> 24) % 100_000,
            100_000
        );
        writeln!(cri_out, "{stamp} stdout F {line}")?;
        writeln!(plain_out, "{line}")?;
        written += line.len() as u64 + 1;
    }
    cri_out.flush()?;
    plain_out.flush()?;
    Ok(())
}

//! Scenario 2: bundles of a backup with few and with many PodVolumeBackups; the manifest's
//! `apiRequests` should not grow with the number of objects.

use anyhow::Result;
use velero_debug_e2e::{backups::real_backup, context::TestCtx};

use super::bundles::{bundle, manifest, pvb};

/// Scenario 2; returns the table rows.
pub(crate) async fn api_requests(t: &TestCtx) -> Result<Vec<String>> {
    let mut rows = Vec::new();
    for count in [10usize, 200] {
        let (_, b, u) = real_backup(t, "bench").await?;
        for _ in 0..count {
            pvb(t, &b, &u).await?;
        }
        let (done, _) = bundle(t, serde_json::json!({"backup": b})).await?;
        let m = manifest(&done).await?;
        let files = m["files"].as_array().map(|f| f.len()).unwrap_or(0);
        let requests = m["apiRequests"].as_u64().unwrap_or(0);
        rows.push(format!(
            "| API requests, backup with {count} PodVolumeBackups | {requests} ({files} files) |"
        ));
    }
    Ok(rows)
}

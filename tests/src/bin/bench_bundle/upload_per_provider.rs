//! Scenario 4: the same incompressible file (as an archive is) uploaded by the operator's storage
//! port to BSLs default (S3), gcs and azure, round after round, against Microsoft's own SDK on
//! the same Azurite.

use std::{io::Write, path::Path, time::Duration};

use anyhow::Result;
use kube::{Api, api::DynamicObject};
use velero_debug_e2e::{
    context::{TestCtx, unique_name},
    stores,
};
use velero_debug_operator::velero::resource as velero_resource;

use super::measures::{each, median};

/// Scenario 4; returns the table rows. Each store takes one untimed upload first: the
/// emulators' first large upload pays for memory they keep for the next ones. Each round ends
/// with the floor: Microsoft's own SDK uploading the same file to the same Azurite in the same
/// blocks, as many at once, each with its MD5.
pub(crate) async fn upload_per_provider(
    t: &TestCtx,
    work: &Path,
    mib: u64,
    rounds: usize,
) -> Result<Vec<String>> {
    let file = work.join("bench-upload.bin");
    write_incompressible(&file, mib << 20)?;
    let stores = [("S3", "default"), ("GCS", "gcs"), ("Azure", "azure")];
    let mut times = vec![Vec::new(); stores.len()];
    let mut sdk = Vec::new();
    for round in 0..=rounds {
        for (i, (provider, name)) in stores.iter().enumerate() {
            let took = upload_to(t, name, &file).await?;
            eprintln!("bench: scenario 4, round {round} of {rounds}: {provider} {took:.1?}");
            if round > 0 {
                times[i].push(took.as_secs_f64());
            }
        }
        if round > 0 {
            let path = file.to_string_lossy();
            let (block_mib, in_flight) = velero_debug_operator::AZURE_UPLOAD_SHAPE;
            let took: f64 = stores::azure_blob(
                &t.env,
                &[
                    "timed-upload",
                    &unique_name("bench-upload-sdk"),
                    &path,
                    &block_mib.to_string(),
                    &in_flight.to_string(),
                ],
            )
            .await?
            .parse()?;
            eprintln!("bench: scenario 4, round {round} of {rounds}: Azure SDK {took:.1}s");
            sdk.push(took);
        }
    }
    std::fs::remove_file(&file)?;
    let s3 = median(&times[0]);
    let mut rows: Vec<String> = stores
        .iter()
        .zip(&times)
        .map(|((provider, name), t)| {
            format!(
                "| {provider} (BSL {name}), {mib} MiB | {:.1} s median ({}); {:.2}x S3 |",
                median(t),
                each(t),
                median(t) / s3
            )
        })
        .collect();
    rows.push(format!(
        "| Azure floor: Microsoft's SDK (azure-storage-blob), same file, blocks and Azurite | \
         {:.1} s median ({}); {:.2}x S3 |",
        median(&sdk),
        each(&sdk),
        median(&sdk) / s3
    ));
    Ok(rows)
}

/// Uploads `file` once to BSL `name`'s store as the operator uploads an archive; its time.
async fn upload_to(t: &TestCtx, name: &str, file: &Path) -> Result<Duration> {
    use k8s_openapi::api::core::v1::Secret;
    let bsls: Api<DynamicObject> = Api::namespaced_with(
        t.client.clone(),
        &t.env.namespace,
        &velero_resource("BackupStorageLocation"),
    );
    let secrets: Api<Secret> = Api::namespaced(t.client.clone(), &t.env.namespace);
    let bsl = bsls.get(name).await?;
    let credential = &bsl.data["spec"]["credential"];
    let secret = credential["name"].as_str().unwrap_or("cloud-credentials");
    let key = credential["key"].as_str().unwrap_or("cloud");
    let text = secrets
        .get_opt(secret)
        .await?
        .and_then(|s| s.data)
        .and_then(|mut d| d.remove(key))
        .map(|b| String::from_utf8_lossy(&b.0).into_owned());
    let object = unique_name("bench-upload");
    velero_debug_operator::measure_upload(&bsl, text.as_deref(), file, &object).await
}

/// `bytes` of xorshift output: an archive's bytes do not compress further either.
fn write_incompressible(path: &Path, bytes: u64) -> Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut chunk = vec![0u8; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        for word in chunk.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let n = left.min(chunk.len() as u64) as usize;
        out.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    out.flush()?;
    Ok(())
}

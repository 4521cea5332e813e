//! A bundle's API requests grow with pages, not with objects: the workload pods, their claims
//! and their PVs are listed, not read one by one, so a restore of twice as many of them costs
//! the same requests (manifest.json's `apiRequestsByKind`), and every one is still collected.

use std::{collections::BTreeMap, time::Duration};

use anyhow::{Context, Result, ensure};
use kube::{
    Api,
    api::{Patch, PatchParams},
    core::DynamicObject,
};
use velero_debug_e2e::{
    archives::download,
    backups::real_backup,
    bundles::{apply_bundle, condition_reason, wait_finished},
    context::{TestCtx, create_namespace},
    operations::pod_volume_restore,
    rbac::grant_workload_reads,
    restores::{finished_restore, restored_pod_with_volume},
};
use velero_debug_operator::velero::resource as velero_resource;

/// The kinds of request whose count must not grow with the objects.
const WORKLOAD_KINDS: [&str; 3] = ["pods", "persistentvolumeclaims", "persistentvolumes"];

/// A restore into two namespaces the operator may read, each with `per_namespace` restored
/// pods, each named by a PodVolumeRestore and using a claim bound to a PV of its own.
async fn restore_of(t: &TestCtx, per_namespace: usize) -> Result<(String, Vec<String>)> {
    let (_, backup, _) = real_backup(t, "counts").await?;
    let no_auto = serde_json::json!({"velerodebug.io/auto-bundle": "false"});
    let (restore, uid) =
        finished_restore(t, &backup, "PartiallyFailed", Duration::ZERO, no_auto).await?;
    let mut namespaces = vec![];
    for _ in 0..2 {
        let ns = create_namespace(&t.client, &t.cleanup, "counts").await?;
        grant_workload_reads(t, &ns).await?;
        namespaces.push(ns);
    }
    let restores: Api<DynamicObject> = Api::namespaced_with(
        t.client.clone(),
        &t.env.namespace,
        &velero_resource("Restore"),
    );
    let included = serde_json::json!({"spec": {"includedNamespaces": namespaces}});
    restores
        .patch(&restore, &PatchParams::default(), &Patch::Merge(included))
        .await?;
    let mut made = vec![];
    for ns in &namespaces {
        for i in 0..per_namespace {
            let pod = format!("app-{i}");
            let (claim, volume) = (format!("{pod}-data"), format!("{ns}-{pod}"));
            let labels = serde_json::json!({"velero.io/restore-name": restore});
            // Pending: no node matches.
            let placement =
                serde_json::json!({"nodeSelector": {"velerodebug.io/e2e-no-such-node": "true"}});
            restored_pod_with_volume(t, ns, (&pod, &claim, &volume), labels, placement).await?;
            let status =
                serde_json::json!({"phase": "Failed", "message": "data path restore failed"});
            pod_volume_restore(t, (&restore, &uid), (ns, &pod), status).await?;
            made.push(format!("{ns}/{pod}"));
        }
    }
    Ok((restore, made))
}

/// The bundle of `restore`: its workload requests by kind, and its files' names.
async fn bundled(t: &TestCtx, restore: &str) -> Result<(BTreeMap<String, u64>, Vec<String>)> {
    let name = apply_bundle(t, serde_json::json!({"restore": restore})).await?;
    let bundle = wait_finished(t, &name, Duration::from_secs(120)).await?;
    let files = download(&bundle)
        .await
        .with_context(|| condition_reason(&bundle))?;
    let manifest = files.get("manifest.json").context("no manifest.json")?;
    let manifest: serde_json::Value = serde_json::from_slice(manifest)?;
    let by_kind: BTreeMap<String, u64> =
        serde_json::from_value(manifest["apiRequestsByKind"].clone())
            .context("apiRequestsByKind")?;
    let workload_requests = by_kind
        .into_iter()
        .filter(|(kind, _)| {
            let resource = kind.split(' ').next().unwrap_or_default();
            WORKLOAD_KINDS.contains(&resource)
        })
        .collect();
    Ok((workload_requests, files.keys().cloned().collect()))
}

/// Serial: the operator counts requests per process, so another test's bundle made meanwhile
/// would count in this one's (it did, in CI).
#[tokio::test]
async fn serial_twice_the_workload_objects_cost_the_same_requests_and_all_are_collected()
-> Result<()> {
    let t = &TestCtx::new().await?;
    let mut seen = vec![];
    for per_namespace in [3, 6] {
        let (restore, pods) = restore_of(t, per_namespace).await?;
        let (requests, files) = bundled(t, &restore).await?;
        for pod in &pods {
            let (ns, name) = pod.split_once('/').context("ns/name")?;
            for (kind, object) in [
                (format!("{ns}/pod"), name.to_string()),
                (
                    format!("{ns}/persistentvolumeclaim"),
                    format!("{name}-data"),
                ),
                ("persistentvolume".to_string(), format!("{ns}-{name}")),
            ] {
                let path = format!("resources/workloads/{kind}/{object}.yaml");
                ensure!(
                    files.contains(&path),
                    "{path} not in the bundle of {per_namespace} a namespace"
                );
            }
        }
        // Each kind was listed and counted: two empty tallies would compare equal too.
        for kind in WORKLOAD_KINDS {
            ensure!(
                requests
                    .get(&format!("{kind} list"))
                    .is_some_and(|n| *n > 0),
                "no list of {kind} counted: {requests:?}"
            );
        }
        let one_by_one: Vec<&String> = requests.keys().filter(|k| k.ends_with(" get")).collect();
        ensure!(
            one_by_one.is_empty(),
            "objects read one by one: {one_by_one:?} (all: {requests:?})"
        );
        seen.push(requests);
    }
    ensure!(
        seen[0] == seen[1],
        "twice the objects, other requests: {:?} then {:?}",
        seen[0],
        seen[1]
    );
    Ok(())
}

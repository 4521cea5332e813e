//! Issue 70: failures of the data path the rules were not written from, made on the real node
//! by the real kubelet, node-agent and Velero, each named by its cause first with a next step
//! that would fix it: a node-agent that exits as it starts (its own last words quoted), one
//! the kubelet cannot make (the kubelet's message quoted), and a restore whose claim's
//! provisioner never answers (the claim first, the pod volume timeout its consequence), and a
//! data-path pod killed for memory that Velero deleted (its end as the operator recorded it).
//! Serial: each changes the real node's node-agent, or how every restore maps classes.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::{apps::v1::DaemonSet, core::v1::ConfigMap, storage::v1::StorageClass};
use kube::{
    Api,
    api::{DynamicObject, PostParams},
    core::ApiResource,
};
use velero_debug_e2e::{
    archives::text,
    bundles::completed_bundle,
    context::{TestCtx, create_namespace, unique_name},
    data_mover::{data_path_pods_gone, termination_record_written},
    findings::{assert_first_finding, first_next_step, said_first, status_findings},
    operators::{lease_holder, operator_metric, restart_operators},
    polling::eventually,
    real_node::{
        backed_up_volume, break_real_node_agent, failed_fs_backup_bundle, fs_backup,
        operation_phases, real_node_agent_pod, real_node_agent_with_config_map, start_fs_backup,
        stateful_set_on_real_node,
    },
    restores::start_restore_annotated,
    velero_cli::in_final_phase,
};
use velero_debug_operator::velero::resource as velero_resource;

/// The status of the real node's node-agent container, whatever its pod's state.
async fn node_agent_container(
    t: &TestCtx,
) -> Result<Option<k8s_openapi::api::core::v1::ContainerStatus>> {
    let pod = real_node_agent_pod(t).await?;
    Ok(pod
        .status
        .and_then(|s| s.container_statuses)
        .and_then(|c| c.into_iter().next()))
}

/// The JSON patch that points the node-agent's `host-pods` volume at `path`.
async fn host_pods_at(t: &TestCtx, path: &str) -> Result<serde_json::Value> {
    let daemon_set = Api::<DaemonSet>::namespaced(t.client.clone(), &t.env.namespace)
        .get("node-agent")
        .await?;
    let volumes = daemon_set
        .spec
        .and_then(|s| s.template.spec)
        .and_then(|s| s.volumes)
        .unwrap_or_default();
    let index = volumes
        .iter()
        .position(|v| v.name == "host-pods")
        .context("the node-agent DaemonSet has no host-pods volume")?;
    Ok(serde_json::json!([{
        "op": "replace",
        "path": format!("/spec/template/spec/volumes/{index}/hostPath"),
        "value": {"path": path, "type": "DirectoryOrCreate"},
    }]))
}

/// A node-agent whose host-pods volume is not the kubelet's pods folder (as `velero install`'s
/// default on a kubelet with another root, k0s or MicroK8s) exits as it starts and
/// crash-loops; the backup waits with a PodVolumeBackup nobody takes. The bundle quotes the
/// node-agent's own last line and says to set the kubelet's folder.
#[tokio::test]
async fn serial_real_node_a_node_agent_whose_host_pods_is_not_the_kubelets_quotes_its_last_words()
-> Result<()> {
    let t = &TestCtx::new().await?;
    let real = t.env.real_node()?.clone();
    let ns = create_namespace(&t.client, &t.cleanup, "fs-hostpods").await?;
    stateful_set_on_real_node(t, &ns, "db", &["data"], serde_json::json!([])).await?;
    let wrong = format!("{}/vdo-not-the-pods", real.kubelet_dir);
    let changed = break_real_node_agent(t, host_pods_at(t, &wrong).await?).await?;
    let started = std::sync::OnceLock::new();
    let found = async {
        eventually(
            "the node-agent on the real node crash-looping",
            Duration::from_secs(180),
            || async {
                let container = node_agent_container(t).await?;
                // The kubelet (1.36) shows the back-off as CrashLoopBackOff, or as the
                // container terminated in error after a restart.
                let looping = container.is_some_and(|c| {
                    let state = c.state.unwrap_or_default();
                    let waiting = state.waiting.and_then(|w| w.reason);
                    let failed = state.terminated.is_some_and(|t| t.exit_code != 0);
                    waiting.as_deref() == Some("CrashLoopBackOff")
                        || (c.restart_count >= 1 && failed)
                });
                Ok(looping.then_some(()))
            },
        )
        .await?;
        let (backup, _) = start_fs_backup(t, &ns, "bk-hostpods").await?;
        started.set(backup.clone()).ok();
        eventually(
            "a PodVolumeBackup for the backup",
            Duration::from_secs(90),
            || async {
                let pvbs = operation_phases(t, "PodVolumeBackup", "velero.io/backup-name", &backup)
                    .await?;
                Ok((!pvbs.is_empty()).then_some(()))
            },
        )
        .await?;
        let (bundle, files) = completed_bundle(t, serde_json::json!({"backup": backup})).await?;
        assert_first_finding(
            &bundle,
            &files,
            "node-agent-restarted",
            &[&real.name, "host-pods"],
        )?;
        // Its own words, quoted.
        said_first(
            &files,
            "unexpected directory structure for host-pods volume",
        )?;
        let step = first_next_step(&bundle);
        ensure!(
            step.contains("--kubelet-root-dir") && step.contains("hostPath"),
            "next step: {step}"
        );
        ensure!(!step.contains("were canceled"), "next step: {step}");
        Ok(())
    }
    .await;
    changed.undo(t).await?;
    // Back on its feet, the node-agent takes the waiting PodVolumeBackup and Velero ends the
    // backup: its one backup worker must not stay on it for the next tests.
    if let Some(backup) = started.get() {
        in_final_phase(t, "Backup", backup, Duration::from_secs(240)).await?;
    }
    let _ = std::fs::remove_dir_all(&wrong);
    found
}

/// A folder bind-mounted on itself and made private: a hostPath there cannot be mounted with
/// mountPropagation HostToContainer, as a kubelet folder on a private mount cannot (a node
/// whose root is not shared, a kubelet in a container). Unmounted and removed on drop.
struct PrivateMount(String);

impl PrivateMount {
    fn new(path: String) -> Result<PrivateMount> {
        std::fs::create_dir_all(&path)?;
        let mount = PrivateMount(path);
        for args in [
            vec!["--bind", &mount.0, &mount.0],
            vec!["--make-private", &mount.0],
        ] {
            let status = std::process::Command::new("mount").args(&args).status()?;
            ensure!(status.success(), "mount {args:?} failed");
        }
        Ok(mount)
    }
}

impl Drop for PrivateMount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// A node-agent whose host-pods folder is not a shared or slave mount cannot be made: the
/// kubelet says so in its CreateContainerError message, Velero only that no node-agent runs
/// there. The bundle names the kubelet's reason and how to make the mount shared.
#[tokio::test]
async fn serial_real_node_a_node_agent_the_kubelet_cannot_make_is_named_by_its_message()
-> Result<()> {
    let t = &TestCtx::new().await?;
    let real = t.env.real_node()?.clone();
    let ns = create_namespace(&t.client, &t.cleanup, "fs-private").await?;
    stateful_set_on_real_node(t, &ns, "db", &["data"], serde_json::json!([])).await?;
    let private = PrivateMount::new(format!("{}/vdo-private-pods", real.kubelet_dir))?;
    let changed = break_real_node_agent(t, host_pods_at(t, &private.0).await?).await?;
    let found = async {
        eventually(
            "the node-agent on the real node waiting in CreateContainerError",
            Duration::from_secs(120),
            || async {
                let waiting = node_agent_container(t)
                    .await?
                    .and_then(|c| c.state)
                    .and_then(|s| s.waiting)
                    .and_then(|w| w.reason);
                Ok((waiting.as_deref() == Some("CreateContainerError")).then_some(()))
            },
        )
        .await?;
        let (bundle, files) = failed_fs_backup_bundle(t, &ns).await?;
        assert_first_finding(
            &bundle,
            &files,
            "node-agent-missing",
            &[&real.name, "CreateContainerError"],
        )?;
        // The kubelet's words, quoted.
        said_first(&files, "not a shared or slave mount")?;
        let step = first_next_step(&bundle);
        ensure!(
            step.contains("mount --make-rshared /") && step.contains(&private.0),
            "next step: {step}"
        );
        Ok(())
    }
    .await;
    changed.undo(t).await?;
    drop(private);
    found
}

/// A restore into a StorageClass no provisioner serves (mapped by Velero's
/// change-storage-class ConfigMap) ends when its pod volume timeout expires. The claim comes
/// first, naming the provisioner and quoting the claim's event; the timeout is its
/// consequence and no next step says to wait longer.
#[tokio::test]
async fn serial_real_node_a_claim_nobody_provisions_comes_before_the_pod_volume_timeout()
-> Result<()> {
    let t = &TestCtx::new().await?;
    let real = t.env.real_node()?.clone();
    let (from, backup) = backed_up_volume(t, "fs-noprov").await?;
    let class = unique_name("vdo-nowhere");
    let provisioner = "example.com/vdo-nobody";
    let classes: Api<StorageClass> = Api::all(t.client.clone());
    let sc: StorageClass = serde_json::from_value(serde_json::json!({
        "metadata": {"name": class}, "provisioner": provisioner,
        "volumeBindingMode": "Immediate",
    }))?;
    classes.create(&PostParams::default(), &sc).await?;
    t.cleanup
        .delete(&ApiResource::erase::<StorageClass>(&()), None, &class);
    let mapping = unique_name("change-storage-class");
    let mut data = serde_json::Map::new();
    data.insert(real.storage_class.clone(), class.clone().into());
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": mapping, "labels": {
            "velero.io/plugin-config": "", "velero.io/change-storage-class": "RestoreItemAction"}},
        "data": data,
    }))?;
    Api::<ConfigMap>::namespaced(t.client.clone(), &t.env.namespace)
        .create(&PostParams::default(), &cm)
        .await?;
    t.cleanup.delete(
        &ApiResource::erase::<ConfigMap>(&()),
        Some(&t.env.namespace),
        &mapping,
    );
    // Short: the finding's title (cut at 160 characters) names the PodVolumeRestore, the pod's
    // namespace and the provisioner.
    let to = unique_name("np");
    let restore = start_restore_annotated(
        t,
        &backup,
        (&from, &to),
        serde_json::json!({"velero.io/pod-volume-timeout": "45s"}),
    )
    .await?;
    // Velero 1.18 then finalizes for up to its --resource-timeout (10 minutes), waiting for the
    // claim to bind: the bundle is taken once the pod volume timeout has ended the restore.
    let restores = Api::<DynamicObject>::namespaced_with(
        t.client.clone(),
        &t.env.namespace,
        &velero_resource("Restore"),
    );
    eventually(
        "the restore partially failed at its pod volume timeout",
        Duration::from_secs(180),
        || async {
            let phase = restores.get(&restore).await?.data["status"]["phase"].clone();
            Ok(matches!(
                phase.as_str(),
                Some("PartiallyFailed" | "FinalizingPartiallyFailed")
            )
            .then_some(()))
        },
    )
    .await?;
    let (bundle, files) = completed_bundle(t, serde_json::json!({"restore": restore})).await?;
    assert_first_finding(&bundle, &files, "pvc-pending", &[provisioner])?;
    // The claim's own state (Normal events such as ExternalProvisioning are not collected, and
    // a write that lost a race explains nothing).
    said_first(&files, "no PersistentVolume made for it")?;
    let step = first_next_step(&bundle);
    ensure!(
        step.contains(&format!(
            "provisioner {provisioner} of StorageClass {class}"
        )),
        "next step: {step}"
    );
    let summary = text(&files, "summary.md")?;
    let timeout = summary
        .lines()
        .find(|l| l.contains("Velero timed out waiting for the pod volume operations"))
        .context(format!("no pod-volume-timeout finding:\n{summary}"))?;
    ensure!(timeout.ends_with("consequence of #1"), "{timeout}");
    let steps_wait_longer = status_findings(&bundle).into_iter().find(|f| {
        f.next_step
            .as_deref()
            .is_some_and(|s| s.contains("--fs-backup-timeout"))
    });
    // Its restore's data-path pod waits on the claim that never binds: deleted with the
    // Restore and the namespace now, so it holds nothing of the real node for later tests.
    restores.delete(&restore, &Default::default()).await?;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(t.client.clone());
    let _ = namespaces.delete(&to, &Default::default()).await;
    let pvrs = Api::<DynamicObject>::namespaced_with(
        t.client.clone(),
        &t.env.namespace,
        &velero_resource("PodVolumeRestore"),
    );
    let of_restore =
        kube::api::ListParams::default().labels(&format!("velero.io/restore-name={restore}"));
    eventually(
        "the restore's PodVolumeRestores gone",
        Duration::from_secs(120),
        || async { Ok(pvrs.list(&of_restore).await?.items.is_empty().then_some(())) },
    )
    .await?;
    if let Some(f) = steps_wait_longer {
        anyhow::bail!("{} still says to wait longer: {:?}", f.rule, f.next_step);
    }
    Ok(())
}

/// Evidence Velero deletes: node-agent's ConfigMap (by the chart's default name, which
/// rbac.veleroConfigMaps lets the operator read) gives data-path pods 16 MiB; the kubelet
/// kills the real node's data-path pod for memory, Velero fails the PodVolumeBackup with
/// nothing after its colon and deletes the pod. The operator recorded how it ended; a new
/// operator process reads that record back, and the bundle made after the pod is gone names
/// `OOMKilled` and the ConfigMap's key first, with the edit that raises it.
#[tokio::test]
async fn serial_real_node_a_data_path_pod_killed_for_memory_is_named_after_velero_deleted_it()
-> Result<()> {
    let t = &TestCtx::new().await?;
    let ns = create_namespace(&t.client, &t.cleanup, "fs-oom").await?;
    stateful_set_on_real_node(t, &ns, "db", &["data"], serde_json::json!([])).await?;
    let config_map = "node-agent-config";
    let resources = r#"{"podResources":{"cpuRequest":"0","cpuLimit":"1","memoryRequest":"16Mi","memoryLimit":"16Mi"}}"#;
    let node_agent = real_node_agent_with_config_map(t, config_map, resources).await?;
    let found = async {
        let backup = fs_backup(t, &ns).await?;
        let pvbs = operation_phases(t, "PodVolumeBackup", "velero.io/backup-name", &backup).await?;
        ensure!(
            !pvbs.is_empty() && pvbs.values().all(|p| p == "Failed" || p == "Canceled"),
            "backup {backup}: PodVolumeBackups {pvbs:?}"
        );
        data_path_pods_gone(t, "velero.io/pod-volume-backup", &pvbs).await?;
        termination_record_written(t).await?;
        // The record outlives the process that made it.
        restart_operators(1, &[]).await?;
        eventually(
            "the new operator process reading the record back",
            Duration::from_secs(60),
            || async {
                let leader = lease_holder(&t.client, &t.env.namespace).await?;
                let recorded =
                    operator_metric(&t.env, &leader, "velero_debug_recorded_pods").await?;
                Ok((recorded >= 1).then_some(()))
            },
        )
        .await?;
        let (bundle, files) = completed_bundle(t, serde_json::json!({"backup": backup})).await?;
        assert_first_finding(
            &bundle,
            &files,
            "data-path-pod-out-of-memory",
            &["OOMKilled", "limit 16Mi"],
        )?;
        said_first(
            &files,
            &format!("ConfigMap {}/{config_map}, key node-agent-config.json: podResources.memoryLimit 16Mi", t.env.namespace),
        )?;
        let step = first_next_step(&bundle);
        ensure!(
            step.contains(&format!(
                "kubectl -n {} edit configmap {config_map}",
                t.env.namespace
            )),
            "next step: {step}"
        );
        // Proven by the pod as recorded: Velero deleted it before the bundle.
        let pvb = pvbs.keys().next().context("a PodVolumeBackup")?;
        let recorded = format!("pods/recorded/{pvb}.yaml");
        let file = status_findings(&bundle).first().and_then(|f| f.file.clone());
        ensure!(
            files.contains_key(&recorded) && file.as_deref() == Some(recorded.as_str()),
            "the first finding's file {file:?}, not the recorded pod {recorded}"
        );
        Ok(())
    }
    .await;
    node_agent.undo(t).await?;
    found
}

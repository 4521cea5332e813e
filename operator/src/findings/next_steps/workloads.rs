//! What to do about volumes and restored pods that did not come up (Velero 1.18 and
//! Kubernetes):
//! - storage classes on restore: Velero's `velero.io/change-storage-class` ConfigMap,
//!   https://velero.io/docs/v1.18/restore-reference/#changing-pvpvc-storage-classes
//! - resource modifiers: https://velero.io/docs/v1.18/restore-resource-modifiers/
//! - node-agent's `--data-mover-prepare-timeout` (pkg/cmd/cli/nodeagent/server.go, 30m)
//! - restore hooks: https://velero.io/docs/v1.18/restore-hooks/ (`onError: Continue|Fail`)
//! - VolumeAttachments: https://kubernetes.io/docs/reference/kubernetes-api/config-and-storage-resources/volume-attachment-v1/

/// `kubectl -n <ns> describe pod <name>` for a pod key `namespace/name`.
fn describe(pod: &str) -> String {
    match pod.split_once('/') {
        Some((ns, name)) => format!("kubectl -n {ns} describe pod {name}"),
        None => format!("kubectl describe pod {pod}"),
    }
}

/// The volume of `pod` is attached to another node; `attachment` is the VolumeAttachment
/// holding it and that node, when collected.
pub(crate) fn volume_attach_failed(pod: &str, attachment: Option<(&str, &str)>) -> String {
    match attachment {
        Some((name, node)) => format!(
            "VolumeAttachment {name} still holds the volume on node {node}: stop the pod that \
             uses it there, or, once nothing on {node} does, `kubectl delete volumeattachment \
             {name}`; pod {pod} then attaches it."
        ),
        None => format!(
            "The volume of pod {pod} is attached elsewhere: `kubectl get volumeattachments` \
             names the node holding it; stop the pod using it there (or delete the stale \
             attachment once nothing there does)."
        ),
    }
}

/// Kubelet could not mount a volume of `pod`.
pub(crate) fn volume_mount_failed(pod: &str) -> String {
    format!(
        "Provide what the mount error names (a Secret or ConfigMap the restore left out, a CSI \
         driver on the node); `{}` shows the mount retried until it works.",
        describe(pod)
    )
}

/// Why a claim is not bound, for its next step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClaimGap<'a> {
    ClassMissing(&'a str),
    NoClass,
    /// The class exists; its provisioner (named by the class, or by the claim's event) has
    /// not provisioned the claim.
    Unprovisioned {
        class: &'a str,
        provisioner: &'a str,
    },
    Other,
}

/// Claim `namespace/name` of a restored pod is Pending.
pub(crate) fn pvc_pending(claim: &str, gap: ClaimGap<'_>) -> String {
    match gap {
        ClaimGap::ClassMissing(class) => format!(
            "StorageClass {class} does not exist here: create it, or map it to one that does \
             with Velero's change-storage-class ConfigMap (label \
             velero.io/change-storage-class=RestoreItemAction, data {class}: <class>) and \
             restore again; claim {claim} waits until then."
        ),
        ClaimGap::NoClass => format!(
            "Claim {claim} names no StorageClass and none is the default: mark one default \
             (annotation storageclass.kubernetes.io/is-default-class=true) or map the claim's \
             class with Velero's change-storage-class ConfigMap, then restore again."
        ),
        ClaimGap::Unprovisioned { class, provisioner } => format!(
            "Claim {claim} waits for provisioner {provisioner} of StorageClass {class}, which \
             has not made its volume (its last event is quoted): check that {provisioner} runs \
             and answers (`kubectl get pods -A | grep -i {}`, its controller's log), or map \
             {class} to a class whose provisioner runs with Velero's change-storage-class \
             ConfigMap and restore again.",
            provisioner
                .rsplit('/')
                .next()
                .unwrap_or(provisioner)
                .split('.')
                .next()
                .unwrap_or(provisioner)
        ),
        ClaimGap::Other => format!(
            "Claim {claim} is not bound: its provisioner's events (`kubectl -n {} describe pvc \
             {}`) name why; it binds once that is fixed.",
            claim.split_once('/').map_or("", |(ns, _)| ns),
            claim.split_once('/').map_or(claim, |(_, n)| n)
        ),
    }
}

/// No node admits restored pod `pod`.
pub(crate) fn pod_unschedulable(pod: &str) -> String {
    format!(
        "Make room for pod {pod} where the scheduler's message says it does not fit (nodes, \
         taints, resources, its volume's node affinity), or change its placement or requests on \
         restore with a resource modifier (`--resource-modifier-configmap`)."
    )
}

/// A container of restored pod `pod` waits for `reason`.
pub(crate) fn pod_not_ready(pod: &str, container: &str, reason: &str) -> String {
    match reason {
        "ImagePullBackOff" | "ErrImagePull" | "InvalidImageName" => format!(
            "The image of container {container} cannot be pulled here: make its registry and \
             pull Secret reachable from the cluster, or change the image on restore with a \
             resource modifier (`--resource-modifier-configmap`)."
        ),
        "CreateContainerConfigError" => format!(
            "Container {container} refers to a Secret or ConfigMap that is not there: restore it \
             too (it may have been excluded or refused), then `{}`.",
            describe(pod)
        ),
        "CrashLoopBackOff" => format!(
            "Container {container} starts and exits: `kubectl -n {} logs {} -c {container} \
             --previous` says why (often data or a dependency the restore did not bring back).",
            pod.split_once('/').map_or("", |(ns, _)| ns),
            pod.split_once('/').map_or(pod, |(_, n)| n)
        ),
        _ => format!(
            "Container {container} waits ({reason}): `{}` shows the kubelet's events for it.",
            describe(pod)
        ),
    }
}

/// An init container before Velero's restore-wait fails: restore-wait never runs, so the
/// node-agent never starts the pod's PodVolumeRestores. Such containers are mostly put there
/// by a mutating webhook (a mesh's injector), which also acts on the pods a restore creates.
pub(crate) fn init_container_before_restore_wait(pod: &str, container: &str) -> String {
    let (ns, name) = pod.split_once('/').unwrap_or(("", pod));
    format!(
        "Init container {container} runs before Velero's restore-wait and does not finish, so \
         the pod's volumes are never restored: `kubectl -n {ns} logs {name} -c {container} \
         --previous` says why. Fix it, or keep whatever adds it (a mutating webhook, such as a \
         mesh's injector: `kubectl get mutatingwebhookconfigurations`) off restored pods or \
         after restore-wait; then restore the namespace again."
    )
}

/// A PodVolumeRestore never started: its pod never ran the restore-wait init container.
pub(crate) fn pod_volume_restore_stuck(pod: &str) -> String {
    format!(
        "Velero restores the volume only once pod {pod} runs its restore-wait init container: \
         get the pod running (`{}`); a pod that will never run (deleted, node gone) leaves the \
         volume unrestored: restore the namespace again.",
        describe(pod)
    )
}

/// A PodVolumeRestore never started, and the operator was refused the pods of its namespace,
/// where the reason would show (a Multi-Attach error, an unschedulable pod, a failing init
/// container).
pub(crate) fn pod_volume_restore_stuck_unseen(pod: &str, namespace: &str) -> String {
    format!(
        "The pod and its events would say why, but the operator may not read namespace \
         {namespace}: add it to the chart value rbac.workloadNamespaces (or set [\"*\"]) and \
         make the bundle again. Meanwhile `{}` shows what holds it (a Multi-Attach error, an \
         unschedulable pod, a failing init container).",
        describe(pod)
    )
}

/// A pod volume named a claim that is not there.
pub(crate) fn pvc_not_found() -> String {
    "Restore the pod's PersistentVolumeClaims with it (do not exclude persistentvolumeclaims), or \
     back up again if the claim was deleted before the backup read it."
        .to_string()
}

/// Hooks of the operation failed.
pub(crate) fn hooks_failed(kind: &str, name: &str) -> String {
    let verb = kind.to_lowercase();
    format!(
        "`velero {verb} describe {name} --details` names each failed hook and its container: fix \
         its command (the pod's hook annotations or the {kind}'s spec.hooks), or set its onError \
         to Continue when its failure may not fail the {verb}."
    )
}

/// Volume operations failed; `agent` is the node-agent pod of their node, when known.
pub(crate) fn volume_operation_failed(kind: &str, agent: Option<&str>, namespace: &str) -> String {
    let log = agent.map_or_else(
        || "node-agent's log on their node".to_string(),
        |p| format!("`kubectl -n {namespace} logs {p}`"),
    );
    format!(
        "The {kind}'s status.message is the data path's own error; {log} has the lines around \
         it: fix what it names, then run the operation again (a failed {kind} is not retried)."
    )
}

/// A VolumeSnapshotContent has an error from its CSI driver.
pub(crate) fn volume_snapshot_content_error(content: &str, driver: &str) -> String {
    format!(
        "The error is CSI driver {driver}'s: check its VolumeSnapshotClass and the driver's \
         snapshotter sidecar (`kubectl get volumesnapshotcontent {content} -o yaml`); back up \
         again once snapshots of that driver become ready."
    )
}

/// An asynchronous item operation (a data mover, a plugin's) failed.
pub(crate) fn item_operation_failed(action: &str, kind: &str, name: &str) -> String {
    let verb = kind.to_lowercase();
    format!(
        "The error is action {action}'s: `velero {verb} describe {name} --details` lists its \
         operations; for a data mover, the DataUpload or DataDownload of that operation and its \
         node-agent say more."
    )
}

/// Velero's own diagnosis of a data path pod that did not come up.
pub(crate) fn expose_diagnosis(namespace: &str) -> String {
    format!(
        "Velero's diagnosis names the pod, its node and claim: fix what it says; if the pod was \
         only slow to start, raise node-agent's --data-mover-prepare-timeout (30m by default; \
         `kubectl -n {namespace} edit daemonset node-agent`)."
    )
}

/// A plugin's item action refused `object` (`resource/namespace/name`, when Velero names it),
/// in a restore of `backup` (None: in a backup).
pub(crate) fn item_action_error(object: Option<String>, backup: Option<&str>) -> String {
    let again = match backup {
        Some(backup) => format!("velero restore create --from-backup {backup}"),
        None => "velero backup create NAME".to_string(),
    };
    match object {
        Some(object) => {
            let resource = object.split('/').next().unwrap_or_default();
            format!(
                "The plugin's own error for {object} is the quote: fix what it names, or restore \
                 the rest without that kind: `{again} --exclude-resources {resource}`."
            )
        }
        None => "The plugin's own error is the quote: fix what it names, or leave the object's \
                 kind out with `--exclude-resources`."
            .to_string(),
    }
}

/// A Restore Finalizing waits for a post-restore exec hook in container `container` of pod
/// `pod`, which is not up; `unblock` is the next step of what keeps the pod from running.
pub(crate) fn post_restore_hook_waiting(pod: &str, container: &str, unblock: &str) -> String {
    format!(
        "Velero runs the hook once container {container} of pod {pod} is up, and waits that \
         long (the hook's `waitTimeout`, none by default). {unblock} Or give the hook a \
         `waitTimeout` (spec.hooks, or the annotation post.hook.restore.velero.io/wait-timeout) \
         so the restore ends without it."
    )
}

//! What to do about a finding: the object, and the setting or command that addresses it, as
//! Velero 1.18's documentation and Helm chart name them. Pure text from what the rule found; a
//! rule that cannot name something specific gets no next step rather than generic advice.
//!
//! Sources (Velero 1.18):
//! - restore filters: https://velero.io/docs/v1.18/resource-filtering/#--exclude-resources
//! - storage locations: https://velero.io/docs/v1.18/locations/ (`velero backup-location get`)
//! - node-agent placement: the Helm chart's `nodeAgent.tolerations`, `nodeAgent.nodeSelector`,
//!   `nodeAgent.affinity` (vmware-tanzu/helm-charts, chart 12.x); `velero install` has no
//!   flag for them (pkg/install/daemonset.go sets only the Windows toleration)
//! - quotas: https://kubernetes.io/docs/concepts/policy/resource-quotas/
//! - existing objects: https://velero.io/docs/v1.18/restore-reference/ ("Restore existing
//!   resource policy", `--existing-resource-policy=update`)
//! - memory: `velero install --velero-pod-mem-limit` / `--node-agent-pod-mem-limit`
//!   (pkg/cmd/cli/install/install.go), Helm `resources` / `nodeAgent.resources`
//! - timeouts: the server's `--fs-backup-timeout` (default 240m, Helm
//!   `configuration.fsBackupTimeout`), `velero backup create --csi-snapshot-timeout` (default
//!   10m) (pkg/cmd/server/config/config.go, pkg/cmd/cli/backup/create.go)

mod data_path;
mod platform;
mod refusals;
mod workloads;

pub(crate) use data_path::*;
pub(crate) use platform::*;
pub(crate) use refusals::*;
pub(crate) use workloads::*;

/// The restore filter that leaves out what a quota on `quota_resource` refused, when the quota
/// resource names an object kind (`count/configmaps`, `persistentvolumeclaims`,
/// `requests.storage` for claims).
fn excluded_resource(quota_resource: &str) -> Option<&str> {
    if let Some(kind) = quota_resource.strip_prefix("count/") {
        return Some(kind);
    }
    match quota_resource {
        "pods" | "requests.cpu" | "requests.memory" | "limits.cpu" | "limits.memory" | "cpu"
        | "memory" => Some("pods"),
        "persistentvolumeclaims" | "requests.storage" => Some("persistentvolumeclaims"),
        "services" | "services.loadbalancers" | "services.nodeports" => Some("services"),
        "configmaps" | "secrets" | "replicationcontrollers" | "resourcequotas" => {
            Some(quota_resource)
        }
        _ => None,
    }
}

/// ResourceQuota `namespace/name` refused restored objects of `resources` (quota keys).
pub(crate) fn quota_exceeded(
    namespace: &str,
    name: &str,
    resources: &[String],
    backup: Option<&str>,
) -> String {
    let raise = format!(
        "Raise spec.hard of ResourceQuota {namespace}/{name} (`kubectl -n {namespace} edit \
         resourcequota {name}`)"
    );
    let mut excluded: Vec<&str> = resources
        .iter()
        .filter_map(|r| excluded_resource(r))
        .collect();
    excluded.dedup();
    if excluded.is_empty() {
        return format!("{raise}, then restore again.");
    }
    format!(
        "{raise}, or restore without those objects: `velero restore create --from-backup {} \
         --exclude-resources {}`.",
        backup.unwrap_or("BACKUP"),
        excluded.join(",")
    )
}

/// An admission webhook refused restored objects.
pub(crate) fn webhook_denied(webhook: Option<&str>) -> String {
    let which = match webhook {
        Some(w) => format!("Admission webhook {w}"),
        None => "The admission webhook named in the quote".to_string(),
    };
    format!(
        "{which} refused the restored objects: allow them in its policy or exclude their \
         namespace in its configuration (`kubectl get validatingwebhookconfigurations,\
         mutatingwebhookconfigurations` lists it), or restore without them with \
         `--exclude-resources` / `--exclude-namespaces`."
    )
}

/// BackupStorageLocation `name` is Unavailable; Velero's own validation message, when any,
/// is the finding's quote.
pub(crate) fn bsl_unavailable(name: &str, namespace: &str) -> String {
    format!(
        "Correct BackupStorageLocation {name} as Velero's validation message says (its bucket, \
         prefix, config or the credential Secret it names: `kubectl -n {namespace} get bsl \
         {name} -o yaml`), then wait for `velero backup-location get {name}` to show Available \
         and run the operation again."
    )
}

/// Why node-agent is missing from a node, as far as the evidence tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AgentGap<'a> {
    NodeGone,
    NodeNotReady,
    /// Its pod does not run: the waiting reason and the kubelet's message (waiting.rs).
    PodNotRunning {
        pod: &'a str,
        reason: &'a str,
        message: &'a str,
    },
    Untolerated,
    Placement,
}

pub(crate) fn node_agent_missing(node: &str, namespace: &str, gap: AgentGap<'_>) -> String {
    match gap {
        AgentGap::NodeGone => format!(
            "Node {node} is gone, and so are the volume operations that ran there: restore the \
             affected namespaces again once their pods run on other nodes."
        ),
        AgentGap::NodeNotReady => format!(
            "Bring node {node} back to Ready (`kubectl describe node {node}` says why it is \
             not); node-agent there then serves the volume operations."
        ),
        AgentGap::PodNotRunning {
            pod,
            reason,
            message,
        } => cannot_start(pod, "daemonset node-agent", namespace, reason, message),
        AgentGap::Untolerated => format!(
            "Let DaemonSet {namespace}/node-agent tolerate the taint of node {node}: Helm chart \
             value nodeAgent.tolerations, or spec.template.spec.tolerations in `kubectl -n \
             {namespace} edit daemonset node-agent` (`velero install` has no flag for it)."
        ),
        AgentGap::Placement => format!(
            "Let DaemonSet {namespace}/node-agent be placed on node {node}: Helm chart values \
             nodeAgent.nodeSelector / nodeAgent.affinity, or spec.template.spec in `kubectl -n \
             {namespace} edit daemonset node-agent`."
        ),
    }
}

/// The restore's backup was not whole: its own bundle says what it missed and why.
pub(crate) fn backup_not_whole(backup: &str) -> String {
    format!(
        "What backup {backup} missed cannot come back from it: `kubectl velero-debug create \
         backup {backup} --wait` diagnoses that backup; back up again once it is fixed."
    )
}

/// Objects of an API the cluster does not serve were refused.
pub(crate) fn api_missing(resource: Option<&str>, backup: Option<&str>) -> String {
    match resource {
        Some(resource) => format!(
            "Install the CustomResourceDefinition that serves {resource} (with the operator \
             that owns it) before restoring, or restore without it: `velero restore create \
             --from-backup {} --exclude-resources {resource}`.",
            backup.unwrap_or("BACKUP")
        ),
        None => "Install the CustomResourceDefinitions the refused objects need before \
                 restoring, or leave those kinds out with `--exclude-resources`."
            .to_string(),
    }
}

/// Restored objects that already existed were left as they were.
pub(crate) fn already_exists() -> String {
    "To replace them with the backup's version, restore again with \
     `--existing-resource-policy=update` (Velero then updates existing objects instead of \
     skipping them)."
        .to_string()
}

/// The Velero server was OOMKilled.
pub(crate) fn velero_server_oom(namespace: &str) -> String {
    format!(
        "Give the Velero server more memory: Helm chart value resources.limits.memory, or \
         `velero install --velero-pod-mem-limit`, or the velero container's limit in `kubectl \
         -n {namespace} edit deployment velero`; then run the operation again."
    )
}

/// node-agent on `node` was OOMKilled.
pub(crate) fn node_agent_oom(namespace: &str) -> String {
    format!(
        "Give node-agent more memory: Helm chart value nodeAgent.resources.limits.memory, or \
         `velero install --node-agent-pod-mem-limit`, or the container's limit in `kubectl -n \
         {namespace} edit daemonset node-agent`."
    )
}

/// What to change so the kubelet can make and start a container of `pod` (of `owner`, such
/// as `daemonset node-agent`), from its waiting `reason` and `message` (waiting.rs).
pub(crate) fn cannot_start(
    pod: &str,
    owner: &str,
    namespace: &str,
    reason: &str,
    message: &str,
) -> String {
    use crate::findings::waiting::{CANNOT_START, Cause, cause};
    if !CANNOT_START.contains(&reason) {
        return format!(
            "Find why pod {pod} does not run: `kubectl -n {namespace} describe pod {pod}` (its \
             events and last state)."
        );
    }
    match cause(reason, message) {
        Cause::MountNotShared { path } => format!(
            "The kubelet cannot make pod {pod}: a hostPath it mounts with mountPropagation \
             (HostToContainer) must be a shared or slave mount on the node, and {} is not. On the \
             node, `findmnt -o TARGET,PROPAGATION /` shows it; `mount --make-rshared /` mends it \
             (systemd makes / shared at boot; a kubelet in a container or a custom init may \
             not), then `kubectl -n {namespace} delete pod {pod}`.",
            path.as_deref().unwrap_or("the folder")
        ),
        Cause::ImagePull { image } => format!(
            "The node cannot pull {}: check the image and tag in `kubectl -n {namespace} get \
             {owner} -o yaml`, the registry's credentials (imagePullSecrets) and the node's \
             access to the registry.",
            image.map_or_else(|| "the image".to_string(), |i| format!("image {i}"))
        ),
        Cause::MissingReference { what } => format!(
            "Pod {pod} names {what}, which does not exist: create it in namespace {namespace}, \
             or remove the reference in `kubectl -n {namespace} edit {owner}`; then `kubectl -n \
             {namespace} delete pod {pod}`."
        ),
        Cause::Other => format!(
            "The kubelet cannot start pod {pod} ({reason}); its message, quoted, says what to \
             change (`kubectl -n {namespace} describe pod {pod}` shows it with its events); then \
             `kubectl -n {namespace} delete pod {pod}`."
        ),
    }
}

/// Velero stopped waiting for pod volume backups/restores.
pub(crate) fn pod_volume_timeout(namespace: &str) -> String {
    format!(
        "If the volumes were still moving data, raise the Velero server's --fs-backup-timeout \
         (default 240m; Helm chart value configuration.fsBackupTimeout, or the velero \
         container's args in `kubectl -n {namespace} edit deployment velero`)."
    )
}

/// No content with a snapshot answered VolumeSnapshot `snapshot` (`<namespace>/<name>`):
/// which of the two controllers that make one did not act.
pub(crate) fn volume_snapshot_not_reconciled(snapshot: &str) -> String {
    let (namespace, name) = snapshot
        .split_once('/')
        .unwrap_or(("<namespace>", snapshot));
    format!(
        "Is the snapshot controller (external-snapshotter's) running? `kubectl get pods -A | \
         grep snapshot-controller`. If it made a content (`kubectl get volumesnapshotcontent | \
         grep {name}`), the driver's csi-snapshotter did not cut it: read its log. Events: \
         `kubectl -n {namespace} get events --field-selector involvedObject.name={name}`."
    )
}

/// Velero found no VolumeSnapshotClass it may use for `driver`.
pub(crate) fn no_snapshot_class(driver: Option<&str>) -> String {
    let driver = driver.unwrap_or("<driver>");
    format!(
        "Label the class Velero should use for {driver}: `kubectl label volumesnapshotclass \
         <class> velero.io/csi-volumesnapshot-class=true` (`kubectl get volumesnapshotclass` \
         lists each class with its driver; label one per driver), then back up again."
    )
}

/// CSI snapshots were not ready in time.
pub(crate) fn csi_snapshot_timeout() -> String {
    "If the snapshots were only slow, back up again with a longer wait: `velero backup create \
     ... --csi-snapshot-timeout=30m` (default 10m); the VolumeSnapshotContents' status.error \
     says when they failed instead."
        .to_string()
}

#[cfg(test)]
#[path = "next_steps_tests.rs"]
mod tests;

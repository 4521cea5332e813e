//! What to do about node-agent and backup repositories (Velero 1.18):
//! - repository maintenance jobs and their resources:
//!   https://velero.io/docs/v1.18/repository-maintenance/ (`velero install
//!   --repo-maintenance-job-configmap`; jobs labelled `velero.io/repo-name`,
//!   pkg/repository/maintenance/maintenance.go)
//! - stale locks: the BackupRepository controller removes them each time it reconciles a
//!   repository (pkg/controller/backup_repository_controller.go, UnlockRepo)
//! - a BackupRepository deleted is made again, and connected or initialized, on the next
//!   backup of its namespace (pkg/repository/ensurer.go); its labels
//!   `velero.io/volume-namespace`, `velero.io/storage-location`

/// node-agent restarted, not for memory.
pub(crate) fn node_agent_restarted(pod: &str, namespace: &str) -> String {
    format!(
        "`kubectl -n {namespace} logs {pod} --previous` has node-agent's last words before the \
         restart; the volume operations it ran then were canceled: run the operation again once \
         it stays up."
    )
}

/// The node-agent exits as it starts: its log's last line says why.
pub(crate) fn node_agent_crash_loop(pod: &str, namespace: &str) -> String {
    format!(
        "node-agent exits as it starts, so it runs no volume operation on that node: the line \
         quoted, the last of `kubectl -n {namespace} logs {pod} --previous`, says why. Fix that, \
         then `kubectl -n {namespace} delete pod {pod}`; the volume operations of that node wait \
         until it stays up."
    )
}

/// The node-agent's host-pods volume is not the kubelet's pods folder.
pub(crate) fn node_agent_host_pods(namespace: &str) -> String {
    format!(
        "The node-agent's `host-pods` volume must be the kubelet's pods folder, `<kubelet root \
         dir>/pods` (not /var/lib/kubelet/pods on k0s: /var/lib/k0s/kubelet/pods; MicroK8s: \
         /var/snap/microk8s/common/var/lib/kubelet/pods; see `ps -o args= -C kubelet` for \
         --root-dir on the node). Install again with `velero install --kubelet-root-dir \
         <kubelet root dir>` (Velero 1.17+), or set the hostPath of the volume named host-pods \
         in `kubectl -n {namespace} edit daemonset node-agent`."
    )
}

/// A Velero container's arguments name a flag its binary does not have; `workload` is where
/// they are set (`daemonset node-agent`, `deployment velero`).
pub(crate) fn unknown_flag(flag: &str, workload: &str, namespace: &str) -> String {
    format!(
        "The arguments of {workload} name `{flag}`, which the Velero of its image does not \
         have: its image and arguments come from different Velero versions (an upgrade or a \
         downgrade that changed one of them). Make them one version's: `kubectl -n {namespace} \
         get {workload} -o yaml` shows both, and `velero install --dry-run -o yaml` of the \
         image's version the arguments it takes."
    )
}

/// The repository of the volumes' namespace is not initialized in the store.
pub(crate) fn repository_not_initialized(
    namespace: &str,
    volume_namespace: Option<&str>,
) -> String {
    let selector = volume_namespace
        .map(|ns| format!(" -l velero.io/volume-namespace={ns}"))
        .unwrap_or_default();
    format!(
        "The repository's files are gone from the bucket (or its prefix changed): delete its \
         BackupRepository (`kubectl -n {namespace} get backuprepositories{selector}`, then \
         `kubectl -n {namespace} delete backuprepository NAME`) so the next backup initializes \
         it again; backups made into the old repository cannot be restored."
    )
}

/// Another process holds the repository's lock.
pub(crate) fn repository_locked(namespace: &str) -> String {
    format!(
        "The quote names the lock's holder: when it is a maintenance job, wait for it (`kubectl \
         -n {namespace} get jobs -l velero.io/repo-name`); a lock whose holder is gone is stale \
         and Velero's BackupRepository controller removes it the next time it reconciles the \
         repository; then run the operation again."
    )
}

/// The password in Secret velero-repo-credentials does not open the repository: kopia and
/// restic keep the password a repository was made with, and Velero gives it the Secret's (the
/// key `repository-password`, pkg/repository/keys). Velero cannot change a repository's
/// password. `kind` is the repository's type (`kopia`, `restic`), its folder's name.
pub(crate) fn repository_password_invalid(
    repository: Option<&str>,
    kind: &str,
    namespace: &str,
) -> String {
    let which = repository.unwrap_or("NAME");
    format!(
        "Put back the password the repository was made with: `kubectl -n {namespace} edit secret \
         velero-repo-credentials` (key repository-password); Velero cannot change a repository's \
         password. If it is lost, the repository's backups cannot be restored: delete \
         BackupRepository {which} (`kubectl -n {namespace} delete backuprepository {which}`) and \
         its folder ({kind}/VOLUME-NAMESPACE under the location's prefix) so the next backup \
         makes a new one."
    )
}

/// The kubelet rejected a data-path pod: it asks for what node-agent's ConfigMap gives data-path
/// pods (`podResources`, read at node-agent's start: pkg/nodeagent/node_agent.go GetConfigs).
pub(crate) fn data_path_pod_rejected(
    config_map: Option<&str>,
    node: Option<&str>,
    namespace: &str,
) -> String {
    let node = node.unwrap_or("NODE");
    let where_from = match config_map {
        Some(cm) => format!(
            "podResources in node-agent's ConfigMap {cm} (`kubectl -n {namespace} edit configmap {cm}`)"
        ),
        None => "podResources in node-agent's ConfigMap (`--node-agent-configmap`)".to_string(),
    };
    format!(
        "Data-path pods ask for the resources of {where_from}: lower them under what node {node} \
         can allocate (`kubectl describe node {node}`, Allocatable), then restart its node-agent \
         (`kubectl -n {namespace} delete pod -l name=node-agent --field-selector \
         spec.nodeName={node}`). Velero cancels the operation and never retries it: run the \
         backup or restore again."
    )
}

/// A data-path pod was killed for memory: node-agent gives data-path pods the memory limit of
/// its ConfigMap's `podResources.memoryLimit` (read at node-agent's start), else none (a
/// LimitRange of Velero's namespace may still set one).
pub(crate) fn data_path_pod_out_of_memory(
    config_map: Option<&str>,
    limit: Option<&str>,
    namespace: &str,
) -> String {
    let now = limit.map(|l| format!(" (now {l})")).unwrap_or_default();
    let raise = match config_map {
        Some(cm) => format!(
            "Raise podResources.memoryLimit{now} in node-agent's ConfigMap {cm} (`kubectl -n \
             {namespace} edit configmap {cm}`)"
        ),
        None => format!(
            "node-agent names no ConfigMap, so its limit{now} comes from a LimitRange of \
             namespace {namespace} (`kubectl -n {namespace} get limitrange`): raise it there, or \
             give data-path pods podResources.memoryLimit in a ConfigMap named by node-agent's \
             --node-agent-configmap"
        ),
    };
    format!(
        "{raise}, then restart node-agent so it reads it (`kubectl -n {namespace} rollout restart \
         daemonset node-agent`). Velero does not retry the volume: run the backup or restore \
         again."
    )
}

/// A data-path pod ended in error (not for memory): what it said last says why.
pub(crate) fn data_path_pod_ended(pod: &str, gone: bool, namespace: &str) -> String {
    let logs = if gone {
        format!(
            "Velero deleted pod {pod}, so its log is gone: node-agent's log on its node names the \
             volume and what the pod reported (`kubectl -n {namespace} logs -l name=node-agent | \
             grep {pod}`)"
        )
    } else {
        format!("Read what it said last (`kubectl -n {namespace} logs {pod}`)")
    };
    format!(
        "{logs}; fix that, then run the backup or restore again (Velero does not retry the \
         volume)."
    )
}

/// A BackupRepository is NotReady.
pub(crate) fn repository_not_ready(name: Option<&str>, namespace: &str) -> String {
    let which = name.unwrap_or("NAME");
    format!(
        "Fix what its status.message says (often the storage location's bucket or credentials: \
         `velero backup-location get`), then `kubectl -n {namespace} delete backuprepository \
         {which}`: Velero makes it again, and connects it, on the next backup of its namespace."
    )
}

/// Where a repository's maintenance jobs get their resources: the server's
/// `--repo-maintenance-job-configmap`, and the repository's key in it
/// (`VOLUME-NAMESPACE-LOCATION-TYPE`, pkg/repository/maintenance getJobConfig).
pub(crate) struct MaintenanceConfig<'a> {
    pub config_map: &'a str,
    pub key: String,
}

/// The latest maintenance of a repository failed. `velero_1_14`: the repository has Velero
/// 1.14's shape, whose jobs' resources are the server's flags, not a ConfigMap.
pub(crate) fn repository_maintenance_failed(
    job: Option<&str>,
    namespace: &str,
    velero_1_14: bool,
    config: Option<MaintenanceConfig<'_>>,
) -> String {
    let log = job
        .map(|j| format!("`kubectl -n {namespace} logs job/{j}` says why; "))
        .unwrap_or_default();
    let resources = match (velero_1_14, config) {
        (true, _) => "the Velero server's flags (`--maintenance-job-cpu-limit`, \
                      `--maintenance-job-mem-limit` and their requests, Velero 1.14)"
            .to_string(),
        (false, Some(MaintenanceConfig { config_map, key })) => format!(
            "podResources of the maintenance jobs' ConfigMap {config_map}, under key {key} (this \
             repository) or global (`kubectl -n {namespace} edit configmap {config_map}`)"
        ),
        (false, None) => "the maintenance job's ConfigMap (`velero install \
                          --repo-maintenance-job-configmap`, see Velero's repository maintenance \
                          docs)"
            .to_string(),
    };
    format!(
        "{log}a job killed for memory or time needs more in {resources}; Velero retries at the \
         next maintenance interval."
    )
}

/// A volume operation that does not move, whose pod and node-agent look fine.
pub(crate) fn volume_operation_stalled(kind: &str, name: &str, node: Option<&str>) -> String {
    let on = node.map_or_else(String::new, |n| format!(" on node {n}"));
    format!(
        "`kubectl -n velero describe {} {name}` and the log of the node-agent{on} (in this \
         bundle under logs/node-agent/) say what {kind} {name} waits on: its data-path pod \
         pending, its repository not ready, or its data still moving slowly.",
        kind.to_lowercase()
    )
}

/// The data-path pod `namespace/name` does not start (`rule`: the id of the cause its events
/// and status show, as the rules name a workload pod's). Velero's exposer copies the
/// node-agent DaemonSet's volumes, image, ServiceAccount and environment into it
/// (pkg/exposer/image.go getInheritedPodInfo), so what it lacks is often what the node-agent
/// was given once.
pub(crate) fn data_path_pod_not_starting(pod: &str, rule: &str, prepare_timeout: &str) -> String {
    let (namespace, name) = pod.split_once('/').unwrap_or(("velero", pod));
    let fix = match rule {
        "volume-mount-failed" => format!(
            "provide the Secret or ConfigMap the mount error names (data-path pods mount every \
             volume of the node-agent DaemonSet, `kubectl -n {namespace} get ds node-agent -o \
             yaml`), or take that volume out of the DaemonSet"
        ),
        "pod-unschedulable" | "pvc-pending" => "make room where the message says it does not \
             fit (node-agent's ConfigMap podResources and loadAffinity place data-path pods), or \
             bind the claim it waits on"
            .to_string(),
        _ => "fix what its events and container status name".to_string(),
    };
    format!(
        "`kubectl -n {namespace} describe pod {name}` says why it does not start: {fix}. The \
         kubelet retries on its own; node-agent cancels the volume's operation once its prepare \
         timeout ({prepare_timeout}) has passed, and the next backup or restore tries again."
    )
}

/// A plugin's asynchronous operation that does not complete.
pub(crate) fn plugin_operation_waiting(kind: &str, name: &str, action: &str, id: &str) -> String {
    let lower = kind.to_lowercase();
    format!(
        "`velero {lower} describe {name} --details` shows operation {id} of plugin {action} with \
         its progress; the plugin's log lines in the Velero server (logs/velero/ in this bundle, \
         `plugin={action}`) and the objects it made (a DataUpload, a snapshot) say why it does \
         not complete. Velero gives up at the {lower}'s itemOperationTimeout (4h by default)."
    )
}

/// A data-path pod the scheduler could not place; `config_map` sets node-agent's
/// loadAffinity when known.
pub(crate) fn data_path_pod_unschedulable(config_map: Option<&str>, ns: &str) -> String {
    match config_map {
        Some(name) => format!(
            "Its loadAffinity matches no node that can run it: fix it with `kubectl -n {ns} edit \
             configmap {name}` (or remove it), restart node-agent (`kubectl -n {ns} rollout \
             restart daemonset node-agent`), then run the operation again."
        ),
        None => format!(
            "The scheduler's message says what no node offers: the pod takes node-agent's \
             tolerations and node selector (`kubectl -n {ns} get daemonset node-agent -o \
             yaml`) and the loadAffinity of its ConfigMap; fix that, then run it again."
        ),
    }
}

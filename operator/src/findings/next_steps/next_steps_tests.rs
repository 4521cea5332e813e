//! Every rule id has a fixture here with the next step it must give: the fixture directories of
//! the rule tests where one shows the failure, else a Restore laid out in a few lines; a test
//! fails when a rule of `rules/` has no case. Then the steps themselves, as a rule words them.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::{AgentGap, node_agent_missing, quota_exceeded};
use crate::findings::{infrastructure::tests::load_infrastructure, rules::tests::load, *};

/// Restore `rs` of backup `nightly`, in namespace velero, with `status`.
fn restore(status: Value) -> Evidence {
    let mut e = Evidence::default();
    let target = json!({
        "kind": "Restore",
        "metadata": {"name": "rs", "namespace": "velero"},
        "spec": {"backupName": "nightly"},
        "status": status,
    });
    e.set_target("resources/restore.yaml", &target);
    e
}

/// A PartiallyFailed restore whose results file holds `message` for namespace shop.
fn refused(severity: &str, message: &str) -> Evidence {
    let mut e = restore(json!({"phase": "PartiallyFailed", "errors": 1}));
    e.results.add(
        "object-store/results.json",
        severity,
        "namespace shop",
        message,
    );
    e
}

/// The restore with data-path pod `rs-x` of PodVolumeRestore rs-x, its container `ended` so.
fn ended_data_path_pod(ended: Value) -> Evidence {
    let mut e = restore(json!({"phase": "PartiallyFailed", "errors": 1}));
    e.add_pod(
        "pods/rs-x.yaml",
        evidence::PodRole::DataPath,
        &json!({"metadata": {"name": "rs-x", "labels": {"velero.io/pod-volume-restore": "rs-x"}},
                "spec": {"containers": [{"name": "rs-x"}]},
                "status": {"phase": "Failed", "containerStatuses": [
                    {"name": "rs-x", "restartCount": 0, "state": {"terminated": ended}}]}}),
    );
    e
}

fn with_limit_range(mut e: Evidence) -> Evidence {
    let range = json!({
        "metadata": {"namespace": "shop", "name": "small"},
        "spec": {"limits": [{"type": "Container", "max": {"memory": "64Mi"}}]},
    });
    e.add_limit_range("resources/workloads/shop/limitrange/small.yaml", &range);
    e
}

fn with_attachment(mut e: Evidence) -> Evidence {
    let attachment = json!({
        "metadata": {"name": "csi-abc"},
        "spec": {"nodeName": "node-old", "source": {"persistentVolumeName": "pvc-123"}},
        "status": {"attached": true},
    });
    e.add_volume_attachment(&attachment);
    e
}

/// The Velero server run with `--repo-maintenance-job-configmap repo-jobs`.
fn with_maintenance_config_map(mut e: Evidence) -> Evidence {
    let server = json!({"spec": {"template": {"spec": {"containers": [{
        "name": "velero", "command": ["/velero"],
        "args": ["server", "--repo-maintenance-job-configmap", "repo-jobs"],
    }]}}}});
    e.infra.server_arguments = Some(arguments::WorkloadArguments::of_workload(
        "resources/deployment/velero.yaml",
        &server,
        "velero",
    ));
    e
}

fn mount_failed() -> Evidence {
    let mut e = restore(json!({"phase": "Completed"}));
    let pod = json!({
        "metadata": {"namespace": "shop", "name": "web-0"},
        "spec": {"nodeName": "n1"},
        "status": {"phase": "Pending"},
    });
    e.add_workload_pod("resources/workloads/shop/pod/web-0.yaml", &pod);
    let events = json!([{
        "type": "Warning", "reason": "FailedMount", "count": 3,
        "message": "MountVolume.SetUp failed for volume \"cfg\" : secret \"web-tls\" not found",
        "involvedObject": {"kind": "Pod", "namespace": "shop", "name": "web-0"},
        "lastTimestamp": "2026-05-01T12:00:00Z",
    }]);
    e.add_events("events/warnings-shop.yaml", &events);
    e
}

fn log_missing() -> Evidence {
    let mut e = restore(json!({"phase": "Completed"}));
    e.target.storage_location = Some("default".into());
    e.operation_log_missing = Some(MissingLog {
        key: "p/restores/rs/restore-rs-logs.gz".into(),
        why: "NoSuchKey".into(),
        stand_in: None,
    });
    e
}

/// (rule, its evidence, a part of the next step it must give).
/// A stall bundle of a Backup waiting on its plugins' operations.
fn stalled() -> Evidence {
    let mut e = Evidence::default();
    e.set_target(
        "resources/backup.yaml",
        &serde_json::json!({"kind": "Backup", "metadata": {"name": "b1", "namespace": "velero"},
            "status": {"phase": "WaitingForPluginOperations"}}),
    );
    e.target.stalled = Some(crate::findings::StalledEvidence {
        since: "2026-11-28T10:00:00Z".into(),
        still_for: std::time::Duration::from_secs(3600),
        taken_at: "2026-11-28T11:00:00Z".parse().unwrap(),
        withheld: None,
    });
    e
}

fn cases() -> Vec<(&'static str, Evidence, &'static str)> {
    let ws = "velero.io/change-storage-class";
    vec![
        (
            "operation-stalled",
            stalled(),
            "`velero backup describe b1 --details`",
        ),
        (
            "velero-server-restarted",
            load("server-restarted"),
            "--velero-pod-mem-limit",
        ),
        (
            "bsl-unavailable",
            load("bsl-unavailable"),
            "get bsl default -o yaml",
        ),
        (
            "failed-validation",
            load("bsl-unavailable"),
            "get restore from-gone-bucket -o yaml",
        ),
        (
            "plugin-crashed",
            load("plugin-crashed"),
            "`velero plugin get`",
        ),
        (
            "operation-log-missing",
            log_missing(),
            "BackupStorageLocation default for restores/rs/",
        ),
        (
            "node-agent-missing",
            load_infrastructure("node-agent-tainted"),
            "nodeAgent.tolerations",
        ),
        (
            "node-agent-restarted",
            load("node-agent-panic"),
            "logs node-agent-abcde --previous",
        ),
        (
            "repository-not-initialized",
            load("repository-not-initialized"),
            "get backuprepositories -l velero.io/volume-namespace=",
        ),
        (
            "repository-locked",
            load_infrastructure("repository-maintenance-failed"),
            "get jobs -l velero.io/repo-name",
        ),
        (
            "repository-password-invalid",
            load("repository-password-invalid"),
            "kubectl -n velero edit secret velero-repo-credentials",
        ),
        (
            "data-path-pod-rejected",
            load_infrastructure("data-path-pod-rejected"),
            "kubectl -n velero edit configmap vdo-node-agent-config",
        ),
        (
            "data-path-pod-out-of-memory",
            ended_data_path_pod(json!({"reason": "OOMKilled", "exitCode": 137})),
            "podResources.memoryLimit",
        ),
        (
            "data-path-pod-ended",
            ended_data_path_pod(json!({"reason": "Error", "exitCode": 1})),
            "`kubectl -n velero logs rs-x`",
        ),
        (
            "repository-not-ready",
            load_infrastructure("repository-not-ready"),
            "kubectl -n velero delete backuprepository shop-default-kopia",
        ),
        (
            "repository-maintenance-failed",
            load_infrastructure("repository-maintenance-failed"),
            "logs job/",
        ),
        (
            "repository-maintenance-failed",
            with_maintenance_config_map(load_infrastructure("repository-maintenance-failed")),
            "ConfigMap repo-jobs, under key shop-default-restic (this repository) or global \
             (`kubectl -n velero edit configmap repo-jobs`)",
        ),
        (
            "volume-operation-failed",
            load("node-agent-panic"),
            "kubectl -n velero logs node-agent-abcde`",
        ),
        (
            "volume-attach-failed",
            with_attachment(load("pvr-stuck-multi-attach")),
            "kubectl delete volumeattachment csi-abc",
        ),
        (
            "volume-mount-failed",
            mount_failed(),
            "kubectl -n shop describe pod web-0",
        ),
        ("pvc-pending", load("pvr-stuck-pvc-pending"), ws),
        (
            "pod-unschedulable",
            load("pvr-stuck-unschedulable"),
            "Make room for pod shop/db-0",
        ),
        (
            "init-container-before-restore-wait",
            load("pvr-stuck-init-before-restore-wait"),
            "`kubectl -n shop logs db-0 -c mesh-init --previous`",
        ),
        (
            "pod-not-ready",
            load("restored-pod-not-ready"),
            "cannot be pulled",
        ),
        (
            "pod-volume-restore-stuck",
            load("pvr-stuck-pvc-pending"),
            "restore-wait init container",
        ),
        (
            "volume-snapshot-content-error",
            load_infrastructure("snapshot-content-error"),
            "`kubectl get volumesnapshotcontent ",
        ),
        (
            "data-path-pod-unschedulable",
            load("data-mover-pod-unschedulable"),
            "`kubectl -n velero get daemonset node-agent -o yaml`",
        ),
        (
            "no-volume-snapshot-class",
            load_infrastructure("no-snapshot-class"),
            "`kubectl label volumesnapshotclass <class> velero.io/csi-volumesnapshot-class=true`",
        ),
        (
            "volume-snapshot-not-reconciled",
            load_infrastructure("snapshot-not-reconciled"),
            "`kubectl get pods -A | grep snapshot-controller`",
        ),
        (
            "csi-snapshot-timeout",
            load("snapshot-content-error"),
            "--csi-snapshot-timeout=30m",
        ),
        (
            "pod-volume-timeout",
            load("pvr-stuck-multi-attach"),
            // Explained by the stuck restore it waited on: no longer "raise the timeout".
            "Raising the timeout would only make it wait longer",
        ),
        (
            "item-operation-failed",
            load("dataupload-canceled"),
            "velero backup describe dm --details",
        ),
        (
            "expose-diagnosis",
            load("dataupload-canceled"),
            "--data-mover-prepare-timeout",
        ),
        (
            "quota-exceeded",
            load("restore-quota"),
            "kubectl -n shop edit resourcequota storage-quota",
        ),
        (
            "limit-range-refused",
            with_limit_range(refused(
                "errors",
                "error restoring pods/shop/web-0: pods \"web-0\" is forbidden: maximum memory \
                 usage per Container is 64Mi, but limit is 128Mi",
            )),
            "of LimitRange shop/small (`kubectl -n shop edit limitrange small`)",
        ),
        (
            "pod-security-refused",
            refused(
                "errors",
                "error restoring pods/shop/web-0: pods \"web-0\" is forbidden: violates \
                 PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false",
            ),
            "Namespace shop enforces Pod Security level restricted",
        ),
        (
            "admission-policy-denied",
            refused(
                "errors",
                "error restoring deployments.apps/shop/web: deployments.apps \"web\" is \
                 forbidden: ValidatingAdmissionPolicy 'no-latest' with binding 'shop' denied \
                 request: image tag latest",
            ),
            "kubectl get validatingadmissionpolicy no-latest -o yaml",
        ),
        (
            "webhook-denied",
            refused(
                "errors",
                "error restoring configmaps/shop/a: admission webhook \"deny.example.com\" \
                 denied the request: no",
            ),
            "Admission webhook deny.example.com",
        ),
        (
            "namespace-terminating",
            refused(
                "errors",
                "error restoring configmaps/shop/a: configmaps \"a\" is forbidden: unable to \
                 create new content in namespace shop because it is being terminated",
            ),
            "--namespace-mappings shop:shop-restored",
        ),
        (
            "immutable-field",
            refused(
                "errors",
                "error restoring services/shop/web: Service \"web\" is invalid: spec.clusterIPs[0]: \
                 Invalid value: []string{\"10.0.0.9\"}: may not change once set, field is immutable",
            ),
            "kubectl -n shop delete services web",
        ),
        (
            "rbac-forbidden",
            refused(
                "errors",
                "error restoring secrets/shop/a: secrets \"a\" is forbidden: User \
                 \"system:serviceaccount:velero:velero\" cannot create resource \"secrets\" in \
                 API group \"\" in the namespace \"shop\"",
            ),
            "--as system:serviceaccount:velero:velero",
        ),
        (
            "api-missing",
            refused(
                "errors",
                "error restoring widgets.example.com/shop/w1: the server could not find the \
                 requested resource",
            ),
            "--exclude-resources widgets.example.com",
        ),
        (
            "admission-refused",
            refused(
                "errors",
                "error restoring configmaps/shop/a: configmaps \"a\" is forbidden: not today",
            ),
            "take configmaps shop/a from `velero backup download nightly`",
        ),
        (
            "object-invalid",
            refused(
                "errors",
                "error restoring ingresses.networking.k8s.io/shop/web: Ingress \"web\" is \
                 invalid: spec.ingressClassName: Invalid value: \"old\"",
            ),
            "for ingresses.networking.k8s.io shop/web",
        ),
        (
            "item-action-error",
            refused(
                "errors",
                "error preparing pods/shop/web-0: rpc error: code = Unknown desc = boom",
            ),
            "--from-backup nightly --exclude-resources pods",
        ),
        (
            "pvc-not-found",
            refused(
                "errors",
                "error getting persistent volume claim for volume: persistentvolumeclaims \
                 \"data\" not found",
            ),
            "do not exclude persistentvolumeclaims",
        ),
        (
            "hooks-failed",
            restore(json!({"phase": "Completed",
                           "hookStatus": {"hooksAttempted": 2, "hooksFailed": 1}})),
            "velero restore describe rs --details",
        ),
        (
            "backup-not-whole",
            load("restore-backup-partial"),
            "create backup nightly-34 --wait",
        ),
        (
            "already-exists",
            load("restore-quota"),
            "--existing-resource-policy=update",
        ),
        (
            "failure-reason",
            restore(json!({"phase": "Failed", "failureReason": "something new"})),
            "`velero restore logs rs`",
        ),
        (
            "unclassified-errors",
            refused("errors", "a message no rule knows"),
            "`velero restore describe rs --details`",
        ),
        (
            "unclassified-warnings",
            refused("warnings", "a warning no rule knows"),
            "diagnosis.siteRules",
        ),
    ]
}

#[test]
fn every_rule_gives_its_next_step_on_its_fixture() {
    for (rule, evidence, expected) in cases() {
        let found = diagnose(&evidence);
        let finding = found.iter().find(|f| f.rule == rule).unwrap_or_else(|| {
            let rules: Vec<_> = found.iter().map(|f| f.rule).collect();
            panic!("{rule}: not found, only {rules:?}")
        });
        let step = finding
            .next_step
            .as_deref()
            .unwrap_or_else(|| panic!("{rule}: no next step ({})", finding.title));
        assert!(
            step.contains(expected),
            "{rule}: {step:?} lacks {expected:?}"
        );
        assert!(step.len() <= MAX_NEXT_STEP_CHARS, "{rule}: {step}");
    }
}

/// The rule ids of `rules/` as the catalogue lint reads them: kebab-case string literals of the
/// code before its tests.
fn rule_ids_in_code() -> BTreeSet<String> {
    let sources = [
        include_str!("../rules/data_path.rs"),
        include_str!("../rules/ended_pods.rs"),
        include_str!("../rules/items.rs"),
        include_str!("../rules/mod.rs"),
        include_str!("../rules/platform.rs"),
        include_str!("../rules/pods.rs"),
        include_str!("../rules/refusals.rs"),
        include_str!("../rules/exposes.rs"),
        include_str!("../rules/stalled.rs"),
        include_str!("../rules/volumes.rs"),
        include_str!("../rules/warnings.rs"),
    ];
    let mut ids = BTreeSet::new();
    for source in sources {
        let code = source.split("#[cfg(test)]").next().unwrap_or_default();
        for line in code.lines() {
            let line = line.split("//").next().unwrap_or_default();
            for literal in line.split('"').skip(1).step_by(2) {
                let kebab = literal.contains('-')
                    && literal
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
                if kebab && !literal.starts_with('-') && !literal.ends_with('-') {
                    ids.insert(literal.to_string());
                }
            }
        }
    }
    ids
}

#[test]
fn every_rule_of_the_code_has_a_next_step_case() {
    let in_code = rule_ids_in_code();
    let cased: BTreeSet<String> = cases().iter().map(|(r, ..)| r.to_string()).collect();
    let missing: Vec<_> = in_code.difference(&cased).collect();
    assert!(
        missing.is_empty(),
        "rules without a next-step case: {missing:?}"
    );
    let stale: Vec<_> = cased.difference(&in_code).collect();
    assert!(stale.is_empty(), "cases of no rule: {stale:?}");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/findings/rules");
    let files = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .filter(|name| !name.to_string_lossy().ends_with("_tests.rs"))
        .count();
    assert_eq!(
        files, 11,
        "a file was added to or taken from rules/: list it above"
    );
}

#[test]
fn a_refusal_names_what_refused_it_in_its_title() {
    for (rule, expected) in [
        (
            "webhook-denied",
            "1 object: denied by admission webhook deny.example.com",
        ),
        ("api-missing", "1 object: of widgets.example.com, an API"),
        (
            "limit-range-refused",
            "1 object: refused by LimitRange shop/small",
        ),
        (
            "pod-security-refused",
            "refused by Pod Security level restricted of namespace shop",
        ),
        (
            "admission-policy-denied",
            "denied by ValidatingAdmissionPolicy no-latest",
        ),
        (
            "namespace-terminating",
            "refused: namespace shop was being deleted",
        ),
        (
            "rbac-forbidden",
            "system:serviceaccount:velero:velero was not authorized",
        ),
    ] {
        let (_, evidence, _) = cases().into_iter().find(|(r, ..)| *r == rule).unwrap();
        let found = diagnose(&evidence);
        let finding = found.iter().find(|f| f.rule == rule).unwrap();
        assert!(
            finding.title.starts_with(expected) || finding.title.contains(expected),
            "{rule}: {}",
            finding.title
        );
    }
}

// The steps themselves, as a rule words them.

#[test]
fn a_quota_names_itself_and_the_filter_for_its_resource() {
    let step = quota_exceeded(
        "shop",
        "no-configmaps",
        &["count/configmaps".to_string()],
        Some("nightly"),
    );
    assert!(
        step.contains("kubectl -n shop edit resourcequota no-configmaps"),
        "{step}"
    );
    assert!(
        step.contains("velero restore create --from-backup nightly --exclude-resources configmaps"),
        "{step}"
    );
    let storage = quota_exceeded("db", "q", &["requests.storage".to_string()], None);
    assert!(storage.contains("--from-backup BACKUP --exclude-resources persistentvolumeclaims"));
    let other = quota_exceeded("db", "q", &["example.com/gpus".to_string()], None);
    assert!(!other.contains("--exclude-resources"), "{other}");
}

#[test]
fn node_agent_steps_follow_the_gap() {
    let taint = node_agent_missing("n1", "velero", AgentGap::Untolerated);
    assert!(taint.contains("nodeAgent.tolerations") && taint.contains("node n1"));
    let pending = AgentGap::PodNotRunning {
        pod: "na-1",
        reason: "",
        message: "",
    };
    let pod = node_agent_missing("n1", "velero", pending);
    assert!(pod.contains("kubectl -n velero describe pod na-1"));
    // The kubelet's message decides what to change, not the reason alone.
    let mount = AgentGap::PodNotRunning {
        pod: "na-1",
        reason: "CreateContainerError",
        message: "failed to generate container spec: path \"/var/lib/kubelet/pods\" is mounted on \"/\" but it is not a shared or slave mount",
    };
    let step = node_agent_missing("n1", "velero", mount);
    assert!(
        step.contains("/var/lib/kubelet/pods is not") && step.contains("mount --make-rshared /"),
        "{step}"
    );
    let secret = AgentGap::PodNotRunning {
        pod: "na-1",
        reason: "CreateContainerConfigError",
        message: "secret \"cloud-credentials\" not found",
    };
    let step = node_agent_missing("n1", "velero", secret);
    assert!(
        step.contains("names secret cloud-credentials")
            && step.contains("edit daemonset node-agent"),
        "{step}"
    );
    let image = AgentGap::PodNotRunning {
        pod: "na-1",
        reason: "ImagePullBackOff",
        message: "Back-off pulling image \"velero/velero:v9\"",
    };
    assert!(
        node_agent_missing("n1", "velero", image).contains("cannot pull image velero/velero:v9")
    );
    assert!(node_agent_missing("n1", "v", AgentGap::Placement).contains("nodeAgent.nodeSelector"));
    assert!(node_agent_missing("n1", "v", AgentGap::NodeNotReady).contains("describe node n1"));
    assert!(node_agent_missing("n1", "v", AgentGap::NodeGone).contains("gone"));
}

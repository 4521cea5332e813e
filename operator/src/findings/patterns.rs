//! The failure messages the rules key on, each the stable part of a message Velero (or a
//! library it runs: Kubernetes admission, kopia, restic, go-plugin) writes. Each was read in
//! Velero's release-1.18 source (see the comment on each); messages change between releases,
//! so only the part without names and values is matched.

/// A known failure message, wherever it shows (log line, results file, an object's status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Pattern {
    BslUnavailable,
    PluginExited,
    RpcUnavailable,
    ServerRestartedMidOperation,
    NodeAgentNotRunning,
    RepositoryNotInitialized,
    RepositoryLocked,
    /// The repository's password (Secret velero-repo-credentials) does not open it.
    RepositoryPasswordInvalid,
    RepositoryNotReady,
    GoPanic,
    /// The kubelet refused a pod at admission: a data-path pod that asks for more than its
    /// node has.
    PodRejected,
    DiagnoseExpose,
    /// Velero's expose diagnosis says the data-path pod could not be scheduled.
    ExposePodUnschedulable,
    PodVolumeTimeout,
    CsiSnapshotTimeout,
    /// Velero gave up on a VolumeSnapshot that no VolumeSnapshotContent with a snapshot handle
    /// ever answered. The rule leaves out the lines that quote a content's error.
    SnapshotNotReconciled,
    AsyncActionTimeout,
    AsyncOperationCanceled,
    QuotaExceeded,
    LimitRangeRefused,
    PodSecurityRefused,
    PolicyDenied,
    NamespaceTerminating,
    ImmutableField,
    WebhookDenied,
    ApiMissing,
    /// Refused by authorization: Velero's ServiceAccount may not do it.
    RbacForbidden,
    /// Refused by admission for a reason no other pattern names (`... is forbidden: ...`).
    AdmissionRefused,
    /// Refused by the API server's validation (`... is invalid: ...`).
    ObjectInvalid,
    ItemActionError,
    /// No VolumeSnapshotClass Velero may use for a claim's driver (none labelled, or none).
    NoSnapshotClass,
    PvcNotFound,
    AlreadyExists,
}

/// A known failure message, wherever it was seen, for the rules that key on [`Pattern`]s.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Mention {
    pub pattern: Pattern,
    pub quote: String,
    pub file: String,
    pub line: Option<u64>,
    /// The operation (`Kind/name`) whose status says it, when an operation's.
    pub operation: Option<String>,
    /// The node of the log or operation it came from.
    pub node: Option<String>,
}

/// A pattern matches when every one of its parts appears in the text.
struct Needle {
    pattern: Pattern,
    parts: &'static [&'static str],
}

const NEEDLES: &[Needle] = &[
    // pkg/controller/backup_storage_location_controller.go:226
    // `BackupStorageLocation %q is unavailable`
    Needle {
        pattern: Pattern::BslUnavailable,
        parts: &["BackupStorageLocation \"", "\" is unavailable"],
    },
    // pkg/controller/restore_controller.go:398 (restore validationErrors)
    Needle {
        pattern: Pattern::BslUnavailable,
        parts: &["is unavailable, cannot retrieve the backup"],
    },
    // hashicorp/go-plugin client.go logs `plugin process exited` at error level when a plugin
    // dies; Velero's server log carries it (plugins are its child processes).
    Needle {
        pattern: Pattern::PluginExited,
        parts: &["plugin process exited", "error="],
    },
    Needle {
        pattern: Pattern::PluginExited,
        parts: &["plugin process exited", "\"error\":"],
    },
    // gRPC status of a call into a plugin whose process is gone.
    Needle {
        pattern: Pattern::RpcUnavailable,
        parts: &["rpc error: code = Unavailable"],
    },
    // pkg/cmd/server/server.go:991/1016 (backup/restore failureReason: `found a backup with
    // status %q during the server starting, mark it as %q`) and 1056-1184 (DataUpload/
    // DataDownload/PVB/PVR messages: `... during the velero server starting, mark it as
    // cancel`). The node-agent's own `get a legacy podvolumerestore with status %q during the
    // server starting` (pkg/cmd/cli/nodeagent/server.go:639) is not the Velero server's.
    Needle {
        pattern: Pattern::ServerRestartedMidOperation,
        parts: &[
            "found a ",
            " with status ",
            "during the server starting, mark it as",
        ],
    },
    Needle {
        pattern: Pattern::ServerRestartedMidOperation,
        parts: &["during the velero server starting, mark it as"],
    },
    // pkg/nodeagent/node_agent.go:122 (backup) and pkg/podvolume/restorer.go:225 (restore).
    Needle {
        pattern: Pattern::NodeAgentNotRunning,
        parts: &["daemonset pod not found in running state in node"],
    },
    Needle {
        pattern: Pattern::NodeAgentNotRunning,
        parts: &["node-agent pod is not running in node"],
    },
    // kopia repo/connect.go ErrRepositoryNotInitialized, wrapped by Velero's data path.
    Needle {
        pattern: Pattern::RepositoryNotInitialized,
        parts: &["repository not initialized in the provided storage"],
    },
    // restic `unable to create lock in backend: repository is already locked exclusively by`
    // (pkg/repository/provider/restic.go:53 passes it on as is).
    Needle {
        pattern: Pattern::RepositoryLocked,
        parts: &["repository is already locked"],
    },
    // kopia repo/format ErrInvalidPassword, wrapped by Velero's data path ("error to connect to
    // repository: unable to create format manager: invalid repository password").
    Needle {
        pattern: Pattern::RepositoryPasswordInvalid,
        parts: &["invalid repository password"],
    },
    // restic's own words (`Fatal: wrong password or no key found`), which Velero
    // passes on from the restic command of a restic repository (pkg/restic/exec_commands.go).
    Needle {
        pattern: Pattern::RepositoryPasswordInvalid,
        parts: &["wrong password or no key found"],
    },
    // pkg/repository/backup_repo_op.go:83 and pkg/repository/ensurer.go:138/141.
    Needle {
        pattern: Pattern::RepositoryNotReady,
        parts: &["backup repository is not ready"],
    },
    Needle {
        pattern: Pattern::RepositoryNotReady,
        parts: &["failed to wait BackupRepository"],
    },
    // pkg/controller/data_upload_controller.go:305/879, data_download_controller.go:299/819,
    // pod_volume_backup_controller.go:266/491, pod_volume_restore_controller.go:280/506:
    // `[Diagnose DU expose]`, `[Diagnose DD expose]`, `[Diagnose PVB expose]`,
    // `[Diagnose PVR expose]`, at warning level.
    Needle {
        pattern: Pattern::PodRejected,
        // The kubelet's admission (status.message "Pod was rejected: Node didn't have enough
        // resource: cpu, requested: ..., capacity: ..."), which the node-agent logs as the
        // data-path pod's abnormal state (pkg/util/kube/pod.go:153).
        parts: &["Pod was rejected: "],
    },
    Needle {
        pattern: Pattern::DiagnoseExpose,
        parts: &["[Diagnose ", " expose]"],
    },
    // pkg/util/kube/pod.go DiagnosePod (1.16+): `Pod condition %s, status %s, reason %s,
    // message %s`, one line of the block.
    Needle {
        pattern: Pattern::ExposePodUnschedulable,
        parts: &[
            "[Diagnose ",
            "Pod condition PodScheduled, status False, reason Unschedulable, message ",
        ],
    },
    // pkg/podvolume/backupper.go:418 and restorer.go:234.
    Needle {
        pattern: Pattern::PodVolumeTimeout,
        parts: &["timed out waiting for all PodVolume"],
    },
    // pkg/util/csi/volume_snapshot.go:710/714.
    Needle {
        pattern: Pattern::CsiSnapshotTimeout,
        parts: &["Timed out awaiting reconciliation of volumesnapshot"],
    },
    Needle {
        pattern: Pattern::CsiSnapshotTimeout,
        parts: &["CSI got timed out with error"],
    },
    // The same line's plain form, `Timed out awaiting reconciliation of volumesnapshot
    // <ns>/<name>`: written only when no content bound to the snapshot holds an error (the
    // other form, `... of VolumeSnapshot, VolumeSnapshotContent <name> has error`, quotes it).
    Needle {
        pattern: Pattern::SnapshotNotReconciled,
        parts: &["Timed out awaiting reconciliation of volumesnapshot "],
    },
    // pkg/backup/actions/csi/pvc_action.go:365 (1.17+): `Failed to wait for VolumeSnapshot
    // <ns>/<name> to become ReadyToUse within timeout <d>: <why>`. The claim's action writes it
    // whatever ended the wait; seen on 1.18.3 with the snapshot controller stopped, where the
    // wait's last poll failed on the client's rate limiter, so the plain line above never came.
    Needle {
        pattern: Pattern::SnapshotNotReconciled,
        parts: &[
            "Failed to wait for VolumeSnapshot ",
            " to become ReadyToUse within timeout",
        ],
    },
    Needle {
        pattern: Pattern::CsiSnapshotTimeout,
        parts: &[
            "Failed to wait for VolumeSnapshot ",
            " to become ReadyToUse within timeout",
        ],
    },
    // pkg/controller/backup_operations_controller.go:366, restore_operations_controller.go:332
    // (itemoperations.json status.error only).
    Needle {
        pattern: Pattern::AsyncActionTimeout,
        parts: &["Asynchronous action timed out"],
    },
    // pkg/backup/actions/csi/pvc_action.go:504, pkg/restore/actions/csi/pvc_action.go:260.
    Needle {
        pattern: Pattern::AsyncOperationCanceled,
        parts: &["DataUpload is canceled"],
    },
    Needle {
        pattern: Pattern::AsyncOperationCanceled,
        parts: &["DataDownload is canceled"],
    },
    // Kubernetes ResourceQuota admission: `exceeded quota: <name>, requested: ...`.
    Needle {
        pattern: Pattern::QuotaExceeded,
        parts: &["exceeded quota: "],
    },
    // Kubernetes' LimitRanger (plugin/pkg/admission/limitranger/admission.go:315-381, v1.36):
    // `minimum|maximum <resource> usage per <Container|Pod|PersistentVolumeClaim> is <q>, but
    // request|limit is <q>` or `... is <q>.  No request|limit is specified`, and `<resource>
    // max limit to request ratio per <type> is <q>, but ...`.
    Needle {
        pattern: Pattern::LimitRangeRefused,
        parts: &[" usage per ", ", but "],
    },
    Needle {
        pattern: Pattern::LimitRangeRefused,
        parts: &[" usage per ", ".  No "],
    },
    Needle {
        pattern: Pattern::LimitRangeRefused,
        parts: &[" max limit to request ratio per "],
    },
    // k8s.io/pod-security-admission admission/admission.go:481: `violates PodSecurity %q: %s`.
    Needle {
        pattern: Pattern::PodSecurityRefused,
        parts: &["violates PodSecurity \""],
    },
    // k8s.io/apiserver pkg/admission/plugin/policy/validating/dispatcher.go:294/296:
    // `ValidatingAdmissionPolicy '%s' with binding '%s' denied request: %s`.
    Needle {
        pattern: Pattern::PolicyDenied,
        parts: &["ValidatingAdmissionPolicy '", "' denied request"],
    },
    Needle {
        pattern: Pattern::PolicyDenied,
        parts: &["ValidatingAdmissionPolicy '", " denied request: "],
    },
    // k8s.io/apiserver pkg/admission/plugin/namespace/lifecycle/admission.go:174.
    Needle {
        pattern: Pattern::NamespaceTerminating,
        parts: &[
            "unable to create new content in namespace ",
            "being terminated",
        ],
    },
    // k8s.io/apimachinery pkg/api/validation (ValidateImmutableField): `field is immutable`.
    Needle {
        pattern: Pattern::ImmutableField,
        parts: &["field is immutable"],
    },
    // k8s.io/apiserver endpoints/handlers/responsewriters/errors.go (forbidden): `<resource>
    // "<name>" is forbidden: User "<user>" cannot <verb> resource ...`.
    Needle {
        pattern: Pattern::RbacForbidden,
        parts: &["is forbidden: User \"", "\" cannot "],
    },
    // k8s.io/apiserver admission.NewForbidden: `<resource> "<name>" is forbidden: <reason>`.
    Needle {
        pattern: Pattern::AdmissionRefused,
        parts: &["\" is forbidden: "],
    },
    // k8s.io/apimachinery errors.NewInvalid: `<Kind> "<name>" is invalid: <field errors>`.
    Needle {
        pattern: Pattern::ObjectInvalid,
        parts: &["\" is invalid: "],
    },
    // Kubernetes API server: `admission webhook "<name>" denied the request`.
    Needle {
        pattern: Pattern::WebhookDenied,
        parts: &["admission webhook \"", "denied the request"],
    },
    // Kubernetes API server, for a resource whose API (CRD) is not served.
    Needle {
        pattern: Pattern::ApiMissing,
        parts: &["the server could not find the requested resource"],
    },
    // pkg/restore/restore.go:1341 (`error preparing %s: %v`, from a restore item action over
    // gRPC) and pkg/backup/item_backupper.go:405 (`error executing custom action`).
    Needle {
        pattern: Pattern::ItemActionError,
        parts: &["error preparing ", "rpc error: code = "],
    },
    Needle {
        pattern: Pattern::ItemActionError,
        parts: &["error executing custom action (groupResource="],
    },
    // pkg/util/csi/volume_snapshot.go:451 (`failed to get VolumeSnapshotClass for provisioner
    // %s: ensure that the desired VolumeSnapshotClass has the ... label`), wrapped by the
    // claim's action (`failed to get VolumeSnapshotClass for StorageClass %s: ...`), 1.14-1.18.
    Needle {
        pattern: Pattern::NoSnapshotClass,
        parts: &["failed to get VolumeSnapshotClass for "],
    },
    // pkg/podvolume/backupper.go:250 and restorer.go:182.
    Needle {
        pattern: Pattern::PvcNotFound,
        parts: &["error getting persistent volume claim for volume"],
    },
    // pkg/restore/restore.go:1622/1638 (restore results, warnings).
    Needle {
        pattern: Pattern::AlreadyExists,
        parts: &[
            "could not restore, ",
            "already exists. Warning: the in-cluster version is different",
        ],
    },
];

/// Every known pattern `text` shows, in the order of [`Pattern`], each once.
pub(crate) fn classify(text: &str) -> Vec<Pattern> {
    let mut found: Vec<Pattern> = if part_index().any_needle.is_match(text) {
        let present = parts_present(text);
        NEEDLES
            .iter()
            .zip(needle_parts())
            .filter(|(_, ids)| ids.iter().all(|&id| present & (1u128 << id) != 0))
            .map(|(n, _)| n.pattern)
            .collect()
    } else {
        Vec::new()
    };
    if crate::findings::text::is_go_crash(text) {
        found.push(Pattern::GoPanic);
    }
    found.sort();
    found.dedup();
    // A refusal is named once, by the most specific shape it has: `is forbidden:` and `is
    // invalid:` only name what nothing else does.
    if found.iter().any(|p| NAMED_REFUSALS.contains(p)) {
        found.retain(|p| !matches!(p, Pattern::AdmissionRefused | Pattern::ObjectInvalid));
    }
    found
}

/// Refusals whose message names what refused (or why), so the generic shapes step aside.
const NAMED_REFUSALS: [Pattern; 9] = [
    Pattern::RbacForbidden,
    Pattern::QuotaExceeded,
    Pattern::LimitRangeRefused,
    Pattern::PodSecurityRefused,
    Pattern::PolicyDenied,
    Pattern::NamespaceTerminating,
    Pattern::ImmutableField,
    Pattern::WebhookDenied,
    Pattern::ApiMissing,
];

/// Every distinct part of every needle, in one automaton: a line is read once for all of
/// them (warning and error lines of a 1 GiB log are millions), not once per part.
struct PartIndex {
    automaton: aho_corasick::AhoCorasick,
    /// Per needle, the ids (bits) of its parts.
    needles: Vec<Vec<u32>>,
    /// Each needle's longest part: a text holding none of them matches no needle, and that
    /// is known in one prefiltered scan, several times faster than the overlapping one
    /// (nearly every warning and error line of a big log is such a text).
    any_needle: aho_corasick::AhoCorasick,
}

fn part_index() -> &'static PartIndex {
    static INDEX: std::sync::LazyLock<PartIndex> = std::sync::LazyLock::new(|| {
        let mut parts: Vec<&'static str> = Vec::new();
        let needles = NEEDLES
            .iter()
            .map(|n| {
                n.parts
                    .iter()
                    .map(|p| match parts.iter().position(|q| q == p) {
                        Some(i) => i as u32,
                        None => {
                            parts.push(p);
                            (parts.len() - 1) as u32
                        }
                    })
                    .collect()
            })
            .collect();
        assert!(parts.len() <= 128, "a part's bit must fit in a u128");
        let automaton = aho_corasick::AhoCorasick::new(&parts).expect("literal parts");
        let longest: Vec<&str> = NEEDLES
            .iter()
            .map(|n| {
                *n.parts
                    .iter()
                    .max_by_key(|p| p.len())
                    .expect("a needle has parts")
            })
            .collect();
        // Leftmost: only then can the search use a packed (SIMD) prefilter.
        let any_needle = aho_corasick::AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::LeftmostFirst)
            .build(&longest)
            .expect("literal parts");
        PartIndex {
            automaton,
            needles,
            any_needle,
        }
    });
    &INDEX
}

fn needle_parts() -> &'static [Vec<u32>] {
    &part_index().needles
}

/// Which parts occur in `text`, as bits; overlapping occurrences count (one part may sit
/// inside another).
fn parts_present(text: &str) -> u128 {
    part_index()
        .automaton
        .find_overlapping_iter(text)
        .fold(0u128, |bits, m| bits | (1u128 << m.pattern().as_u32()))
}

/// The name after `in node ` in a node-agent-not-running message.
pub(crate) fn node_named(text: &str) -> Option<String> {
    let (_, rest) = text.split_once(" in node ")?;
    let name: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'))
        .collect();
    let name = name.trim_end_matches('.');
    (!name.is_empty()).then(|| name.to_string())
}

/// Why the kubelet rejected a pod: `Node didn't have enough resource: cpu` from "Pod was
/// rejected: Node didn't have enough resource: cpu, requested: 64000, ...".
pub(crate) fn rejection_reason(text: &str) -> Option<String> {
    let (_, rest) = text.split_once("Pod was rejected: ")?;
    let end = rest.find([',', ']', '/', '"']).unwrap_or(rest.len());
    let reason = rest[..end].trim();
    (!reason.is_empty()).then(|| reason.to_string())
}

/// A quote of `text` that shows why it matched `pattern`: its start when that holds the
/// pattern's words (or the text fits), else from the first of the words on, marked as cut. A
/// plugin's error wrapped in Velero's item-action prefix says what failed only past the
/// quote's first 200 bytes.
pub(crate) fn quote_of(text: &str, pattern: Pattern) -> String {
    use crate::findings::text::{MAX_QUOTE_BYTES, quote};
    if text.len() <= MAX_QUOTE_BYTES {
        return quote(text);
    }
    let first_part = NEEDLES
        .iter()
        .filter(|n| n.pattern == pattern)
        .flat_map(|n| {
            n.parts
                .iter()
                .filter_map(|p| text.find(p).map(|at| (at, p.len())))
        })
        .min();
    match first_part {
        Some((at, len)) if at + len > MAX_QUOTE_BYTES - 4 => quote(&format!("… {}", &text[at..])),
        _ => quote(text),
    }
}

/// The StorageClass and the driver (provisioner) of a `failed to get VolumeSnapshotClass for
/// StorageClass <class>: ... for provisioner <driver>: ...` message, each when named.
pub(crate) fn snapshot_class_wanted(text: &str) -> (Option<String>, Option<String>) {
    let named = |after: &str| {
        let (_, rest) = text.split_once(after)?;
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '/'))
            .take(253)
            .collect();
        (!name.is_empty()).then_some(name)
    };
    (
        named("VolumeSnapshotClass for StorageClass "),
        named("VolumeSnapshotClass for provisioner "),
    )
}

/// `<namespace>/<name>` of the VolumeSnapshot Velero gave up on, from `Timed out awaiting
/// reconciliation of volumesnapshot <ns>/<name>` or `Failed to wait for VolumeSnapshot
/// <ns>/<name> to become ReadyToUse`; None when the line quotes a content's error (then the
/// content's error is the cause, not an absent controller).
pub(crate) fn unreconciled_snapshot(text: &str) -> Option<String> {
    if text.contains("CSI got timed out with error") {
        return None;
    }
    let rest = [
        "Timed out awaiting reconciliation of volumesnapshot ",
        "Failed to wait for VolumeSnapshot ",
    ]
    .iter()
    .find_map(|p| text.split_once(p).map(|(_, rest)| rest))?;
    let name: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '/'))
        .take(253 + 64)
        .collect();
    let (ns, snapshot) = name.split_once('/')?;
    let plain = |s: &str| !s.is_empty() && !s.contains('/') && s != "." && s != "..";
    (plain(ns) && plain(snapshot)).then_some(name)
}

/// The kind in `could not restore, <Kind> "<name>" already exists` (or `<Kind>:<name>`).
pub(crate) fn already_existing_kind(text: &str) -> Option<String> {
    let (_, rest) = text.split_once("could not restore, ")?;
    let kind: String = rest
        .chars()
        .take_while(|c| !matches!(c, ' ' | ':' | '"'))
        .collect();
    (!kind.is_empty()).then_some(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_classified_by_their_stable_part() {
        assert_eq!(
            classify(
                "error restoring persistentvolumeclaims/shop/data: persistentvolumeclaims \"data\" is forbidden: exceeded quota: compute, requested: requests.storage=10Gi"
            ),
            [Pattern::QuotaExceeded]
        );
        assert_eq!(
            classify(
                "pod volume backup failed: error to initialize data path: repository not initialized in the provided storage"
            ),
            [Pattern::RepositoryNotInitialized]
        );
        assert!(classify("plugin process exited normally").is_empty());
        assert!(
            classify("get a legacy podvolumerestore with status \"InProgress\" during the server starting, mark it as \"Failed\"").is_empty(),
            "the node-agent restarting is not the Velero server restarting"
        );
        assert!(classify("level=info msg=\"all good\"").is_empty());
    }

    #[test]
    fn every_needle_is_found_past_the_first_scan() {
        for needle in NEEDLES {
            let text = format!("level=error msg=\"x {} y\"", needle.parts.join(" z "));
            assert!(
                classify(&text).contains(&needle.pattern),
                "{:?} in {text}",
                needle.pattern
            );
        }
    }

    #[test]
    fn a_rejection_is_read_to_its_reason() {
        assert_eq!(
            rejection_reason("Pod is in abnormal state Failed, message [Pod was rejected: Node didn't have enough resource: cpu, requested: 64000, used: 0, capacity: 2000/]").as_deref(),
            Some("Node didn't have enough resource: cpu")
        );
        assert_eq!(rejection_reason("Pod was rejected: "), None);
        assert_eq!(rejection_reason("all good"), None);
    }

    #[test]
    fn an_unreconciled_snapshot_is_named_only_by_the_plain_form() {
        let plain = "Timed out awaiting reconciliation of volumesnapshot shop/velero-data-db-0-x2k";
        assert_eq!(
            unreconciled_snapshot(plain).as_deref(),
            Some("shop/velero-data-db-0-x2k")
        );
        assert!(classify(plain).contains(&Pattern::SnapshotNotReconciled));
        assert!(classify(plain).contains(&Pattern::CsiSnapshotTimeout));
        let content_error = "Timed out awaiting reconciliation of VolumeSnapshot, \
             VolumeSnapshotContent snapcontent-1 has error: rpc error: code = Internal";
        assert!(!classify(content_error).contains(&Pattern::SnapshotNotReconciled));
        assert_eq!(unreconciled_snapshot(content_error), None);
        assert_eq!(
            unreconciled_snapshot("Timed out awaiting reconciliation of volumesnapshot /x"),
            None
        );
        assert_eq!(
            unreconciled_snapshot("Timed out awaiting reconciliation of volumesnapshot a/../b"),
            None
        );
        // 1.18.3, the wait's last poll refused by the client's rate limiter.
        let rate = "Failed to wait for VolumeSnapshot ns1/velero-data-db-0-zqd4v to become \
             ReadyToUse within timeout 15s: failed to get volumesnapshot ns1/velero-data-db-0-zqd4v: \
             client rate limiter Wait returned an error";
        assert_eq!(
            unreconciled_snapshot(rate).as_deref(),
            Some("ns1/velero-data-db-0-zqd4v")
        );
        assert!(classify(rate).contains(&Pattern::CsiSnapshotTimeout));
        let with_error = "Failed to wait for VolumeSnapshot ns1/v to become ReadyToUse within \
             timeout 10m0s: CSI got timed out with error: SnapshotLimitExceeded";
        assert_eq!(unreconciled_snapshot(with_error), None);
    }

    #[test]
    fn a_long_text_is_quoted_from_the_words_that_matched() {
        let long = format!(
            "error executing custom action (groupResource=persistentvolumeclaims, namespace=sc1, \
             name=data-web-0): rpc error: code = Unknown desc = {}failed to get VolumeSnapshotClass \
             for StorageClass vdo-csi: no class",
            "x".repeat(120)
        );
        let q = quote_of(&long, Pattern::NoSnapshotClass);
        assert!(
            q.starts_with("… failed to get VolumeSnapshotClass for StorageClass vdo-csi"),
            "{q}"
        );
        // The item action's own words are at its start: quoted from there.
        assert!(
            quote_of(&long, Pattern::ItemActionError).starts_with("error executing custom action")
        );
        assert_eq!(quote_of("short", Pattern::NoSnapshotClass), "short");
    }

    #[test]
    fn nodes_and_kinds_are_read_from_messages() {
        assert_eq!(
            node_named("daemonset pod not found in running state in node worker-2.").as_deref(),
            Some("worker-2")
        );
        assert_eq!(
            already_existing_kind("could not restore, ConfigMap \"app\" already exists. Warning: the in-cluster version is different than the backed-up version").as_deref(),
            Some("ConfigMap")
        );
        assert_eq!(
            already_existing_kind("could not restore, CustomResourceDefinition:widgets.example.com already exists. Warning: ...").as_deref(),
            Some("CustomResourceDefinition")
        );
    }
}

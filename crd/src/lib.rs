//! The `DebugBundle` API (`velerodebug.io/v1alpha1`): types only, no I/O.
//!
//! A DebugBundle names exactly one Velero Backup or Restore; the operator collects everything
//! relevant to it into a tar.gz in the BackupStorageLocation's object store and records where.

use jiff::SignedDuration;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, CustomResourceExt, KubeSchema};
use serde::{Deserialize, Serialize};

pub mod duration;
pub mod event_time;
pub mod manifest;
mod printable;
pub mod report_page;

pub use printable::printable;

pub const GROUP: &str = "velerodebug.io";
/// Finalizer that makes deleting a DebugBundle delete its archive first.
pub const FINALIZER: &str = "velerodebug.io/archive-cleanup";
/// At most this many warnings are kept in status; the archive's manifest has them all.
pub const MAX_STATUS_WARNINGS: usize = 50;
/// At most this many findings are kept in status, most probable cause first; summary.md and
/// the archive's manifest have them all.
pub const MAX_STATUS_FINDINGS: usize = 5;
/// A finding's title in status is cut to this many characters.
pub const MAX_STATUS_FINDING_TITLE: usize = 200;
pub const DEFAULT_MAX_LOG_BYTES_PER_CONTAINER: i64 = 16 * 1024 * 1024;
pub const MIN_LOG_BYTES_PER_CONTAINER: i64 = 1024;
pub const MAX_LOG_BYTES_PER_CONTAINER: i64 = 1024 * 1024 * 1024;
pub const DEFAULT_URL_TTL: &str = "24h";

/// Literals, so the CEL rule on `spec.urlTTL` and its message can be built with `concat!`.
macro_rules! url_ttl_min {
    () => {
        "1m"
    };
}
macro_rules! url_ttl_max {
    () => {
        "168h"
    };
}

/// The shortest validity of the download URL that `spec.urlTTL` admits, and its text. The
/// CRD's CEL rule, the operator (plan.rs) and the plugin's `--url-ttl` all check these.
pub const URL_TTL_MIN: SignedDuration = SignedDuration::from_mins(1);
pub const URL_TTL_MIN_TEXT: &str = url_ttl_min!();
/// The longest validity of the download URL (7 days), and its text.
pub const URL_TTL_MAX: SignedDuration = SignedDuration::from_hours(7 * 24);
pub const URL_TTL_MAX_TEXT: &str = url_ttl_max!();
const URL_TTL_CEL: &str = concat!(
    "duration(self) >= duration('",
    url_ttl_min!(),
    "') && duration(self) <= duration('",
    url_ttl_max!(),
    "')"
);
const URL_TTL_MESSAGE: &str = concat!(
    "urlTTL must be a duration between ",
    url_ttl_min!(),
    " and ",
    url_ttl_max!(),
    " (7d)"
);

/// Label on the DebugBundles the operator creates by itself for a failed Backup or Restore.
pub const LABEL_AUTO: &str = "velerodebug.io/auto";
/// Label on automatic DebugBundles: the uid of the Backup or Restore they are for.
pub const LABEL_TARGET_UID: &str = "velerodebug.io/target-uid";
/// Label on automatic DebugBundles made for a running Backup or Restore that stopped moving:
/// `stall` (bundles of a final phase do not carry it).
pub const LABEL_AUTO_REASON: &str = "velerodebug.io/auto-reason";
/// Annotation on a stall bundle: since when (RFC 3339) its operation had not moved.
pub const ANNOTATION_STALLED_SINCE: &str = "velerodebug.io/stalled-since";
/// Annotation on a stall bundle: the stalls withheld before it by the bound on stall bundles
/// an hour ("Backup ns/name, ..."), for its summary.
pub const ANNOTATION_STALLS_WITHHELD: &str = "velerodebug.io/stalls-withheld";
/// Annotation on a Backup or Restore: "false" means no automatic DebugBundle for it.
pub const ANNOTATION_AUTO_BUNDLE: &str = "velerodebug.io/auto-bundle";
/// Annotation naming the automatic DebugBundle made for a Backup or Restore, from before the
/// ledger: honoured where it is set, so no second bundle is made; never written.
pub const ANNOTATION_AUTO_BUNDLE_CREATED: &str = "velerodebug.io/auto-bundle-created";
/// ConfigMap in Velero's namespace (made by the Helm chart) that records the automatic
/// DebugBundles made: key the target's uid, value "<bundle name> <RFC 3339 time recorded>". It
/// outlives the bundles, so none is made twice, and the operator needs no write access to
/// Velero's Backups and Restores.
pub const AUTO_BUNDLE_LEDGER: &str = "velero-debug-auto-bundles";
/// ConfigMap in Velero's namespace (made by the Helm chart) that records what this install
/// wrote to its stores: the processes that wrote archives (`writer.<id>`) and the uploads
/// begun and not finished (`upload.<hash>`), so the garbage collector deletes only what it
/// can prove is ours (the operator's install_record.rs).
pub const INSTALL_RECORD: &str = "velero-debug-install";
/// ConfigMap in Velero's namespace (made by the Helm chart) where the operator keeps how the
/// pods Velero makes for its data path ended (data-path, data mover and maintenance pods):
/// Velero deletes them soon after, with the status that said why (the operator's recorder/).
pub const TERMINATION_RECORD: &str = "velero-debug-terminations";
/// Annotation on a pod the operator recorded (TERMINATION_RECORD): when it saw it end, RFC 3339.
pub const ANNOTATION_RECORDED_AT: &str = "velerodebug.io/recorded-at";
/// Annotation on a DebugBundle: each new value re-signs the download URL without collecting.
pub const ANNOTATION_REFRESH_URL: &str = "velerodebug.io/refresh-url";

/// A literal, so the CEL rules below can be built with `concat!`.
macro_rules! object_name_pattern {
    () => {
        "^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
    };
}

/// A Kubernetes object name (DNS-1123 subdomain, with at most [`MAX_OBJECT_NAME_LEN`]
/// characters): lowercase letters, digits, '-' and '.', starting and ending with a letter or
/// digit. The CRD checks the spec's names with it, and so does the operator.
pub const OBJECT_NAME_PATTERN: &str = object_name_pattern!();
pub const MAX_OBJECT_NAME_LEN: usize = 253;
const OBJECT_NAME_CEL: &str = concat!("self.matches('", object_name_pattern!(), "')");

/// RFC 3339 date-times, as the operator reads them (plan.rs); the fraction may be longer than
/// nanoseconds (the rest is dropped).
const SINCE_CEL: &str = "self.matches('^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}([.][0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$')";

/// What to collect for one Velero Backup or Restore.
// The printcolumn(...) groups repeat `type_ = ...`, which clippy mistakes for duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "velerodebug.io",
    version = "v1alpha1",
    kind = "DebugBundle",
    namespaced,
    status = "DebugBundleStatus",
    shortname = "vdb",
    category = "velero",
    derive = "PartialEq",
    derive = "Default",
    printcolumn(name = "Target", type_ = "string", json_path = ".status.target"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    ),
    printcolumn(
        name = "Size",
        type_ = "integer",
        json_path = ".status.archive.sizeBytes"
    ),
    // A string, not a date: kubectl shows dates as ages and a future one as <invalid>.
    printcolumn(
        name = "URL Expires",
        type_ = "string",
        json_path = ".status.downloadURLExpiresAt"
    ),
    printcolumn(
        name = "URL",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"DownloadURLValid\")].reason"
    ),
    printcolumn(
        name = "Finding",
        type_ = "string",
        json_path = ".status.findings[0].title"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(
    validation = Rule::new("has(self.backup) != has(self.restore)")
        .message("exactly one of spec.backup or spec.restore must be set")
        .reason(Reason::FieldValueInvalid),
    validation = Rule::new("self == oldSelf").message("spec is immutable; create a new DebugBundle")
)]
#[serde(rename_all = "camelCase")]
pub struct DebugBundleSpec {
    /// Name of the Velero Backup to collect for (in this namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(OBJECT_NAME_CEL).message("backup must be a Kubernetes object name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit"))]
    #[schemars(length(max = MAX_OBJECT_NAME_LEN))]
    pub backup: Option<String>,
    /// Name of the Velero Restore to collect for (in this namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(OBJECT_NAME_CEL).message("restore must be a Kubernetes object name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit"))]
    #[schemars(length(max = MAX_OBJECT_NAME_LEN))]
    pub restore: Option<String>,
    /// Collect logs written at or after this time (RFC 3339, such as 2026-11-20T10:00:00Z).
    /// Default: the target's start minus a margin.
    // A string checked by a pattern, parsed in the operator's plan step. Not `format:
    // date-time`: the API server admits such a value on create that its CEL rules then fail
    // to convert on every update (ten fraction digits, a lower-case 't'), so the bundle could
    // never get its finalizer; nor `Time`, which fails to read what the API server admits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(SINCE_CEL).message("since must be an RFC 3339 date-time such as 2026-11-20T10:00:00Z"))]
    #[schemars(length(max = 64))]
    pub since: Option<String>,
    /// Upper bound of each container log kept in the bundle (read from the window's start);
    /// a longer log keeps its first and its last half, with a marked line between. 1 KiB to
    /// 1 GiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = MIN_LOG_BYTES_PER_CONTAINER, max = MAX_LOG_BYTES_PER_CONTAINER))]
    pub max_log_bytes_per_container: Option<i64>,
    /// Also collect the log of the previous instance of restarted containers. Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_logs: Option<bool>,
    /// Which node-agent pods' logs to collect. Default Involved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_agent_logs: Option<NodeAgentLogs>,
    /// Collect events of the collected objects and Warning events of the covered namespaces.
    /// Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<bool>,
    /// BackupStorageLocation to upload to. Default: the one holding the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(OBJECT_NAME_CEL).message("storageLocation must be a Kubernetes object name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit"))]
    #[schemars(length(max = MAX_OBJECT_NAME_LEN))]
    pub storage_location: Option<String>,
    /// How long the presigned download URL stays valid, as a duration ("24h"); at most 168h.
    #[serde(default, rename = "urlTTL", skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(URL_TTL_CEL).message(URL_TTL_MESSAGE))]
    #[schemars(length(max = 32))]
    pub url_ttl: Option<String>,
    /// How long after it finished (Completed or Failed) the DebugBundle, and with it its
    /// archive, is deleted, as a duration ("72h"). Default: the operator's setting for manual
    /// or automatic bundles. "0s" deletes it as soon as it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("duration(self) >= duration('0s')")
        .message("ttlAfterFinished must be a duration of 0s or more, such as 72h"))]
    #[schemars(length(max = 32))]
    pub ttl_after_finished: Option<String>,
}

/// Which node-agent pods' logs a bundle holds.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, schemars::JsonSchema,
)]
pub enum NodeAgentLogs {
    /// Only the pods on nodes named by the target's PodVolumeBackups/Restores and
    /// DataUploads/Downloads.
    #[default]
    Involved,
    All,
    None,
}

#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, schemars::JsonSchema,
)]
pub enum Phase {
    #[default]
    Pending,
    Collecting,
    Uploading,
    Completed,
    Failed,
}

impl Phase {
    pub fn is_finished(self) -> bool {
        matches!(self, Phase::Completed | Phase::Failed)
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DebugBundleStatus {
    /// `restore/<name>` or `backup/<name>`, for display.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<ArchiveStatus>,
    #[serde(
        default,
        rename = "downloadURL",
        skip_serializing_if = "Option::is_none"
    )]
    pub download_url: Option<String>,
    #[serde(
        default,
        rename = "downloadURLExpiresAt",
        skip_serializing_if = "Option::is_none"
    )]
    pub download_url_expires_at: Option<Time>,
    /// Attempts so far: each is counted when its collection starts, or when it fails before
    /// (with a failure that may pass, such as an object store unreachable). At the operator's
    /// limit the bundle is Failed, also when the attempts were cut short by the operator
    /// stopping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<i32>,
    /// After a failure that may pass, the next attempt waits until this time (backoff).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<Time>,
    /// What could not be collected and why (at most MAX_STATUS_WARNINGS; all are in the
    /// archive's manifest.json).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub warnings: Vec<String>,
    /// The most probable causes of what went wrong with the target, most probable first (at most
    /// MAX_STATUS_FINDINGS; summary.md and manifest.json have them all, with their quotes).
    /// Written once the archive is built, so a bundle whose upload failed keeps them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 5))]
    pub findings: Vec<StatusFinding>,
    /// The multipart upload under way. An attempt cut short (the operator killed) leaves it
    /// here, and the next attempt aborts it, so no unfinished upload stays in the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<String>,
    /// The last value of the refresh-url annotation the download URL was re-signed for.
    #[serde(
        default,
        rename = "urlRefreshedFor",
        skip_serializing_if = "Option::is_none"
    )]
    pub url_refreshed_for: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// Collection steps done, of `itemsTotal`.
    pub items_done: i32,
    pub items_total: i32,
    /// The step under way: `target`, `object-store`, `operations`, `workloads`,
    /// `cluster-state`, `events`, `logs`, `summary` (summary.md, manifest.json, closing the
    /// archive), then `upload`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// While uploading: bytes of the archive sent so far, of `bytesTotal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_uploaded: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_total: Option<i64>,
}

/// One finding of the diagnosis, short: the archive's summary.md has its quote.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusFinding {
    /// `error` (made the operation fail or lose data) or `warning`.
    #[schemars(length(max = 16))]
    pub severity: String,
    /// The rule's stable id, such as `bsl-unavailable` (the metric's `rule` label).
    #[schemars(length(max = 64))]
    pub rule: String,
    /// One line (at most MAX_STATUS_FINDING_TITLE characters).
    #[schemars(length(max = 200))]
    pub title: String,
    /// The bundle file that proves it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub file: Option<String>,
    /// 1-based line in `file`, when it is a log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<i64>,
    /// What to do about it: the object, and the setting or command that addresses it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512))]
    pub next_step: Option<String>,
}

/// Where the archive was written.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ArchiveStatus {
    pub storage_location: String,
    pub bucket: String,
    pub key: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub file_count: i32,
}

/// True once the bundle can be downloaded.
pub const CONDITION_READY: &str = "Ready";
/// True once the bundle finished, Completed or Failed (reason: `Completed`, or why it failed),
/// so `kubectl wait --for=condition=Finished` ends either way; `Ready` then says which.
pub const CONDITION_FINISHED: &str = "Finished";
/// True while the download URL in status works; False (reason URLExpired) once it expired.
pub const CONDITION_DOWNLOAD_URL_VALID: &str = "DownloadURLValid";

/// Machine-readable condition reasons, so automation can branch on them.
pub mod reasons {
    pub const TARGET_NOT_FOUND: &str = "TargetNotFound";
    pub const STORAGE_LOCATION_NOT_FOUND: &str = "StorageLocationNotFound";
    pub const STORAGE_LOCATION_READ_ONLY: &str = "StorageLocationReadOnly";
    pub const CREDENTIALS_INVALID: &str = "CredentialsInvalid";
    pub const UPLOAD_FAILED: &str = "UploadFailed";
    pub const INVALID_SPEC: &str = "InvalidSpec";
    pub const UNSUPPORTED_STORAGE_LOCATION: &str = "UnsupportedStorageLocation";
    pub const STORAGE_UNREACHABLE: &str = "StorageUnreachable";
    /// The storage location's bucket does not exist (NoSuchBucket): Velero shows such a
    /// location as Unavailable. The bundle's findings are still in its status.
    pub const BUCKET_NOT_FOUND: &str = "BucketNotFound";
    pub const CERTIFICATE_UNTRUSTED: &str = "CertificateUntrusted";
    /// The Kubernetes API refused or failed a request the bundle needs (retried while it
    /// may pass).
    pub const KUBERNETES_API_ERROR: &str = "KubernetesAPIError";
    pub const WAITING_FOR_TARGET: &str = "WaitingForTarget";
    pub const COLLECTING: &str = "Collecting";
    pub const UPLOADING: &str = "Uploading";
    pub const COMPLETED: &str = "Completed";
    pub const ARCHIVE_FAILED: &str = "ArchiveFailed";
    /// An attempt was cut short (the operator crashed, was killed or stopped while collecting
    /// the bundle); Failed once that happened as often as the operator's attempt limit.
    pub const OPERATOR_STOPPED_WHILE_COLLECTING: &str = "OperatorStoppedWhileCollecting";
    /// The operator hit a bug (a panic) while making the bundle: that bundle failed, the
    /// operator runs on. The message says where; please report it.
    pub const INTERNAL_ERROR: &str = "InternalError";
    /// Waiting for one of the operator's collection slots.
    pub const QUEUED: &str = "Queued";
    /// An attempt holding a collection slot did not finish within the operator's
    /// BUNDLE_DEADLINE: stopped (its upload aborted) and retried up to the attempt limit.
    pub const DEADLINE_EXCEEDED: &str = "DeadlineExceeded";
    pub const URL_VALID: &str = "URLValid";
    pub const URL_EXPIRED: &str = "URLExpired";
}

/// The CRD as YAML, as `crdgen` writes it to `deploy/`.
pub fn crd_yaml() -> String {
    serde_yaml::to_string(&DebugBundle::crd()).expect("the CRD always serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deploy_crd_matches_rust_types() {
        let on_disk = include_str!("../../deploy/crd.yaml");
        assert_eq!(
            on_disk,
            crd_yaml(),
            "deploy/crd.yaml drifted from the Rust types: run `make crd`"
        );
    }

    #[test]
    fn crd_has_the_cel_rules_the_api_server_enforces() {
        let yaml = crd_yaml();
        assert!(yaml.contains("has(self.backup) != has(self.restore)"));
        assert!(yaml.contains("self == oldSelf"));
        let name_rule = format!("rule: self.matches('{OBJECT_NAME_PATTERN}')");
        assert_eq!(
            yaml.matches(&name_rule).count(),
            3,
            "backup, restore, storageLocation"
        );
        assert_eq!(yaml.matches("maxLength: 253").count(), 3);
        assert!(yaml.contains("maximum: 1073741824.0"));
    }

    #[test]
    fn the_url_ttl_rule_and_the_bounds_agree() {
        assert_eq!(duration::parse(URL_TTL_MIN_TEXT), Ok(URL_TTL_MIN));
        assert_eq!(duration::parse(URL_TTL_MAX_TEXT), Ok(URL_TTL_MAX));
        assert_eq!(
            URL_TTL_MAX,
            SignedDuration::from_hours(7 * 24),
            "the message says 7d"
        );
        let yaml = crd_yaml();
        let start = yaml.find("urlTTL:\n").unwrap();
        let end = start + yaml[start..].find("type: object").unwrap();
        let url_ttl = &yaml[start..end];
        let rule = format!(
            "rule: duration(self) >= duration('{URL_TTL_MIN_TEXT}') && duration(self) <= duration('{URL_TTL_MAX_TEXT}')"
        );
        assert!(url_ttl.contains(&rule), "{url_ttl}");
        let message = format!(
            "message: urlTTL must be a duration between {URL_TTL_MIN_TEXT} and {URL_TTL_MAX_TEXT} (7d)"
        );
        assert!(url_ttl.contains(&message), "{url_ttl}");
        let description = format!("at most {URL_TTL_MAX_TEXT}.");
        assert!(url_ttl.contains(&description), "{url_ttl}");
        let default = duration::parse(DEFAULT_URL_TTL).unwrap();
        assert!((URL_TTL_MIN..=URL_TTL_MAX).contains(&default));
    }

    #[test]
    fn findings_in_status_are_short_and_shown_in_a_column() {
        let yaml = crd_yaml();
        assert!(yaml.contains("- jsonPath: .status.findings[0].title\n      name: Finding\n"));
        let start = yaml.find("              findings:").unwrap();
        let end = start + yaml[start..].find("nextAttemptAt:").unwrap();
        let findings = &yaml[start..end];
        assert!(findings.contains("maxItems: 5"), "{findings}");
        assert!(findings.contains("maxLength: 200"), "{findings}");
        assert!(
            !findings.contains("quote:"),
            "no quotes in status: {findings}"
        );
    }

    #[test]
    fn since_is_a_string_bound_by_a_pattern_not_a_date_time_format() {
        let odd = "2026-11-20t10:00:00.1234567890z";
        let spec: DebugBundleSpec = serde_yaml::from_str(&format!("since: '{odd}'")).unwrap();
        assert_eq!(spec.since.as_deref(), Some(odd));
        let yaml = crd_yaml();
        let start = yaml.find("since:").unwrap();
        let end = start + yaml[start..].find("storageLocation:").unwrap();
        let since = &yaml[start..end];
        assert!(!since.contains("format: date-time"), "{since}");
        assert!(since.contains("self.matches('^[0-9]{4}-"), "{since}");
        assert!(since.contains("maxLength: 64"), "{since}");
    }

    #[test]
    fn spec_round_trips_with_camel_case_names() {
        let spec: DebugBundleSpec = serde_yaml::from_str(
            "restore: r1\nmaxLogBytesPerContainer: 2048\nnodeAgentLogs: All\nurlTTL: 1h\n",
        )
        .unwrap();
        assert_eq!(spec.restore.as_deref(), Some("r1"));
        assert_eq!(spec.max_log_bytes_per_container, Some(2048));
        assert_eq!(spec.node_agent_logs, Some(NodeAgentLogs::All));
        assert_eq!(spec.url_ttl.as_deref(), Some("1h"));
    }
}

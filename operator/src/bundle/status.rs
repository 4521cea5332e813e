//! Pure builders of the status a DebugBundle moves through, so every transition is
//! unit-tested without a server; the pipeline (run.rs) and the lifecycle only write what they
//! return.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use velero_debug_crd::{
    ArchiveStatus, CONDITION_DOWNLOAD_URL_VALID, CONDITION_FINISHED, CONDITION_READY, DebugBundle,
    DebugBundleStatus, MAX_STATUS_WARNINGS, Phase, Progress, StatusFinding, printable, reasons,
};

use crate::storage::SignedUrl;

fn condition(
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    generation: i64,
    now: Timestamp,
) -> Condition {
    Condition {
        type_: type_.into(),
        status: if status { "True" } else { "False" }.into(),
        reason: reason.into(),
        message: printable(message).chars().take(1024).collect(),
        observed_generation: Some(generation),
        last_transition_time: Time(now),
    }
}

/// Replaces the condition of the same type, keeping its transition time when only the message changes.
fn with_condition(mut status: DebugBundleStatus, new: Condition) -> DebugBundleStatus {
    if let Some(old) = status.conditions.iter_mut().find(|c| c.type_ == new.type_) {
        let unchanged = old.status == new.status && old.reason == new.reason;
        let transition = old.last_transition_time.clone();
        *old = new;
        if unchanged {
            old.last_transition_time = transition;
        }
    } else {
        status.conditions.push(new);
    }
    status
}

/// `status.progress.step` while the archive is sent.
pub(crate) const UPLOAD_STEP: &str = "upload";

/// The status a bundle moves to, built from the one it has: the same inputs always give the
/// same status, so every transition is unit-tested without a server.
pub(crate) struct Transition<'a> {
    pub prev: &'a DebugBundleStatus,
    pub generation: i64,
    /// `restore/<name>` or `backup/<name>`.
    pub target: &'a str,
    pub now: Timestamp,
}

impl Transition<'_> {
    fn base(&self) -> DebugBundleStatus {
        let mut status = self.prev.clone();
        status.target = Some(self.target.to_string());
        status.observed_generation = Some(self.generation);
        status
    }

    /// The `Finished` condition, set with the last phase (Completed or Failed), after `Ready`
    /// (which stays the first condition).
    fn finished(
        &self,
        status: DebugBundleStatus,
        reason: &str,
        message: &str,
    ) -> DebugBundleStatus {
        let c = condition(
            CONDITION_FINISHED,
            true,
            reason,
            message,
            self.generation,
            self.now,
        );
        with_condition(status, c)
    }

    fn ready(
        &self,
        status: DebugBundleStatus,
        ok: bool,
        reason: &str,
        message: &str,
    ) -> DebugBundleStatus {
        let c = condition(
            CONDITION_READY,
            ok,
            reason,
            message,
            self.generation,
            self.now,
        );
        with_condition(status, c)
    }

    pub fn waiting_for_target(&self) -> DebugBundleStatus {
        let mut status = self.base();
        status.phase = Some(Phase::Pending);
        let msg = format!("{} does not exist (yet); waiting for it", self.target);
        self.ready(status, false, reasons::WAITING_FOR_TARGET, &msg)
    }

    /// Waiting for one of the operator's collection slots.
    pub fn queued(&self, slots: u16) -> DebugBundleStatus {
        let mut status = self.base();
        status.phase = Some(Phase::Pending);
        let msg = format!("waiting for one of the operator's {slots} collection slots");
        self.ready(status, false, reasons::QUEUED, &msg)
    }

    /// Collection starts: the attempt is counted first, so one that never ends (the operator
    /// killed by what it collects) still counts towards the limit.
    pub fn collecting(&self, total_steps: i32, first_step: &str) -> DebugBundleStatus {
        let mut status = self.base();
        status.phase = Some(Phase::Collecting);
        status.attempts = Some(status.attempts.unwrap_or(0) + 1);
        status.next_attempt_at = None;
        status.start_time = Some(Time(self.now));
        status.completion_time = None;
        status.progress = Some(Progress {
            items_done: 0,
            items_total: total_steps,
            step: Some(first_step.to_string()),
            ..Progress::default()
        });
        let msg = format!("collecting for {}", self.target);
        self.ready(status, false, reasons::COLLECTING, &msg)
    }

    pub fn uploading(&self, key: &str, upload_id: &str, size: u64) -> DebugBundleStatus {
        let mut status = self.base();
        status.phase = Some(Phase::Uploading);
        status.upload_id = Some(upload_id.to_string());
        let p = status.progress.get_or_insert_with(Progress::default);
        p.items_done = p.items_total;
        p.step = Some(UPLOAD_STEP.into());
        p.bytes_uploaded = Some(0);
        p.bytes_total = Some(i64::try_from(size).unwrap_or(i64::MAX));
        let msg = format!("uploading {key}");
        self.ready(status, false, reasons::UPLOADING, &msg)
    }

    pub fn completed(&self, done: Completed<'_>) -> DebugBundleStatus {
        let mut status = self.base();
        status.phase = Some(Phase::Completed);
        status.completion_time = Some(Time(self.now));
        status = url_signed(status, done.url, self.generation, self.now);
        status.warnings = bounded_warnings(done.warnings);
        status.findings = done.findings;
        status.attempts = None;
        status.next_attempt_at = None;
        status.upload_id = None;
        if let Some(p) = status.progress.as_mut() {
            p.step = None;
            p.bytes_uploaded = p.bytes_total;
        }
        let msg = format!(
            "bundle of {} files ({} bytes) at s3://{}/{}{}",
            done.archive.file_count,
            done.archive.size_bytes,
            done.archive.bucket,
            done.archive.key,
            if done.warnings.is_empty() {
                String::new()
            } else {
                format!("; {} item(s) could not be collected", done.warnings.len())
            }
        );
        status.archive = Some(done.archive);
        let status = self.ready(status, true, reasons::COMPLETED, &msg);
        self.finished(status, reasons::COMPLETED, &msg)
    }

    pub fn failed(&self, reason: &str, message: &str) -> DebugBundleStatus {
        let mut status = self.base();
        status.phase = Some(Phase::Failed);
        status.completion_time = Some(Time(self.now));
        // Every path to Failed aborted its upload.
        status.upload_id = None;
        status.next_attempt_at = None;
        let status = self.ready(status, false, reason, message);
        self.finished(status, reason, message)
    }

    /// A failure that may pass: back to Pending until the backoff passed, the attempt counted.
    pub fn retrying(&self, reason: &str, message: &str) -> DebugBundleStatus {
        let mut status = self.base();
        let attempts = attempts_with_failure(self.prev);
        status.phase = Some(Phase::Pending);
        status.attempts = Some(attempts);
        status.next_attempt_at = Some(Time(self.now + backoff(attempts)));
        let msg = format!("attempt {attempts} failed: {message}");
        self.ready(status, false, reason, &msg)
    }

    /// The last attempt was cut short (see [`was_cut_short`]): back to Pending, said why.
    pub fn cut_short(&self) -> DebugBundleStatus {
        let mut status = self.base();
        status.phase = Some(Phase::Pending);
        let attempts = status.attempts.unwrap_or(0);
        let msg = format!(
            "attempt {attempts} was cut short: the operator stopped while collecting (crash, out-of-memory kill or restart); trying again"
        );
        self.ready(
            status,
            false,
            reasons::OPERATOR_STOPPED_WHILE_COLLECTING,
            &msg,
        )
    }
}

/// Whether the bundle last said it waits for its target (reason WaitingForTarget).
pub(crate) fn is_waiting_for_target(status: &DebugBundleStatus) -> bool {
    status
        .conditions
        .iter()
        .any(|c| c.type_ == CONDITION_READY && c.reason == reasons::WAITING_FOR_TARGET)
}

/// Whether an attempt was under way when the operator stopped: the status says Collecting or
/// Uploading when a reconcile starts (each attempt ends in another phase).
pub(crate) fn was_cut_short(status: &DebugBundleStatus) -> bool {
    matches!(status.phase, Some(Phase::Collecting | Phase::Uploading))
}

/// The attempts after one more failure: one failing during collection was counted when it
/// started.
pub(crate) fn attempts_with_failure(status: &DebugBundleStatus) -> i32 {
    let attempts = status.attempts.unwrap_or(0);
    if was_cut_short(status) {
        attempts
    } else {
        attempts + 1
    }
}

pub(crate) struct Completed<'a> {
    pub archive: ArchiveStatus,
    pub url: SignedUrl,
    pub warnings: &'a [String],
    /// The top findings, short (diagnosis::for_status).
    pub findings: Vec<StatusFinding>,
}

/// A status with the findings of the archive this attempt built: a bundle that fails or is
/// retried after collection (its upload failed) keeps them, where `kubectl describe` shows
/// them. Without a new diagnosis the status keeps what it had.
pub(crate) fn with_findings(
    mut status: DebugBundleStatus,
    findings: Option<Vec<StatusFinding>>,
) -> DebugBundleStatus {
    if let Some(findings) = findings {
        status.findings = findings;
    }
    status
}

fn url_signed(
    mut status: DebugBundleStatus,
    url: SignedUrl,
    generation: i64,
    now: Timestamp,
) -> DebugBundleStatus {
    let expires_at = url.expires_at(now);
    status.download_url = Some(url.url);
    status.download_url_expires_at = Some(Time(expires_at));
    let mut msg = format!("the download URL is valid until {expires_at}");
    if url.lifetime.cut_by_credentials {
        msg.push_str(
            ", when the object-store credentials it is signed with expire (before the urlTTL asked for); set annotation velerodebug.io/refresh-url to a new value for a new one",
        );
    }
    let valid = condition(
        CONDITION_DOWNLOAD_URL_VALID,
        true,
        reasons::URL_VALID,
        &msg,
        generation,
        now,
    );
    with_condition(status, valid)
}

/// A new URL for a Completed bundle, signed for the given annotation value.
pub(crate) fn url_refreshed(
    bundle: &DebugBundle,
    url: SignedUrl,
    refreshed_for: &str,
    now: Timestamp,
) -> DebugBundleStatus {
    let mut status = bundle.status.clone().unwrap_or_default();
    let generation = bundle.metadata.generation.unwrap_or(0);
    status.url_refreshed_for = Some(refreshed_for.to_string());
    url_signed(status, url, generation, now)
}

/// The status of a bundle this operator cannot read (watched.rs): Failed, naming the field;
/// built from nothing, since the status it has may be what cannot be read.
pub(crate) fn unreadable(generation: i64, error: &str, now: Timestamp) -> DebugBundleStatus {
    let status = DebugBundleStatus {
        phase: Some(Phase::Failed),
        observed_generation: Some(generation),
        completion_time: Some(Time(now)),
        ..Default::default()
    };
    let msg = format!(
        "this operator cannot read the DebugBundle: {error}; delete it and create it anew with values the CRD describes"
    );
    let failed = condition(
        CONDITION_READY,
        false,
        reasons::INVALID_SPEC,
        &msg,
        generation,
        now,
    );
    let finished = condition(
        CONDITION_FINISHED,
        true,
        reasons::INVALID_SPEC,
        &msg,
        generation,
        now,
    );
    with_condition(with_condition(status, failed), finished)
}

/// The URL in status no longer works: said in a condition (and the URL column), not left as a
/// silently broken link.
pub(crate) fn url_expired(bundle: &DebugBundle, now: Timestamp) -> DebugBundleStatus {
    let status = bundle.status.clone().unwrap_or_default();
    let generation = bundle.metadata.generation.unwrap_or(0);
    let when = status
        .download_url_expires_at
        .as_ref()
        .map(|t| t.0.to_string())
        .unwrap_or_default();
    let msg = format!(
        "the download URL expired at {when}; set annotation velerodebug.io/refresh-url to a new value for a new one"
    );
    let expired = condition(
        CONDITION_DOWNLOAD_URL_VALID,
        false,
        reasons::URL_EXPIRED,
        &msg,
        generation,
        now,
    );
    with_condition(status, expired)
}

/// How long a bundle still waits for its next attempt after a transient failure.
pub(crate) fn backoff_left(
    status: Option<&DebugBundleStatus>,
    now: Timestamp,
) -> Option<std::time::Duration> {
    let next = status?.next_attempt_at.as_ref()?.0;
    let wait = next.duration_since(now);
    (wait > jiff::SignedDuration::ZERO).then(|| wait.unsigned_abs())
}

/// Waits between attempts: 10 s, doubling, at most 5 min.
pub(crate) fn backoff(attempts: i32) -> jiff::SignedDuration {
    let exp = attempts.clamp(1, 6) - 1;
    jiff::SignedDuration::from_secs((10i64 << exp).min(300))
}

/// Status keeps the first warnings and says how many more the manifest has.
/// Each is escaped: `describe` and `kubectl get -o yaml` show them on terminals.
pub(crate) fn bounded_warnings(warnings: &[String]) -> Vec<String> {
    let shown =
        |w: &[String]| -> Vec<String> { w.iter().map(|w| printable(w).into_owned()).collect() };
    if warnings.len() <= MAX_STATUS_WARNINGS {
        return shown(warnings);
    }
    let mut out = shown(&warnings[..MAX_STATUS_WARNINGS - 1]);
    out.push(format!(
        "... and {} more in manifest.json",
        warnings.len() - (MAX_STATUS_WARNINGS - 1)
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle() -> DebugBundle {
        serde_yaml::from_str(
            "apiVersion: velerodebug.io/v1alpha1\nkind: DebugBundle\nmetadata: {name: b, namespace: velero, generation: 1}\nspec: {restore: r1}\n",
        )
        .unwrap()
    }

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn at<'a>(prev: &'a DebugBundleStatus, now: &str) -> Transition<'a> {
        Transition {
            prev,
            generation: 1,
            target: "restore/r1",
            now: t(now),
        }
    }

    #[test]
    fn failure_records_reason_phase_and_generation() {
        let s = at(&DebugBundleStatus::default(), "2026-11-22T10:00:00Z")
            .failed(reasons::TARGET_NOT_FOUND, "restore r1 not found");
        assert_eq!(s.phase, Some(Phase::Failed));
        assert_eq!(s.observed_generation, Some(1));
        let c = &s.conditions[0];
        assert_eq!((c.type_.as_str(), c.status.as_str()), ("Ready", "False"));
        assert_eq!(c.reason, "TargetNotFound");
    }

    #[test]
    fn transition_time_is_kept_while_the_reason_stays() {
        let first = at(&DebugBundleStatus::default(), "2026-11-22T10:00:00Z").waiting_for_target();
        let again = at(&first, "2026-11-22T10:00:30Z").waiting_for_target();
        assert_eq!(
            again.conditions[0].last_transition_time.0,
            t("2026-11-22T10:00:00Z")
        );
        let collecting = at(&again, "2026-11-22T10:01:00Z").collecting(7, "target");
        assert_eq!(
            collecting.conditions[0].last_transition_time.0,
            t("2026-11-22T10:01:00Z")
        );
        assert_eq!(collecting.conditions.len(), 1);
    }

    #[test]
    fn retries_are_counted() {
        let first = at(&DebugBundleStatus::default(), "2026-11-22T10:00:00Z")
            .retrying("StorageUnreachable", "refused");
        let s = at(&first, "2026-11-22T10:00:10Z").retrying("StorageUnreachable", "refused");
        assert_eq!(s.attempts, Some(2));
        assert_eq!(
            s.next_attempt_at.as_ref().unwrap().0,
            t("2026-11-22T10:00:30Z"),
            "the second retry waits 20 s"
        );
        assert_eq!(backoff(1).as_secs(), 10);
        assert_eq!(backoff(30).as_secs(), 300);
        assert!(s.conditions[0].message.starts_with("attempt 2 failed"));
        assert_eq!(
            backoff_left(Some(&s), t("2026-11-22T10:00:25Z")),
            Some(std::time::Duration::from_secs(5))
        );
        assert_eq!(backoff_left(Some(&s), t("2026-11-22T10:00:30Z")), None);
    }

    #[test]
    fn url_expiry_and_refresh_flip_the_url_condition() {
        let mut b = bundle();
        let mut s = DebugBundleStatus {
            phase: Some(Phase::Completed),
            ..Default::default()
        };
        s = url_signed(
            s,
            signed("http://old", 3600, false),
            1,
            t("2026-11-22T10:00:00Z"),
        );
        b.status = Some(s);
        let expired = url_expired(&b, t("2026-11-22T11:00:01Z"));
        let c = &expired.conditions[0];
        assert_eq!(
            (c.type_.as_str(), c.status.as_str(), c.reason.as_str()),
            ("DownloadURLValid", "False", "URLExpired")
        );
        assert!(c.message.contains("2026-11-22T11:00:00Z"), "{}", c.message);
        b.status = Some(expired);
        let refreshed = url_refreshed(
            &b,
            signed("http://new", 86_400, false),
            "1",
            t("2026-11-22T11:00:05Z"),
        );
        assert_eq!(refreshed.download_url.as_deref(), Some("http://new"));
        assert_eq!(
            refreshed.download_url_expires_at.as_ref().map(|e| e.0),
            Some(t("2026-11-23T11:00:05Z"))
        );
        assert!(
            !refreshed.conditions[0].message.contains("credentials"),
            "{}",
            refreshed.conditions[0].message
        );
        assert_eq!(refreshed.url_refreshed_for.as_deref(), Some("1"));
        assert_eq!(refreshed.conditions.len(), 1);
        assert_eq!(refreshed.conditions[0].status, "True");
        assert_eq!(refreshed.phase, Some(Phase::Completed));
    }

    #[test]
    fn warnings_in_status_are_bounded() {
        let many: Vec<String> = (0..80).map(|i| format!("w{i}")).collect();
        let kept = bounded_warnings(&many);
        assert_eq!(kept.len(), MAX_STATUS_WARNINGS);
        assert_eq!(kept.last().unwrap(), "... and 31 more in manifest.json");
        let hostile = bounded_warnings(&["event: \u{1b}[2Jgone\u{9b}".to_string()]);
        assert_eq!(hostile, ["event: \\u{1b}[2Jgone\\u{9b}"]);
    }

    #[test]
    fn an_attempt_is_counted_when_collection_starts_and_once_only() {
        let fresh = DebugBundleStatus::default();
        let collecting = at(&fresh, "2026-11-22T10:00:00Z").collecting(7, "target");
        assert_eq!(collecting.attempts, Some(1));
        assert!(was_cut_short(&collecting));
        // Failing during collection: already counted; back to Pending for the backoff.
        let retrying = at(&collecting, "2026-11-22T10:01:00Z").retrying("StorageUnreachable", "x");
        assert_eq!(retrying.attempts, Some(1));
        assert_eq!(retrying.phase, Some(Phase::Pending));
        assert!(!was_cut_short(&retrying));
        // Failing before collection counts then.
        let again = at(&retrying, "2026-11-22T10:02:00Z").retrying("StorageUnreachable", "x");
        assert_eq!(again.attempts, Some(2));
        let cut = at(&collecting, "2026-11-22T10:03:00Z").cut_short();
        assert_eq!(cut.attempts, Some(1));
        assert_eq!(cut.phase, Some(Phase::Pending));
        assert_eq!(
            cut.conditions[0].reason,
            reasons::OPERATOR_STOPPED_WHILE_COLLECTING
        );
    }

    #[test]
    fn an_unreadable_bundle_fails_naming_what_cannot_be_read() {
        let s = unreadable(3, "spec.since: bad", t("2026-11-22T10:00:00Z"));
        assert_eq!(s.phase, Some(Phase::Failed));
        assert_eq!(s.observed_generation, Some(3));
        assert_eq!(s.conditions[0].reason, reasons::INVALID_SPEC);
        assert!(s.conditions[0].message.contains("spec.since: bad"));
    }

    #[test]
    fn finished_is_true_on_completed_and_on_failed_after_ready() {
        let prev = DebugBundleStatus::default();
        let failed = at(&prev, "2026-11-22T10:00:00Z").failed(reasons::TARGET_NOT_FOUND, "gone");
        let types: Vec<&str> = failed.conditions.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, ["Ready", "Finished"]);
        let finished = &failed.conditions[1];
        assert_eq!(
            (finished.status.as_str(), finished.reason.as_str()),
            ("True", reasons::TARGET_NOT_FOUND)
        );
        let collecting = at(&prev, "2026-11-22T10:00:00Z").collecting(7, "target");
        assert!(
            !collecting.conditions.iter().any(|c| c.type_ == "Finished"),
            "not finished while collecting"
        );
    }

    fn archive() -> ArchiveStatus {
        ArchiveStatus {
            storage_location: "default".into(),
            bucket: "b".into(),
            key: "k".into(),
            size_bytes: 10,
            sha256: "s".into(),
            file_count: 3,
        }
    }

    fn status_finding(title: &str) -> StatusFinding {
        StatusFinding {
            severity: "error".into(),
            rule: "bsl-unavailable".into(),
            title: title.into(),
            file: Some("resources/backupstoragelocations/default.yaml".into()),
            line: None,
            next_step: None,
        }
    }

    fn signed(url: &str, seconds: u64, cut_by_credentials: bool) -> SignedUrl {
        SignedUrl {
            url: url.into(),
            lifetime: crate::storage::port::UrlLifetime {
                valid_for: std::time::Duration::from_secs(seconds),
                cut_by_credentials,
            },
        }
    }

    #[test]
    fn a_url_cut_short_by_its_credentials_says_so() {
        let collecting =
            at(&DebugBundleStatus::default(), "2026-11-22T10:00:00Z").collecting(7, "target");
        let done = at(&collecting, "2026-11-22T10:02:00Z").completed(Completed {
            archive: archive(),
            url: signed("http://u", 900, true),
            warnings: &[],
            findings: vec![],
        });
        assert_eq!(
            done.download_url_expires_at.as_ref().map(|e| e.0),
            Some(t("2026-11-22T10:17:00Z"))
        );
        let c = &done
            .conditions
            .iter()
            .find(|c| c.type_ == "DownloadURLValid")
            .unwrap();
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("True", "URLValid"));
        assert!(
            c.message.contains("2026-11-22T10:17:00Z") && c.message.contains("credentials"),
            "{}",
            c.message
        );
    }

    #[test]
    fn completed_writes_the_findings() {
        let collecting =
            at(&DebugBundleStatus::default(), "2026-11-22T10:00:00Z").collecting(7, "target");
        let done = at(&collecting, "2026-11-22T10:02:00Z").completed(Completed {
            archive: archive(),
            url: signed("http://u", 86_400, false),
            warnings: &[],
            findings: vec![status_finding("BSL default is Unavailable")],
        });
        assert_eq!(done.phase, Some(Phase::Completed));
        assert_eq!(
            done.findings,
            [status_finding("BSL default is Unavailable")]
        );
        let json = serde_json::to_value(&done).unwrap();
        assert_eq!(
            json["findings"][0]["title"], "BSL default is Unavailable",
            "the Finding column's path: .status.findings[0].title"
        );
        assert_eq!(
            json["findings"][0]["file"],
            "resources/backupstoragelocations/default.yaml"
        );
        assert!(json["findings"][0].get("line").is_none());
    }

    #[test]
    fn findings_survive_a_failed_or_retried_upload() {
        let collecting =
            at(&DebugBundleStatus::default(), "2026-11-22T10:00:00Z").collecting(7, "target");
        let uploading = at(&collecting, "2026-11-22T10:01:00Z").uploading("k", "u1", 4096);
        let found = vec![status_finding("the repository is locked")];
        let t = at(&uploading, "2026-11-22T10:02:00Z");
        let failed = with_findings(
            t.failed(reasons::UPLOAD_FAILED, "NoSuchBucket"),
            Some(found.clone()),
        );
        assert_eq!(failed.phase, Some(Phase::Failed));
        assert_eq!(failed.findings, found);
        let retrying = with_findings(
            t.retrying(reasons::STORAGE_UNREACHABLE, "refused"),
            Some(found.clone()),
        );
        assert_eq!(retrying.findings, found);
        // The next attempt's failure before its archive keeps them.
        let again = with_findings(
            at(&retrying, "2026-11-22T10:03:00Z").failed(reasons::STORAGE_UNREACHABLE, "x"),
            None,
        );
        assert_eq!(again.findings, found);
        // A failure before any archive has none.
        let early = with_findings(
            at(&DebugBundleStatus::default(), "2026-11-22T10:00:00Z")
                .failed(reasons::TARGET_NOT_FOUND, "gone"),
            None,
        );
        assert!(early.findings.is_empty());
        assert!(
            serde_json::to_value(&early)
                .unwrap()
                .get("findings")
                .is_none()
        );
    }

    #[test]
    fn progress_names_the_step_and_counts_bytes_while_uploading() {
        let prev = DebugBundleStatus::default();
        let collecting = at(&prev, "2026-11-22T10:00:00Z").collecting(7, "target");
        let p = collecting.progress.clone().unwrap();
        assert_eq!((p.items_done, p.step.as_deref()), (0, Some("target")));
        let uploading = at(&collecting, "2026-11-22T10:01:00Z").uploading("k", "u1", 4096);
        let p = uploading.progress.clone().unwrap();
        assert_eq!(p.items_done, 7);
        assert_eq!(p.step.as_deref(), Some(UPLOAD_STEP));
        assert_eq!((p.bytes_uploaded, p.bytes_total), (Some(0), Some(4096)));
    }
}

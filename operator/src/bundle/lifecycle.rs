//! What happens to a finished DebugBundle: retention (deleted once its TTL passed; the
//! finalizer then deletes the archive), a new download URL on a new value of the refresh-url
//! annotation, and an expired URL made visible in status. `due` is pure; `finished` carries
//! out what is due.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use kube::{
    Api, Resource, ResourceExt,
    runtime::{controller::Action, events::EventType},
};
use velero_debug_crd::{
    ANNOTATION_REFRESH_URL, CONDITION_DOWNLOAD_URL_VALID, DebugBundle, DebugBundleStatus,
    LABEL_AUTO, Phase, reasons,
};

use super::{dereference, error::Error, plan, status};
use crate::{
    config::Config,
    context::{Context, MANAGER},
    event_publisher::Said,
    kubernetes,
};

/// The retention of a bundle: its spec's, else the operator's default for its kind. A spec
/// value the operator cannot use (negative, or admitted by an older CRD) failed the bundle
/// InvalidSpec in the plan step; here it counts as unset, so it never keeps a bundle forever.
pub(crate) fn ttl(bundle: &DebugBundle, config: &Config) -> Option<Duration> {
    match plan::ttl_after_finished(&bundle.spec) {
        Ok(Some(ttl)) => return Some(ttl),
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(bundle = %bundle.name_any(), error = %e, "using the default retention")
        }
    }
    if bundle.labels().get(LABEL_AUTO).map(String::as_str) == Some("true") {
        config.ttl_auto
    } else {
        config.ttl_manual
    }
}

/// What is due for a finished bundle now.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Due {
    /// The TTL passed: delete the DebugBundle.
    pub delete: bool,
    /// Sign a new URL for this value of the refresh-url annotation.
    pub refresh_for: Option<String>,
    /// The URL expired and status does not say so yet.
    pub mark_url_expired: bool,
    /// When something is due next (TTL or URL expiry).
    pub requeue_after: Option<Duration>,
}

fn until(deadline: Timestamp, now: Timestamp) -> Option<Duration> {
    let left = deadline.duration_since(now);
    // One second late rather than early: a requeue that comes too soon only requeues again.
    (left > SignedDuration::ZERO).then(|| left.unsigned_abs() + Duration::from_secs(1))
}

pub(crate) fn due(bundle: &DebugBundle, ttl: Option<Duration>, now: Timestamp) -> Due {
    let Some(status) = bundle.status.as_ref() else {
        return Due::default();
    };
    let finished_at = status
        .completion_time
        .as_ref()
        .map(|t| t.0)
        .or_else(|| bundle.metadata.creation_timestamp.as_ref().map(|t| t.0))
        .unwrap_or(now);
    let mut next: Vec<Duration> = Vec::new();
    if let Some(ttl) = ttl {
        let deadline = finished_at + SignedDuration::try_from(ttl).unwrap_or(SignedDuration::MAX);
        match until(deadline, now) {
            None => {
                return Due {
                    delete: true,
                    ..Due::default()
                };
            }
            Some(left) => next.push(left),
        }
    }
    let mut due = Due::default();
    if status.phase == Some(Phase::Completed) {
        let wanted = bundle.annotations().get(ANNOTATION_REFRESH_URL);
        if let Some(value) = wanted.filter(|v| status.url_refreshed_for.as_ref() != Some(*v)) {
            due.refresh_for = Some(value.clone());
        } else if let Some(expires) = status.download_url_expires_at.as_ref().map(|t| t.0) {
            match until(expires, now) {
                Some(left) => next.push(left),
                None => {
                    let shown = status
                        .conditions
                        .iter()
                        .any(|c| c.type_ == CONDITION_DOWNLOAD_URL_VALID && c.status == "False");
                    due.mark_url_expired = !shown;
                }
            }
        }
    }
    due.requeue_after = next.into_iter().min();
    due
}

/// Carries out what is due for a finished bundle; nothing once this process's term is over.
pub(super) async fn finished(bundle: &DebugBundle, ctx: &Context) -> Result<Action, Error> {
    let now = Timestamp::now();
    let due = due(bundle, ttl(bundle, &ctx.config), now);
    let api: Api<DebugBundle> =
        Api::namespaced(ctx.client.clone(), &bundle.namespace().unwrap_or_default());
    if due.delete {
        tracing::info!(bundle = %bundle.name_any(), "retention passed; deleting the bundle");
        let note = "ttlAfterFinished passed; deleting the bundle and its archive";
        ctx.still_leading()?;
        event(ctx, bundle, EventType::Normal, "Expired", note).await;
        kubernetes::delete_if_present(&api, &bundle.name_any()).await?;
        return Ok(Action::await_change());
    }
    if let Some(value) = due.refresh_for {
        let status = refresh_url(bundle, ctx, &value, now).await?;
        ctx.still_leading()?;
        kubernetes::apply_status(&api, &bundle.name_any(), MANAGER, &status).await?;
    } else if due.mark_url_expired {
        let status = status::url_expired(bundle, now);
        ctx.still_leading()?;
        kubernetes::apply_status(&api, &bundle.name_any(), MANAGER, &status).await?;
    }
    Ok(due
        .requeue_after
        .map(Action::requeue)
        .unwrap_or_else(Action::await_change))
}

async fn event(ctx: &Context, bundle: &DebugBundle, type_: EventType, reason: &str, note: &str) {
    let regarding = bundle.object_ref(&());
    let said = Said {
        type_,
        reason,
        action: "Lifecycle",
        note,
    };
    ctx.events.publish(&regarding, None, said).await;
}

/// The status with a new URL, or, when none can be signed, with the refresh recorded as done
/// so one bad value does not retry forever (a new annotation value tries again).
async fn refresh_url(
    bundle: &DebugBundle,
    ctx: &Context,
    value: &str,
    now: Timestamp,
) -> Result<DebugBundleStatus, Error> {
    let archive = bundle.status.as_ref().and_then(|s| s.archive.as_ref());
    let Some(archive) = archive else {
        return Ok(bundle.status.clone().unwrap_or_default());
    };
    let url_ttl = plan::url_ttl_or_default(&bundle.spec);
    let ns = bundle.namespace().unwrap_or_default();
    let store = if kubernetes::is_object_name(&archive.storage_location) {
        dereference::archive_store(
            &ctx.client,
            &ns,
            &archive.storage_location,
            &ctx.config.trusted_storage_hosts,
        )
        .await?
    } else {
        None
    };
    // Only the bundle's own key is signed (see cleanup.rs): status could name any object.
    let signed = match store {
        Some(store) => {
            let own_key = store.location().archive_key(
                &ns,
                &bundle.name_any(),
                &bundle.uid().unwrap_or_default(),
            );
            if archive.key == own_key {
                store
                    .presign_get(&own_key, url_ttl)
                    .await
                    .map_err(|e| e.to_string())
            } else {
                Err(format!(
                    "status.archive.key {:?} is not this bundle's archive ({own_key}); refusing to sign it",
                    archive.key
                ))
            }
        }
        None => Err(format!(
            "BackupStorageLocation {:?} or its credential no longer exists",
            archive.storage_location
        )),
    };
    match signed {
        Ok(url) => {
            let note = format!("new download URL, valid until {}", url.expires_at(now));
            event(ctx, bundle, EventType::Normal, "URLRefreshed", &note).await;
            Ok(status::url_refreshed(bundle, url, value, now))
        }
        Err(message) => {
            let note = format!("the download URL could not be re-signed: {message}");
            event(ctx, bundle, EventType::Warning, reasons::URL_EXPIRED, &note).await;
            let mut status = bundle.status.clone().unwrap_or_default();
            status.url_refreshed_for = Some(value.to_string());
            Ok(status)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(extra_meta: &str, status: &str) -> DebugBundle {
        serde_yaml::from_str(&format!(
            "apiVersion: velerodebug.io/v1alpha1\nkind: DebugBundle\nmetadata: {{name: b, namespace: velero, generation: 1, creationTimestamp: '2026-11-22T09:00:00Z'{extra_meta}}}\nspec: {{restore: r1}}\nstatus: {status}\n"
        ))
        .unwrap()
    }

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    const COMPLETED: &str = "{phase: Completed, completionTime: '2026-11-22T10:00:00Z', downloadURL: 'http://u', downloadURLExpiresAt: '2026-11-23T10:00:00Z', conditions: [{type: DownloadURLValid, status: 'True', reason: URLValid, message: '', lastTransitionTime: '2026-11-22T10:00:00Z'}]}";

    #[test]
    fn ttl_comes_from_spec_else_the_default_of_the_kind() {
        let config = Config {
            ttl_manual: Some(Duration::from_secs(100)),
            ttl_auto: Some(Duration::from_secs(50)),
            ..Config::default()
        };
        let manual = bundle("", "{}");
        assert_eq!(ttl(&manual, &config), Some(Duration::from_secs(100)));
        let auto = bundle(", labels: {velerodebug.io/auto: 'true'}", "{}");
        assert_eq!(ttl(&auto, &config), Some(Duration::from_secs(50)));
        let mut own = bundle(", labels: {velerodebug.io/auto: 'true'}", "{}");
        own.spec.ttl_after_finished = Some("1.5h".into());
        assert_eq!(ttl(&own, &config), Some(Duration::from_secs(5400)));
        for unusable in ["-1h", "1.5", "forever"] {
            own.spec.ttl_after_finished = Some(unusable.into());
            assert_eq!(
                ttl(&own, &config),
                Some(Duration::from_secs(50)),
                "{unusable}"
            );
        }
    }

    #[test]
    fn waits_for_the_earlier_of_ttl_and_url_expiry() {
        let b = bundle("", COMPLETED);
        let p = due(
            &b,
            Some(Duration::from_secs(3 * 3600)),
            t("2026-11-22T11:00:00Z"),
        );
        assert_eq!(
            p,
            Due {
                requeue_after: Some(Duration::from_secs(2 * 3600 + 1)),
                ..Due::default()
            }
        );
        let p = due(&b, None, t("2026-11-22T11:00:00Z"));
        assert_eq!(p.requeue_after, Some(Duration::from_secs(23 * 3600 + 1)));
    }

    #[test]
    fn deletes_once_the_ttl_passed_failed_ones_too() {
        let b = bundle("", COMPLETED);
        let p = due(
            &b,
            Some(Duration::from_secs(3600)),
            t("2026-11-22T11:00:00Z"),
        );
        assert!(p.delete);
        let failed = bundle(
            "",
            "{phase: Failed, completionTime: '2026-11-22T10:00:00Z'}",
        );
        assert!(due(&failed, Some(Duration::ZERO), t("2026-11-22T10:00:00Z")).delete);
        assert!(!due(&failed, None, t("2030-01-01T00:00:00Z")).delete);
    }

    #[test]
    fn an_expired_url_is_marked_once() {
        let b = bundle("", COMPLETED);
        let p = due(&b, None, t("2026-11-23T10:00:00Z"));
        assert!(p.mark_url_expired);
        assert_eq!(p.requeue_after, None);
        let marked = bundle(
            "",
            &COMPLETED.replace(
                "status: 'True', reason: URLValid",
                "status: 'False', reason: URLExpired",
            ),
        );
        assert!(!due(&marked, None, t("2026-11-23T10:00:00Z")).mark_url_expired);
    }

    #[test]
    fn a_new_refresh_value_resigns_once() {
        let b = bundle(
            ", annotations: {velerodebug.io/refresh-url: '1'}",
            COMPLETED,
        );
        let p = due(&b, None, t("2026-11-23T12:00:00Z"));
        assert_eq!(p.refresh_for.as_deref(), Some("1"));
        assert!(!p.mark_url_expired, "a refresh replaces the expired URL");
        let done = bundle(
            ", annotations: {velerodebug.io/refresh-url: '1'}",
            &COMPLETED.replace("phase: Completed", "phase: Completed, urlRefreshedFor: '1'"),
        );
        assert_eq!(
            due(&done, None, t("2026-11-22T12:00:00Z")).refresh_for,
            None
        );
        let failed = bundle(
            ", annotations: {velerodebug.io/refresh-url: '1'}",
            "{phase: Failed, completionTime: '2026-11-22T10:00:00Z'}",
        );
        assert_eq!(
            due(&failed, None, t("2026-11-22T12:00:00Z")).refresh_for,
            None
        );
    }
}

//! What happens to a finished DebugBundle: retention (deleted once its TTL passed; the
//! finalizer then deletes the archive), a new download URL on a new value of the refresh-url
//! annotation, and an expired URL made visible in status. `plan` is pure; `finished` carries
//! the plan out.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use kube::{
    Api, ResourceExt,
    api::DeleteParams,
    runtime::{controller::Action, events::EventType},
};
use velero_debug_crd::{
    ANNOTATION_REFRESH_URL, CONDITION_DOWNLOAD_URL_VALID, DEFAULT_URL_TTL, DebugBundle, LABEL_AUTO,
    Phase, reasons,
};

use super::{Config, Context, Error, archive_store, patch_status, publish};
use crate::{plan as collect_plan, status};

/// The retention of a bundle: its spec's, else the operator's default for its kind.
pub fn ttl(bundle: &DebugBundle, config: &Config) -> Option<Duration> {
    if let Some(text) = bundle.spec.ttl_after_finished.as_deref() {
        // The CRD's CEL rule admits only durations; one this parser refuses keeps the bundle.
        return collect_plan::parse_duration(text);
    }
    if bundle.labels().get(LABEL_AUTO).map(String::as_str) == Some("true") {
        config.ttl_auto
    } else {
        config.ttl_manual
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
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

pub fn plan(bundle: &DebugBundle, ttl: Option<Duration>, now: Timestamp) -> Plan {
    let Some(status) = bundle.status.as_ref() else {
        return Plan::default();
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
                return Plan {
                    delete: true,
                    ..Plan::default()
                };
            }
            Some(left) => next.push(left),
        }
    }
    let mut plan = Plan::default();
    if status.phase == Some(Phase::Completed) {
        let wanted = bundle.annotations().get(ANNOTATION_REFRESH_URL);
        if let Some(value) = wanted.filter(|v| status.url_refreshed_for.as_ref() != Some(*v)) {
            plan.refresh_for = Some(value.clone());
        } else if let Some(expires) = status.download_url_expires_at.as_ref().map(|t| t.0) {
            match until(expires, now) {
                Some(left) => next.push(left),
                None => {
                    let shown = status
                        .conditions
                        .iter()
                        .any(|c| c.type_ == CONDITION_DOWNLOAD_URL_VALID && c.status == "False");
                    plan.mark_url_expired = !shown;
                }
            }
        }
    }
    plan.requeue_after = next.into_iter().min();
    plan
}

/// Carries out the plan for a finished bundle.
pub(super) async fn finished(bundle: &DebugBundle, ctx: &Context) -> Result<Action, Error> {
    let now = Timestamp::now();
    let plan = plan(bundle, ttl(bundle, &ctx.config), now);
    let ns = bundle.namespace().unwrap_or_default();
    if plan.delete {
        tracing::info!(bundle = %bundle.name_any(), "retention passed; deleting the bundle");
        publish(
            ctx,
            bundle,
            EventType::Normal,
            "Expired",
            "ttlAfterFinished passed; deleting the bundle and its archive".into(),
        )
        .await;
        let api: Api<DebugBundle> = Api::namespaced(ctx.client.clone(), &ns);
        match api
            .delete(&bundle.name_any(), &DeleteParams::background())
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
        return Ok(Action::await_change());
    }
    if let Some(value) = plan.refresh_for {
        refresh_url(bundle, ctx, &ns, &value, now).await?;
    } else if plan.mark_url_expired {
        patch_status(ctx, bundle, status::url_expired(bundle, now)).await?;
    }
    Ok(plan
        .requeue_after
        .map(Action::requeue)
        .unwrap_or_else(Action::await_change))
}

async fn refresh_url(
    bundle: &DebugBundle,
    ctx: &Context,
    ns: &str,
    value: &str,
    now: Timestamp,
) -> Result<(), Error> {
    let Some(archive) = bundle.status.as_ref().and_then(|s| s.archive.clone()) else {
        return Ok(());
    };
    let ttl_text = bundle.spec.url_ttl.as_deref().unwrap_or(DEFAULT_URL_TTL);
    let url_ttl =
        collect_plan::parse_url_ttl(ttl_text).unwrap_or_else(|_| Duration::from_secs(24 * 3600));
    let signed = match archive_store(ctx, ns, &archive.storage_location).await? {
        Some(store) => store
            .presign_get(&archive.key, url_ttl)
            .await
            .map_err(|e| e.to_string()),
        None => Err(format!(
            "BackupStorageLocation {} or its credential no longer exists",
            archive.storage_location
        )),
    };
    match signed {
        Ok(url) => {
            let expires = now + SignedDuration::try_from(url_ttl).unwrap_or_default();
            patch_status(
                ctx,
                bundle,
                status::url_refreshed(bundle, url, expires, value, now),
            )
            .await?;
            publish(
                ctx,
                bundle,
                EventType::Normal,
                "URLRefreshed",
                format!("new download URL, valid until {expires}"),
            )
            .await;
        }
        Err(message) => {
            // Recorded as refreshed-for so one bad value does not retry forever; a new
            // annotation value tries again.
            let mut status = bundle.status.clone().unwrap_or_default();
            status.url_refreshed_for = Some(value.to_string());
            patch_status(ctx, bundle, status).await?;
            publish(
                ctx,
                bundle,
                EventType::Warning,
                reasons::URL_EXPIRED,
                format!("the download URL could not be re-signed: {message}"),
            )
            .await;
        }
    }
    Ok(())
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
        own.spec.ttl_after_finished = Some("2h".into());
        assert_eq!(ttl(&own, &config), Some(Duration::from_secs(7200)));
    }

    #[test]
    fn waits_for_the_earlier_of_ttl_and_url_expiry() {
        let b = bundle("", COMPLETED);
        let p = plan(
            &b,
            Some(Duration::from_secs(3 * 3600)),
            t("2026-11-22T11:00:00Z"),
        );
        assert_eq!(
            p,
            Plan {
                requeue_after: Some(Duration::from_secs(2 * 3600 + 1)),
                ..Plan::default()
            }
        );
        let p = plan(&b, None, t("2026-11-22T11:00:00Z"));
        assert_eq!(p.requeue_after, Some(Duration::from_secs(23 * 3600 + 1)));
    }

    #[test]
    fn deletes_once_the_ttl_passed_failed_ones_too() {
        let b = bundle("", COMPLETED);
        let p = plan(
            &b,
            Some(Duration::from_secs(3600)),
            t("2026-11-22T11:00:00Z"),
        );
        assert!(p.delete);
        let failed = bundle(
            "",
            "{phase: Failed, completionTime: '2026-11-22T10:00:00Z'}",
        );
        assert!(plan(&failed, Some(Duration::ZERO), t("2026-11-22T10:00:00Z")).delete);
        assert!(!plan(&failed, None, t("2030-01-01T00:00:00Z")).delete);
    }

    #[test]
    fn an_expired_url_is_marked_once() {
        let b = bundle("", COMPLETED);
        let p = plan(&b, None, t("2026-11-23T10:00:00Z"));
        assert!(p.mark_url_expired);
        assert_eq!(p.requeue_after, None);
        let marked = bundle(
            "",
            &COMPLETED.replace(
                "status: 'True', reason: URLValid",
                "status: 'False', reason: URLExpired",
            ),
        );
        assert!(!plan(&marked, None, t("2026-11-23T10:00:00Z")).mark_url_expired);
    }

    #[test]
    fn a_new_refresh_value_resigns_once() {
        let b = bundle(
            ", annotations: {velerodebug.io/refresh-url: '1'}",
            COMPLETED,
        );
        let p = plan(&b, None, t("2026-11-23T12:00:00Z"));
        assert_eq!(p.refresh_for.as_deref(), Some("1"));
        assert!(!p.mark_url_expired, "a refresh replaces the expired URL");
        let done = bundle(
            ", annotations: {velerodebug.io/refresh-url: '1'}",
            &COMPLETED.replace("phase: Completed", "phase: Completed, urlRefreshedFor: '1'"),
        );
        assert_eq!(
            plan(&done, None, t("2026-11-22T12:00:00Z")).refresh_for,
            None
        );
        let failed = bundle(
            ", annotations: {velerodebug.io/refresh-url: '1'}",
            "{phase: Failed, completionTime: '2026-11-22T10:00:00Z'}",
        );
        assert_eq!(
            plan(&failed, None, t("2026-11-22T12:00:00Z")).refresh_for,
            None
        );
    }
}

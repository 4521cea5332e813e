//! `refresh-url`: a new value of the refresh annotation asks the operator to sign a new URL;
//! it answers by setting status.urlRefreshedFor to that value along with the new URL.

use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use kube::{
    Api,
    api::{Patch, PatchParams},
    runtime::watcher::watch_object,
};
use velero_debug_crd::{ANNOTATION_REFRESH_URL, DebugBundle, Phase};

#[derive(Debug, thiserror::Error)]
pub(crate) enum RefreshError {
    #[error("DebugBundle {0} is not Completed: only a finished bundle's URL can be re-signed")]
    NotCompleted(String),
    #[error("annotating DebugBundle {name}: {source}")]
    Annotate { name: String, source: kube::Error },
    #[error("watching DebugBundle {name}: {source}")]
    Watch {
        name: String,
        source: kube::runtime::watcher::Error,
    },
    #[error("DebugBundle {0} was deleted while waiting for its new URL")]
    Deleted(String),
    #[error(
        "the operator did not sign a new URL for {0} in time (status.urlRefreshedFor unchanged); is it running?"
    )]
    TimedOut(String),
}

/// True once the operator answered the refresh request `value`.
pub(crate) fn answered(bundle: &DebugBundle, value: &str) -> bool {
    bundle
        .status
        .as_ref()
        .and_then(|s| s.url_refreshed_for.as_deref())
        == Some(value)
}

/// Asks for a new URL and waits for it; returns the bundle carrying it.
pub(crate) async fn refresh_url(
    api: &Api<DebugBundle>,
    bundle: &DebugBundle,
    timeout: Duration,
) -> Result<DebugBundle, RefreshError> {
    let name = bundle.metadata.name.clone().unwrap_or_default();
    let phase = bundle.status.as_ref().and_then(|s| s.phase);
    if phase != Some(Phase::Completed) {
        return Err(RefreshError::NotCompleted(name));
    }
    // Unique per request, so an earlier answer is never mistaken for this one.
    let value = Timestamp::now().as_nanosecond().to_string();
    let patch = serde_json::json!({"metadata": {"annotations": {ANNOTATION_REFRESH_URL: value}}});
    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|source| RefreshError::Annotate {
            name: name.clone(),
            source,
        })?;
    let wait = async {
        let mut stream = watch_object(api.clone(), &name).boxed();
        while let Some(event) = stream.next().await {
            let event = event.map_err(|source| RefreshError::Watch {
                name: name.clone(),
                source,
            })?;
            match event {
                None => return Err(RefreshError::Deleted(name.clone())),
                Some(b) if answered(&b, &value) => return Ok(b),
                Some(_) => {}
            }
        }
        Err(RefreshError::Deleted(name.clone()))
    };
    tokio::time::timeout(timeout, wait)
        .await
        .unwrap_or_else(|_| Err(RefreshError::TimedOut(name.clone())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{cluster::api_mock, print::output::fixtures};

    #[tokio::test]
    async fn waits_for_the_answer_to_its_own_request() {
        let bundle = fixtures::completed();
        let answered_with = |value: &str, url: &str| {
            let mut b = bundle.clone();
            b.metadata.resource_version = Some("12".into());
            let status = b.status.as_mut().unwrap();
            status.url_refreshed_for = Some(value.into());
            status.download_url = Some(url.into());
            api_mock::event("MODIFIED", serde_json::to_value(b).unwrap())
        };
        let (client, server) = api_mock::client(
            vec![serde_json::to_value(&bundle).unwrap()],
            vec![
                answered_with("an-earlier-request", "http://old"),
                answered_with(api_mock::REFRESH_VALUE, "http://new"),
            ],
        );
        let api = Api::namespaced(client, "velero");
        let refreshed = refresh_url(&api, &bundle, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(
            refreshed.status.unwrap().download_url.as_deref(),
            Some("http://new")
        );
        drop(api);
        let requests = server.await.unwrap();
        assert_eq!(
            requests
                .iter()
                .filter(|r| r.starts_with("PATCH "))
                .collect::<Vec<_>>(),
            [
                "PATCH /apis/velerodebug.io/v1alpha1/namespaces/velero/debugbundles/why-restore-failed?"
            ]
        );
    }

    #[tokio::test]
    async fn a_bundle_not_completed_is_refused_without_a_request() {
        let mut bundle = fixtures::completed();
        bundle.status.as_mut().unwrap().phase = Some(Phase::Collecting);
        let (client, _server) = api_mock::client(vec![], vec![]);
        let err = refresh_url(
            &Api::namespaced(client, "velero"),
            &bundle,
            Duration::from_secs(1),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, RefreshError::NotCompleted(_)), "{err}");
    }

    #[test]
    fn only_the_matching_answer_counts() {
        let mut bundle = fixtures::completed();
        assert!(!answered(&bundle, "1"));
        bundle.status.as_mut().unwrap().url_refreshed_for = Some("1".into());
        assert!(answered(&bundle, "1"));
        assert!(!answered(&bundle, "2"));
    }
}

//! `--apply-crd`: the operator brings its own CRD up to date at start. Helm installs a chart's
//! `crds/` once and never upgrades them, so without this a `helm upgrade` would run new code
//! against the old schema (new fields pruned by the API server).

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{
    Api, Client, CustomResourceExt, ResourceExt,
    api::{Patch, PatchParams},
};
use velero_debug_crd::DebugBundle;

/// The field manager of the CRD's fields; `kubectl get crd -o yaml --show-managed-fields`
/// shows which version of the operator last wrote them.
const FIELD_MANAGER: &str = "velero-debug-operator";

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error(
        "could not apply CRD {name} (the chart grants get/patch on it when crds.applyOnStart is on): {source}"
    )]
    Apply { name: String, source: kube::Error },
    #[error("CRD {name} applied but not Established after {waited:?}")]
    NotEstablished { name: String, waited: Duration },
}

/// The uid of the DebugBundle CRD: this cluster's part of the mark on the archives it writes (see
/// orphans.rs); None, with a warning, when it cannot be read.
pub(crate) async fn cluster_mark(client: Client, timeout: Duration) -> Option<String> {
    let crds: Api<CustomResourceDefinition> = Api::all(client);
    let name = DebugBundle::crd().name_any();
    match crate::kubernetes::with_timeout(timeout, crds.get(&name)).await {
        Ok(crd) => crd.uid().filter(|uid| !uid.is_empty()),
        Err(e) => {
            tracing::warn!(crd = %name, error = %e, "the CRD could not be read for the cluster mark");
            None
        }
    }
}

/// The cluster mark a term runs with: the one just read, else the one an earlier term of this
/// process read (`known`, updated here). A leader cut off from the API server reads it in vain
/// while it waits to lead again; without this, the term it leads once the API server answers
/// would mark no archive and collect none. Empty, with a warning, when none was ever read.
pub(crate) fn term_mark(read: Option<String>, known: &mut String) -> String {
    match read {
        Some(mark) => *known = mark,
        None if known.is_empty() => tracing::warn!(
            "no cluster mark: the archives of this term get none and are never garbage-collected"
        ),
        None => tracing::info!(mark = %known, "the cluster mark an earlier term read is kept"),
    }
    known.clone()
}

/// Server-side applies the CRD of this build (forcing ownership of its fields: this build is
/// the one that must be served), then waits until the API server serves it.
pub(crate) async fn apply(client: Client, wait: Duration) -> Result<(), Error> {
    let crds: Api<CustomResourceDefinition> = Api::all(client);
    let crd = DebugBundle::crd();
    let name = crd.name_any();
    let applied = crds
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&crd),
        )
        .await
        .map_err(|source| Error::Apply {
            name: name.clone(),
            source,
        })?;
    let deadline = tokio::time::Instant::now() + wait;
    let mut current = applied;
    loop {
        if is_established(&current) {
            tracing::info!(crd = %name, version = bundle_version(&current), "CRD applied");
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::NotEstablished { name, waited: wait });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        current = crds.get(&name).await.map_err(|source| Error::Apply {
            name: name.clone(),
            source,
        })?;
    }
}

fn is_established(crd: &CustomResourceDefinition) -> bool {
    crd.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
        })
}

fn bundle_version(crd: &CustomResourceDefinition) -> String {
    crd.spec
        .versions
        .iter()
        .filter(|v| v.served)
        .map(|v| v.name.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd_with_conditions(conditions: serde_json::Value) -> CustomResourceDefinition {
        let mut crd = DebugBundle::crd();
        crd.status =
            Some(serde_json::from_value(serde_json::json!({ "conditions": conditions })).unwrap());
        crd
    }

    #[test]
    fn established_only_when_the_api_server_says_so() {
        assert!(!is_established(&DebugBundle::crd()));
        assert!(!is_established(&crd_with_conditions(serde_json::json!([
            {"type": "NamesAccepted", "status": "True"},
            {"type": "Established", "status": "False"}
        ]))));
        assert!(is_established(&crd_with_conditions(serde_json::json!([
            {"type": "Established", "status": "True"}
        ]))));
        assert_eq!(bundle_version(&DebugBundle::crd()), "v1alpha1");
    }

    #[test]
    fn a_mark_read_once_outlives_a_term_that_cannot_read_it() {
        let mut known = String::new();
        assert_eq!(term_mark(None, &mut known), "");
        assert_eq!(term_mark(Some("uid-1".into()), &mut known), "uid-1");
        assert_eq!(term_mark(None, &mut known), "uid-1");
        // A CRD made again (uninstalled, installed) is a new cluster mark.
        assert_eq!(term_mark(Some("uid-2".into()), &mut known), "uid-2");
    }
}

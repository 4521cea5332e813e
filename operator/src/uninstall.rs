//! `velero-debug-operator uninstall`: what the chart's pre-delete hook runs, so that no
//! DebugBundle keeps a finalizer that no operator will ever process (it would block the
//! deletion of the bundle, of its namespace and of the CRD).
//!
//! With `--delete-bundles` (the chart's default) every bundle is deleted while the operator
//! still runs (Helm runs pre-delete hooks before it removes anything), so each archive goes
//! with its bundle; bundles still there at the timeout (no operator running, a store that
//! cannot be reached) lose the finalizer, and each archive left behind is named. Without it
//! the bundles and their archives stay, only the finalizers are released; an operator
//! installed again adds them back.

use std::time::Duration;

use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams},
    core::ApiResource,
};
use velero_debug_crd::{DebugBundle, FINALIZER};

use crate::{
    config::Limits,
    kubernetes::{self, Pages, RequestError},
};

#[derive(Debug, thiserror::Error)]
pub(crate) enum UninstallError {
    #[error("listing DebugBundles: {0}")]
    List(RequestError),
    #[error("{action} DebugBundle {namespace}/{name}: {}", kubernetes::message(.source))]
    Write {
        action: &'static str,
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// A bundle as the uninstall sees it: enough to release it and to name what it leaves.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Held {
    pub namespace: String,
    pub name: String,
    /// Its archive's key, when its status has one.
    pub archive: Option<String>,
    pub finalizers: Vec<String>,
    pub deleting: bool,
    pub resource_version: Option<String>,
}

impl Held {
    fn of(obj: &DynamicObject) -> Self {
        let archive = obj
            .data
            .pointer("/status/archive/key")
            .and_then(|k| k.as_str())
            .map(str::to_string);
        Held {
            namespace: obj.namespace().unwrap_or_default(),
            name: obj.name_any(),
            archive,
            finalizers: obj.finalizers().to_vec(),
            deleting: obj.metadata.deletion_timestamp.is_some(),
            resource_version: obj.resource_version(),
        }
    }

    fn has_ours(&self) -> bool {
        self.finalizers.iter().any(|f| f == FINALIZER)
    }
}

/// What the uninstall did, for its log.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Report {
    /// Bundles it asked the API server to delete.
    pub deleted: usize,
    /// Bundles whose finalizer it removed itself, with their archive when they had one.
    pub released: Vec<Held>,
}

/// The finalizers of `held` without ours, in their order; None when ours is not there.
pub(crate) fn without_ours(held: &Held) -> Option<Vec<String>> {
    held.has_ours().then(|| {
        held.finalizers
            .iter()
            .filter(|f| *f != FINALIZER)
            .cloned()
            .collect()
    })
}

/// The bundles whose finalizer the uninstall removes itself, once the operator had its time.
pub(crate) fn to_release(held: &[Held]) -> Vec<Held> {
    held.iter().filter(|h| h.has_ours()).cloned().collect()
}

/// Deleted bundles the operator has yet to release (it deletes their archive first).
fn waiting_for_operator(held: &[Held]) -> usize {
    held.iter().filter(|h| h.has_ours() && h.deleting).count()
}

/// Read as dynamic objects (a bundle our types cannot read is still released), under the
/// type's own group, version and plural.
fn debug_bundles() -> ApiResource {
    ApiResource::erase::<DebugBundle>(&())
}

async fn list(api: &Api<DynamicObject>) -> Result<Vec<Held>, UninstallError> {
    // No cap: every bundle must be released, however many there are.
    let limits = Limits {
        max_list_items: usize::MAX,
        ..Limits::default()
    };
    let mut pages = Pages::new(api, ListParams::default(), &limits);
    let mut held = Vec::new();
    while let Some(page) = pages.next().await.map_err(UninstallError::List)? {
        held.extend(page.iter().map(Held::of));
    }
    Ok(held)
}

/// Runs the uninstall over the bundles of `namespace` (None: every namespace).
pub(crate) async fn run(
    client: Client,
    namespace: Option<&str>,
    delete_bundles: bool,
    timeout: Duration,
) -> Result<Report, UninstallError> {
    let api: Api<DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &debug_bundles()),
        None => Api::all_with(client.clone(), &debug_bundles()),
    };
    let mut report = Report::default();
    if delete_bundles {
        report.deleted += delete_all(&client, &list(&api).await?).await?;
        wait_for_operator(&api, timeout).await?;
    }
    // Released one by one, each on the list just read; a bundle made meanwhile (an automatic
    // one) is deleted first, like the others.
    for held in to_release(&list(&api).await?) {
        if delete_bundles && !held.deleting {
            report.deleted += delete_all(&client, std::slice::from_ref(&held)).await?;
        }
        release(&client, &held).await?;
        match &held.archive {
            Some(key) if delete_bundles => {
                tracing::warn!(bundle = %held.name, namespace = %held.namespace, archive = %key, "released without deleting its archive: the object stays in the bucket")
            }
            _ => {
                tracing::info!(bundle = %held.name, namespace = %held.namespace, "finalizer released")
            }
        }
        report.released.push(held);
    }
    Ok(report)
}

/// Deletes the bundles not being deleted yet; returns how many.
async fn delete_all(client: &Client, held: &[Held]) -> Result<usize, UninstallError> {
    let mut deleted = 0;
    for held in held.iter().filter(|h| !h.deleting) {
        match in_namespace(client, &held.namespace)
            .delete(&held.name, &DeleteParams::default())
            .await
        {
            Ok(_) => deleted += 1,
            Err(e) if kubernetes::is_not_found(&e) => {}
            Err(source) => return Err(write_error("deleting", held, source)),
        }
    }
    Ok(deleted)
}

fn in_namespace(client: &Client, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, &debug_bundles())
}

fn write_error(action: &'static str, held: &Held, source: kube::Error) -> UninstallError {
    UninstallError::Write {
        action,
        namespace: held.namespace.clone(),
        name: held.name.clone(),
        source,
    }
}

/// Waits until no deleted bundle holds our finalizer (the operator deleted their archives)
/// or `timeout` passed.
async fn wait_for_operator(
    api: &Api<DynamicObject>,
    timeout: Duration,
) -> Result<(), UninstallError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let waiting = waiting_for_operator(&list(api).await?);
        if waiting == 0 {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(
                waiting,
                timeout_seconds = timeout.as_secs(),
                "bundles still waiting for the operator; releasing them"
            );
            return Ok(());
        }
        tracing::info!(waiting, "waiting for the operator to delete archives");
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Removes our finalizer, on the condition that the bundle is still the one read (its
/// resourceVersion in the patch), so a finalizer another controller added meanwhile is never
/// dropped; on a conflict the bundle is read again.
async fn release(client: &Client, held: &Held) -> Result<(), UninstallError> {
    let api = in_namespace(client, &held.namespace);
    let mut current = held.clone();
    for _ in 0..5 {
        let Some(rest) = without_ours(&current) else {
            return Ok(());
        };
        let patch = serde_json::json!({"metadata": {
            "finalizers": rest, "resourceVersion": current.resource_version}});
        match api
            .patch(&held.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if kubernetes::is_not_found(&e) => return Ok(()),
            Err(kube::Error::Api(e)) if e.code == 409 => match api.get_opt(&held.name).await {
                Ok(Some(obj)) => current = Held::of(&obj),
                Ok(None) => return Ok(()),
                Err(source) => return Err(write_error("reading", held, source)),
            },
            Err(source) => return Err(write_error("releasing", held, source)),
        }
    }
    Err(write_error(
        "releasing",
        held,
        kube::Error::Api(
            kube::core::Status::failure("changed five times while being released", "Conflict")
                .with_code(409)
                .boxed(),
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(name: &str, finalizers: &[&str], deleting: bool) -> Held {
        Held {
            namespace: "velero".into(),
            name: name.into(),
            archive: Some(format!("bundles/{name}.tar.gz")),
            finalizers: finalizers.iter().map(|f| f.to_string()).collect(),
            deleting,
            resource_version: Some("1".into()),
        }
    }

    #[test]
    fn only_our_finalizer_is_removed_and_the_others_keep_their_order() {
        let h = held("a", &["x/first", FINALIZER, "y/last"], true);
        assert_eq!(without_ours(&h).unwrap(), ["x/first", "y/last"]);
        assert_eq!(without_ours(&held("b", &["x/first"], true)), None);
    }

    #[test]
    fn every_bundle_with_our_finalizer_is_released_and_only_deleted_ones_are_waited_for() {
        let all = [
            held("left-by-operator", &[FINALIZER], true),
            held("not-ours", &["x/other"], true),
            // Made after the deletes went out (an automatic bundle).
            held("new", &[FINALIZER], false),
        ];
        let names: Vec<_> = to_release(&all).into_iter().map(|h| h.name).collect();
        assert_eq!(names, ["left-by-operator", "new"]);
        assert_eq!(waiting_for_operator(&all), 1);
    }

    #[test]
    fn a_bundle_is_read_whatever_its_spec_holds() {
        let obj: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "velerodebug.io/v1alpha1", "kind": "DebugBundle",
            "metadata": {"name": "b", "namespace": "velero", "finalizers": [FINALIZER],
                         "deletionTimestamp": "2026-11-23T10:00:00Z"},
            "spec": {"backup": 42, "unknown": {"deep": [1, 2]}},
            "status": {"archive": {"key": "k/b-1.tar.gz"}}
        }))
        .unwrap();
        let h = Held::of(&obj);
        assert_eq!(h.archive.as_deref(), Some("k/b-1.tar.gz"));
        assert!(h.deleting && h.has_ours());
    }
}

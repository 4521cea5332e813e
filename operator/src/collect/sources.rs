//! What collection reads from: the cluster (through the operator's client, and the one
//! container logs are read with), Velero's namespace, the plan, the limits on every read, and
//! the storage location's object store. A read that fails or is cut short is a warning, said
//! into the [`Sink`].

use std::future::Future;

use k8s_openapi::NamespaceResourceScope;
use kube::{Api, Client, Resource, api::ListParams, core::DynamicObject};
use serde::de::DeserializeOwned;

use super::{CollectPlan, Sink};
use crate::{
    config::Limits,
    kubernetes,
    storage::{ObjectStore, StorageLocation},
};

/// Where one bundle's collection reads, and what it reads for.
pub(crate) struct Sources<'a> {
    pub client: Client,
    /// Container logs are read with this one (log_client.rs).
    pub log_client: Client,
    /// Velero's namespace: the bundle's own.
    pub namespace: String,
    pub plan: &'a CollectPlan,
    pub limits: &'a Limits,
    pub store: &'a ObjectStore,
    pub location: &'a StorageLocation,
    /// How the pods of Velero's data path ended that Velero deleted since (recorder/).
    pub recorder: &'a crate::recorder::Recorder,
}

/// What a refused list withholds: `resource` (a plural) of `namespace`, and why, naming the
/// chart value that grants it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Refusal<'a> {
    pub resource: &'a str,
    pub namespace: &'a str,
    pub reason: &'a str,
}

/// Why [`Sources::list_optional`] has no list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unlisted {
    /// The cluster does not serve the kind (its CRD is not installed).
    NotServed,
    /// Listing failed; a warning says why.
    Failed,
}

impl Sources<'_> {
    /// Lists every object matching `lp`, page by page; a list cut at `max_list_items`, an
    /// object left out because it could not be read, or a list that fails is a warning.
    pub(super) async fn list_all<K>(
        &self,
        out: &mut Sink,
        api: &Api<K>,
        lp: ListParams,
        what: &str,
    ) -> Option<Vec<K>>
    where
        K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
    {
        self.list_matching(out, api, lp, what, |_| true).await
    }

    /// [`list_all`](Self::list_all), keeping only the objects `keep` accepts: the others are
    /// dropped with their page, so a namespace with thousands of objects of no concern (the
    /// events of every other bundle in Velero's namespace) costs one page of memory, not all.
    pub(super) async fn list_matching<K>(
        &self,
        out: &mut Sink,
        api: &Api<K>,
        lp: ListParams,
        what: &str,
        keep: impl FnMut(&K) -> bool,
    ) -> Option<Vec<K>>
    where
        K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
    {
        self.list_granted(out, api, lp, (what, None), keep).await
    }

    /// [`list_matching`](Self::list_matching) of a read the chart may withhold: a refusal
    /// (HTTP 403) is also recorded as not collected, with `refused` (resource, namespace,
    /// reason naming the chart value), so summary.md and the findings say what was withheld.
    pub(super) async fn list_granted<K>(
        &self,
        out: &mut Sink,
        api: &Api<K>,
        lp: ListParams,
        (what, refused): (&str, Option<Refusal<'_>>),
        keep: impl FnMut(&K) -> bool,
    ) -> Option<Vec<K>>
    where
        K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
    {
        let max = self.limits.max_list_items;
        match kubernetes::list_keeping(api, lp, self.limits, max, keep).await {
            Ok(listed) => Some(self.listed(out, listed, what)),
            Err(e) => {
                if let Some(r) = refused.filter(|_| e.is_forbidden()) {
                    out.not_collected(r.resource, Some(r.namespace), r.reason);
                }
                out.warn(format!("{what}: could not be listed: {e}"));
                None
            }
        }
    }

    /// [`list_all`](Self::list_all), handing each object to `each` as its page comes: one
    /// page is held, however long the list. The same warnings.
    pub(super) async fn list_each<K>(
        &self,
        out: &mut Sink,
        api: &Api<K>,
        lp: ListParams,
        what: &str,
        mut each: impl FnMut(&mut Sink, K) -> Result<(), super::CollectError>,
    ) -> Result<(), super::CollectError>
    where
        K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
    {
        let mut pages = kubernetes::Pages::new(api, lp, self.limits);
        loop {
            // Each item decoded as it is taken (see `Pages::next_raw`).
            match pages.next_raw().await {
                Ok(Some(page)) => {
                    for raw in page {
                        if let Some(item) = pages.decode_item(&raw) {
                            each(out, item)?;
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    out.warn(format!("{what}: could not be listed: {e}"));
                    break;
                }
            }
        }
        let listed: kubernetes::Listed<K> = kubernetes::Listed {
            items: Vec::new(),
            truncated: pages.truncated,
            undecodable: std::mem::take(&mut pages.undecodable),
        };
        self.listed(out, listed, what);
        Ok(())
    }

    /// [`list_all`](Self::list_all) of a kind the cluster may not serve (an optional CRD): a
    /// 404 is [`Unlisted::NotServed`], no warning, for the caller to mention when it matters.
    pub(super) async fn list_optional<K>(
        &self,
        out: &mut Sink,
        api: &Api<K>,
        lp: ListParams,
        what: &str,
    ) -> Result<Vec<K>, Unlisted>
    where
        K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
    {
        match self.try_list_all(out, api, lp, what).await {
            Ok(items) => Ok(items),
            Err(e) if e.is_not_found() || kubernetes::is_not_found_message(&e.message) => {
                tracing::info!(what, "not served by the cluster (CRD not installed)");
                Err(Unlisted::NotServed)
            }
            Err(e) => {
                out.warn(format!("{what}: could not be listed: {e}"));
                Err(Unlisted::Failed)
            }
        }
    }

    /// [`list_all`](Self::list_all), leaving a list that fails to the caller (a refusal it
    /// explains better, a kind not served).
    pub(super) async fn try_list_all<K>(
        &self,
        out: &mut Sink,
        api: &Api<K>,
        lp: ListParams,
        what: &str,
    ) -> Result<Vec<K>, kubernetes::RequestError>
    where
        K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
    {
        let listed = kubernetes::list_all(api, lp, self.limits).await?;
        Ok(self.listed(out, listed, what))
    }

    /// The items of a list, with a warning for a list cut short or an item left out.
    fn listed<K>(&self, out: &mut Sink, listed: kubernetes::Listed<K>, what: &str) -> Vec<K> {
        if listed.truncated {
            out.warn(format!(
                "{what}: more than {} objects; only the first were collected",
                self.limits.max_list_items
            ));
        }
        for why in listed.undecodable {
            out.warn(format!("{what}: one left out, it could not be read: {why}"));
        }
        listed.items
    }

    pub(super) fn dynamic_api(&self, kind: &str) -> Api<DynamicObject> {
        Api::namespaced_with(
            self.client.clone(),
            &self.namespace,
            &crate::velero::resource(kind),
        )
    }

    pub(super) fn namespaced<K>(&self) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Runs an API call under the API timeout.
    pub(super) async fn timed<T>(
        &self,
        fut: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, String> {
        kubernetes::with_timeout(self.limits.api_timeout, fut).await
    }

    /// [`timed`](Self::timed), keeping the HTTP status of a refusal.
    pub(super) async fn timed_request<T>(
        &self,
        fut: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, kubernetes::RequestError> {
        kubernetes::request_within(self.limits.api_timeout, fut).await
    }
}

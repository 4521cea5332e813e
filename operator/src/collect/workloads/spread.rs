//! A kind read in several namespaces: one list across the cluster, its items kept only in
//! those namespaces, where the operator may (rbac.workloadNamespaces ["*"]); else one list a
//! namespace. A restore over fifty namespaces costs a list a kind, not fifty.

use std::collections::BTreeSet;

use kube::{Api, Resource, ResourceExt, api::ListParams};
use serde::de::DeserializeOwned;

use super::Workloads;
use crate::{
    collect::Sources,
    config::Limits,
    kubernetes::{self, is_object_name},
};

/// What a read over several namespaces kept.
pub(super) struct Spread<K> {
    pub items: Vec<K>,
    /// `max` cut it: more were there.
    pub truncated: bool,
    /// The cluster does not serve the kind (an optional CRD not installed).
    pub not_served: bool,
}

impl<K> Spread<K> {
    fn empty() -> Self {
        Spread {
            items: Vec::new(),
            truncated: false,
            not_served: false,
        }
    }

    fn not_served() -> Self {
        Spread {
            not_served: true,
            ..Spread::empty()
        }
    }

    /// A list's items, its objects that could not be read given to `warn`.
    fn add(&mut self, listed: kubernetes::Listed<K>, what: &str, warn: &mut dyn FnMut(String)) {
        self.truncated |= listed.truncated;
        for why in listed.undecodable {
            warn(format!("{what}: one left out, it could not be read: {why}"));
        }
        self.items.extend(listed.items);
    }
}

/// The kind read: its resource (as refusals are named) and the words of its warnings.
#[derive(Clone, Copy)]
pub(super) struct Kind<'a> {
    pub resource: &'static str,
    pub what: &'a str,
}

/// Where a read goes.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Scope<'a> {
    /// These namespaces (names), read across the cluster when there are several.
    Namespaces(&'a [String]),
    /// Every namespace (a restore of all of them): across the cluster, or `known` one by one
    /// when that is refused.
    Everywhere { known: &'a [String] },
}

impl Workloads {
    /// Lists `kind` where `scope` says, keeping those `keep` accepts, at most `max`. A
    /// refusal across the cluster falls back to the namespaces one by one (and is not asked
    /// again); a refusal in a namespace waits for the one warning; other failures are given
    /// to `warn`.
    pub(super) async fn list_in<K>(
        &mut self,
        (limits, warn): (&Limits, &mut (dyn FnMut(String) + Send)),
        kind: Kind<'_>,
        api_for: impl Fn(Option<&str>) -> Api<K>,
        (scope, lp): (Scope<'_>, ListParams),
        max: usize,
        mut keep: impl FnMut(&K) -> bool,
    ) -> Spread<K>
    where
        K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
    {
        let namespaces: Vec<&String> = match scope {
            Scope::Namespaces(list) | Scope::Everywhere { known: list } => list
                .iter()
                .filter(|ns| is_object_name(ns) && !self.is_refused(ns, kind.resource))
                .collect(),
        };
        let everywhere = matches!(scope, Scope::Everywhere { .. });
        if (everywhere || namespaces.len() > 1) && !self.cluster_refused {
            let set: BTreeSet<&str> = namespaces.iter().map(|n| n.as_str()).collect();
            let ours = |k: &K| {
                (everywhere
                    || k.meta()
                        .namespace
                        .as_deref()
                        .is_some_and(|n| set.contains(n)))
                    && keep(k)
            };
            let api = api_for(None);
            match kubernetes::list_keeping(&api, lp.clone(), limits, max, ours).await {
                Ok(listed) => {
                    let mut spread = Spread::empty();
                    spread.add(listed, kind.what, warn);
                    return spread;
                }
                Err(e) if e.is_not_found() => return Spread::not_served(),
                Err(e) if e.is_forbidden() => self.cluster_refused = true,
                Err(e) => warn(format!(
                    "{} across the cluster: {e}; read namespace by namespace",
                    kind.what
                )),
            }
        }
        self.refused_everywhere |= everywhere && self.cluster_refused;
        let mut spread = Spread::empty();
        for ns in namespaces.into_iter().take(super::MAX_NAMESPACES) {
            let room = max.saturating_sub(spread.items.len());
            if room == 0 {
                spread.truncated = true;
                break;
            }
            let what = format!("{} of namespace {ns}", kind.what);
            match kubernetes::list_keeping(&api_for(Some(ns)), lp.clone(), limits, room, &mut keep)
                .await
            {
                Ok(listed) => spread.add(listed, &what, warn),
                Err(e) if e.is_not_found() => return Spread::not_served(),
                Err(e) if e.is_forbidden() => self.refuse(ns, kind.resource),
                Err(e) => warn(format!("{what}: {e}")),
            }
        }
        spread
    }
}

/// The objects of `names` that exist: a get for one, a list keeping them for more.
pub(super) async fn read_named<K>(
    src: &Sources<'_>,
    api: &Api<K>,
    names: &BTreeSet<String>,
) -> Result<kubernetes::Listed<K>, kubernetes::RequestError>
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    if names.len() <= 1 {
        let mut items = Vec::new();
        for name in names {
            items.extend(src.timed_request(api.get_opt(name)).await?);
        }
        return Ok(kubernetes::Listed {
            items,
            truncated: false,
            undecodable: Vec::new(),
        });
    }
    let named = |o: &K| names.contains(&o.name_any());
    kubernetes::list_keeping(api, ListParams::default(), src.limits, names.len(), named).await
}

#[cfg(test)]
mod tests {
    use http::Method;
    use k8s_openapi::api::core::v1::Pod;
    use kube::Client;
    use serde_json::json;

    use super::*;
    use crate::test_support::api_server_mock::{self, expect};

    fn pods(client: &Client, ns: Option<&str>) -> Api<Pod> {
        match ns {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        }
    }

    fn list_of(pods: &[(&str, &str)]) -> serde_json::Value {
        let items: Vec<_> = pods
            .iter()
            .map(|(ns, name)| json!({"metadata": {"namespace": ns, "name": name}}))
            .collect();
        json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items})
    }

    const PODS: Kind<'static> = Kind {
        resource: "pods",
        what: "restored pods",
    };

    async fn read(
        w: &mut Workloads,
        client: &Client,
        scope: Scope<'_>,
        warnings: &mut Vec<String>,
    ) -> Vec<String> {
        let limits = Limits::default();
        let lp = ListParams::default().labels("velero.io/restore-name=r1");
        let api = |ns: Option<&str>| pods(client, ns);
        let spread = w
            .list_in(
                (&limits, &mut |m| warnings.push(m)),
                PODS,
                api,
                (scope, lp),
                50,
                |_| true,
            )
            .await;
        spread
            .items
            .iter()
            .map(|p| format!("{}/{}", p.namespace().unwrap_or_default(), p.name_any()))
            .collect()
    }

    #[tokio::test]
    async fn several_namespaces_are_one_list_across_the_cluster_keeping_only_theirs() {
        let (client, server) = api_server_mock::client();
        let served = server.serve(vec![
            expect(Method::GET, "/api/v1/pods")
                .query("labelSelector=velero.io%2Frestore-name%3Dr1")
                .answer(200, list_of(&[("a", "p1"), ("other", "p2"), ("b", "p3")])),
        ]);
        let mut w = Workloads::default();
        let namespaces = ["a".to_string(), "b".to_string()];
        let mut warnings = vec![];
        let got = read(
            &mut w,
            &client,
            Scope::Namespaces(&namespaces),
            &mut warnings,
        )
        .await;
        assert_eq!(got, ["a/p1", "b/p3"]);
        assert!(warnings.is_empty(), "{warnings:?}");
        served.await.unwrap().done().await;
    }

    #[tokio::test]
    async fn refused_across_the_cluster_each_namespace_is_listed_and_the_cluster_not_asked_again() {
        let (client, server) = api_server_mock::client();
        let served = server.serve(vec![
            expect(Method::GET, "/api/v1/pods").refused(403, "Forbidden"),
            expect(Method::GET, "/api/v1/namespaces/a/pods").answer(200, list_of(&[("a", "p1")])),
            expect(Method::GET, "/api/v1/namespaces/b/pods").refused(403, "Forbidden"),
            // The second kind goes namespace by namespace at once; b is not asked again.
            expect(Method::GET, "/api/v1/namespaces/a/pods").answer(200, list_of(&[("a", "p1")])),
        ]);
        let mut w = Workloads::default();
        let namespaces = ["a".to_string(), "b".to_string()];
        let mut warnings = vec![];
        let got = read(
            &mut w,
            &client,
            Scope::Namespaces(&namespaces),
            &mut warnings,
        )
        .await;
        assert_eq!(got, ["a/p1"]);
        assert!(w.cluster_refused && !w.refused_everywhere);
        assert!(w.is_refused("b", "pods") && !w.is_refused("a", "pods"));
        let again = read(
            &mut w,
            &client,
            Scope::Namespaces(&namespaces),
            &mut warnings,
        )
        .await;
        assert_eq!(again, ["a/p1"]);
        assert!(warnings.is_empty(), "{warnings:?}");
        served.await.unwrap().done().await;
    }

    #[tokio::test]
    async fn one_namespace_is_one_list_of_it_and_a_failure_is_warned() {
        let (client, server) = api_server_mock::client();
        let served = server.serve(vec![
            expect(Method::GET, "/api/v1/namespaces/a/pods").refused(500, "InternalError"),
        ]);
        let mut w = Workloads::default();
        let namespaces = ["a".to_string(), "not a name/..".to_string()];
        let mut warnings = vec![];
        let got = read(
            &mut w,
            &client,
            Scope::Namespaces(&namespaces),
            &mut warnings,
        )
        .await;
        assert!(got.is_empty());
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with("restored pods of namespace a: "),
            "{warnings:?}"
        );
        served.await.unwrap().done().await;
    }

    #[tokio::test]
    async fn everywhere_refused_falls_back_to_the_known_namespaces_and_says_so() {
        let (client, server) = api_server_mock::client();
        let served = server.serve(vec![
            expect(Method::GET, "/api/v1/pods").refused(403, "Forbidden"),
            expect(Method::GET, "/api/v1/namespaces/mapped/pods")
                .answer(200, list_of(&[("mapped", "p1")])),
        ]);
        let mut w = Workloads::default();
        let known = ["mapped".to_string()];
        let mut warnings = vec![];
        let got = read(
            &mut w,
            &client,
            Scope::Everywhere { known: &known },
            &mut warnings,
        )
        .await;
        assert_eq!(got, ["mapped/p1"]);
        assert!(w.refused_everywhere);
        served.await.unwrap().done().await;
    }
}

//! Kubernetes helpers every controller uses: paginated lists, requests under a timeout,
//! deletes that tolerate a missing object, server-side-applied status, and the apiVersion/kind
//! that list items lack.

use std::{fmt::Debug, future::Future, sync::LazyLock, time::Duration};

use kube::{
    Api, Resource,
    api::{DeleteParams, ListParams, Patch, PatchParams},
    core::{ApiResource, DynamicObject, ObjectList, TypeMeta},
};
use regex::Regex;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::value::RawValue;
use tokio_util::task::AbortOnDropHandle;
use tracing::Instrument;
use velero_debug_crd::{MAX_OBJECT_NAME_LEN, OBJECT_NAME_PATTERN};

use crate::config::Limits;

/// A kube error as one short line: the API server's own message, not the debug dump.
pub(crate) fn message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => format!("{} (HTTP {})", status.message, status.code),
        other => other.to_string(),
    }
}

/// Whether retrying the request may help: the server was unreachable, slow or overloaded.
/// A refusal (forbidden, invalid, not found) stays one.
pub(crate) fn is_transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(status) => status.code >= 500 || status.code == 429,
        _ => true,
    }
}

/// Drops an object's managedFields before a watch caches it: no controller here reads them,
/// they are often the larger part of a small object, and a reflector keeps every watched
/// object for the life of the process (a thousand finished bundles, a busy cluster's restores).
pub(crate) fn forget_managed_fields<K: Resource>(obj: &mut K) {
    obj.meta_mut().managed_fields = None;
}

/// Whether the API server answered "no such object".
pub(crate) fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(status) if status.code == 404)
}

/// Whether a [`message`] says the API server answered 404: for a list, that it does not serve
/// the resource (a CRD not installed).
pub(crate) fn is_not_found_message(message: &str) -> bool {
    message.ends_with("(HTTP 404)")
}

/// Whether the API server refused the request for want of permission.
pub(crate) fn is_forbidden(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(status) if status.code == 403)
}

/// Whether `name` can name a Kubernetes object (a DNS-1123 subdomain), as the CRD checks. Every
/// name that goes into a request's path is checked with it first: names read from objects are
/// anyone's writing, and one like `../secrets/x` must not become a path.
pub(crate) fn is_object_name(name: &str) -> bool {
    static PATTERN: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(OBJECT_NAME_PATTERN).expect("a valid regex"));
    name.len() <= MAX_OBJECT_NAME_LEN && PATTERN.is_match(name)
}

/// A request that did not succeed: a short line, and the API server's HTTP status when it
/// answered (a refusal the caller may treat on its own: 403 forbidden, 404 not served).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RequestError {
    pub message: String,
    pub code: Option<u16>,
}

impl RequestError {
    pub fn is_forbidden(&self) -> bool {
        self.code == Some(403)
    }

    pub fn is_not_found(&self) -> bool {
        self.code == Some(404)
    }
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Runs one API request under `timeout`; the error is a short line.
pub(crate) async fn with_timeout<T>(
    timeout: Duration,
    request: impl Future<Output = Result<T, kube::Error>>,
) -> Result<T, String> {
    request_within(timeout, request)
        .await
        .map_err(|e| e.message)
}

/// [`with_timeout`], keeping the API server's HTTP status of a refusal.
pub(crate) async fn request_within<T>(
    timeout: Duration,
    request: impl Future<Output = Result<T, kube::Error>>,
) -> Result<T, RequestError> {
    match tokio::time::timeout(timeout, request).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(RequestError {
            message: message(&e),
            code: match &e {
                kube::Error::Api(status) => Some(status.code),
                _ => None,
            },
        }),
        Err(_) => Err(RequestError {
            message: format!("timed out after {}s", timeout.as_secs()),
            code: None,
        }),
    }
}

/// A list cut at `Limits::max_list_items`, without the items this operator could not read.
pub(crate) struct Listed<K> {
    pub items: Vec<K>,
    pub truncated: bool,
    /// One line per item left out because it could not be decoded (see [`decode`]).
    pub undecodable: Vec<String>,
}

/// Lists page by page, each page under the API timeout, keeping at most `max_list_items`.
/// Each item is decoded on its own: one the API server stored but our types cannot read (an
/// odd timestamp, a number out of range) is left out and named in `undecodable`, never fails
/// the list.
pub(crate) async fn list_all<K>(
    api: &Api<K>,
    params: ListParams,
    limits: &Limits,
) -> Result<Listed<K>, RequestError>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    list_keeping(api, params, limits, limits.max_list_items, |_| true).await
}

/// [`list_all`], keeping only the items `keep` accepts, at most `max_kept` of them: an item
/// dropped is never held beyond its page. Reads at most `max_list_items` items in all;
/// `truncated` when either bound cut the list.
pub(crate) async fn list_keeping<K>(
    api: &Api<K>,
    params: ListParams,
    limits: &Limits,
    max_kept: usize,
    mut keep: impl FnMut(&K) -> bool,
) -> Result<Listed<K>, RequestError>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let mut pages = Pages::new(api, params, limits);
    if max_kept < limits.max_list_items {
        pages = pages.one_at_a_time();
    }
    let mut items = Vec::new();
    let mut cut = false;
    while let Some(page) = pages.next_raw().await? {
        for raw in page {
            items.extend(pages.decode_item(&raw).filter(|item| keep(item)));
        }
        if items.len() >= max_kept {
            cut = items.len() > max_kept || !pages.done;
            items.truncate(max_kept);
            break;
        }
    }
    Ok(Listed {
        items,
        truncated: cut || pages.truncated,
        undecodable: pages.undecodable,
    })
}

/// A list read one page at a time, for lists whose items are looked at and dropped (every
/// node of a cluster): a page is held, and the next one's text as it arrives. The same limits
/// as [`list_all`]; items left undecoded count towards `max_list_items` too.
pub(crate) struct Pages<K> {
    client: kube::Client,
    request: kube::core::Request,
    params: ListParams,
    api_timeout: Duration,
    max_items: usize,
    seen: usize,
    /// No page follows.
    done: bool,
    /// The list was cut at `max_list_items`.
    pub truncated: bool,
    /// Items left out because they could not be decoded, one line each.
    pub undecodable: Vec<String>,
    /// The next page, asked for as soon as the one before it came: the server makes it while
    /// this one is decoded and looked at, instead of after (BENCHMARKS.md, issue 38). Dropped
    /// with the list, its request is dropped too.
    ahead: Option<AbortOnDropHandle<Result<RawPage, RequestError>>>,
    /// Whether the next page is asked for ahead: not when the reader may stop before the end.
    read_ahead: bool,
    item: std::marker::PhantomData<K>,
}

/// A page as the server sent it: each item still its JSON text.
type RawPage = ObjectList<Box<RawValue>>;

impl<K> Pages<K>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    pub fn new(api: &Api<K>, params: ListParams, limits: &Limits) -> Self {
        Self {
            client: api.clone().into_client(),
            request: kube::core::Request::new(api.resource_url()),
            params: params.limit(limits.page_size),
            api_timeout: limits.api_timeout,
            max_items: limits.max_list_items,
            seen: 0,
            done: false,
            truncated: false,
            undecodable: Vec::new(),
            ahead: None,
            read_ahead: true,
            item: std::marker::PhantomData,
        }
    }

    /// Each page asked for only when it is wanted: for a reader that may stop early, to which
    /// a page asked for ahead would be a request for nothing.
    pub fn one_at_a_time(mut self) -> Self {
        self.read_ahead = false;
        self
    }

    /// The next page's items; None once the list is over.
    pub async fn next(&mut self) -> Result<Option<Vec<K>>, RequestError> {
        let Some(page) = self.next_raw().await? else {
            return Ok(None);
        };
        Ok(Some(
            page.iter()
                .filter_map(|raw| self.decode_item(raw))
                .collect(),
        ))
    }

    /// The next page's items as their JSON text, for a reader that decodes each as it takes it
    /// ([`decode_item`](Self::decode_item)): a page of objects read as trees of values held
    /// ten times its text (250 PodVolumeRestores: 7 MB; BENCHMARKS.md, issue 38), and only
    /// one item of it need be. None once the list is over.
    pub async fn next_raw(&mut self) -> Result<Option<Vec<Box<RawValue>>>, RequestError> {
        if self.done {
            return Ok(None);
        }
        let page = match self.ahead.take() {
            Some(ahead) => ahead.await.map_err(|e| RequestError {
                message: format!("the page's request ended: {e}"),
                code: None,
            })??,
            None => self.fetch()?.await?,
        };
        let mut items = page.items;
        if self.seen + items.len() >= self.max_items {
            items.truncate(self.max_items - self.seen);
            self.truncated = true;
            self.done = true;
        } else {
            match &page.metadata.continue_ {
                Some(token) if !token.is_empty() => {
                    self.params = self.params.clone().continue_token(token);
                    if self.read_ahead {
                        self.ask_ahead().await?;
                    }
                }
                _ => self.done = true,
            }
        }
        self.seen += items.len();
        Ok(Some(items))
    }

    /// One item of a page, decoded straight into K; None (and a line in `undecodable`) when
    /// it cannot be.
    pub fn decode_item(&mut self, raw: &RawValue) -> Option<K> {
        decode::<K>(raw)
            .map_err(|why| self.undecodable.push(why))
            .ok()
    }

    /// The request for the page `params` names, under the timeout.
    fn fetch(
        &self,
    ) -> Result<impl Future<Output = Result<RawPage, RequestError>> + Send + 'static, RequestError>
    {
        let page_request = self.request.list(&self.params).map_err(|e| RequestError {
            message: e.to_string(),
            code: None,
        })?;
        let (client, timeout) = (self.client.clone(), self.api_timeout);
        Ok(async move { request_within(timeout, client.request::<RawPage>(page_request)).await })
    }

    /// Starts the next page's request and lets it go out before this page is decoded: the
    /// runtime may have one thread, which decoding would hold.
    async fn ask_ahead(&mut self) -> Result<(), RequestError> {
        let fetch = self.fetch()?.in_current_span();
        self.ahead = Some(AbortOnDropHandle::new(tokio::spawn(fetch)));
        tokio::task::yield_now().await;
        Ok(())
    }
}

/// Decodes one object; the error names the object and the field that could not be read.
fn decode<K: DeserializeOwned>(raw: &RawValue) -> Result<K, String> {
    let mut json = serde_json::Deserializer::from_str(raw.get());
    serde_path_to_error::deserialize::<_, K>(&mut json)
        .map_err(|e| format!("{}: field {}: {}", object_named(raw), e.path(), e.inner()))
}

/// "namespace/name" (or "name") of an object that could not be decoded, read on its own: any
/// part that is not a string reads "?".
fn object_named(raw: &RawValue) -> String {
    #[derive(serde::Deserialize, Default)]
    #[serde(default)]
    struct Named {
        metadata: Meta,
    }
    #[derive(serde::Deserialize, Default)]
    #[serde(default)]
    struct Meta {
        name: serde_json::Value,
        namespace: serde_json::Value,
    }
    let meta = serde_json::from_str::<Named>(raw.get())
        .unwrap_or_default()
        .metadata;
    // The name is the API server's and bounded; still, a log line is no place for more.
    let name = |v: &serde_json::Value| v.as_str().unwrap_or("?").chars().take(253).collect();
    match meta.namespace.as_str() {
        Some(_) => format!("{}/{}", name(&meta.namespace), name(&meta.name)),
        None => name(&meta.name),
    }
}

/// Deletes an object; one already gone is fine.
pub(crate) async fn delete_if_present<K>(api: &Api<K>, name: &str) -> Result<(), kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Server-side applies `status` as the whole status of `name` under `manager`: fields it
/// leaves out are removed from what that manager owns. Returns the object as stored after it.
pub(crate) async fn apply_status<K>(
    api: &Api<K>,
    name: &str,
    manager: &str,
    status: &impl Serialize,
) -> Result<K, kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    apply_status_at(api, name, manager, status, None).await
}

/// [`apply_status`], refused (409 Conflict) unless the object is still at `resource_version`
/// when one is given: a writer that trails another's write cannot undo it.
pub(crate) async fn apply_status_at<K>(
    api: &Api<K>,
    name: &str,
    manager: &str,
    status: &impl Serialize,
    resource_version: Option<&str>,
) -> Result<K, kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let mut patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    if let Some(version) = resource_version {
        patch["metadata"] = serde_json::json!({ "resourceVersion": version });
    }
    api.patch_status(
        name,
        &PatchParams::apply(manager).force(),
        &Patch::Apply(&patch),
    )
    .await
}

/// Objects read through a dynamic API (list items especially) come without apiVersion and
/// kind; the bundle's YAML and the owner checks need them.
pub(crate) fn with_types(mut obj: DynamicObject, resource: &ApiResource) -> DynamicObject {
    obj.types = Some(TypeMeta {
        api_version: resource.api_version.clone(),
        kind: resource.kind.clone(),
    });
    obj
}

#[cfg(test)]
mod tests {
    use http::Method;
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;

    use super::*;
    use crate::{
        config::Config,
        test_support::api_server_mock::{self, expect},
    };

    fn pod_list(names: &[&str], next: &str) -> serde_json::Value {
        let items: Vec<serde_json::Value> = names
            .iter()
            .map(|n| {
                let phase = if n.starts_with("ready") {
                    "Running"
                } else {
                    "Pending"
                };
                json!({"metadata": {"name": n}, "status": {"phase": phase}})
            })
            .collect();
        json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"continue": next}, "items": items})
    }

    #[tokio::test]
    async fn a_kept_list_holds_only_what_it_keeps_and_stops_at_its_bound() {
        let (ctx, server) = api_server_mock::context(Config::default());
        let path = "/api/v1/namespaces/shop/pods";
        let served = server.serve(vec![
            expect(Method::GET, path)
                .query("labelSelector=velero.io%2Frestore-name%3Dr1")
                .answer(200, pod_list(&["ready-1", "pending-1"], "t1")),
            expect(Method::GET, path)
                .query("continue=t1")
                .answer(200, pod_list(&["ready-2", "pending-2", "pending-3"], "t2")),
        ]);
        let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), "shop");
        let lp = ListParams::default().labels("velero.io/restore-name=r1");
        let pending =
            |p: &Pod| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Pending");
        let listed = list_keeping(&pods, lp, &Limits::default(), 2, pending)
            .await
            .unwrap();
        // Two kept: the second page's third pod is left, and no third page is asked for.
        assert_eq!(names(&listed.items), ["pending-1", "pending-2"]);
        assert!(listed.truncated);
        served.await.unwrap().done().await;
    }

    fn names(pods: &[Pod]) -> Vec<&str> {
        pods.iter()
            .map(|p| p.metadata.name.as_deref().unwrap_or_default())
            .collect()
    }

    #[tokio::test]
    async fn the_next_page_is_asked_for_while_the_one_before_is_looked_at() {
        let (ctx, server) = api_server_mock::context(Config::default());
        let path = "/api/v1/namespaces/shop/pods";
        let served = server.serve(vec![
            expect(Method::GET, path).answer(200, pod_list(&["ready-1"], "t1")),
            expect(Method::GET, path)
                .query("continue=t1")
                .answer(200, pod_list(&["ready-2", "ready-3"], "")),
        ]);
        let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), "shop");
        let mut pages = Pages::new(&pods, ListParams::default(), &Limits::default());
        let first = pages.next().await.unwrap().unwrap();
        // The second page is asked for before the reader wants it: both requests are served
        // while the reader still holds the first page.
        let served = tokio::time::timeout(Duration::from_secs(10), served)
            .await
            .expect("the second page was not asked for ahead")
            .unwrap();
        assert_eq!(names(&first), ["ready-1"]);
        let second = pages.next().await.unwrap().unwrap();
        assert_eq!(names(&second), ["ready-2", "ready-3"]);
        // The last page asks for nothing more.
        assert!(pages.next().await.unwrap().is_none());
        served.done().await;
    }

    #[tokio::test]
    async fn an_item_that_cannot_be_read_is_named_and_left_out_alone() {
        let (ctx, server) = api_server_mock::context(Config::default());
        let path = "/api/v1/namespaces/shop/pods";
        let mut page = pod_list(&["ready-1", "ready-2"], "");
        page["items"].as_array_mut().unwrap().insert(
            1,
            json!({"metadata": {"name": "odd", "namespace": "shop", "creationTimestamp": "yesterday"}}),
        );
        page["items"]
            .as_array_mut()
            .unwrap()
            .push(json!({"metadata": {"name": 7}, "spec": {"containers": "none"}}));
        let served = server.serve(vec![expect(Method::GET, path).answer(200, page)]);
        let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), "shop");
        let listed = list_all(&pods, ListParams::default(), &Limits::default())
            .await
            .unwrap();
        assert_eq!(names(&listed.items), ["ready-1", "ready-2"]);
        assert_eq!(listed.undecodable.len(), 2, "{:?}", listed.undecodable);
        assert!(
            listed.undecodable[0].starts_with("shop/odd: field metadata.creationTimestamp: "),
            "{}",
            listed.undecodable[0]
        );
        // A name that is no string is not made up.
        assert!(
            listed.undecodable[1].starts_with("?: field metadata.name: "),
            "{}",
            listed.undecodable[1]
        );
        served.await.unwrap().done().await;
    }

    #[tokio::test]
    async fn an_item_that_cannot_be_read_counts_towards_the_lists_bound() {
        let (ctx, server) = api_server_mock::context(Config::default());
        let path = "/api/v1/namespaces/shop/pods";
        let mut page = pod_list(&["ready-1", "ready-2"], "t1");
        page["items"]
            .as_array_mut()
            .unwrap()
            .insert(0, json!({"metadata": {"name": 7}}));
        // The bound is reached within the first page: no second page is asked for.
        let served = server.serve(vec![expect(Method::GET, path).answer(200, page)]);
        let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), "shop");
        let limits = Limits {
            max_list_items: 2,
            ..Limits::default()
        };
        let listed = list_all(&pods, ListParams::default(), &limits)
            .await
            .unwrap();
        assert_eq!(names(&listed.items), ["ready-1"]);
        assert!(listed.truncated);
        assert_eq!(listed.undecodable.len(), 1, "{:?}", listed.undecodable);
        served.await.unwrap().done().await;
    }

    fn api_error(code: u16) -> kube::Error {
        kube::Error::Api(Box::new(
            kube::core::Status::failure("no", "Reason").with_code(code),
        ))
    }

    #[test]
    fn refusals_are_permanent_and_outages_transient() {
        assert!(is_transient(&api_error(503)));
        assert!(is_transient(&api_error(429)));
        assert!(!is_transient(&api_error(403)));
        assert!(!is_transient(&api_error(422)));
        assert!(is_not_found(&api_error(404)) && !is_not_found(&api_error(403)));
        assert!(is_forbidden(&api_error(403)));
        assert_eq!(message(&api_error(403)), "no (HTTP 403)");
        assert!(is_not_found_message(&message(&api_error(404))));
        assert!(!is_not_found_message(&message(&api_error(403))));
    }

    #[test]
    fn a_cached_object_keeps_its_metadata_but_not_its_managed_fields() {
        let mut pod: Pod = serde_json::from_value(json!({
            "metadata": {
                "name": "p", "namespace": "ns", "labels": {"a": "b"},
                "managedFields": [{"manager": "kubectl", "operation": "Apply",
                                   "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {}}}],
            },
        }))
        .unwrap();
        assert_eq!(pod.metadata.managed_fields.as_ref().map(Vec::len), Some(1));
        forget_managed_fields(&mut pod);
        assert_eq!(pod.metadata.managed_fields, None);
        assert_eq!(pod.metadata.name.as_deref(), Some("p"));
        assert_eq!(pod.metadata.labels.unwrap()["a"], "b");
    }
}

//! The HTTP side: one handler reading method and path (routes.rs) and answering from the
//! bundle. Reads are answered for every kind; writes are refused, but for the DownloadRequests
//! Velero's CLI creates and deletes (downloads.rs). Only requests access.rs admits are read.

use std::{
    borrow::Cow,
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex},
};

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method, StatusCode, Uri, header},
    response::Response,
};
use serde_json::Value;

use super::{
    access::Access,
    coverage::Coverage,
    discovery,
    downloads::{self, BundleTarget, DownloadRequests},
    files,
    logs::LogIndex,
    objects::Store,
    openapi,
    reads::{self, ReadRequest},
    responses::{self, bad_request, not_found, ok, read_only},
    routes::{Resource, Route, route},
};

pub(crate) struct Bundle {
    pub store: Store,
    pub root: PathBuf,
    pub logs: LogIndex,
    pub target: BundleTarget,
    pub coverage: Coverage,
}

pub(crate) struct App {
    pub bundle: Bundle,
    pub downloads: Mutex<DownloadRequests>,
    /// http://127.0.0.1:PORT, for the URLs DownloadRequests hand out.
    pub base: String,
    pub access: Access,
}

pub(crate) fn router(app: Arc<App>) -> axum::Router {
    axum::Router::new().fallback(answer).with_state(app)
}

async fn answer(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query: HashMap<String, String> =
        form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let path = match app.access.admit(&headers, uri.path(), &query) {
        Ok(path) => path,
        Err(refused) => return *refused,
    };
    let route = route(path);
    match method {
        Method::GET | Method::HEAD => get(&app, route, &query, &headers).await,
        Method::POST => match route {
            Route::Collection(r) if is_download_request(&r) => create_download(&app, &r, &body),
            _ => read_only("create"),
        },
        Method::DELETE => match route {
            Route::Object(r, name) if is_download_request(&r) => delete_download(&app, &r, &name),
            _ => read_only("delete"),
        },
        Method::PUT => read_only("update"),
        Method::PATCH => read_only("patch"),
        _ => read_only(method.as_str()),
    }
}

fn is_download_request(r: &Resource) -> bool {
    r.group == "velero.io" && r.plural == "downloadrequests" && r.namespace.is_some()
}

async fn get(
    app: &App,
    route: Route,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Response {
    let kinds = &app.bundle.store.kinds;
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let request = ReadRequest {
        query,
        wants_table: accept.contains("as=Table"),
    };
    match route {
        Route::Version => ok(&discovery::version()),
        Route::CoreVersions => ok(&discovery::core_versions()),
        Route::Groups => ok(&discovery::group_list(kinds)),
        Route::Group(g) => {
            discovery::group(kinds, &g).map_or_else(|| not_found("group"), |v| ok(&v))
        }
        Route::Resources { group, version } => discovery::resources(kinds, &group, &version)
            .map_or_else(|| not_found("group version"), |v| ok(&v)),
        Route::Collection(r) => collection(app, &r, &request),
        Route::Object(r, name) | Route::Subresource(r, name, _) => object(app, &r, &name, &request),
        Route::Log { namespace, pod } => log(app, &namespace, &pod, query).await,
        Route::Download { namespace, name } => download(app, &namespace, &name),
        Route::OpenApiRoot => ok(&openapi::root(kinds)),
        Route::OpenApi(path) => openapi::group_version(kinds, &path)
            .map_or_else(|| not_found("group version"), |v| ok(&v)),
        Route::NotFound => not_found("the path"),
    }
}

/// The kind's objects: the bundle's, borrowed, or for DownloadRequests those created since (a
/// few, copied out of their lock).
fn objects_of(app: &App, kind: usize) -> Cow<'_, [Value]> {
    if app.bundle.store.kinds[kind].kind == "DownloadRequest" {
        return Cow::Owned(
            app.downloads
                .lock()
                .map(|d| d.all().to_vec())
                .unwrap_or_default(),
        );
    }
    Cow::Borrowed(app.bundle.store.objects(kind))
}

fn kind_of(app: &App, r: &Resource) -> Option<usize> {
    app.bundle.store.kind_of(&r.group, &r.version, &r.plural)
}

fn no_such_resource(r: &Resource) -> Response {
    not_found(&format!(
        "the server could not find the requested resource ({})",
        r.plural
    ))
}

fn collection(app: &App, r: &Resource, request: &ReadRequest) -> Response {
    if request
        .query
        .get("watch")
        .is_some_and(|w| w == "true" || w == "1")
    {
        return bad_request("watch is not served: a bundle does not change");
    }
    let Some(kind) = kind_of(app, r) else {
        return no_such_resource(r);
    };
    let objects = objects_of(app, kind);
    let selected = match reads::select(&objects, r, request.query) {
        Ok(s) => s,
        Err(e) => return bad_request(&e),
    };
    let warnings = app
        .bundle
        .coverage
        .warnings(&app.bundle.store.kinds[kind], r.namespace.as_deref());
    responses::with_warnings(
        reads::list(&app.bundle.store, kind, &selected, request),
        &warnings,
    )
}

fn object(app: &App, r: &Resource, name: &str, request: &ReadRequest) -> Response {
    let Some(kind) = kind_of(app, r) else {
        return no_such_resource(r);
    };
    let objects = objects_of(app, kind);
    let response = reads::object(&app.bundle.store, kind, &objects, r, name, request);
    if response.status() != StatusCode::NOT_FOUND {
        return response;
    }
    let warnings = app
        .bundle
        .coverage
        .warnings(&app.bundle.store.kinds[kind], r.namespace.as_deref());
    responses::with_warnings(response, &warnings)
}

async fn log(app: &App, namespace: &str, pod: &str, query: &HashMap<String, String>) -> Response {
    let container = match query.get("container") {
        Some(c) => c.clone(),
        None => first_container(app, namespace, pod).unwrap_or_default(),
    };
    let previous = query.get("previous").is_some_and(|p| p == "true");
    let Some(path) = app.bundle.logs.find(pod, &container, previous) else {
        let which = if previous { "previous log" } else { "log" };
        return not_found(&format!(
            "the {which} of container {container:?} of pod {namespace}/{pod} (not in the bundle)"
        ));
    };
    let tail = query.get("tailLines").and_then(|n| n.parse().ok());
    match files::log(path.to_path_buf(), tail).await {
        Ok(body) => responses::text(body),
        Err(e) => not_found(&format!("the log file ({e})")),
    }
}

fn first_container(app: &App, namespace: &str, pod: &str) -> Option<String> {
    let kind = app.bundle.store.kind_of("", "v1", "pods")?;
    let pod = app
        .bundle
        .store
        .objects(kind)
        .iter()
        .find(|o| o["metadata"]["name"] == pod && o["metadata"]["namespace"] == namespace)?;
    pod["spec"]["containers"][0]["name"]
        .as_str()
        .map(String::from)
}

fn create_download(app: &App, r: &Resource, body: &Bytes) -> Response {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return bad_request("the body is not a JSON DownloadRequest");
    };
    let namespace = r.namespace.as_deref().unwrap_or_default();
    let Ok(mut downloads) = app.downloads.lock() else {
        return bad_request("the server's state is poisoned");
    };
    let url_of = |name: &str| app.access.download_url(&app.base, namespace, name);
    match downloads.create(namespace, value, url_of) {
        Ok(made) => responses::json(StatusCode::CREATED, &made),
        Err(message) => bad_request(&message),
    }
}

fn delete_download(app: &App, r: &Resource, name: &str) -> Response {
    let namespace = r.namespace.as_deref().unwrap_or_default();
    let deleted = app
        .downloads
        .lock()
        .ok()
        .and_then(|mut d| d.delete(namespace, name));
    match deleted {
        Some(d) => ok(&d),
        None => not_found(&format!("downloadrequests.velero.io \"{name}\"")),
    }
}

fn download(app: &App, namespace: &str, name: &str) -> Response {
    let request = app
        .downloads
        .lock()
        .ok()
        .and_then(|d| d.get(namespace, name).cloned());
    let Some(request) = request else {
        return not_found(&format!("DownloadRequest {namespace}/{name}"));
    };
    match downloads::path_of(&app.bundle.root, &app.bundle.target, &request) {
        Some(path) => responses::text(files::gzipped(path)),
        None => not_found("the file (this bundle does not hold it)"),
    }
}

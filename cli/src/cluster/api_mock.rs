//! A mock API server for the watch-based commands: it answers a list with `listed` and the
//! first watch with `events`, then holds later watches open, as a quiet server does. A merge
//! patch is answered with the first listed object; the refresh annotation's value it sets
//! replaces the string [`REFRESH_VALUE`] in the events, as the operator would echo it.

use http::{Request, Response};
use kube::{Client, client::Body};
use serde_json::{Value, json};

pub(crate) const REFRESH_VALUE: &str = "$REFRESH";

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// A client whose requests the returned task answers; once every clone of the client is
/// dropped the task ends with each request's method and URI.
pub(crate) fn client(
    listed: Vec<Value>,
    events: Vec<Value>,
) -> (Client, tokio::task::JoinHandle<Vec<String>>) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let task = tokio::spawn(serve(handle, listed, events));
    (Client::new(service, "velero"), task)
}

async fn serve(mut handle: Handle, listed: Vec<Value>, events: Vec<Value>) -> Vec<String> {
    let mut seen = Vec::new();
    let mut events = Some(events);
    let mut refresh_value = String::new();
    while let Some((request, respond)) = handle.next_request().await {
        let uri = request.uri().to_string();
        seen.push(format!("{} {uri}", request.method()));
        let body = if request.method() == http::Method::PATCH {
            let bytes = request.into_body().collect_bytes().await.unwrap();
            let patch: Value = serde_json::from_slice(&bytes).unwrap();
            let annotation =
                &patch["metadata"]["annotations"][velero_debug_crd::ANNOTATION_REFRESH_URL];
            refresh_value = annotation.as_str().unwrap_or_default().to_string();
            serde_json::to_vec(listed.first().unwrap_or(&json!({}))).unwrap()
        } else if uri.contains("watch=true") {
            let Some(events) = events.take() else {
                // Later watches stay open with nothing to say.
                std::mem::forget(respond);
                continue;
            };
            events
                .iter()
                .map(|e| {
                    serde_json::to_string(e)
                        .unwrap()
                        .replace(REFRESH_VALUE, &refresh_value)
                        + "\n"
                })
                .collect::<String>()
                .into_bytes()
        } else {
            serde_json::to_vec(&json!({
                "apiVersion": "velerodebug.io/v1alpha1",
                "kind": "DebugBundleList",
                "metadata": {"resourceVersion": "10"},
                "items": listed,
            }))
            .unwrap()
        };
        respond.send_response(Response::new(Body::from(body)));
    }
    seen
}

/// A watch event of `kind` carrying `object`.
pub(crate) fn event(kind: &str, object: Value) -> Value {
    json!({"type": kind, "object": object})
}

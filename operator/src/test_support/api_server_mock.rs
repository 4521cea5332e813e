//! Reconcile tests without a server, in the style of kube-rs/controller-rs: the client talks
//! to a mock service, and a scenario lists every request the reconciler must make, in order,
//! with the answer each gets. A request that differs in method, path, query or body, one too
//! many, or one missing fails the test.

use std::{sync::Arc, time::Duration};

use http::{Method, Request, Response, StatusCode};
use kube::{Client, client::Body};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::{
    config::Config, context::Context, metrics::Metrics, redact::Redactor,
    request_tally::RequestTally,
};

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;
type Reply = tower_test::mock::SendResponse<Response<Body>>;

/// A context whose client is answered by the returned mock API server.
pub(crate) fn context(config: Config) -> (Arc<Context>, ApiServer) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let ctx = Context::new(
        client,
        config,
        Arc::new(Redactor::new()),
        Arc::new(RequestTally::default()),
        Arc::new(Metrics::new()),
        CancellationToken::new(),
        ("test-cluster".into(), None),
    );
    (
        Arc::new(ctx),
        ApiServer {
            handle,
            unanswered: Vec::new(),
        },
    )
}

/// A client answered by the returned mock API server, for parts that take only a client.
pub(crate) fn client() -> (Client, ApiServer) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let server = ApiServer {
        handle,
        unanswered: Vec::new(),
    };
    (Client::new(service, "default"), server)
}

/// One expected request and the answer it gets.
pub(crate) struct Exchange {
    method: Method,
    path: String,
    /// `key=value` pairs the query must hold.
    query: Vec<String>,
    /// (JSON pointer, value) pairs the request body must hold.
    body: Vec<(String, Value)>,
    /// (JSON pointer, start) pairs: the body's string there must start so (an event's note,
    /// a value holding the time it was written).
    text_prefixes: Vec<(String, String)>,
    status: StatusCode,
    answer: Value,
    /// Never answered: a hung API server.
    unanswered: bool,
}

pub(crate) fn expect(method: Method, path: &str) -> Exchange {
    Exchange {
        method,
        path: path.to_string(),
        query: Vec::new(),
        body: Vec::new(),
        text_prefixes: Vec::new(),
        status: StatusCode::OK,
        answer: Value::Null,
        unanswered: false,
    }
}

impl Exchange {
    pub fn query(mut self, pair: &str) -> Self {
        self.query.push(pair.to_string());
        self
    }

    pub fn body(mut self, pointer: &str, value: Value) -> Self {
        self.body.push((pointer.to_string(), value));
        self
    }

    pub fn text_starts(mut self, pointer: &str, prefix: &str) -> Self {
        self.text_prefixes
            .push((pointer.to_string(), prefix.to_string()));
        self
    }

    pub fn answer(mut self, status: u16, answer: Value) -> Self {
        self.status = StatusCode::from_u16(status).expect("a valid HTTP status");
        self.answer = answer;
        self
    }

    /// Answers with the request's own body (what the API server returns for a created
    /// object, near enough).
    pub fn echo(self) -> Self {
        self.answer(201, Value::Null)
    }

    /// Takes the request and never answers it (the connection stays open).
    pub fn unanswered(mut self) -> Self {
        self.unanswered = true;
        self
    }

    /// Answers `404 NotFound` as the API server does.
    pub fn not_found(self) -> Self {
        self.refused(404, "NotFound")
    }

    pub fn refused(self, code: u16, reason: &str) -> Self {
        let status = serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": format!("refused by the mock ({reason})"), "reason": reason, "code": code,
        });
        self.answer(code, status)
    }
}

pub(crate) struct ApiServer {
    handle: Handle,
    /// The replies of requests left unanswered, kept so their requests hang.
    unanswered: Vec<Reply>,
}

impl ApiServer {
    /// Answers `exchanges` in order on a task of its own, then fails on any further request;
    /// join it once the reconcile returned, then call [`ApiServer::done`].
    pub fn serve(mut self, exchanges: Vec<Exchange>) -> tokio::task::JoinHandle<ApiServer> {
        tokio::spawn(async move {
            let count = exchanges.len();
            for (i, want) in exchanges.into_iter().enumerate() {
                self.answer(i, want).await;
            }
            // A request nobody expected would otherwise wait for its answer forever.
            let extra =
                tokio::time::timeout(Duration::from_millis(300), self.handle.next_request());
            if let Ok(Some((request, _))) = extra.await {
                panic!(
                    "request {count} was not expected: {} {}",
                    request.method(),
                    request.uri()
                );
            }
            self
        })
    }

    async fn answer(&mut self, i: usize, want: Exchange) {
        let next = tokio::time::timeout(Duration::from_secs(10), self.handle.next_request()).await;
        let (request, reply) = next
            .unwrap_or_else(|_| panic!("request {i} ({} {}) never came", want.method, want.path))
            .expect("the client is alive");
        let (method, uri) = (request.method().clone(), request.uri().clone());
        let seen = format!("{method} {uri}");
        assert_eq!(method, want.method, "request {i}: {seen}");
        assert_eq!(uri.path(), want.path, "request {i}: {seen}");
        let query = uri.query().unwrap_or_default();
        for pair in &want.query {
            assert!(
                query.split('&').any(|q| q == pair),
                "request {i}: {seen} lacks {pair}"
            );
        }
        let bytes = request.into_body().collect_bytes().await.expect("a body");
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        for (pointer, value) in &want.body {
            assert_eq!(
                body.pointer(pointer),
                Some(value),
                "request {i}: {seen}: body at {pointer} in {body}"
            );
        }
        for (pointer, prefix) in &want.text_prefixes {
            let text = body.pointer(pointer).and_then(Value::as_str);
            assert!(
                text.is_some_and(|t| t.starts_with(prefix.as_str())),
                "request {i}: {seen}: body at {pointer} is {text:?}, not starting {prefix:?}"
            );
        }
        if want.unanswered {
            self.unanswered.push(reply);
            return;
        }
        let answer = if want.answer.is_null() {
            body
        } else {
            want.answer
        };
        let response = Response::builder()
            .status(want.status)
            .body(Body::from(serde_json::to_vec(&answer).expect("JSON")))
            .expect("a response");
        reply.send_response(response);
    }

    /// Fails when the reconciler made a request no scenario expected.
    pub async fn done(mut self) {
        let extra =
            tokio::time::timeout(Duration::from_millis(200), self.handle.next_request()).await;
        if let Ok(Some((request, _))) = extra {
            panic!("unexpected request {} {}", request.method(), request.uri());
        }
    }
}

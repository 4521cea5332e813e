//! A bound on every API request: the time to the response's headers (API_TIMEOUT_SECONDS).
//! Watches and log streams get their headers at once and are bounded past them elsewhere
//! (kube's read timeout, LOG_TIMEOUT_SECONDS); everything else (a get, a list page, a status
//! patch, an event) is done when its headers come, so no request outside collection can hang.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use tower::{BoxError, Layer, Service};

/// The error of a request that got no answer in time; kube reports it as
/// `kube::Error::Service`, which `kubernetes::is_transient` retries.
#[derive(Debug, thiserror::Error)]
#[error("the API server did not answer within {}s (API_TIMEOUT_SECONDS)", .after.as_secs())]
pub(crate) struct NoAnswer {
    after: Duration,
}

/// Wraps the client's service stack (see `process::counting_client`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct AnswerTimeoutLayer {
    timeout: Duration,
}

impl AnswerTimeoutLayer {
    pub(crate) fn new(timeout: Duration) -> Self {
        Self { timeout }
    }
}

impl<S> Layer<S> for AnswerTimeoutLayer {
    type Service = AnswerTimeout<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AnswerTimeout {
            inner,
            timeout: self.timeout,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct AnswerTimeout<S> {
    inner: S,
    timeout: Duration,
}

impl<S, Request> Service<Request> for AnswerTimeout<S>
where
    S: Service<Request>,
    S::Response: 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let answer = self.inner.call(request);
        let after = self.timeout;
        Box::pin(async move {
            match tokio::time::timeout(after, answer).await {
                Ok(answered) => answered.map_err(Into::into),
                Err(_) => Err(Box::new(NoAnswer { after }) as BoxError),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{Request, Response};
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::{Api, Client, client::Body};

    #[tokio::test(start_paused = true)]
    async fn a_request_without_an_answer_fails_transient_after_the_timeout() {
        let (service, mut server) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(
            AnswerTimeoutLayer::new(Duration::from_secs(30)).layer(service),
            "default",
        );
        let api: Api<ConfigMap> = Api::namespaced(client, "velero");
        let started = tokio::time::Instant::now();
        let get = async {
            let answered = api.get("c").await;
            (answered, started.elapsed())
        };
        let ((answered, waited), request) = tokio::join!(get, async {
            // The server takes the request and never answers (the handle stays open).
            let (request, _never_answered) = server.next_request().await.expect("a request");
            tokio::time::sleep(Duration::from_secs(3600)).await;
            request
        });
        assert_eq!(
            request.uri().path(),
            "/api/v1/namespaces/velero/configmaps/c"
        );
        let error = answered.expect_err("no answer, no object");
        assert!(
            matches!(&error, kube::Error::Service(e) if e.is::<NoAnswer>()),
            "{error:?}"
        );
        assert!(crate::kubernetes::is_transient(&error));
        assert_eq!(
            crate::kubernetes::message(&error),
            "ServiceError: the API server did not answer within 30s (API_TIMEOUT_SECONDS)"
        );
        // It failed at the timeout, not when the server gave up.
        assert!(waited < Duration::from_secs(31), "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_in_time_passes_through() {
        let (service, mut server) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(
            AnswerTimeoutLayer::new(Duration::from_secs(30)).layer(service),
            "default",
        );
        let api: Api<ConfigMap> = Api::namespaced(client, "velero");
        let (answered, ()) = tokio::join!(api.get("c"), async {
            let (_, respond) = server.next_request().await.expect("a request");
            tokio::time::sleep(Duration::from_secs(29)).await;
            let body = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "c", "namespace": "velero"}});
            respond.send_response(
                Response::builder()
                    .body(Body::from(serde_json::to_vec(&body).unwrap()))
                    .unwrap(),
            );
        });
        assert_eq!(
            answered.expect("answered in time").metadata.name.as_deref(),
            Some("c")
        );
    }
}

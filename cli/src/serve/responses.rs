//! Answers in the API server's shapes: JSON objects, and `Status` for every error, so kubectl
//! and Velero print the message as "Error from server (Reason): message".

use axum::{
    body::Body,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

pub(crate) fn json(code: StatusCode, value: &Value) -> Response {
    let mut response = (code, value.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

pub(crate) fn ok(value: &Value) -> Response {
    json(StatusCode::OK, value)
}

pub(crate) fn status(code: StatusCode, reason: &str, message: &str) -> Response {
    json(
        code,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code.as_u16()}),
    )
}

pub(crate) fn not_found(what: &str) -> Response {
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!("{what} not found"),
    )
}

pub(crate) fn bad_request(message: &str) -> Response {
    status(StatusCode::BAD_REQUEST, "BadRequest", message)
}

/// Every write but a DownloadRequest's.
pub(crate) fn read_only(verb: &str) -> Response {
    status(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        &format!(
            "{verb} refused: this API serves a velero-debug bundle, which is read-only \
             (kubectl velero-debug serve)"
        ),
    )
}

pub(crate) fn text(body: Body) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

/// Adds `Warning: 299 - "..."` headers: kubectl prints each as "Warning: ..." on stderr.
pub(crate) fn with_warnings(mut response: Response, warnings: &[String]) -> Response {
    for w in warnings {
        let quoted = w.replace(['"', '\\'], "'");
        let printable: String = quoted
            .chars()
            .filter(|c| c.is_ascii() && !c.is_ascii_control())
            .collect();
        if let Ok(value) = HeaderValue::from_str(&format!("299 - \"{printable}\"")) {
            response.headers_mut().append(header::WARNING, value);
        }
    }
    response
}

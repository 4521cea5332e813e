//! An admission webhook of the test's own: an HTTPS server in the test process that denies every
//! object the API server sends it, or (as a service mesh's injector does) puts an init container
//! first in every pod it is sent. The API server runs as a local process, so it
//! reaches the webhook at `https://127.0.0.1:<port>`; the server presents the environment's test
//! certificate (IP 127.0.0.1, signed by its throwaway CA), which the webhook configuration
//! trusts through its caBundle.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::TcpListener,
    task::JoinHandle,
};

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use kube::{
    Api,
    api::{ApiResource, PostParams},
};

use crate::{
    context::{TestCtx, unique_name},
    env::Env,
};

/// What the webhook answers every review with.
#[derive(Debug, Clone)]
enum Answer {
    /// Refused, with this message.
    Deny(String),
    /// Allowed, with this container put first among the pod's init containers.
    PrependInitContainer(serde_json::Value),
}

/// The running webhook server; stopped when dropped.
pub struct AdmissionWebhook {
    /// `https://127.0.0.1:<port>/review`.
    pub url: String,
    /// The CA that signed its certificate, base64 (the configuration's caBundle).
    pub ca_bundle: String,
    task: JoinHandle<()>,
}

impl Drop for AdmissionWebhook {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl AdmissionWebhook {
    /// Starts a server that denies every review with `message`.
    pub async fn denying(env: &Env, message: &str) -> Result<AdmissionWebhook> {
        Self::start(env, Answer::Deny(message.to_string())).await
    }

    /// Starts a server that allows every pod with `container` first among its init containers
    /// (before any Velero put there), as a mesh's injector does.
    pub async fn prepending_init_container(
        env: &Env,
        container: serde_json::Value,
    ) -> Result<AdmissionWebhook> {
        Self::start(env, Answer::PrependInitContainer(container)).await
    }

    /// A mesh injector whose init container `mesh-init` (busybox, on the real node) fails:
    /// a pod it is put in never reaches the init containers after it, Velero's restore-wait.
    pub async fn failing_mesh_init(env: &Env) -> Result<AdmissionWebhook> {
        let container = serde_json::json!({
            "name": "mesh-init", "image": env.real_node()?.busybox_image,
            "imagePullPolicy": "Never",
            "command": ["sh", "-c", "echo 'mesh-init: no route to the mesh control plane' >&2; exit 1"],
        });
        Self::prepending_init_container(env, container).await
    }

    /// Sends the webhook every pod created in namespace `ns` (a MutatingWebhookConfiguration
    /// the test's cleanup deletes), as a mesh's injector is sent them.
    pub async fn inject_into(&self, t: &TestCtx, ns: &str) -> Result<()> {
        let name = format!("{}.e2e.velerodebug.io", unique_name("inject"));
        let config: MutatingWebhookConfiguration = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "webhooks": [{
                "name": name,
                "clientConfig": {"url": self.url, "caBundle": self.ca_bundle},
                "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                           "resources": ["pods"], "scope": "Namespaced"}],
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}},
                "failurePolicy": "Fail", "sideEffects": "None", "reinvocationPolicy": "Never",
                "admissionReviewVersions": ["v1"], "timeoutSeconds": 5,
            }],
        }))?;
        Api::<MutatingWebhookConfiguration>::all(t.client.clone())
            .create(&PostParams::default(), &config)
            .await?;
        t.cleanup.delete(
            &ApiResource::erase::<MutatingWebhookConfiguration>(&()),
            None,
            &name,
        );
        Ok(())
    }

    async fn start(env: &Env, answer: Answer) -> Result<AdmissionWebhook> {
        use base64::Engine;
        let tls = env.s3.ca_file.parent().context("no TLS folder")?;
        let certs = CertificateDer::pem_file_iter(tls.join("server.crt"))?
            .collect::<Result<Vec<_>, _>>()?;
        let key = PrivateKeyDer::from_pem_file(tls.join("server.key"))?;
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, answer) = (acceptor.clone(), answer.clone());
                tokio::spawn(async move {
                    if let Ok(conn) = acceptor.accept(tcp).await {
                        // A connection the API server closes ends here; nothing to report.
                        let _ = serve(conn, &answer).await;
                    }
                });
            }
        });
        let ca = std::fs::read(&env.s3.ca_file)?;
        Ok(AdmissionWebhook {
            url: format!("https://127.0.0.1:{port}/review"),
            ca_bundle: base64::engine::general_purpose::STANDARD.encode(ca),
            task,
        })
    }
}

/// Answers the AdmissionReviews of one connection (the API server keeps it alive).
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut conn: S, answer: &Answer) -> Result<()> {
    let mut buf = Vec::new();
    loop {
        let (head_len, body_len) = loop {
            if let Some(found) = request_head(&buf)? {
                break found;
            }
            if read_more(&mut conn, &mut buf).await? == 0 {
                return Ok(());
            }
        };
        while buf.len() < head_len + body_len {
            if read_more(&mut conn, &mut buf).await? == 0 {
                bail!("connection closed mid-request");
            }
        }
        let review: serde_json::Value = serde_json::from_slice(&buf[head_len..][..body_len])?;
        buf.drain(..head_len + body_len);
        let body = serde_json::json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "response": response_to(&review["request"], answer),
        })
        .to_string();
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        conn.write_all(response.as_bytes()).await?;
        conn.flush().await?;
    }
}

/// The review's `response`: a refusal, or the JSON patch that puts the container first.
fn response_to(request: &serde_json::Value, answer: &Answer) -> serde_json::Value {
    use base64::Engine;
    let uid = &request["uid"];
    match answer {
        Answer::Deny(message) => serde_json::json!({
            "uid": uid, "allowed": false, "status": {"code": 403, "message": message},
        }),
        Answer::PrependInitContainer(container) => {
            let patch = if request["object"]["spec"]["initContainers"].is_array() {
                serde_json::json!([{"op": "add", "path": "/spec/initContainers/0", "value": container}])
            } else {
                serde_json::json!([{"op": "add", "path": "/spec/initContainers", "value": [container]}])
            };
            serde_json::json!({
                "uid": uid, "allowed": true, "patchType": "JSONPatch",
                "patch": base64::engine::general_purpose::STANDARD.encode(patch.to_string()),
            })
        }
    }
}

async fn read_more<S: AsyncRead + Unpin>(conn: &mut S, buf: &mut Vec<u8>) -> Result<usize> {
    let mut chunk = [0u8; 16 * 1024];
    let n = conn.read(&mut chunk).await?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n)
}

/// The length of a complete request head in `buf` and its Content-Length, once it is there.
fn request_head(buf: &[u8]) -> Result<Option<(usize, usize)>> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(len) = request.parse(buf)? else {
        return Ok(None);
    };
    let body = request
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .map(|h| std::str::from_utf8(h.value).unwrap_or("0").trim().parse())
        .transpose()?
        .unwrap_or(0);
    Ok(Some((len, body)))
}

//! A TCP proxy in front of the environment's S3 server that holds the requests a test names:
//! such a request is read but not forwarded, and nothing answers it, until the test lets it
//! through (or its client gives up on it, and then it is dropped unsent). A fault test can so
//! stall the store at a moment it chooses by request (the first part of an upload), which no
//! clock can miss however small or fast the upload; the server behind it stays the real one.
//!
//! Requests are framed by `Content-Length` (what the AWS SDK and the operator send); a
//! connection whose request is chunked is passed through unread from then on.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use anyhow::{Context, Result, bail};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream, tcp::OwnedReadHalf},
    sync::watch,
    task::JoinHandle,
};

/// Which requests are held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// Nothing: every request passes.
    Nothing,
    /// CreateMultipartUpload (`POST <key>?uploads`).
    UploadStart,
    /// UploadPart (`PUT <key>?partNumber=..&uploadId=..`): the upload has begun.
    UploadParts,
    /// ListObjectsV2 of the operator's folder (`GET ?list-type=2&prefix=..velero-debug-operator..`):
    /// the garbage collector's sweep, and not Velero's own checks of the location.
    ArchiveListings,
}

impl Hold {
    fn matches(self, method: &str, target: &str) -> bool {
        let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
        let has = |name: &str| {
            query
                .split('&')
                .any(|p| p == name || p.starts_with(&format!("{name}=")))
        };
        match self {
            Hold::Nothing => false,
            Hold::UploadStart => method == "POST" && has("uploads"),
            Hold::UploadParts => method == "PUT" && has("partNumber") && has("uploadId"),
            Hold::ArchiveListings => {
                method == "GET" && has("list-type") && query.contains("velero-debug-operator")
            }
        }
    }
}

struct State {
    hold: Hold,
    /// Requests held so far (each counted once, when it is held).
    held: usize,
}

pub struct HoldingProxy {
    endpoint: String,
    state: Arc<Mutex<State>>,
    /// Bumped whenever `hold` or `held` changes, so waiters look again.
    changed: watch::Sender<u64>,
    accept: JoinHandle<()>,
}

impl HoldingProxy {
    /// A proxy on a free loopback port forwarding to `upstream` (`http://host:port`).
    pub async fn start(upstream: &str, hold: Hold) -> Result<HoldingProxy> {
        let upstream: SocketAddr = upstream
            .strip_prefix("http://")
            .context("the upstream must be http://host:port")?
            .trim_end_matches('/')
            .parse()?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let state = Arc::new(Mutex::new(State { hold, held: 0 }));
        let (changed, _) = watch::channel(0u64);
        let accept = tokio::spawn({
            let (state, changed) = (state.clone(), changed.clone());
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    let conn = Connection {
                        state: state.clone(),
                        changed: changed.clone(),
                    };
                    tokio::spawn(async move {
                        if let Err(e) = conn.serve(client, upstream).await {
                            eprintln!("holding proxy: connection ended: {e:#}");
                        }
                    });
                }
            }
        });
        Ok(HoldingProxy {
            endpoint,
            state,
            changed,
            accept,
        })
    }

    /// `http://127.0.0.1:<port>`, for a BackupStorageLocation's `s3Url`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Holds `hold` from now on; `Hold::Nothing` lets every held request through.
    pub fn set(&self, hold: Hold) {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .hold = hold;
        self.changed.send_modify(|v| *v += 1);
    }

    /// Waits until at least `count` requests have been held; fails after `timeout`.
    pub async fn wait_held(&self, count: usize, timeout: Duration) -> Result<()> {
        let mut changes = self.changed.subscribe();
        let wait = async {
            loop {
                if self.held() >= count {
                    return Ok::<_, anyhow::Error>(());
                }
                changes.changed().await?;
            }
        };
        match tokio::time::timeout(timeout, wait).await {
            Ok(done) => done,
            Err(_) => bail!("{} of {count} requests held after {timeout:?}", self.held()),
        }
    }

    /// How many requests have been held so far.
    pub fn held(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .held
    }
}

impl Drop for HoldingProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

struct Connection {
    state: Arc<Mutex<State>>,
    changed: watch::Sender<u64>,
}

/// A request head is at most this long (S3 requests carry a few KiB of headers).
const MAX_HEAD: usize = 64 << 10;

impl Connection {
    async fn serve(self, client: TcpStream, upstream: SocketAddr) -> Result<()> {
        let server = TcpStream::connect(upstream).await?;
        let (mut from_client, mut to_client) = client.into_split();
        let (mut from_server, mut to_server) = server.into_split();
        // Answers go back as they come; only requests are read.
        let answers = tokio::spawn(async move {
            let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
            let _ = to_client.shutdown().await;
        });
        let mut buf = Vec::new();
        let result = loop {
            let Some(head) = read_head(&mut from_client, &mut buf).await? else {
                break Ok(());
            };
            let passed = self
                .pass(&head.method, &head.target, &mut from_client, &mut buf)
                .await?;
            if !passed {
                break Ok(()); // the client gave up on a held request: it is never sent
            }
            if head.chunked {
                to_server.write_all(&buf).await?;
                tokio::io::copy(&mut from_client, &mut to_server).await?;
                break Ok(());
            }
            let len = head.len + head.body_len;
            forward(&mut from_client, &mut to_server, &mut buf, len).await?;
        };
        let _ = to_server.shutdown().await;
        let _ = answers.await;
        result
    }

    /// Returns once the request may be sent (true), or when its client closed while it was
    /// held (false). Bytes the client sends meanwhile are kept in `buf`.
    async fn pass(
        &self,
        method: &str,
        target: &str,
        from_client: &mut OwnedReadHalf,
        buf: &mut Vec<u8>,
    ) -> Result<bool> {
        let held = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            let held = state.hold.matches(method, target);
            if held {
                state.held += 1;
            }
            held
        };
        if !held {
            return Ok(true);
        }
        eprintln!("holding proxy: holding {method} {target}");
        self.changed.send_modify(|v| *v += 1);
        let mut changes = self.changed.subscribe();
        let mut chunk = [0u8; 8192];
        loop {
            let hold = self
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .hold;
            if !hold.matches(method, target) {
                return Ok(true);
            }
            tokio::select! {
                read = from_client.read(&mut chunk) => match read? {
                    0 => return Ok(false),
                    n => buf.extend_from_slice(&chunk[..n]),
                },
                changed = changes.changed() => changed?,
            }
        }
    }
}

/// A request's head, as read.
struct Head {
    /// Its length in bytes, the blank line included.
    len: usize,
    body_len: usize,
    chunked: bool,
    method: String,
    target: String,
}

/// Reads until `buf` holds a whole request head, or None when the client closed between
/// requests.
async fn read_head(from_client: &mut OwnedReadHalf, buf: &mut Vec<u8>) -> Result<Option<Head>> {
    let mut chunk = [0u8; 8192];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut request = httparse::Request::new(&mut headers);
        if let httparse::Status::Complete(len) = request.parse(buf)? {
            let mut head = Head {
                len,
                body_len: 0,
                chunked: false,
                method: request.method.unwrap_or_default().to_string(),
                target: request.path.unwrap_or_default().to_string(),
            };
            for h in request.headers.iter() {
                if h.name.eq_ignore_ascii_case("content-length") {
                    head.body_len = std::str::from_utf8(h.value)?.trim().parse()?;
                } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                    head.chunked = true;
                }
            }
            return Ok(Some(head));
        }
        if buf.len() > MAX_HEAD {
            bail!("a request head over {MAX_HEAD} bytes");
        }
        match from_client.read(&mut chunk).await? {
            0 if buf.is_empty() => return Ok(None),
            0 => bail!("the client closed mid-request"),
            n => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Sends the first `len` bytes of the request stream (what `buf` holds, then the rest read
/// from the client); what `buf` holds past them stays for the next request.
async fn forward(
    from_client: &mut OwnedReadHalf,
    to_server: &mut tokio::net::tcp::OwnedWriteHalf,
    buf: &mut Vec<u8>,
    len: usize,
) -> Result<()> {
    let now = len.min(buf.len());
    to_server.write_all(&buf[..now]).await?;
    buf.drain(..now);
    let mut rest = (len - now) as u64;
    let mut chunk = vec![0u8; 64 << 10];
    while rest > 0 {
        let want = chunk.len().min(rest as usize);
        let n = from_client.read(&mut chunk[..want]).await?;
        if n == 0 {
            bail!("the client closed mid-body");
        }
        to_server.write_all(&chunk[..n]).await?;
        rest -= n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Hold;

    #[test]
    fn holds_only_the_requests_named() {
        assert!(Hold::UploadStart.matches("POST", "/b/k?uploads"));
        assert!(Hold::UploadStart.matches("POST", "/b/k?uploads&x-id=CreateMultipartUpload"));
        assert!(!Hold::UploadStart.matches("GET", "/b?uploads&prefix=k"));
        assert!(!Hold::UploadStart.matches("POST", "/b/k?uploadId=1"));
        assert!(Hold::UploadParts.matches("PUT", "/b/k?x-id=UploadPart&partNumber=1&uploadId=u"));
        assert!(!Hold::UploadParts.matches("PUT", "/b/k"));
        assert!(!Hold::UploadParts.matches("POST", "/b/k?uploadId=u"));
        assert!(!Hold::Nothing.matches("PUT", "/b/k?partNumber=1&uploadId=u"));
        let sweep =
            "/b?list-type=2&prefix=p%2Fplugins%2Fvelero-debug-operator%2Fbundles%2Fvelero%2F";
        assert!(Hold::ArchiveListings.matches("GET", sweep));
        assert!(!Hold::ArchiveListings.matches("GET", "/b?list-type=2&prefix=p%2F&delimiter=%2F"));
        assert!(
            !Hold::ArchiveListings.matches("GET", "/b/p/plugins/velero-debug-operator/x.tar.gz")
        );
        assert!(!Hold::UploadParts.matches("GET", sweep));
    }
}

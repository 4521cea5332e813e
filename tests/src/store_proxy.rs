//! An HTTP forward proxy the kubectl plugin is sent through with `HTTP_PROXY`, so a test can
//! break the store's answer to a presigned URL without re-signing it: the request reaches the
//! real S3 server unchanged (same Host, same query), and the proxy spoils only the answer.

use std::{
    io::Write,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
};

use anyhow::{Context, Result, bail};
use flate2::{Compression, write::GzEncoder};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};

/// What the proxy does with each request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Closes the connection once the request is read: no answer at all.
    CloseUnanswered,
    /// Forwards the request; passes on the answer's head and this many bytes of its body,
    /// then closes the connection.
    CutBody(usize),
    /// Answers 200 itself with a gzip that never ends (a tar entry of 8 GiB of zeros).
    EndlessGzip,
}

pub struct StoreProxy {
    endpoint: String,
    counts: Arc<Counts>,
    accept: JoinHandle<()>,
}

#[derive(Default)]
struct Counts {
    requests: AtomicUsize,
    /// Bytes of answers written to clients.
    sent: AtomicU64,
    /// Connections ended (by either side).
    ended: AtomicUsize,
}

impl StoreProxy {
    pub async fn start(answer: Answer) -> Result<StoreProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let counts = Arc::new(Counts::default());
        let accept = tokio::spawn({
            let counts = counts.clone();
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    let counts = counts.clone();
                    tokio::spawn(async move {
                        if let Err(e) = serve(client, answer, &counts).await {
                            eprintln!("store proxy: connection ended: {e:#}");
                        }
                        counts.ended.fetch_add(1, Ordering::SeqCst);
                    });
                }
            }
        });
        Ok(StoreProxy {
            endpoint,
            counts,
            accept,
        })
    }

    /// `http://127.0.0.1:<port>`, for `HTTP_PROXY`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn requests(&self) -> usize {
        self.counts.requests.load(Ordering::SeqCst)
    }

    pub fn sent(&self) -> u64 {
        self.counts.sent.load(Ordering::SeqCst)
    }

    pub fn ended(&self) -> usize {
        self.counts.ended.load(Ordering::SeqCst)
    }
}

impl Drop for StoreProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn serve(mut client: TcpStream, answer: Answer, counts: &Counts) -> Result<()> {
    let head = read_head(&mut client).await?;
    counts.requests.fetch_add(1, Ordering::SeqCst);
    match answer {
        Answer::CloseUnanswered => Ok(()),
        Answer::CutBody(body_bytes) => forward_cut(client, &head, body_bytes, counts).await,
        Answer::EndlessGzip => endless_gzip(client, counts).await,
    }
}

/// The request's head (a GET has no body), up to its blank line.
async fn read_head(client: &mut TcpStream) -> Result<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = client.read(&mut buf).await?;
        if n == 0 {
            bail!("the client closed before its request ended");
        }
        head.extend_from_slice(&buf[..n]);
    }
    Ok(String::from_utf8(head)?)
}

/// Sends the request to the host its absolute URL names (in origin form), then passes on the
/// answer's head and `body_bytes` of its body.
async fn forward_cut(
    mut client: TcpStream,
    head: &str,
    body_bytes: usize,
    counts: &Counts,
) -> Result<()> {
    let (request_line, rest) = head.split_once("\r\n").context("no request line")?;
    let mut parts = request_line.splitn(3, ' ');
    let (method, target, version) = (
        parts.next().context("no method")?,
        parts.next().context("no target")?,
        parts.next().context("no version")?,
    );
    let after_scheme = target
        .strip_prefix("http://")
        .context("a proxy request names an absolute http:// URL")?;
    let (authority, path) = match after_scheme.find('/') {
        Some(i) => after_scheme.split_at(i),
        None => (after_scheme, "/"),
    };
    let mut upstream = TcpStream::connect(authority).await?;
    upstream
        .write_all(format!("{method} {path} {version}\r\n{rest}").as_bytes())
        .await?;
    // The answer's head is passed on whole; the body only up to `body_bytes`.
    let mut passed = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = upstream.read(&mut buf).await?;
        if n == 0 {
            bail!("the store closed before the cut");
        }
        passed.extend_from_slice(&buf[..n]);
        if let Some(end) = passed.windows(4).position(|w| w == b"\r\n\r\n")
            && passed.len() >= end + 4 + body_bytes
        {
            passed.truncate(end + 4 + body_bytes);
            break;
        }
    }
    client.write_all(&passed).await?;
    client.flush().await?;
    counts.sent.fetch_add(passed.len() as u64, Ordering::SeqCst);
    Ok(())
}

/// 200 with a close-delimited gzip body that never ends, written as fast as it is taken.
async fn endless_gzip(mut client: TcpStream, counts: &Counts) -> Result<()> {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/gzip\r\nConnection: close\r\n\r\n";
    client.write_all(head.as_bytes()).await?;
    let mut header = tar::Header::new_gnu();
    header.set_path("b1/logs/endless.log")?;
    header.set_size(8 << 30);
    header.set_mode(0o644);
    header.set_cksum();
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(header.as_bytes())?;
    let zeros = vec![0u8; 1 << 20];
    loop {
        gz.write_all(&zeros)?;
        gz.flush()?;
        let chunk = std::mem::take(gz.get_mut());
        // Fails once the client is gone: the end of this connection.
        client.write_all(&chunk).await?;
        counts.sent.fetch_add(chunk.len() as u64, Ordering::SeqCst);
    }
}

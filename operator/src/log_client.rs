//! The client pod logs are read with: one that wakes once per [`LOW_WATER`] bytes of a log
//! instead of once per chunk the API server writes.
//!
//! The API server relays a container log in chunks of a few KB (the kubelet flushes each line
//! to it), and a reader woken for each spends most of its CPU on the wake: epoll, the read,
//! the hand-over from the connection's task to the body's. On the two cores a log source and
//! its reader often share, that CPU is taken from the source. `SO_RCVLOWAT` makes the socket
//! readable only once that many bytes are waiting (or the peer closed), so one wake reads
//! many chunks.
//!
//! The mark is set after the TLS handshake, whose messages are smaller. Every request asks
//! the server to close the connection after its response, so a log's last bytes, fewer than
//! the mark, are woken for by the close; a connection is never reused, which costs one TCP
//! and TLS handshake per log read. Where the close does not come at once (a proxy that keeps
//! the client's connection open) or the source pauses, a read that has waited [`PATIENCE`]
//! lowers the mark until bytes come, then sets it again: at most that long is lost per pause.
//!
//! Throttling is answered as kube's own client answers it (its retry policy, server-aware: 429,
//! 503 and 504 are retried, after the server's Retry-After when it is longer than the backoff),
//! but bounded: [`RETRIES`] retries, the backoff at most [`MAX_BACKOFF`]; the log's own deadline
//! bounds a long Retry-After. `LOG_CLIENT=kube` reads logs with kube's client instead.

use std::{future::Future, pin::Pin, task::Poll, time::Duration};

use http::{HeaderValue, Request, Response, Uri, header::CONNECTION};
use hyper::body::Incoming;
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::{
    client::legacy::connect::{Connected, Connection, HttpConnector},
    rt::{TokioExecutor, TokioIo},
};
use kube::client::{Body, ClientBuilder, ConfigExt, retry::RetryPolicy};
use tokio::net::TcpStream;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt, retry::RetryLayer, util::BoxService};

/// Bytes a log's socket holds before its reader is woken. Below half the socket's initial
/// receive buffer (`net.ipv4.tcp_rmem`, 128 KiB by default), so setting it neither grows the
/// buffer nor clamps the window the sender sees.
pub const LOW_WATER: u32 = 32 * 1024;

/// How long a read waits for the mark before the mark is lowered for it.
pub const PATIENCE: Duration = Duration::from_millis(100);

/// Retries of a throttled log request (kube's client: 15).
pub const RETRIES: u32 = 5;

/// The longest backoff between two retries (kube's client: 1000 s).
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

fn retry_policy() -> RetryPolicy {
    RetryPolicy::new(Duration::from_millis(100), MAX_BACKOFF, RETRIES, true)
        .expect("the delays are in order")
}

/// The service under a log [`kube::Client`]: requests in, responses with hyper's body out.
pub type LogService = BoxService<Request<Body>, Response<Incoming>, BoxError>;

/// A client builder for reading logs, with the `config`'s address, TLS and credentials;
/// `low_water` bytes per wake (0: the kernel's default, a wake per chunk).
pub fn builder(
    config: &kube::Config,
    low_water: u32,
) -> Result<ClientBuilder<LogService>, kube::Error> {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Only fails when another thread installed one meanwhile, which serves as well.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(config.connect_timeout);
    let connector = LowWater {
        inner: config.rustls_https_connector_with_connector(http)?,
        bytes: low_water,
    };
    let client: hyper_util::client::legacy::Client<_, Body> =
        hyper_util::client::legacy::Builder::new(TokioExecutor::new()).build(connector);
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .layer(RetryLayer::new(retry_policy()))
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_request(close_after_response)
        .map_err(BoxError::from)
        .service(client)
        .boxed();
    Ok(ClientBuilder::new(
        service,
        config.default_namespace.clone(),
    ))
}

fn close_after_response(mut request: Request<Body>) -> Request<Body> {
    request
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    request
}

/// Connects as kube's client does, then sets the mark on the connection.
#[derive(Clone)]
struct LowWater {
    inner: HttpsConnector<HttpConnector>,
    bytes: u32,
}

type Stream = MaybeHttpsStream<TokioIo<TcpStream>>;

impl Service<Uri> for LowWater {
    type Response = LowWaterStream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<LowWaterStream, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.inner.call(uri);
        let bytes = self.bytes;
        Box::pin(async move {
            let mut stream = LowWaterStream {
                inner: connecting.await?,
                mark: None,
                patience: Box::pin(tokio::time::sleep(PATIENCE)),
                waiting: false,
                lowered: false,
            };
            // Without the mark the reader is woken per chunk, as any reader is: slower,
            // never wrong, so a refusal is no error.
            if bytes > 1 {
                match set_low_water(stream.tcp(), bytes) {
                    Ok(()) => stream.mark = Some(bytes),
                    Err(e) => tracing::debug!(error = %e, "SO_RCVLOWAT not set"),
                }
            }
            Ok(stream)
        })
    }
}

/// A log connection: its reads wait for the mark, each at most [`PATIENCE`].
struct LowWaterStream {
    inner: Stream,
    /// The mark set on the socket; None when it could not be.
    mark: Option<u32>,
    /// Armed when a read finds too few bytes.
    patience: Pin<Box<tokio::time::Sleep>>,
    waiting: bool,
    /// The mark is lowered for the read that waited its patience out.
    lowered: bool,
}

impl LowWaterStream {
    fn tcp(&self) -> &TcpStream {
        match &self.inner {
            MaybeHttpsStream::Http(io) => io.inner(),
            MaybeHttpsStream::Https(tls) => tls.inner().get_ref().0.inner().inner(),
        }
    }
}

impl hyper::rt::Read for LowWaterStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        let read = Pin::new(&mut this.inner).poll_read(cx, buf);
        let Some(mark) = this.mark else {
            return read;
        };
        if read.is_ready() {
            this.waiting = false;
            if this.lowered {
                this.lowered = false;
                // A socket the peer has closed may refuse it; the read says what happened.
                if let Err(e) = set_low_water(this.tcp(), mark) {
                    tracing::debug!(error = %e, "SO_RCVLOWAT not set again");
                }
            }
            return read;
        }
        if this.lowered {
            return read;
        }
        if !this.waiting {
            this.waiting = true;
            this.patience
                .as_mut()
                .reset(tokio::time::Instant::now() + PATIENCE);
        }
        if this.patience.as_mut().poll(cx).is_ready() {
            // Lowering the mark makes the kernel signal the bytes already waiting, which
            // wakes the read the inner stream has registered.
            this.waiting = false;
            this.lowered = true;
            if let Err(e) = set_low_water(this.tcp(), 1) {
                return Poll::Ready(Err(e));
            }
        }
        Poll::Pending
    }
}

impl hyper::rt::Write for LowWaterStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
}

impl Connection for LowWaterStream {
    fn connected(&self) -> Connected {
        self.inner.connected()
    }
}

fn set_low_water(tcp: &TcpStream, bytes: u32) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: the descriptor is the open socket `tcp` borrows, and the option's value is a
    // c_int that lives across the call, as setsockopt(2) requires.
    let rc = unsafe {
        libc::setsockopt(
            tcp.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVLOWAT,
            (&raw const value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::AsyncReadExt as _;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A request's head, read byte by byte up to its blank line.
    async fn read_head(socket: &mut tokio::net::TcpStream) -> Vec<u8> {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            socket.read_exact(&mut byte).await.unwrap();
            head.push(byte[0]);
        }
        head
    }

    /// Serves one request with the `pieces` of a body, pausing longer than [`PATIENCE`]
    /// between them, and, when `close` is false, keeps the connection open after the response
    /// (as a proxy might); returns the request's head as read.
    async fn serve_once(
        pieces: Vec<Vec<u8>>,
        close: bool,
    ) -> (String, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let served = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let head = read_head(&mut socket).await;
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n",
                pieces.iter().map(Vec::len).sum::<usize>()
            );
            socket.write_all(reply.as_bytes()).await.unwrap();
            for (i, piece) in pieces.iter().enumerate() {
                if i > 0 {
                    tokio::time::sleep(PATIENCE * 3).await;
                }
                socket.write_all(piece).await.unwrap();
            }
            if close {
                socket.shutdown().await.unwrap();
            } else {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            String::from_utf8(head).unwrap()
        });
        (url, served)
    }

    async fn get(url: &str) -> Vec<u8> {
        let config = kube::Config::new(url.parse().unwrap());
        let client = builder(&config, LOW_WATER).unwrap().build();
        let request = Request::get("/api/v1/namespaces/ns/pods/p/log")
            .body(Vec::new())
            .unwrap();
        let read = client.request_stream(request);
        let mut body = Box::pin(
            tokio::time::timeout(Duration::from_secs(20), read)
                .await
                .expect("the response's head came")
                .unwrap(),
        );
        let mut bytes = Vec::new();
        tokio::time::timeout(Duration::from_secs(20), body.read_to_end(&mut bytes))
            .await
            .expect("the body came")
            .unwrap();
        bytes
    }

    #[tokio::test]
    async fn bytes_short_of_the_mark_arrive_through_pauses_and_a_connection_left_open() {
        let pieces = vec![
            b"one line\n".to_vec(),
            b"two\n".to_vec(),
            b"three\n".to_vec(),
        ];
        let (url, served) = serve_once(pieces, false).await;
        assert_eq!(get(&url).await, b"one line\ntwo\nthree\n");
        served.abort();
    }

    #[tokio::test]
    async fn every_byte_of_a_long_response_arrives_and_the_request_asks_for_the_close() {
        // Not a multiple of the mark, so its last bytes come with the close.
        let body: Vec<u8> = (0..(5 * LOW_WATER as usize + 777))
            .map(|i| b'a' + (i % 26) as u8)
            .collect();
        let (url, served) = serve_once(vec![body.clone()], true).await;
        assert_eq!(get(&url).await, body);
        let head = served.await.unwrap().to_ascii_lowercase();
        assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
    }

    /// Answers each request with the next of `answers` (a status and its extra header lines),
    /// then a log; returns the times the requests came.
    async fn serve_answers(
        answers: Vec<(u16, &'static str)>,
    ) -> (String, tokio::task::JoinHandle<Vec<std::time::Instant>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let served = tokio::spawn(async move {
            let mut came = Vec::new();
            for (status, headers) in answers.into_iter().chain([(200, "")]) {
                let (mut socket, _) = listener.accept().await.unwrap();
                read_head(&mut socket).await;
                came.push(std::time::Instant::now());
                let body = if status == 200 { "the log\n" } else { "{}" };
                let reply = format!(
                    "HTTP/1.1 {status} X\r\n{headers}content-length: {}\r\n\r\n{body}",
                    body.len()
                );
                socket.write_all(reply.as_bytes()).await.unwrap();
                socket.shutdown().await.unwrap();
            }
            came
        });
        (url, served)
    }

    #[tokio::test]
    async fn a_throttled_log_request_is_retried_after_the_servers_retry_after() {
        let (url, served) =
            serve_answers(vec![(429, "retry-after: 1\r\n"), (503, ""), (504, "")]).await;
        assert_eq!(get(&url).await, b"the log\n");
        let came = served.await.unwrap();
        assert_eq!(came.len(), 4);
        assert!(
            came[1] - came[0] >= Duration::from_millis(950),
            "retried {:?} after a Retry-After of 1 s",
            came[1] - came[0]
        );
    }

    #[tokio::test]
    async fn retries_are_bounded_and_a_refusal_is_not_retried() {
        let throttled = vec![(429, ""); RETRIES as usize + 1];
        let (url, served) = serve_answers(throttled).await;
        let config = kube::Config::new(url.parse().unwrap());
        let client = builder(&config, LOW_WATER).unwrap().build();
        let request = Request::get("/api/v1/namespaces/ns/pods/p/log")
            .body(Vec::new())
            .unwrap();
        // One retry more, and it would have had the log.
        let answer = client.request_stream(request).await;
        assert!(answer.is_err(), "the last 429 is the answer");
        served.abort();
        let (url, served) = serve_answers(vec![(403, "")]).await;
        let config = kube::Config::new(url.parse().unwrap());
        let client = builder(&config, LOW_WATER).unwrap().build();
        let request = Request::get("/api/v1/namespaces/ns/pods/p/log")
            .body(Vec::new())
            .unwrap();
        // Retried, it would have had the log.
        assert!(client.request_stream(request).await.is_err());
        served.abort();
    }
}

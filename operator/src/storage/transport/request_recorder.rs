//! A listener on 127.0.0.1 that keeps every request it gets, whole, and answers each from a
//! function of its target: how the identity tests see the exact requests our code, and
//! Google's and Microsoft's own libraries, send to a token or signing endpoint that no
//! emulator implements. It stands in for no server in a test of behaviour: the answers only
//! let each client go on to its next request.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

/// One request as it came: header names lowercased, in the order sent.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Recorded {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    /// The request as text with the headers that name the client library or the transport
    /// left out and the rest sorted: what two libraries asking the same thing must agree on.
    pub fn comparable(&self, ignored: &[&str]) -> String {
        let mut headers: Vec<String> = self
            .headers
            .iter()
            .filter(|(name, _)| !ignored.contains(&name.as_str()))
            .map(|(name, value)| format!("{name}: {value}"))
            .collect();
        headers.sort();
        format!(
            "{} {}\n{}\n\n{}",
            self.method,
            self.target,
            headers.join("\n"),
            String::from_utf8_lossy(&self.body)
        )
    }
}

/// An answer: status, content type, body.
pub(crate) type Answer = (u16, &'static str, String);

pub(crate) struct Recorder {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Recorder {
    pub async fn start(answer: impl Fn(&Recorded) -> Answer + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let kept = requests.clone();
        let answer = Arc::new(answer);
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let kept = kept.clone();
                let answer = answer.clone();
                tokio::spawn(async move {
                    let Some(request) = read_request(&mut stream).await else {
                        return;
                    };
                    let (status, kind, body) = answer(&request);
                    kept.lock().unwrap().push(request);
                    let head = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: {kind}\r\nmetadata-flavor: Google\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(head.as_bytes()).await;
                    let _ = stream.write_all(body.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Recorder {
            addr,
            requests,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    pub fn clear(&self) {
        self.requests.lock().unwrap().clear();
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One HTTP/1.1 request with a content-length body (what every client here sends).
async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<Recorded> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, target) = (first.next()?.to_string(), first.next()?.to_string());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = buf[end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Recorded {
        method,
        target,
        headers,
        body,
    })
}

/// Runs tests/env/doubles/identity-requests.py with the pytools Python (`make unit` sets VDO_PYTOOLS);
/// its stdout.
pub(crate) async fn identity_requests(args: &[&str]) -> String {
    let pytools = std::env::var("VDO_PYTOOLS").expect(
        "VDO_PYTOOLS names the Python with google-auth, azure-identity and azure-storage-blob: run `make unit`",
    );
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/env/doubles/identity-requests.py"
    );
    let run = tokio::process::Command::new(pytools)
        .arg(script)
        .args(args)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(90), run)
        .await
        .expect("the Python client finished")
        .expect("the Python client ran");
    assert!(
        out.status.success(),
        "identity-requests.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

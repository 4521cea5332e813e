//! One container log read through the real client from a fake kubelet that serves it as the
//! kubelet does (`limitBytes` cuts after that many bytes, `tailLines` keeps the last lines):
//! the requests made, the file written, what the findings saw and what the budget paid.

use std::{
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use http::{Request, Response};
use kube::{Client, client::Body};

use super::*;

/// What the fake kubelet does with a request for the tail.
#[derive(Clone, Copy, PartialEq)]
enum TailRequest {
    Served,
    Refused,
    Hangs,
}

/// An `Api<Pod>` whose log requests the returned task answers from `log`; the task returns
/// the query of every request once the client is dropped.
fn kubelet(log: Vec<u8>, tail: TailRequest) -> (Api<Pod>, tokio::task::JoinHandle<Vec<String>>) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let api = Api::namespaced(Client::new(service, "velero"), "velero");
    let task = tokio::spawn(async move {
        let mut seen = Vec::new();
        let mut held = Vec::new();
        while let Some((request, reply)) = handle.next_request().await {
            let query = request.uri().query().unwrap_or_default().to_string();
            seen.push(query.clone());
            let param = |key: &str| {
                query
                    .split('&')
                    .find_map(|pair| pair.strip_prefix(&format!("{key}=")))
                    .and_then(|v| v.parse::<usize>().ok())
            };
            let mut body = &log[..];
            if let Some(n) = param("tailLines") {
                match tail {
                    TailRequest::Served => body = last_lines(body, n),
                    TailRequest::Refused => {
                        let response = Response::builder()
                            .status(500)
                            .body(Body::from(b"{}".to_vec()))
                            .expect("a response");
                        reply.send_response(response);
                        continue;
                    }
                    TailRequest::Hangs => {
                        held.push(reply);
                        continue;
                    }
                }
            }
            if let Some(limit) = param("limitBytes") {
                body = &body[..limit.min(body.len())];
            }
            let response = Response::builder()
                .status(200)
                .body(Body::from(body.to_vec()))
                .expect("a response");
            reply.send_response(response);
        }
        seen
    });
    (api, task)
}

fn last_lines(log: &[u8], n: usize) -> &[u8] {
    let starts: Vec<usize> = std::iter::once(0)
        .chain(
            log.iter()
                .enumerate()
                .filter(|(i, b)| **b == b'\n' && i + 1 < log.len())
                .map(|(i, _)| i + 1),
        )
        .collect();
    &log[starts[starts.len().saturating_sub(n)]..]
}

const BOUND: i64 = 4000;

/// A Velero-like log of `lines` lines, ending with a panic.
fn crashing_log(lines: usize) -> String {
    let mut log: String = (0..lines)
        .map(|i| format!("time=\"t\" level=info msg=\"line {i:05}\" logSource=\"pkg/x.go:1\"\n"))
        .collect();
    log.push_str("time=\"t\" level=info msg=\"connecting\" password=hunter2\n");
    log.push_str("panic: runtime error: invalid memory address or nil pointer dereference\n");
    log.push_str("goroutine 1 [running]:\n");
    log
}

struct Read {
    outcome: LogOutcome,
    text: String,
    scan: LogScan,
    requests: Vec<String>,
    /// What the read took from the bundle's budget.
    paid: u64,
    teed: Option<(Teed, String)>,
}

async fn read(log: &str, tail: TailRequest, timeout: Duration, tee: Option<&str>) -> Read {
    let dir = tempfile::tempdir().unwrap();
    let (api, kubelet) = kubelet(log.as_bytes().to_vec(), tail);
    let bundle_path = EntryPath::new(&["logs", "velero", "velero-1"], "velero", "log");
    let job = LogJob {
        pod: "velero-1".into(),
        container: "velero".into(),
        previous: false,
        source: LogSource {
            path: bundle_path.to_string(),
            role: LogRole::Server,
            pod: Some("velero-1".into()),
            node: None,
            previous: false,
        },
        bundle_path,
        spool: dir.path().join("spool"),
        tee: tee.map(|_| dir.path().join("tee")),
    };
    let base = LogParamsBase {
        since: Some(jiff::Timestamp::UNIX_EPOCH),
        max_bytes: BOUND as u64,
        timeout,
        max_line_bytes: 1024,
        compression: Compression::default(),
    };
    let redactor = Redactor::new();
    let total = 1 << 20;
    let budget = ContentBudget::new(total);
    let scope = OperationScope {
        field: "backup",
        name: tee.unwrap_or_default().to_string(),
        location: None,
        window: None,
    };
    let mut tee = job
        .tee
        .clone()
        .map(|path| OperationLines::new(&scope, ContentBudget::new(1 << 20), budget.clone(), path));
    let mut scan = LogScan::new(job.source.clone());
    if job.tee.is_some() {
        scan = scan.scoped_to(scope.clone());
    }
    let (outcome, _, compressing) = read_log(
        &api,
        &job,
        &base,
        &redactor,
        budget.clone(),
        &mut scan,
        tee.as_mut(),
    )
    .await;
    // The logs here are far below a range of the following compression: none was handed over.
    compressing.discard().await;
    let teed = match tee {
        Some(tee) => {
            let teed = tee.finish().await;
            let text = std::fs::read_to_string(&teed.path).unwrap_or_default();
            Some((teed, text))
        }
        None => None,
    };
    drop(api);
    let requests = kubelet.await.unwrap();
    let text = std::fs::read_to_string(&job.spool).unwrap_or_default();
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        files.iter().all(|f| f == "spool" || f == "tee"),
        "left behind: {files:?}"
    );
    Read {
        outcome,
        text,
        scan,
        requests,
        paid: total - budget.take_up_to(u64::MAX),
        teed,
    }
}

/// The 1-based line of `text` that starts with `start`.
fn line_of(text: &str, start: &str) -> u64 {
    text.lines().position(|l| l.starts_with(start)).unwrap() as u64 + 1
}

#[tokio::test]
async fn a_log_within_its_bound_costs_one_request_and_is_copied_whole() {
    let log = crashing_log(10);
    assert!(log.len() < BOUND as usize);
    let r = read(&log, TailRequest::Served, Duration::from_secs(10), None).await;
    assert_eq!(r.requests.len(), 1, "{:?}", r.requests);
    assert!(r.requests[0].contains("limitBytes=4000"));
    assert!(matches!(r.outcome, LogOutcome::Written(_, None)));
    assert_eq!(r.text, log.replace("hunter2", "***REDACTED***"));
    assert_eq!(r.paid, r.text.len() as u64);
    assert_eq!(r.scan.lines(), 13);
}

#[tokio::test]
async fn a_log_over_its_bound_keeps_its_head_a_marker_and_its_end() {
    let log = crashing_log(1000);
    let r = read(&log, TailRequest::Served, Duration::from_secs(10), None).await;
    // The head as always, then the tail by a line count and with no byte limit.
    assert_eq!(r.requests.len(), 2, "{:?}", r.requests);
    assert!(r.requests[1].contains("tailLines="), "{}", r.requests[1]);
    assert!(!r.requests[1].contains("limitBytes"), "{}", r.requests[1]);
    assert!(r.requests[1].contains("sinceTime="), "{}", r.requests[1]);
    let LogOutcome::Written(report, Some(OverBound::HeadAndTail(gap))) = r.outcome else {
        panic!("not kept as head and tail")
    };
    let Gap::AtLeast(left_out) = gap else {
        panic!("{gap:?}")
    };
    let lines: Vec<&str> = r.text.lines().collect();
    let marker = line_of(&r.text, "----- velero-debug-operator:") as usize - 1;
    // The head: the log's first lines, within half the bound.
    let head: String = lines[..marker].iter().map(|l| format!("{l}\n")).collect();
    assert!(log.starts_with(&head));
    assert!(head.len() <= BOUND as usize / 2 && head.len() > BOUND as usize / 2 - 100);
    // The tail: the log's last lines, redacted, ending with the panic.
    let tail: String = lines[marker + 1..]
        .iter()
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        log.replace("hunter2", "***REDACTED***").ends_with(&tail),
        "{tail}"
    );
    assert!(tail.ends_with("goroutine 1 [running]:\n"));
    assert!(head.len() + tail.len() <= BOUND as usize);
    assert!(tail.len() > BOUND as usize / 4, "{}", tail.len());
    // Nothing kept twice, and what the marker says is true.
    let last_head = lines[marker - 1];
    let first_tail = lines[marker + 1];
    let between =
        log.find(first_tail).unwrap() - (log.find(last_head).unwrap() + last_head.len() + 1);
    assert!(between as u64 >= left_out, "{between} < {left_out}");
    assert!(lines[marker].contains(&format!(
        "at least {left_out} bytes of the log left out here"
    )));
    assert!(lines[marker].contains("maxLogBytesPerContainer (4000 bytes)"));
    // The file, the report and the budget agree.
    assert_eq!(report.written, r.text.len() as u64);
    assert_eq!(r.paid, r.text.len() as u64);
    // The findings saw the panic, at its line in the file, and no line past the head's cut.
    let lines_seen = r.scan.lines();
    let (_, hits, _, _) = r.scan.into_parts();
    assert_eq!(lines_seen, lines.len() as u64);
    let panic = hits
        .iter()
        .find(|h| h.quote.starts_with("panic: runtime error"))
        .expect("the panic was seen");
    assert_eq!(panic.line, line_of(&r.text, "panic: "));
    assert_eq!(panic.count, 1);
}

#[tokio::test]
async fn a_log_barely_over_its_bound_repeats_nothing() {
    // Just over the bound: the tail would reach back into the head if let.
    let mut lines = 1;
    while crashing_log(lines).len() <= BOUND as usize {
        lines += 1;
    }
    let log = crashing_log(lines);
    let r = read(&log, TailRequest::Served, Duration::from_secs(10), None).await;
    assert!(matches!(
        r.outcome,
        LogOutcome::Written(_, Some(OverBound::HeadAndTail(_)))
    ));
    let kept: Vec<&str> = r.text.lines().filter(|l| !l.starts_with("-----")).collect();
    let unique: std::collections::BTreeSet<&&str> = kept.iter().collect();
    assert_eq!(unique.len(), kept.len(), "a line kept twice");
    assert!(r.text.ends_with("goroutine 1 [running]:\n"));
}

#[tokio::test]
async fn a_tail_that_cannot_be_read_leaves_the_head_up_to_the_bound() {
    let log = crashing_log(1000);
    for (tail, why) in [
        (TailRequest::Refused, ""),
        (TailRequest::Hangs, "timed out after 1s"),
    ] {
        let r = read(&log, tail, Duration::from_secs(1), None).await;
        assert_eq!(r.requests.len(), 2);
        let LogOutcome::Written(report, Some(OverBound::HeadOnly(said))) = r.outcome else {
            panic!("not kept as its head")
        };
        assert!(said.contains(why), "{said}");
        // As a log within its bound would be: its first bytes, all of them seen.
        assert_eq!(r.text, log[..BOUND as usize]);
        assert_eq!(report.written, BOUND as u64);
        assert_eq!(r.paid, BOUND as u64);
        assert_eq!(r.scan.lines(), r.text.lines().count() as u64);
    }
}

#[tokio::test]
async fn the_server_log_gives_its_lines_naming_the_operation_as_its_file_keeps_them() {
    // Lines of two backups; the head's cut falls among them.
    let log: String = (0..400)
        .map(|i| {
            let backup = if i % 2 == 0 { "velero/b1" } else { "velero/b2" };
            format!("time=\"t\" level=error msg=\"item {i:04}\" backup={backup}\n")
        })
        .collect();
    let r = read(
        &log,
        TailRequest::Served,
        Duration::from_secs(10),
        Some("velero/b1"),
    )
    .await;
    assert!(matches!(
        r.outcome,
        LogOutcome::Written(_, Some(OverBound::HeadAndTail(_)))
    ));
    let (teed, tee_text) = r.teed.unwrap();
    // Exactly the file's lines naming b1, in its order: none of the head's past its cut.
    let in_file: String = r
        .text
        .lines()
        .filter(|l| l.ends_with("backup=velero/b1"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(tee_text, in_file);
    assert_eq!(teed.lines, in_file.lines().count() as u64);
    assert!(tee_text.contains("item 0000") && tee_text.contains("item 0398"));
    // Those lines are the stand-in's to scan; the server log's scan saw b2's only, at their
    // lines in the file.
    let lines_seen = r.scan.lines();
    let (_, _, groups, _) = r.scan.into_parts();
    assert_eq!(lines_seen, r.text.lines().count() as u64);
    assert!(
        groups.is_empty(),
        "b2's lines are another backup's: {groups:?}"
    );
    // Teed lines were paid for once each.
    assert_eq!(r.paid, (r.text.len() + tee_text.len()) as u64);
}

/// An `Api<Pod>` whose log requests are all answered `status`, with a body of `chunks` that
/// breaks off with an error after them when `broken`.
fn kubelet_answering(status: u16, chunks: &'static [&'static str], broken: bool) -> Api<Pod> {
    use http_body_util::StreamBody;
    type Chunk = Result<http_body::Frame<bytes::Bytes>, std::io::Error>;
    type Answer = Response<StreamBody<futures::stream::Iter<std::vec::IntoIter<Chunk>>>>;
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Answer>();
    tokio::spawn(async move {
        while let Some((_, reply)) = handle.next_request().await {
            let mut frames: Vec<Chunk> = chunks
                .iter()
                .map(|c| {
                    Ok(http_body::Frame::data(bytes::Bytes::from_static(
                        c.as_bytes(),
                    )))
                })
                .collect();
            if broken {
                frames.push(Err(std::io::Error::other("connection reset")));
            }
            let body = StreamBody::new(futures::stream::iter(frames));
            let response = Response::builder().status(status).body(body);
            reply.send_response(response.expect("a response"));
        }
    });
    Api::namespaced(Client::new(service, "velero"), "velero")
}

/// The previous instance's log of node-agent-1 read from `api`: the outcome and the spool
/// file's text.
async fn read_previous(api: Api<Pod>) -> (LogOutcome, String) {
    let dir = tempfile::tempdir().unwrap();
    let bundle_path = EntryPath::new(&["logs", "velero", "node-agent-1"], "node-agent", "log");
    let job = LogJob {
        pod: "node-agent-1".into(),
        container: "node-agent".into(),
        previous: true,
        source: LogSource {
            path: bundle_path.to_string(),
            role: LogRole::NodeAgent,
            pod: Some("node-agent-1".into()),
            node: None,
            previous: true,
        },
        bundle_path,
        spool: dir.path().join("spool"),
        tee: None,
    };
    let base = LogParamsBase {
        since: None,
        max_bytes: BOUND as u64,
        timeout: Duration::from_secs(10),
        max_line_bytes: 1024,
        compression: Compression::default(),
    };
    let mut scan = LogScan::new(job.source.clone());
    let budget = ContentBudget::new(1 << 20);
    let redactor = Redactor::new();
    let (outcome, _, compressing) =
        read_log(&api, &job, &base, &redactor, budget, &mut scan, None).await;
    compressing.discard().await;
    (
        outcome,
        std::fs::read_to_string(&job.spool).unwrap_or_default(),
    )
}

fn refusal(code: u16, message: &'static str) -> Api<Pod> {
    let body: &'static str = Box::leak(
        serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
            "message": message, "code": code})
        .to_string()
        .into_boxed_str(),
    );
    kubelet_answering(code, Box::leak(Box::new([body])), false)
}

#[tokio::test]
async fn only_the_kubelets_not_found_means_no_previous_instance() {
    let kubelet = "previous terminated container \"node-agent\" in pod \"node-agent-1\" not found";
    let kwok = "failed to read log file \".\": read .: is a directory";
    for message in [kubelet, kwok] {
        let (outcome, _) = read_previous(refusal(400, message)).await;
        assert!(matches!(outcome, LogOutcome::NoPrevious), "{message}");
    }
    for (code, message) in [
        (500, "kubelet unreachable"),
        (429, "slow down"),
        (403, "forbidden"),
    ] {
        match read_previous(refusal(code, message)).await.0 {
            LogOutcome::Failed(why) => assert!(why.contains(message), "{why}"),
            _ => panic!("HTTP {code} taken for no previous instance"),
        }
    }
}

#[tokio::test]
async fn a_previous_log_broken_off_mid_way_keeps_what_was_read() {
    let api = kubelet_answering(200, &["line one\n", "panic: line two\n"], true);
    let (outcome, text) = read_previous(api).await;
    match outcome {
        LogOutcome::Partial(why, _) => assert!(why.contains("broke off"), "{why}"),
        _ => panic!("the lines read were not kept"),
    }
    assert!(
        text.contains("line one\n") && text.contains("panic: line two\n"),
        "{text}"
    );
    // Broken off before any line: nothing to keep, and said so.
    let (outcome, _) = read_previous(kubelet_answering(200, &[], true)).await;
    assert!(matches!(outcome, LogOutcome::Failed(_)));
}

#[tokio::test]
async fn lines_split_across_reads_are_copied_as_lines_read_whole_are() {
    let long = "y".repeat(1500);
    let log = format!(
        "level=info msg=one\nline two password=hunter2 here\n{long}\nlast password=hunter2\nend"
    );
    let served = |chunks: Vec<&str>| {
        let chunks: Vec<&'static str> = chunks
            .into_iter()
            .map(|c| &*Box::leak(c.to_string().into_boxed_str()))
            .collect();
        kubelet_answering(200, Box::leak(chunks.into_boxed_slice()), false)
    };
    let whole = read_previous(served(vec![&log])).await.1;
    let expected = format!(
        "level=info msg=one\nline two password=***REDACTED*** here\n{} … [line truncated by velero-debug-operator: longer than 1024 bytes]\nlast password=***REDACTED***\nend",
        &long[..1024]
    );
    assert_eq!(whole, expected);
    for size in [1, 7, 40, 1030] {
        // The log is ASCII: any cut is a string's.
        let chunks = log
            .as_bytes()
            .chunks(size)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        let text = read_previous(served(chunks)).await.1;
        assert_eq!(text, whole, "read {size} bytes at a time");
    }
}

/// An `Api<Pod>` whose every log request is answered with `log`, and the number of requests
/// made so far.
fn counting_kubelet(log: &'static str) -> (Api<Pod>, std::sync::Arc<AtomicUsize>) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let api = Api::namespaced(Client::new(service, "velero"), "velero");
    let count = std::sync::Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Some((_, reply)) = handle.next_request().await {
            seen.fetch_add(1, Ordering::SeqCst);
            let response = Response::builder()
                .status(200)
                .body(Body::from(log.as_bytes().to_vec()))
                .expect("a response");
            reply.send_response(response);
        }
    });
    (api, count)
}

fn node_agent_job(dir: &std::path::Path, pod: &str) -> LogJob {
    let bundle_path = EntryPath::new(&["logs", "node-agent", pod], "node-agent", "log");
    LogJob {
        pod: pod.into(),
        container: "node-agent".into(),
        previous: false,
        source: LogSource {
            path: bundle_path.to_string(),
            role: LogRole::NodeAgent,
            pod: Some(pod.into()),
            node: None,
            previous: false,
        },
        bundle_path,
        spool: dir.join(pod),
        tee: None,
    }
}

#[tokio::test]
async fn a_log_waiting_for_a_compressor_does_not_hold_back_the_next_read() {
    let dir = tempfile::tempdir().unwrap();
    const LINE: &str = "time=\"t\" level=info msg=\"a line\"\n";
    let (api, requests) = counting_kubelet(LINE);
    let scope = OperationScope {
        field: "restore",
        name: "velero/r".into(),
        location: None,
        window: None,
    };
    let reader = LogReader {
        api: &api,
        params: LogParamsBase {
            since: None,
            max_bytes: 1 << 20,
            timeout: Duration::from_secs(10),
            max_line_bytes: 1024,
            compression: Compression::default(),
        },
        redactor: &Redactor::new(),
        budget: &ContentBudget::new(1 << 20),
        scope: &scope,
        stand_in_room: ContentBudget::new(1 << 20),
    };
    let jobs = vec![
        node_agent_job(dir.path(), "a"),
        node_agent_job(dir.path(), "b"),
    ];
    // Every compressor taken (other tests' compressions may hold some first: this waits).
    let cores = std::thread::available_parallelism().map_or(1, usize::from) as u32;
    let compressors = crate::gzip_members::COMPRESSING
        .acquire_many(cores)
        .await
        .unwrap();
    let reading = read_all(&reader, jobs, 1);
    tokio::pin!(reading);
    let second_read = async {
        while requests.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::select! {
        _ = &mut reading => panic!("the logs were finished with no compressor free"),
        waited = tokio::time::timeout(Duration::from_secs(10), second_read) => waited
            .expect("one slot: the second log was not read while the first waited to be compressed"),
    }
    drop(compressors);
    let results = reading.await;
    assert_eq!(results.len(), 2);
    for read in results {
        assert!(matches!(read.outcome, LogOutcome::Written(_, None)));
        let compressed = read.compressed.expect("kept").expect("compressed");
        assert_eq!(compressed.size, LINE.len() as u64);
        compressed.remove();
    }
}

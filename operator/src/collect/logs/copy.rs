//! One container log copied into its spool file: the first request (the log from the
//! window's start, cut by the server at the bound), its lines redacted, scanned and offered to
//! the stand-in; a log that fills its bound goes on to `over_bound.rs`.

use futures::AsyncBufReadExt;
use k8s_openapi::api::core::v1::Pod;
use kube::{Api, api::LogParams};
use tokio::io::{AsyncWriteExt, BufWriter};

use super::{
    LogJob, LogOutcome, LogParamsBase, SPOOL_BUFFER, offer,
    over_bound::{AtCut, Head, HeadCut, OverLog},
    since,
    stand_in::OperationLines,
};
use crate::{
    collect::{
        budget::ContentBudget,
        lines::{LineCopy, read_line_async, whole_line},
    },
    findings::LogScan,
    gzip_members::FollowingCompression,
    redact::{MaskCounts, Redactor},
};

/// Copies one container log into its spool file, each line (as written: redacted) also
/// offered to `scan` (or to `tee`, which may take it). A log that fills its bound keeps its
/// head and its tail.
pub(super) async fn read_log(
    api: &Api<Pod>,
    job: &LogJob,
    base: &LogParamsBase,
    redactor: &Redactor,
    budget: ContentBudget,
    scan: &mut LogScan,
    mut tee: Option<&mut OperationLines<'_>>,
) -> (LogOutcome, MaskCounts, FollowingCompression) {
    // One deadline for the head and, when there is one, the tail.
    let deadline = tokio::time::Instant::now() + base.timeout;
    // Outside the copy, so what it did is known even when it times out.
    let mut lines = LineCopy::new(
        redactor,
        budget.clone(),
        base.max_line_bytes,
        "MAX_LINE_BYTES",
    );
    let mut compressing = FollowingCompression::new(&job.spool, base.compression);
    let mut head = Head {
        cut: HeadCut::new(base.max_bytes),
        at_cut: None,
        compressing: &mut compressing,
    };
    let copy = copy_head(
        api,
        job,
        base,
        &mut lines,
        &mut head,
        scan,
        tee.as_deref_mut(),
    );
    let copied = tokio::time::timeout_at(deadline, copy).await;
    let report = lines.report;
    let outcome = match copied {
        Ok(Ok(spool)) if head.cut.read() >= base.max_bytes && !report.out_of_budget => {
            let over = OverLog {
                api,
                job,
                base,
                redactor,
                budget: &budget,
                deadline,
                lines: &lines,
            };
            let (outcome, masks) = over.keep_head_and_tail(spool, head, scan, tee).await;
            return (outcome, masks, compressing);
        }
        Ok(Ok(_)) => LogOutcome::Written(report, None),
        // Only a previous instance's request is ever answered so (see copy_head).
        Ok(Err(CopyError::NoPrevious)) => LogOutcome::NoPrevious,
        Ok(Err(CopyError::Refused(why))) => LogOutcome::Failed(why),
        // A previous instance's log is often a crash's only evidence: what was read stays.
        Ok(Err(CopyError::Cut(why))) if report.written > 0 => {
            LogOutcome::Partial(format!("the read broke off ({why})"), report)
        }
        Ok(Err(CopyError::Cut(why))) => LogOutcome::Failed(why),
        Err(_) => {
            let why = format!("timed out after {}s", base.timeout.as_secs());
            // What was written but still buffered when the copy was dropped is lost.
            if std::fs::metadata(&job.spool).is_ok_and(|m| m.len() > 0) {
                LogOutcome::Partial(why, report)
            } else {
                LogOutcome::Failed(why)
            }
        }
    };
    (outcome, lines.masks().clone(), compressing)
}

/// Why the first request of a log got no log, or not all of it.
#[derive(Debug)]
enum CopyError {
    /// The kubelet's answer for a previous instance that does not exist.
    NoPrevious,
    /// Refused before any byte was read.
    Refused(String),
    /// Broken off after the copy began (the stream or the spool failed): what was written up
    /// to there is flushed to the spool file and stays.
    Cut(String),
}

/// Whether an answer to a log request says there is no previous instance: the kubelet's words
/// (400 `previous terminated container "c" in pod "p" not found`), or kwok's, which stands in
/// for the kubelet on the local environment (400 `failed to read log file "."`, no file named).
/// Any other refusal (403, 429, 5xx) is a failure worth a warning.
fn is_no_previous(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(status) if status.code == 400 => {
            let m = &status.message;
            (m.contains("previous terminated container") && m.contains("not found"))
                || m.starts_with("failed to read log file \".\"")
        }
        _ => false,
    }
}

/// The first request: the log from the window's start, cut by the server at the bound (so a
/// huge one is never transferred whole). Returns the spool file, flushed.
async fn copy_head(
    api: &Api<Pod>,
    job: &LogJob,
    base: &LogParamsBase,
    lines: &mut LineCopy<'_>,
    head: &mut Head<'_>,
    scan: &mut LogScan,
    tee: Option<&mut OperationLines<'_>>,
) -> Result<tokio::fs::File, CopyError> {
    let params = LogParams {
        container: Some(job.container.clone()),
        previous: job.previous,
        since_time: since(job, base),
        // The plan bounds it to 1 GiB: it fits.
        limit_bytes: Some(i64::try_from(base.max_bytes).unwrap_or(i64::MAX)),
        ..LogParams::default()
    };
    let reader = match api.log_stream(&job.pod, &params).await {
        Ok(r) => r,
        Err(e) if job.previous && is_no_previous(&e) => return Err(CopyError::NoPrevious),
        Err(e) => return Err(CopyError::Refused(crate::kubernetes::message(&e))),
    };
    let file = tokio::fs::File::create(&job.spool)
        .await
        .map_err(|e| CopyError::Refused(format!("spool file: {e}")))?;
    // Buffered (see SPOOL_BUFFER): each flush of a tokio file is a trip to the blocking pool.
    let mut out = BufWriter::with_capacity(SPOOL_BUFFER, file);
    let copied = copy_lines(reader, &mut out, base, lines, head, scan, tee).await;
    // Flushed whatever happened: a copy broken off keeps every line it wrote.
    let flushed = out.flush().await;
    copied.map_err(CopyError::Cut)?;
    flushed.map_err(|e| CopyError::Cut(format!("spool file: {e}")))?;
    Ok(out.into_inner())
}

/// The lines of `reader` rendered into `out` (see [`copy_head`]).
async fn copy_lines(
    reader: impl futures::AsyncBufRead,
    out: &mut BufWriter<tokio::fs::File>,
    base: &LogParamsBase,
    lines: &mut LineCopy<'_>,
    head: &mut Head<'_>,
    scan: &mut LogScan,
    mut tee: Option<&mut OperationLines<'_>>,
) -> Result<(), String> {
    let mut reader = std::pin::pin!(reader);
    // For a line not whole in the reader's buffer: one buffer reused for the whole log.
    let mut line = Vec::with_capacity(8 * 1024);
    let io = |e: std::io::Error| e.to_string();
    loop {
        let buffered = reader.fill_buf().await.map_err(io)?;
        // Lines redaction leaves as they are go on in one piece (the stand-in reads each line
        // of the server's log on its own), within what the head may hold before its cut.
        let unchanged = match tee {
            None => lines.unchanged_lines(buffered, head.cut.room()),
            Some(_) => None,
        };
        if let Some(text) = unchanged {
            let count = scan.offer_lines(text);
            head.cut.count(text.len() as u64, count);
            out.write_all(text.as_bytes()).await.map_err(io)?;
            let taken = text.len();
            reader.consume_unpin(taken);
        } else {
            // A line whole in the buffer is rendered where it is; any other is read into `line`.
            let (raw, read, in_buffer) = match whole_line(buffered, base.max_line_bytes) {
                Some((raw, read)) => (raw, read, true),
                None => match read_line_async(&mut reader, &mut line, base.max_line_bytes)
                    .await
                    .map_err(io)?
                {
                    Some(read) => (&line[..], read, false),
                    None => break,
                },
            };
            // Before the line is rendered: its masks and its scan are not yet counted.
            if head.cut.crosses(read.bytes) {
                head.at_cut = Some(AtCut {
                    written: lines.report.written,
                    cut_lines: lines.report.cut_lines,
                    masks: lines.masks().clone(),
                    scan: scan.clone(),
                    tee: tee.as_ref().map(|t| t.mark()),
                });
            }
            let rendered = lines.render(raw, read);
            offer(scan, tee.as_deref_mut(), rendered).await;
            out.write_all(rendered.as_bytes()).await.map_err(io)?;
            if in_buffer {
                reader.consume_unpin(read.bytes as usize);
            }
            if lines.report.out_of_budget {
                break;
            }
        }
        // Compressed while the rest is read; never past where the head may be cut, as what
        // follows that point may be replaced by the tail.
        if head.at_cut.is_none() && head.compressing.due(lines.report.written) {
            out.flush().await.map_err(io)?;
            head.compressing.hand_over(lines.report.written);
        }
    }
    Ok(())
}

//! Waiting on the cluster: [`eventually`] polls until a condition holds, [`holds_throughout`]
//! checks that one keeps holding for a while.

use std::time::Duration;

use anyhow::{Result, bail};

/// Polls `check` once a second until it returns `Some`, or fails after `timeout` naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last_err = None;
    loop {
        match check().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_err = Some(e),
        }
        if tokio::time::Instant::now() >= deadline {
            match last_err {
                Some(e) => {
                    bail!("timed out after {timeout:?} waiting for {what}; last error: {e:#}")
                }
                None => bail!("timed out after {timeout:?} waiting for {what}"),
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Checks once a second for `window` that `check` still holds (`Ok(None)`), failing at the
/// first `Some(what went wrong)`: for an absence that a late producer could still end, checked
/// past the point where it should have acted, not only at it.
pub async fn holds_throughout<F, Fut>(what: &str, window: Duration, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<String>>>,
{
    let deadline = tokio::time::Instant::now() + window;
    loop {
        if let Some(broken) = check().await? {
            bail!("{what} no longer holds: {broken}");
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

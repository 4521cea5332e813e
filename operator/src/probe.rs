//! `velero-debug-operator probe <url>`: a GET that succeeds on HTTP 2xx. The chart's
//! `helm test` runs it from the operator's own image, which has no shell or curl.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("{url}: {source}")]
    Request { url: String, source: reqwest::Error },
    #[error("{url}: HTTP {status}")]
    Status {
        url: String,
        status: reqwest::StatusCode,
    },
}

pub(crate) async fn get(url: &str, timeout: Duration) -> Result<(), Error> {
    let request = |source| Error::Request {
        url: url.to_string(),
        source,
    };
    let response = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(request)?
        .get(url)
        .send()
        .await
        .map_err(request)?;
    let status = response.status();
    if !status.is_success() {
        return Err(Error::Status {
            url: url.to_string(),
            status,
        });
    }
    println!("{url}: HTTP {status}");
    Ok(())
}

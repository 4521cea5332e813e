//! The environment's STS, moto's server: the roles it has handed out, IAM users with keys,
//! and its IAM checks turned on for a test of a role that cannot be assumed.

use anyhow::{Context, Result, ensure};
use serde::Deserialize;

use crate::env::{Env, StsEnv};

/// The environment's STS, or why there is none.
pub fn sts_env(env: &Env) -> Result<&StsEnv> {
    env.sts
        .as_ref()
        .context("the environment has no STS (started before moto was added): make env-up")
}

/// A role moto's STS handed out, as `/moto-api/data.json` lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct AssumedRole {
    pub access_key_id: String,
    pub session_token: String,
    pub role_arn: String,
    pub session_name: String,
}

/// The roles assumed so far whose session is named `session_name`.
pub async fn assumed_roles(sts: &StsEnv, session_name: &str) -> Result<Vec<AssumedRole>> {
    let data: serde_json::Value = reqwest::get(format!("{}/moto-api/data.json", sts.endpoint))
        .await?
        .error_for_status()?
        .json()
        .await?;
    let roles: Vec<AssumedRole> =
        serde_json::from_value(data["sts"]["AssumedRole"].clone()).unwrap_or_default();
    Ok(roles
        .into_iter()
        .filter(|r| r.session_name == session_name)
        .collect())
}

/// An IAM call of moto's query API, unsigned (moto checks nothing while its IAM checks are
/// off; the Authorization header's credential scope only tells its server which service is
/// called); the answer's text.
async fn iam(sts: &StsEnv, params: &[(&str, &str)]) -> Result<String> {
    let mut form = vec![("Version", "2010-05-08")];
    form.extend_from_slice(params);
    let answer = reqwest::Client::new()
        .post(&sts.endpoint)
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=e2e/20261128/us-east-1/iam/aws4_request",
        )
        .form(&form)
        .send()
        .await?;
    let status = answer.status();
    let text = answer.text().await?;
    ensure!(status.is_success(), "IAM {params:?}: {status}: {text}");
    Ok(text)
}

/// The text of the first `<tag>` of `xml`.
fn element<'x>(xml: &'x str, tag: &str) -> Result<&'x str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open).context(format!("no {tag} in {xml}"))? + open.len();
    let end = xml[start..]
        .find(&format!("</{tag}>"))
        .context(format!("no end of {tag}"))?;
    Ok(&xml[start..start + end])
}

/// A new IAM user `name` with no policy, and an access key of it: (key id, secret).
pub async fn user_without_rights(sts: &StsEnv, name: &str) -> Result<(String, String)> {
    iam(sts, &[("Action", "CreateUser"), ("UserName", name)]).await?;
    let key = iam(sts, &[("Action", "CreateAccessKey"), ("UserName", name)]).await?;
    Ok((
        element(&key, "AccessKeyId")?.to_string(),
        element(&key, "SecretAccessKey")?.to_string(),
    ))
}

/// moto's IAM checks, on while this lives: every call must then be signed by a key moto issued
/// and be allowed by its user's policies. Off again when dropped, however the test ends.
pub struct IamChecks {
    endpoint: String,
}

impl IamChecks {
    pub async fn on(sts: &StsEnv) -> Result<IamChecks> {
        set_iam_checks(&sts.endpoint, "0").await?;
        Ok(IamChecks {
            endpoint: sts.endpoint.clone(),
        })
    }
}

/// moto checks every call after the first `count` ("inf": none).
async fn set_iam_checks(endpoint: &str, count: &str) -> Result<()> {
    reqwest::Client::new()
        .post(format!("{endpoint}/moto-api/reset-auth"))
        .header("Content-Type", "text/plain")
        .body(count.to_string())
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}

impl Drop for IamChecks {
    fn drop(&mut self) {
        let endpoint = self.endpoint.clone();
        // Drop cannot await: a thread of its own with a runtime of its own.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map(|rt| rt.block_on(set_iam_checks(&endpoint, "inf")))
        })
        .join();
    }
}

//! Where the S3 client's credentials come from, and what a failure to get them means: static
//! keys, a role the AWS SDK's own profile provider assumes through STS, or the pod's default
//! chain.

use aws_config::{profile::ProfileFileCredentialsProvider, provider_config::ProviderConfig};
use aws_credential_types::provider::{SharedCredentialsProvider, error::CredentialsError};
use aws_sdk_s3::{
    config::{Region, http::HttpResponse},
    error::{ConnectorError, ProvideErrorMetadata},
};

use crate::storage::{
    port::error_chain,
    s3::profile::{AwsCredentials, RoleProfile},
};

/// The first error of type `T` in `err`'s chain.
pub(in crate::storage) fn find_in_chain<'e, T: std::error::Error + 'static>(
    err: &'e (dyn std::error::Error + 'static),
) -> Option<&'e T> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}

/// Why the credential could not be had, and whether another try may get it.
pub(in crate::storage) struct CredentialFailure {
    /// STS's answer when it gave one (status, code, message), else the provider's error.
    pub(in crate::storage) detail: String,
    /// STS out of reach, too slow, failing itself or throttling: retried as a store outage.
    pub(in crate::storage) transient: bool,
}

impl CredentialFailure {
    pub(in crate::storage) fn of(failure: &CredentialsError) -> Self {
        // Only below the provider's error: the SDK wraps the whole failure in a ConnectorError.
        let answer = sts_answer(failure);
        let transient = matches!(failure, CredentialsError::ProviderTimedOut(_))
            || find_in_chain::<ConnectorError>(failure).is_some()
            || answer
                .as_ref()
                .and_then(|a| a.status)
                .is_some_and(|s| s >= 500 || s == 429);
        let detail = match answer {
            Some(answer) => answer.to_string(),
            None => error_chain(failure),
        };
        CredentialFailure { detail, transient }
    }
}

/// STS's answer to the role's AssumeRole or AssumeRoleWithWebIdentity.
struct StsAnswer {
    status: Option<u16>,
    code: Option<String>,
    message: Option<String>,
}

impl std::fmt::Display for StsAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("STS answered")?;
        if let Some(status) = self.status {
            write!(f, " HTTP {status}")?;
        }
        if let Some(code) = &self.code {
            write!(f, " {code}")?;
        }
        if let Some(message) = &self.message {
            write!(f, ": {message}")?;
        }
        Ok(())
    }
}

/// STS's answer, when one is in `err`'s chain.
fn sts_answer(err: &(dyn std::error::Error + 'static)) -> Option<StsAnswer> {
    use aws_sdk_sts::{
        error::SdkError as StsError,
        operation::{
            assume_role::AssumeRoleError,
            assume_role_with_web_identity::AssumeRoleWithWebIdentityError,
        },
    };
    fn answer<E: ProvideErrorMetadata>(e: &StsError<E, HttpResponse>) -> StsAnswer {
        let body = e.raw_response().and_then(|r| r.body().bytes());
        // What the SDK parsed, else the body's first <Code> and <Message> read leniently, as
        // boto3 reads them: STS-compatible servers wrap them differently (moto's
        // <Errors><Error>), and an unparsed 403 says nothing.
        let from_body = |tag: &str| body.and_then(|b| xml_element(b, tag));
        StsAnswer {
            status: e.raw_response().map(|r| r.status().as_u16()),
            code: e.code().map(str::to_string).or_else(|| from_body("Code")),
            message: e
                .message()
                .map(str::to_string)
                .or_else(|| from_body("Message")),
        }
    }
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(e) = e.downcast_ref::<StsError<AssumeRoleError, HttpResponse>>() {
            return Some(answer(e));
        }
        if let Some(e) = e.downcast_ref::<StsError<AssumeRoleWithWebIdentityError, HttpResponse>>()
        {
            return Some(answer(e));
        }
        current = e.source();
    }
    None
}

/// Longest text taken from an element of STS's answer (its answers are short; a hostile
/// server's are not).
const MAX_ELEMENT_CHARS: usize = 300;

/// The text of the first `<tag>` of `body` (its first 16 KiB), printable characters only, cut
/// at [`MAX_ELEMENT_CHARS`]. By hand rather than with roxmltree (Azure's answers): that refuses
/// a body that is not well-formed or was cut at the cap, and this only wants a code to name.
fn xml_element(body: &[u8], tag: &str) -> Option<String> {
    let body = String::from_utf8_lossy(&body[..body.len().min(16 * 1024)]);
    let open = format!("<{tag}>");
    let start = body.find(&open)? + open.len();
    let end = start + body[start..].find(&format!("</{tag}>"))?;
    let text: String = body[start..end]
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_ELEMENT_CHARS)
        .collect();
    Some(text).filter(|t| !t.trim().is_empty())
}

pub(in crate::storage) async fn credentials_provider(
    creds: &AwsCredentials,
    region: &str,
) -> SharedCredentialsProvider {
    match creds {
        AwsCredentials::Keys {
            access_key_id,
            secret_access_key,
            session_token,
        } => SharedCredentialsProvider::new(aws_credential_types::Credentials::new(
            access_key_id,
            secret_access_key,
            session_token.clone(),
            None,
            "BackupStorageLocation Secret",
        )),
        AwsCredentials::Role(role) => SharedCredentialsProvider::new(role_provider(role, region)),
        AwsCredentials::DefaultChain => SharedCredentialsProvider::new(
            aws_config::default_provider::credentials::default_provider().await,
        ),
    }
}

/// The SDK's own profile provider, given only the rebuilt file of the role's chain (never the
/// default files of the operator's home). Its STS client takes its endpoint from the
/// operator's environment (`AWS_ENDPOINT_URL_STS`), else AWS's for `region`; the client's
/// identity cache renews the role's keys before they expire.
fn role_provider(role: &RoleProfile, region: &str) -> ProfileFileCredentialsProvider {
    use aws_runtime::env_config::file::{EnvConfigFileKind, EnvConfigFiles};
    let files = EnvConfigFiles::builder()
        .with_contents(EnvConfigFileKind::Credentials, role.file.clone())
        .build();
    ProfileFileCredentialsProvider::builder()
        .configure(&ProviderConfig::default().with_region(Some(Region::new(region.to_string()))))
        .profile_files(files)
        .profile_name(&role.profile)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answers_code_and_message_are_read_however_they_are_wrapped() {
        let aws = b"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>\
                    <Message>not authorized</Message></Error></ErrorResponse>";
        let moto = b"<?xml version=\"1.0\"?><ErrorResponse><Errors><Error><Code>\
                     InvalidClientTokenId</Code><Message>bad token</Message></Error></Errors>\
                     </ErrorResponse>";
        assert_eq!(xml_element(aws, "Code").as_deref(), Some("AccessDenied"));
        assert_eq!(
            xml_element(aws, "Message").as_deref(),
            Some("not authorized")
        );
        assert_eq!(
            xml_element(moto, "Code").as_deref(),
            Some("InvalidClientTokenId")
        );
        assert_eq!(xml_element(b"<html>502</html>", "Code"), None);
        assert_eq!(xml_element(b"<Code></Code>", "Code"), None);
    }

    #[test]
    fn a_hostile_answer_gives_a_short_printable_text() {
        let mut body = b"<Message>".to_vec();
        body.extend(std::iter::repeat_n(b'a', 10_000));
        body.extend_from_slice(b"\x1b[31m\n</Message>");
        let text = xml_element(&body, "Message").unwrap();
        assert_eq!(text.chars().count(), MAX_ELEMENT_CHARS);
        assert!(text.chars().all(|c| c == 'a'));
        // Past the 16 KiB read, nothing is found.
        let mut late = vec![b' '; 20_000];
        late.extend_from_slice(b"<Code>X</Code>");
        assert_eq!(xml_element(&late, "Code"), None);
    }
}

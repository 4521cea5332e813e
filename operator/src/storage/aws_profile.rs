//! An AWS BSL's credential Secret, read as Velero's AWS plugin reads it (a shared-credentials
//! file, the BSL's config `profile` selecting the profile) but taking static keys only. The
//! file is not handed to the AWS SDK: a profile's other directives (`role_arn` with
//! `web_identity_token_file`, `credential_process`, `source_profile`, `sso_*`...) would make
//! the operator read files, run commands or call endpoints chosen by whoever may edit that
//! Secret. Roles (IRSA, instance profiles) come from the operator pod's own environment.

use super::{ReadError, location::StorageLocation};

/// Velero's default when the BSL's config names no `profile`.
const DEFAULT_PROFILE: &str = "default";
/// The only keys taken from a Secret's profile.
const ACCESS_KEY_ID: &str = "aws_access_key_id";
const SECRET_ACCESS_KEY: &str = "aws_secret_access_key";
const SESSION_TOKEN: &str = "aws_session_token";
/// Settings that choose neither a credential nor an endpoint, left alone: the BSL's config
/// gives the region, and nothing is printed.
const IGNORED_KEYS: [&str; 2] = ["region", "output"];

#[derive(Clone)]
pub(crate) enum AwsCredentials {
    /// Static keys from the selected profile of the BSL's credential Secret.
    Keys {
        access_key_id: String,
        secret_access_key: String,
        session_token: Option<String>,
    },
    /// IRSA, workload identity, instance profiles: the default AWS credential chain of the
    /// operator pod's own environment.
    DefaultChain,
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AwsCredentials::Keys { session_token, .. } => f
                .debug_struct("Keys")
                .field("session", &session_token.is_some())
                .finish_non_exhaustive(),
            AwsCredentials::DefaultChain => f.write_str("DefaultChain"),
        }
    }
}

impl AwsCredentials {
    /// The credential of `location` from its Secret's text (None: there is no Secret). A
    /// selected profile without keys (or a Secret holding no profile at all) leaves the pod's
    /// own environment to provide them, as no Secret does.
    pub(super) fn read(
        location: &StorageLocation,
        contents: Option<&str>,
    ) -> Result<Self, ReadError> {
        let Some(contents) = contents else {
            return Ok(AwsCredentials::DefaultChain);
        };
        let profile = location.config("profile").unwrap_or(DEFAULT_PROFILE);
        let keys = match selected_profile(contents, profile)? {
            Selected::Found(keys) => keys,
            Selected::Missing { other_profiles } if other_profiles => {
                return Err(ReadError::Unusable(format!(
                    "it has no profile [{profile}]"
                )));
            }
            Selected::Missing { .. } => StaticKeys::default(),
        };
        match keys {
            StaticKeys {
                access_key_id: Some(access_key_id),
                secret_access_key: Some(secret_access_key),
                session_token,
            } => Ok(AwsCredentials::Keys {
                access_key_id,
                secret_access_key,
                session_token,
            }),
            StaticKeys {
                access_key_id: None,
                secret_access_key: None,
                session_token: None,
            } => Ok(AwsCredentials::DefaultChain),
            _ => Err(ReadError::Unusable(format!(
                "profile [{profile}] needs both {ACCESS_KEY_ID} and {SECRET_ACCESS_KEY}"
            ))),
        }
    }
}

/// The static keys a profile sets (the last of each, as the SDK reads them).
#[derive(Debug, Default, PartialEq)]
struct StaticKeys {
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    session_token: Option<String>,
}

#[derive(Debug, PartialEq)]
enum Selected {
    Found(StaticKeys),
    /// No section of the profile's name; `other_profiles`: the file has sections of others.
    Missing {
        other_profiles: bool,
    },
}

/// The static keys of section `[profile]`; any other directive there is refused by name.
/// Other sections are never read, so what they hold does not matter.
fn selected_profile(contents: &str, profile: &str) -> Result<Selected, ReadError> {
    let mut section: Option<&str> = None;
    let mut found = false;
    let mut other_profiles = false;
    let mut keys = StaticKeys::default();
    for (index, raw) in contents.lines().enumerate() {
        let line = strip_comment(raw);
        if line.trim().is_empty() {
            continue;
        }
        let selected = section == Some(profile);
        if raw.starts_with([' ', '\t']) {
            // A value continued (sub-properties of a setting such as `s3 =`).
            if selected {
                return Err(unusable_line(profile, index, "continues a value"));
            }
            continue;
        }
        let line = line.trim();
        if let Some(name) = line.strip_prefix('[') {
            section = name.strip_suffix(']').map(str::trim);
            found |= section == Some(profile);
            other_profiles |= section != Some(profile);
            continue;
        }
        if !selected {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(unusable_line(profile, index, "is not `key = value`"));
        };
        let key = key.trim().to_ascii_lowercase();
        // An empty value sets nothing.
        let value = Some(value.trim())
            .filter(|v| !v.is_empty())
            .map(str::to_string);
        match key.as_str() {
            ACCESS_KEY_ID => keys.access_key_id = value,
            SECRET_ACCESS_KEY => keys.secret_access_key = value,
            SESSION_TOKEN => keys.session_token = value,
            k if IGNORED_KEYS.contains(&k) => {}
            _ => return Err(refused(profile, &key)),
        }
    }
    Ok(if found {
        Selected::Found(keys)
    } else {
        Selected::Missing { other_profiles }
    })
}

/// `line` without a comment: a whole line starting `#` or `;`, or one after whitespace.
fn strip_comment(line: &str) -> &str {
    if line.trim_start().starts_with(['#', ';']) {
        return "";
    }
    let bytes = line.as_bytes();
    let cut = (1..bytes.len())
        .find(|&i| matches!(bytes[i], b'#' | b';') && bytes[i - 1].is_ascii_whitespace());
    cut.map_or(line, |i| &line[..i])
}

fn unusable_line(profile: &str, index: usize, what: &str) -> ReadError {
    ReadError::Unusable(format!("line {} of profile [{profile}] {what}", index + 1))
}

fn refused(profile: &str, key: &str) -> ReadError {
    ReadError::Unusable(format!(
        "{key} in profile [{profile}] is refused: only {ACCESS_KEY_ID}, {SECRET_ACCESS_KEY} and \
         {SESSION_TOKEN} are read from a Secret; roles (IRSA, instance profiles) come from the \
         operator pod's own environment"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::location::Provider;

    fn read(profile: Option<&str>, text: Option<&str>) -> Result<AwsCredentials, ReadError> {
        let location = StorageLocation {
            name: "default".into(),
            provider: Provider::Aws,
            bucket: "velero".into(),
            config: profile
                .map(|p| ("profile".to_string(), p.to_string()))
                .into_iter()
                .collect(),
            ..Default::default()
        };
        AwsCredentials::read(&location, text)
    }

    fn keys(credentials: AwsCredentials) -> (String, String, Option<String>) {
        match credentials {
            AwsCredentials::Keys {
                access_key_id,
                secret_access_key,
                session_token,
            } => (access_key_id, secret_access_key, session_token),
            AwsCredentials::DefaultChain => panic!("the default chain, not keys"),
        }
    }

    fn refusal(profile: Option<&str>, text: &str) -> String {
        match read(profile, Some(text)) {
            Err(ReadError::Unusable(why)) => why,
            other => panic!("{text:?} was not refused: {other:?}"),
        }
    }

    #[test]
    fn static_keys_of_the_selected_profile_are_taken() {
        let text = "# Velero's credentials-velero\n[default]\naws_access_key_id = AKIA1 ; first\n\
                    AWS_SECRET_ACCESS_KEY=s3cr3t/+=\nregion = eu-west-1\n\n\
                    [prod]\naws_access_key_id = AKIA2\naws_secret_access_key = two\n\
                    aws_session_token = tok\n";
        assert_eq!(
            keys(read(None, Some(text)).unwrap()),
            ("AKIA1".into(), "s3cr3t/+=".into(), None)
        );
        assert_eq!(
            keys(read(Some("prod"), Some(text)).unwrap()),
            ("AKIA2".into(), "two".into(), Some("tok".into()))
        );
    }

    #[test]
    fn a_role_with_a_web_identity_token_file_is_refused_by_name() {
        let text = "[default]\nrole_arn = arn:aws:iam::1:role/r\n\
                    web_identity_token_file = /var/run/secrets/token\n";
        let why = refusal(None, text);
        assert!(
            why.starts_with("role_arn in profile [default] is refused"),
            "{why}"
        );
        assert!(why.contains("IRSA"), "{why}");
        // Each directive on its own, under any case, next to valid keys.
        for directive in [
            "web_identity_token_file = /etc/passwd",
            "credential_process = /bin/sh -c id",
            "Credential_Source = Ec2InstanceMetadata",
            "source_profile = other",
            "sso_start_url = https://example.com",
            "endpoint_url = http://attacker",
            "s3 =",
        ] {
            let text = format!(
                "[default]\naws_access_key_id = a\naws_secret_access_key = b\n{directive}\n"
            );
            let key = directive
                .split('=')
                .next()
                .unwrap()
                .trim()
                .to_ascii_lowercase();
            let why = refusal(None, &text);
            assert!(
                why.starts_with(&format!("{key} in profile [default]")),
                "{why}"
            );
        }
    }

    #[test]
    fn only_the_selected_profile_is_read() {
        let text = "[other]\nrole_arn = arn:aws:iam::1:role/r\ncredential_process = x\n\
                      nested = value\n[default]\naws_access_key_id = a\naws_secret_access_key = b\n";
        assert_eq!(keys(read(None, Some(text)).unwrap()).0, "a");
        assert_eq!(
            refusal(Some("other"), text).split(' ').next(),
            Some("role_arn")
        );
        assert_eq!(
            refusal(Some("missing"), text),
            "it has no profile [missing]"
        );
    }

    #[test]
    fn no_keys_leave_the_pods_own_environment_to_provide_them() {
        for text in [
            None,
            Some(""),
            Some("# none\n"),
            Some("[default]\nregion = us-east-1\n"),
        ] {
            assert!(
                matches!(read(None, text), Ok(AwsCredentials::DefaultChain)),
                "{text:?}"
            );
        }
    }

    #[test]
    fn half_a_pair_and_lines_that_are_no_setting_are_refused() {
        assert_eq!(
            refusal(None, "[default]\naws_access_key_id = a\n"),
            "profile [default] needs both aws_access_key_id and aws_secret_access_key"
        );
        assert_eq!(
            refusal(None, "[default]\naws_session_token = t\n"),
            "profile [default] needs both aws_access_key_id and aws_secret_access_key"
        );
        assert_eq!(
            refusal(None, "[default]\naws_access_key_id\n"),
            "line 2 of profile [default] is not `key = value`"
        );
        assert_eq!(
            refusal(None, "[default]\naws_access_key_id =\n  role_arn = r\n"),
            "line 3 of profile [default] continues a value"
        );
    }
}

//! An AWS BSL's credential Secret, read as Velero's AWS plugin reads it: a shared-credentials
//! file, the BSL's config `profile` selecting the profile. Static keys are taken as they are.
//! A role (`role_arn` with `web_identity_token_file`, or with `source_profile`) is assumed by
//! the AWS SDK's own profile provider, as the plugin's SDK does, but the SDK never sees the
//! Secret itself: it gets a file rebuilt from the profiles of the chain alone, holding only the
//! settings read here. Any other directive (`credential_process`, `sso_*`, `endpoint_url`...)
//! is refused by name, and a token file is read only at the paths where a pod's projected
//! token lives: whoever may edit the Secret must not make the operator run commands, read its
//! files or send a token to a host of their choosing. STS is the operator's own (its
//! environment's `AWS_ENDPOINT_URL_STS`, else AWS's regional endpoint), never the Secret's.

use std::collections::BTreeMap;

use crate::storage::{location::StorageLocation, port::ReadError};

/// Velero's default when the BSL's config names no `profile`.
const DEFAULT_PROFILE: &str = "default";
const ACCESS_KEY_ID: &str = "aws_access_key_id";
const SECRET_ACCESS_KEY: &str = "aws_secret_access_key";
const SESSION_TOKEN: &str = "aws_session_token";
const ROLE_ARN: &str = "role_arn";
const SOURCE_PROFILE: &str = "source_profile";
const WEB_IDENTITY_TOKEN_FILE: &str = "web_identity_token_file";
const CREDENTIAL_SOURCE: &str = "credential_source";
/// What `credential_source` may name: the operator pod's own credentials, as the SDK finds them.
const CREDENTIAL_SOURCES: [&str; 3] = ["Environment", "Ec2InstanceMetadata", "EcsContainer"];
/// Passed to the SDK as they are: they shape the AssumeRole call and choose nothing else.
const ROLE_SETTINGS: [&str; 2] = ["role_session_name", "external_id"];
/// Settings that choose neither a credential nor an endpoint, left alone: the BSL's config
/// gives the region, and nothing is printed.
const IGNORED_KEYS: [&str; 2] = ["region", "output"];
/// Where EKS's pod identity webhook mounts a pod's projected token (IRSA).
const EKS_TOKEN_FILE: &str = "/var/run/secrets/eks.amazonaws.com/serviceaccount/token";
/// Where OpenShift in STS mode (ROSA, OADP) has a pod's projected token for AWS.
const OPENSHIFT_TOKEN_FILE: &str = "/var/run/secrets/openshift/serviceaccount/token";
/// A chain longer than this is refused (the SDK's own chains are one or two hops).
const MAX_CHAIN: usize = 4;

#[derive(Clone)]
pub(crate) enum AwsCredentials {
    /// Static keys from the selected profile of the BSL's credential Secret.
    Keys {
        access_key_id: String,
        secret_access_key: String,
        session_token: Option<String>,
    },
    /// A role the SDK's profile provider assumes through STS.
    Role(RoleProfile),
    /// IRSA, workload identity, instance profiles: the default AWS credential chain of the
    /// operator pod's own environment.
    DefaultChain,
}

/// The profiles of a role's chain, as the SDK's profile provider is given them.
#[derive(Clone)]
pub(crate) struct RoleProfile {
    /// A shared-credentials file of the chain's profiles and their settings read here.
    pub(in crate::storage) file: String,
    /// The selected profile, the first of the chain.
    pub(in crate::storage) profile: String,
    /// What is assumed and how, for messages: no secret in it.
    pub(in crate::storage) summary: String,
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AwsCredentials::Keys { session_token, .. } => f
                .debug_struct("Keys")
                .field("session", &session_token.is_some())
                .finish_non_exhaustive(),
            AwsCredentials::Role(role) => f
                .debug_struct("Role")
                .field("summary", &role.summary)
                .finish_non_exhaustive(),
            AwsCredentials::DefaultChain => f.write_str("DefaultChain"),
        }
    }
}

impl AwsCredentials {
    /// The credential of `location` from its Secret's text (None: there is no Secret). A
    /// selected profile without keys or role (or a Secret holding no profile at all) leaves
    /// the pod's own environment to provide them, as no Secret does.
    pub(in crate::storage) fn read(
        location: &StorageLocation,
        contents: Option<&str>,
    ) -> Result<Self, ReadError> {
        read_with(location, contents, &token_files())
    }
}

/// The token files a role's profile may name: EKS's and OpenShift's projected token paths,
/// and the one the operator's own environment names (`AWS_WEB_IDENTITY_TOKEN_FILE`, which
/// EKS's webhook sets beside `AWS_ROLE_ARN`).
fn token_files() -> Vec<String> {
    let own = std::env::var("AWS_WEB_IDENTITY_TOKEN_FILE").ok();
    [EKS_TOKEN_FILE, OPENSHIFT_TOKEN_FILE]
        .into_iter()
        .map(str::to_string)
        .chain(own.filter(|f| !f.is_empty()))
        .collect()
}

fn read_with(
    location: &StorageLocation,
    contents: Option<&str>,
    token_files: &[String],
) -> Result<AwsCredentials, ReadError> {
    let Some(contents) = contents else {
        return Ok(AwsCredentials::DefaultChain);
    };
    let selected = location.config("profile").unwrap_or(DEFAULT_PROFILE);
    let sections = parse_sections(contents);
    let Some(settings) = sections.get(selected) else {
        if sections.is_empty() {
            return Ok(AwsCredentials::DefaultChain);
        }
        return Err(ReadError::Unusable(format!(
            "it has no profile [{selected}]"
        )));
    };
    let profile = Profile::from_settings(selected, settings)?;
    if profile.role_arn.is_none() {
        return match profile.keys {
            Some(keys) => Ok(keys.into_credentials()),
            None => Ok(AwsCredentials::DefaultChain),
        };
    }
    follow_role_chain(selected, &sections, token_files).map(AwsCredentials::Role)
}

/// One setting's line of a section: its index in the file (for messages) and its text, the
/// comment removed.
struct Line<'a> {
    index: usize,
    text: &'a str,
    /// Indented: it continues the value above (sub-properties of a setting such as `s3 =`).
    continued: bool,
}

/// The file's sections by name, each with its lines. Nothing is refused here: a section is
/// checked only when the selected profile's chain reaches it, so what the others hold does not
/// matter.
fn parse_sections(contents: &str) -> BTreeMap<&str, Vec<Line<'_>>> {
    let mut sections: BTreeMap<&str, Vec<Line<'_>>> = BTreeMap::new();
    let mut current: Option<&str> = None;
    for (index, raw) in contents.lines().enumerate() {
        let text = strip_comment(raw);
        if text.trim().is_empty() {
            continue;
        }
        let continued = raw.starts_with([' ', '\t']);
        if !continued && let Some(name) = text.trim().strip_prefix('[') {
            current = name.strip_suffix(']').map(str::trim);
            if let Some(name) = current {
                sections.entry(name).or_default();
            }
            continue;
        }
        if let Some(lines) = current.and_then(|name| sections.get_mut(name)) {
            lines.push(Line {
                index,
                text: text.trim(),
                continued,
            });
        }
    }
    sections
}

/// The settings of one profile that the operator reads, each the last given, as the SDK reads
/// them.
#[derive(Debug, Default)]
struct Profile {
    keys: Option<StaticKeys>,
    role_arn: Option<String>,
    source_profile: Option<String>,
    web_identity_token_file: Option<String>,
    credential_source: Option<String>,
    role_settings: BTreeMap<&'static str, String>,
}

impl Profile {
    /// Reads section `[name]`, refusing by name any directive that is not read.
    fn from_settings(name: &str, lines: &[Line<'_>]) -> Result<Profile, ReadError> {
        let mut profile = Profile::default();
        let mut keys = StaticKeys::default();
        for line in lines {
            if line.continued {
                return Err(unusable_line(name, line.index, "continues a value"));
            }
            let Some((key, value)) = line.text.split_once('=') else {
                return Err(unusable_line(name, line.index, "is not `key = value`"));
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
                ROLE_ARN => profile.role_arn = value,
                SOURCE_PROFILE => profile.source_profile = value,
                WEB_IDENTITY_TOKEN_FILE => profile.web_identity_token_file = value,
                CREDENTIAL_SOURCE => profile.credential_source = value,
                k if IGNORED_KEYS.contains(&k) => {}
                k => match ROLE_SETTINGS.iter().find(|s| **s == k) {
                    Some(setting) => {
                        if let Some(value) = value {
                            profile.role_settings.insert(setting, value);
                        }
                    }
                    None => return Err(refused(name, &key)),
                },
            }
        }
        profile.keys = keys.pair(name)?;
        if profile.role_arn.is_none() {
            let orphan = [SOURCE_PROFILE, WEB_IDENTITY_TOKEN_FILE, CREDENTIAL_SOURCE]
                .into_iter()
                .zip([
                    &profile.source_profile,
                    &profile.web_identity_token_file,
                    &profile.credential_source,
                ])
                .find(|(_, v)| v.is_some());
            if let Some((key, _)) = orphan {
                return Err(ReadError::Unusable(format!(
                    "{key} in profile [{name}] needs a {ROLE_ARN} to assume"
                )));
            }
        }
        Ok(profile)
    }

    /// The section as the SDK is given it: only what this chain uses.
    fn write_section(&self, name: &str, with_keys: bool, file: &mut String) {
        file.push_str(&format!("[{name}]\n"));
        let mut put = |key: &str, value: &Option<String>| {
            if let Some(v) = value {
                file.push_str(&format!("{key} = {v}\n"));
            }
        };
        if let (true, Some(keys)) = (with_keys, &self.keys) {
            put(ACCESS_KEY_ID, &keys.access_key_id);
            put(SECRET_ACCESS_KEY, &keys.secret_access_key);
            put(SESSION_TOKEN, &keys.session_token);
        }
        put(ROLE_ARN, &self.role_arn);
        put(SOURCE_PROFILE, &self.source_profile);
        put(WEB_IDENTITY_TOKEN_FILE, &self.web_identity_token_file);
        put(CREDENTIAL_SOURCE, &self.credential_source);
        for (key, value) in &self.role_settings {
            file.push_str(&format!("{key} = {value}\n"));
        }
    }
}

/// Where a profile of a role's chain leads.
enum Hop {
    /// The chain starts here, with what `description` says; `with_keys`: the section's keys
    /// are used.
    Start {
        description: String,
        with_keys: bool,
    },
    /// The role is assumed with the credential of this other profile.
    Source(String),
}

impl Profile {
    /// Where profile `name`, met on a chain, leads.
    fn hop(&self, name: &str, token_files: &[String]) -> Result<Hop, ReadError> {
        let keys = |description: String| Hop::Start {
            description,
            with_keys: true,
        };
        let Some(_) = &self.role_arn else {
            // A source profile: its keys start the chain.
            return match self.keys {
                Some(_) => Ok(keys(format!("the keys of profile [{name}]"))),
                None => Err(ReadError::Unusable(format!(
                    "profile [{name}], a {SOURCE_PROFILE}, has neither {ACCESS_KEY_ID} and \
                     {SECRET_ACCESS_KEY} nor a {ROLE_ARN}"
                ))),
            };
        };
        let unusable = |why: String| Err(ReadError::Unusable(why));
        match (
            &self.source_profile,
            &self.web_identity_token_file,
            &self.credential_source,
        ) {
            (None, None, None) => unusable(format!(
                "{ROLE_ARN} in profile [{name}] needs {SOURCE_PROFILE}, {WEB_IDENTITY_TOKEN_FILE} \
                 or {CREDENTIAL_SOURCE}"
            )),
            (None, Some(file), None) if token_files.iter().any(|f| f == file) => Ok(Hop::Start {
                description: format!("the web identity token in {file}"),
                with_keys: false,
            }),
            (None, Some(file), None) => Err(refused_token_file(name, file, token_files)),
            (None, None, Some(source)) if CREDENTIAL_SOURCES.contains(&source.as_str()) => {
                Ok(Hop::Start {
                    description: format!("the operator pod's own credentials ({source})"),
                    with_keys: false,
                })
            }
            (None, None, Some(source)) => unusable(format!(
                "{CREDENTIAL_SOURCE} {source} in profile [{name}] is none of {}",
                CREDENTIAL_SOURCES.join(", ")
            )),
            // The profile's own keys assume its role (the SDK's self-reference).
            (Some(source), None, None) if source == name => match self.keys {
                Some(_) => Ok(keys(format!("the keys of profile [{name}]"))),
                None => unusable(format!(
                    "profile [{name}] is its own {SOURCE_PROFILE} but has no {ACCESS_KEY_ID} \
                     and {SECRET_ACCESS_KEY}"
                )),
            },
            (Some(source), None, None) => Ok(Hop::Source(source.clone())),
            _ => unusable(format!(
                "profile [{name}] sets more than one of {SOURCE_PROFILE}, \
                 {WEB_IDENTITY_TOKEN_FILE} and {CREDENTIAL_SOURCE}"
            )),
        }
    }
}

/// Follows the chain of the selected profile, which has a role, to the keys or token that
/// start it; returns the file the SDK is given.
fn follow_role_chain(
    selected: &str,
    sections: &BTreeMap<&str, Vec<Line<'_>>>,
    token_files: &[String],
) -> Result<RoleProfile, ReadError> {
    let mut file = String::new();
    let mut roles: Vec<String> = Vec::new();
    let mut visited: Vec<&str> = Vec::new();
    let mut name = selected;
    let base = loop {
        if visited.len() == MAX_CHAIN {
            return Err(ReadError::Unusable(format!(
                "the role chain of profile [{selected}] is longer than {MAX_CHAIN} profiles"
            )));
        }
        let Some(lines) = sections.get(name) else {
            return Err(ReadError::Unusable(format!("it has no profile [{name}]")));
        };
        let profile = Profile::from_settings(name, lines)?;
        visited.push(name);
        roles.extend(profile.role_arn.clone());
        match profile.hop(name, token_files)? {
            Hop::Start {
                description,
                with_keys,
            } => {
                profile.write_section(name, with_keys, &mut file);
                break description;
            }
            Hop::Source(source) => {
                profile.write_section(name, false, &mut file);
                if visited.contains(&source.as_str()) {
                    return Err(ReadError::Unusable(format!(
                        "the role chain of profile [{selected}] comes back to [{source}]"
                    )));
                }
                let Some((next, _)) = sections.get_key_value(source.as_str()) else {
                    return Err(ReadError::Unusable(format!(
                        "{SOURCE_PROFILE} of profile [{name}] names [{source}], which the \
                         Secret does not hold"
                    )));
                };
                name = next;
            }
        }
    };
    Ok(RoleProfile {
        file,
        profile: selected.to_string(),
        summary: format!(
            "role {}, assumed with {base}",
            roles.join(", assumed with role ")
        ),
    })
}

/// The static keys a profile sets (the last of each, as the SDK reads them).
#[derive(Debug, Default, PartialEq)]
struct StaticKeys {
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    session_token: Option<String>,
}

impl StaticKeys {
    /// Both halves (None when neither is set), or why not.
    fn pair(self, profile: &str) -> Result<Option<StaticKeys>, ReadError> {
        match (
            &self.access_key_id,
            &self.secret_access_key,
            &self.session_token,
        ) {
            (Some(_), Some(_), _) => Ok(Some(self)),
            (None, None, None) => Ok(None),
            _ => Err(ReadError::Unusable(format!(
                "profile [{profile}] needs both {ACCESS_KEY_ID} and {SECRET_ACCESS_KEY}"
            ))),
        }
    }

    fn into_credentials(self) -> AwsCredentials {
        AwsCredentials::Keys {
            access_key_id: self.access_key_id.unwrap_or_default(),
            secret_access_key: self.secret_access_key.unwrap_or_default(),
            session_token: self.session_token,
        }
    }
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
        "{key} in profile [{profile}] is refused: a Secret's profile may set only static keys \
         ({ACCESS_KEY_ID}, {SECRET_ACCESS_KEY}, {SESSION_TOKEN}) or a role ({ROLE_ARN} with \
         {WEB_IDENTITY_TOKEN_FILE}, {SOURCE_PROFILE} or {CREDENTIAL_SOURCE}, role_session_name, \
         external_id); \
         other sources (IRSA, instance profiles) come from the operator pod's own environment"
    ))
}

fn refused_token_file(profile: &str, file: &str, allowed: &[String]) -> ReadError {
    ReadError::Unusable(format!(
        "{WEB_IDENTITY_TOKEN_FILE} {file} in profile [{profile}] is refused: the operator reads \
         a token only where its pod's projected token is ({}); mount the token there, or set \
         AWS_WEB_IDENTITY_TOKEN_FILE in the operator's environment",
        allowed.join(", ")
    ))
}
#[cfg(test)]
#[path = "profile_tests.rs"]
mod tests;

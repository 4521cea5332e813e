use super::*;
use crate::storage::location::Provider;

/// The token file the tests' operator is told about, besides EKS's.
const OWN_TOKEN: &str = "/run/operator/token";

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
    let token_files = [EKS_TOKEN_FILE.to_string(), OWN_TOKEN.to_string()];
    read_with(&location, text, &token_files)
}

fn keys(credentials: AwsCredentials) -> (String, String, Option<String>) {
    match credentials {
        AwsCredentials::Keys {
            access_key_id,
            secret_access_key,
            session_token,
        } => (access_key_id, secret_access_key, session_token),
        other => panic!("{other:?}, not keys"),
    }
}

fn role(profile: Option<&str>, text: &str) -> RoleProfile {
    match read(profile, Some(text)) {
        Ok(AwsCredentials::Role(role)) => role,
        other => panic!("{text:?} is no role: {other:?}"),
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
fn a_role_with_a_web_identity_token_is_handed_to_the_sdk_alone() {
    let text = "[other]\ncredential_process = /bin/sh -c id\n\
                [default]\nrole_arn = arn:aws:iam::1:role/velero\n\
                web_identity_token_file = /var/run/secrets/eks.amazonaws.com/serviceaccount/token\n\
                role_session_name = velero-debug ; a comment\nregion = us-west-2\n";
    let role = role(None, text);
    assert_eq!(role.profile, "default");
    // Only the chain's profile and the settings read: no other section, no region.
    assert_eq!(
        role.file,
        "[default]\nrole_arn = arn:aws:iam::1:role/velero\n\
         web_identity_token_file = /var/run/secrets/eks.amazonaws.com/serviceaccount/token\n\
         role_session_name = velero-debug\n"
    );
    assert_eq!(
        role.summary,
        "role arn:aws:iam::1:role/velero, assumed with the web identity token in \
         /var/run/secrets/eks.amazonaws.com/serviceaccount/token"
    );
    // The operator's own token file is allowed too.
    let own = format!("[default]\nrole_arn = r\nweb_identity_token_file = {OWN_TOKEN}\n");
    assert!(role_file_names(&own, OWN_TOKEN));
}

fn role_file_names(text: &str, what: &str) -> bool {
    role(None, text).file.contains(what)
}

#[test]
fn a_role_assumed_with_a_source_profiles_keys_carries_that_profile_only() {
    let text = "[base]\naws_access_key_id = AKIA1\naws_secret_access_key = s1\n\
                [unused]\nsso_start_url = https://example.com\n\
                [default]\naws_access_key_id = ignored\naws_secret_access_key = ignored\n\
                role_arn = arn:aws:iam::1:role/velero\nsource_profile = base\nexternal_id = x-1\n";
    let assumed = role(None, text);
    assert_eq!(
        assumed.file,
        "[default]\nrole_arn = arn:aws:iam::1:role/velero\nsource_profile = base\n\
         external_id = x-1\n[base]\naws_access_key_id = AKIA1\naws_secret_access_key = s1\n"
    );
    assert_eq!(
        assumed.summary,
        "role arn:aws:iam::1:role/velero, assumed with the keys of profile [base]"
    );
    // Its own keys, by naming itself; and a chain of two roles.
    let own = "[default]\naws_access_key_id = a\naws_secret_access_key = b\nrole_arn = r\n\
               source_profile = default\n";
    assert!(role_file_names(own, "aws_access_key_id = a"));
    let chain = "[default]\nrole_arn = r2\nsource_profile = middle\n\
                 [middle]\nrole_arn = r1\nweb_identity_token_file = /run/operator/token\n";
    assert_eq!(
        role(None, chain).summary,
        "role r2, assumed with role r1, assumed with the web identity token in /run/operator/token"
    );
}

#[test]
fn a_role_assumed_with_the_pods_own_credentials_names_their_source() {
    let text =
        "[default]\nrole_arn = arn:aws:iam::1:role/velero\nCredential_Source = EcsContainer\n";
    let role = role(None, text);
    assert_eq!(
        role.file,
        "[default]\nrole_arn = arn:aws:iam::1:role/velero\ncredential_source = EcsContainer\n"
    );
    assert_eq!(
        role.summary,
        "role arn:aws:iam::1:role/velero, assumed with the operator pod's own credentials (EcsContainer)"
    );
}

#[test]
fn a_token_file_anywhere_else_is_refused_before_anything_reads_it() {
    for path in [
        "/etc/passwd",
        "/var/run/secrets/kubernetes.io/serviceaccount/token",
        "/var/run/secrets/eks.amazonaws.com/serviceaccount/../../../../etc/shadow",
        "var/run/secrets/eks.amazonaws.com/serviceaccount/token",
    ] {
        let text = format!("[default]\nrole_arn = r\nweb_identity_token_file = {path}\n");
        let why = refusal(None, &text);
        assert!(
            why.starts_with(&format!(
                "web_identity_token_file {path} in profile [default] is refused"
            )),
            "{why}"
        );
        assert!(why.contains(OWN_TOKEN), "names what is allowed: {why}");
    }
}

#[test]
fn a_chain_that_cannot_work_is_refused_naming_the_profile() {
    let cases = [
        (
            "[default]\nrole_arn = r\n",
            "role_arn in profile [default] needs source_profile, web_identity_token_file or credential_source",
        ),
        (
            "[default]\nrole_arn = r\nsource_profile = nowhere\n",
            "source_profile of profile [default] names [nowhere], which the Secret does not hold",
        ),
        (
            "[default]\nrole_arn = r\nsource_profile = a\n[a]\nrole_arn = r\nsource_profile = default\n",
            "the role chain of profile [default] comes back to [default]",
        ),
        (
            "[default]\nrole_arn = r\nsource_profile = a\n[a]\nregion = x\n",
            "profile [a], a source_profile, has neither aws_access_key_id and aws_secret_access_key nor a role_arn",
        ),
        (
            "[default]\nrole_arn = r\nsource_profile = default\n",
            "profile [default] is its own source_profile but has no aws_access_key_id and aws_secret_access_key",
        ),
        (
            "[default]\nsource_profile = a\n[a]\naws_access_key_id = a\naws_secret_access_key = b\n",
            "source_profile in profile [default] needs a role_arn to assume",
        ),
        (
            "[default]\nrole_arn = r\nsource_profile = a\nweb_identity_token_file = /run/operator/token\n",
            "profile [default] sets more than one of source_profile, web_identity_token_file and credential_source",
        ),
        (
            "[default]\nrole_arn = r\ncredential_source = Ec2InstanceMetadata\nsource_profile = a\n",
            "profile [default] sets more than one of",
        ),
        (
            "[default]\nrole_arn = r\ncredential_source = /bin/id\n",
            "credential_source /bin/id in profile [default] is none of Environment, Ec2InstanceMetadata, EcsContainer",
        ),
        (
            "[default]\nrole_arn = r\nsource_profile = a\n[a]\ncredential_process = /bin/id\n",
            "credential_process in profile [a] is refused",
        ),
    ];
    for (text, expected) in cases {
        let why = refusal(None, text);
        assert!(why.starts_with(expected), "{text:?}: {why}");
    }
    let long = "[default]\nrole_arn = r\nsource_profile = a\n[a]\nrole_arn = r\nsource_profile = b\n\
                [b]\nrole_arn = r\nsource_profile = c\n[c]\nrole_arn = r\nsource_profile = d\n\
                [d]\naws_access_key_id = a\naws_secret_access_key = b\n";
    assert_eq!(
        refusal(None, long),
        "the role chain of profile [default] is longer than 4 profiles"
    );
}

#[test]
fn directives_that_run_read_or_call_what_the_secret_chooses_are_refused_by_name() {
    for directive in [
        "credential_process = /bin/sh -c id",
        "sso_start_url = https://example.com",
        "endpoint_url = http://attacker",
        "s3 =",
    ] {
        let text =
            format!("[default]\naws_access_key_id = a\naws_secret_access_key = b\n{directive}\n");
        let key = directive
            .split('=')
            .next()
            .unwrap()
            .trim()
            .to_ascii_lowercase();
        let why = refusal(None, &text);
        assert!(
            why.starts_with(&format!("{key} in profile [default] is refused")),
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
        Some("credential_process")
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

#[test]
fn debug_output_names_the_role_and_no_secret() {
    let text = "[base]\naws_access_key_id = AKIA1\naws_secret_access_key = s3cr3t\n\
                [default]\nrole_arn = arn:aws:iam::1:role/velero\nsource_profile = base\n";
    let shown = format!("{:?}", read(None, Some(text)).unwrap());
    assert!(shown.contains("arn:aws:iam::1:role/velero"), "{shown}");
    assert!(
        !shown.contains("s3cr3t") && !shown.contains("AKIA1"),
        "{shown}"
    );
}

#[test]
fn eks_and_openshift_projected_token_paths_are_always_allowed() {
    let files = token_files();
    assert!(files.iter().any(|f| f == EKS_TOKEN_FILE), "{files:?}");
    assert!(
        files
            .iter()
            .any(|f| f == "/var/run/secrets/openshift/serviceaccount/token"),
        "{files:?}"
    );
}

//! The redactor's tests: each kind of secret on the lines that must be masked and those that
//! must not, streams over lines, JSON, counts and site patterns; then the redaction corpus
//! (testdata/redaction-corpus): secrets that must be gone, near misses that must stay, and
//! Kubernetes objects with their exact redacted form.

use super::rules::RULES;
use super::*;
use serde_json::{Value, json};
use std::path::PathBuf;

const M: &str = MARKER;

/// Each input gives exactly its expected line (`{M}` stands for MARKER), and a second pass
/// gives it back borrowed.
fn check(cases: &[(&str, &str)]) {
    let r = Redactor::new();
    for (input, want) in cases {
        let want = want.replace("{M}", M);
        let got = r.redact_line(input);
        assert_eq!(got, want, "input: {input}");
        assert!(
            matches!(r.redact_line(&got), Cow::Borrowed(_)),
            "second pass: {input}"
        );
    }
}

/// `input => expected` cases for `check` (a macro, so that rustfmt keeps one per line).
macro_rules! masks {
    ($($input:expr => $want:expr),* $(,)?) => { check(&[$(($input, $want)),*]) };
}

/// Each line comes back borrowed and unchanged.
fn unchanged(lines: &[&str]) {
    let r = Redactor::new();
    for line in lines {
        assert!(
            matches!(r.redact_line(line), Cow::Borrowed(l) if l == *line),
            "{line}"
        );
    }
}

#[test]
fn aws_access_key_ids() {
    masks! {
        "using key AKIAIOSFODNN7EXAMPLE for s3" => "using key {M} for s3",
        "\"AccessKeyId\": ASIAY34FZKBOKMUTVV7A," => "\"AccessKeyId\": {M},",
    }
    // Too short, too long, lowercase: not a key id.
    unchanged(&["AKIAIOSFODNN7EXAMPL AKIAIOSFODNN7EXAMPLEX akiaiosfodnn7example"]);
}

#[test]
fn aws_secret_key_pairs() {
    masks! {
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG+bPx" => "aws_secret_access_key = {M}",
        "aws_access_key_id=AKIAIOSFODNN7EXAMPLE" => "aws_access_key_id={M}",
        "aws_session_token=IQoJb3JpZ2luX2VjEJr//////////wEa" => "aws_session_token={M}",
        "secretAccessKey: wJalrXUtnFEMI/K7 region: us-east-1" => "secretAccessKey: {M} region: us-east-1",
        r#"{"SecretAccessKey":"wJalrXUtnFEMI/K7","Expiration":"x"}"# => r#"{"SecretAccessKey":"{M}","Expiration":"x"}"#,
        r#"env=[{"name":"AWS_SECRET_ACCESS_KEY","value":"x y"},{"name":"LOG_LEVEL","value":"info"}]"# => r#"env=[{"name":"AWS_SECRET_ACCESS_KEY","value":"{M}"},{"name":"LOG_LEVEL","value":"info"}]"#,
    }
}

#[test]
fn password_style_pairs() {
    masks! {
        "password=hunter2" => "password={M}",
        "connecting db_password=s3cr3t! host=db" => "connecting db_password={M} host=db",
        "X-Api-Key: abcdef123456" => "X-Api-Key: {M}",
        r#"password: "hunter 2""# => r#"password: "{M}""#,
        r#"{"token":"abc","user":"bob"}"# => r#"{"token":"{M}","user":"bob"}"#,
        "GET /cb?token=abc&x=1" => "GET /cb?token={M}&x=1",
        "'client_secret' => 'xyz', PWD=p1," => "'client_secret' => '{M}', PWD={M},",
        "--secret-access-key=a/b --private-key=c access-key=d" => "--secret-access-key={M} --private-key={M} access-key={M}",
        r#"msg="login password=\"hunter2\"""# => r#"msg="login password=\"{M}\"""#,
    }
    // Empty values, and prose where no separator follows the key word.
    unchanged(&[
        r#"password= token="" secret=&a=1"#,
        r#"level=info msg="token refreshed" tokenizer=bert passwordFile=/etc/p"#,
    ]);
}

#[test]
fn bearer_and_basic_authorization() {
    masks! {
        "Authorization: Bearer seeded.bearer.token0123456789" => "Authorization: Bearer {M}",
        "authorization: basic dXNlcjpwYXNzd29yZA== sent" => "authorization: basic {M} sent",
        r#"Authorization:["Bearer abc"]"# => r#"Authorization:["Bearer {M}"]"#,
        "retrying with bearer sha256-AbCdEfGhIjKlMnOpQrSt" => "retrying with bearer {M}",
    }
    unchanged(&[r#"msg="refreshing bearer token from file""#]);
}

#[test]
fn url_userinfo() {
    masks! {
        "url https://kopia:seededurlpass@repo.example.com/x" => "url https://kopia:{M}@repo.example.com/x",
        r#"dsn="postgres://admin:p%40ss@db:5432/app""# => r#"dsn="postgres://admin:{M}@db:5432/app""#,
        "https://token:abc@host/p" => "https://token:{M}@host/p",
        "redis://:p@ss@redis:6379/0 a@b" => "redis://:{M}@redis:6379/0 a@b",
    }
    // No colon (a token as user), or a port: left alone.
    unchanged(&["https://ghp_abc@github.com/o/r http://minio:9000/velero"]);
}

#[test]
fn presigned_url_query_values() {
    let url = "https://s3.example.com/bucket/key?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20261122%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20261122T000000Z&X-Amz-Expires=600&X-Amz-SignedHeaders=host&X-Amz-Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    masks! {
        url => "https://s3.example.com/bucket/key?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={M}&X-Amz-Date=20261122T000000Z&X-Amz-Expires=600&X-Amz-SignedHeaders=host&X-Amz-Signature={M}",
        "k?AWSAccessKeyId=AKID&Expires=1&signature=vjbyPxybdZ%2ByT2%3D\"" => "k?AWSAccessKeyId={M}&Expires=1&signature={M}\"",
        "x-amz-security-token=FwoGZXIvYXdz%2Fabc&x-amz-date=1" => "x-amz-security-token={M}&x-amz-date=1",
    }
}

#[test]
fn pem_private_keys() {
    masks! {
        r#"key: "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----\n" ok"# => r#"key: "{M}\n" ok"#,
        "-----BEGIN PRIVATE KEY-----MIIEvQIBADANBg" => "{M}",
    }
    unchanged(&["-----BEGIN CERTIFICATE-----MIIC-----END CERTIFICATE-----"]);
    // Across lines: redact_text masks the body lines and the END marker too.
    let r = Redactor::new();
    let text = "a: 1\n  -----BEGIN EC PRIVATE KEY-----\r\n  MHcCAQEE\r\n  -----END EC PRIVATE KEY----- # k\nb: password=x\n";
    let want = format!("a: 1\n  {M}\r\n{M}\r\n{M} # k\nb: password={M}\n");
    assert_eq!(r.redact_text(text), want);
    assert_eq!(r.redact_text(&want), want);
    // A JSON string is one value: its embedded multi-line block is masked whole.
    let mut v =
        json!({"tls.key": "-----BEGIN PRIVATE KEY-----\nMIIE\nAA\n-----END PRIVATE KEY-----\n"});
    assert_eq!(r.redact_json(&mut v), 1);
    assert_eq!(v, json!({"tls.key": format!("{M}\n")}));
}

#[test]
fn a_stream_starting_inside_a_key_masks_its_leading_base64_lines() {
    let r = Redactor::new();
    let mut lines = r.stream().starting_mid_log();
    let tail = [
        "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun",
        "  VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK",
        "LxoRJl4tVu9wcXCzk1ASzA==",
        "-----END RSA PRIVATE KEY-----",
        "time=\"t\" level=error msg=\"panic\"",
        "AAAA",
    ];
    let out: Vec<String> = tail.iter().map(|l| lines.redact(l).into_owned()).collect();
    assert_eq!(
        out,
        [
            M.to_string(),
            format!("  {M}"),
            M.to_string(),
            "-----END RSA PRIVATE KEY-----".to_string(),
            "time=\"t\" level=error msg=\"panic\"".to_string(),
            // Only the leading lines: later base64 alone is an ordinary line again.
            "AAAA".to_string(),
        ]
    );
    assert_eq!(lines.counts().get("pem-private-key"), 1);
    // A tail that starts with an ordinary line is untouched.
    let mut lines = r.stream().starting_mid_log();
    assert_eq!(lines.redact("level=info msg=ok"), "level=info msg=ok");
    assert_eq!(lines.redact("AAAA"), "AAAA");
}

#[test]
fn jwt_tokens() {
    masks! {
        "sa token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW0ifQ.c2lnbmF0-_x expired" => "sa token {M} expired",
        "Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ9.c2ln" => "Authorization: Bearer {M}",
    }
    // Shorter than 30 characters: not taken for a token.
    unchanged(&["eyJhbGciOi.eyJzdWIi.c2ln"]);
}

#[test]
fn velero_log_line_is_borrowed_and_unchanged() {
    unchanged(&[
        r#"time="2026-11-20T10:00:00Z" level=error msg="Error getting backup store" error="rpc error: AccessDenied" logSource="pkg/controller/x.go:1""#,
    ]);
}

#[test]
fn ordinary_lines_are_unchanged() {
    unchanged(&[
        r#"time="2026-11-20T10:00:01Z" level=info msg="Backup completed" backup=velero/daily-20261120 logSource="pkg/controller/backup_controller.go:812""#,
        r#"level=info msg="Checking for existing backup storage locations to use" backupLocation=velero/default"#,
        r#"level=warning msg="failed to refresh service account token, retrying" attempt=2"#,
        r#"level=info msg="Found 3 items" tz=Asia/Tokyo url=http://minio.velero.svc:9000/velero secretName=cloud-credentials"#,
        "I1120 10:00:00.000000 1 main.go:42] Authorization mode is RBAC; authentication uses secrets and passwords",
        "",
    ]);
}

#[test]
fn shared_credentials_file_text() {
    let text = "[default]\r\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\r\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\r\nregion = us-east-1\r\n\r\n[backup]\naws_session_token=IQoJb3JpZ2luX2Vj\n";
    let want = format!(
        "[default]\r\naws_access_key_id = {M}\r\naws_secret_access_key = {M}\r\nregion = us-east-1\r\n\r\n[backup]\naws_session_token={M}\n"
    );
    let r = Redactor::new();
    assert_eq!(r.redact_text(text), want);
    assert_eq!(r.redact_text("no newline at end"), "no newline at end");
}

#[test]
fn pod_json_env_and_secret_keys() {
    let r = Redactor::new();
    let mut pod = json!({
        "metadata": {"name": "velero-1", "annotations": {"cfg": r#"{"name":"DB_PASSWORD","value":"v1"}"#}},
        "spec": {"automountServiceAccountToken": true, "containers": [{"name": "velero",
            "args": ["--password=hunter2", "--log-level=info"], "env": [
            {"name": "AWS_SECRET_ACCESS_KEY", "value": "seededenvvalue42"},
            {"name": "GITHUB_TOKEN", "value": "ghp_x"},
            {"name": "LOG_LEVEL", "value": "info"},
            {"name": "CREDS", "valueFrom": {"secretKeyRef": {"name": "cloud-credentials", "key": "cloud"}}}]}],
            "volumes": [{"name": "c", "secret": {"secretName": "cloud-credentials"}}]},
        "config": {"credentialsSecretRef": "bsl-creds", "tokenSecretName": "t", "retries": 3,
            "password": "pw", "apiKey": 42, "secretKey": "sk"},
    });
    let mut want = pod.clone();
    want["metadata"]["annotations"]["cfg"] =
        json!(format!(r#"{{"name":"DB_PASSWORD","value":"{M}"}}"#));
    want["spec"]["containers"][0]["args"][0] = json!(format!("--password={M}"));
    want["spec"]["containers"][0]["env"][0]["value"] = json!(M);
    want["spec"]["containers"][0]["env"][1]["value"] = json!(M);
    for key in ["password", "apiKey", "secretKey"] {
        want["config"][key] = json!(M);
    }
    assert_eq!(r.redact_json(&mut pod), 7);
    assert_eq!(pod, want);
    assert_eq!(r.redact_json(&mut pod), 0);
    assert_eq!(pod, want);

    let mut secret =
        json!({"kind": "Secret", "data": {"cloud": "W2RlZmF1bHRd"}, "stringData": {"value": "x"}});
    assert_eq!(r.redact_json(&mut secret), 2);
    assert_eq!(
        secret,
        json!({"kind": "Secret", "data": {"cloud": M}, "stringData": {"value": M}})
    );
}

#[test]
fn redaction_is_idempotent() {
    unchanged(&[
        &format!("password={M} Authorization: Bearer {M}"),
        &format!("https://u:{M}@h/x?X-Amz-Signature={M}&token={M}"),
        &format!(r#"{{"name":"API_TOKEN","value":"{M}"}} secretAccessKey: "{M}""#),
    ]);
    let text = format!("[default]\naws_secret_access_key = {M}\n");
    assert_eq!(Redactor::new().redact_text(&text), text);
}

#[test]
fn typical_velero_info_line_skips_every_rule() {
    let r = Redactor::new();
    let line = r#"time="2026-11-23T10:00:01Z" level=info msg="Backed up 12 items out of an estimated total of 240 (estimate will change throughout the backup)" backup=velero/nightly-20261123 logSource="pkg/backup/backup.go:504" name=shop-db-0 namespace=shop progress= resource=pods"#;
    // Not only unchanged: the literal prefilter alone turns it away, before the precheck's
    // regex or any rule runs.
    assert!(!r.builtin.prefilter.may_match(line));
    assert!(!r.builtin.precheck.is_match(line));
    assert!(matches!(r.redact_line(line), Cow::Borrowed(l) if l == line));
    let mut lines = r.stream();
    assert!(matches!(lines.redact(line), Cow::Borrowed(l) if l == line));
    assert_eq!(lines.counts().total(), 0);
}

#[test]
fn streams_count_masks_by_rule() {
    let r = Redactor::new();
    let mut lines = r.stream();
    for line in [
        "password=a token=b",
        "level=info msg=ok",
        "Authorization: Bearer abcdef",
        "key AKIAIOSFODNN7EXAMPLE and AKIAIOSFODNN7EXAMPLF",
    ] {
        lines.redact(line);
    }
    let counts: Vec<_> = lines
        .counts()
        .0
        .iter()
        .map(|(rule, &n)| (rule.as_ref(), n))
        .collect();
    assert_eq!(
        counts,
        [
            ("authorization-header", 1),
            ("aws-access-key-id", 2),
            ("secret-named-key-value", 2)
        ]
    );
    let mut total = MaskCounts::default();
    total.merge(lines.counts());
    total.merge(lines.counts());
    assert_eq!(total.get("aws-access-key-id"), 4);
    assert_eq!(total.total(), 10);
    assert_eq!(
        serde_json::to_value(&total).unwrap(),
        json!({"authorization-header": 2, "aws-access-key-id": 4, "secret-named-key-value": 4})
    );
}

#[test]
fn json_counts_add_to_the_callers() {
    let r = Redactor::new();
    let mut counts = MaskCounts::default();
    let mut cm = json!({"data": {"password": "x", "url": "https://u:p@h/"}});
    r.redact_json_counted(&mut cm, &mut counts);
    r.redact_json_counted(&mut json!({"token": "y"}), &mut counts);
    assert_eq!(counts.get("secret-named-key-value"), 2);
    assert_eq!(counts.get("url-userinfo"), 1);
    assert_eq!(
        cm,
        json!({"data": {"password": M, "url": format!("https://u:{M}@h/")}})
    );
}

#[test]
fn site_patterns_are_masked_whole_on_every_line() {
    let r = Redactor::with_extra_patterns(&[
        r"corp-[0-9a-f]{8}".to_string(),
        r"(?i)internal\.example\.com".to_string(),
    ])
    .unwrap();
    let mut lines = r.stream();
    // No built-in trigger in this line: site patterns do not depend on the precheck.
    assert_eq!(
        lines.redact("level=info msg=ok ticket=corp-0a1b2c3d host=Internal.Example.com"),
        format!("level=info msg=ok ticket={M} host={M}")
    );
    assert_eq!(lines.redact("password=x"), format!("password={M}"));
    assert_eq!(lines.counts().get("site-pattern-1"), 1);
    assert_eq!(lines.counts().get("site-pattern-2"), 1);
    assert_eq!(lines.counts().get("secret-named-key-value"), 1);
    assert!(matches!(
        lines.redact("level=info msg=ok"),
        Cow::Borrowed(_)
    ));
    assert!(Redactor::with_extra_patterns(&["(unclosed".to_string()]).is_err());
    // No extra patterns: the built-in rules alone.
    let plain = Redactor::with_extra_patterns(&[]).unwrap();
    assert!(matches!(
        plain.redact_line("ticket=corp-0a1b2c3d"),
        Cow::Borrowed(_)
    ));
}

#[test]
fn yaml_blocks_and_env_pairs_over_lines() {
    let r = Redactor::new();
    let text = "db:\n  password: |\n    s3cr3t\n\n    more\n  pool: 10\nenv:\n- name: API_TOKEN\n  value: \"tok\"\n- name: LOG_LEVEL\n  value: info\n";
    let want = format!(
        "db:\n  password: |\n    {M}\n\n    {M}\n  pool: 10\nenv:\n- name: API_TOKEN\n  value: \"{M}\"\n- name: LOG_LEVEL\n  value: info\n"
    );
    let mut lines = r.stream();
    assert_eq!(lines.redact_text(text), want);
    assert_eq!(lines.counts().get("secret-named-key-value"), 1);
    assert_eq!(lines.counts().get("env-secret"), 1);
    // Masked again: unchanged and not counted.
    let mut again = r.stream();
    assert_eq!(again.redact_text(&want), want);
    assert_eq!(again.counts().total(), 0);
}

#[test]
fn args_arrays_mask_the_value_after_a_secret_flag() {
    let r = Redactor::new();
    let mut args = json!([
        "--password",
        "hunter2",
        "--secret-name",
        "cloud",
        "--token",
        "--verbose",
        "mysqladmin",
        "-pX"
    ]);
    assert_eq!(r.redact_json(&mut args), 1);
    assert_eq!(
        args,
        json!([
            "--password",
            M,
            "--secret-name",
            "cloud",
            "--token",
            "--verbose",
            "mysqladmin",
            "-pX"
        ])
    );
    let mut probe = json!(["/usr/bin/mysqladmin", "ping", "-uroot", "-pX", "-p"]);
    assert_eq!(r.redact_json(&mut probe), 1);
    assert_eq!(
        probe,
        json!([
            "/usr/bin/mysqladmin",
            "ping",
            "-uroot",
            format!("-p{M}"),
            "-p"
        ])
    );
}

#[test]
fn a_key_without_its_end_line_is_masked_for_a_bounded_number_of_lines() {
    let r = Redactor::new();
    let mut text = String::from("-----BEGIN RSA PRIVATE KEY-----\n");
    text.push_str(&"MIIEowIBAAKCAQEA\n".repeat(stream::MAX_KEY_LINES + 5));
    let out = r.redact_text(&text);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[..stream::MAX_KEY_LINES].iter().all(|l| *l == M));
    assert!(
        lines[stream::MAX_KEY_LINES].starts_with(&format!("{M} (no END line within ")),
        "{}",
        lines[stream::MAX_KEY_LINES]
    );
    // Past the bound, lines are themselves again.
    assert_eq!(lines[stream::MAX_KEY_LINES + 1], "MIIEowIBAAKCAQEA");
    // The same for a base64 key that never ends.
    let mut text =
        String::from("LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQpNSUlFcEFJQkFBS0NBUUVBMFo3\n");
    text.push_str(&"YWJjZGVmZ2hpamtsbW5v\n".repeat(stream::MAX_KEY_LINES + 5));
    let out = r.redact_text(&text);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[..stream::MAX_KEY_LINES].iter().all(|l| *l == M));
    assert!(lines[stream::MAX_KEY_LINES].starts_with(&format!("{M} (no END line")));
    assert_eq!(lines[stream::MAX_KEY_LINES + 1], "YWJjZGVmZ2hpamtsbW5v");
}

#[test]
fn base64_keys_wrapped_over_lines() {
    let r = Redactor::new();
    let wrapped = "tls.key:\n  LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQpNSUlFcEFJQkFBS0NBUUVBMFo3\n  YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXo0NTY3ODkw\n  Ag==\nnext: line\nDone\n";
    assert_eq!(
        r.redact_text(wrapped),
        format!("tls.key:\n  {M}\n  {M}\n  {M}\nnext: line\nDone\n")
    );
    // Padding on the first line ends it; so does a line that is not base64.
    let single = "LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQpNSUlFcEFJQkFBS0NBUUVBMFo3YQ==\nDone\n";
    assert_eq!(r.redact_text(single), format!("{M}\nDone\n"));
    // A certificate goes on over lines too, and is kept.
    let cert = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSURCVENDQWUyZ0F3SUJBZ0lJVTNxMQ\nYWJjZGVmZ2hpamtsbW5v\n";
    assert!(matches!(r.stream().redact_text(cert), Cow::Borrowed(_)));
    // In a multi-line string of an object, masked whole.
    let mut secret = json!({"data": {"key.b64": "LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQpNSUlFcEFJQkFBS0NBUUVBMFo3\nYWJjZGVmZ2hpamtsbW5v\r\nAg==\r\nDone\n"}});
    let mut counts = MaskCounts::default();
    r.redact_json_counted(&mut secret, &mut counts);
    assert_eq!(
        secret,
        json!({"data": {"key.b64": format!("{M}\r\nDone\n")}})
    );
    assert_eq!(counts.get("base64-pem"), 1);
    // Wrapped with escaped line breaks inside one JSON string.
    masks! {
        r#"{"msg":"key LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQpNSUlFcEFJQkFBS0NBUUVBMFo3\nYWJjZGVmZ2hpamtsbW5v=\n"}"# => r#"{"msg":"key {M}\n"}"#,
    }
}

// ---------------------------------------------------------------------------- the corpus
// Each text sample is redacted as a log or file (line by line), alone, as a JSON log line and
// inside an object.

fn corpus_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/redaction-corpus")
        .join(name)
}

#[path = "../../testdata/redaction-corpus/samples.rs"]
mod corpus_format;
use corpus_format::Sample;

impl Sample {
    fn one_line(&self) -> bool {
        !self.text.contains('\n')
    }
}

fn samples(name: &str) -> Vec<Sample> {
    corpus_format::parse(&std::fs::read_to_string(corpus_path(name)).expect("corpus file"))
}

/// A JSON log line carrying the sample, as Velero's plugins and many tools write them.
fn json_log_line(text: &str) -> String {
    json!({"level": "info", "msg": text}).to_string()
}

/// The sample as the data of a ConfigMap, as the bundle collects objects.
fn config_map(text: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "sample"},
        "data": {"sample": text},
    })
}

/// How a secret reads inside a JSON string.
fn json_escaped(secret: &str) -> String {
    let quoted = serde_json::to_string(secret).expect("a string serializes");
    quoted[1..quoted.len() - 1].to_string()
}

fn known_rule(name: &str) -> bool {
    RULES.iter().any(|rule| rule.name == name)
}

#[test]
fn corpus_secrets_are_masked_everywhere() {
    let r = Redactor::new();
    let samples = samples("secrets.txt");
    let mut failures = Vec::new();
    let mut fail = |sample: &Sample, view: &str, what: String| {
        failures.push(format!(
            "secrets.txt:{} ({}) {view}: {what}",
            sample.line, sample.rule
        ));
    };
    for sample in &samples {
        if sample.secrets.is_empty() || sample.text.is_empty() || !known_rule(&sample.rule) {
            fail(
                sample,
                "sample",
                "needs a known rule, secrets and text".into(),
            );
            continue;
        }
        // A log or object-store file, line by line.
        let mut lines = r.stream();
        let out = lines.redact_text(&sample.text).into_owned();
        for secret in &sample.secrets {
            if out.contains(secret.as_str()) {
                fail(sample, "as a file", format!("{secret:?} left in {out:?}"));
            }
        }
        if lines.counts().get(&sample.rule) == 0 {
            fail(sample, "as a file", format!("counted {:?}", lines.counts()));
        }
        if r.stream().redact_text(&out) != out {
            fail(
                sample,
                "as a file",
                format!("a second pass changed {out:?}"),
            );
        }
        if sample.one_line() {
            let alone = r.redact_line(&sample.text);
            for secret in &sample.secrets {
                if alone.contains(secret.as_str()) {
                    fail(sample, "alone", format!("{secret:?} left in {alone:?}"));
                }
            }
            let line = json_log_line(&sample.text);
            let out = r.stream().redact_text(&line).into_owned();
            for secret in &sample.secrets {
                if out.contains(&json_escaped(secret)) {
                    fail(
                        sample,
                        "as a JSON line",
                        format!("{secret:?} left in {out}"),
                    );
                }
            }
        }
        let mut object = config_map(&sample.text);
        let mut counts = MaskCounts::default();
        r.redact_json_counted(&mut object, &mut counts);
        let out = object.to_string();
        for secret in &sample.secrets {
            if out.contains(&json_escaped(secret)) {
                fail(sample, "in an object", format!("{secret:?} left in {out}"));
            }
        }
        if counts.get(&sample.rule) == 0 {
            fail(sample, "in an object", format!("counted {counts:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(samples.len() >= 80, "{} secret samples", samples.len());
}

#[test]
fn corpus_covers_every_rule() {
    let samples = samples("secrets.txt");
    for rule in RULES {
        assert!(
            samples.iter().any(|s| s.rule == rule.name),
            "no sample for {}",
            rule.name
        );
    }
}

#[test]
fn corpus_near_misses_are_kept() {
    let r = Redactor::new();
    let samples = samples("near-misses.txt");
    let mut failures = Vec::new();
    for sample in &samples {
        let at = format!("near-misses.txt:{} ({})", sample.line, sample.rule);
        if sample.text.is_empty() || !known_rule(&sample.rule) {
            failures.push(format!("{at}: needs a known rule and text"));
            continue;
        }
        let mut lines = r.stream();
        for line in sample.text.lines() {
            if !matches!(lines.redact(line), Cow::Borrowed(l) if l == line) {
                failures.push(format!("{at} as a file: changed {line:?}"));
            }
            if !matches!(r.redact_line(line), Cow::Borrowed(_)) {
                failures.push(format!("{at} alone: changed {line:?}"));
            }
            let json_line = json_log_line(line);
            if r.redact_line(&json_line) != json_line {
                failures.push(format!("{at} as a JSON line: changed {json_line}"));
            }
        }
        let mut object = config_map(&sample.text);
        let masked = r.redact_json(&mut object);
        if masked != 0 || object != config_map(&sample.text) {
            failures.push(format!("{at} in an object: {masked} masked, {object}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(samples.len() >= 30, "{} near misses", samples.len());
}

/// Each objects/*.json holds `input`, its exact `expected` redaction and the `counts` by rule.
#[test]
fn corpus_objects_are_redacted_exactly() {
    let r = Redactor::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_path("objects"))
        .expect("objects directory")
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    files.sort();
    assert!(files.len() >= 3, "{} object cases", files.len());
    for file in files {
        let case: Value =
            serde_json::from_str(&std::fs::read_to_string(&file).expect("object case"))
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let mut object = case["input"].clone();
        let mut counts = MaskCounts::default();
        r.redact_json_counted(&mut object, &mut counts);
        assert_eq!(object, case["expected"], "{}", file.display());
        assert_eq!(
            serde_json::to_value(&counts).expect("counts serialize"),
            case["counts"],
            "{}",
            file.display()
        );
        assert_eq!(
            r.redact_json(&mut object),
            0,
            "second pass: {}",
            file.display()
        );
        assert_eq!(object, case["expected"], "second pass: {}", file.display());
    }
}

/// A log redacted as the log copy does it: the lines [`LineStream::unchanged_lines`] vouches
/// for passed on as they are, each other line redacted on its own.
fn redacted_by_blocks(r: &Redactor, log: &str) -> String {
    let mut lines = r.stream();
    let (mut out, mut rest) = (String::new(), log);
    while !rest.is_empty() {
        let unchanged = lines.unchanged_lines(rest.as_bytes());
        let (taken, after) = match unchanged {
            0 => {
                let end = rest.find('\n').map_or(rest.len(), |at| at + 1);
                let line = &rest[..end];
                out.push_str(&lines.redact(line.trim_end_matches('\n')));
                out.push_str(&line[line.trim_end_matches('\n').len()..]);
                rest.split_at(end)
            }
            n => rest.split_at(n),
        };
        if unchanged > 0 {
            out.push_str(taken);
        }
        rest = after;
    }
    out
}

#[test]
fn corpus_samples_amid_plain_lines_are_redacted_alike_in_blocks_and_line_by_line() {
    let r = Redactor::new();
    let plain = "time=\"t\" level=info msg=\"restored item\" logSource=\"pkg/restore.go:1\"\n";
    let mut compared = 0;
    for name in ["secrets.txt", "near-misses.txt"] {
        for sample in samples(name) {
            let log = format!("{}{}\n{}", plain.repeat(3), sample.text, plain.repeat(3));
            let by_line = r.stream().redact_text(&log).into_owned();
            assert_eq!(
                redacted_by_blocks(&r, &log),
                by_line,
                "{name}:{}",
                sample.line
            );
            compared += 1;
        }
    }
    assert!(compared >= 60, "{compared} samples");
    // Site patterns are tried on every line: no line is vouched for.
    let site = Redactor::with_extra_patterns(&["restored".to_string()]).unwrap();
    assert_eq!(site.stream().unchanged_lines(plain.as_bytes()), 0);
    assert!(redacted_by_blocks(&site, plain).contains(super::MARKER));
}

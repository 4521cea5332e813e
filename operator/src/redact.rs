//! Masks credentials in everything the bundle collects: log lines, free text and Kubernetes
//! objects (as JSON). Gigabytes of logs go through [`Redactor::redact_line`], so one cheap
//! keyword scan decides first whether any rule can apply at all; such a line (nearly every
//! line) comes back borrowed, without allocating.
//!
//! Limitations, chosen to fail towards masking: `redact_line` sees one line, so of a PEM
//! private key spread over several lines it masks only the BEGIN line's remainder
//! ([`LineStream`] keeps state and masks the following lines up to the END marker; a JSON
//! string is masked whole). A secret-like word followed by `:` in prose (`get secret: secrets
//! "x" not found`) has its next word masked, since it cannot be told from `secret: value`.

use regex::Regex;
use serde_json::Value;
use std::borrow::Cow;

pub const MARKER: &str = "***REDACTED***";

/// Words that make a JSON key or an env var name secret-like (matched on the lowercased name).
const SECRET_WORDS: &str = "password|passwd|secret|token|apikey|api_key|api-key|access_key|accesskey|credential|private_key|privatekey|auth";
/// Suffixes of keys that name or select a Secret rather than hold one (`secretName`, `...Ref`).
const REFERENCE_SUFFIXES: &[&str] = &["ref", "name", "names", "selector", "namespace"];

/// Any line some rule below could match contains one of these; anything else is left alone.
const PRECHECK: &str = r"(?i)passw|pwd|secret|token|api[_-]?key|access[_-]?key|credential|private[_ -]?key|auth|bearer|signature|://[^\s/@]*@|(?-i:AKIA|ASIA|eyJ)";

/// Rules as (pattern, shortest secret worth masking). The secret is the first capture group
/// that took part in the match, or the whole match when the pattern has no group; only it is
/// replaced, so the key, the scheme word, quotes and the host stay readable.
const RULES: &[(&str, usize)] = &[
    // PEM private key: the whole block, or from BEGIN to the end when the END is elsewhere.
    (
        r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY-----(?s:.*?)(?:-----END[A-Z0-9 ]*PRIVATE KEY-----|\z)",
        1,
    ),
    // JWT: three base64url segments, the header always starts `{"` = `eyJ`.
    (
        r"(?-u:\b)eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*",
        30,
    ),
    // AWS access key id (long-term AKIA, temporary ASIA).
    (r"(?-u:\b)(?:AKIA|ASIA)[A-Z0-9]{16}(?-u:\b)", 1),
    // Password in URL userinfo, up to the last `@` (an unescaped `@` in it must not leak the
    // rest); a bare `token@host` has no colon and is kept.
    (
        r#"(?i)(?-u:\b)[a-z][a-z0-9+.-]*://[^\s/?#@:"']*:([^\s/?#"']+)@"#,
        1,
    ),
    // Authorization header (any token length), or a lone bearer token long enough not to be prose.
    (
        r#"(?i)authorization["']?\s*[:=][\s"'\[]*(?:bearer|basic)\s+([^\s"',\]]+)|(?-u:\b)bearer\s+([A-Za-z0-9._~+/-]{16,}=*)"#,
        1,
    ),
    // Presigned URL query values (SigV4 and SigV2); also `Signature=` in a SigV4 header.
    (
        r#"(?i)(?-u:\b)(?:x-amz-credential|x-amz-security-token|signature|awsaccesskeyid)=([^&\s"',]+)"#,
        1,
    ),
    // key=value, key: value, key => value for secret-like keys (also `db_password`, `X-Api-Key`,
    // `secret-access-key`, `accessKeyId`).
    // The key must be followed directly by the separator, so `msg="token refreshed"` is prose;
    // it must not follow `/`, so `https://token:pw@host` is left to the URL rule. A space after
    // `=` only counts when one comes before it too: logrus writes an empty value as `key= `.
    (
        r#"(?i)(?:^|[^/A-Za-z0-9_.-])[A-Za-z0-9_.-]*?(?:passw(?:or)?d|pwd|secret|token|(?:secret[_-]?access|secret|private|access|api)[_-]?key(?:[_-]?id)?)(?:\\?["'])?(?:\s*(?:=>|:)\s*|\s+=\s*|=)(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|\\"((?:[^"\\]|\\[^"])*)\\"|([^\s"',&]+))"#,
        1,
    ),
    // Env entry printed as JSON text: {"name":"AWS_SECRET_ACCESS_KEY","value":"..."}.
    (
        r#"(?i)"name"\s*:\s*"[^"]*(?:passw|secret|token|api[_-]?key|access_?key|credential|private_?key|auth)[^"]*"\s*,\s*"value"\s*:\s*"((?:[^"\\]|\\.)*)""#,
        1,
    ),
];

#[derive(Debug)]
struct Rule {
    re: Regex,
    min_len: usize,
}

impl Rule {
    /// Masks every secret; stays borrowed when none (an empty value or MARKER itself is no
    /// secret, which keeps redaction idempotent).
    fn apply<'a>(&self, text: Cow<'a, str>) -> Cow<'a, str> {
        let mut out = String::new();
        let mut last = None;
        for caps in self.re.captures_iter(&text) {
            let whole = caps.get(0).expect("group 0 always matches");
            let secret = caps.iter().skip(1).flatten().next().unwrap_or(whole);
            if secret.len() < self.min_len || secret.as_str() == MARKER {
                continue;
            }
            out.push_str(&text[last.unwrap_or(0)..secret.start()]);
            out.push_str(MARKER);
            last = Some(secret.end());
        }
        match last {
            None => text,
            Some(end) => {
                out.push_str(&text[end..]);
                Cow::Owned(out)
            }
        }
    }
}

/// Masks the lines of one stream (a log, a file) in order, so the body lines of a PEM private
/// key spread over several lines are masked too, not only its BEGIN line.
pub struct LineStream<'r> {
    redactor: &'r Redactor,
    in_pem: bool,
}

impl LineStream<'_> {
    /// Masks one line (without its line ending).
    pub fn redact<'a>(&mut self, line: &'a str) -> Cow<'a, str> {
        let r = self.redactor;
        if self.in_pem {
            return match r.pem_end.find(line) {
                Some(end) => {
                    self.in_pem = false;
                    Cow::Owned(format!("{MARKER}{}", r.redact_line(&line[end.end()..])))
                }
                None => Cow::Borrowed(MARKER),
            };
        }
        let masked = r.redact_line(line);
        // A BEGIN line always passes the keyword precheck, so untouched lines open no block.
        if matches!(masked, Cow::Owned(_)) {
            self.in_pem = r
                .pem_begin
                .find_iter(line)
                .last()
                .is_some_and(|begin| !r.pem_end.is_match(&line[begin.end()..]));
        }
        masked
    }
}

/// Compiled once; `Regex` is `Send + Sync`, so one `Redactor` serves every task by reference.
#[derive(Debug)]
pub struct Redactor {
    precheck: Regex,
    rules: Vec<Rule>,
    pem_begin: Regex,
    pem_end: Regex,
}

// Checked at compile time: the controller shares one Redactor across its tasks.
const _: () = {
    const fn shareable<T: Send + Sync>() {}
    shareable::<Redactor>()
};

impl Default for Redactor {
    fn default() -> Self {
        Self::new()
    }
}

impl Redactor {
    pub fn new() -> Redactor {
        let re = |p: &str| Regex::new(p).expect("redaction pattern compiles");
        Redactor {
            precheck: re(PRECHECK),
            rules: RULES
                .iter()
                .map(|&(p, min_len)| Rule { re: re(p), min_len })
                .collect(),
            pem_begin: re(r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY-----"),
            pem_end: re(r"-----END[A-Z0-9 ]*PRIVATE KEY-----"),
        }
    }

    /// Masks the secrets in one line (or any string: a PEM block inside is masked whole).
    pub fn redact_line<'a>(&self, line: &'a str) -> Cow<'a, str> {
        if !self.precheck.is_match(line) {
            return Cow::Borrowed(line);
        }
        self.rules
            .iter()
            .fold(Cow::Borrowed(line), |text, rule| rule.apply(text))
    }

    /// Masks every line, keeping `\n` / `\r\n` endings; the lines of a multi-line PEM private
    /// key after its BEGIN line are each replaced by MARKER up to and including its END marker
    /// (to the end of the text when no END comes).
    #[cfg(test)]
    pub fn redact_text(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut lines = self.stream();
        for chunk in text.split_inclusive('\n') {
            let body = chunk.trim_end_matches(['\n', '\r']);
            out.push_str(&lines.redact(body));
            out.push_str(&chunk[body.len()..]);
        }
        out
    }

    /// A redactor for the lines of one log or file, in order: it remembers an open PEM block.
    pub fn stream(&self) -> LineStream<'_> {
        LineStream {
            redactor: self,
            in_pem: false,
        }
    }

    /// Masks a Kubernetes object in place; returns how many values were masked. Every string
    /// goes through `redact_line`; the value of an env entry with a secret-like name, and a
    /// string or number under a secret-like key (not a reference such as `secretName` or
    /// `credentialsSecretRef`), becomes MARKER; objects and arrays are walked.
    pub fn redact_json(&self, value: &mut Value) -> usize {
        match value {
            Value::String(s) => match self.redact_line(s) {
                Cow::Borrowed(_) => 0,
                Cow::Owned(masked) => {
                    *s = masked;
                    1
                }
            },
            Value::Array(items) => items.iter_mut().map(|v| self.redact_json(v)).sum(),
            Value::Object(map) => {
                // An env entry {"name": "AWS_SECRET_ACCESS_KEY", "value": "..."}.
                let env_secret = map.contains_key("value")
                    && map
                        .get("name")
                        .and_then(Value::as_str)
                        .is_some_and(secret_like);
                // Defence in depth: a Secret's data is all secret, whatever its keys.
                let secret_obj = map.get("kind").and_then(Value::as_str) == Some("Secret");
                let mut n = 0;
                for (key, v) in map.iter_mut() {
                    if secret_obj
                        && (key == "data" || key == "stringData")
                        && let Value::Object(data) = v
                    {
                        n += data.values_mut().map(mask).filter(|&m| m).count();
                        continue;
                    }
                    let holds_secret = (env_secret && key == "value")
                        || (secret_like(key) && !names_a_secret(key));
                    if holds_secret && mask(v) {
                        n += 1;
                    } else {
                        n += self.redact_json(v);
                    }
                }
                n
            }
            _ => 0,
        }
    }
}

fn secret_like(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_WORDS.split('|').any(|w| name.contains(w))
}

fn names_a_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    REFERENCE_SUFFIXES.iter().any(|s| key.ends_with(s))
}

/// Replaces a string or number by MARKER; true when that changed it.
fn mask(v: &mut Value) -> bool {
    let maskable = v.is_number() || v.as_str().is_some_and(|s| s != MARKER);
    if maskable {
        *v = Value::String(MARKER.into());
    }
    maskable
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
        let mut v = json!({"tls.key": "-----BEGIN PRIVATE KEY-----\nMIIE\nAA\n-----END PRIVATE KEY-----\n"});
        assert_eq!(r.redact_json(&mut v), 1);
        assert_eq!(v, json!({"tls.key": format!("{M}\n")}));
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

        let mut secret = json!({"kind": "Secret", "data": {"cloud": "W2RlZmF1bHRd"}, "stringData": {"value": "x"}});
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
}

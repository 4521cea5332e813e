//! The table of rules, in the order they run. Each has the name the bundle's manifest counts
//! its masks under, a trigger (a regex every line it can change matches; the union of all
//! triggers is the precheck that lets ordinary log lines through untouched) and its pattern.
//!
//! The secret is the first capture group that took part in a match, or the whole match when
//! none did; only it is replaced, so keys, header names, quotes and hosts stay readable.
//! Earlier rules win: a value already masked is MARKER, which no rule masks again.

use base64::Engine as _;

pub(super) struct RuleSpec {
    pub(super) name: &'static str,
    /// Case-insensitive unless it says `(?-i:...)`.
    pub(super) trigger: &'static str,
    /// Lowercase literals, one of which every text the trigger matches holds once its ASCII
    /// letters are lowercased: the prefilter looks for them before the precheck runs
    /// (`prefilter_tests` proves it for each rule).
    pub(super) needles: &'static [&'static str],
    /// Alternatives, joined with `|`.
    pub(super) parts: &'static [Part],
    /// Shortest secret worth masking (shorter ones are prose, not tokens).
    pub(super) min_len: usize,
    /// A last check on a candidate secret that a regex cannot express.
    pub(super) confirm: Option<fn(&str) -> bool>,
}

pub(super) enum Part {
    /// A regex; `{VALUE}`, `{VALUE_SP}`, `{DQ}`, `{ESC}`, `{QUOTE}` and `{SEP}` stand for
    /// [`VALUE`], [`VALUE_AFTER_SPACE`], [`DQ`], [`ESC`], [`QUOTE`] and [`SEP`].
    Raw(&'static str),
    /// `name=value`, `name: value`, `"name":"value"`, `name => value`, `name = value`, where
    /// the name (case-insensitive) ends with this pattern: `db_password`, `X-Api-Key`.
    KeyValue(&'static str),
    /// A command-line flag ending with this pattern: `--name=value`, `--name value`.
    Flag(&'static str),
    /// A YAML key (unquoted) at the start of a line: `name: value`, `- name: value`.
    YamlKey(&'static str),
}

/// A double-quoted string.
const DQ: &str = r#""((?:[^"\\\n]|\\.)*)""#;
/// A string quoted with escaped quotes, at any depth (`\"x\"` in a JSON string, `\\\"x\\\"`
/// one level deeper); it ends at the first quote, however escaped.
const ESC: &str = r#"\\+"((?:[^"\\\n]|\\+[^"\\\n])*)\\+""#;
/// An optional quote, escaped or not (`"`, `\"` in a JSON string).
const QUOTE: &str = r#"(?:\\*["'])?"#;
/// Between fields of a line: a separator, or blanks (a tab escaped in a JSON string too).
const SEP: &str = r"(?:[ \t]*[,:;|/=][ \t]*|(?:[ \t]|\\t)+)";
/// A value after `=` or `:`: double-quoted, single-quoted, quoted with escaped quotes, or
/// bare up to a space, quote or list separator. Not `|`, `>` (a YAML block, masked by
/// `LineStream`), nor `{` or `[` (the value is a structure, not a secret). A bare value
/// stops at an escaped line break (`\n` in a JSON string): the rest is the next line's.
const VALUE: &str = r#"(?:{DQ}|'([^'\n]*)'|{ESC}|((?:[^\s"'\\,;&|>{}\[\]]|\\[^"\snrt])(?:[^\s"'\\,;&}\]]|\\[^"\snrt])*))"#;
/// A flag's value after a space: never another flag.
const VALUE_AFTER_SPACE: &str = r#"(?:{DQ}|'([^'\n]*)'|([^\s"'\\-][^\s"'\\]*))"#;

/// Words whose flags take a secret (`--password x`, `--db-pwd=x`, `-passin pass:x`); also
/// used for a flag and its value as two elements of an args array.
pub(super) const SECRET_FLAG_WORDS: &str = "password|passwd|passphrase|passin|passout|pass|pwd|secret|token|secret-key|secret-access-key|access-key(?:-id)?|account-key|session-token|api-key|apikey|client-secret|auth-token";

pub(super) const RULES: &[RuleSpec] = &[
    // A GCP service-account key file: the key and its id, whatever the key's form.
    RuleSpec {
        name: "gcp-service-account-key",
        trigger: "private_key",
        needles: &["key"],
        parts: &[Part::Raw(
            r#"(?i:\\*"private_key(?:_id)?\\*"[ \t]*:[ \t]*(?:{DQ}|{ESC}))"#,
        )],
        min_len: 1,
        confirm: None,
    },
    // The whole block, or from BEGIN to the end when the END is elsewhere (LineStream masks
    // the following lines).
    RuleSpec {
        name: "pem-private-key",
        trigger: "private key",
        needles: &["key"],
        parts: &[Part::Raw(
            r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----(?s:.*?)(?:-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\z)",
        )],
        min_len: 1,
        confirm: None,
    },
    RuleSpec {
        name: "kubeconfig-client-key-data",
        trigger: "client-key-data",
        needles: &["key"],
        parts: &[Part::Raw(
            r#"(?i:client-key-data\\*["']?[ \t]*:[ \t]*(?:\\*["'])?([A-Za-z0-9+/]+={0,2}))"#,
        )],
        min_len: 1,
        confirm: None,
    },
    // `-----BEGIN` in base64 (a Secret's `tls.key`); a certificate is public and kept. Wrapped
    // with escaped line breaks (in a JSON string) it is masked whole, and so it is wrapped
    // over lines of base64 alone when the text holds them (a multi-line string); a log's
    // next lines are masked by `LineStream`.
    RuleSpec {
        name: "base64-pem",
        trigger: "(?-i:LS0tLS1CRUdJTi)",
        needles: &["ls0tls1crudjti"],
        parts: &[Part::Raw(
            r"(LS0tLS1CRUdJTi(?:[A-Za-z0-9+/]|\\+[rn])*(?:(?:(?mR:$)\r?\n[ \t]*[A-Za-z0-9+/]+)+={0,2}(?mR:$)|={0,2}))",
        )],
        min_len: 1,
        confirm: Some(decodes_to_private_key),
    },
    // It repeats the whole object as applied, Secrets' data included: masked whole. Its
    // value is JSON, so quoted with escaped quotes it holds quotes escaped twice.
    RuleSpec {
        name: "last-applied-configuration",
        trigger: "last-applied-configuration",
        needles: &["last-applied-configuration"],
        parts: &[Part::Raw(
            r#"(?i:last-applied-configuration\\*["']?[ \t]*[:=][ \t]*(?:{DQ}|\\"((?:[^"\\\n]|\\[^"\\\n]|\\\\(?:\\["\\]|[^"\\\n]))*)\\"|'((?:[^'\n]|'')*)'|([^\s|>].*)))"#,
        )],
        min_len: 1,
        confirm: None,
    },
    RuleSpec {
        name: "kubeconfig-token",
        trigger: "token",
        needles: &["token"],
        parts: &[Part::YamlKey("token|id-token|refresh-token|access-token")],
        min_len: 1,
        confirm: None,
    },
    // Any scheme: after a one-token scheme (Bearer, Basic, Negotiate, token, ...) that token;
    // after a scheme with parameters (AWS4-HMAC-SHA256 Credential=..., Signature=...; Digest)
    // all of them, quoted values too; after anything else the value up to a quote or bracket.
    RuleSpec {
        name: "authorization-header",
        trigger: r#"authorization\\*["']?[ \t]*[:=]"#,
        needles: &["authorization"],
        parts: &[Part::Raw(
            r#"(?i:(?-u:\b)(?:proxy-)?authorization\\*["']?[ \t]*[:=][ \t]*\[?[ \t]*(?:"|'|\\+")?[ \t]*(?:(?:bearer|basic|negotiate|ntlm|token|apikey|dpop|aws|sharedkey|sharedkeylite|kerberos|gssapi)[ \t]+([^\s"',\]\\]+)|(?:aws4-hmac-sha256|aws4-ecdsa-p256-sha256|digest|oauth|hmac)[ \t]+((?:=\\*"[^"\\\r\n]*\\*"|[^"'\\\r\n]|\\[^"'\\])+)|([^\s"'\]\\][^"'\]\\\r\n]*)))"#,
        )],
        min_len: 1,
        confirm: None,
    },
    // `Cookie:` and `Set-Cookie:` values, to the end of the header value.
    RuleSpec {
        name: "cookie",
        trigger: r#"cookie\\*["']?[ \t]*[:=]"#,
        needles: &["cookie"],
        parts: &[Part::Raw(
            r#"(?i:(?:^|[^A-Za-z0-9_-])(?:set-)?cookie\\*["']?[ \t]*[:=][ \t]*[\["']*(?:\\+")?[ \t]*([^\s"'\]\\][^"'\]\\\r\n]*))"#,
        )],
        min_len: 1,
        confirm: None,
    },
    // Query values of presigned URLs (S3 SigV4 and SigV2, GCS, OSS); also `Credential=` and
    // `Signature=` of a SigV4 header printed without its name.
    RuleSpec {
        name: "presigned-url",
        trigger: "signature=|credential=|security-token=|(?:aws|oss)accesskeyid=|googleaccessid=",
        needles: &[
            "signature=",
            "credential=",
            "token=",
            "keyid=",
            "googleaccessid=",
        ],
        parts: &[Part::Raw(
            r#"(?i:(?-u:\b)(?:credential|x-amz-security-token|signature|awsaccesskeyid|ossaccesskeyid|googleaccessid)=([^&\s"',\\]+))"#,
        )],
        min_len: 1,
        confirm: None,
    },
    // Azure SAS tokens and `SharedAccessSignature=` connection strings.
    RuleSpec {
        name: "azure-sas-sig",
        trigger: "sig=",
        needles: &["sig="],
        parts: &[Part::Raw(r#"(?i:(?:^|[?&;\s"'])sig=([^&\s"';\\]+))"#)],
        min_len: 1,
        confirm: None,
    },
    // `AccountKey=` of a storage connection string, `AZURE_STORAGE_ACCOUNT_ACCESS_KEY`.
    RuleSpec {
        name: "azure-account-key",
        trigger: "account[_-]?(?:access[_-]?)?key|storage[_-]?(?:account[_-]?)?key|shared[_-]?access[_-]?key",
        needles: &["key"],
        parts: &[
            Part::KeyValue(
                "account[_-]?(?:access[_-]?)?key|storage[_-]?(?:account[_-]?)?key|shared[_-]?access[_-]?key",
            ),
            Part::Flag("account-key"),
        ],
        min_len: 1,
        confirm: None,
    },
    // The password of URL userinfo, up to the last `@` (an unescaped `@`, `#` or `?` in it
    // must not leak the rest); a bare `user@host` has no colon and is kept.
    RuleSpec {
        name: "url-userinfo",
        trigger: r"://[^\s/@]*@|@(?:tcp|unix)?\(",
        needles: &["@"],
        parts: &[
            Part::Raw(r#"(?i:(?-u:\b)[a-z][a-z0-9+.-]*://[^\s/?#@:"']*:([^\s/"']+)@)"#),
            // A Go MySQL DSN: `user:password@tcp(host:3306)/db`.
            Part::Raw(r#"(?i:(?-u:\b)[a-z0-9_.-]+:([^\s/@"']+)@(?:tcp|unix)?\()"#),
        ],
        min_len: 1,
        confirm: None,
    },
    // Named, as a flag, or bare next to its key id: right after it (`AKIA... wJalr...`, a CSV
    // row) or one or two fields later (`aws iam create-access-key --output text` puts the
    // creation time between). Elsewhere 40 such characters are no key (a git SHA).
    RuleSpec {
        name: "aws-secret-key",
        trigger: "secret|(?-i:AKIA|ASIA)",
        needles: &["secret", "akia", "asia"],
        parts: &[
            Part::KeyValue("secret[_-]?access[_-]?key|aws[_-]?secret[_-]?key"),
            Part::Flag("secret-access-key|aws-secret-key"),
            Part::Raw(
                r"(?i:(?-u:\b)aws[ \t]+configure[ \t]+set[ \t]+(?:[a-z0-9_-]+\.)?aws_secret_access_key[ \t]+{VALUE_SP})",
            ),
            Part::Raw(
                r#"(?:(?-u:\b)|\\t)(?:AKIA|ASIA)[A-Z0-9]{16}(?:{QUOTE}{SEP}{QUOTE}[^\s"',;|\\]{1,39}?){0,2}{QUOTE}{SEP}{QUOTE}([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)"#,
            ),
        ],
        min_len: 1,
        confirm: None,
    },
    // Long-term (AKIA) and temporary (ASIA) key ids, and any value named an access key id
    // (MinIO's are not AKIA-shaped).
    RuleSpec {
        name: "aws-access-key-id",
        trigger: "access[_-]?key|(?-i:AKIA|ASIA)",
        needles: &["key", "akia", "asia"],
        parts: &[
            Part::KeyValue("access[_-]?key(?:[_-]?id)?"),
            Part::Flag("access-key(?:-id)?"),
            // Also after a tab or line break escaped in a JSON string (`\tAKIA...`).
            Part::Raw(r"(?:(?-u:\b)|\\[tnr])((?:AKIA|ASIA)[A-Z0-9]{16})(?-u:\b)"),
        ],
        min_len: 1,
        confirm: None,
    },
    // Named, or bare: STS tokens start with these base64 prefixes.
    RuleSpec {
        name: "aws-session-token",
        trigger: "session[_-]?token|security[_-]?token|(?-i:IQoJb3JpZ2lu|F[Qw]oGZXIvYXdz)",
        needles: &["token", "iqojb3jpz2lu", "ogzxivyxdz"],
        parts: &[
            Part::KeyValue("session[_-]?token|security[_-]?token"),
            Part::Flag("session-token"),
            Part::Raw(r"(?-u:\b)((?:IQoJb3JpZ2lu|F[Qw]oGZXIvYXdz)[A-Za-z0-9/+]{16,}={0,2})"),
        ],
        min_len: 1,
        confirm: None,
    },
    // Three base64url segments; the header always starts `{"` = `eyJ`.
    RuleSpec {
        name: "jwt",
        trigger: "(?-i:eyJ)",
        needles: &["eyj"],
        parts: &[Part::Raw(
            r"(?-u:\b)(eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)",
        )],
        min_len: 30,
        confirm: None,
    },
    // A bearer token outside an Authorization header, long enough not to be prose.
    RuleSpec {
        name: "bearer-token",
        trigger: "bearer",
        needles: &["bearer"],
        parts: &[Part::Raw(
            r"(?i:(?-u:\b)bearer[ \t]+([A-Za-z0-9._~+-][A-Za-z0-9._~+/-]{15,}=*))",
        )],
        min_len: 1,
        confirm: None,
    },
    // GitHub tokens, e.g. as the user of a git URL (`https://ghp_...@github.com`).
    RuleSpec {
        name: "github-token",
        trigger: "(?-i:gh[pousr]_|github_pat_)",
        needles: &["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"],
        parts: &[Part::Raw(
            r"(?-u:\b)(gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})",
        )],
        min_len: 1,
        confirm: None,
    },
    RuleSpec {
        name: "gcp-api-key",
        trigger: "(?-i:AIza)",
        needles: &["aiza"],
        parts: &[Part::Raw(
            r"(?-u:\b)(AIza[0-9A-Za-z_-]{35})(?:[^0-9A-Za-z_-]|$)",
        )],
        min_len: 1,
        confirm: None,
    },
    // The repository password of Velero's file-system backups (restic, kopia).
    RuleSpec {
        name: "restic-kopia-password",
        trigger: "passw",
        needles: &["passw"],
        parts: &[
            Part::KeyValue(
                "(?:restic|kopia)[_-]?(?:repository[_-]?)?password|repo(?:sitory)?[ _-]?password",
            ),
            Part::Raw(
                r#"(?i:(?-u:\b)(?:restic|kopia)(?-u:\b)[^\r\n]*?[\s"']--password(?:={VALUE}|[ \t]+{VALUE_SP}))"#,
            ),
        ],
        min_len: 1,
        confirm: None,
    },
    // Flags of any command, and the short password options of tools where they clearly are
    // one: `mysql -pX`, `sshpass -p X`, `mongo -p X`, `redis-cli -a X`, `curl -u user:X`.
    RuleSpec {
        name: "password-flag",
        trigger: r"-pass|pwd|secret|token|-key|apikey|(?-u:\b)(?:mysql|mariadb|mongo|sshpass|redis-cli|curl)",
        needles: &[
            "pass",
            "pwd",
            "secret",
            "token",
            "key",
            "mysql",
            "mariadb",
            "mongo",
            "redis-cli",
            "curl",
        ],
        parts: &[
            Part::Flag(SECRET_FLAG_WORDS),
            Part::Raw(
                r#"(?-u:\b)(?:mysql|mysqldump|mysqladmin|mysqlimport|mysqlcheck|mysqlshow|mysqlpump|mysqlsh|mariadb|mariadb-dump)(?-u:\b)(?:[ \t]+[^ \t|;&]+)*?[ \t]+-p(?:{DQ}|'([^'\n]*)'|{ESC}|([^\s"'|;&\\]+))"#,
            ),
            Part::Raw(
                r"(?-u:\b)(?:sshpass|mongo|mongosh|mongodump|mongorestore|mongoexport|mongoimport)(?-u:\b)(?:[ \t]+[^ \t|;&]+)*?[ \t]+-p[ \t]*{VALUE_SP}",
            ),
            Part::Raw(r"(?-u:\b)redis-cli(?-u:\b)(?:[ \t]+[^ \t|;&]+)*?[ \t]+-a[ \t]*{VALUE_SP}"),
            Part::Raw(
                r#"(?-u:\b)curl(?-u:\b)(?:[ \t]+[^ \t|;&]+)*?[ \t]+(?:-u|--user)(?:[ \t]+|=)["']?[^:\s"']*:([^\s"'|;&\\]+)"#,
            ),
        ],
        min_len: 1,
        confirm: None,
    },
    // Environment variables whose names mark secrets: `DB_PASSWORD=x`, `STORAGE_KEY: x`, and
    // env entries printed as JSON, {"name":"GITHUB_TOKEN","value":"..."}.
    RuleSpec {
        name: "env-secret",
        trigger: r"(?-i:PASS|PWD|SECRET|TOKEN|KEY|CREDENTIAL)|passw|pwd|secret|token|credential|[_.-]key",
        needles: &["pass", "pwd", "secret", "token", "key", "credential"],
        parts: &[
            Part::Raw(
                r"(?-i:(?:^|[^A-Za-z0-9_])(?:(?:[A-Z0-9]+_)*(?:PASS|PASSWD|PASSWORD|PASSPHRASE|SECRET|TOKEN|CREDENTIALS?|KEY)|(?:[A-Z0-9]+_)+PWD)(?:_ID|_DATA)?[ \t]*[=:][ \t]*{VALUE})",
            ),
            Part::Raw(
                r#"(?i:\\*"name\\*"[ \t]*:[ \t]*\\*"[^"\\]*(?:passw|pwd|pass(?-u:\b)|secret|token|credential|[_.-]key(?:_id)?(?-u:\b))[^"\\]*\\*"[ \t]*,[ \t]*\\*"value\\*"[ \t]*:[ \t]*(?:{DQ}|{ESC}))"#,
            ),
        ],
        min_len: 1,
        confirm: None,
    },
    // Any other key whose name ends like a secret: `password: x`, `"token":"x"`, `api-key=x`.
    // The key must be followed directly by the separator, so `msg="token refreshed"` and
    // `secretName: x` are kept; it must not follow `/` (URLs are the rule above's).
    RuleSpec {
        name: "secret-named-key-value",
        trigger: r#"passw|passphrase|pwd|secret|token|credential|auth\\*["']?[ \t]*[:=]|(?:private|access|api|account|storage|client|encryption|signing|master|shared|session|sas)[_-]?key"#,
        needles: &[
            "pass",
            "pwd",
            "secret",
            "token",
            "credential",
            "auth",
            "key",
        ],
        parts: &[Part::KeyValue(
            "passw(?:or)?d|passphrase|pwd|secret|token|credentials?|auth|(?:secret|private|access|api|account|storage|client|encryption|signing|master|shared|session|sas)[_-]?key(?:[_-]?id)?",
        )],
        min_len: 1,
        confirm: None,
    },
];

impl Part {
    /// The regex this part stands for.
    pub(super) fn regex(&self) -> String {
        let (template, name) = match self {
            Part::Raw(pattern) => (*pattern, ""),
            // A logrus empty value is `key= `: a space after `=` only counts with one before.
            Part::KeyValue(name) => (
                r#"(?i:(?:^|[^/A-Za-z0-9_.-])[A-Za-z0-9_.-]*?(?:{NAME})(?:\\*["'])?(?:[ \t]*(?:=>|:)[ \t]*|[ \t]+=[ \t]*|=){VALUE})"#,
                *name,
            ),
            Part::Flag(name) => (
                r#"(?i:(?:^|[\s"'\[,(])--?[a-z0-9_.-]*?(?:{NAME})(?:={VALUE}|[ \t]+{VALUE_SP}))"#,
                *name,
            ),
            Part::YamlKey(name) => (
                r"(?im:^[ \t]*(?:-[ \t]+)?(?:{NAME})[ \t]*:[ \t]*{VALUE})",
                *name,
            ),
        };
        template
            .replace("{NAME}", name)
            .replace("{VALUE_SP}", VALUE_AFTER_SPACE)
            .replace("{VALUE}", VALUE)
            .replace("{DQ}", DQ)
            .replace("{ESC}", ESC)
            .replace("{QUOTE}", QUOTE)
            .replace("{SEP}", SEP)
    }
}

/// The precheck: a line that matches no trigger is left alone.
pub(super) fn precheck() -> String {
    let triggers: Vec<String> = RULES.iter().map(|r| format!("(?:{})", r.trigger)).collect();
    format!("(?i){}", triggers.join("|"))
}

/// Whether base64 text (wrapped with escaped line breaks or not) starts a private key's PEM.
pub(super) fn decodes_to_private_key(candidate: &str) -> bool {
    // Without escaped line breaks, however deep the escaping (`\n`, `\\n`).
    let head: String = candidate.chars().take(96).collect();
    let unwrapped: String = head
        .split('\\')
        .enumerate()
        .map(|(i, part)| match i {
            0 => part,
            _ => part.strip_prefix(['r', 'n']).unwrap_or(part),
        })
        .collect();
    // 64 characters hold 48 bytes: enough for the longest BEGIN line.
    let head = &unwrapped[..unwrapped.len().min(64) / 4 * 4];
    base64::engine::general_purpose::STANDARD
        .decode(head)
        .is_ok_and(|bytes| bytes.windows(11).any(|w| w == b"PRIVATE KEY"))
}

/// Words in secret-like names (a name's last word containing one: `dbpassword`).
const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "credential",
    "apikey",
    "privatekey",
    "accesskey",
];
/// Whole words that are secret-like only alone (`bypass` is not `pass`).
const SECRET_EXACT_WORDS: &[&str] = &["pass", "pwd", "auth", "authorization", "cookie"];
/// Words that make a following `key` a secret one (`accessKey`, `client-key-data`); a bare
/// `key` (`secretKeyRef.key`, `kmsKeyId`) names or selects something.
const KEY_QUALIFIERS: &[&str] = &[
    "access",
    "secret",
    "private",
    "api",
    "account",
    "storage",
    "client",
    "encryption",
    "signing",
    "master",
    "shared",
    "session",
    "sas",
    "hmac",
];
/// Trailing words that say how a secret is held, not what it is (`accessKeyId`).
const HOLDER_WORDS: &[&str] = &["id", "data", "value", "b64", "base64"];

/// Whether a key or env var name marks its value secret. Its last word decides (holder words
/// aside), so references to secrets are not secrets: `secretName`, `credentialsSecretRef`,
/// `passwordFile`, `tokenTTL`. In an env-style name (`STORAGE_KEY`) a bare `KEY` counts.
pub(super) fn secret_name(name: &str) -> bool {
    let words = words(name);
    let end = words
        .iter()
        .rposition(|w| !HOLDER_WORDS.contains(&w.as_str()))
        .map_or(0, |i| i + 1);
    let Some(last) = words[..end].last() else {
        return false;
    };
    if SECRET_WORDS.iter().any(|w| last.contains(w)) || SECRET_EXACT_WORDS.contains(&last.as_str())
    {
        return true;
    }
    let env_style = name
        .bytes()
        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    match last.strip_suffix("key") {
        Some("") if env_style => true,
        Some("") => end >= 2 && KEY_QUALIFIERS.contains(&words[end - 2].as_str()),
        Some(qualifier) => KEY_QUALIFIERS.contains(&qualifier),
        None => false,
    }
}

/// Lowercased words of a name, split at non-alphanumerics and camelCase humps (`APIKey` is
/// `api`, `key`).
fn words(name: &str) -> Vec<String> {
    let chars: Vec<char> = name.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_ascii_alphanumeric() {
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            continue;
        }
        let prev = i.checked_sub(1).map(|p| chars[p]);
        let next = chars.get(i + 1);
        let hump = c.is_ascii_uppercase()
            && prev.is_some_and(|p| {
                p.is_ascii_lowercase()
                    || p.is_ascii_digit()
                    || (p.is_ascii_uppercase() && next.is_some_and(char::is_ascii_lowercase))
            });
        if hump && !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
        word.push(c.to_ascii_lowercase());
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_into_words() {
        assert_eq!(words("secretAccessKey"), ["secret", "access", "key"]);
        assert_eq!(
            words("AWS_SECRET_ACCESS_KEY"),
            ["aws", "secret", "access", "key"]
        );
        assert_eq!(words("APIKey"), ["api", "key"]);
        assert_eq!(words("client-key-data"), ["client", "key", "data"]);
        assert_eq!(words("s3Url"), ["s3", "url"]);
    }

    #[test]
    fn secret_names() {
        for name in [
            "password",
            "dbPassword",
            "MYSQL_ROOT_PASSWORD",
            "DB_PASS",
            "MYSQL_PWD",
            "GITHUB_TOKEN",
            "secretAccessKey",
            "accessKeyId",
            "AWS_ACCESS_KEY_ID",
            "STORAGE_KEY",
            "apiKey",
            "X-Api-Key",
            "client-key-data",
            "private_key_id",
            "AZURE_CLIENT_SECRET",
            "GOOGLE_APPLICATION_CREDENTIALS",
            "auth",
            "Authorization",
        ] {
            assert!(secret_name(name), "{name}");
        }
        for name in [
            "secretName",
            "credentialsSecretRef",
            "tokenSecretName",
            "secretKeyRef",
            "key",
            "kmsKeyId",
            "keyPrefix",
            "publicKey",
            "passwordFile",
            "RESTIC_PASSWORD_COMMAND",
            "TOKEN_TTL",
            "SECRET_NAME",
            "bypass",
            "serviceAccountName",
            "id",
            "data",
            "",
        ] {
            assert!(!secret_name(name), "{name}");
        }
    }

    #[test]
    fn base64_pem_is_confirmed_only_for_private_keys() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert!(decodes_to_private_key(&b64(
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"
        )));
        assert!(decodes_to_private_key(&b64(
            "-----BEGIN RSA PRIVATE KEY-----"
        )));
        assert!(!decodes_to_private_key(&b64(
            "-----BEGIN CERTIFICATE-----\nMIIDBTCCAe2gAwIBAgIIQ\n"
        )));
        assert!(!decodes_to_private_key("LS0tLS1CRUdJTi%%%"));
    }
}

#!/usr/bin/env python3
"""Makes s3s-fs accept the temporary keys moto's STS hands out, as S3 accepts those of AWS STS.

s3s-fs knows one key pair (--access-key/--secret-key). The tests of role profiles have the
operator assume a role through moto's STS (AssumeRoleWithWebIdentity, AssumeRole) and then use
the role's keys against this store, so the store must know them. This adds `--sts-keys-url
URL`: a request signed with a key s3s-fs does not know has that key's secret looked up, at
that moment, among the roles moto has handed out (`sts.AssumedRole` of moto's
`/moto-api/data.json`, a plain HTTP GET on loopback). A key moto never issued stays refused
(NotSignedUp), and the signature is still checked with the secret found. The session token is
not checked (s3s's auth is by access key only), nor the expiry.

Edits src/main.rs of the unpacked crate in place; fails when an anchor is not found exactly
once, so a version bump that moves the code is noticed.
"""
import sys
from pathlib import Path

OPTION = '''
    /// moto's `/moto-api/data.json`: keys of roles assumed through moto's STS are accepted.
    #[arg(long)]
    sts_keys_url: Option<String>,
'''

AUTH = r'''
/// The fixed key pair, then the roles moto's STS handed out.
struct StsKeysAuth {
    fixed: SimpleAuth,
    url: String,
}

#[async_trait::async_trait]
impl s3s::auth::S3Auth for StsKeysAuth {
    async fn get_secret_key(&self, access_key: &str) -> s3s::S3Result<s3s::auth::SecretKey> {
        if let Some(secret) = self.fixed.lookup(access_key) {
            return Ok(secret.clone());
        }
        match assumed_role_secret(&self.url, access_key).await {
            Some(secret) => Ok(secret.into()),
            None => Err(s3s::s3_error!(NotSignedUp, "Your account is not signed up")),
        }
    }
}

/// The secret of `access_key` among moto's assumed roles (`http://host:port/path` only).
async fn assumed_role_secret(url: &str, access_key: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (host, path) = url.strip_prefix("http://")?.split_once('/')?;
    let mut stream = tokio::net::TcpStream::connect(host).await.ok()?;
    let request = format!("GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.ok()?;
    let answer = String::from_utf8(answer).ok()?;
    let (_, body) = answer.split_once("\r\n\r\n")?;
    let data: serde_json::Value = serde_json::from_str(body).ok()?;
    data["sts"]["AssumedRole"]
        .as_array()?
        .iter()
        .find(|role| role["access_key_id"] == access_key)?["secret_access_key"]
        .as_str()
        .map(str::to_string)
}
'''

EDITS = [
    # The option, after the secret key's.
    (
        "    #[arg(long)]\n    secret_key: Option<String>,\n",
        "    #[arg(long)]\n    secret_key: Option<String>,\n" + OPTION,
    ),
    # The auth: moto's roles besides the fixed pair when the option is given.
    (
        "            b.set_auth(SimpleAuth::from_single(ak, sk));\n",
        "            match opt.sts_keys_url {\n"
        "                Some(url) => b.set_auth(StsKeysAuth { fixed: SimpleAuth::from_single(ak, sk), url }),\n"
        "                None => b.set_auth(SimpleAuth::from_single(ak, sk)),\n"
        "            }\n",
    ),
    # The types, before setup_tracing.
    ("fn setup_tracing() {\n", AUTH.lstrip("\n") + "\nfn setup_tracing() {\n"),
]


def main() -> None:
    path = Path(sys.argv[1]) / "src" / "main.rs"
    text = path.read_text()
    for anchor, replacement in EDITS:
        count = text.count(anchor)
        if count != 1:
            sys.exit(f"{path}: anchor found {count} times, expected once:\n{anchor}")
        text = text.replace(anchor, replacement)
    path.write_text(text)


if __name__ == "__main__":
    main()

//! Which hosts a BSL may send the operator's credentials to. Whoever may edit a
//! BackupStorageLocation need not be allowed to read its Secret; a BSL whose
//! `storageAccountURI` (Azure) or `storeEndpoint` (GCS) names their own host would otherwise
//! collect what the operator signs with that Secret. So an endpoint must be the provider's own
//! for the account the BSL names, as Velero's plugin derives it, or a host the operator was
//! told to trust (`--trusted-storage-host`: emulators, Azure Stack, private DNS names), over
//! https unless the entry itself says `http://`: a secret or a bearer token never travels in
//! clear text by default. S3 is
//! not checked: SigV4 signs each request for its own method, path and time, so what reaches a
//! foreign host replays nothing else.

use crate::config::TrustedHosts;
use crate::storage::port::ReadError;

/// A BSL's endpoint checked against the hosts that may receive its credential: `url`, set in
/// config `key`, must be https to one of `expected` on port 443, or to a trusted host on the
/// scheme and port its entry names (https and 443 when it names none).
pub(in crate::storage) fn check_endpoint(
    key: &'static str,
    url: &str,
    expected: &[&str],
    trusted: &TrustedHosts,
) -> Result<(), ReadError> {
    let refused = |host: String| ReadError::UntrustedHost {
        key,
        host,
        expected: expected.join(" or "),
    };
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return Err(refused(format!("{url:?} (not a URL)")));
    };
    let Some(host) = parsed.host_str().map(str::to_ascii_lowercase) else {
        return Err(refused(format!("{url:?} (no host)")));
    };
    let port = parsed.port_or_known_default().unwrap_or(0);
    let plain = parsed.username().is_empty() && parsed.password().is_none();
    let own = parsed.scheme() == "https"
        && port == 443
        && expected.iter().any(|e| e.eq_ignore_ascii_case(&host));
    if plain && (own || trusted.contains(parsed.scheme(), &host, port)) {
        Ok(())
    } else {
        Err(refused(format!("{host}:{port}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: &[&str] = &["acct.blob.core.windows.net"];

    fn check(url: &str, trusted: &[&str]) -> Result<(), ReadError> {
        check_endpoint(
            "storageAccountURI",
            url,
            ACCOUNT,
            &TrustedHosts::new(trusted),
        )
    }

    #[test]
    fn the_accounts_own_endpoint_is_allowed() {
        check("https://acct.blob.core.windows.net", &[]).unwrap();
        check("https://ACCT.blob.core.windows.net:443/", &[]).unwrap();
    }

    #[test]
    fn another_host_is_refused_naming_the_key_the_host_and_the_expected_one() {
        let err = check("https://collector.example.com", &[]).unwrap_err();
        assert_eq!(
            err,
            ReadError::UntrustedHost {
                key: "storageAccountURI",
                host: "collector.example.com:443".into(),
                expected: "acct.blob.core.windows.net".into(),
            }
        );
        // Lookalikes: a suffix, another account, plain http, another port, userinfo.
        for url in [
            "https://acct.blob.core.windows.net.example.com",
            "https://other.blob.core.windows.net",
            "http://acct.blob.core.windows.net",
            "https://acct.blob.core.windows.net:8443",
            "https://x@acct.blob.core.windows.net",
            "not a url",
        ] {
            assert!(check(url, &[]).is_err(), "{url} was allowed");
        }
    }

    #[test]
    fn a_trusted_host_is_allowed_on_its_scheme_and_port_https_and_443_when_unsaid() {
        check(
            "https://127.0.0.1:10000/devstoreaccount1",
            &["127.0.0.1:10000"],
        )
        .unwrap();
        check("https://azurite/acct", &["Azurite"]).unwrap();
        assert!(check("https://azurite:10000/acct", &["azurite"]).is_err());
        assert!(check("https://127.0.0.1:10001/acct", &["127.0.0.1:10000"]).is_err());
        assert!(check("https://127.0.0.2:10000/acct", &["127.0.0.1:10000"]).is_err());
        // Never in clear text unless the entry says so: an Entra secret or a bearer token would
        // travel readable to anyone on the path.
        assert!(check("http://127.0.0.1:10000/acct", &["127.0.0.1:10000"]).is_err());
        assert!(check("http://azurite/acct", &["azurite"]).is_err());
        check("http://127.0.0.1:10000/acct", &["http://127.0.0.1:10000"]).unwrap();
        assert!(check("https://127.0.0.1:10000/acct", &["http://127.0.0.1:10000"]).is_err());
        // An entry that is not a host trusts nothing.
        for entry in [
            "127.0.0.1:10000/x",
            "u@127.0.0.1:10000",
            "ftp://127.0.0.1:10000",
        ] {
            assert!(
                check("https://127.0.0.1:10000/acct", &[entry]).is_err(),
                "{entry}"
            );
        }
    }
}

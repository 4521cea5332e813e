//! The values of a BSL or of a credential file that become part of a host or a URL, checked
//! against what their provider allows before anything is sent. Whoever may edit a BSL need not
//! be allowed to read its Secret: `storageAccount: "evil.example/"` would otherwise make the
//! blob address `https://evil.example/.blob.core.windows.net`, and a key file's
//! `universe_domain` would choose the hosts a token goes to. A refused value ends the bundle
//! `UnsupportedStorageLocation` naming the key and the value (credentials.rs).

use crate::config::TrustedHosts;
use crate::storage::{port::ReadError, transport::http::printable};

/// Google's universe: every Google host a credential goes to is a name below it.
pub(super) const GOOGLE_UNIVERSE: &str = "googleapis.com";

/// How much of a refused value a message shows: enough to recognise, never a whole blob.
const SHOWN: usize = 80;

fn refused(key: &str, value: &str, allowed: &'static str) -> ReadError {
    ReadError::Refused {
        key: key.to_string(),
        value: printable(value, SHOWN),
        allowed,
    }
}

/// Ok when `fits`, else `value` of `key` refused as not `allowed`.
fn allowed_if(fits: bool, key: &str, value: &str, allowed: &'static str) -> Result<(), ReadError> {
    if fits {
        Ok(())
    } else {
        Err(refused(key, value, allowed))
    }
}

/// An Azure storage account name: 3 to 24 lowercase letters and digits (Azure's own rule; it
/// becomes the first label of `<account>.blob.core.windows.net`).
pub(super) fn azure_account(key: &str, value: &str) -> Result<(), ReadError> {
    let fits = (3..=24).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    allowed_if(
        fits,
        key,
        value,
        "an Azure storage account name (3 to 24 lowercase letters and digits)",
    )
}

/// An Azure subscription id: a GUID (8-4-4-4-12 hexadecimal digits).
pub(super) fn azure_subscription(key: &str, value: &str) -> Result<(), ReadError> {
    let groups: Vec<&str> = value.split('-').collect();
    let lengths = [8, 4, 4, 4, 12];
    let fits = groups.len() == lengths.len()
        && groups
            .iter()
            .zip(lengths)
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()));
    allowed_if(
        fits,
        key,
        value,
        "an Azure subscription id (a GUID such as 00000000-0000-0000-0000-000000000000)",
    )
}

/// An Azure resource group: 1 to 90 letters, digits, `-`, `_`, `.`, `(` or `)`, not ending in
/// `.` (Azure's rule, ASCII only here); so never `..` or a `/` in a Resource Manager path.
pub(super) fn azure_resource_group(key: &str, value: &str) -> Result<(), ReadError> {
    let fits = (1..=90).contains(&value.len())
        && !value.ends_with('.')
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.()".contains(&b));
    allowed_if(
        fits,
        key,
        value,
        "an Azure resource group name (1 to 90 letters, digits, '-', '_', '.', '(' or ')', not ending in '.')",
    )
}

/// The Google universe a credential may be used in: `googleapis.com` when none is named, or a
/// universe the operator is told to trust by that name (`--trusted-storage-host`), since its
/// `sts.`, `iamcredentials.` and `storage.` hosts then receive tokens. The name must be a DNS
/// name either way.
pub(super) fn gcs_universe(
    key: &str,
    value: Option<&str>,
    trusted: &TrustedHosts,
) -> Result<String, ReadError> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Ok(GOOGLE_UNIVERSE.to_string());
    };
    let universe = value.to_ascii_lowercase();
    let allowed = "googleapis.com, or a universe listed in storage.trustedHosts";
    if !is_dns_name(&universe) {
        return Err(refused(key, value, allowed));
    }
    if universe == GOOGLE_UNIVERSE || trusted.contains("https", &universe, 443) {
        Ok(universe)
    } else {
        Err(refused(key, value, allowed))
    }
}

/// Letters, digits and `-` in dot-separated labels of 1 to 63, two labels at least: no port,
/// path, user or address can hide in it.
fn is_dns_name(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').count() >= 2
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// An `aws1` source's `regional_cred_verification_url`: the AWS STS GetCallerIdentity URL
/// that Google's STS is asked to call with the signed request. It must be https on AWS's STS
/// (`sts.amazonaws.com`, `sts.<region>.amazonaws.com` or its `.com.cn`), the `{region}` of
/// gcloud's template allowed.
pub(super) fn aws_verification_url(key: &str, value: &str) -> Result<(), ReadError> {
    let allowed = "https on AWS STS (https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15)";
    let filled = value.replace("{region}", "us-east-1");
    let Ok(url) = reqwest::Url::parse(&filled) else {
        return Err(refused(key, value, allowed));
    };
    let host = url.host_str().unwrap_or_default();
    let on_sts = host == "sts.amazonaws.com"
        || host
            .strip_prefix("sts.")
            .and_then(|rest| {
                rest.strip_suffix(".amazonaws.com")
                    .or_else(|| rest.strip_suffix(".amazonaws.com.cn"))
            })
            .is_some_and(|region| {
                !region.is_empty()
                    && region
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            });
    let clean = url.scheme() == "https"
        && url.port().is_none()
        && url.username().is_empty()
        && url.password().is_none();
    allowed_if(on_sts && clean, key, value, allowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_refused(result: Result<(), ReadError>) -> bool {
        matches!(result, Err(ReadError::Refused { .. }))
    }

    #[test]
    fn azure_account_names_are_lowercase_letters_and_digits_of_3_to_24() {
        for good in [
            "vdoaccount",
            "devstoreaccount1",
            "abc",
            "a23456789012345678901234",
        ] {
            azure_account("config.storageAccount", good).unwrap();
        }
        for bad in [
            "evil.example/",
            "127.0.0.1:8080/x",
            "ab",
            "a234567890123456789012345",
            "Account",
            "acct@evil",
            "acct#",
            "",
            "acct\u{0}",
        ] {
            assert!(
                is_refused(azure_account("config.storageAccount", bad)),
                "{bad:?} was allowed"
            );
        }
    }

    #[test]
    fn a_refusal_names_the_key_and_a_printable_cut_value() {
        let long = format!("evil.example/{}", "x".repeat(500));
        let Err(ReadError::Refused {
            key,
            value,
            allowed,
        }) = azure_account("config.storageAccount", &long)
        else {
            panic!("allowed");
        };
        assert_eq!(key, "config.storageAccount");
        assert!(value.starts_with("evil.example/") && value.chars().count() <= SHOWN + 1);
        assert!(allowed.contains("3 to 24"));
    }

    #[test]
    fn subscriptions_are_guids_and_resource_groups_azure_names() {
        azure_subscription("s", "0f3c2a1b-1234-4abc-9def-0123456789ab").unwrap();
        for bad in [
            "0f3c2a1b-1234-4abc-9def-0123456789a",
            "../../providers",
            "0f3c2a1b12344abc9def0123456789ab",
            "0f3c2a1b-1234-4abc-9def-0123456789ag",
        ] {
            assert!(is_refused(azure_subscription("s", bad)), "{bad:?}");
        }
        for good in ["velero", "rg_1.(prod)-x", "a"] {
            azure_resource_group("g", good).unwrap();
        }
        for bad in ["..", "rg.", "rg/x", "", "r g", &"r".repeat(91)] {
            assert!(is_refused(azure_resource_group("g", bad)), "{bad:?}");
        }
    }

    #[test]
    fn a_google_universe_is_googleapis_or_trusted_by_name() {
        let none = TrustedHosts::default();
        assert_eq!(gcs_universe("u", None, &none).unwrap(), GOOGLE_UNIVERSE);
        assert_eq!(gcs_universe("u", Some(""), &none).unwrap(), GOOGLE_UNIVERSE);
        assert_eq!(
            gcs_universe("u", Some("GoogleApis.com"), &none).unwrap(),
            GOOGLE_UNIVERSE
        );
        for foreign in [
            "evil.example",
            "googleapis.com.evil.example",
            "127.0.0.1:9000",
        ] {
            assert!(
                gcs_universe("universe_domain", Some(foreign), &none).is_err(),
                "{foreign}"
            );
        }
        let trusted = TrustedHosts::new(["sovereign.example"]);
        assert_eq!(
            gcs_universe("u", Some("sovereign.example"), &trusted).unwrap(),
            "sovereign.example"
        );
        // Trusted or not, a value that is no DNS name never becomes part of a host.
        let odd = TrustedHosts::new(["evil.example/x"]);
        assert!(gcs_universe("u", Some("evil.example/x"), &odd).is_err());
        assert!(gcs_universe("u", Some("a@b.example"), &odd).is_err());
    }

    #[test]
    fn an_aws_verification_url_is_aws_sts_over_https() {
        for good in [
            "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15",
            "https://sts.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15",
            "https://sts.cn-north-1.amazonaws.com.cn?Action=GetCallerIdentity",
        ] {
            aws_verification_url("k", good).unwrap();
        }
        for bad in [
            "http://sts.{region}.amazonaws.com?Action=GetCallerIdentity",
            "https://sts.evil.example?Action=GetCallerIdentity",
            "https://sts.us-east-1.amazonaws.com.evil.example/",
            "https://sts.us-east-1.amazonaws.com:8443/",
            "https://x@sts.amazonaws.com/",
            "https://evil.example/sts.amazonaws.com",
            "not a url",
        ] {
            assert!(is_refused(aws_verification_url("k", bad)), "{bad:?}");
        }
    }
}

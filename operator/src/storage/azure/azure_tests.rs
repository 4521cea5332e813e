use super::*;
use crate::config::TrustedHosts;
use crate::storage::location::Provider;
use crate::storage::{
    azure::credentials::{account_of_uri, dotenv},
    port::ReadError,
};

const KEY_B64: &str = "dGhpcyBpcyBub3QgYSByZWFsIGtleSBmb3IgYXp1cmU=";

fn location(config: &[(&str, &str)]) -> StorageLocation {
    StorageLocation {
        name: "azure".into(),
        provider: Provider::Azure,
        bucket: "velero".into(),
        config: config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    }
}

/// Read as the environment's operator is told: Azurite's host trusted.
fn read(config: &[(&str, &str)], text: Option<&str>) -> Result<AzureCredentials, ReadError> {
    let trusted = TrustedHosts::new(["127.0.0.1:10000"]);
    AzureCredentials::read(&location(config), text, &trusted)
}

#[test]
fn a_uri_on_a_host_not_the_accounts_own_is_refused_naming_the_key() {
    let text = format!("AZURE_STORAGE_ACCOUNT_ACCESS_KEY={KEY_B64}");
    let refused = |config: &[(&str, &str)]| match read(config, Some(&text)) {
        Err(ReadError::UntrustedHost {
            key,
            host,
            expected,
        }) => (key, host, expected),
        other => panic!("{config:?}: {other:?}"),
    };
    let named = [
        ("storageAccount", "acct"),
        ("storageAccountURI", "https://collector.example.com/"),
    ];
    assert_eq!(
        refused(&named),
        (
            "storageAccountURI",
            "collector.example.com:443".to_string(),
            "acct.blob.core.windows.net".to_string()
        )
    );
    // The account taken from the path of a foreign host is no better.
    let (_, host, _) = refused(&[("storageAccountURI", "https://collector.example.com/acct")]);
    assert_eq!(host, "collector.example.com:443");
    // Another account's endpoint is not this one's.
    refused(&[
        ("storageAccount", "acct"),
        ("storageAccountURI", "https://other.blob.core.windows.net"),
    ]);
    // The account's own endpoint, spelled out, is fine.
    read(
        &[
            ("storageAccount", "acct"),
            ("storageAccountURI", "https://acct.blob.core.windows.net/"),
        ],
        Some(&text),
    )
    .unwrap();
}

#[test]
fn the_key_is_read_from_the_variable_the_location_names() {
    let text = format!(
        "# Velero's Azure credential file\nAZURE_SUBSCRIPTION_ID=s\nexport MY_KEY=\"{KEY_B64}\"\nAZURE_CLOUD_NAME=AzureChinaCloud\n"
    );
    let creds = read(
        &[
            ("storageAccount", "acct"),
            ("storageAccountKeyEnvVar", "MY_KEY"),
        ],
        Some(&text),
    )
    .unwrap();
    assert_eq!(creds.account, "acct");
    assert!(
        matches!(&creds.auth, AzureAuth::Key(k) if k == b"this is not a real key for azure"),
        "{creds:?}"
    );
    assert_eq!(creds.account_url, "https://acct.blob.core.chinacloudapi.cn");
    assert!(
        !format!("{creds:?}").contains("key: ["),
        "Debug shows no key"
    );

    // The default variable, and an emulator's URI (account in the path).
    let creds = read(
        &[("storageAccountURI", "https://127.0.0.1:10000/devacct/")],
        Some(&format!("AZURE_STORAGE_ACCOUNT_ACCESS_KEY={KEY_B64}")),
    )
    .unwrap();
    assert_eq!(
        (creds.account.as_str(), creds.account_url.as_str()),
        ("devacct", "https://127.0.0.1:10000/devacct")
    );
    // The same emulator in clear text is trusted only by an entry that says `http://`.
    let plain = [("storageAccountURI", "http://127.0.0.1:10000/devacct/")];
    let key = format!("AZURE_STORAGE_ACCOUNT_ACCESS_KEY={KEY_B64}");
    assert!(read(&plain, Some(&key)).is_err());
    AzureCredentials::read(
        &location(&plain),
        Some(&key),
        &TrustedHosts::new(["http://127.0.0.1:10000"]),
    )
    .unwrap();
}

/// `storageAccount` becomes the first label of the account's host: a value that is not an
/// account name would move the host (`evil.example/` makes
/// `https://evil.example/.blob.core.windows.net`), with useAAD a bearer token's destination.
#[test]
fn an_account_name_that_is_not_azures_is_refused_naming_the_key_and_value() {
    let entra = "AZURE_TENANT_ID=t\nAZURE_CLIENT_ID=c\nAZURE_CLIENT_SECRET=s\n";
    for account in [
        "evil.example/",
        "127.0.0.1:9000/x",
        "Acct",
        "a.b",
        "x",
        "acct?sv=1",
    ] {
        let config = [("storageAccount", account), ("useAAD", "true")];
        match read(&config, Some(entra)) {
            Err(ReadError::Refused { key, value, .. }) => {
                assert_eq!(key, "config.storageAccount");
                assert_eq!(value, account);
            }
            other => panic!("{account:?}: {other:?}"),
        }
    }
    // An account read from a trusted URI's path is held to the same rule.
    match read(
        &[("storageAccountURI", "https://127.0.0.1:10000/Evil.Acct/")],
        Some(&format!("AZURE_STORAGE_ACCOUNT_ACCESS_KEY={KEY_B64}")),
    ) {
        Err(ReadError::Refused { key, .. }) => {
            assert_eq!(key, "the account of config.storageAccountURI")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn use_aad_reads_an_entra_identity_as_velero_does() {
    let aad = [("storageAccount", "acct"), ("useAAD", "true")];
    let summary = |text: Option<&str>| match read(&aad, text).unwrap().auth {
        AzureAuth::Entra(identity) => identity.summary.clone(),
        other => panic!("not Entra ID: {}", matches!(other, AzureAuth::Key(_))),
    };
    let sp = "AZURE_CLIENT_ID=c\nAZURE_CLIENT_SECRET=s\nAZURE_TENANT_ID=t\nAZURE_STORAGE_ACCOUNT_ACCESS_KEY=eA==";
    assert!(
        summary(Some(sp)).contains("service principal c"),
        "useAAD wins over a key"
    );
    assert!(summary(None).contains("managed identity"));
    assert!(summary(Some("AZURE_CLIENT_ID=u1")).contains("managed identity u1"));
    let gov = "AZURE_CLOUD_NAME=AzureUSGovernment\nAZURE_CLIENT_ID=c\nAZURE_CLIENT_SECRET=s\nAZURE_TENANT_ID=t";
    let creds = read(&aad, Some(gov)).unwrap();
    assert_eq!(
        creds.account_url,
        "https://acct.blob.core.usgovcloudapi.net"
    );
    assert!(
        format!("{creds:?}").contains("login.microsoftonline.us"),
        "{creds:?}"
    );
    assert!(!format!("{creds:?}").contains("AZURE_CLIENT_SECRET=s"));
}

#[tokio::test]
async fn without_a_key_or_use_aad_the_key_is_listed_through_resource_manager_as_velero_does() {
    let acct = [
        ("storageAccount", "acct"),
        ("resourceGroup", "rg"),
        ("subscriptionId", "6e8e6f5a-0000-4000-8000-00000000005b"),
    ];
    let entra = "AZURE_CLIENT_ID=c\nAZURE_CLIENT_SECRET=s\nAZURE_TENANT_ID=t\n";
    for text in [Some(entra), None, Some("AZURE_CLIENT_ID=u1")] {
        let creds = read(&acct, text).unwrap();
        assert!(
            matches!(creds.auth, AzureAuth::Exchange(_)),
            "{text:?}: {creds:?}"
        );
    }
    // The variable config.storageAccountKeyEnvVar names wins over useAAD, as in Velero.
    let keyed = [
        ("storageAccount", "acct"),
        ("storageAccountKeyEnvVar", "K"),
        ("useAAD", "true"),
    ];
    let creds = read(&keyed, Some(&format!("K={KEY_B64}\n{entra}"))).unwrap();
    assert!(matches!(creds.auth, AzureAuth::Key(_)), "{creds:?}");
}

#[tokio::test]
async fn credentials_the_operator_cannot_use_name_what_to_set() {
    let unusable = |config: &[(&str, &str)], text: Option<&str>| match read(config, text) {
        Err(ReadError::Unusable(why)) => why,
        other => panic!("{:?}", other.map(|_| ())),
    };
    let acct = [("storageAccount", "acct")];
    let entra = "AZURE_CLIENT_ID=c\nAZURE_CLIENT_SECRET=s\nAZURE_TENANT_ID=t\n";
    let said = unusable(
        &[("storageAccount", "acct"), ("storageAccountKeyEnvVar", "K")],
        Some(entra),
    );
    assert!(
        said.contains("it has no K") && said.contains("remove config.storageAccountKeyEnvVar"),
        "{said}"
    );
    // Listing the key needs the subscription and the resource group.
    let said = unusable(&acct, Some(entra));
    assert!(
        said.contains("Resource Manager") && said.contains("subscriptionId"),
        "{said}"
    );
    assert!(unusable(&acct, None).contains("subscriptionId"));
    assert!(
        unusable(&acct, Some("AZURE_STORAGE_ACCOUNT_ACCESS_KEY=not base64!"))
            .contains("not a base64")
    );
    let cloud = format!("AZURE_STORAGE_ACCOUNT_ACCESS_KEY={KEY_B64}\nAZURE_CLOUD_NAME=Mars");
    assert!(unusable(&acct, Some(&cloud)).contains("AZURE_CLOUD_NAME"));
}

#[test]
fn an_account_is_found_in_its_uri() {
    assert_eq!(
        account_of_uri("https://acct.blob.core.windows.net").as_deref(),
        Some("acct")
    );
    assert_eq!(
        account_of_uri("http://127.0.0.1:10000/devacct").as_deref(),
        Some("devacct")
    );
    assert_eq!(account_of_uri("no scheme"), None);
}

#[test]
fn each_request_is_signed_for_its_blob_and_its_one_permission_alone() {
    let config = [("storageAccount", "acct"), ("storageAccountKeyEnvVar", "K")];
    let creds = read(&config, Some(&format!("K={KEY_B64}"))).unwrap();
    let store = AzureStore::connect(&location(&config), &creds);
    let query = |url: &str| -> HashMap<String, String> {
        let q = url.split_once('?').unwrap().1;
        q.split('&')
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let delete = store.blob_url("b1/archive.tar.gz", "", Permission::Delete);
    assert!(delete.starts_with("https://acct.blob.core.windows.net/velero/b1/archive.tar.gz?"));
    let q = query(&delete);
    assert_eq!((q["sr"].as_str(), q["sp"].as_str()), ("b", "d"));
    let list = query(&store.container_url("restype=container&comp=list"));
    assert_eq!((list["sr"].as_str(), list["sp"].as_str()), ("c", "l"));
    // Valid minutes, not an hour.
    let expiry: jiff::Timestamp = q["se"].replace("%3A", ":").parse().unwrap();
    let left = expiry.duration_since(jiff::Timestamp::now());
    assert!(
        left <= jiff::SignedDuration::from_mins(REQUEST_SAS_MINUTES),
        "{left:?}"
    );
    // A blob's SAS is not the container's: another blob's signature differs.
    let other = query(&store.blob_url("b2/archive.tar.gz", "", Permission::Delete));
    assert_ne!(q["sig"], other["sig"]);
}

#[tokio::test]
async fn a_certificate_may_span_lines_in_the_dotenv_secret_as_godotenv_reads_it() {
    let pem = include_str!("../../../testdata/unit-test-azure-client.pem").trim();
    let aad = [("storageAccount", "acct"), ("useAAD", "true")];
    let spanning = format!(
        "AZURE_TENANT_ID=t\nAZURE_CLIENT_ID=c\nAZURE_CLIENT_CERTIFICATE=\"{pem}\"\nAZURE_CLOUD_NAME=AzurePublicCloud\n"
    );
    let escaped = format!(
        "AZURE_TENANT_ID=t\nAZURE_CLIENT_ID=c\nAZURE_CLIENT_CERTIFICATE=\"{}\"\n",
        pem.replace('\n', "\\n")
    );
    for text in [spanning, escaped] {
        let vars = dotenv(&text);
        assert_eq!(vars["AZURE_CLIENT_CERTIFICATE"], pem);
        let creds = read(&aad, Some(&text)).unwrap();
        assert!(format!("{creds:?}").contains("certificate"), "{creds:?}");
    }
    // An unclosed quote takes the rest, and fails as no certificate.
    let vars = dotenv("A=\"open\nB=1\n");
    assert_eq!(vars["A"], "\"open\nB=1");
}

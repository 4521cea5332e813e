//! Forward proxies, read from the environment once, the way every client of this process reads
//! them: `HTTPS_PROXY` for https destinations, `HTTP_PROXY` for http ones (`ALL_PROXY` for
//! both; lower-case names too), `NO_PROXY` naming what is reached directly (a domain and its
//! subdomains, an IP address, a CIDR, or `*`).
//!
//! The clients and where each takes this reading:
//! - the Kubernetes client: [`api_server_proxy`] sets kube's `proxy_url` (kube itself reads
//!   `HTTPS_PROXY` only when it loads a kubeconfig, never in a pod, and matches `NO_PROXY`
//!   against the proxy rather than the API server);
//! - the S3 client: the AWS SDK's `ProxyConfig::from_env` (storage/transport/tls.rs);
//! - the Azure and GCS clients: reqwest's proxy from the environment (storage/transport/http.rs).
//!
//! All three match with hyper-util's matcher (curl's rules), so they agree on every
//! destination. Unlike Go's clients, a loopback destination goes through the proxy unless
//! `NO_PROXY` names it; the chart's `proxy` value names localhost and 127.0.0.1.

use http::Uri;
use hyper_util::client::proxy::matcher::{Intercept, Matcher};

/// How a destination is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    Direct,
    /// Through this proxy (scheme, host and port: never its credentials).
    Proxy(String),
}

impl Route {
    /// The route through `proxy`, named without its credentials.
    pub(crate) fn through(proxy: &Uri) -> Self {
        Route::Proxy(without_credentials(proxy))
    }

    /// " through the proxy http://proxy:3128", or nothing for a direct route: appended to
    /// what could not be reached, so the message says where the connection went.
    pub(crate) fn phrase(&self) -> String {
        match self {
            Route::Direct => String::new(),
            Route::Proxy(proxy) => format!(" through the proxy {proxy}"),
        }
    }
}

/// The environment's proxy settings.
pub(crate) struct Proxies(Matcher);

impl Proxies {
    pub(crate) fn from_env() -> Self {
        Self(Matcher::from_env())
    }

    /// Settings given as values (tests).
    #[cfg(test)]
    fn of(http: &str, https: &str, no: &str) -> Self {
        Self(Matcher::builder().http(http).https(https).no(no).build())
    }

    /// The route to `url` (an unparsable one: direct, as the clients would not proxy it).
    pub(crate) fn route(&self, url: &str) -> Route {
        let Ok(uri) = url.parse::<Uri>() else {
            return Route::Direct;
        };
        match self.0.intercept(&uri) {
            None => Route::Direct,
            Some(intercept) => Route::through(intercept.uri()),
        }
    }
}

/// `scheme://host:port` of a proxy; a user and password in its URL stay out of messages.
fn without_credentials(uri: &Uri) -> String {
    let host = uri.host().unwrap_or_default();
    let scheme = uri.scheme_str().unwrap_or("http");
    match uri.port_u16() {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    }
}

/// The proxy kube's client should use for `cluster_url`. A kubeconfig's own `proxy-url`
/// (`from_kubeconfig`, when it is not the environment's `HTTPS_PROXY` kube copied in) wins, as
/// in kubectl; otherwise the environment decides, `NO_PROXY` included.
pub(crate) fn api_server_proxy(
    proxies: &Proxies,
    cluster_url: &Uri,
    from_kubeconfig: Option<&Uri>,
    env_https_proxy: Option<&str>,
) -> Option<Uri> {
    if let Some(own) = from_kubeconfig
        && env_https_proxy.is_none_or(|env| env.parse::<Uri>().ok().as_ref() != Some(own))
    {
        return Some(own.clone());
    }
    proxies
        .0
        .intercept(cluster_url)
        .map(|i| with_credentials(&i))
}

/// The intercept's proxy URL with its user and password back in it. hyper-util keeps them
/// apart (as the Proxy-Authorization value it would send) and `uri()` drops them, while kube
/// sends credentials only from its `proxy_url`'s userinfo: without this, an authenticating
/// proxy answers 407.
fn with_credentials(intercept: &Intercept) -> Uri {
    use base64::Engine;
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    let uri = intercept.uri();
    let basic = intercept
        .basic_auth()
        .and_then(|v| v.to_str().ok()?.strip_prefix("Basic ").map(str::to_string))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|raw| String::from_utf8(raw).ok());
    let (user, password) = match (&basic, intercept.raw_auth()) {
        (Some(pair), _) => pair.split_once(':').unwrap_or((pair.as_str(), "")),
        (None, Some(raw)) => raw,
        (None, None) => return uri.clone(),
    };
    let encoded = |s: &str| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
    let Some(authority) = uri.authority() else {
        return uri.clone();
    };
    Uri::builder()
        .scheme(uri.scheme_str().unwrap_or("http"))
        .authority(format!(
            "{}:{}@{}",
            encoded(user),
            encoded(password),
            authority.as_str()
        ))
        .path_and_query("/")
        .build()
        .unwrap_or_else(|_| uri.clone())
}

/// `HTTPS_PROXY` or `https_proxy`, as kube reads it (non-empty).
pub(crate) fn env_https_proxy() -> Option<String> {
    ["HTTPS_PROXY", "https_proxy"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .find(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROXY: &str = "http://user:secret@proxy.corp:3128";

    #[test]
    fn a_destination_goes_through_the_proxy_of_its_scheme_unless_no_proxy_names_it() {
        let p = Proxies::of(
            PROXY,
            "http://tls-proxy.corp:8443",
            "localhost,.svc,10.0.0.0/8",
        );
        let http = Route::Proxy("http://proxy.corp:3128".into());
        let https = Route::Proxy("http://tls-proxy.corp:8443".into());
        assert_eq!(p.route("http://127.0.0.1:9000/bucket"), http);
        assert_eq!(p.route("https://s3.eu-west-1.amazonaws.com"), https);
        assert_eq!(p.route("https://localhost:6443"), Route::Direct);
        assert_eq!(p.route("http://minio.backup.svc:9000"), Route::Direct);
        assert_eq!(p.route("https://10.96.0.1:443"), Route::Direct);
        assert_eq!(p.route("https://11.0.0.1"), https);
        assert_eq!(p.route("not a url"), Route::Direct);
    }

    #[test]
    fn the_api_server_s_proxy_keeps_its_credentials() {
        let p = Proxies::of("", "http://us%40er:p%3Ass@proxy.corp:3128", "");
        let cluster: Uri = "https://10.96.0.1:443".parse().unwrap();
        let proxy = api_server_proxy(&p, &cluster, None, None).unwrap();
        assert_eq!(proxy.to_string(), "http://us%40er:p%3Ass@proxy.corp:3128/");
        // Named without them.
        assert_eq!(
            Route::through(&proxy).phrase(),
            " through the proxy http://proxy.corp:3128"
        );
        let plain = Proxies::of("", "http://proxy.corp:3128", "");
        let proxy = api_server_proxy(&plain, &cluster, None, None).unwrap();
        assert_eq!(proxy.to_string(), "http://proxy.corp:3128/");
    }

    #[test]
    fn no_proxy_star_and_no_settings_mean_direct() {
        assert_eq!(
            Proxies::of(PROXY, PROXY, "*").route("https://a.b"),
            Route::Direct
        );
        assert_eq!(Proxies::of("", "", "").route("https://a.b"), Route::Direct);
    }

    #[test]
    fn the_phrase_names_the_proxy_without_its_credentials() {
        let p = Proxies::of(PROXY, PROXY, "");
        let phrase = p.route("https://blob.example").phrase();
        assert_eq!(phrase, " through the proxy http://proxy.corp:3128");
        assert!(!phrase.contains("secret"));
        assert_eq!(Route::Direct.phrase(), "");
    }

    #[test]
    fn the_api_server_is_proxied_as_the_environment_says_unless_the_kubeconfig_names_a_proxy() {
        let api: Uri = "https://10.96.0.1:443".parse().unwrap();
        let env = Proxies::of("", "http://proxy.corp:3128", "");
        let direct = Proxies::of("", "http://proxy.corp:3128", "10.96.0.1");
        let via = |p: &Proxies, own: Option<&str>, env_var: Option<&str>| {
            let own = own.map(|o| o.parse::<Uri>().unwrap());
            api_server_proxy(p, &api, own.as_ref(), env_var).map(|u| u.to_string())
        };
        let https_proxy = Some("http://proxy.corp:3128");
        assert_eq!(
            via(&env, None, https_proxy).as_deref(),
            Some("http://proxy.corp:3128/")
        );
        assert_eq!(via(&direct, None, https_proxy), None);
        // kube copied HTTPS_PROXY in: NO_PROXY decides.
        assert_eq!(
            via(&direct, Some("http://proxy.corp:3128"), https_proxy),
            None
        );
        // The kubeconfig's own proxy-url wins.
        assert_eq!(
            via(&direct, Some("http://kube-proxy.corp:8080"), https_proxy).as_deref(),
            Some("http://kube-proxy.corp:8080/")
        );
        assert_eq!(via(&Proxies::of("", "", ""), None, None), None);
    }
}

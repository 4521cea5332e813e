//! Who `serve` answers: requests for its own address (Host `127.0.0.1:PORT` or
//! `localhost:PORT`) that carry the random token of the kubeconfig it wrote. A web page the user
//! visits can reach a loopback port, under its own host name through DNS rebinding; it has
//! neither. The kubeconfig's server URL ends in the token (`http://127.0.0.1:PORT/<token>`),
//! because client-go sends no bearer token to a plain-http server; an `Authorization: Bearer`
//! header with it is taken too (curl). Velero's CLI fetches a DownloadRequest's URL with neither,
//! so those URLs carry a key of their own, as a presigned URL does.

use std::collections::HashMap;

use axum::{
    http::{HeaderMap, StatusCode, header},
    response::Response,
};

use super::responses;

pub(crate) struct Access {
    /// The Host values answered.
    hosts: [String; 2],
    /// The kubeconfig's bearer token.
    pub token: String,
    /// The key in every DownloadRequest's URL.
    download_key: String,
}

impl Access {
    /// Fresh secrets for a server on 127.0.0.1:`port`.
    pub(crate) fn new(port: u16) -> std::io::Result<Access> {
        Ok(Access {
            hosts: [format!("127.0.0.1:{port}"), format!("localhost:{port}")],
            token: secret()?,
            download_key: secret()?,
        })
    }

    /// The URL of a DownloadRequest's file on `base`.
    pub(crate) fn download_url(&self, base: &str, namespace: &str, name: &str) -> String {
        format!(
            "{base}/downloads/{namespace}/{name}?key={}",
            self.download_key
        )
    }

    /// The server URL the kubeconfig names: `base` with the token as its path.
    pub(crate) fn server_url(&self, base: &str) -> String {
        format!("{base}/{}", self.token)
    }

    /// The request's path with the token taken off, or the refusal to send: 421 for another
    /// host, 401 without the token (for a download URL, without its key).
    pub(crate) fn admit<'p>(
        &self,
        headers: &HeaderMap,
        path: &'p str,
        query: &HashMap<String, String>,
    ) -> Result<&'p str, Box<Response>> {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        if !self.hosts.iter().any(|h| h == host) {
            return Err(Box::new(responses::status(
                StatusCode::MISDIRECTED_REQUEST,
                "MisdirectedRequest",
                &format!("this server answers for {} only", self.hosts[0]),
            )));
        }
        if let Some(rest) = path
            .strip_prefix('/')
            .and_then(|p| p.strip_prefix(self.token.as_str()))
            .filter(|rest| rest.is_empty() || rest.starts_with('/'))
        {
            return Ok(if rest.is_empty() { "/" } else { rest });
        }
        let bearer_ok = bearer(headers).is_some_and(|t| same(t.as_bytes(), self.token.as_bytes()));
        let key_ok = path.starts_with("/downloads/")
            && query
                .get("key")
                .is_some_and(|k| same(k.as_bytes(), self.download_key.as_bytes()));
        if bearer_ok || key_ok {
            return Ok(path);
        }
        Err(Box::new(responses::status(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Unauthorized: use the kubeconfig this server printed",
        )))
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

/// Equal, in a time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// 32 random bytes from the operating system, hex.
fn secret() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(host: &str, token: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, host.parse().unwrap());
        if let Some(t) = token {
            h.insert(
                header::AUTHORIZATION,
                format!("Bearer {t}").parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn only_this_server_s_host_with_its_token_is_answered() {
        let access = Access::new(8080).unwrap();
        let none = HashMap::new();
        let token = access.token.clone();
        let ours = format!("/{token}/api/v1/pods");
        let admit = |h: HeaderMap, path: &str| {
            access
                .admit(&h, path, &none)
                .map(str::to_string)
                .map_err(|r| r.status().as_u16())
        };
        assert_eq!(
            admit(headers("127.0.0.1:8080", None), &ours),
            Ok("/api/v1/pods".into())
        );
        assert_eq!(
            admit(headers("localhost:8080", None), &format!("/{token}")),
            Ok("/".into())
        );
        let bearer = Some(token.as_str());
        assert_eq!(
            admit(headers("127.0.0.1:8080", bearer), "/api"),
            Ok("/api".into())
        );
        assert_eq!(admit(headers("evil.example:8080", None), &ours), Err(421));
        assert_eq!(admit(headers("127.0.0.1:8081", bearer), "/api"), Err(421));
        assert_eq!(admit(headers("127.0.0.1:8080", None), "/api"), Err(401));
        assert_eq!(
            admit(headers("127.0.0.1:8080", Some("wrong")), "/api"),
            Err(401)
        );
        let longer = format!("/{token}x/api");
        assert_eq!(admit(headers("127.0.0.1:8080", None), &longer), Err(401));
    }

    #[test]
    fn a_download_url_opens_with_its_key_alone() {
        let access = Access::new(8080).unwrap();
        let url = access.download_url("http://127.0.0.1:8080", "velero", "dl-1");
        let (path, key) = url
            .strip_prefix("http://127.0.0.1:8080")
            .unwrap()
            .split_once("?key=")
            .unwrap();
        let with = HashMap::from([("key".to_string(), key.to_string())]);
        let h = headers("127.0.0.1:8080", None);
        assert_eq!(access.admit(&h, path, &with).ok(), Some(path));
        assert!(access.admit(&h, path, &HashMap::new()).is_err());
        // The key opens downloads only, and the kubeconfig's token is not a key.
        assert!(access.admit(&h, "/api/v1/pods", &with).is_err());
        let token = HashMap::from([("key".to_string(), access.token.clone())]);
        assert!(access.admit(&h, path, &token).is_err());
        assert_ne!(Access::new(8080).unwrap().token, access.token);
    }
}

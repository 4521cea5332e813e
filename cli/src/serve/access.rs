//! Who `serve` answers: requests for its own address (Host `127.0.0.1:PORT` or
//! `localhost:PORT`) that carry the bearer token of the kubeconfig it wrote. A web page the user
//! visits can reach a loopback port, under its own host name through DNS rebinding; it has
//! neither. Velero's CLI fetches a DownloadRequest's URL without the kubeconfig's token, so
//! those URLs carry a key of their own, as a presigned URL does.

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

    /// Ok, or the refusal to send: 421 for another host, 401 without the token (for a
    /// download URL, without its key).
    pub(crate) fn admit(
        &self,
        headers: &HeaderMap,
        download: bool,
        query: &HashMap<String, String>,
    ) -> Result<(), Box<Response>> {
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
        let (presented, expected) = if download {
            (query.get("key").map(String::as_str), &self.download_key)
        } else {
            (bearer(headers), &self.token)
        };
        match presented {
            Some(p) if same(p.as_bytes(), expected.as_bytes()) => Ok(()),
            _ => Err(Box::new(responses::status(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "Unauthorized: use the kubeconfig this server printed",
            ))),
        }
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
        let code = |h: HeaderMap| {
            access
                .admit(&h, false, &none)
                .err()
                .map(|r| r.status().as_u16())
        };
        let token = access.token.clone();
        assert_eq!(code(headers("127.0.0.1:8080", Some(&token))), None);
        assert_eq!(code(headers("localhost:8080", Some(&token))), None);
        assert_eq!(code(headers("evil.example:8080", Some(&token))), Some(421));
        assert_eq!(code(headers("127.0.0.1:8081", Some(&token))), Some(421));
        assert_eq!(code(headers("127.0.0.1:8080", None)), Some(401));
        assert_eq!(code(headers("127.0.0.1:8080", Some("wrong"))), Some(401));
    }

    #[test]
    fn a_download_url_opens_with_its_key_alone() {
        let access = Access::new(8080).unwrap();
        let url = access.download_url("http://127.0.0.1:8080", "velero", "dl-1");
        let key = url.split_once("?key=").unwrap().1.to_string();
        let with = HashMap::from([("key".to_string(), key)]);
        let h = headers("127.0.0.1:8080", None);
        assert!(access.admit(&h, true, &with).is_ok());
        assert!(access.admit(&h, true, &HashMap::new()).is_err());
        // The kubeconfig's token is not a download key, nor the other way round.
        let token = HashMap::from([("key".to_string(), access.token.clone())]);
        assert!(access.admit(&h, true, &token).is_err());
        assert_ne!(Access::new(8080).unwrap().token, access.token);
    }
}

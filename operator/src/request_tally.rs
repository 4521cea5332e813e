//! The API requests of this process, by kind ("pods list", "pods/log get"): a bundle records
//! its share in manifest.json (`apiRequestsByKind`), so a collection that reads objects one
//! at a time, where a list would do, shows which kind it reads so.

use std::{collections::BTreeMap, sync::Mutex};

use http::Method;

/// Kinds counted at most: the operator asks for a few dozen; anything past this (a bug) is
/// counted as "other" so the map stays small.
const MAX_KINDS: usize = 200;

#[derive(Default)]
pub(crate) struct RequestTally {
    counts: Mutex<BTreeMap<String, u64>>,
}

impl RequestTally {
    pub(crate) fn record<B>(&self, req: &http::Request<B>) {
        let kind = kind_of(req.method(), req.uri().path(), req.uri().query());
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let key = if counts.len() < MAX_KINDS || counts.contains_key(&kind) {
            kind
        } else {
            "other".to_string()
        };
        *counts.entry(key).or_default() += 1;
    }

    pub(crate) fn snapshot(&self) -> BTreeMap<String, u64> {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// What was asked between two snapshots, kinds asked for nothing left out.
pub(crate) fn since(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    after
        .iter()
        .filter_map(|(kind, n)| {
            let d = n.saturating_sub(before.get(kind).copied().unwrap_or(0));
            (d > 0).then(|| (kind.clone(), d))
        })
        .collect()
}

/// "<resource>[/<subresource>] <verb>" of a request to the API server, from its path:
/// `/api/v1/namespaces/x/pods/y/log` is "pods/log get"; a GET without a name is a list (a
/// watch with `watch=true`).
pub(crate) fn kind_of(method: &Method, path: &str, query: Option<&str>) -> String {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    // Past /api/<version> or /apis/<group>/<version>.
    let rest = match parts.as_slice() {
        ["api", _, rest @ ..] => rest,
        ["apis", _, _, rest @ ..] => rest,
        _ => return non_resource(path).to_string(),
    };
    let rest = match rest {
        // The namespace object itself, or anything inside one.
        ["namespaces", _, inner @ ..] if !inner.is_empty() => inner,
        other => other,
    };
    let (resource, named, sub) = match rest {
        [] => ("discovery", false, None),
        [resource] => (*resource, false, None),
        [resource, _] => (*resource, true, None),
        [resource, _, sub, ..] => (*resource, true, Some(*sub)),
    };
    let resource = match sub {
        Some(sub) => format!("{resource}/{sub}"),
        None => resource.to_string(),
    };
    format!("{resource} {}", verb(method, named, query))
}

fn non_resource(path: &str) -> &'static str {
    match path {
        "/version" => "version",
        p if p.starts_with("/api") => "discovery",
        _ => "other",
    }
}

fn verb(method: &Method, named: bool, query: Option<&str>) -> &'static str {
    let watch = query.is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"));
    match *method {
        Method::GET if watch => "watch",
        Method::GET if named => "get",
        Method::GET => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if named => "delete",
        Method::DELETE => "deletecollection",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_named_by_resource_and_verb() {
        let cases = [
            (
                Method::GET,
                "/api/v1/namespaces/v/pods/a/log",
                None,
                "pods/log get",
            ),
            (
                Method::GET,
                "/api/v1/namespaces/v/pods",
                Some("labelSelector=x"),
                "pods list",
            ),
            (Method::GET, "/api/v1/pods", Some("limit=500"), "pods list"),
            (Method::GET, "/api/v1/namespaces/v/pods/a", None, "pods get"),
            (Method::GET, "/api/v1/nodes/n1", None, "nodes get"),
            (Method::GET, "/api/v1/namespaces/v", None, "namespaces get"),
            (
                Method::GET,
                "/apis/velero.io/v1/namespaces/v/podvolumerestores",
                Some("watch=true&resourceVersion=1"),
                "podvolumerestores watch",
            ),
            (
                Method::PATCH,
                "/apis/velerodebug.io/v1alpha1/namespaces/v/debugbundles/b/status",
                None,
                "debugbundles/status patch",
            ),
            (
                Method::POST,
                "/apis/velero.io/v1/namespaces/v/serverstatusrequests",
                None,
                "serverstatusrequests create",
            ),
            (
                Method::DELETE,
                "/apis/velero.io/v1/namespaces/v/serverstatusrequests/s",
                None,
                "serverstatusrequests delete",
            ),
            (Method::GET, "/version", None, "version"),
            (Method::GET, "/apis", None, "discovery"),
        ];
        for (method, path, query, want) in cases {
            assert_eq!(kind_of(&method, path, query), want, "{path}");
        }
    }

    #[test]
    fn a_bundle_gets_what_was_asked_while_it_ran() {
        let tally = RequestTally::default();
        let get = |p: &str| http::Request::get(p).body(()).unwrap();
        tally.record(&get("/api/v1/nodes"));
        let before = tally.snapshot();
        tally.record(&get("/api/v1/nodes"));
        tally.record(&get("/api/v1/namespaces/v/pods/a/log"));
        tally.record(&get("/api/v1/namespaces/v/pods/b/log"));
        let got = since(&before, &tally.snapshot());
        let want: BTreeMap<String, u64> = [
            ("nodes list".to_string(), 1),
            ("pods/log get".to_string(), 2),
        ]
        .into();
        assert_eq!(got, want);
    }

    #[test]
    fn kinds_past_the_cap_are_counted_as_other() {
        let tally = RequestTally::default();
        for i in 0..MAX_KINDS + 5 {
            tally.record(
                &http::Request::get(format!("/api/v1/r{i}"))
                    .body(())
                    .unwrap(),
            );
        }
        let counts = tally.snapshot();
        assert_eq!(counts.len(), MAX_KINDS + 1);
        assert_eq!(counts["other"], 5);
    }
}

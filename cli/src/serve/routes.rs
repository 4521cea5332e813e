//! A request's path read as the Kubernetes API lays paths out. Hand-written rather than an
//! axum Router: the API's grammar (an optional namespaces/NS, subresources, /api vs /apis/G)
//! is clearer as one match, and testable without a server.

/// The group/version/resource a path names; group "" is the core group.
#[derive(Debug, PartialEq, Clone)]
pub(crate) struct Resource {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub namespace: Option<String>,
}

#[derive(Debug, PartialEq)]
pub(crate) enum Route {
    Version,
    /// /api
    CoreVersions,
    /// /apis
    Groups,
    /// /apis/G
    Group(String),
    /// /api/v1, /apis/G/V
    Resources {
        group: String,
        version: String,
    },
    Collection(Resource),
    Object(Resource, String),
    /// /api/v1/namespaces/NS/pods/NAME/log
    Log {
        namespace: String,
        pod: String,
    },
    /// Other subresources (status, scale, ...): answered as the object for reads.
    Subresource(Resource, String, String),
    /// /downloads/NS/NAME: a DownloadRequest's file (see downloads.rs).
    Download {
        namespace: String,
        name: String,
    },
    /// /openapi/v3 and /openapi/v3/<group version>: kubectl apply reads them before it writes.
    OpenApiRoot,
    OpenApi(String),
    NotFound,
}

pub(crate) fn route(path: &str) -> Route {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    match parts.as_slice() {
        ["version"] => Route::Version,
        ["api"] => Route::CoreVersions,
        ["apis"] => Route::Groups,
        ["openapi", "v3"] => Route::OpenApiRoot,
        ["openapi", "v3", rest @ ..] => Route::OpenApi(rest.join("/")),
        ["apis", group] => Route::Group(group.to_string()),
        ["downloads", namespace, name] => Route::Download {
            namespace: namespace.to_string(),
            name: name.to_string(),
        },
        ["api", version, rest @ ..] => resource_route("", version, rest),
        ["apis", group, version, rest @ ..] => resource_route(group, version, rest),
        _ => Route::NotFound,
    }
}

fn resource_route(group: &str, version: &str, rest: &[&str]) -> Route {
    let resource = |plural: &str, namespace: Option<&str>| Resource {
        group: group.into(),
        version: version.into(),
        plural: plural.into(),
        namespace: namespace.map(String::from),
    };
    match rest {
        [] => Route::Resources {
            group: group.into(),
            version: version.into(),
        },
        ["namespaces", ns, "pods", pod, "log"] if group.is_empty() => Route::Log {
            namespace: ns.to_string(),
            pod: pod.to_string(),
        },
        ["namespaces", ns, plural] => Route::Collection(resource(plural, Some(ns))),
        ["namespaces", ns, plural, name] => {
            Route::Object(resource(plural, Some(ns)), name.to_string())
        }
        ["namespaces", ns, plural, name, sub] => Route::Subresource(
            resource(plural, Some(ns)),
            name.to_string(),
            sub.to_string(),
        ),
        [plural] => Route::Collection(resource(plural, None)),
        [plural, name] => Route::Object(resource(plural, None), name.to_string()),
        [plural, name, sub] => {
            Route::Subresource(resource(plural, None), name.to_string(), sub.to_string())
        }
        _ => Route::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(group: &str, plural: &str, ns: Option<&str>) -> Resource {
        Resource {
            group: group.into(),
            version: "v1".into(),
            plural: plural.into(),
            namespace: ns.map(String::from),
        }
    }

    #[test]
    fn paths_read_as_the_api_lays_them_out() {
        assert_eq!(route("/api"), Route::CoreVersions);
        assert_eq!(route("/apis/velero.io"), Route::Group("velero.io".into()));
        assert_eq!(
            route("/apis/velero.io/v1"),
            Route::Resources {
                group: "velero.io".into(),
                version: "v1".into()
            }
        );
        assert_eq!(
            route("/api/v1/pods"),
            Route::Collection(res("", "pods", None))
        );
        assert_eq!(
            route("/api/v1/namespaces"),
            Route::Collection(res("", "namespaces", None))
        );
        assert_eq!(
            route("/api/v1/namespaces/shop"),
            Route::Object(res("", "namespaces", None), "shop".into())
        );
        assert_eq!(
            route("/api/v1/namespaces/shop/pods"),
            Route::Collection(res("", "pods", Some("shop")))
        );
        assert_eq!(
            route("/apis/velero.io/v1/namespaces/velero/restores/r1"),
            Route::Object(res("velero.io", "restores", Some("velero")), "r1".into())
        );
        assert_eq!(
            route("/api/v1/namespaces/velero/pods/v-1/log"),
            Route::Log {
                namespace: "velero".into(),
                pod: "v-1".into()
            }
        );
        assert_eq!(
            route("/api/v1/namespaces/velero/pods/v-1/status"),
            Route::Subresource(
                res("", "pods", Some("velero")),
                "v-1".into(),
                "status".into()
            )
        );
        assert_eq!(
            route("/downloads/velero/r1-abc"),
            Route::Download {
                namespace: "velero".into(),
                name: "r1-abc".into()
            }
        );
        assert_eq!(route("/openapi/v3"), Route::OpenApiRoot);
        assert_eq!(
            route("/openapi/v3/apis/velero.io/v1"),
            Route::OpenApi("apis/velero.io/v1".into())
        );
        assert_eq!(route("/openapi/v2"), Route::NotFound);
        assert_eq!(route("/api/v1/namespaces/a/b/c/d/e"), Route::NotFound);
    }
}

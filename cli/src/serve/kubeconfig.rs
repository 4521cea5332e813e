//! The kubeconfig `serve` writes for its server: no credentials (the server takes none), the
//! bundle target's namespace as the context's, so `kubectl get restores` needs no -n.

use std::path::Path;

use serde_json::json;

pub(crate) fn write(path: &Path, server: &str, namespace: &str) -> std::io::Result<()> {
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "velero-debug-bundle", "cluster": {"server": server}}],
        "users": [{"name": "velero-debug-bundle", "user": {}}],
        "contexts": [{"name": "velero-debug-bundle", "context": {
            "cluster": "velero-debug-bundle", "user": "velero-debug-bundle",
            "namespace": namespace}}],
        "current-context": "velero-debug-bundle",
    });
    let text = serde_yaml::to_string(&config).map_err(std::io::Error::other)?;
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_kubeconfig_names_the_loopback_server_and_the_namespace() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubeconfig");
        super::write(&path, "http://127.0.0.1:8080", "velero").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("server: http://127.0.0.1:8080"), "{text}");
        assert!(text.contains("namespace: velero"));
        assert!(text.contains("current-context: velero-debug-bundle"));
    }
}

//! The kubeconfig `serve` writes for its server: the token the server asks for (access.rs: in
//! the server URL's path, and as a bearer token for when client-go sends one), the
//! bundle target's namespace as the context's, so `kubectl get restores` needs no -n. Readable
//! by its owner only, like the folder it is written in.

use std::path::Path;

use serde_json::json;

pub(crate) fn write(
    path: &Path,
    server: &str,
    token: &str,
    namespace: &str,
) -> std::io::Result<()> {
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "velero-debug-bundle", "cluster": {"server": server}}],
        "users": [{"name": "velero-debug-bundle", "user": {"token": token}}],
        "contexts": [{"name": "velero-debug-bundle", "context": {
            "cluster": "velero-debug-bundle", "user": "velero-debug-bundle",
            "namespace": namespace}}],
        "current-context": "velero-debug-bundle",
    });
    let text = serde_yaml::to_string(&config).map_err(std::io::Error::other)?;
    let mut file = std::fs::OpenOptions::new();
    file.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut file, 0o600);
    std::io::Write::write_all(&mut file.open(path)?, text.as_bytes())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_kubeconfig_names_the_loopback_server_and_the_namespace() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubeconfig");
        super::write(&path, "http://127.0.0.1:8080", "t0k3n", "velero").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("token: t0k3n"), "{text}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "readable by others: {mode:o}");
        }
        assert!(text.contains("server: http://127.0.0.1:8080"), "{text}");
        assert!(text.contains("namespace: velero"));
        assert!(text.contains("current-context: velero-debug-bundle"));
    }
}

//! The Kubernetes client and namespace from kubectl's global flags, read as kubectl reads them:
//! the kubeconfig ($KUBECONFIG, merged, or ~/.kube/config) with the flags laid over the chosen
//! context, cluster and user; the in-cluster account when there is no kubeconfig.

use std::time::Duration;

use kube::{
    Client, Config,
    config::{KubeConfigOptions, Kubeconfig},
};
use velero_debug_crd::duration;

use crate::args::ClusterArgs;

/// Where DebugBundles live when neither a flag, $VELERO_NAMESPACE nor the context says.
pub(crate) const DEFAULT_NAMESPACE: &str = "velero";

#[derive(Debug, thiserror::Error)]
pub(crate) enum ClusterError {
    #[error("reading the kubeconfig: {0}")]
    Kubeconfig(#[from] kube::config::KubeconfigError),
    #[error("no kubeconfig found, and not in a cluster: {0}")]
    InCluster(#[from] kube::config::InClusterError),
    #[error("building the Kubernetes client: {0}")]
    Client(#[from] kube::Error),
    #[error("--request-timeout {0:?}: a duration such as 30s or 2m, or seconds, or 0")]
    RequestTimeout(String),
    #[error("--{0} needs a kubeconfig, and none was found")]
    NeedsKubeconfig(&'static str),
    #[error("the kubeconfig has no context {0:?}")]
    NoContext(String),
}

/// Where to connect, and the namespace to work in.
pub(crate) struct Target {
    pub config: Config,
    pub namespace: String,
}

impl Target {
    pub(crate) fn client(&self) -> Result<Client, ClusterError> {
        Ok(Client::try_from(self.config.clone())?)
    }
}

pub(crate) async fn target(args: &ClusterArgs) -> Result<Target, ClusterError> {
    let timeout = request_timeout(&args.request_timeout)?;
    let kubeconfig = match &args.kubeconfig {
        Some(path) => Some(Kubeconfig::read_from(path)?),
        None => Kubeconfig::read().ok(),
    };
    let (mut config, context_namespace) = match kubeconfig {
        Some(mut kubeconfig) => {
            let context = args
                .context
                .clone()
                .or_else(|| kubeconfig.current_context.clone());
            let context_namespace = context_namespace(&kubeconfig, context.as_deref());
            lay_flags_over(&mut kubeconfig, args, context.as_deref())?;
            let options = KubeConfigOptions {
                context,
                cluster: args.cluster.clone(),
                user: args.user.clone(),
            };
            let config = Config::from_custom_kubeconfig(kubeconfig, &options).await?;
            (config, context_namespace)
        }
        None => (in_cluster(args)?, None),
    };
    if let Some(timeout) = timeout {
        config.read_timeout = Some(timeout);
        config.write_timeout = Some(timeout);
        config.connect_timeout = Some(timeout);
    }
    if let Some(user) = &args.as_user {
        config.auth_info.impersonate = Some(user.clone());
    }
    if !args.as_group.is_empty() {
        config.auth_info.impersonate_groups = Some(args.as_group.clone());
    }
    if let Some(uid) = &args.as_uid {
        config.auth_info.impersonate_uid = Some(uid.clone());
    }
    let namespace = namespace(args.namespace.as_deref(), context_namespace.as_deref());
    Ok(Target { config, namespace })
}

/// The namespace without connecting (`create --dry-run`): the same rules as [`target`].
pub(crate) fn namespace_only(args: &ClusterArgs) -> String {
    let kubeconfig = match &args.kubeconfig {
        Some(path) => Kubeconfig::read_from(path).ok(),
        None => Kubeconfig::read().ok(),
    };
    let from_context = kubeconfig.as_ref().and_then(|k| {
        let context = args.context.clone().or_else(|| k.current_context.clone());
        context_namespace(k, context.as_deref())
    });
    namespace(args.namespace.as_deref(), from_context.as_deref())
}

fn in_cluster(args: &ClusterArgs) -> Result<Config, ClusterError> {
    for (set, flag) in [
        (args.context.is_some(), "context"),
        (args.cluster.is_some(), "cluster"),
        (args.user.is_some(), "user"),
    ] {
        if set {
            return Err(ClusterError::NeedsKubeconfig(flag));
        }
    }
    let mut config = Config::incluster()?;
    if let Some(server) = &args.server
        && let Ok(uri) = server.parse()
    {
        config.cluster_url = uri;
    }
    if let Some(token) = &args.token {
        config.auth_info.token = Some(token.clone().into());
        config.auth_info.token_file = None;
    }
    config.accept_invalid_certs |= args.insecure_skip_tls_verify;
    Ok(config)
}

/// -n, then $VELERO_NAMESPACE (both in `flag`), then the context's own, then velero.
fn namespace(flag: Option<&str>, context: Option<&str>) -> String {
    flag.or(context)
        .filter(|n| !n.is_empty())
        .unwrap_or(DEFAULT_NAMESPACE)
        .to_string()
}

fn context_namespace(kubeconfig: &Kubeconfig, context: Option<&str>) -> Option<String> {
    kubeconfig
        .contexts
        .iter()
        .find(|c| Some(c.name.as_str()) == context)
        .and_then(|c| c.context.as_ref())
        .and_then(|c| c.namespace.clone())
}

/// kubectl's flags win over what the kubeconfig says for the context's cluster and user.
fn lay_flags_over(
    kubeconfig: &mut Kubeconfig,
    args: &ClusterArgs,
    context: Option<&str>,
) -> Result<(), ClusterError> {
    let chosen = kubeconfig
        .contexts
        .iter()
        .find(|c| Some(c.name.as_str()) == context)
        .and_then(|c| c.context.clone());
    if chosen.is_none()
        && let Some(name) = &args.context
    {
        return Err(ClusterError::NoContext(name.clone()));
    }
    let chosen = chosen.unwrap_or_default();
    let cluster_name = args.cluster.clone().unwrap_or(chosen.cluster);
    let user_name = args.user.clone().or(chosen.user);
    if let Some(cluster) = kubeconfig
        .clusters
        .iter_mut()
        .find(|c| c.name == cluster_name)
        .and_then(|c| c.cluster.as_mut())
    {
        if let Some(server) = &args.server {
            cluster.server = Some(server.clone());
        }
        if let Some(ca) = &args.certificate_authority {
            cluster.certificate_authority = Some(ca.display().to_string());
            cluster.certificate_authority_data = None;
        }
        if args.insecure_skip_tls_verify {
            cluster.insecure_skip_tls_verify = Some(true);
        }
    }
    if let Some(token) = &args.token
        && let Some(user) = kubeconfig
            .auth_infos
            .iter_mut()
            .find(|a| Some(&a.name) == user_name.as_ref())
            .and_then(|a| a.auth_info.as_mut())
    {
        // A token given on the command line replaces the user's other credentials.
        *user = kube::config::AuthInfo {
            token: Some(token.clone().into()),
            ..Default::default()
        };
    }
    Ok(())
}

/// kubectl's `--request-timeout`: "0" means none; a bare number is seconds.
fn request_timeout(text: &str) -> Result<Option<Duration>, ClusterError> {
    let bad = || ClusterError::RequestTimeout(text.to_string());
    if text.is_empty() {
        return Ok(None);
    }
    let parsed = match text.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => duration::parse(text)
            .ok()
            .and_then(|d| Duration::try_from(d).ok())
            .ok_or_else(bad)?,
    };
    Ok((!parsed.is_zero()).then_some(parsed))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBECONFIG: &str = r#"
apiVersion: v1
kind: Config
current-context: admin
clusters:
- name: local
  cluster: {server: "https://127.0.0.1:6443", certificate-authority-data: "Y2E="}
contexts:
- name: admin
  context: {cluster: local, user: admin}
- name: team
  context: {cluster: local, user: admin, namespace: velero-b}
users:
- name: admin
  user: {client-certificate-data: "Y2VydA==", client-key-data: "a2V5"}
"#;

    fn kubeconfig() -> Kubeconfig {
        Kubeconfig::from_yaml(KUBECONFIG).unwrap()
    }

    #[test]
    fn the_namespace_comes_from_the_flag_then_the_context_then_velero() {
        let k = kubeconfig();
        assert_eq!(namespace(Some("x"), Some("y")), "x");
        let team = context_namespace(&k, Some("team"));
        assert_eq!(namespace(None, team.as_deref()), "velero-b");
        let admin = context_namespace(&k, Some("admin"));
        assert_eq!(admin, None);
        assert_eq!(namespace(None, admin.as_deref()), "velero");
    }

    #[test]
    fn flags_are_laid_over_the_contexts_cluster_and_user() {
        let mut k = kubeconfig();
        let args = ClusterArgs {
            server: Some("https://10.0.0.1:6443".into()),
            certificate_authority: Some("/etc/ca.pem".into()),
            token: Some("t0ken".into()),
            ..ClusterArgs::default()
        };
        lay_flags_over(&mut k, &args, Some("admin")).unwrap();
        let cluster = k.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.server.as_deref(), Some("https://10.0.0.1:6443"));
        assert_eq!(
            cluster.certificate_authority.as_deref(),
            Some("/etc/ca.pem")
        );
        assert_eq!(cluster.certificate_authority_data, None);
        let user = k.auth_infos[0].auth_info.as_ref().unwrap();
        assert!(user.token.is_some());
        assert_eq!(user.client_certificate_data, None);
    }

    #[test]
    fn an_unknown_context_is_named() {
        let mut k = kubeconfig();
        let args = ClusterArgs {
            context: Some("nope".into()),
            ..ClusterArgs::default()
        };
        let err = lay_flags_over(&mut k, &args, Some("nope")).unwrap_err();
        assert_eq!(err.to_string(), "the kubeconfig has no context \"nope\"");
    }

    #[tokio::test]
    async fn impersonation_and_timeout_reach_the_config() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(&path, KUBECONFIG).unwrap();
        let args = ClusterArgs {
            kubeconfig: Some(path),
            context: Some("team".into()),
            as_user: Some("jane".into()),
            as_group: vec!["ops".into(), "dev".into()],
            request_timeout: "30s".into(),
            ..ClusterArgs::default()
        };
        let target = target(&args).await.unwrap();
        assert_eq!(target.namespace, "velero-b");
        assert_eq!(target.config.auth_info.impersonate.as_deref(), Some("jane"));
        assert_eq!(
            target.config.auth_info.impersonate_groups,
            Some(vec!["ops".to_string(), "dev".to_string()])
        );
        assert_eq!(target.config.read_timeout, Some(Duration::from_secs(30)));
    }

    #[test]
    fn request_timeouts_as_kubectl_reads_them() {
        assert_eq!(request_timeout("0").unwrap(), None);
        assert_eq!(request_timeout("5").unwrap(), Some(Duration::from_secs(5)));
        assert_eq!(
            request_timeout("2m").unwrap(),
            Some(Duration::from_secs(120))
        );
        assert!(request_timeout("soon").is_err());
    }
}

//! The Kubernetes client from the standard kubectl flags.

use kube::{
    Client, Config,
    config::{KubeConfigOptions, Kubeconfig},
};

use crate::args::ClusterArgs;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ClusterError {
    #[error("reading the kubeconfig: {0}")]
    Kubeconfig(#[from] kube::config::KubeconfigError),
    #[error("finding a cluster (kubeconfig or in-cluster): {0}")]
    Infer(#[from] kube::config::InferConfigError),
    #[error("building the Kubernetes client: {0}")]
    Client(#[from] kube::Error),
}

pub(crate) async fn client(args: &ClusterArgs) -> Result<Client, ClusterError> {
    let options = KubeConfigOptions {
        context: args.context.clone(),
        ..KubeConfigOptions::default()
    };
    let config = match (&args.kubeconfig, &args.context) {
        (Some(path), _) => {
            Config::from_custom_kubeconfig(Kubeconfig::read_from(path)?, &options).await?
        }
        (None, Some(_)) => Config::from_kubeconfig(&options).await?,
        // As kubectl: $KUBECONFIG or ~/.kube/config, else the in-cluster account.
        (None, None) => Config::infer().await?,
    };
    Ok(Client::try_from(config)?)
}

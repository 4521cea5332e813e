//! The operator's RBAC in the environment: the chart's release name (its ServiceAccount and
//! ClusterRoles) and the workload reads a test grants it in a namespace.

use anyhow::Result;
use kube::{Api, api::PostParams};

use crate::context::TestCtx;

/// The chart's release in the environment (tests/env/lifecycle/operator/chart-install.sh), and so its
/// ServiceAccount and the ClusterRole that reads workloads.
pub const RELEASE: &str = "velero-debug-operator";

/// Binds `<release>-workload-reader` to the operator's ServiceAccount in `namespace`, as the
/// chart renders it for a namespace listed in rbac.workloadNamespaces.
pub async fn grant_workload_reads(t: &TestCtx, namespace: &str) -> Result<()> {
    use k8s_openapi::api::rbac::v1::RoleBinding;
    let (env, client) = (&t.env, &t.client);
    let binding: RoleBinding = serde_json::from_value(serde_json::json!({
        "metadata": {"name": format!("{RELEASE}-workload-reader")},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
            "name": format!("{RELEASE}-workload-reader"),
        },
        "subjects": [{"kind": "ServiceAccount", "name": RELEASE, "namespace": env.namespace}],
    }))?;
    Api::<RoleBinding>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &binding)
        .await?;
    Ok(())
}

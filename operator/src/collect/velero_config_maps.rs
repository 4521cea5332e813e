//! The ConfigMaps Velero's flags name: node-agent's `--node-agent-configmap` (its data-path
//! pods' resources, loads, placement) and the server's `--repo-maintenance-job-configmap` (the
//! maintenance jobs' resources). A finding that blames a limit quotes it from here. The chart
//! grants `get` on the names in `rbac.veleroConfigMaps` only (ConfigMaps in Velero's namespace
//! may hold anything), so one named otherwise is refused; the refusal is recorded, and the
//! finding that needed it says so.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;

use super::{CollectError, Found, Sink, Sources};
use crate::{
    findings::{ConfigMapRead, VeleroConfigMap},
    kubernetes,
    tar_gz::EntryPath,
};

/// Why a ConfigMap Velero's flags name was not read when the API server refused it.
const REFUSED: &str = "forbidden; rbac.veleroConfigMaps does not list it";

/// Reads each ConfigMap the Velero workloads' flags name (after the workloads, whose flags
/// name them).
pub(super) async fn all(
    src: &Sources<'_>,
    out: &mut Sink,
    found: &mut Found,
) -> Result<(), CollectError> {
    let infra = &found.summary.evidence.infra;
    // Velero 1.14's node-agent reads `node-agent-config` when it exists: none is no news.
    let fixed_node_agent_name = infra
        .node_agent_arguments
        .as_ref()
        .is_some_and(|a| !a.names_node_agent_config_map());
    let named: Vec<(VeleroConfigMap, String)> = [
        (
            VeleroConfigMap::NodeAgent,
            infra
                .node_agent_arguments
                .as_ref()
                .and_then(|a| a.node_agent_config_map()),
        ),
        (
            VeleroConfigMap::RepositoryMaintenance,
            infra
                .server_arguments
                .as_ref()
                .and_then(|a| a.repo_maintenance_config_map()),
        ),
    ]
    .into_iter()
    .filter_map(|(role, name)| Some((role, name?.to_string())))
    // Flags anyone who may edit the workloads writes: only a name is asked for.
    .filter(|(_, name)| kubernetes::is_object_name(name))
    .collect();
    let api: Api<ConfigMap> = src.namespaced();
    for (role, name) in named {
        let read = match src.timed_request(api.get_opt(&name)).await {
            Ok(Some(map)) => {
                let path = EntryPath::new(&["resources", "configmap"], &name, "yaml");
                let seen = out.add_object_seen(&path, &map)?;
                ConfigMapRead::Read {
                    path: path.to_string(),
                    data: seen["data"].clone(),
                }
            }
            Ok(None) => {
                if !(role == VeleroConfigMap::NodeAgent && fixed_node_agent_name) {
                    out.warn(format!("ConfigMap {name} ({}) does not exist", role.flag()));
                }
                ConfigMapRead::Missing
            }
            Err(e) if e.is_forbidden() => {
                out.not_collected("configmaps", Some(&src.namespace), REFUSED);
                ConfigMapRead::Refused(REFUSED.to_string())
            }
            Err(e) => {
                out.warn(format!("ConfigMap {name} ({}): {e}", role.flag()));
                ConfigMapRead::Failed(e.to_string())
            }
        };
        found
            .summary
            .evidence
            .infra
            .add_velero_config_map(role, name, read);
    }
    Ok(())
}

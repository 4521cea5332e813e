//! One pod of Velero's data path that ended badly, as the recorder keeps it: a Pod cut down to
//! what says how it ended (its containers' terminations, limits and node, the label naming
//! the operation it served), every string from the cluster cut to a bound, so a record is
//! small whatever the pod held. It stays a Pod, so a bundle holds and reads it as it does the
//! pods it lists.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateTerminated, ContainerStatus, Pod, PodSpec, PodStatus,
    ResourceRequirements,
};
use kube::api::ObjectMeta;

use crate::velero;

use velero_debug_crd::ANNOTATION_RECORDED_AT as RECORDED_AT;

/// A message (the pod's, a container's) is cut to this many bytes.
const MAX_MESSAGE: usize = 1024;
/// Containers kept of each list (init, regular): Velero's pods have one or two.
const MAX_CONTAINERS: usize = 8;

/// The labels that make a pod one of Velero's data path: the operation it serves, or the
/// repository a maintenance job's pod maintains.
fn served_label(pod: &Pod) -> Option<(&'static str, &str)> {
    let labels = pod.metadata.labels.as_ref()?;
    velero::DATA_PATH_POD_LABELS
        .iter()
        .chain([&velero::REPOSITORY_NAME_LABEL])
        .find_map(|&key| labels.get(key).map(|v| (key, v.as_str())))
}

/// `pod`, cut down to how it ended, when it is one of Velero's data path and ended badly
/// (failed, or a container ended in error or killed); None otherwise.
pub(crate) fn of(pod: &Pod, now: Timestamp) -> Option<Pod> {
    let (label, served) = served_label(pod)?;
    let status = pod.status.as_ref()?;
    if !ended_badly(status) {
        return None;
    }
    let spec = pod.spec.as_ref();
    let metadata = ObjectMeta {
        name: pod.metadata.name.clone(),
        namespace: pod.metadata.namespace.clone(),
        uid: pod.metadata.uid.clone(),
        creation_timestamp: pod.metadata.creation_timestamp.clone(),
        labels: Some(BTreeMap::from([(label.to_string(), served.to_string())])),
        annotations: Some(BTreeMap::from([(
            RECORDED_AT.to_string(),
            now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        )])),
        ..ObjectMeta::default()
    };
    let containers = |list: Option<&Vec<Container>>| -> Vec<Container> {
        list.into_iter()
            .flatten()
            .take(MAX_CONTAINERS)
            .map(|c| Container {
                name: c.name.clone(),
                image: c.image.clone(),
                resources: c.resources.as_ref().map(|r| ResourceRequirements {
                    limits: r.limits.clone(),
                    requests: r.requests.clone(),
                    ..ResourceRequirements::default()
                }),
                ..Container::default()
            })
            .collect()
    };
    let init = containers(spec.and_then(|s| s.init_containers.as_ref()));
    let spec = PodSpec {
        node_name: spec.and_then(|s| s.node_name.clone()),
        containers: containers(spec.map(|s| &s.containers)),
        init_containers: (!init.is_empty()).then_some(init),
        ..PodSpec::default()
    };
    Some(Pod {
        metadata,
        spec: Some(spec),
        status: Some(PodStatus {
            phase: status.phase.clone(),
            reason: status.reason.as_deref().map(cut),
            message: status.message.as_deref().map(cut),
            container_statuses: statuses(status.container_statuses.as_ref()),
            init_container_statuses: statuses(status.init_container_statuses.as_ref()),
            ..PodStatus::default()
        }),
    })
}

/// Failed, or a container (init too) ended in error or was killed, now or before a restart.
fn ended_badly(status: &PodStatus) -> bool {
    status.phase.as_deref() == Some("Failed")
        || status
            .container_statuses
            .iter()
            .chain(status.init_container_statuses.iter())
            .flatten()
            .flat_map(|c| [c.state.as_ref(), c.last_state.as_ref()])
            .flatten()
            .filter_map(|s| s.terminated.as_ref())
            .any(|t| t.exit_code != 0 || t.reason.as_deref() == Some("OOMKilled"))
}

fn statuses(list: Option<&Vec<ContainerStatus>>) -> Option<Vec<ContainerStatus>> {
    let kept: Vec<ContainerStatus> = list
        .into_iter()
        .flatten()
        .take(MAX_CONTAINERS)
        .map(|c| ContainerStatus {
            name: c.name.clone(),
            restart_count: c.restart_count,
            state: c.state.as_ref().map(terminated_only),
            last_state: c.last_state.as_ref().map(terminated_only),
            ..ContainerStatus::default()
        })
        .collect();
    (!kept.is_empty()).then_some(kept)
}

/// Only a termination says how a container ended; a waiting or running state is left out.
fn terminated_only(state: &ContainerState) -> ContainerState {
    ContainerState {
        terminated: state.terminated.as_ref().map(|t| ContainerStateTerminated {
            exit_code: t.exit_code,
            signal: t.signal,
            reason: t.reason.as_deref().map(cut),
            message: t.message.as_deref().map(cut),
            started_at: t.started_at.clone(),
            finished_at: t.finished_at.clone(),
            ..ContainerStateTerminated::default()
        }),
        ..ContainerState::default()
    }
}

/// `text` cut to [`MAX_MESSAGE`] bytes at a character boundary.
fn cut(text: &str) -> String {
    let mut end = text.len().min(MAX_MESSAGE);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(labels: serde_json::Value, status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "pvb-1", "namespace": "velero", "uid": "u1", "labels": labels,
                         "annotations": {"secret": "x"}},
            "spec": {"nodeName": "n1", "containers": [{
                "name": "pvb-1", "image": "velero/velero:v1.18.3",
                "args": ["--password=hunter2"],
                "env": [{"name": "TOKEN", "value": "hunter2"}],
                "resources": {"limits": {"memory": "64Mi"}}}]},
            "status": status,
        }))
        .unwrap()
    }

    fn oom_killed() -> serde_json::Value {
        json!({"phase": "Failed", "containerStatuses": [{
            "name": "pvb-1", "restartCount": 0, "image": "i", "imageID": "", "ready": false,
            "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]})
    }

    #[test]
    fn a_data_path_pod_killed_for_memory_keeps_its_reason_limit_node_and_operation() {
        let p = pod(
            json!({"velero.io/pod-volume-backup": "pvb-1", "other": "x"}),
            oom_killed(),
        );
        let kept = of(&p, Timestamp::UNIX_EPOCH).expect("recorded");
        let text = serde_json::to_string(&kept).unwrap();
        for want in [
            "OOMKilled",
            "137",
            "64Mi",
            "\"n1\"",
            "velero.io/pod-volume-backup",
        ] {
            assert!(text.contains(want), "{want} not in {text}");
        }
        // Nothing else of the pod: no arguments, environment or other labels.
        for unwanted in ["hunter2", "TOKEN", "other", "secret"] {
            assert!(!text.contains(unwanted), "{unwanted} in {text}");
        }
    }

    #[test]
    fn a_maintenance_pod_that_exited_in_error_before_a_restart_is_recorded() {
        let status = json!({"phase": "Running", "containerStatuses": [{
            "name": "velero-repo-maintenance-container", "restartCount": 1, "image": "i",
            "imageID": "", "ready": true, "state": {"running": {}},
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "message": "m".repeat(5000)}}}]});
        let kept = of(
            &pod(json!({"velero.io/repo-name": "r1"}), status),
            Timestamp::UNIX_EPOCH,
        )
        .expect("recorded");
        let c = &kept.status.unwrap().container_statuses.unwrap()[0];
        let ended = c.last_state.as_ref().unwrap().terminated.as_ref().unwrap();
        assert_eq!(ended.message.as_ref().unwrap().len(), MAX_MESSAGE);
        assert!(c.state.as_ref().unwrap().running.is_none());
    }

    #[test]
    fn pods_that_succeeded_or_are_not_velero_s_are_not_recorded() {
        let done = json!({"phase": "Succeeded", "containerStatuses": [{
            "name": "pvb-1", "restartCount": 0, "image": "i", "imageID": "", "ready": false,
            "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]});
        let velero = json!({"velero.io/data-upload": "du-1"});
        assert!(of(&pod(velero, done), Timestamp::UNIX_EPOCH).is_none());
        assert!(
            of(
                &pod(json!({"app": "web"}), oom_killed()),
                Timestamp::UNIX_EPOCH
            )
            .is_none()
        );
    }

    #[test]
    fn a_message_cut_in_a_character_is_cut_before_it() {
        let text = format!("{}é", "a".repeat(MAX_MESSAGE - 1));
        assert_eq!(cut(&text).len(), MAX_MESSAGE - 1);
    }
}

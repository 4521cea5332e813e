//! When each volume operation of the target was queued, started and ended: every one, the
//! completed too (the rules keep only those that did not complete), for the report's timeline.
//! Bounded; what is beyond the bound is counted.

use jiff::Timestamp;
use serde_json::Value;

/// Operations kept for the timeline: 2,000 volumes restored twice over, with room.
pub(crate) const MAX_TIMED_OPERATIONS: usize = 5_000;

/// A name longer than Kubernetes allows is cut to this (hostile input stays small).
const MAX_NAME_BYTES: usize = 253;

#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Timeline {
    pub operations: Vec<TimedOperation>,
    pub left_out: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TimedOperation {
    /// Its file in the bundle.
    pub path: String,
    pub kind: String,
    pub name: String,
    pub node: Option<String>,
    /// `namespace/name` of a PodVolumeBackup/Restore's pod: a Velero 1.14 restore, which names
    /// no node, is placed on its pod's (evidence.rs, `place_pod_volume_restores`).
    pub pod: Option<String>,
    pub phase: String,
    /// `metadata.creationTimestamp`: from then it waited for a node-agent.
    pub created: Option<Timestamp>,
    pub started: Option<Timestamp>,
    pub completed: Option<Timestamp>,
}

impl Timeline {
    /// Places the PodVolumeRestores of `pod` that name no node on `node`, where they ran.
    pub fn place_restores(&mut self, pod: &str, node: &str, ran: impl Fn(&str) -> bool) {
        for op in self.operations.iter_mut().filter(|o| {
            o.kind == "PodVolumeRestore"
                && o.node.is_none()
                && o.pod.as_deref() == Some(pod)
                && ran(&o.phase)
        }) {
            op.node = Some(node.to_string());
        }
    }

    pub fn add(&mut self, path: &str, kind: &str, node: Option<&str>, phase: &str, obj: &Value) {
        if self.operations.len() >= MAX_TIMED_OPERATIONS {
            self.left_out += 1;
            return;
        }
        let time = |v: &Value| v.as_str().and_then(|t| t.parse::<Timestamp>().ok());
        let pod = &obj["spec"]["pod"];
        let pod = match (pod["namespace"].as_str(), pod["name"].as_str()) {
            (Some(ns), Some(name)) => Some(cut(&format!("{ns}/{name}"))),
            _ => None,
        };
        self.operations.push(TimedOperation {
            path: path.to_string(),
            kind: kind.to_string(),
            name: cut(obj["metadata"]["name"].as_str().unwrap_or_default()),
            node: node.map(cut),
            pod,
            phase: cut(phase),
            created: time(&obj["metadata"]["creationTimestamp"]),
            started: time(&obj["status"]["startTimestamp"]),
            completed: time(&obj["status"]["completionTimestamp"]),
        });
    }
}

fn cut(text: &str) -> String {
    let mut end = text.len().min(MAX_NAME_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operation_keeps_its_three_times_and_a_bad_time_is_none() {
        let mut t = Timeline::default();
        let obj = serde_json::json!({
            "metadata": {"name": "r-1", "creationTimestamp": "2026-11-22T10:00:00Z"},
            "status": {"startTimestamp": "2026-11-22T10:00:05Z", "completionTimestamp": "not a time"},
        });
        t.add(
            "velero/pvr/r-1.yaml",
            "PodVolumeRestore",
            Some("n1"),
            "Failed",
            &obj,
        );
        let op = &t.operations[0];
        assert_eq!(op.created, Some("2026-11-22T10:00:00Z".parse().unwrap()));
        assert_eq!(op.started, Some("2026-11-22T10:00:05Z".parse().unwrap()));
        assert_eq!(op.completed, None);
        assert_eq!(op.node.as_deref(), Some("n1"));
    }

    #[test]
    fn a_restore_naming_no_node_is_placed_on_its_pods_once_it_ran() {
        let mut t = Timeline::default();
        let pvr = |name: &str| {
            serde_json::json!({"metadata": {"name": name},
                "spec": {"pod": {"namespace": "shop", "name": "db-0"}}})
        };
        t.add("a", "PodVolumeRestore", None, "Completed", &pvr("ran"));
        t.add("b", "PodVolumeRestore", None, "New", &pvr("waits"));
        t.place_restores("shop/db-0", "node-1", |phase| phase != "New");
        assert_eq!(t.operations[0].node.as_deref(), Some("node-1"));
        assert_eq!(t.operations[1].node, None);
    }

    #[test]
    fn the_timeline_is_bounded_and_counts_what_it_left_out() {
        let mut t = Timeline::default();
        let obj = serde_json::json!({"metadata": {"name": "é".repeat(400)}});
        for _ in 0..MAX_TIMED_OPERATIONS + 3 {
            t.add("p", "DataDownload", None, "Completed", &obj);
        }
        assert_eq!(t.operations.len(), MAX_TIMED_OPERATIONS);
        assert_eq!(t.left_out, 3);
        assert!(t.operations[0].name.len() <= MAX_NAME_BYTES);
    }
}

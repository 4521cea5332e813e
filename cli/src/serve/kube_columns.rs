//! The columns Kubernetes' own server prints for the kinds a Velero investigation reads most:
//! pods, claims, volumes, events, namespaces (k8s.io/kubernetes pkg/printers/internalversion,
//! as of 1.32, written from what `kubectl get` shows). Other kinds print NAME and AGE.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Event;
use serde::Deserialize;
use serde_json::Value;
use velero_debug_crd::event_time::last_seen;

use super::columns::{Column, column};
use crate::print::age;

pub(crate) fn of(plural: &str) -> Option<Vec<Column>> {
    Some(match plural {
        "pods" => pods(),
        "persistentvolumeclaims" => claims(),
        "events" => events(),
        "namespaces" => vec![
            name(),
            column("Status", 0, |o, _| o["status"]["phase"].clone()),
            created(),
        ],
        _ => return None,
    })
}

fn name() -> Column {
    column("Name", 0, |o, _| o["metadata"]["name"].clone())
}

fn created() -> Column {
    column("Age", 0, |o, now| {
        age_of(&o["metadata"]["creationTimestamp"], now)
    })
}

fn age_of(t: &Value, now: Timestamp) -> Value {
    age::since(t.as_str(), now).into()
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn or_none(s: String) -> Value {
    if s.is_empty() {
        "<none>".into()
    } else {
        s.into()
    }
}

fn pods() -> Vec<Column> {
    let statuses = |o: &Value| {
        o["status"]["containerStatuses"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    vec![
        name(),
        column("Ready", 0, move |o, _| {
            let total = o["spec"]["containers"].as_array().map_or(0, Vec::len);
            let ready = statuses(o).iter().filter(|c| c["ready"] == true).count();
            format!("{ready}/{total}").into()
        }),
        column("Status", 0, |o, _| pod_status(o).into()),
        column("Restarts", 0, move |o, now| {
            restarts(&statuses(o), now).into()
        }),
        created(),
        column("IP", 1, |o, _| or_none(text(&o["status"]["podIP"]))),
        column("Node", 1, |o, _| or_none(text(&o["spec"]["nodeName"]))),
        column("Nominated Node", 1, |o, _| {
            or_none(text(&o["status"]["nominatedNodeName"]))
        }),
        column("Readiness Gates", 1, |o, _| {
            let gates = o["spec"]["readinessGates"].as_array().map_or(0, Vec::len);
            if gates == 0 {
                "<none>".into()
            } else {
                format!("0/{gates}").into()
            }
        }),
    ]
}

/// The restarts, and how long ago the last one was, as "2 (5m ago)".
fn restarts(statuses: &[Value], now: Timestamp) -> String {
    let count: i64 = statuses
        .iter()
        .filter_map(|c| c["restartCount"].as_i64())
        .sum();
    let last = statuses
        .iter()
        .filter_map(|c| c["lastState"]["terminated"]["finishedAt"].as_str())
        .max();
    match last {
        Some(t) if count > 0 => format!("{count} ({} ago)", age::since(Some(t), now)),
        _ => count.to_string(),
    }
}

/// The STATUS kubectl prints: a container's waiting or terminated reason over the phase.
fn pod_status(o: &Value) -> String {
    let mut reason = text(&o["status"]["reason"]);
    if reason.is_empty() {
        reason = text(&o["status"]["phase"]);
    }
    let inits = o["status"]["initContainerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for (i, c) in inits.iter().enumerate() {
        let terminated = &c["state"]["terminated"];
        if terminated["exitCode"].as_i64() == Some(0) {
            continue;
        }
        let why = text(&c["state"]["waiting"]["reason"]);
        return if !terminated.is_null() {
            format!("Init:{}", or_text(text(&terminated["reason"]), "Error"))
        } else if !why.is_empty() && why != "PodInitializing" {
            format!("Init:{why}")
        } else {
            format!("Init:{i}/{}", inits.len())
        };
    }
    let containers = o["status"]["containerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for c in containers.iter().rev() {
        let waiting = text(&c["state"]["waiting"]["reason"]);
        let terminated = &c["state"]["terminated"];
        if !waiting.is_empty() {
            reason = waiting;
        } else if !terminated.is_null() {
            reason = match text(&terminated["reason"]) {
                r if !r.is_empty() => r,
                _ => format!("ExitCode:{}", terminated["exitCode"].as_i64().unwrap_or(0)),
            };
        }
    }
    if !o["metadata"]["deletionTimestamp"].is_null() {
        reason = "Terminating".into();
    }
    reason
}

fn or_text(s: String, default: &str) -> String {
    if s.is_empty() { default.into() } else { s }
}

fn claims() -> Vec<Column> {
    vec![
        name(),
        column("Status", 0, |o, _| {
            if o["metadata"]["deletionTimestamp"].is_null() {
                o["status"]["phase"].clone()
            } else {
                "Terminating".into()
            }
        }),
        column("Volume", 0, |o, _| text(&o["spec"]["volumeName"]).into()),
        // Kubernetes' printer: a claim that names a volume shows its capacity, a zero
        // quantity ("0") while the status has none (a claim Pending on a volume bound to
        // another claim); one that names none shows nothing.
        column("Capacity", 0, |o, _| {
            let capacity = text(&o["status"]["capacity"]["storage"]);
            if text(&o["spec"]["volumeName"]).is_empty() || !capacity.is_empty() {
                capacity.into()
            } else {
                "0".into()
            }
        }),
        column("Access Modes", 0, |o, _| {
            access_modes(&o["status"]["accessModes"]).into()
        }),
        column("StorageClass", 0, |o, _| {
            text(&o["spec"]["storageClassName"]).into()
        }),
        column("VolumeAttributesClass", 0, |o, _| {
            or_text(text(&o["spec"]["volumeAttributesClassName"]), "<unset>").into()
        }),
        created(),
        column("VolumeMode", 1, |o, _| {
            text(&o["spec"]["volumeMode"]).into()
        }),
    ]
}

fn access_modes(modes: &Value) -> String {
    let short = |m: &str| match m {
        "ReadWriteOnce" => "RWO",
        "ReadOnlyMany" => "ROX",
        "ReadWriteMany" => "RWX",
        "ReadWriteOncePod" => "RWOP",
        _ => "",
    };
    let list = modes.as_array().cloned().unwrap_or_default();
    let names: Vec<&str> = list.iter().filter_map(Value::as_str).map(short).collect();
    names.join(",")
}

fn events() -> Vec<Column> {
    vec![
        column("Last Seen", 0, |o, now| {
            let seen = Event::deserialize(o).ok().and_then(|e| last_seen(&e));
            age::age_or_unknown(seen, now).into()
        }),
        column("Type", 0, |o, _| o["type"].clone()),
        column("Reason", 0, |o, _| o["reason"].clone()),
        column("Object", 0, |o, _| {
            let i = &o["involvedObject"];
            format!("{}/{}", text(&i["kind"]).to_lowercase(), text(&i["name"])).into()
        }),
        column("Subobject", 1, |o, _| {
            text(&o["involvedObject"]["fieldPath"]).into()
        }),
        column("Source", 1, |o, _| {
            let s = &o["source"];
            let component = or_text(text(&s["component"]), &text(&o["reportingComponent"]));
            match text(&s["host"]) {
                h if h.is_empty() => component.into(),
                h => format!("{component}, {h}").into(),
            }
        }),
        column("Message", 0, |o, _| {
            text(&o["message"]).trim().to_string().into()
        }),
        column("First Seen", 1, |o, now| age_of(&o["firstTimestamp"], now)),
        column("Count", 1, |o, _| o["count"].as_i64().unwrap_or(1).into()),
        name(),
    ]
    .into_iter()
    .map(|mut c| {
        if c.name == "Name" {
            c.priority = 1;
        }
        c
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_pod_prints_its_containers_reason_over_its_phase() {
        let pod = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"phase": "Pending", "containerStatuses": [
                {"name": "a", "ready": true, "restartCount": 0, "state": {"running": {}}},
                {"name": "b", "ready": false, "restartCount": 2,
                 "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                 "lastState": {"terminated": {"finishedAt": "2026-01-01T00:00:00Z"}}}]}});
        let now: Timestamp = "2026-01-01T00:05:00Z".parse().unwrap();
        let cols = pods();
        let cell = |n: &str| (cols.iter().find(|c| c.name == n).unwrap().cell)(&pod, now);
        assert_eq!(cell("Ready"), "1/2");
        assert_eq!(cell("Status"), "CrashLoopBackOff");
        assert_eq!(cell("Restarts"), "2 (5m ago)");
        assert_eq!(cell("Node"), "<none>");
    }

    #[test]
    fn an_event_names_its_object_as_kind_slash_name() {
        let e = json!({"involvedObject": {"kind": "Pod", "name": "web-0"}, "type": "Warning",
            "reason": "FailedMount", "message": "m\n", "count": 3,
            "lastTimestamp": "2026-01-01T00:00:00Z"});
        let now: Timestamp = "2026-01-01T00:00:30Z".parse().unwrap();
        let cols = events();
        let cell = |n: &str| (cols.iter().find(|c| c.name == n).unwrap().cell)(&e, now);
        assert_eq!(cell("Object"), "pod/web-0");
        assert_eq!(cell("Last Seen"), "30s");
        // As kubectl: a series' last observation, else lastTimestamp, firstTimestamp, eventTime.
        let series = json!({"metadata": {"name": "e"}, "involvedObject": {},
            "eventTime": "2026-01-01T00:00:00.000000Z",
            "series": {"count": 2, "lastObservedTime": "2026-01-01T00:00:20.000000Z"}});
        let last_seen = &cols.iter().find(|c| c.name == "Last Seen").unwrap().cell;
        assert_eq!(last_seen(&series, now), "10s");
        let untimed = json!({"metadata": {"name": "e", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "involvedObject": {}});
        assert_eq!(last_seen(&untimed, now), "<unknown>");
        assert_eq!(cell("Message"), "m");
        assert_eq!(cols.iter().find(|c| c.name == "Name").unwrap().priority, 1);
    }

    #[test]
    fn a_claim_naming_a_volume_prints_a_zero_capacity_as_kubernetes_does() {
        let now: Timestamp = "2026-01-01T00:00:30Z".parse().unwrap();
        let cols = claims();
        let capacity = &cols.iter().find(|c| c.name == "Capacity").unwrap().cell;
        let pending_on_a_volume =
            json!({"spec": {"volumeName": "pv-1"}, "status": {"phase": "Pending"}});
        assert_eq!(capacity(&pending_on_a_volume, now), "0");
        let bound =
            json!({"spec": {"volumeName": "pv-1"}, "status": {"capacity": {"storage": "1Gi"}}});
        assert_eq!(capacity(&bound, now), "1Gi");
        let unbound = json!({"spec": {}, "status": {"phase": "Pending"}});
        assert_eq!(capacity(&unbound, now), "");
    }

    #[test]
    fn a_claim_abbreviates_its_access_modes() {
        assert_eq!(
            access_modes(&json!(["ReadWriteOnce", "ReadOnlyMany"])),
            "RWO,ROX"
        );
    }
}

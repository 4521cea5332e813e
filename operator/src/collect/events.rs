//! Events: those about any collected object or pod (Velero's, and the workload objects in
//! their own namespaces), and the Warning events of the namespaces the target covered, within
//! the window; also as one sorted timeline.
//!
//! Events are read namespace by namespace, never across the cluster: outside Velero's
//! namespace only where `rbac.workloadNamespaces` grants it (a namespace refused is warned
//! about), so a bundle, which any bundle creator may read, holds no other team's events. A
//! target that covered every namespace has its Warning events read in the namespaces of its
//! workloads. At most [`MAX_WORKLOAD_NAMESPACES`] namespaces are read, and the timeline keeps
//! its latest [`MAX_TIMELINE_LINES`] lines.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Event;
use kube::{Api, api::ListParams};
use velero_debug_crd::event_time::last_seen;

use super::{CollectError, Found, Sink, Sources, TargetObjects, sources::Refusal};
use crate::tar_gz::EntryPath;

/// Namespaces whose events are read at most, of each kind (the workloads step reads no more
/// than this many either).
const MAX_WORKLOAD_NAMESPACES: usize = 20;

/// Lines of the timeline at most: its latest are kept.
const MAX_TIMELINE_LINES: usize = 5_000;

/// The namespaces a Backup or Restore covered; `None` means all of them.
pub(super) fn covered_namespaces(target: &serde_json::Value) -> Option<Vec<String>> {
    let spec = &target["spec"];
    let included: Vec<String> = spec["includedNamespaces"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if included.is_empty() || included.iter().any(|n| n == "*") {
        return None;
    }
    let mut out = included;
    // A restore may put namespaces under new names.
    if let Some(mapping) = spec["namespaceMapping"].as_object() {
        out.extend(
            mapping
                .values()
                .filter_map(|v| v.as_str().map(str::to_string)),
        );
    }
    out.sort();
    out.dedup();
    Some(out)
}

/// One line of the timeline, sortable by its leading timestamp.
pub(super) fn timeline_line(e: &Event) -> String {
    let time = last_seen(e).map(|t| t.to_string()).unwrap_or_default();
    let obj = &e.involved_object;
    format!(
        "{time} {:<7} {}/{}/{} {}: {}",
        e.type_.as_deref().unwrap_or(""),
        obj.namespace.as_deref().unwrap_or("-"),
        obj.kind.as_deref().unwrap_or(""),
        obj.name.as_deref().unwrap_or(""),
        e.reason.as_deref().unwrap_or(""),
        e.message.as_deref().unwrap_or("").replace('\n', " "),
    )
}

/// Whether the event is about one of the objects whose uids are given.
fn about_one_of(e: &Event, uids: &BTreeSet<String>) -> bool {
    e.involved_object
        .uid
        .as_ref()
        .is_some_and(|u| uids.contains(u))
}

/// Events about Velero's objects and DebugBundles: those of this target's objects are already
/// among the related ones; the rest belong to other operations (other Backups' failures, our
/// own ProbableCause events on them) and are noise in this bundle.
fn about_other_velero_object(e: &Event) -> bool {
    e.involved_object
        .api_version
        .as_deref()
        .is_some_and(|v| v.starts_with("velero.io/") || v.starts_with("velerodebug.io/"))
}

pub(super) async fn all(
    src: &Sources<'_>,
    out: &mut Sink,
    found: &mut Found,
    objects: &TargetObjects,
) -> Result<(), CollectError> {
    let mut timeline: Vec<String> = Vec::new();
    let workload_namespaces: Vec<String> = found.workload_uids.keys().cloned().collect();
    let scopes = warning_scopes(out, objects, workload_namespaces);
    related(src, out, found, &mut timeline).await?;
    let read = about_workloads(src, out, found, &scopes, &mut timeline).await?;
    about_volumes(src, out, found, &mut timeline).await?;
    let rest: Vec<String> = scopes.into_iter().filter(|ns| !read.contains(ns)).collect();
    warnings_of_covered(src, out, found, rest, &mut timeline).await?;
    let cut = keep_latest(&mut timeline, MAX_TIMELINE_LINES);
    if cut > 0 {
        out.warn(format!(
            "events/timeline.txt: the {cut} earliest of {} events left out; it keeps the latest {MAX_TIMELINE_LINES}",
            cut + MAX_TIMELINE_LINES
        ));
    }
    write_timeline(out, timeline)
}

/// Why the PersistentVolumes' events were not collected, when refused.
const REFUSED_VOLUME_EVENTS: &str =
    "forbidden; rbac.persistentVolumeEvents grants it (rbac.workloadNamespaces [\"*\"] does too)";

/// The events of a workload namespace, refused: what to record (Velero's own namespace is
/// always granted, so a refusal there is no chart value's).
fn events_refused(namespace: &str) -> Option<Refusal<'_>> {
    crate::kubernetes::is_object_name(namespace).then_some(Refusal {
        resource: "events",
        namespace,
        reason: super::REFUSED_IN_NAMESPACE,
    })
}

/// Whether the event happened within the window (one without a time is kept).
fn in_window(e: &Event, since: jiff::Timestamp) -> bool {
    last_seen(e).is_none_or(|t| t >= since)
}

/// Adds listed events to the bundle (`events/<name>.yaml`), the findings and the timeline.
fn add_events(
    out: &mut Sink,
    found: &mut Found,
    name: &str,
    events: &[Event],
    timeline: &mut Vec<String>,
) -> Result<(), CollectError> {
    timeline.extend(events.iter().map(timeline_line));
    let path = EntryPath::new(&["events"], name, "yaml");
    let path_text = path.to_string();
    let evidence = &mut found.summary.evidence;
    out.add_list_seen(&path, events, |seen| evidence.add_event(&path_text, seen))?;
    evidence.trim_events();
    Ok(())
}

/// The events of Velero's namespace about the collected objects.
async fn related(
    src: &Sources<'_>,
    out: &mut Sink,
    found: &mut Found,
    timeline: &mut Vec<String>,
) -> Result<(), CollectError> {
    let since = src.plan.since;
    let own: Api<Event> = src.namespaced();
    let collected = out.collected_uids.clone();
    let related_to_target = |e: &Event| about_one_of(e, &collected) && in_window(e, since);
    if let Some(related) = src
        .list_matching(
            out,
            &own,
            ListParams::default(),
            "events of Velero's namespace",
            related_to_target,
        )
        .await
    {
        add_events(out, found, "related", &related, timeline)?;
    }
    Ok(())
}

/// Every event (Normal too) about the workload objects, from their own namespaces; in those
/// of `warning_scopes`, the Warning events too, from the same list (one list where two were
/// made). Returns the namespaces whose Warning events were read so.
async fn about_workloads(
    src: &Sources<'_>,
    out: &mut Sink,
    found: &mut Found,
    warning_scopes: &[String],
    timeline: &mut Vec<String>,
) -> Result<BTreeSet<String>, CollectError> {
    let since = src.plan.since;
    let mut with_warnings_read = BTreeSet::new();
    for (namespace, uids) in found
        .workload_uids
        .clone()
        .into_iter()
        .take(MAX_WORKLOAD_NAMESPACES)
    {
        let api: Api<Event> = Api::namespaced(src.client.clone(), &namespace);
        let what = format!("events of namespace {namespace}");
        let warnings_too = warning_scopes.contains(&namespace);
        let wanted = |e: &Event| {
            in_window(e, since)
                && (about_one_of(e, &uids) || (warnings_too && is_warning_of_concern(e)))
        };
        let refused = events_refused(&namespace);
        let Some(listed) = src
            .list_granted(out, &api, ListParams::default(), (&what, refused), wanted)
            .await
        else {
            continue;
        };
        let (about, rest): (Vec<Event>, Vec<Event>) =
            listed.into_iter().partition(|e| about_one_of(e, &uids));
        let name = format!("workloads-{namespace}");
        add_events(out, found, &name, &about, timeline)?;
        if warnings_too {
            let warnings: Vec<Event> = about
                .into_iter()
                .chain(rest)
                .filter(is_warning_of_concern)
                .collect();
            add_events(
                out,
                found,
                &format!("warnings-{namespace}"),
                &warnings,
                timeline,
            )?;
            with_warnings_read.insert(namespace);
        }
    }
    Ok(with_warnings_read)
}

/// A Warning event about anything but another operation's objects.
fn is_warning_of_concern(e: &Event) -> bool {
    e.type_.as_deref() == Some("Warning") && !about_other_velero_object(e)
}

/// Kubernetes records the events of cluster-scoped objects in namespace default.
const CLUSTER_SCOPED_EVENTS_NAMESPACE: &str = "default";

/// Every event about the collected PersistentVolumes, selected by kind on the server.
async fn about_volumes(
    src: &Sources<'_>,
    out: &mut Sink,
    found: &mut Found,
    timeline: &mut Vec<String>,
) -> Result<(), CollectError> {
    if found.volume_uids.is_empty() {
        return Ok(());
    }
    let since = src.plan.since;
    let uids = found.volume_uids.clone();
    let api: Api<Event> = Api::namespaced(src.client.clone(), CLUSTER_SCOPED_EVENTS_NAMESPACE);
    let lp = ListParams::default().fields("involvedObject.kind=PersistentVolume");
    let what = "events of the PersistentVolumes (namespace default; granted by rbac.persistentVolumeEvents)";
    let about_volumes = |e: &Event| about_one_of(e, &uids) && in_window(e, since);
    let refused = Refusal {
        resource: "events",
        namespace: CLUSTER_SCOPED_EVENTS_NAMESPACE,
        reason: REFUSED_VOLUME_EVENTS,
    };
    let listed = src.list_granted(out, &api, lp, (what, Some(refused)), about_volumes);
    if let Some(about) = listed.await {
        add_events(out, found, "persistentvolumes", &about, timeline)?;
    }
    Ok(())
}

/// The Warning events of the namespaces the target covered (all of them when it covered
/// all), but those about other operations' objects.
async fn warnings_of_covered(
    src: &Sources<'_>,
    out: &mut Sink,
    found: &mut Found,
    scopes: Vec<String>,
    timeline: &mut Vec<String>,
) -> Result<(), CollectError> {
    let since = src.plan.since;
    let warnings = ListParams::default().fields("type=Warning");
    for scope in scopes {
        let api: Api<Event> = Api::namespaced(src.client.clone(), &scope);
        let what = format!("Warning events of {scope}");
        let of_concern = |e: &Event| in_window(e, since) && !about_other_velero_object(e);
        let refused = events_refused(&scope);
        if let Some(events) = src
            .list_granted(out, &api, warnings.clone(), (&what, refused), of_concern)
            .await
        {
            // A namespace named by the target (a Restore's namespaceMapping) may be anything.
            let name = format!("warnings-{scope}");
            add_events(out, found, &name, &events, timeline)?;
        }
    }
    Ok(())
}

/// Where Warning events are read: each covered namespace whose name can go into a path
/// (warned about otherwise), or, for a target that covered all, the namespaces of its
/// workloads; at most [`MAX_WORKLOAD_NAMESPACES`] of them.
fn warning_scopes(
    out: &mut Sink,
    objects: &TargetObjects,
    workload_namespaces: Vec<String>,
) -> Vec<String> {
    let list = covered_namespaces(&objects.target.data).unwrap_or(workload_namespaces);
    // A Restore's namespaceMapping may hold anything; only names go into a path.
    let (mut names, others): (Vec<String>, Vec<String>) = list
        .into_iter()
        .partition(|ns| crate::kubernetes::is_object_name(ns));
    for other in others {
        out.warn(format!(
            "namespace {other:?} (named by the target) is not a namespace name; its events were not collected"
        ));
    }
    if names.len() > MAX_WORKLOAD_NAMESPACES {
        out.warn(format!(
            "Warning events: read in the first {MAX_WORKLOAD_NAMESPACES} of the {} namespaces the target covered",
            names.len()
        ));
        names.truncate(MAX_WORKLOAD_NAMESPACES);
    }
    names
}

/// Sorts the timeline and drops all but its latest `max` lines (each starts with its time);
/// how many it dropped.
fn keep_latest(timeline: &mut Vec<String>, max: usize) -> usize {
    timeline.sort();
    timeline.dedup();
    let cut = timeline.len().saturating_sub(max);
    timeline.drain(..cut);
    cut
}

/// Every event kept, one sorted line each, redacted.
fn write_timeline(out: &mut Sink, timeline: Vec<String>) -> Result<(), CollectError> {
    // Each line is its own event: no value goes on to the next, so no stream.
    let mut text = String::new();
    for line in &timeline {
        text.push_str(&out.redact_line(line));
        text.push('\n');
    }
    out.add_text(&EntryPath::new(&["events"], "timeline", "txt"), &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_covers_included_and_mapped_namespaces() {
        let restore = serde_json::json!({"spec": {
            "includedNamespaces": ["shop", "db"],
            "namespaceMapping": {"shop": "shop-copy"}
        }});
        assert_eq!(
            covered_namespaces(&restore).unwrap(),
            ["db", "shop", "shop-copy"]
        );
    }

    #[test]
    fn wildcard_or_nothing_means_every_namespace() {
        assert_eq!(covered_namespaces(&serde_json::json!({"spec": {}})), None);
        assert_eq!(
            covered_namespaces(&serde_json::json!({"spec": {"includedNamespaces": ["*"]}})),
            None
        );
    }

    #[test]
    fn events_about_velero_objects_are_left_to_the_related_ones() {
        let about = |api_version: &str| -> Event {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "e"},
                "involvedObject": {"apiVersion": api_version, "kind": "X", "name": "x"},
            }))
            .unwrap()
        };
        assert!(about_other_velero_object(&about("velero.io/v1")));
        assert!(about_other_velero_object(&about("velerodebug.io/v1alpha1")));
        assert!(!about_other_velero_object(&about("v1")));
        assert!(!about_other_velero_object(&about("apps/v1")));
    }

    #[test]
    fn timeline_lines_sort_by_time() {
        let event = |t: &str, reason: &str| -> Event {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "e"},
                "involvedObject": {"kind": "Pod", "name": "p", "namespace": "ns"},
                "type": "Warning", "reason": reason, "message": "m",
                "lastTimestamp": t
            }))
            .unwrap()
        };
        let mut lines = [
            timeline_line(&event("2026-11-20T10:05:00Z", "Later")),
            timeline_line(&event("2026-11-20T10:01:00Z", "Earlier")),
        ];
        lines.sort();
        assert!(lines[0].contains("Earlier") && lines[0].contains("ns/Pod/p"));
        // An events.k8s.io recorder's repeated event is at its series' last observation.
        let series: Event = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "e"},
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": "ns"},
            "eventTime": "2026-11-20T10:00:00.000000Z",
            "series": {"count": 4, "lastObservedTime": "2026-11-20T10:07:00.000000Z"}
        }))
        .unwrap();
        assert!(timeline_line(&series).starts_with("2026-11-20T10:07:00Z "));
    }

    #[test]
    fn the_timeline_keeps_its_latest_lines() {
        let mut timeline: Vec<String> = (0..10)
            .rev()
            .map(|i| format!("2026-11-20T10:{i:02}:00Z Warning ns/Pod/p R: m"))
            .chain(["2026-11-20T10:09:00Z Warning ns/Pod/p R: m".to_string()])
            .collect();
        assert_eq!(keep_latest(&mut timeline, 4), 6);
        assert_eq!(timeline.len(), 4);
        assert!(timeline[0].starts_with("2026-11-20T10:06"), "{timeline:?}");
        assert!(timeline[3].starts_with("2026-11-20T10:09"), "{timeline:?}");
        assert_eq!(keep_latest(&mut timeline, 4), 0);
    }
}

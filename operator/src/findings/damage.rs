//! The damage by application: every object the results file names with an error or warning,
//! every volume operation that did not complete and every restored pod that is not Ready,
//! grouped by the application it belongs to, with the findings that explain it.
//!
//! An application is the workload at the top of an object's owner chain (Pod -> ReplicaSet ->
//! Deployment, Pod -> StatefulSet, DaemonSet, Job), or the Helm release that workload (or the
//! pod) belongs to; an object with neither belongs to "its namespace". An object the API
//! server refused is not in the cluster, so what owns it is read from its name: a claim
//! `<template>-<statefulset>-<ordinal>`, a pod `<statefulset>-<ordinal>` or
//! `<deployment>-<hash>-<suffix>`, and otherwise the longest application name followed by `-`
//! (Helm charts name their objects `<release>-…`). Pure: reads the evidence and the ranked
//! findings.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::{
    Evidence, Finding,
    evidence::WorkloadPodEvidence,
    results::{ResultItem, group_key},
    text::cap,
};

/// Applications in manifest.json; summary.md lists fewer (render.rs).
pub(crate) const MAX_MANIFEST_APPLICATIONS: usize = 500;
/// Findings cited per application, and pods named per application.
const MAX_FINDINGS_PER_APPLICATION: usize = 5;
const MAX_PODS_PER_APPLICATION: usize = 5;
/// A reason quoted for a pod is cut to this many bytes.
const MAX_REASON_BYTES: usize = 120;

/// The kind manifest.json gives an application that is a Helm release, and one that is the
/// objects of a namespace no application owns.
pub(crate) const HELM_RELEASE: &str = "HelmRelease";
pub(crate) const NAMESPACE: &str = "Namespace";

/// One application and what the target did not do for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AppDamage {
    /// Deployment, StatefulSet, DaemonSet, Job, ReplicaSet, [`HELM_RELEASE`] or [`NAMESPACE`]
    /// (then `name` is the namespace).
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// Objects of the results file's errors and warnings.
    pub items_failed: u64,
    pub items_warned: u64,
    /// Volume operations that did not complete, of `volumes_total` when that is known.
    pub volumes_failed: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volumes_total: Option<u32>,
    pub pods_not_ready: u32,
    /// The first pods not Ready, with why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_ready_pods: Vec<NotReadyPod>,
    /// 1-based positions of the findings that explain it, as numbered in summary.md.
    pub findings: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct NotReadyPod {
    pub name: String,
    pub reason: String,
}

impl AppDamage {
    fn new(app: &App) -> Self {
        Self {
            kind: app.kind.clone(),
            namespace: app.namespace.clone(),
            name: app.name.clone(),
            items_failed: 0,
            items_warned: 0,
            volumes_failed: 0,
            volumes_total: None,
            pods_not_ready: 0,
            not_ready_pods: Vec::new(),
            findings: Vec::new(),
        }
    }

    /// Nothing failed, warned or waits: a restored application that came back whole.
    pub fn is_whole(&self) -> bool {
        self.items_failed == 0
            && self.items_warned == 0
            && self.volumes_failed == 0
            && self.pods_not_ready == 0
    }

    fn cite(&mut self, findings: impl IntoIterator<Item = usize>) {
        for n in findings {
            if !self.findings.contains(&n) && self.findings.len() < MAX_FINDINGS_PER_APPLICATION {
                self.findings.push(n);
            }
        }
    }
}

/// Every application the evidence shows damaged or restored, the most damaged first.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Damage {
    pub applications: Vec<AppDamage>,
    /// Results messages not kept one by one (their objects are not attributed).
    pub items_left_out: u64,
    /// Volume operations not kept one by one (not attributed either).
    pub operations_left_out: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct App {
    kind: String,
    namespace: String,
    name: String,
}

impl App {
    fn new(kind: &str, namespace: &str, name: &str) -> Self {
        Self {
            kind: kind.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }

    fn namespace(namespace: &str) -> Self {
        Self::new(NAMESPACE, namespace, namespace)
    }
}

/// Who owns what: the known workloads, by namespace, and the collected pods.
struct Owners<'a> {
    /// (namespace, kind, name) of each known workload -> its application.
    workloads: BTreeMap<(String, String, String), App>,
    /// Per namespace, every name an object's name may start with (workloads, Helm
    /// releases) -> its application.
    names: BTreeMap<String, BTreeMap<String, App>>,
    pods: BTreeMap<String, &'a WorkloadPodEvidence>,
}

impl<'a> Owners<'a> {
    fn new(e: &'a Evidence) -> Self {
        let mut owners = Owners {
            workloads: BTreeMap::new(),
            names: BTreeMap::new(),
            pods: e.workload_pods.iter().map(|p| (p.key(), p)).collect(),
        };
        for a in &e.applications {
            owners.know(&a.namespace, &a.kind, &a.name, a.helm_release.as_deref());
        }
        for p in &e.workload_pods {
            if let Some((kind, name)) = top_owner(p) {
                owners.know(&p.namespace, &kind, &name, p.helm_release.as_deref());
            } else if let Some(release) = &p.helm_release {
                owners.know_release(&p.namespace, release);
            }
        }
        owners
    }

    /// A workload; its application is its Helm release when it has one.
    fn know(&mut self, namespace: &str, kind: &str, name: &str, release: Option<&str>) {
        let key = (namespace.to_string(), kind.to_string(), name.to_string());
        if self.workloads.contains_key(&key) {
            return;
        }
        let app = match release {
            Some(release) => self.know_release(namespace, release),
            None => App::new(kind, namespace, name),
        };
        self.names
            .entry(namespace.to_string())
            .or_default()
            .entry(name.to_string())
            .or_insert_with(|| app.clone());
        self.workloads.insert(key, app);
    }

    fn know_release(&mut self, namespace: &str, release: &str) -> App {
        let app = App::new(HELM_RELEASE, namespace, release);
        self.names
            .entry(namespace.to_string())
            .or_default()
            .insert(release.to_string(), app.clone());
        app
    }

    fn workload(&self, namespace: &str, kind: &str, name: &str) -> App {
        let key = (namespace.to_string(), kind.to_string(), name.to_string());
        self.workloads
            .get(&key)
            .cloned()
            .unwrap_or_else(|| App::new(kind, namespace, name))
    }

    /// The application of pod `namespace/name`: its owner chain when it was collected, else
    /// its name.
    fn pod(&self, namespace: &str, name: &str) -> App {
        let pod = self.pods.get(&format!("{namespace}/{name}"));
        if let Some(p) = pod {
            if let Some((kind, owner)) = top_owner(p) {
                return self.workload(namespace, &kind, &owner);
            }
            if let Some(release) = &p.helm_release {
                return App::new(HELM_RELEASE, namespace, release);
            }
        }
        self.by_name(namespace, name)
    }

    /// The application of claim `namespace/name`: a collected pod that mounts it, a
    /// StatefulSet's `<template>-<statefulset>-<ordinal>`, else its name.
    fn claim(&self, namespace: &str, name: &str) -> App {
        let mounted_by = self
            .pods
            .values()
            .find(|p| p.namespace == namespace && p.claims.iter().any(|c| c == name));
        if let Some(p) = mounted_by {
            return self.pod(namespace, &p.name);
        }
        let statefulset = self
            .workloads
            .iter()
            .filter(|((ns, kind, _), _)| ns == namespace && kind == "StatefulSet")
            .filter(|((_, _, sts), _)| {
                name.rsplit_once('-').is_some_and(|(rest, ordinal)| {
                    is_ordinal(ordinal) && rest.ends_with(&format!("-{sts}"))
                })
            })
            .max_by_key(|((_, _, sts), _)| sts.len());
        match statefulset {
            Some((_, app)) => app.clone(),
            None => self.by_name(namespace, name),
        }
    }

    /// The known application whose name is the object's or its longest prefix before a `-`.
    fn by_name(&self, namespace: &str, name: &str) -> App {
        let mut prefix = name;
        loop {
            if let Some(app) = self.names.get(namespace).and_then(|n| n.get(prefix)) {
                return app.clone();
            }
            match prefix.rsplit_once('-') {
                Some((shorter, _)) if !shorter.is_empty() => prefix = shorter,
                _ => return App::namespace(namespace),
            }
        }
    }

    /// The application of an object the results file names.
    fn item(&self, item: &ResultItem) -> App {
        let ns = &item.namespace;
        let (Some(resource), Some(name)) = (&item.resource, &item.name) else {
            return App::namespace(ns);
        };
        match workload_kind(resource) {
            Some("Pod") => self.pod(ns, name),
            Some("PersistentVolumeClaim") => self.claim(ns, name),
            Some(kind) => self.workload(ns, kind, name),
            None => self.by_name(ns, name),
        }
    }
}

fn is_ordinal(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// The kind a results message's resource or kind names, for those an owner is found for.
fn workload_kind(resource: &str) -> Option<&'static str> {
    let kind = match resource.to_ascii_lowercase().as_str() {
        "pods" | "pod" => "Pod",
        "persistentvolumeclaims" | "persistentvolumeclaim" => "PersistentVolumeClaim",
        "deployments.apps" | "deployments" | "deployment" => "Deployment",
        "statefulsets.apps" | "statefulsets" | "statefulset" => "StatefulSet",
        "daemonsets.apps" | "daemonsets" | "daemonset" => "DaemonSet",
        "jobs.batch" | "jobs" | "job" => "Job",
        _ => return None,
    };
    Some(kind)
}

/// The top of a pod's owner chain: a ReplicaSet `<deployment>-<pod-template-hash>` is its
/// Deployment's, as the Deployment controller names it.
fn top_owner(pod: &WorkloadPodEvidence) -> Option<(String, String)> {
    let (kind, name) = pod.owner.clone()?;
    if kind == "ReplicaSet"
        && let Some(hash) = &pod.template_hash
        && let Some(deployment) = name.strip_suffix(&format!("-{hash}"))
        && !deployment.is_empty()
    {
        return Some(("Deployment".to_string(), deployment.to_string()));
    }
    Some((kind, name))
}

/// Why a pod is not Ready, in a word or two: unschedulable, a container waiting, its phase.
fn not_ready_reason(p: &WorkloadPodEvidence) -> String {
    if let Some((reason, _)) = &p.unschedulable {
        return cap(&format!("{}, {reason}", p.phase), MAX_REASON_BYTES);
    }
    match p.waiting.iter().find(|w| !w.reason.is_empty()) {
        Some(w) => cap(
            &format!("{}, {} waiting: {}", p.phase, w.name, w.reason),
            MAX_REASON_BYTES,
        ),
        None => cap(&format!("{}, not Ready", p.phase), MAX_REASON_BYTES),
    }
}

/// The 1-based positions of the findings about any of `keys` (in `explains` or `subjects`).
fn findings_about(findings: &[Finding], keys: &[String]) -> Vec<usize> {
    findings
        .iter()
        .enumerate()
        .filter(|(_, f)| {
            keys.iter()
                .any(|k| f.explains.contains(k) || f.subjects.contains(k))
        })
        .map(|(i, _)| i + 1)
        .collect()
}

/// The findings that quote a message of the item's group (the same failure of another
/// object), or name the object itself.
fn findings_quoting(findings: &[Finding], group: Option<&str>, object: Option<&str>) -> Vec<usize> {
    findings
        .iter()
        .enumerate()
        .filter(|(_, f)| {
            let quoted = group_key(f.quote.trim_end_matches('…'));
            group.is_some_and(|g| !quoted.is_empty() && g.starts_with(&quoted))
                || object.is_some_and(|o| f.quote.contains(o))
        })
        .map(|(i, _)| i + 1)
        .collect()
}

/// The applications seen so far, each with its damage.
#[derive(Default)]
struct Ledger(BTreeMap<App, AppDamage>);

impl Ledger {
    fn entry(&mut self, app: App) -> &mut AppDamage {
        self.0.entry(app).or_insert_with_key(AppDamage::new)
    }
}

/// The damage by application, from the evidence and the ranked findings.
pub(crate) fn damage(e: &Evidence, findings: &[Finding]) -> Damage {
    let owners = Owners::new(e);
    let mut ledger = Ledger::default();
    for a in &e.applications {
        ledger.entry(owners.workload(&a.namespace, &a.kind, &a.name));
    }
    items(e, findings, &owners, &mut ledger);
    volumes(e, findings, &owners, &mut ledger);
    for p in e
        .workload_pods
        .iter()
        .filter(|p| !p.ready && p.phase != "Succeeded")
    {
        let cited = findings_about(findings, &[format!("pod/{}", p.key())]);
        let d = ledger.entry(owners.pod(&p.namespace, &p.name));
        d.pods_not_ready += 1;
        if d.not_ready_pods.len() < MAX_PODS_PER_APPLICATION {
            d.not_ready_pods.push(NotReadyPod {
                name: p.name.clone(),
                reason: not_ready_reason(p),
            });
        }
        d.cite(cited);
    }
    let mut applications: Vec<AppDamage> = ledger.0.into_values().collect();
    for d in &mut applications {
        d.findings.sort_unstable();
    }
    // The most damaged first; whole ones last; by kind, namespace and name within.
    applications.sort_by_key(|d| {
        let hurt = d.items_failed + u64::from(d.volumes_failed) + u64::from(d.pods_not_ready);
        (std::cmp::Reverse(hurt), std::cmp::Reverse(d.items_warned))
    });
    Damage {
        applications,
        items_left_out: e.results.items_left_out,
        operations_left_out: e.operations_left_out,
    }
}

/// The objects of the results file's errors and warnings.
fn items(e: &Evidence, findings: &[Finding], owners: &Owners, ledger: &mut Ledger) {
    for item in &e.results.items {
        let group = item.group.and_then(|i| e.results.groups.get(i));
        let object = item
            .resource
            .as_ref()
            .zip(item.name.as_ref())
            .map(|(r, n)| format!("{r}/{}/{n}", item.namespace));
        let mut cited =
            findings_quoting(findings, group.map(|g| g.key.as_str()), object.as_deref());
        let kind = item.resource.as_deref().and_then(workload_kind);
        if let (Some("Pod"), Some(name)) = (kind, &item.name) {
            let pod = format!("pod/{}/{name}", item.namespace);
            cited.extend(findings_about(findings, &[pod]));
        }
        let d = ledger.entry(owners.item(item));
        if item.severity == "error" {
            d.items_failed += 1;
        } else {
            d.items_warned += 1;
        }
        d.cite(cited);
    }
}

/// The volume operations that did not complete, and every operation's pod or claim for the
/// totals (unknown when the evidence could not count them all).
fn volumes(e: &Evidence, findings: &[Finding], owners: &Owners, ledger: &mut Ledger) {
    let subject_app = |subject: &str| -> Option<App> {
        let (what, rest) = subject.split_once('/')?;
        let (ns, name) = rest.split_once('/')?;
        Some(match what {
            "pod" => owners.pod(ns, name),
            _ => owners.claim(ns, name),
        })
    };
    let mut failed_apps = BTreeSet::new();
    for op in &e.operations {
        let subject = match (&op.pod, &op.namespace, &op.volume) {
            (Some(pod), _, _) => format!("pod/{pod}"),
            (None, Some(ns), Some(claim)) => format!("pvc/{ns}/{claim}"),
            _ => continue,
        };
        let Some(app) = subject_app(&subject) else {
            continue;
        };
        let mut keys = vec![op.key()];
        keys.extend(op.pod.as_ref().map(|p| format!("pod/{p}")));
        let cited = findings_about(findings, &keys);
        failed_apps.insert(app.clone());
        let d = ledger.entry(app);
        d.volumes_failed += 1;
        d.cite(cited);
    }
    if e.volume_totals_cut || e.operations_left_out > 0 {
        return;
    }
    let mut totals: BTreeMap<App, u32> = BTreeMap::new();
    for (subject, n) in &e.volume_totals {
        if let Some(app) = subject_app(subject) {
            *totals.entry(app).or_default() += n;
        }
    }
    for app in failed_apps {
        let total = totals.get(&app).copied();
        let d = ledger.entry(app);
        // A total below the failures counted means operations without a pod or claim.
        d.volumes_total = total.filter(|t| *t >= d.volumes_failed);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::findings::{diagnose, rules::tests::load};

    fn number_of(findings: &[Finding], rule: &str) -> usize {
        1 + findings
            .iter()
            .position(|f| f.rule == rule)
            .unwrap_or_else(|| panic!("no {rule} finding"))
    }

    fn find<'a>(damage: &'a Damage, kind: &str, name: &str) -> &'a AppDamage {
        damage
            .applications
            .iter()
            .find(|d| d.kind == kind && d.name == name)
            .unwrap_or_else(|| panic!("no {kind} {name} in {damage:#?}"))
    }

    #[test]
    fn a_restore_of_three_applications_counts_each_ones_damage() {
        let e = load("damage-three-apps");
        let findings = diagnose(&e);
        let d = damage(&e, &findings);
        let kinds: Vec<(&str, &str)> = d
            .applications
            .iter()
            .map(|a| (a.kind.as_str(), a.name.as_str()))
            .collect();
        // The damaged first, the one restored whole last.
        assert_eq!(
            kinds,
            [
                (HELM_RELEASE, "api"),
                ("StatefulSet", "db"),
                (NAMESPACE, "shop"),
                ("Deployment", "web")
            ]
        );
        let api = find(&d, HELM_RELEASE, "api");
        assert_eq!((api.items_failed, api.items_warned), (1, 0));
        assert_eq!(api.findings, [number_of(&findings, "quota-exceeded")]);
        let db = find(&d, "StatefulSet", "db");
        assert_eq!((db.volumes_failed, db.volumes_total), (1, Some(2)));
        assert!(
            db.findings
                .contains(&number_of(&findings, "volume-operation-failed"))
        );
        let shop = find(&d, NAMESPACE, "shop");
        assert_eq!(shop.items_warned, 1);
        assert_eq!(shop.findings, [number_of(&findings, "already-exists")]);
        assert!(find(&d, "Deployment", "web").is_whole());
    }

    fn pod(
        name: &str,
        metadata: serde_json::Value,
        status: serde_json::Value,
    ) -> serde_json::Value {
        let mut metadata = metadata;
        metadata["name"] = json!(name);
        metadata["namespace"] = json!("shop");
        json!({"metadata": metadata, "spec": {"volumes": [
            {"name": "data", "persistentVolumeClaim": {"claimName": format!("data-{name}")}}
        ]}, "status": status})
    }

    #[test]
    fn pods_and_claims_find_their_application_through_owners_and_names() {
        let mut e = Evidence::default();
        e.set_target(
            "resources/restore.yaml",
            &json!({"kind": "Restore", "metadata": {"name": "r"}, "status": {"phase": "PartiallyFailed"}}),
        );
        e.add_application(
            "StatefulSet",
            &json!({"metadata": {"name": "db", "namespace": "shop"}}),
        );
        let unschedulable = json!({"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/3 nodes"}]});
        // Owned by its ReplicaSet `<deployment>-<pod-template-hash>`, not yet adopted, or
        // Helm-labelled without an owner.
        let owned = json!({"labels": {"pod-template-hash": "5c9f7"}, "ownerReferences": [
            {"kind": "ReplicaSet", "name": "web-5c9f7", "controller": true}]});
        e.add_workload_pod("p1", &pod("web-5c9f7-x2x4q", owned, unschedulable.clone()));
        e.add_workload_pod("p2", &pod("db-1", json!({}), json!({"phase": "Running"})));
        let helm = json!({"annotations": {"meta.helm.sh/release-name": "cache"}});
        e.add_workload_pod("p3", &pod("redis-0", helm, unschedulable));
        for object in [
            "persistentvolumeclaims/shop/data-db-2",
            "pods/shop/db-3",
            "secrets/shop/cache-auth",
            "secrets/shop/other",
        ] {
            e.results.add(
                "object-store/results.json",
                "errors",
                "namespace shop",
                &format!("error restoring {object}: admission webhook denied the request"),
            );
        }
        let d = damage(&e, &[]);
        let web = find(&d, "Deployment", "web");
        assert_eq!(web.pods_not_ready, 1);
        assert_eq!(
            web.not_ready_pods[0],
            NotReadyPod {
                name: "web-5c9f7-x2x4q".into(),
                reason: "Pending, Unschedulable".into()
            }
        );
        // db-1 by its name; the claim data-db-2 by the StatefulSet's pattern; pod db-3 by name.
        let db = find(&d, "StatefulSet", "db");
        assert_eq!((db.pods_not_ready, db.items_failed), (1, 2));
        assert_eq!(db.not_ready_pods[0].reason, "Running, not Ready");
        // A release's objects by its pods' annotation and by the release's name.
        let cache = find(&d, HELM_RELEASE, "cache");
        assert_eq!((cache.pods_not_ready, cache.items_failed), (1, 1));
        assert_eq!(find(&d, NAMESPACE, "shop").items_failed, 1);
    }

    #[test]
    fn thousands_of_applications_stay_bounded() {
        let mut e = Evidence::default();
        for i in 0..20_000 {
            e.results.add(
                "object-store/results.json",
                "errors",
                &format!("namespace ns-{i}"),
                &format!(
                    "error restoring configmaps/ns-{i}/{}: exceeded quota: q",
                    "n".repeat(300)
                ),
            );
        }
        let d = damage(&e, &[]);
        assert!(d.applications.len() <= 2000, "{}", d.applications.len());
        assert_eq!(d.items_left_out, 18_000);
        assert!(d.applications.iter().all(|a| a.name.len() <= 253));
    }
}

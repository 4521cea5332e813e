//! Where a DaemonSet may place its pods, as the scheduler decides it: the node's taints against
//! the pod's tolerations, and its labels against the nodeSelector and the required node
//! affinity. Used to say why a node has no node-agent. Pure, on the objects' JSON.

use std::{collections::BTreeMap, fmt};

use serde_json::Value;

/// Taints kept per node (a node with more is unusual; the YAML has them all).
const MAX_TAINTS: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Taint {
    pub key: String,
    pub value: String,
    pub effect: String,
}

impl fmt::Display for Taint {
    /// As kubectl writes it: `key=value:Effect`, or `key:Effect` without a value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.value.is_empty() {
            write!(f, "{}:{}", self.key, self.effect)
        } else {
            write!(f, "{}={}:{}", self.key, self.value, self.effect)
        }
    }
}

impl Taint {
    /// Taints that keep new pods off a node (NoSchedule) or evict them (NoExecute);
    /// PreferNoSchedule only steers the scheduler.
    fn repels(&self) -> bool {
        matches!(self.effect.as_str(), "NoSchedule" | "NoExecute")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Toleration {
    /// Empty: every key (operator Exists).
    pub key: String,
    /// `Exists` or `Equal` (the default when empty).
    pub operator: String,
    pub value: String,
    /// Empty: every effect.
    pub effect: String,
}

impl Toleration {
    fn exists(key: &str, effect: &str) -> Self {
        Self {
            key: key.into(),
            operator: "Exists".into(),
            value: String::new(),
            effect: effect.into(),
        }
    }
}

/// Whether `toleration` tolerates `taint`, as Kubernetes' `Toleration.ToleratesTaint`.
pub(crate) fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    if !toleration.effect.is_empty() && toleration.effect != taint.effect {
        return false;
    }
    if !toleration.key.is_empty() && toleration.key != taint.key {
        return false;
    }
    match toleration.operator.as_str() {
        "Exists" => true,
        "" | "Equal" => toleration.value == taint.value,
        _ => false,
    }
}

/// The taints among `taints` that no toleration tolerates and that keep a pod off the node.
pub(crate) fn untolerated<'a>(taints: &'a [Taint], tolerations: &[Toleration]) -> Vec<&'a Taint> {
    taints
        .iter()
        .filter(|t| t.repels() && !tolerations.iter().any(|tol| tolerates(tol, t)))
        .collect()
}

/// The tolerations the DaemonSet controller adds to every pod it makes, beside the template's
/// (kubernetes pkg/controller/daemon/util `AddOrUpdateDaemonPodTolerations`): a DaemonSet pod
/// is not kept off a node for being not ready, unreachable, under pressure or cordoned.
fn daemonset_tolerations(host_network: bool) -> Vec<Toleration> {
    let mut added = vec![
        Toleration::exists("node.kubernetes.io/not-ready", "NoExecute"),
        Toleration::exists("node.kubernetes.io/unreachable", "NoExecute"),
        Toleration::exists("node.kubernetes.io/disk-pressure", "NoSchedule"),
        Toleration::exists("node.kubernetes.io/memory-pressure", "NoSchedule"),
        Toleration::exists("node.kubernetes.io/pid-pressure", "NoSchedule"),
        Toleration::exists("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    if host_network {
        added.push(Toleration::exists(
            "node.kubernetes.io/network-unavailable",
            "NoSchedule",
        ));
    }
    added
}

/// One requirement of a node selector term: a label (or, for `matchFields`, `metadata.name`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Requirement {
    pub key: String,
    pub operator: String,
    pub values: Vec<String>,
}

impl Requirement {
    /// Whether a node whose `key` is `value` (None: absent) meets it.
    fn holds(&self, value: Option<&str>) -> bool {
        let number = |v: &str| v.parse::<i64>().ok();
        match (self.operator.as_str(), value) {
            ("In", Some(v)) => self.values.iter().any(|w| w == v),
            ("In", None) => false,
            ("NotIn", Some(v)) => !self.values.iter().any(|w| w == v),
            ("NotIn", None) => true,
            ("Exists", v) => v.is_some(),
            ("DoesNotExist", v) => v.is_none(),
            ("Gt" | "Lt", Some(v)) => {
                let (Some(have), Some(bound)) =
                    (number(v), self.values.first().and_then(|b| number(b)))
                else {
                    return false;
                };
                if self.operator == "Gt" {
                    have > bound
                } else {
                    have < bound
                }
            }
            _ => false,
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.values.is_empty() {
            write!(f, "{} {}", self.key, self.operator)
        } else {
            write!(
                f,
                "{} {} [{}]",
                self.key,
                self.operator,
                self.values.join(",")
            )
        }
    }
}

/// A term of the required node affinity: every requirement must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Term {
    pub labels: Vec<Requirement>,
    /// `matchFields`: only `metadata.name` exists.
    pub fields: Vec<Requirement>,
}

impl Term {
    /// The first requirement the node does not meet; a term with no requirement matches no
    /// node (as the API defines an empty term).
    fn unmet(&self, node: &NodeFacts) -> Option<String> {
        if self.labels.is_empty() && self.fields.is_empty() {
            return Some("an empty node affinity term".into());
        }
        for r in &self.labels {
            if !r.holds(node.labels.get(&r.key).map(String::as_str)) {
                return Some(r.to_string());
            }
        }
        for r in &self.fields {
            let value = (r.key == "metadata.name").then_some(node.name.as_str());
            if !r.holds(value) {
                return Some(r.to_string());
            }
        }
        None
    }
}

/// Why a pod would not be placed on a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Blocker {
    Taint(Taint),
    NodeSelector {
        key: String,
        wants: String,
        has: Option<String>,
    },
    /// The requirement that failed, of the first term (all terms failed).
    Affinity(String),
}

impl fmt::Display for Blocker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Blocker::Taint(t) => write!(f, "taint {t} is not tolerated"),
            Blocker::NodeSelector { key, wants, has } => match has {
                Some(has) => write!(f, "nodeSelector {key}={wants} (the node has {key}={has})"),
                None => write!(f, "nodeSelector {key}={wants} (the node has no {key})"),
            },
            Blocker::Affinity(r) => write!(f, "required node affinity {r} not met"),
        }
    }
}

/// What placement reads of a node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct NodeFacts {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

impl NodeFacts {
    /// From a Node's JSON.
    pub fn of_node(node: &Value) -> Self {
        let labels = node["metadata"]["labels"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), text(v)))
            .collect();
        let taints = node["spec"]["taints"]
            .as_array()
            .into_iter()
            .flatten()
            .take(MAX_TAINTS)
            .map(|t| Taint {
                key: text(&t["key"]),
                value: text(&t["value"]),
                effect: text(&t["effect"]),
            })
            .collect();
        Self {
            name: text(&node["metadata"]["name"]),
            labels,
            taints,
        }
    }
}

/// What decides the nodes a DaemonSet's pods may run on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Placement {
    /// The template's, and those the DaemonSet controller adds.
    pub tolerations: Vec<Toleration>,
    pub node_selector: BTreeMap<String, String>,
    /// The required node affinity's terms (any one must match); None: no required affinity.
    pub required_terms: Option<Vec<Term>>,
}

fn requirements(list: &Value) -> Vec<Requirement> {
    list.as_array()
        .into_iter()
        .flatten()
        .map(|r| Requirement {
            key: text(&r["key"]),
            operator: text(&r["operator"]),
            values: r["values"]
                .as_array()
                .into_iter()
                .flatten()
                .map(text)
                .collect(),
        })
        .collect()
}

impl Placement {
    /// From a DaemonSet's JSON (its pod template).
    pub fn of_daemonset(ds: &Value) -> Self {
        let spec = &ds["spec"]["template"]["spec"];
        let mut tolerations: Vec<Toleration> = spec["tolerations"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| Toleration {
                key: text(&t["key"]),
                operator: text(&t["operator"]),
                value: text(&t["value"]),
                effect: text(&t["effect"]),
            })
            .collect();
        tolerations.extend(daemonset_tolerations(
            spec["hostNetwork"].as_bool().unwrap_or(false),
        ));
        let node_selector = spec["nodeSelector"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), text(v)))
            .collect();
        let required = &spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            ["nodeSelectorTerms"];
        let required_terms = required.as_array().map(|terms| {
            terms
                .iter()
                .map(|t| Term {
                    labels: requirements(&t["matchExpressions"]),
                    fields: requirements(&t["matchFields"]),
                })
                .collect()
        });
        Self {
            tolerations,
            node_selector,
            required_terms,
        }
    }

    /// Everything that keeps this DaemonSet's pod off `node`; empty when it may run there.
    pub fn blockers(&self, node: &NodeFacts) -> Vec<Blocker> {
        let mut found: Vec<Blocker> = untolerated(&node.taints, &self.tolerations)
            .into_iter()
            .map(|t| Blocker::Taint(t.clone()))
            .collect();
        for (key, wants) in &self.node_selector {
            let has = node.labels.get(key);
            if has != Some(wants) {
                found.push(Blocker::NodeSelector {
                    key: key.clone(),
                    wants: wants.clone(),
                    has: has.cloned(),
                });
            }
        }
        if let Some(terms) = &self.required_terms {
            let unmet: Vec<String> = terms.iter().filter_map(|t| t.unmet(node)).collect();
            // Terms are ORed: the affinity fails only when every term does (or there are none).
            if unmet.len() == terms.len() {
                let first = unmet
                    .into_iter()
                    .next()
                    .unwrap_or_else(|| "no node affinity term".into());
                found.push(Blocker::Affinity(first));
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn taint(key: &str, value: &str, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            value: value.into(),
            effect: effect.into(),
        }
    }

    fn toleration(key: &str, operator: &str, value: &str, effect: &str) -> Toleration {
        Toleration {
            key: key.into(),
            operator: operator.into(),
            value: value.into(),
            effect: effect.into(),
        }
    }

    #[test]
    fn tolerations_match_as_kubernetes_matches_them() {
        let db = taint("dedicated", "db", "NoSchedule");
        // Equal (explicit or by default) needs the same value; Exists any value.
        assert!(tolerates(
            &toleration("dedicated", "Equal", "db", "NoSchedule"),
            &db
        ));
        assert!(tolerates(&toleration("dedicated", "", "db", ""), &db));
        assert!(!tolerates(
            &toleration("dedicated", "Equal", "web", "NoSchedule"),
            &db
        ));
        assert!(tolerates(
            &toleration("dedicated", "Exists", "", "NoSchedule"),
            &db
        ));
        // Another effect, another key: no.
        assert!(!tolerates(
            &toleration("dedicated", "Exists", "", "NoExecute"),
            &db
        ));
        assert!(!tolerates(&toleration("gpu", "Exists", "", ""), &db));
        // An empty key with Exists tolerates everything.
        assert!(tolerates(&toleration("", "Exists", "", ""), &db));
        // An unknown operator tolerates nothing.
        assert!(!tolerates(&toleration("dedicated", "In", "db", ""), &db));
    }

    #[test]
    fn only_taints_that_repel_pods_count() {
        let taints = [
            taint("dedicated", "db", "NoSchedule"),
            taint("maintenance", "", "NoExecute"),
            taint("soft", "", "PreferNoSchedule"),
        ];
        let left = untolerated(&taints, &[toleration("dedicated", "Exists", "", "")]);
        assert_eq!(left, [&taints[1]]);
        assert_eq!(left[0].to_string(), "maintenance:NoExecute");
        assert_eq!(taints[0].to_string(), "dedicated=db:NoSchedule");
    }

    fn node(labels: serde_json::Value, taints: serde_json::Value) -> NodeFacts {
        NodeFacts::of_node(&json!({
            "metadata": {"name": "worker-3", "labels": labels},
            "spec": {"taints": taints}
        }))
    }

    #[test]
    fn a_daemonset_is_not_kept_off_a_cordoned_or_not_ready_node() {
        let placement = Placement::of_daemonset(&json!({"spec": {"template": {"spec": {}}}}));
        let cordoned = node(
            json!({}),
            json!([
                {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
                {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}
            ]),
        );
        assert!(placement.blockers(&cordoned).is_empty());
        // network-unavailable only for hostNetwork pods.
        let no_network = node(
            json!({}),
            json!([{"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}]),
        );
        assert_eq!(placement.blockers(&no_network).len(), 1);
        let host = Placement::of_daemonset(
            &json!({"spec": {"template": {"spec": {"hostNetwork": true}}}}),
        );
        assert!(host.blockers(&no_network).is_empty());
    }

    #[test]
    fn blockers_name_the_taint_the_selector_and_the_affinity() {
        // Velero's own node-agent: affinity kubernetes.io/os NotIn [windows].
        let ds = json!({"spec": {"template": {"spec": {
            "nodeSelector": {"pool": "backup"},
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "web", "effect": "NoSchedule"}],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "kubernetes.io/os", "operator": "NotIn", "values": ["windows"]}
                ]}]
            }}}
        }}}});
        let placement = Placement::of_daemonset(&ds);
        let fits = node(
            json!({"pool": "backup", "kubernetes.io/os": "linux"}),
            json!([{"key": "dedicated", "value": "web", "effect": "NoSchedule"}]),
        );
        assert!(placement.blockers(&fits).is_empty());
        let windows_db = node(
            json!({"kubernetes.io/os": "windows"}),
            json!([{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]),
        );
        let why: Vec<String> = placement
            .blockers(&windows_db)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            why,
            [
                "taint dedicated=db:NoSchedule is not tolerated",
                "nodeSelector pool=backup (the node has no pool)",
                "required node affinity kubernetes.io/os NotIn [windows] not met",
            ]
        );
    }

    #[test]
    fn affinity_terms_are_ored_and_requirements_anded() {
        let ds = json!({"spec": {"template": {"spec": {"affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [
                    {"key": "zone", "operator": "In", "values": ["a"]},
                    {"key": "cpus", "operator": "Gt", "values": ["8"]}
                ]},
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["worker-3"]}]}
            ]}
        }}}}}});
        let placement = Placement::of_daemonset(&ds);
        // The second term names the node.
        assert!(placement.blockers(&node(json!({}), json!([]))).is_empty());
        let mut other = node(json!({"zone": "a", "cpus": "16"}), json!([]));
        other.name = "worker-4".into();
        assert!(placement.blockers(&other).is_empty());
        other.labels.insert("cpus".into(), "4".into());
        assert_eq!(
            placement.blockers(&other),
            [Blocker::Affinity("cpus Gt [8]".into())]
        );
        // Exists/DoesNotExist, and an empty term matches nothing.
        let r = |op: &str| Requirement {
            key: "k".into(),
            operator: op.into(),
            values: vec![],
        };
        assert!(r("Exists").holds(Some("")) && !r("Exists").holds(None));
        assert!(r("DoesNotExist").holds(None));
        assert!(Term::default().unmet(&other).is_some());
    }
}

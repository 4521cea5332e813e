//! What the bundle could not collect (manifest.json's `notCollected`, written by the operator):
//! a list of such a kind answers with a warning naming why, not a silent empty list. kubectl
//! prints the warning on stderr ("Warning: pods of namespace shop were not collected: ...").

use velero_debug_crd::manifest::NotCollected;

use super::kinds::Kind;

#[derive(Debug, Default)]
pub(crate) struct Coverage {
    gaps: Vec<NotCollected>,
    /// Plurals the bundle holds at least one object of.
    held: Vec<String>,
}

impl Coverage {
    pub(crate) fn new(gaps: Vec<NotCollected>, held: Vec<String>) -> Coverage {
        Coverage { gaps, held }
    }

    /// The warnings a list of `kind` in `namespace` (None: all namespaces) carries.
    pub(crate) fn warnings(&self, kind: &Kind, namespace: Option<&str>) -> Vec<String> {
        let mut out: Vec<String> = self
            .gaps
            .iter()
            .filter(|g| g.resource == kind.plural)
            // A gap across namespaces (a cluster-wide list refused) is not one of a namespace:
            // the operator then reads namespace by namespace what it may.
            .filter(|g| match (namespace, g.namespace.as_deref()) {
                (Some(asked), Some(gap)) => asked == gap,
                (Some(_), None) => false,
                (None, _) => true,
            })
            .map(|g| match &g.namespace {
                Some(ns) => format!(
                    "{} of namespace {ns} were not collected: {}",
                    g.resource, g.reason
                ),
                None => format!(
                    "{} of all namespaces were not collected: {}",
                    g.resource, g.reason
                ),
            })
            .collect();
        if out.is_empty() && !self.held.contains(&kind.plural) && kind.kind != "DownloadRequest" {
            out.push(format!(
                "the bundle holds no {}: none existed or the operator does not collect them",
                kind.plural
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::kinds;
    use velero_debug_crd::manifest::Manifest;

    fn gaps(manifest: &str) -> Vec<NotCollected> {
        serde_json::from_str::<Manifest>(manifest)
            .unwrap()
            .not_collected
    }

    #[test]
    fn a_gap_of_the_asked_namespace_or_all_namespaces_is_warned() {
        let manifest = r#"{"notCollected": [
            {"resource": "pods", "namespace": "shop", "reason": "rbac.workloadNamespaces"}]}"#;
        let c = Coverage::new(gaps(manifest), vec!["pods".into(), "events".into()]);
        let all = kinds::known();
        let pods = all.iter().find(|k| k.plural == "pods").unwrap();
        assert_eq!(
            c.warnings(pods, Some("shop")),
            ["pods of namespace shop were not collected: rbac.workloadNamespaces"]
        );
        assert_eq!(c.warnings(pods, None).len(), 1);
        let across = r#"{"notCollected": [{"resource": "pods", "reason": "forbidden"}]}"#;
        let c2 = Coverage::new(gaps(across), vec!["pods".into()]);
        assert!(c2.warnings(pods, Some("velero")).is_empty());
        assert_eq!(
            c2.warnings(pods, None),
            ["pods of all namespaces were not collected: forbidden"]
        );
        assert!(c.warnings(pods, Some("velero")).is_empty());
        let cms = all.iter().find(|k| k.plural == "configmaps").unwrap();
        assert!(c.warnings(cms, Some("shop"))[0].contains("holds no configmaps"));
        let events = all.iter().find(|k| k.plural == "events").unwrap();
        assert!(c.warnings(events, None).is_empty());
    }
}

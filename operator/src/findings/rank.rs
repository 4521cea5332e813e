//! Ranking: lower layers first (a platform failure explains everything above it), errors
//! before warnings, then the rules' own order. A finding about something an earlier finding
//! explains is that cause's consequence: it goes after all the causes and names its cause.
//! A timeout is a consequence of what it waited on wherever that is explained, even by a
//! finding of a higher layer (a claim Pending explains the pod volume timeout it caused), and
//! then its next step no longer advises raising the timeout.

use super::Finding;

/// `found` in the order the rules produced them.
pub(crate) fn rank(mut found: Vec<Finding>) -> Vec<Finding> {
    // Stable: rules of one layer and severity keep the order they are listed in.
    found.sort_by_key(|f| (f.layer, f.severity));
    // cause[i]: the index (in `found`) of the root cause of finding i, if it has one.
    let mut cause: Vec<Option<usize>> = vec![None; found.len()];
    for i in 0..found.len() {
        let explained_by = (0..i).find(|&j| {
            found[i]
                .subjects
                .iter()
                .any(|s| found[j].explains.contains(s))
        });
        cause[i] = explained_by.map(|j| cause[j].unwrap_or(j));
    }
    explain_waits(&found, &mut cause);
    let (causes, consequences): (Vec<usize>, Vec<usize>) =
        (0..found.len()).partition(|&i| cause[i].is_none());
    let position = |i: usize| causes.iter().position(|&c| c == i).map(|p| p + 1);
    let order: Vec<(usize, Option<usize>)> = causes
        .iter()
        .map(|&i| (i, None))
        .chain(
            consequences
                .iter()
                .map(|&i| (i, cause[i].and_then(position))),
        )
        .collect();
    let mut slots: Vec<Option<Finding>> = found.into_iter().map(Some).collect();
    order
        .into_iter()
        .filter_map(|(i, of)| {
            let mut f = slots[i].take()?;
            f.consequence_of = of;
            if let (true, Some(cause)) = (f.waited, of) {
                f.next_step = Some(format!(
                    "It waited on what finding {cause} explains: fix that first. Raising the \
                     timeout would only make it wait longer."
                ));
            }
            Some(f)
        })
        .collect()
}

/// Gives each waited finding still without a cause the first other finding, in any position,
/// that explains one of its subjects and is not waited itself; whatever it explained follows
/// it to that cause.
fn explain_waits(found: &[Finding], cause: &mut [Option<usize>]) {
    for i in 0..found.len() {
        if !found[i].waited || cause[i].is_some() {
            continue;
        }
        let explained_by = (0..found.len()).find(|&j| {
            j != i
                && !found[j].waited
                && cause[j] != Some(i)
                && found[i]
                    .subjects
                    .iter()
                    .any(|s| found[j].explains.contains(s))
        });
        let Some(j) = explained_by else {
            continue;
        };
        let root = cause[j].unwrap_or(j);
        cause[i] = Some(root);
        for c in cause.iter_mut() {
            if *c == Some(i) {
                *c = Some(root);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::{Layer, Severity};

    fn finding(layer: Layer, severity: Severity, rule: &'static str) -> Finding {
        Finding::new(severity, layer, rule, rule, "q", "f")
    }

    #[test]
    fn lower_layers_and_errors_come_first() {
        let ranked = rank(vec![
            finding(Layer::Warnings, Severity::Warning, "already-exists"),
            finding(Layer::Items, Severity::Error, "quota-exceeded"),
            finding(Layer::Platform, Severity::Warning, "server-restarted"),
            finding(Layer::Platform, Severity::Error, "bsl-unavailable"),
        ]);
        let rules: Vec<&str> = ranked.iter().map(|f| f.rule).collect();
        assert_eq!(
            rules,
            [
                "bsl-unavailable",
                "server-restarted",
                "quota-exceeded",
                "already-exists"
            ]
        );
    }

    /// A pod volume timeout comes before the claim it waited on in layer order; the claim
    /// explains it all the same, and its next step stops advising a longer wait. The restore
    /// wait's timeout of an older Velero, and a CSI snapshot timeout explained by a snapshot
    /// controller finding of a lower layer, go the same way.
    #[test]
    fn a_timeout_follows_what_it_waited_on_whatever_the_layer() {
        let timeout = finding(
            Layer::VolumeOperations,
            Severity::Error,
            "pod-volume-timeout",
        )
        .waited_on(["pod/shop/db-0".to_string()])
        .next_step("raise --fs-backup-timeout");
        let canceled = finding(
            Layer::VolumeOperations,
            Severity::Error,
            "volume-operation-failed",
        )
        .waited_on(["pod/shop/db-0".to_string()])
        .explaining(["PodVolumeRestore/r-1".to_string()]);
        let item = finding(Layer::Items, Severity::Warning, "item-action-error")
            .about(["PodVolumeRestore/r-1".to_string()]);
        let claim = finding(Layer::Items, Severity::Error, "pvc-pending")
            .explaining(["pod/shop/db-0".to_string()]);
        let ranked = rank(vec![timeout, canceled, item, claim]);
        let view: Vec<(&str, Option<usize>)> =
            ranked.iter().map(|f| (f.rule, f.consequence_of)).collect();
        assert_eq!(
            view,
            [
                ("pvc-pending", None),
                ("pod-volume-timeout", Some(1)),
                ("volume-operation-failed", Some(1)),
                ("item-action-error", Some(1)),
            ]
        );
        let step = ranked[1].next_step.as_deref().unwrap_or_default();
        assert!(
            step.contains("finding 1") && !step.contains("--fs-backup-timeout"),
            "{step}"
        );
        // Nothing explains it: the timeout stands as the cause, with its own next step.
        let alone = rank(vec![
            finding(
                Layer::VolumeOperations,
                Severity::Error,
                "csi-snapshot-timeout",
            )
            .waited_on(["csi-snapshots".to_string()])
            .next_step("raise csiSnapshotTimeout"),
        ]);
        assert_eq!(alone[0].consequence_of, None);
        assert_eq!(
            alone[0].next_step.as_deref(),
            Some("raise csiSnapshotTimeout")
        );
    }

    #[test]
    fn a_cause_absorbs_what_it_explains_even_through_a_chain() {
        let panic = finding(Layer::DataPath, Severity::Error, "node-agent-restarted")
            .explaining(["node/n1".to_string()]);
        let failed = finding(
            Layer::VolumeOperations,
            Severity::Error,
            "volume-operation-failed",
        )
        .about(["node/n1".to_string(), "DataUpload/du1".to_string()])
        .explaining(["DataUpload/du1".to_string()]);
        let item_op = finding(
            Layer::VolumeOperations,
            Severity::Warning,
            "item-operation-failed",
        )
        .about(["DataUpload/du1".to_string()]);
        let unrelated =
            finding(Layer::Items, Severity::Error, "quota-exceeded").about(["node/n2".to_string()]);
        let ranked = rank(vec![item_op, unrelated, failed, panic]);
        let view: Vec<(&str, Option<usize>)> =
            ranked.iter().map(|f| (f.rule, f.consequence_of)).collect();
        assert_eq!(
            view,
            [
                ("node-agent-restarted", None),
                ("quota-exceeded", None),
                ("volume-operation-failed", Some(1)),
                ("item-operation-failed", Some(1)),
            ]
        );
    }
}

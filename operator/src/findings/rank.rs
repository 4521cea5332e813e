//! Ranking: lower layers first (a platform failure explains everything above it), errors
//! before warnings, then the rules' own order. A finding about something an earlier finding
//! explains is that cause's consequence: it goes after all the causes and names its cause.

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
            Some(f)
        })
        .collect()
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

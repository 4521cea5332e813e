//! Velero's own diagnosis of an expose that did not finish (`[Diagnose DU expose]` blocks,
//! 1.16+): when it says the data-path pod could not be scheduled, that pod is why the
//! operation waited until node-agent's prepare timeout canceled it.

use super::{Evidence, Finding, Layer, Severity};
use crate::findings::{
    next_steps,
    patterns::Pattern,
    text::cap,
    velero_config::{self, VeleroConfigMap},
};

/// The tag of each diagnosis block, and the operation it is about.
const TAGS: [(&str, &str); 4] = [
    ("[Diagnose DU expose]", "DataUpload"),
    ("[Diagnose DD expose]", "DataDownload"),
    ("[Diagnose PVB expose]", "PodVolumeBackup"),
    ("[Diagnose PVR expose]", "PodVolumeRestore"),
];

const UNSCHEDULABLE: &str = "reason Unschedulable, message ";
/// The setting of node-agent's ConfigMap that places data-path pods.
const LOAD_AFFINITY: &str = "loadAffinity";

pub(super) fn data_path_pod_unschedulable(e: &Evidence) -> Vec<Finding> {
    let mentions = e.mentions(Pattern::ExposePodUnschedulable);
    let Some(first) = mentions.first() else {
        return Vec::new();
    };
    let kind = TAGS
        .iter()
        .find(|(tag, _)| first.quote.contains(tag))
        .map(|(_, kind)| *kind);
    let why = first
        .quote
        .split_once(UNSCHEDULABLE)
        .map_or("", |(_, why)| why)
        .trim();
    // The operations of that kind still unfinished: they waited on this pod.
    let waiting: Vec<String> = e
        .operations
        .iter()
        .filter(|o| Some(o.kind.as_str()) == kind && o.phase != "Completed")
        .map(|o| o.key())
        .collect();
    let of = match waiting.as_slice() {
        [one] => format!(" of {one}"),
        _ => String::new(),
    };
    let title = format!(
        "The data-path pod{of} could not be scheduled: {}",
        cap(why, 160)
    );
    let ns = e.target.velero_namespace();
    let setting = velero_config::setting(
        &e.infra.velero_config_maps,
        VeleroConfigMap::NodeAgent,
        &[],
        LOAD_AFFINITY,
    );
    let said = setting.describe(ns, LOAD_AFFINITY);
    // The scheduler's first sentence says what no node offered; the ConfigMap's setting after
    // it, within the quote's 200 bytes.
    let sentence = why.split_once(". ").map_or(why, |(s, _)| s);
    let quote = match &said {
        Some(said) => format!(
            "PodScheduled False, Unschedulable: {}; {said}",
            cap(sentence, 90)
        ),
        None => first.quote.clone(),
    };
    let config_map = match setting {
        velero_config::Setting::Set { name, .. } => Some(name),
        _ => None,
    };
    vec![
        Finding::new(
            Severity::Error,
            Layer::DataPath,
            "data-path-pod-unschedulable",
            title,
            &quote,
            &first.file,
        )
        .at_line(first.line)
        .explaining(waiting)
        .next_step(next_steps::data_path_pod_unschedulable(
            config_map.as_deref(),
            ns,
        )),
    ]
}

#[cfg(test)]
#[path = "exposes_tests.rs"]
mod tests;

//! Diagnosis: rules over the evidence a bundle collected, naming the most probable cause of a
//! failed or troubled Backup/Restore first, with the quote and file that prove it.
//!
//! Pure: no I/O, no client. The collect step feeds an [`Evidence`] as it goes (objects, results,
//! item operations, and every log line through a [`LogScan`]); [`diagnose`] runs the rules and
//! ranks what they found by layer (platform, data-path infrastructure, volume operations,
//! items, warnings), a cause absorbing the findings it explains.

mod arguments;
mod damage;
mod evidence;
mod infrastructure;
mod last_words;
mod limit_ranges;
mod log_scan;
mod next_steps;
mod patterns;
mod placement;
mod rank;
mod results;
mod rules;
mod site_rules;
pub(crate) mod text;
pub(crate) mod timeline;
mod velero_config;
mod waiting;

use serde::Serialize;

pub(crate) use arguments::WorkloadArguments;
pub(crate) use damage::{
    AppDamage, Damage, HELM_RELEASE, MAX_MANIFEST_APPLICATIONS, NAMESPACE, damage,
};
pub(crate) use evidence::{
    Evidence, MissingLog, OperationEvidence, PodRole, StalledEvidence, TargetEvidence,
    restore_placed_by_its_pod,
};
pub(crate) use infrastructure::NODES_TABLE;
pub(crate) use log_scan::{LogRole, LogScan, LogSource, OperationScope};
pub(crate) use results::ResultGroups;
pub(crate) use site_rules::SiteRules;
pub(crate) use velero_config::{ConfigMapRead, VeleroConfigMap};

/// How bad it is for the operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Severity {
    /// Made the operation fail or lose data.
    Error,
    /// Worth knowing; the operation may still have done what was asked.
    Warning,
}

impl Severity {
    /// As serialized: `error` or `warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// Where in the stack a finding sits: a lower layer's failure explains those above it, so
/// findings are ranked by layer first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Layer {
    /// The Velero server, its plugins, the storage location, validation.
    Platform,
    /// node-agent, backup repositories.
    DataPath,
    /// PodVolumeBackups/Restores, DataUploads/Downloads, item operations, snapshots.
    VolumeOperations,
    /// Single objects: quota, webhooks, missing APIs, item actions, hooks.
    Items,
    /// Warnings only.
    Warnings,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Finding {
    pub severity: Severity,
    pub layer: Layer,
    /// Stable id, e.g. `bsl-unavailable`.
    pub rule: &'static str,
    /// One line.
    pub title: String,
    /// The evidence, quoted (at most [`text::MAX_QUOTE_BYTES`]).
    pub quote: String,
    /// The bundle file that proves it.
    pub file: String,
    /// 1-based line in `file`, when it is a log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// Operations (`Kind/name`), nodes (`node/<name>`) or the target (`target`) this finding
    /// explains: a finding about any of them ranked lower is its consequence.
    pub explains: Vec<String>,
    /// What this finding is about, in the same terms: absorbed when a cause explains any.
    #[serde(skip)]
    pub subjects: Vec<String>,
    /// A timeout, or an operation canceled when its wait ended: a consequence of whatever it
    /// waited on (its subjects) whenever any finding explains that, in whatever layer.
    #[serde(skip)]
    pub waited: bool,
    /// 1-based position of the cause that explains this finding, once ranked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consequence_of: Option<usize>,
    /// What to do about it, naming the object and the setting or command (Velero's docs for
    /// the version in use, cited at the rule). None rather than generic advice.
    #[serde(rename = "nextStep", skip_serializing_if = "Option::is_none")]
    pub next_step: Option<String>,
}

/// A next step is one or two lines (status keeps 512 characters).
pub const MAX_NEXT_STEP_CHARS: usize = 400;

impl Finding {
    /// A finding with the fields every rule sets; the rest start empty.
    pub fn new(
        severity: Severity,
        layer: Layer,
        rule: &'static str,
        title: impl Into<String>,
        quote: &str,
        file: &str,
    ) -> Self {
        Self {
            severity,
            layer,
            rule,
            title: text::cap(&title.into(), 160),
            quote: text::quote(quote),
            file: file.to_string(),
            line: None,
            explains: Vec::new(),
            subjects: Vec::new(),
            waited: false,
            consequence_of: None,
            next_step: None,
        }
    }

    pub fn next_step(mut self, step: impl Into<String>) -> Self {
        self.next_step = Some(text::cap(&step.into(), MAX_NEXT_STEP_CHARS));
        self
    }

    pub fn with_next_step(self, step: Option<String>) -> Self {
        match step {
            Some(step) => self.next_step(step),
            None => self,
        }
    }

    pub fn at_line(mut self, line: Option<u64>) -> Self {
        self.line = line;
        self
    }

    pub fn explaining(mut self, explains: impl IntoIterator<Item = String>) -> Self {
        self.explains.extend(explains);
        self.explains.sort();
        self.explains.dedup();
        self
    }

    pub fn about(mut self, subjects: impl IntoIterator<Item = String>) -> Self {
        self.subjects.extend(subjects);
        self
    }

    /// Marks a timeout (or what a timeout ended) that waited on `subjects` (rank.rs).
    pub fn waited_on(mut self, subjects: impl IntoIterator<Item = String>) -> Self {
        self.waited = true;
        self.about(subjects)
    }

    /// [`waited_on`](Self::waited_on) when `waited`.
    pub fn waited_on_if(self, waited: bool, subjects: impl IntoIterator<Item = String>) -> Self {
        if waited {
            self.waited_on(subjects)
        } else {
            self
        }
    }
}

/// Every finding the evidence supports, most probable cause first; consequences after the
/// causes, each naming its cause.
#[cfg(test)]
pub(crate) fn diagnose(evidence: &Evidence) -> Vec<Finding> {
    diagnose_with(evidence, &SiteRules::default())
}

/// [`diagnose`] with the site's own rules, which speak before the fallbacks do.
pub(crate) fn diagnose_with(evidence: &Evidence, site: &SiteRules) -> Vec<Finding> {
    rank::rank(rules::run(evidence, site))
}

/// "1 time" / "3 times".
pub(crate) fn plural_times(n: u64) -> String {
    if n == 1 {
        "1 time".to_string()
    } else {
        format!("{n} times")
    }
}

/// `node/<name>`: how findings name a node in `explains`.
pub(crate) fn node_key(node: &str) -> String {
    format!("node/{node}")
}

/// How findings name the Backup or Restore itself.
pub(crate) const TARGET_KEY: &str = "target";

/// How findings name the target's CSI snapshots: a snapshot content in error explains Velero
/// timing out waiting for them, and the item action that failed for it.
pub(crate) const CSI_SNAPSHOTS_KEY: &str = "csi-snapshots";

/// How findings name "the plugins" (a crashed plugin explains calls into it that failed).
pub(crate) const PLUGIN_KEY: &str = "plugins";

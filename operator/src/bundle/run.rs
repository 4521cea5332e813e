//! One pass of the pipeline over an unfinished bundle: the status it has, written as it
//! changes, the events it publishes and the collection slot it holds until its last status
//! is written.

use jiff::Timestamp;
use kube::{Api, Resource, ResourceExt, runtime::events::EventType};
use tokio::sync::OwnedSemaphorePermit;
use velero_debug_crd::{DebugBundle, DebugBundleStatus};

use super::{
    diagnosis::{self, Diagnosis},
    status::Transition,
};
use crate::{
    context::{Context, MANAGER, NotLeading},
    kubernetes,
    metrics::InFlight,
    velero::Target,
};
use velero_debug_crd::StatusFinding;

/// Why a status was not written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WriteError {
    #[error(transparent)]
    Api(#[from] kube::Error),
    #[error(transparent)]
    NotLeading(#[from] NotLeading),
}

pub(crate) struct Run<'a> {
    pub ctx: &'a Context,
    pub bundle: &'a DebugBundle,
    /// The status last written (or read): each new one builds on it.
    status: DebugBundleStatus,
    /// `restore/<name>` or `backup/<name>`, once the spec names one.
    target: String,
    /// Held from the start of collection until the run ends, so at most `concurrency`
    /// bundles ever show Collecting or Uploading at once; counted in flight meanwhile.
    slot: Option<HeldSlot<'a>>,
    /// The findings of the archive this pass built, once built.
    diagnosis: Option<Diagnosis>,
    /// The bundle's resourceVersion as this run last saw it: the watch's copy, then what each
    /// of its own status writes stored.
    resource_version: Option<String>,
}

/// The stored bundle against the copy a run started from (`Run::stored`).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Stored {
    /// Nothing has changed it since: the run's view is the stored one.
    AsSeen,
    /// Changed since: the watch's copy trailed the pass before this one (its last status
    /// writes not yet seen). The watch brings the newer copy, with a reconcile of its own.
    Newer,
    /// Gone or being deleted: the finalizer's cleanup comes next.
    Deleting,
}

impl<'a> Run<'a> {
    pub fn new(ctx: &'a Context, bundle: &'a DebugBundle) -> Self {
        Self {
            ctx,
            bundle,
            status: bundle.status.clone().unwrap_or_default(),
            target: String::new(),
            slot: None,
            diagnosis: None,
            resource_version: bundle.metadata.resource_version.clone(),
        }
    }

    pub fn status(&self) -> &DebugBundleStatus {
        &self.status
    }

    pub fn target(&self) -> &str {
        &self.target
    }

    pub fn set_target(&mut self, target: &Target) {
        self.target = target.display();
    }

    pub fn api(&self) -> Api<DebugBundle> {
        Api::namespaced(
            self.ctx.client.clone(),
            &self.bundle.namespace().unwrap_or_default(),
        )
    }

    /// Builds the next status from the current one and writes it whole; nothing once this
    /// process's term is over (the next leader redoes the work).
    pub async fn write(
        &mut self,
        next: impl FnOnce(&Transition<'_>) -> DebugBundleStatus,
    ) -> Result<(), WriteError> {
        let status = next(&Transition {
            prev: &self.status,
            generation: self.bundle.metadata.generation.unwrap_or(0),
            target: &self.target,
            now: Timestamp::now(),
        });
        self.ctx.still_leading()?;
        let stored =
            kubernetes::apply_status(&self.api(), &self.bundle.name_any(), MANAGER, &status)
                .await?;
        self.resource_version = stored.metadata.resource_version;
        self.status = status;
        Ok(())
    }

    /// Reads the bundle as stored and says whether it is still the one this run acts on. A
    /// reconcile is handed the watch's cached copy, which can trail the pass that just ended in
    /// this very process: a copy still saying Collecting or Pending of a bundle completed since
    /// would have it counted as cut short, or collected a second time.
    pub async fn stored(&self) -> Result<Stored, WriteError> {
        self.ctx.still_leading()?;
        Ok(match self.api().get_opt(&self.bundle.name_any()).await? {
            None => Stored::Deleting,
            Some(b) if b.metadata.deletion_timestamp.is_some() => Stored::Deleting,
            Some(b) if b.metadata.resource_version != self.resource_version => Stored::Newer,
            Some(_) => Stored::AsSeen,
        })
    }

    pub async fn event(&self, type_: EventType, reason: &str, note: &str) {
        let regarding = self.bundle.object_ref(&());
        kubernetes::publish_event(
            &self.ctx.recorder,
            &regarding,
            type_,
            reason,
            "Collect",
            note,
        )
        .await;
    }

    pub fn diagnosed(&mut self, diagnosis: Diagnosis) {
        self.diagnosis = Some(diagnosis);
    }

    /// The top findings for status, once this pass built its archive.
    pub fn status_findings(&self) -> Option<Vec<StatusFinding>> {
        self.diagnosis
            .as_ref()
            .map(|d| diagnosis::for_status(&d.findings))
    }

    /// The first finding, as a Warning event on the Backup or Restore itself, so who
    /// describes it sees the probable cause. Called once per bundle, when it finishes.
    pub async fn announce_probable_cause(&self) {
        let Some(d) = &self.diagnosis else { return };
        let namespace = self.bundle.namespace().unwrap_or_default();
        let Some(note) =
            diagnosis::probable_cause_note(&d.findings, &namespace, &self.bundle.name_any())
        else {
            return;
        };
        kubernetes::publish_event(
            &self.ctx.recorder,
            &d.target,
            EventType::Warning,
            diagnosis::PROBABLE_CAUSE,
            "Diagnose",
            &note,
        )
        .await;
    }

    pub fn hold(&mut self, slot: OwnedSemaphorePermit) {
        self.slot = Some(HeldSlot {
            _permit: slot,
            _in_flight: InFlight::new(&self.ctx.metrics.in_flight),
        });
    }
}

/// A collection slot and its count in flight, both given back when the run ends.
struct HeldSlot<'a> {
    _permit: OwnedSemaphorePermit,
    _in_flight: InFlight<'a>,
}

impl Drop for HeldSlot<'_> {
    /// What the collection freed goes back to the system with its slot, so the operator's
    /// resident size follows the bundles in progress, not the busiest moment it ever had.
    fn drop(&mut self) {
        crate::allocator::release_freed_memory();
    }
}

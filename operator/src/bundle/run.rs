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
    event_publisher::Said,
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
    /// Another writer changed the status since this run last wrote it (a leader that took
    /// over while this one was deposed): this run's write is refused and it stops.
    #[error("not written: another writer changed the bundle's status since this run wrote it")]
    Superseded,
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
        let stored = match self.apply_fenced(&status).await {
            Err(kube::Error::Api(e)) if e.code == 409 => {
                self.take_up_changes_of_others().await?;
                self.apply_fenced(&status).await?
            }
            other => other?,
        };
        self.resource_version = stored.metadata.resource_version;
        self.status = status;
        Ok(())
    }

    /// Writes `status` only if the bundle is still as this run last saw it.
    async fn apply_fenced(&self, status: &DebugBundleStatus) -> Result<DebugBundle, kube::Error> {
        let name = self.bundle.name_any();
        let version = self.resource_version.as_deref();
        kubernetes::apply_status_at(&self.api(), &name, MANAGER, status, version).await
    }

    /// After a refused write: the bundle changed since this run saw it. A change to its
    /// metadata, spec or upload progress (the progress reporter's writes) is taken up; a status
    /// changed otherwise is another writer's, and this run stops.
    async fn take_up_changes_of_others(&mut self) -> Result<(), WriteError> {
        self.ctx.still_leading()?;
        let stored = self.api().get(&self.bundle.name_any()).await?;
        // Compared as written (JSON): times keep only what their serialisation keeps.
        let without_progress = |s: &DebugBundleStatus| {
            serde_json::to_value(DebugBundleStatus {
                progress: None,
                ..s.clone()
            })
            .ok()
        };
        let theirs = stored.status.as_ref().and_then(without_progress);
        if theirs.is_none() || theirs != without_progress(&self.status) {
            return Err(WriteError::Superseded);
        }
        self.resource_version = stored.metadata.resource_version;
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
        let said = Said {
            type_,
            reason,
            action: "Collect",
            note,
        };
        self.ctx.events.publish(&regarding, None, said).await;
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
        // The Restore's event names the bundle whose diagnosis it is as its related object.
        let said = Said {
            type_: EventType::Warning,
            reason: diagnosis::PROBABLE_CAUSE,
            action: "Diagnose",
            note: &note,
        };
        let bundle = self.bundle.object_ref(&());
        self.ctx
            .events
            .publish(&d.target, Some(&bundle), said)
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

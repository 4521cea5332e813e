//! One pass of the pipeline over an unfinished bundle: the status it has, written as it
//! changes, the events it publishes and the collection slot it holds until its last status
//! is written.

use jiff::Timestamp;
use kube::{Api, Resource, ResourceExt, runtime::events::EventType};
use tokio::sync::OwnedSemaphorePermit;
use velero_debug_crd::{DebugBundle, DebugBundleStatus};

use super::status::Transition;
use crate::{
    context::{Context, MANAGER},
    kubernetes,
    metrics::InFlight,
    velero::Target,
};

pub(crate) struct Run<'a> {
    pub ctx: &'a Context,
    pub bundle: &'a DebugBundle,
    /// The status last written (or read): each new one builds on it.
    status: DebugBundleStatus,
    /// `restore/<name>` or `backup/<name>`, once the spec names one.
    target: String,
    /// Held from the start of collection until the run ends, so at most `concurrency`
    /// bundles ever show Collecting or Uploading at once; counted in flight meanwhile.
    slot: Option<(OwnedSemaphorePermit, InFlight<'a>)>,
}

impl<'a> Run<'a> {
    pub fn new(ctx: &'a Context, bundle: &'a DebugBundle) -> Self {
        Self {
            ctx,
            bundle,
            status: bundle.status.clone().unwrap_or_default(),
            target: String::new(),
            slot: None,
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

    /// Builds the next status from the current one and writes it whole.
    pub async fn write(
        &mut self,
        next: impl FnOnce(&Transition<'_>) -> DebugBundleStatus,
    ) -> Result<(), kube::Error> {
        let status = next(&Transition {
            prev: &self.status,
            generation: self.bundle.metadata.generation.unwrap_or(0),
            target: &self.target,
            now: Timestamp::now(),
        });
        kubernetes::apply_status(&self.api(), &self.bundle.name_any(), MANAGER, &status).await?;
        self.status = status;
        Ok(())
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

    pub fn hold(&mut self, slot: OwnedSemaphorePermit) {
        self.slot = Some((slot, InFlight::new(&self.ctx.metrics.in_flight)));
    }
}

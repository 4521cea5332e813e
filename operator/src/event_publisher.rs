//! The operator's Kubernetes events, each an Event object with its own note.
//!
//! kube's `Recorder` folds an event into the series of an earlier one with the same type,
//! reason, action and objects, and keeps the earlier one's note (as client-go does for
//! events.k8s.io). A download URL refreshed twice would then show the first expiry twice, and
//! a second bundle of one Restore the first bundle's diagnosis. The operator's events are few
//! (bounded per bundle by its attempts and its lifecycle), so none needs folding: each is made
//! by a recorder of its own, which keeps kube's construction of the event without its cache.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::{
    Client,
    runtime::events::{Event, EventType, Recorder, Reporter},
};

/// What an event says: its type, reason, action and note.
pub(crate) struct Said<'a> {
    pub type_: EventType,
    pub reason: &'a str,
    pub action: &'a str,
    pub note: &'a str,
}

#[derive(Clone)]
pub(crate) struct EventPublisher {
    client: Client,
    reporter: Reporter,
}

impl EventPublisher {
    pub fn new(client: Client, reporter: Reporter) -> Self {
        Self { client, reporter }
    }

    /// Publishes `said` about `regarding` (and `related`, the object whose event it is when
    /// not `regarding`'s own); a failure to publish is logged, never the caller's failure.
    pub async fn publish(
        &self,
        regarding: &ObjectReference,
        related: Option<&ObjectReference>,
        said: Said<'_>,
    ) {
        let event = Event {
            type_: said.type_,
            reason: said.reason.into(),
            note: Some(said.note.chars().take(1000).collect()),
            action: said.action.into(),
            secondary: related.cloned(),
        };
        let recorder = Recorder::new(self.client.clone(), self.reporter.clone());
        if let Err(e) = recorder.publish(&event, regarding).await {
            tracing::warn!(error = %e, reason = said.reason, "could not publish event");
        }
    }
}

//! The events the operator records on its DebugBundles, counted as they were made.
//!
//! The operator makes each event an Event of its own (operator/src/event_publisher.rs), but
//! kube's `Recorder` would fold a repeat into one Event's series: occurrences are counted with
//! their series, so a count stays right whichever way the events are made.
//! Some events (`Completed`, a failure's) come after the status write a test waits for, so a
//! test that lists right after that write can find the event not yet made.

use std::time::Duration;

use anyhow::Result;
use k8s_openapi::api::core::v1::Event;
use kube::{Api, api::ListParams};

use crate::{context::TestCtx, polling::eventually};

/// How many times `reason` was recorded on the DebugBundle `name`, series included.
pub async fn times_recorded(t: &TestCtx, name: &str, reason: &str) -> Result<i32> {
    Ok(notes_recorded(t, name, reason).await?.len() as i32)
}

/// The note of each time `reason` was recorded on the DebugBundle `name`: an Event object's
/// note once per occurrence of its series.
pub async fn notes_recorded(t: &TestCtx, name: &str, reason: &str) -> Result<Vec<String>> {
    let events: Api<Event> = Api::namespaced(t.client.clone(), &t.env.namespace);
    let selector =
        format!("involvedObject.kind=DebugBundle,involvedObject.name={name},reason={reason}");
    let listed = events
        .list(&ListParams::default().fields(&selector))
        .await?;
    Ok(listed
        .items
        .iter()
        .flat_map(|e| {
            let note = e.message.clone().unwrap_or_default();
            std::iter::repeat_n(note, occurrences(e) as usize)
        })
        .collect())
}

/// [`times_recorded`], once `reason` has been recorded at least once (waiting up to 30 s).
pub async fn times_recorded_once_made(t: &TestCtx, name: &str, reason: &str) -> Result<i32> {
    eventually(
        &format!("a {reason} event on DebugBundle {name}"),
        Duration::from_secs(30),
        || async {
            let times = times_recorded(t, name, reason).await?;
            Ok((times > 0).then_some(times))
        },
    )
    .await
}

/// One Event object's occurrences: its series' count when it has one (the recorder's
/// `events.k8s.io` series, as the core API shows it), else its deprecated count, else one.
fn occurrences(event: &Event) -> i32 {
    let series = event.series.as_ref().and_then(|s| s.count);
    series.or(event.count).unwrap_or(1).max(1)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{Event, EventSeries};

    use super::occurrences;

    #[test]
    fn a_series_counts_its_occurrences_and_a_lone_event_counts_one() {
        let lone = Event::default();
        let series = Event {
            series: Some(EventSeries {
                count: Some(3),
                ..Default::default()
            }),
            count: Some(1),
            ..Default::default()
        };
        let deprecated = Event {
            count: Some(2),
            ..Default::default()
        };
        assert_eq!([&lone, &series, &deprecated].map(occurrences), [1, 3, 2]);
    }
}

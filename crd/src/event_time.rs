//! When an Event was last seen, read as kubectl reads it (k8s.io/kubernetes
//! pkg/printers/internalversion/printers.go, `printEvent`, its LAST SEEN column): the series'
//! `lastObservedTime` when the event is a series, else `lastTimestamp`, else `firstTimestamp`,
//! else `eventTime`. core/v1 recorders set the timestamps; events.k8s.io/v1 recorders (the
//! operator's) set only `eventTime` and, once an event repeats, `series`. The operator's
//! timeline and the plugin's `describe` and `serve` all read an event's time here.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Event;

/// The time `event` was last seen; `None` when it carries none (kubectl prints `<unknown>`).
/// A series without its `lastObservedTime` falls through to the other fields.
pub fn last_seen(event: &Event) -> Option<Timestamp> {
    event
        .series
        .as_ref()
        .and_then(|s| s.last_observed_time.as_ref().map(|t| t.0))
        .or_else(|| event.last_timestamp.as_ref().map(|t| t.0))
        .or_else(|| event.first_timestamp.as_ref().map(|t| t.0))
        .or_else(|| event.event_time.as_ref().map(|t| t.0))
}

/// The same time, as the text an Event's JSON carries (the operator's evidence keeps events
/// as written into the bundle); the same order as [`last_seen`], which the tests hold it to.
pub fn last_seen_text(event: &serde_json::Value) -> Option<&str> {
    [
        &event["series"]["lastObservedTime"],
        &event["lastTimestamp"],
        &event["firstTimestamp"],
        &event["eventTime"],
    ]
    .into_iter()
    .find_map(|t| t.as_str().filter(|t| !t.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The event of `fields`, typed; its time from the JSON is checked to agree.
    fn event(fields: serde_json::Value) -> Event {
        let mut object = serde_json::json!({"metadata": {"name": "e"}, "involvedObject": {}});
        object
            .as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        let typed: Event = serde_json::from_value(object.clone()).unwrap();
        let from_text = last_seen_text(&object).map(|t| t.parse::<Timestamp>().unwrap());
        assert_eq!(from_text, last_seen(&typed), "{object}");
        typed
    }

    fn at(text: &str) -> Option<Timestamp> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn a_series_is_last_seen_at_its_last_observation() {
        let e = event(serde_json::json!({
            "series": {"count": 3, "lastObservedTime": "2026-11-20T10:09:00.000000Z"},
            "lastTimestamp": "2026-11-20T10:05:00Z",
            "firstTimestamp": "2026-11-20T10:01:00Z",
            "eventTime": "2026-11-20T10:00:00.000000Z",
        }));
        assert_eq!(last_seen(&e), at("2026-11-20T10:09:00Z"));
    }

    #[test]
    fn then_the_last_timestamp_then_the_first_then_the_event_time() {
        let e = event(serde_json::json!({
            "lastTimestamp": "2026-11-20T10:05:00Z",
            "firstTimestamp": "2026-11-20T10:01:00Z",
            "eventTime": "2026-11-20T10:00:00.000000Z",
        }));
        assert_eq!(last_seen(&e), at("2026-11-20T10:05:00Z"));
        let e = event(serde_json::json!({
            "firstTimestamp": "2026-11-20T10:01:00Z",
            "eventTime": "2026-11-20T10:00:00.000000Z",
        }));
        assert_eq!(last_seen(&e), at("2026-11-20T10:01:00Z"));
        // An events.k8s.io recorder's event that did not repeat.
        let e = event(serde_json::json!({"eventTime": "2026-11-20T10:00:00.123456Z"}));
        assert_eq!(last_seen(&e), at("2026-11-20T10:00:00.123456Z"));
    }

    #[test]
    fn a_series_without_its_observation_falls_through() {
        let e = event(serde_json::json!({
            "series": {"count": 2},
            "eventTime": "2026-11-20T10:00:00.000000Z",
        }));
        assert_eq!(last_seen(&e), at("2026-11-20T10:00:00Z"));
    }

    #[test]
    fn an_event_without_times_has_none_not_its_creation() {
        let e = event(serde_json::json!({
            "metadata": {"name": "e", "creationTimestamp": "2026-11-20T10:00:00Z"},
        }));
        assert_eq!(last_seen(&e), None);
    }
}

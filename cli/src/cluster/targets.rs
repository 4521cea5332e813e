//! Velero's Restores and Backups as the plugin needs them: their names (completion) and the
//! newest one that went wrong (`create ... --latest-failed`). Listed page by page.

use jiff::Timestamp;
use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject, GroupVersionKind, ListParams},
};

use super::create::TargetKind;

/// Items per list request.
const PAGE: u32 = 500;
/// Phases that mean "this one went wrong" (Velero's phase names).
const FAILED_PHASES: [&str; 2] = ["Failed", "PartiallyFailed"];

#[derive(Debug, thiserror::Error)]
pub(crate) enum TargetError {
    #[error("listing {kind}s in {namespace}: {source}")]
    List {
        kind: &'static str,
        namespace: String,
        source: kube::Error,
    },
    #[error("no {kind} in {namespace} ended Failed or PartiallyFailed")]
    NoneFailed {
        kind: &'static str,
        namespace: String,
    },
}

fn api(client: Client, namespace: &str, kind: TargetKind) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("velero.io", "v1", kind.velero_kind());
    Api::namespaced_with(client, namespace, &ApiResource::from_gvk(&gvk))
}

/// Every Restore (or Backup) of `namespace`, read in pages of [`PAGE`].
pub(crate) async fn list(
    client: Client,
    namespace: &str,
    kind: TargetKind,
) -> Result<Vec<DynamicObject>, TargetError> {
    let api = api(client, namespace, kind);
    let mut items = Vec::new();
    let mut params = ListParams::default().limit(PAGE);
    loop {
        let page = api
            .list(&params)
            .await
            .map_err(|source| TargetError::List {
                kind: kind.velero_kind(),
                namespace: namespace.to_string(),
                source,
            })?;
        items.extend(page.items);
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => return Ok(items),
        }
    }
}

/// The name of the newest target that ended Failed or PartiallyFailed.
pub(crate) async fn latest_failed(
    client: Client,
    namespace: &str,
    kind: TargetKind,
) -> Result<String, TargetError> {
    let items = list(client, namespace, kind).await?;
    newest_failed(&items).ok_or_else(|| TargetError::NoneFailed {
        kind: kind.velero_kind(),
        namespace: namespace.to_string(),
    })
}

/// Newest by when it ended (status.completionTimestamp), else when it was made; ties go to
/// the name that sorts last, so the choice does not depend on list order.
pub(crate) fn newest_failed(items: &[DynamicObject]) -> Option<String> {
    items
        .iter()
        .filter(|item| {
            let phase = item.data.pointer("/status/phase").and_then(|p| p.as_str());
            phase.is_some_and(|p| FAILED_PHASES.contains(&p))
        })
        .filter_map(|item| Some((ended_at(item), item.metadata.name.clone()?)))
        .max()
        .map(|(_, name)| name)
}

fn ended_at(item: &DynamicObject) -> Option<Timestamp> {
    item.data
        .pointer("/status/completionTimestamp")
        .and_then(|t| t.as_str())
        .and_then(|t| t.parse().ok())
        .or_else(|| item.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(name: &str, phase: &str, completed: Option<&str>, created: &str) -> DynamicObject {
        let mut status = serde_json::json!({"phase": phase});
        if let Some(t) = completed {
            status["completionTimestamp"] = t.into();
        }
        serde_json::from_value(serde_json::json!({
            "apiVersion": "velero.io/v1", "kind": "Restore",
            "metadata": {"name": name, "namespace": "velero", "creationTimestamp": created},
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn the_newest_failed_or_partially_failed_by_completion() {
        let items = [
            item(
                "old-failed",
                "Failed",
                Some("2026-11-20T10:00:00Z"),
                "2026-11-20T09:00:00Z",
            ),
            item(
                "newest-ok",
                "Completed",
                Some("2026-11-25T10:00:00Z"),
                "2026-11-25T09:00:00Z",
            ),
            item(
                "partial",
                "PartiallyFailed",
                Some("2026-11-24T10:00:00Z"),
                "2026-11-21T09:00:00Z",
            ),
            item("running", "InProgress", None, "2026-11-25T11:00:00Z"),
            // Made later but ended earlier than "partial".
            item(
                "late-start",
                "Failed",
                Some("2026-11-23T10:00:00Z"),
                "2026-11-22T09:00:00Z",
            ),
        ];
        assert_eq!(newest_failed(&items).as_deref(), Some("partial"));
    }

    #[test]
    fn none_failed_is_none_and_a_missing_completion_uses_creation() {
        assert_eq!(newest_failed(&[]), None);
        let items = [
            item("ok", "Completed", None, "2026-11-25T09:00:00Z"),
            item("validation", "Failed", None, "2026-11-24T09:00:00Z"),
        ];
        assert_eq!(newest_failed(&items).as_deref(), Some("validation"));
    }
}

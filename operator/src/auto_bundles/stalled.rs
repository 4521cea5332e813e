//! A running Backup or Restore, looked at every little while: its motion (stall.rs) read from
//! it and its volume operations; once it has been still for `stallAfter`, one bundle for the
//! stall, recorded in the ledger with the motion it was made for.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api, Resource, ResourceExt,
    api::{DynamicObject, ListParams, Patch, PatchParams},
    runtime::{controller::Action, events::EventType},
};
use serde_json::{Value, json};
use velero_debug_crd::{AUTO_BUNDLE_LEDGER, DebugBundle};

use super::{
    AutoBundleError, enforce_cap, ledger, policy,
    stall::{self, StallDecision, Still},
};
use crate::{
    context::Context,
    event_publisher::Said,
    kubernetes,
    metrics::{StallMetrics, StalledLabels},
    velero::{self, Target},
};

/// What the watch of one kind has seen of its running operations, by uid.
pub(super) struct Stills {
    kind: &'static str,
    seen: Mutex<HashMap<String, Seen>>,
}

struct Seen {
    still: Still,
    waiting_on: &'static str,
}

impl Stills {
    pub fn new(kind: &'static str) -> Self {
        Self {
            kind,
            seen: Mutex::default(),
        }
    }

    fn observe(&self, uid: &str, motion: &str, waiting_on: &'static str, now: Timestamp) -> Still {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let still = Still::observe(seen.get(uid).map(|s| &s.still), motion, now);
        seen.insert(
            uid.to_string(),
            Seen {
                still: still.clone(),
                waiting_on,
            },
        );
        still
    }

    /// An operation no longer running (finished, deleted) is stalled no more.
    pub fn forget(&self, uid: &str) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.remove(uid);
    }

    /// Sets the gauge of this kind's operations stalled now, by what they wait on.
    pub fn publish(&self, metrics: &StallMetrics, stall_after: Duration, now: Timestamp) {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        for waiting_on in stall::WAITING_ON {
            let stalled = seen
                .values()
                .filter(|s| s.waiting_on == *waiting_on && s.still.for_(now) >= stall_after)
                .count();
            let labels = StalledLabels {
                kind: self.kind.to_string(),
                waiting_on: waiting_on.to_string(),
            };
            metrics
                .stalled
                .get_or_create(&labels)
                .set(i64::try_from(stalled).unwrap_or(i64::MAX));
        }
    }
}

/// Looks at the running `obj` of `kind`: its motion now, and a bundle if it has stalled.
pub(super) async fn reconcile(
    kind: &'static str,
    obj: &DynamicObject,
    ctx: &Context,
    stills: &Stills,
    stall_after: Duration,
) -> Result<Action, AutoBundleError> {
    let (Some(name), Some(uid)) = (obj.metadata.name.clone(), obj.uid()) else {
        return Ok(Action::await_change());
    };
    let ns = obj.namespace().unwrap_or_default();
    let target = match kind {
        "Restore" => Target::Restore(name),
        _ => Target::Backup(name),
    };
    let volumes = volume_operations(&target, &uid, &ns, ctx).await?;
    let now = Timestamp::now();
    let waiting_on = stall::waiting_on(&obj.data, &volumes);
    let still = stills.observe(&uid, &stall::motion(&obj.data, &volumes), waiting_on, now);
    stills.publish(&ctx.metrics.stalls, stall_after, now);
    let look_every = stall::look_every(stall_after);
    if let StallDecision::LookAgainIn(wait) = stall::decide(&still, None, stall_after, now) {
        return Ok(Action::requeue(wait.min(look_every)));
    }
    let ledgers: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ns);
    let recorded = super::read_ledger(&ledgers, &ns).await?;
    let recorded_motion = recorded
        .get(&ledger::stall_key(&uid))
        .and_then(|r| ledger::parse(r))
        .and_then(|r| r.motion);
    if stall::decide(&still, recorded_motion.as_deref(), stall_after, now) == StallDecision::Bundle
    {
        make_bundle(kind, obj, ctx, &still, &recorded, &ledgers).await?;
    }
    Ok(Action::requeue(look_every))
}

/// The target's volume operations, as the motion reads them.
async fn volume_operations(
    target: &Target,
    uid: &str,
    ns: &str,
    ctx: &Context,
) -> Result<Vec<Value>, AutoBundleError> {
    let mut volumes = Vec::new();
    for kind in target.operation_kinds() {
        let api: Api<DynamicObject> =
            Api::namespaced_with(ctx.uncounted_client.clone(), ns, &velero::resource(kind));
        let selector = ListParams::default().labels(&target.operation_selector(uid));
        let listed = kubernetes::list_all(&api, selector, &ctx.config.limits)
            .await
            .map_err(|e| AutoBundleError::List(e.message))?;
        volumes.extend(listed.items.into_iter().map(|op| {
            json!({"kind": kind, "metadata": {"name": op.name_any()}, "status": op.data["status"]})
        }));
    }
    Ok(volumes)
}

/// Creates the stall's bundle, records it with its motion and says so on the operation.
async fn make_bundle(
    kind: &'static str,
    obj: &DynamicObject,
    ctx: &Context,
    still: &Still,
    recorded: &std::collections::BTreeMap<String, String>,
    ledgers: &Api<ConfigMap>,
) -> Result<(), AutoBundleError> {
    let Some(bundle) = policy::stall_bundle(kind, obj, still) else {
        return Ok(());
    };
    let (ns, uid, name) = (
        obj.namespace().unwrap_or_default(),
        obj.uid().unwrap_or_default(),
        bundle.name_any(),
    );
    let bundles: Api<DebugBundle> = Api::namespaced(ctx.client.clone(), &ns);
    if super::create_for_target(&bundles, &bundle, &uid).await? {
        ctx.metrics.stalls.bundles_created.inc();
    }
    let lookback = ctx.config.auto.lookback;
    let patch = ledger::stall_record_patch(
        &uid,
        &name,
        &still.motion,
        recorded,
        lookback,
        Timestamp::now(),
    );
    ledgers
        .patch(
            AUTO_BUNDLE_LEDGER,
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
    let still_for = crate::findings::text::duration_words(still.for_(Timestamp::now()));
    tracing::info!(kind, target = %obj.name_any(), bundle = %name, %still_for, "stall bundle created");
    let note = format!(
        "{kind} has not moved for {still_for} (since {}): DebugBundle {name} collects what it waits on",
        stall::since_text(still)
    );
    let said = Said {
        type_: EventType::Warning,
        reason: "DebugBundleCreated",
        action: "StallBundle",
        note: &note,
    };
    ctx.events
        .publish(&obj.object_ref(&velero::resource(kind)), None, said)
        .await;
    enforce_cap(&bundles, ctx).await
}

//! A running Backup or Restore, looked at every little while: its motion and progress
//! (stall_decision.rs) read from it and its volume operations; once it has been still for `stallAfter`,
//! one bundle for the stall if the hour's bound allows (stall_budget.rs), recorded in the
//! ledger with the motion and progress it was made for.

use std::{
    collections::{HashMap, HashSet},
    sync::Mutex,
    time::Duration,
};

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
    stall_budget::{Grant, StallBudget},
    stall_decision::{self, Bundled, StallDecision, Still},
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
    /// The uids a relist under way has listed so far (None when none is under way): the
    /// operations it does not list were deleted while the watch was away.
    relisted: Mutex<Option<HashSet<String>>>,
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
            relisted: Mutex::default(),
        }
    }

    pub fn relist_begins(&self) {
        *self.relisted.lock().unwrap_or_else(|e| e.into_inner()) = Some(HashSet::new());
    }

    pub fn relisted(&self, uid: &str) {
        if let Some(listed) = self
            .relisted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            listed.insert(uid.to_string());
        }
    }

    /// Forgets the operations the finished relist did not list.
    pub fn relist_done(&self) {
        let listed = self
            .relisted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(listed) = listed {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            seen.retain(|uid, _| listed.contains(uid));
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
        for waiting_on in stall_decision::WAITING_ON {
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
    budget: &StallBudget,
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
    let waiting_on = stall_decision::waiting_on(&obj.data, &volumes);
    let still = stills.observe(
        &uid,
        &stall_decision::motion(&obj.data, &volumes),
        waiting_on,
        now,
    );
    let progress = stall_decision::progress(&obj.data, &volumes);
    stills.publish(&ctx.metrics.stalls, stall_after, now);
    let look_every = stall_decision::look_every(stall_after);
    let decide = |recorded| stall_decision::decide(&still, progress, recorded, stall_after, now);
    if let StallDecision::LookAgainIn(wait) = decide(None) {
        return Ok(Action::requeue(wait.min(look_every)));
    }
    let ledgers: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ns);
    let recorded = super::read_ledger(&ledgers, &ns).await?;
    let record = recorded
        .get(&ledger::stall_key(&uid))
        .and_then(|r| ledger::parse(r));
    let bundled = record.as_ref().and_then(|r| {
        r.motion.as_deref().map(|motion| Bundled {
            motion,
            progress: r.progress,
        })
    });
    if decide(bundled) != StallDecision::Bundle {
        return Ok(Action::requeue(look_every));
    }
    let operation = format!("{kind} {ns}/{}", obj.name_any());
    match budget.take(&operation, now) {
        Grant::Bundle { withheld } => {
            let made = Made {
                still: &still,
                progress,
                withheld: &withheld,
            };
            make_bundle(kind, obj, ctx, made, &recorded, &ledgers).await?;
            Ok(Action::requeue(look_every))
        }
        Grant::Withheld { retry_in, first } => {
            if first {
                ctx.metrics.stalls.bundles_withheld.inc();
                tracing::warn!(%operation, limit = ctx.config.auto.max_stall_bundles_per_hour, "stall bundle withheld: the hour's stall bundles are made; it is named in the next one");
            }
            Ok(Action::requeue(retry_in.max(look_every)))
        }
    }
}

/// The stall a bundle is made for: its stillness, the operation's progress, and the stalls
/// withheld before it.
struct Made<'a> {
    still: &'a Still,
    progress: u64,
    withheld: &'a [String],
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
    made: Made<'_>,
    recorded: &std::collections::BTreeMap<String, String>,
    ledgers: &Api<ConfigMap>,
) -> Result<(), AutoBundleError> {
    let still = made.still;
    let Some(bundle) = policy::stall_bundle(kind, obj, still, made.withheld) else {
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
    let stall = ledger::StallMade {
        bundle: &name,
        motion: &still.motion,
        progress: made.progress,
    };
    let patch = ledger::stall_record_patch(&uid, stall, recorded, lookback, Timestamp::now());
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
        stall_decision::since_text(still)
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

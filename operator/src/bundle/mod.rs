//! The DebugBundle controller. `reconcile` only runs the finalizer: its Apply branch runs the
//! pipeline (pipeline.rs) for a bundle that has not finished and the lifecycle (lifecycle.rs:
//! retention, URL refresh and expiry) for one that has, and fails a bundle our types cannot
//! read (watched.rs); its Cleanup branch deletes the archive (cleanup.rs).

mod archive;
mod cleanup;
mod collect;
mod deadline;
mod dereference;
mod diagnosis;
mod error;
mod failure;
mod lifecycle;
mod pipeline;
mod plan;
mod preflight;
mod progress;
mod publish;
mod queue;
mod run;
mod status;
mod upload;
mod watched;

use std::{any::Any, panic::AssertUnwindSafe, sync::Arc, time::Duration};

use futures::{FutureExt, StreamExt};
use jiff::Timestamp;
use kube::{
    Api, ResourceExt,
    runtime::{
        Controller, WatchStreamExt,
        controller::{self, Action},
        finalizer::{Event as Finalizer, finalizer},
        reflector, watcher,
    },
};
use velero_debug_crd::{DebugBundle, FINALIZER};

use crate::{
    context::{Context, MANAGER},
    health::WatchHealth,
    kubernetes,
};
use error::Error;
use watched::{UnreadableBundle, WatchedBundle};

pub(crate) use archive::OPERATOR_VERSION;
pub(crate) use dereference::{ArchiveStore, archive_store_lookup};

pub(crate) async fn reconcile(
    watched: Arc<WatchedBundle>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let api: Api<WatchedBundle> =
        Api::namespaced(ctx.client.clone(), &watched.namespace().unwrap_or_default());
    finalizer(&api, FINALIZER, watched, |event| async {
        match event {
            Finalizer::Apply(w) => match w.as_ref() {
                WatchedBundle::Readable(b) => apply(b, &ctx).await,
                WatchedBundle::Unreadable(u) => fail_unreadable(u, &ctx).await,
            },
            Finalizer::Cleanup(w) => cleanup::delete_archive(&w, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

/// Transient errors are retried after a delay; permanent ones wait for a change.
pub(crate) fn error_policy(
    watched: Arc<WatchedBundle>,
    error: &Error,
    ctx: Arc<Context>,
) -> Action {
    ctx.metrics.reconcile_error("debugbundle");
    if error.is_transient()
        && kube::Resource::meta(watched.as_ref())
            .deletion_timestamp
            .is_some()
    {
        // A deletion waiting on the store backs off until cleanup gives up on it.
        let after = cleanup::retry_after(cleanup::deletion_waited(&watched));
        tracing::warn!(bundle = %watched.name_any(), %error, retry_in_seconds = after.as_secs(), "archive not deleted yet; retrying");
        Action::requeue(after)
    } else if error.is_transient() {
        tracing::warn!(bundle = %watched.name_any(), %error, "reconcile failed; retrying");
        Action::requeue(Duration::from_secs(10))
    } else {
        tracing::warn!(bundle = %watched.name_any(), %error, "reconcile failed; waiting for a change");
        Action::await_change()
    }
}

/// A bundle our types cannot read fails alone, once per generation.
async fn fail_unreadable(bundle: &UnreadableBundle, ctx: &Context) -> Result<Action, Error> {
    if bundle.failure_recorded() {
        return Ok(Action::await_change());
    }
    let name = bundle.metadata.name.clone().unwrap_or_default();
    tracing::warn!(bundle = %name, error = %bundle.error, "DebugBundle cannot be read; failing it");
    let generation = bundle.metadata.generation.unwrap_or(0);
    let status = status::unreadable(generation, &bundle.error, Timestamp::now());
    let namespace = bundle.metadata.namespace.clone().unwrap_or_default();
    let api: Api<DebugBundle> = Api::namespaced(ctx.client.clone(), &namespace);
    ctx.still_leading()?;
    kubernetes::apply_status(&api, &name, MANAGER, &status).await?;
    ctx.metrics
        .finished("failed", velero_debug_crd::reasons::INVALID_SPEC, None);
    Ok(Action::await_change())
}

/// A bug met while making one bundle (a panic: a dependency's `unwrap` on a value from the
/// cluster, say) fails that bundle, never the operator.
async fn apply(bundle: &DebugBundle, ctx: &Context) -> Result<Action, Error> {
    failing_on_panic(bundle, ctx, apply_unguarded(bundle, ctx)).await
}

async fn failing_on_panic(
    bundle: &DebugBundle,
    ctx: &Context,
    work: impl Future<Output = Result<Action, Error>>,
) -> Result<Action, Error> {
    match AssertUnwindSafe(work).catch_unwind().await {
        Ok(result) => result,
        Err(panic) => {
            let what = panic_message(panic.as_ref());
            tracing::error!(bundle = %bundle.name_any(), panic = %what, "bug while making the bundle; failing it");
            pipeline::fail_after_panic(bundle, ctx, &what).await
        }
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into());
    text.chars().take(300).collect()
}

async fn apply_unguarded(bundle: &DebugBundle, ctx: &Context) -> Result<Action, Error> {
    let st = bundle.status.as_ref();
    let finished = st.and_then(|s| s.phase).is_some_and(|p| p.is_finished())
        && st.and_then(|s| s.observed_generation) == bundle.metadata.generation;
    if finished {
        lifecycle::finished(bundle, ctx).await
    } else {
        pipeline::make_bundle(bundle, ctx).await
    }
}

/// Runs the DebugBundle controller until shutdown; its watch reports to `/readyz`.
pub(crate) async fn run(api: Api<DebugBundle>, ctx: Arc<Context>, health: WatchHealth) {
    let api: Api<WatchedBundle> = match api.namespace() {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    };
    let (reader, writer) = reflector::store();
    let watch = watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .inspect(move |event| health.observe(event))
        .modify(crate::kubernetes::forget_managed_fields)
        .reflect(writer)
        .touched_objects();
    // Reconciles are not limited (0): collection is, by `collect_slots`, so a queued bundle
    // shows Pending and retention or URL refresh never waits behind a long collection. A
    // reconcile waiting for a slot holds only its bundle (an Arc shared with the reflector's
    // store), a copy of its status and its future (under 32 KiB, a reconcile test checks):
    // the objects it names, the credential and the S3 client are read only once it holds a
    // slot (pipeline.rs), so a thousand queued bundles cost tens of MiB at most. Each holder
    // of a slot ends within BUNDLE_DEADLINE, so the queue always moves.
    Controller::for_stream(watch, reader)
        .with_config(controller::Config::default().concurrency(0))
        .graceful_shutdown_on(ctx.shutdown.clone().cancelled_owned())
        .run(reconcile, error_policy, ctx)
        .for_each(|res| async move {
            match res {
                Ok((obj, _)) => tracing::debug!(bundle = %obj.name, "reconciled"),
                Err(e) => tracing::debug!(error = %e, "reconcile error"),
            }
        })
        .await;
}

#[cfg(test)]
#[path = "bundle_tests.rs"]
mod tests;

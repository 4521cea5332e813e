//! The DebugBundle controller. `reconcile` only runs the finalizer: its Apply branch runs the
//! pipeline (pipeline.rs) for a bundle that has not finished and the lifecycle (lifecycle.rs:
//! retention, URL refresh and expiry) for one that has; its Cleanup branch deletes the archive
//! (cleanup.rs).

mod archive;
mod cleanup;
mod collect;
mod dereference;
mod error;
mod failure;
mod lifecycle;
mod pipeline;
mod plan;
mod preflight;
mod publish;
mod queue;
#[cfg(test)]
mod reconcile_tests;
mod run;
mod status;
mod upload;

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use kube::{
    Api, ResourceExt,
    runtime::{
        Controller,
        controller::{self, Action},
        finalizer::{Event as Finalizer, finalizer},
        watcher,
    },
};
use velero_debug_crd::{DebugBundle, FINALIZER};

use crate::context::Context;
use error::Error;

pub(crate) use archive::OPERATOR_VERSION;

pub(crate) async fn reconcile(
    bundle: Arc<DebugBundle>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let api: Api<DebugBundle> =
        Api::namespaced(ctx.client.clone(), &bundle.namespace().unwrap_or_default());
    finalizer(&api, FINALIZER, bundle, |event| async {
        match event {
            Finalizer::Apply(b) => apply(&b, &ctx).await,
            Finalizer::Cleanup(b) => cleanup::delete_archive(&b, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

/// Transient errors are retried after a delay; permanent ones wait for a change.
pub(crate) fn error_policy(bundle: Arc<DebugBundle>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconcile_error("debugbundle");
    if error.is_transient() {
        tracing::warn!(bundle = %bundle.name_any(), %error, "reconcile failed; retrying");
        Action::requeue(Duration::from_secs(10))
    } else {
        tracing::warn!(bundle = %bundle.name_any(), %error, "reconcile failed; waiting for a change");
        Action::await_change()
    }
}

async fn apply(bundle: &DebugBundle, ctx: &Context) -> Result<Action, Error> {
    let st = bundle.status.as_ref();
    let finished = st.and_then(|s| s.phase).is_some_and(|p| p.is_finished())
        && st.and_then(|s| s.observed_generation) == bundle.metadata.generation;
    if finished {
        lifecycle::finished(bundle, ctx).await
    } else {
        pipeline::make_bundle(bundle, ctx).await
    }
}

/// Runs the DebugBundle controller until shutdown.
pub(crate) async fn run(api: Api<DebugBundle>, ctx: Arc<Context>) {
    // Reconciles are not limited (0): collection is, by `collect_slots`, so a queued bundle
    // shows Pending and retention or URL refresh never waits behind a long collection.
    Controller::new(api, watcher::Config::default().any_semantic())
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

//! The pipeline of a DebugBundle that has not finished, one named step after the other:
//! queue -> dereference -> plan -> preflight -> collect -> archive -> upload -> publish.
//! Each step is a function in the file named for it; every failure becomes a [`Failure`]
//! (failure.rs) and ends here, Failed or retried. The steps after the queue, which hold a
//! collection slot, end within BUNDLE_DEADLINE (deadline.rs).

use std::time::Duration;

use jiff::Timestamp;
use kube::{
    Resource, ResourceExt,
    runtime::{controller::Action, events::EventType},
};
use velero_debug_crd::DebugBundle;

use super::{
    archive, collect,
    deadline::{Attempt, DeadlineExceeded, Step},
    dereference::{self, DereferenceError, Outcome},
    diagnosis::Diagnosis,
    error::Error,
    failure::{Failure, Stop},
    plan, preflight, publish,
    queue::{self, Slot},
    run::{Run, Stored, WriteError},
    status, upload,
};
use crate::{
    context::Context,
    velero::{self, Target},
};

/// When a run that started from a stale copy looks again, should the watch's newer copy not
/// have woken it already.
const STALE_COPY_RECHECK: Duration = Duration::from_secs(2);

pub(super) async fn make_bundle(bundle: &DebugBundle, ctx: &Context) -> Result<Action, Error> {
    // A failure that may pass is retried after its backoff, whatever woke this reconcile.
    if let Some(wait) = status::backoff_left(bundle.status.as_ref(), Timestamp::now()) {
        return Ok(Action::requeue(wait));
    }
    let mut run = Run::new(ctx, bundle);
    if status::was_cut_short(run.status()) {
        // Said by the watch's copy, which may trail this process's own pass that just ended.
        if run.stored().await? != Stored::AsSeen {
            return Ok(Action::requeue(STALE_COPY_RECHECK));
        }
        let attempts = run.status().attempts.unwrap_or(0);
        if attempts >= ctx.config.max_attempts {
            return Ok(fail_or_retry(&mut run, Failure::cut_short(attempts)).await?);
        }
        tracing::warn!(bundle = %bundle.name_any(), attempts, "the last attempt was cut short; trying again");
        run.write(|t| t.cut_short()).await?;
    }
    match steps(&mut run).await {
        Ok(action) => Ok(action),
        Err(Stop::Failed(failure)) => Ok(fail_or_retry(&mut run, failure).await?),
        Err(Stop::Api(e)) => Err(Error::Kube(e)),
        Err(Stop::ShuttingDown) => Err(Error::ShuttingDown),
    }
}

/// Fails a bundle whose pass panicked (see `bundle::apply`): from the status it had before.
pub(super) async fn fail_after_panic(
    bundle: &DebugBundle,
    ctx: &Context,
    panic: &str,
) -> Result<Action, Error> {
    let mut run = Run::new(ctx, bundle);
    if let Ok(target) = dereference::named_target(&bundle.spec) {
        run.set_target(&target);
    }
    Ok(fail_or_retry(&mut run, Failure::bug(panic)).await?)
}

async fn steps(run: &mut Run<'_>) -> Result<Action, Stop> {
    let ctx = run.ctx;
    let target = dereference::named_target(&run.bundle.spec)?;
    run.set_target(&target);
    // Nothing is read before the slot: a bundle waiting for one holds no objects and no S3
    // client, so a thousand queued bundles cost a thousand small futures.
    match queue::take_slot(run).await.map_err(Stop::status)? {
        Slot::Held => {}
        Slot::BundleDeleted => return Ok(Action::await_change()),
        Slot::StaleCopy => return Ok(Action::requeue(STALE_COPY_RECHECK)),
    }
    let limit = ctx.config.bundle_deadline;
    let mut attempt = Attempt::default();
    // Boxed: the state of the steps (tens of KiB) is allocated once the slot is held, not
    // carried by every reconcile waiting in the queue.
    let held = Box::pin(holding_slot(run, &target, &mut attempt));
    match tokio::time::timeout(limit, held).await {
        Ok(done) => done,
        Err(_) => {
            // The steps were dropped where they stood: their spool folder with them; an
            // upload begun is aborted here (its id is in status before any part is sent).
            if let (Some(store), Some(upload_id)) = (&attempt.store, &run.status().upload_id) {
                store.abort_upload(&attempt.key, upload_id).await;
            }
            Err(DeadlineExceeded {
                limit,
                step: attempt.step,
            }
            .into())
        }
    }
}

/// The steps that need a collection slot, each recorded in `attempt` as it starts, so a
/// deadline names the one it stopped.
async fn holding_slot(
    run: &mut Run<'_>,
    target: &Target,
    attempt: &mut Attempt,
) -> Result<Action, Stop> {
    let ctx = run.ctx;
    attempt.enter(Step::Dereference);
    let found = match dereference::objects(
        &ctx.client,
        run.bundle,
        target,
        &ctx.config.limits,
        &ctx.config.trusted_storage_hosts,
    )
    .await?
    {
        Outcome::Found(found) => found,
        Outcome::TargetMissing => return wait_for_target(run).await,
    };
    attempt.enter(Step::Plan);
    let plan = plan::bundle(run.bundle, &found)?;
    attempt.enter(Step::Preflight);
    let preflight::Checked { store, refused } = preflight::store(&found, &plan).await?;
    attempt.store = Some(store.clone());
    attempt.key = plan.key.clone();
    attempt.enter(Step::Collect);
    let spooled = collect::run(run, &found, &plan, &store)
        .await
        .map_err(Stop::from_collect)?;
    attempt.enter(Step::Archive);
    let finished = archive::finish(spooled, ctx.config.site_rules.clone()).await?;
    run.diagnosed(Diagnosis {
        findings: finished.findings.clone(),
        target: found
            .objects
            .target
            .object_ref(&velero::resource(target.kind())),
    });
    if let Some(refused) = refused {
        return Err(refused.into());
    }
    attempt.enter(Step::Upload);
    let (sent, sha256) = tokio::join!(
        upload::send(run, &store, &plan.key, &finished),
        archive::sha256(finished.archive.path.clone())
    );
    sent.map_err(Stop::from_upload)?;
    let sha256 = sha256?;
    attempt.enter(Step::Publish);
    let published = publish::completed(run, &store, &found.location, &plan, finished, sha256)
        .await
        .map_err(Stop::from_upload);
    attempt.step_done();
    published
}

/// A bundle may be applied together with its restore: its target is waited for a while.
async fn wait_for_target(run: &mut Run<'_>) -> Result<Action, Stop> {
    let wait = run.ctx.config.target_wait;
    if dereference::target_wait_left(run.bundle, wait, Timestamp::now()).is_some() {
        run.write(|t| t.waiting_for_target())
            .await
            .map_err(Stop::status)?;
        return Ok(Action::requeue(Duration::from_secs(5)));
    }
    let target = dereference::named_target(&run.bundle.spec)?;
    Err(DereferenceError::TargetNotFound {
        kind: target.kind(),
        name: target.name().to_string(),
        namespace: run.bundle.namespace().unwrap_or_default(),
        waited_seconds: wait.as_secs(),
    }
    .into())
}

/// A transient failure is retried after its backoff until the attempt limit; any other ends
/// the bundle Failed, with an event, and waits for a change.
async fn fail_or_retry(run: &mut Run<'_>, failure: Failure) -> Result<Action, WriteError> {
    let name = run.bundle.name_any();
    let attempts = status::attempts_with_failure(run.status());
    if failure.transient && attempts < run.ctx.config.max_attempts {
        tracing::warn!(bundle = %name, reason = failure.reason, message = %failure.message, attempts, "bundle attempt failed; retrying");
        // Findings of an archive built before the failure (an upload failed) are kept.
        let findings = run.status_findings();
        run.write(|t| {
            status::with_findings(t.retrying(failure.reason, &failure.message), findings)
        })
        .await?;
        let wait = status::backoff_left(Some(run.status()), Timestamp::now());
        return Ok(Action::requeue(wait.unwrap_or(Duration::from_secs(1))));
    }
    let message = if failure.transient {
        format!("{} (gave up after {attempts} attempts)", failure.message)
    } else {
        failure.message
    };
    tracing::info!(bundle = %name, reason = failure.reason, %message, "bundle failed");
    let findings = run.status_findings();
    run.write(|t| status::with_findings(t.failed(failure.reason, &message), findings))
        .await?;
    let took = run
        .status()
        .start_time
        .as_ref()
        .map(|started| Timestamp::now().duration_since(started.0).as_secs_f64());
    run.ctx.metrics.finished("failed", failure.reason, took);
    // The event's reason is the condition's, so one search finds both.
    run.event(EventType::Warning, failure.reason, &message)
        .await;
    run.announce_probable_cause().await;
    Ok(Action::await_change())
}

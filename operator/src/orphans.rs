//! The garbage collector of archives: an archive in a storage location whose DebugBundle no
//! longer exists (a crash between the upload and the status write, a bundle deleted while its
//! credentials were gone, a signing failure after the upload) and multipart uploads left open
//! under our folder are deleted, on start and then periodically, by the leader only.
//!
//! Safe by construction:
//! - only keys of the exact shape of an archive key (`ArchiveOwner`), in the folder of the
//!   namespace this install serves, are ever deleted: another install's folder (a second Velero
//!   namespace on the same bucket) is never listed, and anything else is left alone;
//! - only archives this install wrote: each carries its mark (the DebugBundle CRD's uid, the
//!   namespace served and the process that wrote it) as object metadata, and the writer must
//!   be in this install's record (install_record.rs), so neither another cluster on the same
//!   bucket (a migration, or a clone from an etcd snapshot, which shares the uid) nor another
//!   install of this cluster collects them; an archive without such a mark is left;
//! - only uploads this install recorded as begun (S3 shows no open upload's metadata), and
//!   only once older than the bundle deadline too: by then every attempt that could be
//!   sending it has ended (an upload aborted under a sender anyway is `UploadGone`, which
//!   starts it again);
//! - the store is listed before the DebugBundles: an archive seen was uploaded by a bundle
//!   that existed before the bundles were listed, so a bundle made meanwhile is never taken
//!   for gone; and an archive younger than the grace period is left for the next sweep;
//! - a list of bundles that could not be read whole deletes nothing;
//! - a location that would send its credential to a host it names (credentials.rs refuses it
//!   before any request) is skipped, with one Warning event on it per generation of the BSL.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex},
    time::Duration,
};

use k8s_openapi::api::core::v1::ObjectReference;
use kube::{
    Api, Resource, ResourceExt,
    api::{DynamicObject, ListParams},
    runtime::events::EventType,
};
use tokio_util::sync::CancellationToken;
use velero_debug_crd::DebugBundle;

use crate::{
    bundle::{ArchiveStore, archive_store_lookup},
    context::Context,
    event_publisher::Said,
    install_record::upload_entry,
    kubernetes,
    storage::{
        ObjectStore, OpenUpload, StoredObject,
        location::{ArchiveOwner, INSTALL_MARK, StorageLocation, written_by_us},
    },
    velero,
};

/// Keys listed per location and sweep; the rest waits for the next sweep.
const MAX_LISTED: usize = 10_000;
/// How long one location's sweep may take, so that a stalled store (the S3 client waits up
/// to two minutes per attempt) does not hold up the locations after it.
const LOCATION_LIMIT: Duration = Duration::from_secs(60);

/// Sweeps every storage location of Velero's namespace now and then every interval, until
/// shutdown. `bundles` is the controller's scope of DebugBundles.
pub(crate) async fn run(bundles: Api<DebugBundle>, velero_namespace: String, ctx: Arc<Context>) {
    if ctx.install_mark.is_empty() || ctx.install_record.is_none() {
        tracing::warn!(
            "no install mark (the DebugBundle CRD could not be read, or the install record not written, at start): archives left behind are not collected"
        );
        return;
    }
    let told = RefusalsTold::default();
    every(ctx.config.sweeps.interval, &ctx.shutdown, || {
        sweep(&bundles, &velero_namespace, &ctx, &told)
    })
    .await;
}

/// The refused locations already told of, by name: the generation told of. A sweep runs
/// every few seconds in tests and hourly by default; an unchanged BSL is told of once, and
/// again only once its spec is edited (or after a restart).
#[derive(Default)]
struct RefusalsTold(Mutex<HashMap<String, String>>);

impl RefusalsTold {
    /// True the first time `name` at `version` is seen refused.
    fn first(&self, name: &str, version: &str) -> bool {
        let mut told = self.0.lock().unwrap_or_else(|e| e.into_inner());
        told.insert(name.to_string(), version.to_string())
            .as_deref()
            != Some(version)
    }

    /// Forgets the locations no longer listed, so the map is bounded by the BSLs that exist.
    fn keep_only(&self, names: &BTreeSet<String>) {
        let mut told = self.0.lock().unwrap_or_else(|e| e.into_inner());
        told.retain(|name, _| names.contains(name));
    }
}

/// Runs `work` now and then every `interval` until `shutdown`, which also ends a run under
/// way: the term's end waits for every controller, so a sweep held by a stalled store must
/// not keep a process that lost the lease from standing down (nor let it delete after).
async fn every<F: Future<Output = ()>>(
    interval: Duration,
    shutdown: &CancellationToken,
    mut work: impl FnMut() -> F,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let runs = async {
        loop {
            tick.tick().await;
            work().await;
        }
    };
    tokio::select! {
        () = runs => {}
        _ = shutdown.cancelled() => {}
    }
}

async fn sweep(
    bundles: &Api<DebugBundle>,
    velero_namespace: &str,
    ctx: &Context,
    told: &RefusalsTold,
) {
    let timeout = ctx.config.limits.api_timeout;
    let locations: Api<DynamicObject> = Api::namespaced_with(
        ctx.client.clone(),
        velero_namespace,
        &velero::resource("BackupStorageLocation"),
    );
    let listed = match kubernetes::with_timeout(timeout, locations.list(&ListParams::default()))
        .await
    {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "garbage collection: storage locations could not be listed");
            return;
        }
    };
    told.keep_only(&listed.items.iter().map(|b| b.name_any()).collect());
    for bsl in listed.items {
        let Ok(location) = StorageLocation::from_bsl(&bsl) else {
            continue;
        };
        if location.read_only {
            continue;
        }
        let bsl_ref = bsl.object_ref(&velero::resource("BackupStorageLocation"));
        let refused = Refused {
            regarding: &bsl_ref,
            // Its spec's generation: Velero writes the status at every validation, which
            // would make every sweep tell again.
            version: bsl
                .metadata
                .generation
                .map(|g| g.to_string())
                .or_else(|| bsl.resource_version())
                .unwrap_or_default(),
            told,
        };
        let swept = sweep_location(bundles, velero_namespace, &location, ctx, refused);
        if tokio::time::timeout(LOCATION_LIMIT, swept).await.is_err() {
            tracing::warn!(location = %location.name, limit = ?LOCATION_LIMIT, "garbage collection: the location's store did not answer in time; the next sweep tries again");
        }
    }
}

/// Where a sweep tells of a location it refuses: the BSL, its version, what was told.
struct Refused<'a> {
    regarding: &'a ObjectReference,
    version: String,
    told: &'a RefusalsTold,
}

impl Refused<'_> {
    async fn tell(&self, name: &str, why: &str, ctx: &Context) {
        tracing::warn!(location = %name, error = %why, "garbage collection: location refused; skipped, nothing sent");
        if !self.told.first(name, &self.version) {
            return;
        }
        let note = format!(
            "The operator's garbage collection skipped this location, sending nothing: {why}"
        );
        let said = Said {
            type_: EventType::Warning,
            reason: "StorageLocationRefused",
            action: "CollectGarbage",
            note: &note,
        };
        ctx.events.publish(self.regarding, None, said).await;
    }
}

async fn sweep_location(
    bundles: &Api<DebugBundle>,
    velero_namespace: &str,
    location: &StorageLocation,
    ctx: &Context,
    refused: Refused<'_>,
) {
    let name = &location.name;
    let store = match archive_store_lookup(
        &ctx.client,
        velero_namespace,
        name,
        &ctx.config.trusted_storage_hosts,
    )
    .await
    {
        Ok(ArchiveStore::Ready(store)) => *store,
        Ok(ArchiveStore::Refused(why)) => {
            refused.tell(name, &why.to_string(), ctx).await;
            return;
        }
        Ok(ArchiveStore::Gone) => {
            tracing::info!(location = %name, "garbage collection: the location or its credential is gone; skipped");
            return;
        }
        Err(e) => {
            tracing::warn!(location = %name, error = %e, "garbage collection: skipped");
            return;
        }
    };
    let prefix = location.namespace_archives_prefix(velero_namespace);
    // The store first, then the bundles (see the module's comment).
    let objects = match store.list(&prefix, MAX_LISTED).await {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!(location = %name, error = %e, "garbage collection: archives could not be listed");
            return;
        }
    };
    let uploads = match store.list_uploads(&prefix, MAX_LISTED).await {
        Ok(u) => u.unwrap_or_default(),
        Err(e) => {
            tracing::info!(location = %name, error = %e, "garbage collection: open uploads could not be listed");
            Vec::new()
        }
    };
    let Some(live) = live_bundles(bundles, ctx).await else {
        return;
    };
    // After the store: an upload listed was recorded before it was begun.
    let Some(record) = &ctx.install_record else {
        return;
    };
    let recorded = match record.read().await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "garbage collection: the install record could not be read; nothing deleted");
            return;
        }
    };
    let uploads = recorded_uploads(name, uploads, &recorded.uploads);
    let now = jiff::Timestamp::now().as_second();
    let grace = Grace {
        archives: ctx.config.sweeps.grace,
        uploads: ctx.config.sweeps.grace.max(ctx.config.bundle_deadline),
    };
    let found = orphans(
        location,
        velero_namespace,
        &objects,
        &uploads,
        &live,
        now,
        grace,
    );
    delete_orphans(&store, location, found, &recorded.writers, ctx).await;
}

/// Deletes the orphans of one location (archives only when one of `writers` wrote them),
/// while this term lasts.
async fn delete_orphans(
    store: &ObjectStore,
    location: &StorageLocation,
    found: Orphans,
    writers: &BTreeSet<String>,
    ctx: &Context,
) {
    let name = &location.name;
    for key in found.archives {
        // Deletes only while this term lasts.
        if ctx.still_leading().is_err() {
            return;
        }
        delete_archive(store, name, &key, writers, ctx).await;
    }
    for upload in found.uploads {
        if ctx.still_leading().is_err() {
            return;
        }
        store.abort_upload(&upload.key, &upload.id).await;
        tracing::info!(location = %name, key = upload.key, upload_id = upload.id, "garbage collection: aborted an upload no DebugBundle is making");
        ctx.metrics.orphans_deleted.inc();
        if let Some(record) = &ctx.install_record {
            let entry = upload_entry(name, &upload.key, &upload.id);
            if let Err(e) = record.upload_ended(&entry).await {
                tracing::info!(error = %e, "garbage collection: the upload's record is left for its retention");
            }
        }
    }
}

/// Deletes an orphan archive if this install wrote it (see the module's comment).
async fn delete_archive(
    store: &ObjectStore,
    location: &str,
    key: &str,
    writers: &BTreeSet<String>,
    ctx: &Context,
) {
    let ours = |mark: &String| written_by_us(mark, &ctx.install_mark, writers);
    match store.metadata(key).await {
        Ok(Some(meta)) if meta.get(INSTALL_MARK).is_some_and(ours) => {}
        Ok(_) => {
            tracing::debug!(location = %location, key, "garbage collection: not this install's archive; left");
            return;
        }
        Err(e) => {
            tracing::info!(location = %location, key, error = %e, "garbage collection: could not be read; left");
            return;
        }
    }
    match store.delete(key).await {
        Ok(()) => {
            tracing::info!(location = %location, key, "garbage collection: deleted an archive no DebugBundle refers to");
            ctx.metrics.orphans_deleted.inc();
        }
        Err(e) => {
            tracing::warn!(location = %location, key, error = %e, "garbage collection: could not delete an orphan archive")
        }
    }
}

/// The owners of every DebugBundle in scope, or None when they could not all be listed.
async fn live_bundles(bundles: &Api<DebugBundle>, ctx: &Context) -> Option<BTreeSet<ArchiveOwner>> {
    let mut live = BTreeSet::new();
    let mut params = ListParams::default().limit(500);
    loop {
        let page = kubernetes::with_timeout(
            ctx.config.limits.api_timeout,
            bundles.list_metadata(&params),
        )
        .await;
        let page = match page {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "garbage collection: DebugBundles could not be listed; nothing deleted");
                return None;
            }
        };
        for meta in &page.items {
            let m = &meta.metadata;
            if let (Some(ns), Some(name), Some(uid)) = (&m.namespace, &m.name, &m.uid) {
                live.insert(ArchiveOwner::of(ns, name, uid));
            }
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Some(live),
        }
    }
}

/// The open uploads of `location` this install recorded as begun (`recorded`: the entries of
/// install_record.rs); no other may be aborted, whatever folder it is in.
pub(crate) fn recorded_uploads(
    location: &str,
    uploads: Vec<OpenUpload>,
    recorded: &BTreeSet<String>,
) -> Vec<OpenUpload> {
    uploads
        .into_iter()
        .filter(|u| recorded.contains(&upload_entry(location, &u.key, &u.id)))
        .collect()
}

/// What a sweep of one location deletes.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Orphans {
    pub archives: Vec<String>,
    pub uploads: Vec<OpenUpload>,
}

/// How old an orphan must be before it is deleted.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grace {
    pub archives: Duration,
    /// At least the bundle deadline (see the module's comment).
    pub uploads: Duration,
}

/// The archives and open uploads of `location`, in the folder of `namespace`, that belong to
/// no bundle of `live` and are older than their grace at `now` (seconds since the epoch).
/// Pure, so the rules are tested without a store.
pub(crate) fn orphans(
    location: &StorageLocation,
    namespace: &str,
    objects: &[StoredObject],
    uploads: &[OpenUpload],
    live: &BTreeSet<ArchiveOwner>,
    now: i64,
    grace: Grace,
) -> Orphans {
    let old_enough =
        |at: i64, grace: Duration| at > 0 && now.saturating_sub(at) >= grace.as_secs() as i64;
    let orphaned = |key: &str| {
        location
            .archive_owner(key)
            .is_some_and(|owner| owner.namespace == namespace && !live.contains(&owner))
    };
    Orphans {
        archives: objects
            .iter()
            .filter(|o| orphaned(&o.key) && old_enough(o.written, grace.archives))
            .map(|o| o.key.clone())
            .collect(),
        uploads: uploads
            .iter()
            .filter(|u| orphaned(&u.key) && old_enough(u.begun, grace.uploads))
            .cloned()
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Runs `every` (a minute apart) with a sweep that is `work`, until shutdown `stop_after`;
    /// returns how many sweeps began, or None when the sweeps outlived shutdown by 5 s.
    async fn sweeps_begun<F: Future<Output = ()>>(
        stop_after: Duration,
        work: impl Fn() -> F,
    ) -> Option<usize> {
        let shutdown = CancellationToken::new();
        let runs = AtomicUsize::new(0);
        let sweeps = every(Duration::from_secs(60), &shutdown, || {
            runs.fetch_add(1, Ordering::SeqCst);
            work()
        });
        let stop = async {
            tokio::time::sleep(stop_after).await;
            shutdown.cancel();
        };
        let limit = stop_after + Duration::from_secs(5);
        let ended = tokio::time::timeout(limit, async { tokio::join!(sweeps, stop) }).await;
        ended.ok().map(|_| runs.load(Ordering::SeqCst))
    }

    #[tokio::test(start_paused = true)]
    async fn sweeps_run_at_start_then_each_interval_until_shutdown() {
        let begun = sweeps_begun(Duration::from_secs(150), || std::future::ready(())).await;
        assert_eq!(begun, Some(3), "at 0, 60 and 120 s");
    }

    #[tokio::test(start_paused = true)]
    async fn a_sweep_held_by_a_stalled_store_ends_with_the_term() {
        let begun = sweeps_begun(Duration::from_secs(5), std::future::pending::<()>).await;
        assert_eq!(begun, Some(1), "None: the sweep outlived the term");
    }

    const BSL: &str = r#"
apiVersion: velero.io/v1
kind: BackupStorageLocation
metadata: {name: default, namespace: velero}
spec:
  provider: aws
  objectStorage: {bucket: velero, prefix: cluster-a}
  config: {region: minio}
"#;
    const NOW: i64 = 1_800_000_000;
    const GRACE: Grace = Grace {
        archives: Duration::from_secs(900),
        uploads: Duration::from_secs(1800),
    };

    fn location() -> StorageLocation {
        StorageLocation::from_bsl(&serde_yaml::from_str(BSL).unwrap()).unwrap()
    }

    fn object(key: &str, age: i64) -> StoredObject {
        StoredObject {
            key: key.into(),
            written: NOW - age,
        }
    }

    #[test]
    fn a_refused_location_is_told_of_once_per_version_and_forgotten_when_gone() {
        let told = RefusalsTold::default();
        assert!(told.first("evil", "1"));
        assert!(!told.first("evil", "1"));
        assert!(told.first("evil", "2"), "an edit is told of again");
        assert!(told.first("other", "7"));
        told.keep_only(&BTreeSet::from(["other".to_string()]));
        assert!(told.first("evil", "2"), "forgotten once no longer listed");
        assert!(!told.first("other", "7"));
    }

    #[test]
    fn only_old_archives_of_gone_bundles_are_orphans() {
        let loc = location();
        let live_uid = "aaaaaaaa-0000-0000-0000-000000000000";
        let gone_uid = "bbbbbbbb-0000-0000-0000-000000000000";
        let live: BTreeSet<_> = [ArchiveOwner::of("velero", "kept", live_uid)].into();
        let gone = loc.archive_key("velero", "gone", gone_uid);
        let objects = [
            object(&loc.archive_key("velero", "kept", live_uid), 86_400),
            object(&gone, 86_400),
            // Too young: its bundle may not be listed yet.
            object(&loc.archive_key("velero", "young", gone_uid), 60),
            // Same name, another uid: the bundle was made again; the old archive is orphaned.
            object(&loc.archive_key("velero", "kept", gone_uid), 1000),
            // Not the shape of an archive key: never ours to delete.
            object(
                "cluster-a/plugins/velero-debug-operator/bundles/velero/README.txt",
                86_400,
            ),
            object("cluster-a/backups/b1/b1-logs.gz", 86_400),
            // No time: not known to be old.
            StoredObject {
                key: loc.archive_key("velero", "untimed", gone_uid),
                written: 0,
            },
        ];
        let uploads = [
            OpenUpload {
                key: gone.clone(),
                id: "u1".into(),
                begun: NOW - 3600,
            },
            OpenUpload {
                key: loc.archive_key("velero", "kept", live_uid),
                id: "u2".into(),
                begun: NOW - 3600,
            },
        ];
        let found = orphans(&loc, "velero", &objects, &uploads, &live, NOW, GRACE);
        assert_eq!(
            found.archives,
            [gone.clone(), loc.archive_key("velero", "kept", gone_uid)]
        );
        assert_eq!(found.uploads.len(), 1);
        assert_eq!(found.uploads[0].id, "u1");
    }

    #[test]
    fn only_uploads_this_install_recorded_may_be_aborted() {
        let upload = |key: &str, id: &str| OpenUpload {
            key: key.into(),
            id: id.into(),
            begun: NOW - 86_400,
        };
        let ours = upload(
            "p/plugins/velero-debug-operator/bundles/velero/a-1.tar.gz",
            "u1",
        );
        let recorded = BTreeSet::from([upload_entry("default", &ours.key, &ours.id)]);
        let listed = vec![
            ours.clone(),
            // Another cluster's upload in our folder, on the same key even.
            upload(&ours.key, "u2"),
            // Recorded for another location.
            upload(
                "p/plugins/velero-debug-operator/bundles/velero/b-2.tar.gz",
                "u1",
            ),
        ];
        assert_eq!(recorded_uploads("default", listed, &recorded), [ours]);
        assert_eq!(
            recorded_uploads("other", vec![upload("k", "u1")], &recorded),
            []
        );
    }

    #[test]
    fn nothing_is_an_orphan_within_the_grace_period() {
        let loc = location();
        let key = loc.archive_key("velero", "b", "cccccccc-0000");
        let found = orphans(
            &loc,
            "velero",
            &[object(&key, 899)],
            &[],
            &BTreeSet::new(),
            NOW,
            GRACE,
        );
        assert_eq!(found, Orphans::default());
        let found = orphans(
            &loc,
            "velero",
            &[object(&key, 900)],
            &[],
            &BTreeSet::new(),
            NOW,
            GRACE,
        );
        assert_eq!(found.archives, [key]);
    }

    #[test]
    fn another_namespace_folder_is_never_swept() {
        let loc = location();
        let theirs = loc.archive_key("velero-b", "gone", "dddddddd-0000");
        let upload = OpenUpload {
            key: theirs.clone(),
            id: "u3".into(),
            begun: NOW - 86_400,
        };
        let found = orphans(
            &loc,
            "velero",
            &[object(&theirs, 86_400)],
            &[upload],
            &BTreeSet::new(),
            NOW,
            GRACE,
        );
        assert_eq!(found, Orphans::default());
    }

    #[test]
    fn an_open_upload_waits_for_the_longer_of_the_graces() {
        let loc = location();
        let key = loc.archive_key("velero", "gone", "eeeeeeee-0000");
        let upload = |age: i64| OpenUpload {
            key: key.clone(),
            id: "u4".into(),
            begun: NOW - age,
        };
        let found = |age| {
            orphans(
                &loc,
                "velero",
                &[],
                &[upload(age)],
                &BTreeSet::new(),
                NOW,
                GRACE,
            )
        };
        assert_eq!(found(1799).uploads, []);
        assert_eq!(found(1800).uploads, [upload(1800)]);
    }

    #[test]
    fn the_install_mark_names_the_cluster_the_namespace_served_and_the_writer() {
        use crate::storage::location::install_mark;
        assert_eq!(
            install_mark("uid-1", Some("velero"), "w1"),
            "uid-1/velero/w1"
        );
        assert_ne!(
            install_mark("uid-1", Some("velero"), "w1"),
            install_mark("uid-1", Some("velero-b"), "w1")
        );
        assert_eq!(install_mark("uid-1", None, "w1"), "uid-1/*/w1");
        assert_eq!(install_mark("", Some("velero"), "w1"), "");
        assert_eq!(install_mark("uid-1", Some("velero"), ""), "");
    }

    #[test]
    fn an_archive_is_ours_only_when_its_writer_is_in_our_record() {
        use crate::storage::location::written_by_us;
        let own = "uid-1/velero/w-now";
        let writers = BTreeSet::from(["w-now".to_string(), "w-earlier".to_string()]);
        assert!(written_by_us("uid-1/velero/w-earlier", own, &writers));
        // A clone from an etcd snapshot: same uid and namespace, a writer registered there.
        assert!(!written_by_us("uid-1/velero/w-clone", own, &writers));
        // Another install of this cluster, another cluster, the mark before writers.
        assert!(!written_by_us("uid-1/velero-b/w-earlier", own, &writers));
        assert!(!written_by_us("uid-2/velero/w-earlier", own, &writers));
        assert!(!written_by_us("uid-1/velero", own, &writers));
        assert!(!written_by_us("", own, &writers));
        assert!(!written_by_us("uid-1/velero/w-earlier", "", &writers));
    }
}

//! Faults on the real environment (issue 15): the operator SIGKILLed again and again while
//! bundles are in flight, the object store stopped, the object store stalled. Every test
//! here restarts the operator or the store, so their names start with `serial_` and
//! run-e2e.sh runs them alone.
//!
//! `make test` runs a short version; `make chaos` the full one, through these settings:
//! VDO_CHAOS_KILLS (SIGKILLs of the leader, 3; chaos 20), VDO_CHAOS_LOG_MIB (the data-path
//! log each of the ten bundles reads, 4; chaos 16), VDO_CHAOS_OUTAGE_SECONDS (how long the
//! store is down, 20; chaos 60), VDO_CHAOS_SEED (the kill moments; printed).

use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
    time::Duration,
};

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::coordination::v1::Lease;
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, ListParams},
};
use velero_debug_crd::{DebugBundle, Phase};
use velero_debug_e2e::{
    archives::download,
    backups::real_backup,
    bundles::{apply_bundle, condition_reason, wait_finished},
    context::TestCtx,
    env::Env,
    holding_proxy::{Hold, HoldingProxy},
    kwok_logs::data_path_log,
    operators::{operator_metric, process_live, restart_operator_replica, restart_operators},
    polling::eventually,
    recorded_events::times_recorded,
    storage_locations::storage_location,
};

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Removes a file when dropped (the CRI log files these tests write for kwok).
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The leader Lease's holder, when it is a process that is alive.
async fn live_leader(env: &Env, client: &Client) -> Result<Option<String>> {
    let holder = velero_debug_e2e::operators::lease_holder(client, "velero").await?;
    if holder.is_empty() {
        return Ok(None);
    }
    let alive = env.operator_pid(&holder).is_ok_and(process_live);
    Ok(alive.then_some(holder))
}

async fn kill(env: &Env, identity: &str) -> Result<()> {
    let pid = env.operator_pid(identity)?;
    let status = tokio::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .await?;
    ensure!(status.success(), "kill -KILL {identity} failed");
    // Gone before the test goes on (a zombie counts as gone: PID 1 reaps it late).
    eventually(
        "the killed process to be gone",
        Duration::from_secs(10),
        || async { Ok((!process_live(pid)).then_some(())) },
    )
    .await
}

/// The index of operator process `identity` (`operator-<i>`).
fn replica_index(identity: &str) -> Result<u32> {
    Ok(identity
        .strip_prefix("operator-")
        .context("not an operator identity")?
        .parse()?)
}

/// A small pseudo-random generator: the kill moments are random, and reproducible from the
/// seed the test prints.
struct Moments(u64);

impl Moments {
    fn next_millis(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below.max(1)
    }
}

/// Open multipart uploads in the bucket, as the S3 API lists them (s3s-fs lists them with
/// our edit, tests/env/tools/s3s-fs-list-uploads.py), and as its own folder holds them (one
/// `.upload-<id>.json` each): both must agree.
async fn open_uploads(env: &Env) -> Result<BTreeSet<String>> {
    let listed = env
        .s3_client(&env.s3.endpoint)
        .list_multipart_uploads()
        .bucket(&env.s3.bucket)
        .send()
        .await?;
    let by_api: BTreeSet<String> = listed
        .uploads()
        .iter()
        .filter_map(|u| u.upload_id().map(str::to_string))
        .collect();
    let mut in_folder = BTreeSet::new();
    for entry in std::fs::read_dir(&env.s3.data_dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if let Some(id) = name
            .strip_prefix(".upload-")
            .and_then(|n| n.strip_suffix(".json"))
        {
            in_folder.insert(id.to_string());
        }
    }
    ensure!(
        by_api == in_folder,
        "ListMultipartUploads {by_api:?} but the store holds {in_folder:?}"
    );
    Ok(by_api)
}

/// Keys of the bucket's objects under `prefix`.
async fn keys_under(env: &Env, prefix: &str) -> Result<Vec<String>> {
    let listed = env
        .s3_client(&env.s3.endpoint)
        .list_objects_v2()
        .bucket(&env.s3.bucket)
        .prefix(prefix)
        .send()
        .await?;
    Ok(listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect())
}

/// What a finished bundle's status says about its one completion.
#[derive(Debug, PartialEq)]
struct Completion {
    key: String,
    completed_at: String,
}

fn completion(b: &DebugBundle) -> Result<Completion> {
    let status = b.status.as_ref().context("no status")?;
    ensure!(
        status.phase == Some(Phase::Completed),
        "{} is {:?}: {}",
        b.name_any(),
        status.phase,
        condition_reason(b)
    );
    ensure!(
        status.upload_id.is_none(),
        "{}: upload id left",
        b.name_any()
    );
    Ok(Completion {
        key: status.archive.as_ref().context("no archive")?.key.clone(),
        completed_at: format!("{:?}", status.completion_time),
    })
}

/// Phases of the bundles in `names`, as the API server has them now.
/// Where each of the bundles in `names` stands, as the API server has it now.
#[derive(Debug)]
struct Standing {
    phase: Option<Phase>,
    /// When its current attempt started collecting (whole seconds).
    started: Option<jiff::Timestamp>,
}

async fn standings(
    bundles: &Api<DebugBundle>,
    names: &[String],
) -> Result<BTreeMap<String, Standing>> {
    Ok(bundles
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .filter(|b| names.contains(&b.name_any()))
        .map(|b| {
            let status = b.status.as_ref();
            let standing = Standing {
                phase: status.and_then(|s| s.phase),
                started: status.and_then(|s| s.start_time.as_ref()).map(|t| t.0),
            };
            (b.name_any(), standing)
        })
        .collect())
}

/// How many bundles the term that began at `term_start` is collecting and uploading: their
/// attempt started in it (a phase left by a killed leader's term does not count).
fn in_flight(
    standings: &BTreeMap<String, Standing>,
    term_start: jiff::Timestamp,
) -> (usize, usize) {
    let count = |p: Phase| {
        standings
            .values()
            .filter(|s| s.phase == Some(p) && s.started.is_some_and(|t| t >= term_start))
            .count()
    };
    (count(Phase::Collecting), count(Phase::Uploading))
}

/// When the Lease's holder acquired it, cut to whole seconds like a bundle's start time.
async fn term_start(client: &Client) -> Result<jiff::Timestamp> {
    let lease = Api::<Lease>::namespaced(client.clone(), "velero")
        .get("velero-debug-operator")
        .await?;
    let acquired = lease
        .spec
        .and_then(|s| s.acquire_time)
        .context("the Lease has no acquireTime")?
        .0;
    Ok(jiff::Timestamp::from_second(acquired.as_second())?)
}

/// Bundles of `backup` applied until `names` holds `unfinished` bundles not yet finished, so
/// every term of a leader has work to cut short.
async fn top_up(
    t: &TestCtx,
    backup: &str,
    names: &mut Vec<String>,
    unfinished: usize,
) -> Result<()> {
    let (env, client) = (&t.env, &t.client);
    let bundles: Api<DebugBundle> = Api::namespaced(client.clone(), &env.namespace);
    let open = standings(&bundles, names)
        .await?
        .values()
        .filter(|s| !matches!(s.phase, Some(Phase::Completed | Phase::Failed)))
        .count();
    for _ in open..unfinished {
        let spec = serde_json::json!({"backup": backup});
        names.push(apply_bundle(t, spec).await?);
    }
    Ok(())
}

/// Bundles with large logs, fed so that ten are unfinished at each kill; two replicas with
/// leader election; the leader SIGKILLed VDO_CHAOS_KILLS times, each at a random moment of its
/// leadership once a bundle is collecting or uploading. Every kill must cut work short: the
/// bundles the killed leader left collecting or uploading are counted right after it, and a
/// kill that left none fails the test. Afterwards every bundle is Completed once (its
/// completion never redone), has exactly one archive, and no multipart upload is left open.
#[tokio::test]
async fn serial_faults_leaders_killed_at_random_leave_each_bundle_completed_once() -> Result<()> {
    let t = &TestCtx::new().await?;
    let kills = setting("VDO_CHAOS_KILLS", 3);
    let seed = setting(
        "VDO_CHAOS_SEED",
        jiff::Timestamp::now().as_millisecond() as u64,
    ) | 1;
    println!("{kills} kills, VDO_CHAOS_SEED={seed}");
    let mut moments = Moments(seed);
    let (ns, backup, backup_uid) = real_backup(t, "kills").await?;
    let _log = RemoveOnDrop(
        data_path_log(
            t,
            (&backup, &backup_uid, &ns),
            (setting("VDO_CHAOS_LOG_MIB", 4) as usize) << 20,
        )
        .await?,
    );
    // Every kill counts as an attempt of each bundle it cuts short (so a bundle that crashes
    // its operator ends Failed instead of looping); here no bundle is to blame.
    let settings = [
        ("VDO_MAX_ATTEMPTS", (kills + 5).to_string()),
        ("VDO_UPLOAD_BYTES_PER_SECOND", (1u64 << 20).to_string()),
    ];
    restart_operators(2, &settings).await?;
    let uploads_before = open_uploads(&t.env).await?;

    let mut names = Vec::new();
    let bundles: Api<DebugBundle> = Api::namespaced(t.client.clone(), &t.env.namespace);
    let mut killed: Option<String> = None;
    let mut hit = BTreeMap::from([("collecting", 0), ("uploading", 0)]);
    for k in 0..kills {
        // The other replica takes over (once the Lease of the killed one expired); only then
        // is the killed one brought back, as a standby: a process restarted under the same
        // identity would take its own Lease back at once.
        let leader = eventually("another live leader", Duration::from_secs(90), || async {
            let leader = live_leader(&t.env, &t.client).await?;
            Ok(leader.filter(|l| Some(l) != killed.as_ref()))
        })
        .await?;
        if let Some(before) = killed.take() {
            restart_operator_replica(replica_index(&before)?, &settings).await?;
        }
        // A random moment of the term, then the first moment work is in flight.
        let wait = moments.next_millis(20_000);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        top_up(t, &backup, &mut names, 10).await?;
        // Work in flight, said twice: the leader's own count of bundles holding a slot, and a
        // bundle whose attempt of this term is collecting or uploading.
        let term = term_start(&t.client).await?;
        let waited = tokio::time::Instant::now();
        let gauge = loop {
            let gauge = operator_metric(&t.env, &leader, "velero_debug_bundles_in_flight").await?;
            let (collecting, uploading) = in_flight(&standings(&bundles, &names).await?, term);
            if gauge > 0 && collecting + uploading > 0 {
                break gauge;
            }
            ensure!(
                waited.elapsed() < Duration::from_secs(120),
                "kill {}: {leader} had no bundle in flight for 120 s",
                k + 1
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        kill(&t.env, &leader).await?;
        // What the killed leader left in flight: nobody writes these bundles until its Lease
        // expires, so this is what the kill cut short.
        let after = standings(&bundles, &names).await?;
        let (collecting, uploading) = in_flight(&after, term);
        println!(
            "kill {}: {leader} after {wait} ms (+{} ms to work in flight), {gauge} in flight by its metrics: {collecting} collecting, {uploading} uploading, of {} bundles",
            k + 1,
            waited.elapsed().as_millis(),
            names.len()
        );
        ensure!(
            collecting + uploading > 0,
            "kill {} hit no work in flight: {after:?}",
            k + 1
        );
        *hit.entry("collecting").or_default() += usize::from(collecting > 0);
        *hit.entry("uploading").or_default() += usize::from(uploading > 0);
        killed = Some(leader);
    }
    println!("kills with a bundle collecting / uploading: {hit:?} of {kills}");
    if let Some(before) = killed {
        restart_operator_replica(replica_index(&before)?, &settings).await?;
    }

    let mut completions = BTreeMap::new();
    for name in &names {
        let done = wait_finished(t, name, Duration::from_secs(600)).await?;
        completions.insert(name.clone(), completion(&done)?);
    }
    // Completed once: a while later nothing was redone, by either process.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let mut recorded = 0;
    for name in &names {
        let again = completion(&bundles.get(name).await?)?;
        ensure!(
            completions[name] == again,
            "{name} completed again: {:?} then {again:?}",
            completions[name]
        );
        // A leader killed between the status write and the event loses the event.
        let events = times_recorded(t, name, "Completed").await?;
        ensure!(events <= 1, "{name} was recorded Completed {events} times");
        recorded += events as u64;
        let key = &completions[name].key;
        let folder = key.rsplit_once('/').map(|(f, _)| f).unwrap_or_default();
        let archives = keys_under(&t.env, &format!("{folder}/{name}-")).await?;
        ensure!(archives == [key.clone()], "{name}: archives {archives:?}");
    }
    ensure!(
        recorded + kills >= names.len() as u64,
        "{recorded} Completed events for {} bundles and {kills} kills",
        names.len()
    );
    // One of them downloads and reads back whole.
    download(&bundles.get(&names[0]).await?).await?;
    let left: Vec<_> = open_uploads(&t.env)
        .await?
        .difference(&uploads_before)
        .cloned()
        .collect();
    ensure!(left.is_empty(), "multipart uploads left open: {left:?}");

    for name in &names {
        bundles.delete(name, &DeleteParams::default()).await?;
    }
    restart_operators(1, &[]).await?;
    Ok(())
}

/// The S3 server's process, stopped and started again as env-up.sh started it.
struct Store {
    pid_file: PathBuf,
    command: Vec<String>,
    log: PathBuf,
}

impl Store {
    fn of(env: &Env) -> Result<Store> {
        let state = env.state_dir()?;
        let pid_file = state.join("pids/s3.pid");
        let pid = std::fs::read_to_string(&pid_file)?.trim().to_string();
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))?;
        let command = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        Ok(Store {
            pid_file,
            command,
            log: state.join("logs/s3.log"),
        })
    }

    fn pid(&self) -> Result<String> {
        Ok(std::fs::read_to_string(&self.pid_file)?.trim().to_string())
    }

    async fn signal(&self, signal: &str) -> Result<()> {
        let status = tokio::process::Command::new("kill")
            .args([signal, &self.pid()?])
            .status()
            .await?;
        ensure!(status.success(), "kill {signal} of the store failed");
        Ok(())
    }

    async fn stop(&self) -> Result<()> {
        let pid: u32 = self.pid()?.parse()?;
        self.signal("-KILL").await?;
        eventually("the store to stop", Duration::from_secs(10), || async {
            Ok((!process_live(pid)).then_some(()))
        })
        .await
    }

    /// Starts the server as env-up.sh did, without waiting for it.
    fn spawn(&self) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = std::process::Command::new("setsid")
            .args(&self.command)
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        std::fs::write(&self.pid_file, child.id().to_string())?;
        Ok(())
    }

    async fn start(&self, env: &Env) -> Result<()> {
        self.spawn()?;
        let s3 = env.s3_client(&env.s3.endpoint);
        eventually("the store to answer", Duration::from_secs(30), || async {
            Ok(s3
                .head_bucket()
                .bucket(&env.s3.bucket)
                .send()
                .await
                .ok()
                .map(|_| ()))
        })
        .await
    }

    fn alive(&self) -> bool {
        self.pid()
            .is_ok_and(|pid| pid.parse().is_ok_and(process_live))
    }
}

/// Brings the store back when a test ends early, so later tests find it.
struct StoreBack<'a> {
    store: &'a Store,
    done: bool,
}

impl Drop for StoreBack<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if let Ok(pid) = self.store.pid() {
            let _ = std::process::Command::new("kill")
                .args(["-CONT", &pid])
                .status();
        }
        if !self.store.alive() {
            let _ = self.store.spawn();
        }
    }
}

/// Bundles that upload through a [`HoldingProxy`] in front of the store: `count` bundles of
/// a real backup, each naming a storage location whose `s3Url` is the proxy, which holds the
/// first part of every upload. Returns once a part is held: that bundle is uploading (its
/// upload begun, its id in status) and stays so until the proxy lets go, however small or
/// fast its archive.
async fn bundles_uploading(
    t: &TestCtx,
    prefix: &str,
    count: usize,
) -> Result<(Vec<String>, HoldingProxy)> {
    let (env, client) = (&t.env, &t.client);
    let proxy = HoldingProxy::start(&env.s3.endpoint, Hold::UploadParts).await?;
    let location = storage_location(
        t,
        serde_json::json!({"config": {"s3Url": proxy.endpoint()}}),
    )
    .await?;
    let (_, backup, _) = real_backup(t, prefix).await?;
    let mut names = Vec::new();
    for _ in 0..count {
        let spec = serde_json::json!({"backup": backup, "storageLocation": location});
        names.push(apply_bundle(t, spec).await?);
    }
    proxy.wait_held(1, Duration::from_secs(120)).await?;
    let bundles: Api<DebugBundle> = Api::namespaced(client.clone(), &env.namespace);
    let mut uploading = Vec::new();
    for name in &names {
        let status = bundles.get(name).await?.status.unwrap_or_default();
        if status.phase == Some(Phase::Uploading) && status.upload_id.is_some() {
            uploading.push(name.clone());
        }
    }
    ensure!(
        !uploading.is_empty(),
        "a part is held but no bundle says it is uploading"
    );
    println!("uploading while the store is held: {uploading:?}");
    Ok((names, proxy))
}

async fn all_completed(t: &TestCtx, names: &[String]) -> Result<Vec<DebugBundle>> {
    let mut done = Vec::new();
    for name in names {
        let b = wait_finished(t, name, Duration::from_secs(420)).await?;
        completion(&b)?;
        done.push(b);
    }
    Ok(done)
}

/// The S3 server is stopped (connections refused) for VDO_CHAOS_OUTAGE_SECONDS while bundles
/// upload, then started again: every bundle completes, retried within the production
/// attempt limit (5).
#[tokio::test]
async fn serial_faults_a_store_outage_during_uploads_delays_bundles_but_loses_none() -> Result<()> {
    let t = &TestCtx::new().await?;
    let outage = Duration::from_secs(setting("VDO_CHAOS_OUTAGE_SECONDS", 20));
    restart_operators(1, &[("VDO_MAX_ATTEMPTS", "5".into())]).await?;
    let (names, proxy) = bundles_uploading(t, "outage", 4).await?;
    let store = Store::of(&t.env)?;
    let mut back = StoreBack {
        store: &store,
        done: false,
    };
    store.stop().await?;
    // The held part now meets a store that is gone, like every request after it.
    proxy.set(Hold::Nothing);
    println!("store stopped for {outage:?}");
    // The attempts the outage failed, seen while it lasts (a Completed status no longer
    // counts them).
    let bundles: Api<DebugBundle> = Api::namespaced(t.client.clone(), &t.env.namespace);
    let until = tokio::time::Instant::now() + outage;
    let mut retried = BTreeMap::new();
    while tokio::time::Instant::now() < until {
        for b in bundles.list(&ListParams::default()).await?.items {
            let s = b.status.clone().unwrap_or_default();
            if names.contains(&b.name_any()) && s.attempts.unwrap_or(0) > 0 {
                retried.insert(b.name_any(), condition_reason(&b));
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    store.start(&t.env).await?;
    back.done = true;
    println!("retried during the outage: {retried:?}");
    ensure!(
        !retried.is_empty(),
        "no bundle was retried: the outage missed them"
    );
    let done = all_completed(t, &names).await?;
    download(&done[0]).await?;
    restart_operators(1, &[]).await?;
    Ok(())
}

/// The store stops answering in the middle of an upload (the proxy holds its first part:
/// connected, read, never answered, as a frozen server is): the attempt ends at the bundle
/// deadline and is retried, instead of hanging with its collection slot; once the store
/// answers again the bundle completes. The archive is small and the upload unthrottled: the
/// moment is the held request, not a window on the clock.
#[tokio::test]
async fn serial_faults_a_stalled_store_gets_the_bundle_retried_not_hung() -> Result<()> {
    let t = &TestCtx::new().await?;
    restart_operators(
        1,
        &[
            ("VDO_MAX_ATTEMPTS", "5".into()),
            ("VDO_BUNDLE_DEADLINE", "20s".into()),
        ],
    )
    .await?;
    let (names, proxy) = bundles_uploading(t, "stall", 1).await?;
    let bundles: Api<DebugBundle> = Api::namespaced(t.client.clone(), &t.env.namespace);
    // Retried: back to Pending with an attempt counted and the reason said.
    let retried = eventually(
        "the stalled attempt to end",
        Duration::from_secs(60),
        || async {
            let b = bundles.get(&names[0]).await?;
            let s = b.status.clone().unwrap_or_default();
            Ok((s.attempts.unwrap_or(0) > 0 && s.phase == Some(Phase::Pending)).then_some(b))
        },
    )
    .await;
    proxy.set(Hold::Nothing);
    let retried = retried?;
    let reason = condition_reason(&retried);
    ensure!(
        reason.contains("DeadlineExceeded") && reason.contains("step upload"),
        "retried for another reason: {reason}"
    );
    let done = all_completed(t, &names).await?;
    download(&done[0]).await?;
    restart_operators(1, &[]).await?;
    Ok(())
}

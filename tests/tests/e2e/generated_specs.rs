//! Generated DebugBundles on the real API server: valid and invalid values of every field
//! (names, boundary dates, durations, sizes). Every bundle the API server accepts must end
//! Completed or Failed with a reason, and no duration the API server's CEL admitted may fail
//! as InvalidSpec (the operator reads exactly what CEL reads). The operator must not restart,
//! and a normal bundle completes afterwards.
//!
//! VDO_GENERATED_SPECS sets how many (`make fuzz`: 500; the suite: 60), VDO_GENERATED_SEED the
//! seed (printed, so a failing run can be repeated).
//!
//! A second test holds the operator's duration parser against the API server's CEL
//! `duration()` itself, string by string, with server-side dry runs (VDO_GENERATED_DURATIONS,
//! default 300).

use std::{collections::BTreeMap, time::Duration};

use anyhow::{Context, Result, ensure};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, DynamicObject, ListParams, PostParams},
};
use velero_debug_e2e::{
    archives::download,
    backups::real_backup,
    bundles::{apply_bundle, debug_bundles_resource, ready_condition, wait_finished},
    context::{TestCtx, unique_name},
    env::Env,
    polling::eventually,
};

/// VDO_GENERATED_SEED, else the time: printed by each test, so a failure can be repeated.
fn seed() -> u64 {
    std::env::var("VDO_GENERATED_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| jiff::Timestamp::now().as_second() as u64)
}

/// splitmix64: a few lines, deterministic for a seed, good enough to pick test values.
struct Picker(u64);

impl Picker {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn pick<'a, T>(&mut self, from: &'a [T]) -> &'a T {
        &from[(self.next() % from.len() as u64) as usize]
    }

    /// True with probability `percent` %.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

const URL_TTLS: &[&str] = &[
    "1m",
    "59s",
    "59.999s",
    "60000ms",
    "90000ms",
    "1.5h",
    ".5h",
    "1h30m",
    "168h",
    "168h0.001s",
    "167h59m59.999999999s",
    "169h",
    "-1h",
    "0",
    "1d",
    "24 h",
    "1e3s",
    "12\u{00B5}s",
    "2562047h47m16.854775807s",
    "",
];

const TTLS_AFTER_FINISHED: &[&str] = &[
    "72h", "1.5h", "0.25h", "90m", "-1ns", "never", "1h0", "+72h", "100000h", "1.5", "",
];

const SIZES: &[i64] = &[
    0,
    1023,
    1024,
    65_536,
    16 * 1024 * 1024,
    1 << 30,
    (1 << 30) + 1,
    -1,
    i64::MAX,
];

const STORAGE_LOCATIONS: &[&str] = &["default", "no-such-bsl", "My BSL", "a/b", "-x", ""];

const NODE_AGENT_LOGS: &[&str] = &["Involved", "All", "None", "Some"];

/// The `since` values: valid around now and at the edges of the calendar, and not.
fn since_values(now: jiff::Timestamp) -> Vec<String> {
    let day = now.strftime("%Y-%m-%d").to_string();
    vec![
        format!("{day}T00:00:00Z"),
        format!("{day}t00:00:00.1234567890z"),
        format!("{day}T00:00:00+23:59"),
        format!("{day}T00:00:00-99:99"),
        "0000-01-01T00:00:00Z".into(),
        "9999-12-31T23:59:59.999999999Z".into(),
        "2024-02-29T12:00:00Z".into(),
        "2023-02-29T12:00:00Z".into(),
        "2026-13-01T00:00:00Z".into(),
        "2026-11-20T24:00:00Z".into(),
        format!("{day} 00:00:00Z"),
        "yesterday".into(),
        "".into(),
    ]
}

/// A target name: the real backup (usually), a missing one, or one that is no name.
fn target_name(p: &mut Picker, backup: &str) -> String {
    match p.next() % 10 {
        0..=5 => backup.to_string(),
        6 => "no-such-target".into(),
        7 => p.pick(&["B1", "a b", "../x", "a..b", "-a", ""]).to_string(),
        8 => "a".repeat(*p.pick(&[253usize, 254])),
        _ => "x.y-z".into(),
    }
}

fn generated_spec(p: &mut Picker, backup: &str, since: &[String]) -> serde_json::Value {
    let mut spec = serde_json::Map::new();
    let name = target_name(p, backup);
    match p.next() % 12 {
        0 => {} // neither: the API server refuses it
        1 => {
            spec.insert("restore".into(), name.clone().into());
            spec.insert("backup".into(), name.into());
        }
        2..=4 => drop(spec.insert("restore".into(), name.into())),
        _ => drop(spec.insert("backup".into(), name.into())),
    }
    if p.chance(40) {
        spec.insert("since".into(), p.pick(since).clone().into());
    }
    if p.chance(40) {
        spec.insert("urlTTL".into(), (*p.pick(URL_TTLS)).into());
    }
    if p.chance(40) {
        let ttl = *p.pick(TTLS_AFTER_FINISHED);
        spec.insert("ttlAfterFinished".into(), ttl.into());
    }
    if p.chance(30) {
        spec.insert("maxLogBytesPerContainer".into(), (*p.pick(SIZES)).into());
    }
    if p.chance(20) {
        spec.insert(
            "storageLocation".into(),
            (*p.pick(STORAGE_LOCATIONS)).into(),
        );
    }
    if p.chance(20) {
        spec.insert("nodeAgentLogs".into(), (*p.pick(NODE_AGENT_LOGS)).into());
    }
    if p.chance(15) {
        spec.insert("events".into(), p.chance(50).into());
    }
    if p.chance(15) {
        spec.insert("previousLogs".into(), p.chance(50).into());
    }
    serde_json::Value::Object(spec)
}

/// The pid of the running operator process (operator-up.sh writes it).
fn operator_pid(env: &Env) -> Result<String> {
    let dir = env
        .kubeconfig
        .parent()
        .context("kubeconfig has no folder")?;
    Ok(std::fs::read_to_string(dir.join("pids/operator-0.pid"))?
        .trim()
        .to_string())
}

#[tokio::test]
async fn generated_specs_each_end_completed_or_failed_with_a_reason() -> Result<()> {
    let count: usize = std::env::var("VDO_GENERATED_SPECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let seed = seed();
    eprintln!("generated specs: {count}, VDO_GENERATED_SEED={seed}");
    let t = &TestCtx::new().await?;
    let (_, backup, _) = real_backup(t, "generated").await?;
    let pid_before = operator_pid(&t.env)?;
    let since = since_values(jiff::Timestamp::now());
    let mut picker = Picker(seed);
    let run = unique_name("gen");
    let api: Api<DynamicObject> = Api::namespaced_with(
        t.client.clone(),
        &t.env.namespace,
        &debug_bundles_resource(),
    );
    let mut accepted: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    let mut refused = 0;
    for i in 0..count {
        let spec = generated_spec(&mut picker, &backup, &since);
        let name = format!("{run}-{i}");
        let obj: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "velerodebug.io/v1alpha1", "kind": "DebugBundle",
            "metadata": {"name": name, "namespace": t.env.namespace, "labels": {"e2e/generated": run}},
            "spec": spec,
        }))?;
        match api.create(&PostParams::default(), &obj).await {
            Ok(_) => drop(accepted.insert(name, spec)),
            Err(kube::Error::Api(e)) if e.code == 422 => refused += 1,
            Err(e) => return Err(e).context(format!("creating {spec}")),
        }
    }
    eprintln!("accepted {}, refused {refused}", accepted.len());
    ensure!(
        !accepted.is_empty() && refused > 0,
        "the generator made only one kind"
    );
    let selector = ListParams::default().labels(&format!("e2e/generated={run}"));
    let outcome = eventually(
        "every accepted bundle to finish",
        Duration::from_secs(600),
        || async {
            let listed = api.list(&selector).await?.items;
            let unfinished: Vec<String> = listed
                .iter()
                .filter(|b| {
                    !matches!(
                        b.data["status"]["phase"].as_str(),
                        Some("Completed" | "Failed")
                    )
                })
                .map(|b| b.name_any())
                .collect();
            Ok(unfinished.is_empty().then_some(listed))
        },
    )
    .await;
    let finished = match outcome {
        Ok(finished) => finished,
        Err(e) => {
            let left = api.list(&selector).await?.items;
            let stuck: Vec<String> = left
                .iter()
                .filter(|b| {
                    !matches!(
                        b.data["status"]["phase"].as_str(),
                        Some("Completed" | "Failed")
                    )
                })
                .map(|b| {
                    format!(
                        "{}: {} {:?}",
                        b.name_any(),
                        accepted[&b.name_any()],
                        ready_condition(b)
                    )
                })
                .take(5)
                .collect();
            return Err(e.context(format!("stuck (first 5): {stuck:#?}")));
        }
    };
    let mut by_reason: BTreeMap<String, usize> = BTreeMap::new();
    for b in &finished {
        let (reason, message) = ready_condition(b);
        let spec = &accepted[&b.name_any()];
        ensure!(!reason.is_empty(), "{}: no reason: {spec}", b.name_any());
        ensure!(
            reason != "InternalError",
            "{}: the operator hit a bug: {message}: {spec}",
            b.name_any()
        );
        if reason == "InvalidSpec" {
            // CEL's duration() and the operator's parser must agree on everything admitted.
            for field in ["urlTTL", "ttlAfterFinished"] {
                ensure!(
                    !message.starts_with(&format!("spec.{field}:")),
                    "{}: the API server admitted {field} {} but the operator failed it: {message}",
                    b.name_any(),
                    spec[field]
                );
            }
        }
        *by_reason.entry(reason).or_default() += 1;
    }
    // No generated retention is shorter than the run: every accepted bundle is still there.
    ensure!(
        finished.len() == accepted.len(),
        "{} of {} accepted bundles are gone",
        accepted.len() - finished.len(),
        accepted.len()
    );
    eprintln!("outcomes: {by_reason:?}");
    ensure!(
        by_reason.contains_key("Completed"),
        "no generated bundle completed: {by_reason:?}"
    );
    ensure!(
        operator_pid(&t.env)? == pid_before,
        "the operator restarted during the run"
    );

    // The operator still serves: a plain bundle completes.
    let normal = apply_bundle(t, serde_json::json!({"backup": backup})).await?;
    let done = wait_finished(t, &normal, Duration::from_secs(120)).await?;
    download(&done).await?;
    api.delete_collection(&DeleteParams::default(), &selector)
        .await?;
    eventually(
        "the generated bundles to be gone",
        Duration::from_secs(120),
        || async { Ok(api.list(&selector).await?.items.is_empty().then_some(())) },
    )
    .await?;
    Ok(())
}

/// A duration-like string: mostly well-formed pieces, sometimes broken.
fn duration_text(p: &mut Picker) -> String {
    const UNITS: &[&str] = &["ns", "us", "\u{00B5}s", "\u{03BC}s", "ms", "s", "m", "h"];
    const NOT_UNITS: &[&str] = &["d", "", "H", "sec", " s", "hr"];
    const JUNK: &[&str] = &[" ", "+", "-", ".", "e3", "_", "0x", ","];
    let mut text = String::new();
    if p.chance(15) {
        text.push_str(p.pick::<&str>(&["-", "+", "--", " "]));
    }
    for _ in 0..1 + p.next() % 3 {
        let digits = p.next() % 10_u64.pow((p.next() % 12) as u32 + 1);
        if !p.chance(10) {
            text.push_str(&digits.to_string());
        }
        if p.chance(25) {
            text.push('.');
            if !p.chance(20) {
                text.push_str(&(p.next() % 1_000_000).to_string());
            }
        }
        if p.chance(85) {
            text.push_str(p.pick::<&str>(UNITS));
        } else {
            text.push_str(p.pick::<&str>(NOT_UNITS));
        }
        if p.chance(10) {
            text.push_str(p.pick::<&str>(JUNK));
        }
    }
    text
}

#[tokio::test]
async fn the_operator_reads_exactly_the_durations_the_api_server_admits() -> Result<()> {
    let count: usize = std::env::var("VDO_GENERATED_DURATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let seed = seed();
    eprintln!("generated durations: {count}, VDO_GENERATED_SEED={seed}");
    let env = Env::load()?;
    let client = env.client().await?;
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &env.namespace, &debug_bundles_resource());
    let dry_run = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let mut picker = Picker(seed);
    let fixed = [
        "0",
        "-0",
        "+0",
        "1.5h",
        "90000ms",
        ".5s",
        "5.s",
        "1h0",
        "-1ns",
        "0.0s",
        "1e3s",
        "9223372036854775807ns",
        "9223372036854775808ns",
        "2562047h47m16.854775807s",
        "2562047h47m16.854775808s",
        "12\u{00B5}s",
        "12\u{03BC}s",
        "1h 1m",
        "",
    ];
    let texts: Vec<String> = fixed
        .iter()
        .map(|t| t.to_string())
        .chain((0..count).map(|_| duration_text(&mut picker)))
        .collect();
    let (mut admitted, mut mismatches) = (0, Vec::new());
    for text in &texts {
        let obj: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "velerodebug.io/v1alpha1", "kind": "DebugBundle",
            "metadata": {"name": unique_name("dur"), "namespace": env.namespace},
            "spec": {"backup": "b1", "ttlAfterFinished": text},
        }))?;
        let server = match api.create(&dry_run, &obj).await {
            Ok(_) => true,
            Err(kube::Error::Api(e)) if e.code == 422 => false,
            Err(e) => return Err(e).context(format!("dry run of {text:?}")),
        };
        // What the CRD admits for ttlAfterFinished: at most 32 characters, duration() >= 0s.
        let ours = text.chars().count() <= 32
            && velero_debug_crd::duration::parse(text).is_ok_and(|d| !d.is_negative());
        admitted += usize::from(server);
        if server != ours {
            mismatches.push(format!("{text:?}: API server {server}, operator {ours}"));
        }
    }
    eprintln!("{} durations, {admitted} admitted", texts.len());
    ensure!(
        admitted > 10 && admitted < texts.len() - 10,
        "the generator made only one kind: {admitted} of {}",
        texts.len()
    );
    ensure!(mismatches.is_empty(), "{mismatches:#?}");
    Ok(())
}

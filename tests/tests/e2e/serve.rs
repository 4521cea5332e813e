//! `kubectl velero-debug serve` (issue 37): a bundle of a real PartiallyFailed restore served
//! on loopback answers kubectl and Velero's CLI what the live cluster answered when the bundle
//! was made (the same commands run against both, ages aside); writes fail with the server's
//! message; a hostile archive is refused.

use std::{path::Path, process::Output, time::Duration};

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod};
use kube::{Api, ResourceExt, api::PostParams};
use velero_debug_e2e::{
    backups::backup_namespace,
    bundles::{apply_bundle, wait_completed},
    context::{TestCtx, create_namespace},
    operations::pod_volume_restore,
    plugin,
    polling::eventually,
    rbac::grant_workload_reads,
    restores::{quota_refusing_configmaps, real_restore},
    served::{Served, run},
    velero_cli::settled,
    volumes::{STATIC_CLASS, static_volume},
};

/// The source namespace: a ConfigMap (the quota refuses it at restore: PartiallyFailed), a
/// pod that stays Pending (no node matches) and its claim that is never bound, so the
/// restored pod is not Ready and the operator collects it with its claim and events.
async fn source_namespace(t: &TestCtx) -> Result<String> {
    let ns = create_namespace(&t.client, &t.cleanup, "serve-src").await?;
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "settings"}, "data": {"greeting": "hello"}}))?;
    Api::<ConfigMap>::namespaced(t.client.clone(), &ns)
        .create(&PostParams::default(), &cm)
        .await?;
    let pvc: PersistentVolumeClaim = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": STATIC_CLASS,
            "resources": {"requests": {"storage": "1Gi"}}}}))?;
    let claims = Api::<PersistentVolumeClaim>::namespaced(t.client.clone(), &ns);
    claims.create(&PostParams::default(), &pvc).await?;
    // Bound, as a claim whose pod ran is: Velero with CSI on fails an unbound claim's backup.
    static_volume(t, &format!("{ns}-data"), &ns, "data").await?;
    eventually("the claim Bound", Duration::from_secs(60), || async {
        let claim = claims.get("data").await?;
        let phase = claim.status.and_then(|s| s.phase);
        Ok((phase.as_deref() == Some("Bound")).then_some(()))
    })
    .await?;
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"nodeSelector": {"velerodebug.io/e2e-no-such-node": "true"},
            "containers": [{"name": "web", "image": "registry.example.com/web:1.0"}],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]}}))?;
    let pods = Api::<Pod>::namespaced(t.client.clone(), &ns);
    eventually("the pod admitted", Duration::from_secs(60), || async {
        Ok(pods.create(&PostParams::default(), &pod).await.ok())
    })
    .await?;
    Ok(ns)
}

/// Output as kubectl prints it, each line's words with every age ("5m", "3h2m", "<unknown>",
/// "2m (x3 over 5m)") replaced: what changes between the bundle's time and now.
fn without_ages(text: &str) -> Vec<String> {
    let is_age = |w: &str| {
        let w = w.trim_matches(|c| c == '(' || c == ')');
        w == "<unknown>"
            || (!w.is_empty()
                && w.chars().next().is_some_and(|c| c.is_ascii_digit())
                && w.trim_end_matches(['s', 'm', 'h', 'd', 'y']).len() < w.len()
                && w.chars().all(|c| c.is_ascii_digit() || "smhdy".contains(c)))
    };
    // An event that recurred after the bundle was made reads "3s (x2 over 10s)" live where
    // the bundle has "10s": the repeat count goes with the ages.
    let is_repeat = |w: &str| {
        w.strip_prefix("(x")
            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
    };
    text.lines()
        .map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let mut kept = Vec::new();
            let mut i = 0;
            while i < words.len() {
                if let [w, "over", age, ..] = words[i..]
                    && is_repeat(w)
                    && is_age(age)
                {
                    i += 3;
                    continue;
                }
                kept.push(if is_age(words[i]) { "<age>" } else { words[i] });
                i += 1;
            }
            kept.join(" ")
        })
        .collect()
}

fn stdout(out: &Output, what: &str) -> Result<String> {
    ensure!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout.clone())?)
}

/// One command run against the live cluster and against the served bundle.
struct Both<'a> {
    live: &'a Path,
    served: &'a Path,
}

impl Both<'_> {
    async fn kubectl(&self, args: &[&str]) -> Result<(String, String)> {
        self.run(Path::new("kubectl"), args).await
    }

    async fn run(&self, program: &Path, args: &[&str]) -> Result<(String, String)> {
        let live = stdout(
            &run(program, self.live, args).await?,
            &format!("live {args:?}"),
        )?;
        let served = stdout(
            &run(program, self.served, args).await?,
            &format!("served {args:?}"),
        )?;
        Ok((live, served))
    }
}

/// The operator's mask (operator/src/redact): what it stands for is in the live line only.
const MASK: &str = "***REDACTED***";

/// `served` is `live` with none, some or all of its credentials masked: the pieces around each
/// mask are found in `live` in order, the first at its start and the last at its end.
fn is_live_line_masked(served: &str, live: &str) -> bool {
    if !served.contains(MASK) {
        return served == live;
    }
    let pieces: Vec<&str> = served.split(MASK).collect();
    let (first, last) = (pieces[0], pieces[pieces.len() - 1]);
    if !live.starts_with(first) || !live.ends_with(last) || live.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &live[first.len()..live.len() - last.len()];
    for piece in &pieces[1..pieces.len() - 1] {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    true
}

fn in_live(line: &str, live: &[String]) -> bool {
    live.iter().any(|l| is_live_line_masked(line, l))
}

/// Every line of `served` is a line of `live` (ages and masks aside), and `served` has more
/// than its header: the bundle holds a subset of what the cluster has by now.
fn served_lines_are_live_lines(what: &str, live: &str, served: &str) -> Result<()> {
    let live_lines = without_ages(live);
    let served_lines = without_ages(served);
    ensure!(served_lines.len() > 1, "{what}: served only {served:?}");
    for line in &served_lines {
        ensure!(
            in_live(line, &live_lines),
            "{what}: served {line:?}, not in the live output:\n{live}\nserved:\n{served}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn kubectl_and_velero_answer_from_a_served_restore_bundle_as_the_cluster_did() -> Result<()> {
    let t = &TestCtx::new().await?;
    let src = source_namespace(t).await?;
    let (backup, _) = backup_namespace(t, &src, &[]).await?;
    let restored = format!("{src}-r");
    quota_refusing_configmaps(t, &restored).await?;
    grant_workload_reads(t, &restored).await?;
    let restore = real_restore(t, &backup, &src, &restored).await?;
    let name = restore.name_any();
    let uid = restore.uid().unwrap_or_default();
    let status = serde_json::json!({"phase": "Failed", "message": "data path restore failed",
        "startTimestamp": jiff::Timestamp::now().to_string()});
    pod_volume_restore(t, (&name, &uid), (&restored, "web"), status).await?;
    settled(t, "Restore", &name).await?;
    let bundle = apply_bundle(t, serde_json::json!({"restore": name})).await?;
    wait_completed(t, &bundle, Duration::from_secs(120)).await?;

    // Served from the DebugBundle's name: downloaded and verified first.
    let served = Served::start(&t.env, &bundle).await?;
    let both = Both {
        live: &t.env.kubeconfig,
        served: &served.kubeconfig,
    };
    let kubectl_answers = compare_kubectl(&both, &restored, &name).await;
    let velero_answers = compare_velero(&both, &t.env.velero.cli, "restore", &name).await;
    let writes = writes_fail(&served.kubeconfig, &restored).await;
    served.stop().await?;
    kubectl_answers?;
    velero_answers?;
    writes
}

async fn compare_kubectl(both: &Both<'_>, restored: &str, restore: &str) -> Result<()> {
    let (live, served) = both.kubectl(&["get", "pods,pvc", "-n", restored]).await?;
    ensure!(
        without_ages(&live) == without_ages(&served),
        "get pods,pvc:\nlive:\n{live}\nserved:\n{served}"
    );
    ensure!(
        served.contains("pod/web") && served.contains("persistentvolumeclaim/data"),
        "{served}"
    );

    let (live, served) = both
        .kubectl(&["describe", "pod", "web", "-n", restored])
        .await?;
    let split = |s: &str| {
        s.split_once("\nEvents:")
            .map(|(a, b)| (a.to_string(), b.to_string()))
    };
    let ((live_pod, live_events), (served_pod, served_events)) = (
        split(&live).context("live describe has no Events")?,
        split(&served).context("served describe has no Events")?,
    );
    ensure!(
        without_ages(&live_pod) == without_ages(&served_pod),
        "describe pod:\nlive:\n{live}\nserved:\n{served}"
    );
    served_lines_are_live_lines("describe pod's events", &live_events, &served_events)?;

    let (live, served) = both.kubectl(&["get", "events", "-n", restored]).await?;
    served_lines_are_live_lines("get events", &live, &served)?;

    let selector = format!("velero.io/restore-name={restore}");
    let pvrs = ["get", "podvolumerestores", "-n", "velero", "-l", &selector];
    let (live, served) = both.kubectl(&pvrs).await?;
    ensure!(
        without_ages(&live) == without_ages(&served) && served.contains("Failed"),
        "get podvolumerestores:\nlive:\n{live}\nserved:\n{served}"
    );

    let (live, served) = both
        .kubectl(&[
            "get",
            "pods",
            "-n",
            "velero",
            "-l",
            "deploy=velero",
            "-o",
            "name",
        ])
        .await?;
    ensure!(
        live == served && !served.is_empty(),
        "velero's pod: {live} vs {served}"
    );
    let pod = served
        .lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("pod/")
        .to_string();
    let (live, served) = both
        .kubectl(&["logs", "-n", "velero", &pod, "-c", "velero"])
        .await?;
    let live_lines: std::collections::HashSet<&str> = live.lines().collect();
    let live_masked: Vec<String> = live
        .lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    ensure!(served.lines().count() > 10, "served log: {served}");
    for line in served.lines() {
        // Lines with credentials are masked in the bundle; the rest are the live ones exactly.
        let found =
            live_lines.contains(line) || (line.contains(MASK) && in_live(line, &live_masked));
        ensure!(found, "served log line {line:?} is not in the live log");
    }
    Ok(())
}

/// `velero KIND describe NAME --details` and `velero KIND logs NAME` print the same, the
/// object being the one the bundle holds (a later write by Velero would void the comparison).
async fn compare_velero(both: &Both<'_>, velero: &Path, kind: &str, name: &str) -> Result<()> {
    let version = ["-o", "jsonpath={.metadata.resourceVersion}"];
    let (live, served) = both
        .kubectl(&[&["get", kind, name, "-n", "velero"], &version[..]].concat())
        .await?;
    ensure!(
        live == served && !served.is_empty(),
        "{kind} {name} changed after the bundle was made (resourceVersion {served:?} then, {live:?} now)"
    );
    for args in [
        vec![kind, "describe", name, "--details", "-n", "velero"],
        vec![kind, "logs", name, "-n", "velero"],
    ] {
        let (live, served) = both.run(velero, &args).await?;
        ensure!(
            live == served && served.lines().count() > 5,
            "velero {args:?}:\nlive:\n{live}\nserved:\n{served}"
        );
    }
    Ok(())
}

async fn writes_fail(served: &Path, namespace: &str) -> Result<()> {
    let kubectl = Path::new("kubectl");
    let out = run(kubectl, served, &["delete", "pod", "web", "-n", namespace]).await?;
    let said = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success() && said.contains("MethodNotAllowed") && said.contains("read-only"),
        "kubectl delete: {said}"
    );
    let manifest = tempfile::NamedTempFile::new()?;
    std::fs::write(
        manifest.path(),
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: x, namespace: {namespace}}}\n"),
    )?;
    let file = manifest.path().display().to_string();
    let out = run(kubectl, served, &["apply", "-f", &file]).await?;
    let said = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success() && said.contains("read-only"),
        "kubectl apply: {said}"
    );
    Ok(())
}

#[tokio::test]
async fn velero_describes_and_logs_a_served_backup_bundle_as_the_cluster_does() -> Result<()> {
    let t = &TestCtx::new().await?;
    let src = source_namespace(t).await?;
    let (backup, _) = backup_namespace(t, &src, &[]).await?;
    settled(t, "Backup", &backup).await?;
    let bundle = apply_bundle(t, serde_json::json!({"backup": backup})).await?;
    wait_completed(t, &bundle, Duration::from_secs(120)).await?;
    let served = Served::start(&t.env, &bundle).await?;
    let both = Both {
        live: &t.env.kubeconfig,
        served: &served.kubeconfig,
    };
    let answers = compare_velero(&both, &t.env.velero.cli, "backup", &backup).await;
    served.stop().await?;
    answers
}

/// A tar.gz of one entry named `name` (written raw, as a hostile archive would) whose header
/// says `size` and whose bytes are `size` zeros: a member of the header, then one gzip member
/// of 1 MiB of zeros repeated (gzip readers read members one after the other), so a bomb of
/// gigabytes takes a few MiB and no time to make.
fn archive(path: &Path, name: &str, size: u64) -> Result<()> {
    use std::io::Write;
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    header.set_cksum();
    let member = |bytes: &[u8]| -> Result<Vec<u8>> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(bytes)?;
        Ok(gz.finish()?)
    };
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    file.write_all(&member(header.as_bytes())?)?;
    let mib = member(&vec![0u8; 1 << 20])?;
    for _ in 0..size >> 20 {
        file.write_all(&mib)?;
    }
    let rest = size % (1 << 20);
    // The entry's padding to 512 bytes, and the archive's two zero blocks.
    let padding = (512 - rest % 512) % 512 + 1024;
    file.write_all(&member(&vec![0u8; (rest + padding) as usize])?)?;
    file.flush()?;
    Ok(())
}

#[tokio::test]
async fn an_archive_leaving_its_folder_or_inflating_past_the_limit_is_refused() -> Result<()> {
    let t = &TestCtx::new().await?;
    let dir = tempfile::tempdir()?;
    let escaping = dir.path().join("escaping.tar.gz");
    // Unpacked into DIR/<into>/<temporary folder>/bundle: three levels up is DIR.
    archive(&escaping, "../../../escaped.yaml", 10)?;
    // 5 GiB of zeros in a few MiB: past serve's default limit of 4 GiB.
    let bomb = dir.path().join("bomb.tar.gz");
    let path = bomb.clone();
    tokio::task::spawn_blocking(move || archive(&path, "b/zeros.log", 5 << 30)).await??;
    ensure!(
        std::fs::metadata(&bomb)?.len() < 64 << 20,
        "the bomb is not small"
    );
    // The same kind of archive, small: read to its end, it holds no bundle. So the bomb is
    // refused for its size, not for being unreadable.
    let small = dir.path().join("small.tar.gz");
    archive(&small, "b/zeros.log", (2 << 20) + 100)?;
    let cases = [
        (&escaping, "leaves the folder"),
        (&bomb, "more than 4294967296 bytes"),
        (&small, "no manifest.json"),
    ];
    for (file, refusal) in cases {
        let into = tempfile::tempdir_in(dir.path())?;
        let out = plugin::run(
            &t.env,
            &[
                "serve",
                &file.display().to_string(),
                "--dir",
                &into.path().display().to_string(),
            ],
        )
        .await?;
        let said = plugin::text(&out);
        ensure!(
            !out.status.success() && said.contains(refusal),
            "{file:?}: {said}"
        );
        ensure!(
            std::fs::read_dir(into.path())?.next().is_none(),
            "{file:?} left files behind"
        );
        ensure!(
            !dir.path().join("escaped.yaml").exists(),
            "an entry escaped"
        );
    }
    Ok(())
}

/// A restore into a namespace the chart does not let the operator read
/// (rbac.workloadNamespaces [], the strict choice): the bundle's manifest.json says its pods
/// were not collected and why, and `kubectl get pods` against the served bundle warns so
/// instead of answering a silent empty list. Alone: it installs the chart with that value, then
/// with its defaults again.
#[tokio::test]
async fn serial_a_list_the_bundle_could_not_collect_is_answered_with_why() -> Result<()> {
    let t = &TestCtx::new().await?;
    velero_debug_e2e::operators::chart_values(&["rbac.workloadNamespaces=[]"]).await?;
    let outcome = list_not_collected(t).await;
    velero_debug_e2e::operators::chart_values(&[]).await?;
    outcome
}

async fn list_not_collected(t: &TestCtx) -> Result<()> {
    let src = source_namespace(t).await?;
    let (backup, _) = backup_namespace(t, &src, &[]).await?;
    let restored = format!("{src}-r");
    quota_refusing_configmaps(t, &restored).await?;
    let restore = real_restore(t, &backup, &src, &restored).await?;
    let bundle = apply_bundle(t, serde_json::json!({"restore": restore.name_any()})).await?;
    wait_completed(t, &bundle, Duration::from_secs(120)).await?;
    let served = Served::start(&t.env, &bundle).await?;
    let refused = foreign_requests_refused(&served).await;
    let out = run(
        Path::new("kubectl"),
        &served.kubeconfig,
        &["get", "pods", "-n", &restored],
    )
    .await;
    let held = run(
        Path::new("kubectl"),
        &served.kubeconfig,
        &["get", "pods", "-n", "velero"],
    )
    .await;
    served.stop().await?;
    refused?;
    let (out, held) = (out?, held?);
    let said = String::from_utf8_lossy(&out.stderr);
    let expected = format!(
        "Warning: pods of namespace {restored} were not collected: forbidden; \
         rbac.workloadNamespaces does not list this namespace"
    );
    ensure!(
        out.status.success() && said.contains(&expected),
        "get pods: {said}"
    );
    let said = String::from_utf8_lossy(&held.stderr);
    let listed = String::from_utf8_lossy(&held.stdout);
    ensure!(
        held.status.success() && listed.contains("velero-") && !said.contains("Warning"),
        "velero's pods, collected, were not listed without a warning: {said}\n{listed}"
    );
    Ok(())
}

/// What a web page could send through DNS rebinding (another Host) or a local process without
/// the kubeconfig (no token) is refused; the kubeconfig's token under the server's own Host is
/// answered (issue 56).
async fn foreign_requests_refused(served: &Served) -> Result<()> {
    let (server, token) = served.server_and_token()?;
    // The kubeconfig's server is http://127.0.0.1:PORT/<token>.
    let base = server
        .strip_suffix(&format!("/{token}"))
        .with_context(|| format!("the server URL {server} does not end in the token"))?;
    let port = base.rsplit(':').next().context("no port")?;
    let client = reqwest::Client::new();
    let status = |url: String, host: String, token: Option<String>| {
        let mut request = client.get(url).header("Host", host);
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        async move { Ok::<_, anyhow::Error>(request.send().await?.status().as_u16()) }
    };
    let ours = format!("{server}/api/v1/namespaces");
    let bare = format!("{base}/api/v1/namespaces");
    let rebinding = status(ours.clone(), format!("evil.example:{port}"), None).await?;
    let anonymous = status(bare.clone(), format!("127.0.0.1:{port}"), None).await?;
    let by_path = status(ours, format!("localhost:{port}"), None).await?;
    let by_header = status(bare, format!("127.0.0.1:{port}"), Some(token)).await?;
    ensure!(
        (rebinding, anonymous, by_path, by_header) == (421, 401, 200, 200),
        "foreign Host {rebinding}, no token {anonymous}, the kubeconfig's URL {by_path}, \
         the token as a bearer {by_header}"
    );
    Ok(())
}

#[test]
fn a_masked_line_matches_its_live_line_and_only_it() {
    let live = r#"error="unable to get credentials: unable to get key for secret: \"bsl-creds\" secret is missing""#;
    let served = r#"error="unable to get credentials: ***REDACTED*** to get key for secret: \"***REDACTED***\" secret is missing""#;
    assert!(is_live_line_masked(served, live));
    assert!(!is_live_line_masked(
        served,
        &live.replace("missing", "there")
    ));
    assert!(!is_live_line_masked(
        &served.replace("secret:", "config:"),
        live
    ));
    assert!(is_live_line_masked("plain", "plain"));
    assert!(!is_live_line_masked("plain", "plainer"));
    assert!(!is_live_line_masked("ab***REDACTED***ba", "aba"));
}

#[test]
fn an_event_that_recurred_reads_as_it_did_once() {
    let once = "  Warning  FailedMount  10s  kubelet  volume data not found";
    let again = "  Warning  FailedMount  3s (x2 over 10s)  kubelet  volume data not found";
    assert_eq!(without_ages(once), without_ages(again));
    let other = "  Warning  FailedMount  3s (x2 over 10s)  kubelet  volume logs not found";
    assert_ne!(without_ages(once), without_ages(other));
    // Only "(xN over <age>)" is a repeat: a message that says "(x2 over budget" keeps it.
    assert_eq!(
        without_ages("Normal Note 5s msg (x2 over budget"),
        ["Normal Note <age> msg (x2 over budget"]
    );
}

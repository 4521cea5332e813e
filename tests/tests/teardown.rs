//! tests/env/lifecycle/env-down.sh on its own, without the environment: a scratch state folder whose
//! pids folder names a process group as env-up.sh records one. The group is an orphan (the
//! shell that started it has exited, as env-up's has once it returns), ignores TERM and has a
//! child, like a server mid-shutdown. Killed, its processes stay zombies until PID 1 reaps
//! them, seconds later on these machines: env-down must count them gone, not fail a green run.

use std::{path::Path, process::Command, time::Duration};

use anyhow::{Context, Result, ensure};
use velero_debug_e2e::operators::process_live;

/// Pids of the processes whose process group is `pgid`, with whether each is live.
fn group_members(pgid: u32) -> Vec<(u32, bool)> {
    let mut members = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // After the command name: state, parent, process group.
        let group = stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.split(' ').nth(2))
            .and_then(|g| g.parse::<u32>().ok());
        if group == Some(pgid) {
            members.push((pid, process_live(pid)));
        }
    }
    members
}

/// Starts `setsid bash` (ignoring TERM, with two `sleep` children that inherit that) from a
/// shell that exits at once, so the group's leader is an orphan; returns the group's id.
fn orphaned_group_ignoring_term() -> Result<u32> {
    let out = Command::new("bash")
        .args([
            "-c",
            r#"setsid bash -c 'trap "" TERM; sleep 300 & sleep 300 & wait' </dev/null >/dev/null 2>&1 & echo $!"#,
        ])
        .output()?;
    ensure!(out.status.success(), "starting the group failed");
    let pgid: u32 = String::from_utf8(out.stdout)?.trim().parse()?;
    // Both children started.
    for _ in 0..50 {
        if group_members(pgid).iter().filter(|(_, live)| *live).count() == 3 {
            return Ok(pgid);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    anyhow::bail!(
        "group {pgid} did not start its children: {:?}",
        group_members(pgid)
    )
}

fn env_down(cache: &Path) -> Result<std::process::Output> {
    let script = velero_debug_e2e::env::tests_dir().join("env/lifecycle/env-down.sh");
    Ok(Command::new("bash")
        .arg(script)
        .env("VDO_CACHE", cache)
        .env_remove("VDO_ENV_DIR")
        .output()?)
}

#[test]
fn env_down_stops_an_orphaned_group_that_ignores_term_and_leaves_nothing_live() -> Result<()> {
    let cache = tempfile::tempdir()?;
    let pids = cache.path().join("env/pids");
    std::fs::create_dir_all(&pids)?;
    let pgid = orphaned_group_ignoring_term()?;
    std::fs::write(pids.join("stubborn.pid"), pgid.to_string())?;
    // TERM alone stops none of it.
    Command::new("kill")
        .args(["-TERM", "--", &format!("-{pgid}")])
        .status()?;
    std::thread::sleep(Duration::from_millis(300));
    let live = group_members(pgid).iter().filter(|(_, l)| *l).count();
    ensure!(
        live == 3,
        "TERM stopped part of the group: {live} of 3 live"
    );

    let out = env_down(cache.path())?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Whatever env-down said, nothing of the group may be left running.
    let left: Vec<u32> = group_members(pgid)
        .into_iter()
        .filter(|(_, live)| *live)
        .map(|(pid, _)| pid)
        .collect();
    if !left.is_empty() {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pgid}")])
            .status();
    }
    ensure!(
        left.is_empty(),
        "processes of group {pgid} left live: {left:?}"
    );
    ensure!(out.status.success(), "env-down failed:\n{stderr}");
    ensure!(
        stderr.contains("no process of it is left"),
        "env-down said:\n{stderr}"
    );
    ensure!(
        !cache.path().join("env").exists(),
        "env-down left the state folder"
    );
    Ok(())
}

#[test]
fn process_live_counts_a_zombie_as_stopped() -> Result<()> {
    // A child this test does not reap: a zombie once it exits.
    let child = Command::new("true").spawn()?;
    let pid = child.id();
    let mut zombie = false;
    for _ in 0..50 {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .context("the unreaped child vanished")?;
        if state
            .rsplit_once(") ")
            .is_some_and(|(_, r)| r.starts_with('Z'))
        {
            zombie = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    ensure!(zombie, "the child never became a zombie");
    ensure!(!process_live(pid), "a zombie counted as live");
    ensure!(
        process_live(std::process::id()),
        "this test counted as stopped"
    );
    Ok(())
}

/// Runs a shell command line, failing with its stderr.
fn sh(line: &str) -> Result<String> {
    let out = Command::new("bash").args(["-c", line]).output()?;
    ensure!(
        out.status.success(),
        "`{line}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// What a real node can leave when its kubelet and containerd die mid-work, made by hand under
/// names of this test's own (a running environment's node stays untouched): the real node's
/// kinds of leftovers, not an imitation of a kubelet.
struct NodeLeftovers {
    node_dir: std::path::PathBuf,
    bridge: String,
    chain: String,
    cgroup: String,
    shim: u32,
    /// A CSI process group as csi.sh records one (the snapshot controller's command names no
    /// folder of the node, so only its pid file finds it).
    csi_process: u32,
}

impl NodeLeftovers {
    fn make(cache: &Path) -> Result<NodeLeftovers> {
        let id = std::process::id() % 100_000;
        let node_dir = cache.join("env/node");
        let (bridge, chain, cgroup) = (
            format!("vdo-t{id}"),
            format!("VDO-T{id}"),
            format!("vdo-t{id}"),
        );
        let d = node_dir.display();
        // The kubelet's rshared bind mount of its folder, a token tmpfs and a volume's bind
        // mount inside it; a process named by the node's folder (as a shim is) in a cgroup of
        // the node's; the bridge; the DNAT chain hooked where node-up hooks it; a CSI volume
        // of our driver published by bind mount, and its registration socket's folder.
        sh(&format!(
            "set -e; mkdir -p {d}/kubelet/pods/u1/volumes/kubernetes.io~projected/token \
               {d}/kubelet/pods/u1/volumes/kubernetes.io~local-volume/pv1 {d}/local-path/pv1 \
               {d}/kubelet/pods/u1/volumes/kubernetes.io~csi/pv2/mount {d}/csi/data/volumes/pv2 \
               {d}/kubelet/plugins_registry
             mount --bind {d}/kubelet {d}/kubelet && mount --make-rshared {d}/kubelet
             mount -t tmpfs tmpfs {d}/kubelet/pods/u1/volumes/kubernetes.io~projected/token
             mount --bind {d}/local-path/pv1 {d}/kubelet/pods/u1/volumes/kubernetes.io~local-volume/pv1
             mount --bind {d}/csi/data/volumes/pv2 {d}/kubelet/pods/u1/volumes/kubernetes.io~csi/pv2/mount
             for h in /sys/fs/cgroup/pids /sys/fs/cgroup/memory; do mkdir -p $h/{cgroup}/pod/ctr; done
             ip link add {bridge} type bridge
             iptables -t nat -N {chain}
             iptables -t nat -A PREROUTING -i {bridge} -j {chain}
             iptables -t nat -A OUTPUT -j {chain}
             iptables -t nat -A {chain} -d 10.0.0.1/32 -p tcp --dport 443 -j DNAT --to-destination 127.0.0.1:1"
        ))?;
        let shim: u32 = sh(&format!(
            "setsid bash -c 'exec -a {d}/shim sleep 300' </dev/null >/dev/null 2>&1 & echo $!"
        ))?
        .trim()
        .parse()?;
        let csi_process: u32 = sh(&format!(
            "setsid bash -c 'exec -a snapshot-controller sleep 300' </dev/null >/dev/null 2>&1 & \
             echo $! | tee {pids}/csi-snapshot-controller.pid",
            pids = cache.join("env/pids").display()
        ))?
        .trim()
        .parse()?;
        std::thread::sleep(Duration::from_millis(200));
        sh(&format!(
            "echo {shim} > /sys/fs/cgroup/pids/{cgroup}/pod/ctr/cgroup.procs"
        ))?;
        Ok(NodeLeftovers {
            node_dir,
            bridge,
            chain,
            cgroup,
            shim,
            csi_process,
        })
    }

    /// Each leftover still there, named.
    fn left(&self) -> Vec<String> {
        let mut left = Vec::new();
        for pid in [self.shim, self.csi_process] {
            if process_live(pid) {
                left.push(format!("process {pid}"));
            }
        }
        let dir = self.node_dir.display().to_string();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        left.extend(
            mounts
                .lines()
                .filter_map(|l| l.split(' ').nth(4))
                .filter(|m| m.starts_with(&dir))
                .map(|m| format!("mount {m}")),
        );
        if sh(&format!("ip link show {}", self.bridge)).is_ok() {
            left.push(format!("bridge {}", self.bridge));
        }
        let nat = sh("iptables -t nat -S").unwrap_or_default();
        left.extend(
            nat.lines()
                .filter(|l| l.contains(&self.chain))
                .map(|l| format!("iptables {l}")),
        );
        for h in ["pids", "memory"] {
            let c = format!("/sys/fs/cgroup/{h}/{}", self.cgroup);
            if Path::new(&c).exists() {
                left.push(format!("cgroup {c}"));
            }
        }
        left
    }

    /// After a failed run: what env-down left, removed the same way, so the machine is clean.
    fn remove_by_hand(&self) {
        let d = self.node_dir.display();
        let _ = sh(&format!(
            "kill -KILL {shim} {csi}; for m in $(awk '{{print $5}}' /proc/self/mountinfo | grep '^{d}' | sort -r); do umount -l $m; done
             ip link del {b}; iptables -t nat -D PREROUTING -i {b} -j {c}; iptables -t nat -D OUTPUT -j {c}
             iptables -t nat -F {c}; iptables -t nat -X {c}
             find /sys/fs/cgroup/pids/{g} /sys/fs/cgroup/memory/{g} -depth -type d -exec rmdir {{}} \\;",
            shim = self.shim,
            csi = self.csi_process,
            b = self.bridge,
            c = self.chain,
            g = self.cgroup,
        ));
    }
}

#[test]
fn env_down_removes_everything_a_real_node_leaves() -> Result<()> {
    ensure!(
        sh("id -u")?.trim() == "0",
        "the real node and its teardown need root (as `make env-up` does)"
    );
    let cache = tempfile::tempdir()?;
    std::fs::create_dir_all(cache.path().join("env/pids"))?;
    let leftovers = NodeLeftovers::make(cache.path())?;
    let made = leftovers.left();
    ensure!(
        made.len() >= 10,
        "the leftovers were not all made: {made:?}"
    );
    let script = velero_debug_e2e::env::tests_dir().join("env/lifecycle/env-down.sh");
    let out = Command::new("bash")
        .arg(script)
        .env("VDO_CACHE", cache.path())
        .env_remove("VDO_ENV_DIR")
        .env_remove("KUBECONFIG")
        .env("VDO_NODE_BRIDGE", &leftovers.bridge)
        .env("VDO_NODE_CHAIN", &leftovers.chain)
        .env("VDO_NODE_CGROUP", &leftovers.cgroup)
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let left = leftovers.left();
    if !left.is_empty() {
        leftovers.remove_by_hand();
    }
    ensure!(left.is_empty(), "env-down left {left:?}:\n{stderr}");
    ensure!(out.status.success(), "env-down failed:\n{stderr}");
    ensure!(
        stderr.contains("the real node is gone"),
        "env-down said:\n{stderr}"
    );
    ensure!(
        !cache.path().join("env").exists(),
        "env-down left the state folder"
    );
    Ok(())
}

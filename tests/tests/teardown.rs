//! tests/env/env-down.sh on its own, without the environment: a scratch state folder whose
//! pids folder names a process group as env-up.sh records one. The group is an orphan (the
//! shell that started it has exited, as env-up's has once it returns), ignores TERM and has a
//! child, like a server mid-shutdown. Killed, its processes stay zombies until PID 1 reaps
//! them, seconds later on these machines: env-down must count them gone, not fail a green run.

use std::{path::Path, process::Command, time::Duration};

use anyhow::{Context, Result, ensure};
use velero_debug_e2e::process_live;

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
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("env/env-down.sh");
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

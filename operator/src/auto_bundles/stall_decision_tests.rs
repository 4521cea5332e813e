use super::*;

const MINUTE: Duration = Duration::from_secs(60);

fn at(minute: i64) -> Timestamp {
    let start: Timestamp = "2026-11-28T10:00:00Z".parse().unwrap();
    start + jiff::SignedDuration::from_mins(minute)
}

fn yaml(text: &str) -> Value {
    serde_yaml::from_str(text).unwrap()
}

fn backup(items: u64) -> Value {
    yaml(&format!(
        "kind: Backup\nmetadata: {{name: b1}}\nstatus: {{phase: InProgress, progress: {{totalItems: 40, itemsBackedUp: {items}}}}}"
    ))
}

fn upload(phase: &str, bytes: u64) -> Value {
    yaml(&format!(
        "kind: PodVolumeBackup\nmetadata: {{name: b1-x}}\nstatus: {{phase: {phase}, progress: {{totalBytes: 1000, bytesDone: {bytes}}}}}"
    ))
}

#[test]
fn motion_changes_with_progress_and_bytes_and_not_with_order() {
    let still = motion(&backup(3), &[upload("InProgress", 10)]);
    assert_eq!(still, motion(&backup(3), &[upload("InProgress", 10)]));
    assert_ne!(still, motion(&backup(4), &[upload("InProgress", 10)]));
    assert_ne!(still, motion(&backup(3), &[upload("InProgress", 11)]));
    assert_ne!(still, motion(&backup(3), &[upload("Completed", 10)]));
    assert_ne!(
        still,
        motion(&backup(3), &[]),
        "a volume operation appeared"
    );
    let other = yaml("kind: DataUpload\nmetadata: {name: b1-y}\nstatus: {phase: Accepted}");
    assert_eq!(
        motion(&backup(3), &[upload("InProgress", 10), other.clone()]),
        motion(&backup(3), &[other, upload("InProgress", 10)])
    );
}

#[test]
fn only_phases_velero_still_works_on_are_watched() {
    for running in [
        "New",
        "InProgress",
        "WaitingForPluginOperations",
        "Finalizing",
    ] {
        assert!(is_running(running), "{running}");
    }
    for done in [
        "Completed",
        "PartiallyFailed",
        "Failed",
        "FailedValidation",
        "",
    ] {
        assert!(!is_running(done), "{done}");
    }
}

#[test]
fn still_moving_moving_again_and_a_restart() {
    let stall_after = 30 * MINUTE;
    // Seen first at 0: still since 0.
    let first = Still::observe(None, "m1", at(0));
    assert_eq!(
        decide(&first, 0, None, stall_after, at(10)),
        StallDecision::LookAgainIn(20 * MINUTE)
    );
    // Unchanged at 30: stalled, no bundle yet.
    let same = Still::observe(Some(&first), "m1", at(30));
    assert_eq!(same.since, at(0));
    assert_eq!(
        decide(&same, 0, None, stall_after, at(30)),
        StallDecision::Bundle
    );
    // Its bundle recorded: nothing more for this stall, however long it lasts.
    assert_eq!(
        decide(&same, 0, bundled("m1", Some(0)), stall_after, at(300)),
        StallDecision::Bundled
    );
    // It moves at 40: a new stillness, which becomes a new stall at 70.
    let moved = Still::observe(Some(&same), "m2", at(40));
    assert_eq!(moved.since, at(40));
    assert_eq!(
        decide(&moved, 1, bundled("m1", Some(0)), stall_after, at(69)),
        StallDecision::LookAgainIn(MINUTE)
    );
    assert_eq!(
        decide(&moved, 1, bundled("m1", Some(0)), stall_after, at(70)),
        StallDecision::Bundle
    );
    // After a restart the clock starts again, and the ledger still says this stall has its
    // bundle: none a second time.
    let restarted = Still::observe(None, "m2", at(80));
    assert_eq!(
        decide(&restarted, 1, bundled("m2", None), stall_after, at(110)),
        StallDecision::Bundled
    );
}

fn bundled(motion: &str, progress: Option<u64>) -> Option<Bundled<'_>> {
    Some(Bundled { motion, progress })
}

/// Velero's Backups and Restores have no status subresource: whoever may create one may edit
/// its status at will. Each edit restarts its stillness, but an edit is no progress: one
/// bundle for the operation until it really moves.
#[test]
fn a_status_edited_without_progress_gets_no_second_bundle() {
    let stall_after = 30 * MINUTE;
    let edited = Still::observe(None, "edit-7", at(100));
    assert_eq!(
        decide(&edited, 5, bundled("edit-1", Some(5)), stall_after, at(200)),
        StallDecision::Bundled
    );
    // Real work since (an item more, bytes moved): a new stall is worth a bundle again.
    assert_eq!(
        decide(&edited, 6, bundled("edit-1", Some(5)), stall_after, at(200)),
        StallDecision::Bundle
    );
}

#[test]
fn progress_grows_with_work_and_not_with_edits() {
    let base = progress(&backup(3), &[upload("InProgress", 10)]);
    // Warnings, errors and stray fields are no progress.
    let mut edited = backup(3);
    edited["status"]["warnings"] = 9.into();
    edited["status"]["errors"] = 2.into();
    edited["status"]["anything"] = "x".into();
    assert_eq!(progress(&edited, &[upload("InProgress", 10)]), base);
    assert!(progress(&backup(4), &[upload("InProgress", 10)]) > base);
    assert!(progress(&backup(3), &[upload("InProgress", 11)]) > base);
    assert!(progress(&backup(3), &[upload("Completed", 10)]) > base);
    let restore = yaml("status: {phase: InProgress, progress: {itemsRestored: 7}}");
    let more = yaml("status: {phase: InProgress, progress: {itemsRestored: 8}}");
    assert!(progress(&more, &[]) > progress(&restore, &[]));
    let waiting = yaml("status: {phase: WaitingForPluginOperations, progress: {itemsRestored: 7}}");
    assert!(progress(&waiting, &[]) > progress(&restore, &[]));
}

#[test]
fn what_a_stalled_operation_waits_on_and_how_often_it_is_looked_at() {
    assert_eq!(
        waiting_on(&backup(3), &[upload("InProgress", 10)]),
        "volumes"
    );
    assert_eq!(waiting_on(&backup(3), &[upload("Completed", 10)]), "items");
    let waiting = yaml("status: {phase: WaitingForPluginOperations}");
    assert_eq!(waiting_on(&waiting, &[]), "plugin-operations");
    assert_eq!(waiting_on(&yaml("status: {phase: New}"), &[]), "server");
    assert_eq!(look_every(30 * MINUTE), MINUTE);
    assert_eq!(look_every(MINUTE), Duration::from_secs(15));
    assert_eq!(look_every(Duration::from_secs(4)), Duration::from_secs(5));
    let still = Still::observe(None, "m", "2026-11-28T10:00:00.5Z".parse().unwrap());
    assert_eq!(since_text(&still), "2026-11-28T10:00:00Z");
}

//! What to do when the Velero server, its plugins or its own records are the problem (Velero
//! 1.18): `velero <kind> describe --details` / `logs` (pkg/cmd/cli/restore/describe.go,
//! logs.go); plugins: https://velero.io/docs/v1.18/overview-plugins/ and `velero plugin get`;
//! a Backup or Restore that failed validation is never retried
//! (pkg/controller/restore_controller.go, backup_controller.go).

/// The Velero server restarted mid-operation, not for memory.
pub(crate) fn velero_server_restarted(
    kind: &str,
    name: &str,
    pod: Option<&str>,
    namespace: &str,
) -> String {
    let why = pod
        .map(|p| format!(" `kubectl -n {namespace} logs {p} --previous` has its last words;"))
        .unwrap_or_default();
    format!(
        "Velero does not resume what ran when it restarted:{why} run the {kind} again once the \
         server stays up (`kubectl -n {namespace} get deployment velero`; {kind} {name} stays as \
         it ended)."
    )
}

/// Velero refused the Backup or Restore before starting it.
pub(crate) fn failed_validation(kind: &str, name: &str, namespace: &str) -> String {
    let verb = kind.to_lowercase();
    format!(
        "Velero does not retry a {kind} that failed validation: correct what the quote names \
         (`kubectl -n {namespace} get {verb} {name} -o yaml`) and create a new {verb} (`velero \
         {verb} create ...`)."
    )
}

/// A plugin process died; `plugin` is its path when the log line names it.
pub(crate) fn plugin_crashed(plugin: Option<&str>, namespace: &str) -> String {
    let which = plugin.map_or_else(|| "The plugin".to_string(), |p| format!("Plugin {p}"));
    format!(
        "{which} runs inside the velero container: check its image is built for this Velero \
         version (`velero plugin get`; each plugin's README has a compatibility table) and that \
         the container's memory limit holds it (`kubectl -n {namespace} get deployment velero \
         -o yaml`), then run the operation again."
    )
}

/// The operation's own log is not in the object store.
pub(crate) fn operation_log_missing(kind: &str, name: &str, location: Option<&str>) -> String {
    let verb = kind.to_lowercase();
    let location = location.map_or_else(
        || "its BackupStorageLocation".to_string(),
        |l| format!("BackupStorageLocation {l}"),
    );
    format!(
        "Look in the bucket and prefix of {location} for {verb}s/{name}/: a lifecycle or \
         retention rule may delete Velero's files there (exempt the prefix), or another BSL \
         points at the same place; `velero {verb} logs {name}` reads the same file."
    )
}

/// Velero's failureReason, when no rule explained it.
pub(crate) fn failure_reason(kind: &str, name: &str) -> String {
    let verb = kind.to_lowercase();
    format!(
        "The reason is Velero's own: `velero {verb} logs {name}` has the lines around it; a site \
         rule (Helm value diagnosis.siteRules) can name this message and its remedy in the next \
         bundle."
    )
}

/// Errors or warnings no rule recognised.
pub(crate) fn unclassified(kind: &str, name: &str) -> String {
    let verb = kind.to_lowercase();
    format!(
        "`velero {verb} describe {name} --details` lists every one with its object; a site rule \
         (Helm value diagnosis.siteRules) can name this message and its remedy in the next \
         bundle."
    )
}

/// A running Backup or Restore that stopped moving, with no volume operation to blame.
pub(crate) fn operation_stalled(kind: &str, name: &str, phase: &str, namespace: &str) -> String {
    let lower = kind.to_lowercase();
    match phase {
        "New" => format!(
            "No Velero server picked the {lower} up: `kubectl -n {namespace} get deploy,pods \
             -l deploy=velero` shows whether one runs, and its log why it does not start \
             {lower} {name} (another {lower} ahead of it, the server waiting on its storage \
             location)."
        ),
        p if p.starts_with("WaitingForPluginOperations") => format!(
            "`velero {lower} describe {name} --details` lists each asynchronous operation with \
             its plugin, id, phase and progress; the plugin's own objects (a DataUpload, a \
             snapshot) and its log in the Velero server say why one does not complete."
        ),
        _ => format!(
            "The Velero server's log lines for {lower} {name} (in this bundle under \
             logs/velero/) show the last item it worked on; `velero {lower} describe {name} \
             --details` shows the operations it still waits for."
        ),
    }
}

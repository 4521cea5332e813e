//! Why a workload pod does not run, read from its state, its claims and the Warning events
//! about them, strongest evidence first: a volume attached elsewhere or not mounted, a claim
//! that is not bound, no node to run on, a container that cannot start. Shared by the rules of
//! stuck PodVolumeRestores (a PVR waits for its pod) and of restored pods that are not Ready.

use crate::findings::{
    Evidence,
    evidence::{ClaimEvidence, EventEvidence, ON_THE_WAY, WorkloadPodEvidence},
    next_steps::{self, ClaimGap},
};

/// What keeps a pod from running (the finding's title is cut to its length; the quote says
/// it whole).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Blocked {
    /// The rule id naming the cause: `volume-attach-failed`, `volume-mount-failed`,
    /// `pvc-pending`, `pod-unschedulable`, `init-container-before-restore-wait` or
    /// `pod-not-ready`.
    pub rule: &'static str,
    /// The pod's phase, when its YAML was collected.
    pub phase: Option<String>,
    /// The cause, short, for a title.
    pub cause: String,
    pub quote: String,
    pub file: String,
    pub next_step: String,
}

impl Blocked {
    /// `shop/web-0 is Pending: Multi-Attach error for volume ...`.
    pub fn describe(&self, pod: &str) -> String {
        match &self.phase {
            Some(phase) => format!("{pod} is {phase}: {}", self.cause),
            None => format!("{pod}: {}", self.cause),
        }
    }
}

/// How findings name a workload pod (`namespace/name`) in `explains`.
pub(super) fn pod_key(pod: &str) -> String {
    format!("pod/{pod}")
}

/// Why the pod `namespace/name` does not run; None when it runs (or nothing says why).
/// Without its YAML (not readable), its events alone speak.
pub(super) fn why_blocked(e: &Evidence, pod: &str) -> Option<Blocked> {
    let state = e.workload_pods.iter().find(|p| p.key() == pod);
    if state.is_some_and(WorkloadPodEvidence::is_fine) {
        return None;
    }
    let phase = state.map(|p| p.phase.clone());
    let events = |reason: &str| latest_event(e, "Pod", pod, |ev| ev.reason == reason);
    let from_event = |rule, ev: &EventEvidence, cause: String, next_step| Blocked {
        rule,
        phase: phase.clone(),
        cause,
        quote: format!("{}: {}", ev.reason, ev.message),
        file: ev.path.clone(),
        next_step,
    };
    // A Multi-Attach error names the node that still holds the volume; prefer it.
    let attach = latest_event(e, "Pod", pod, |ev| {
        ev.reason == "FailedAttachVolume" && ev.message.contains("Multi-Attach")
    })
    .or_else(|| events("FailedAttachVolume"));
    if let Some(ev) = attach {
        let node = state.and_then(|p| p.node.as_deref());
        let holder = holding_attachment(e, &ev.message, node);
        let step = next_steps::volume_attach_failed(pod, holder);
        return Some(from_event(
            "volume-attach-failed",
            ev,
            ev.message.clone(),
            step,
        ));
    }
    if let Some(ev) = events("FailedMount") {
        let step = next_steps::volume_mount_failed(pod);
        return Some(from_event(
            "volume-mount-failed",
            ev,
            ev.message.clone(),
            step,
        ));
    }
    if let Some(blocked) = state.and_then(|p| pending_claim(e, p)) {
        return Some(blocked);
    }
    if let Some(ev) = events("FailedScheduling") {
        let cause = format!("unschedulable: {}", ev.message);
        let step = next_steps::pod_unschedulable(pod);
        return Some(from_event("pod-unschedulable", ev, cause, step));
    }
    if let Some(p) = state
        && let Some((reason, message)) = &p.unschedulable
    {
        return Some(Blocked {
            rule: "pod-unschedulable",
            phase,
            cause: format!("not scheduled ({reason}): {message}"),
            quote: format!("condition PodScheduled False, {reason}: {message}"),
            file: p.path.clone(),
            next_step: next_steps::pod_unschedulable(pod),
        });
    }
    if let Some(blocked) = state.and_then(|p| waiting_container(p, pod)) {
        return Some(blocked);
    }
    let other = latest_event(e, "Pod", pod, |_| true)?;
    let cause = format!("{}: {}", other.reason, other.message);
    let step = next_steps::pod_not_ready(pod, "of the pod", &other.reason);
    Some(from_event("pod-not-ready", other, cause, step))
}

/// A container of the pod that waits for more than being on its way. An init container before
/// Velero's restore-wait is named as that: restore-wait, and so the volume's restore, waits
/// for it.
fn waiting_container(p: &WorkloadPodEvidence, pod: &str) -> Option<Blocked> {
    let w = p
        .waiting
        .iter()
        .find(|w| !ON_THE_WAY.contains(&w.reason.as_str()))?;
    if w.init && p.before_restore_wait.contains(&w.name) {
        return Some(Blocked {
            rule: "init-container-before-restore-wait",
            phase: Some(p.phase.clone()),
            cause: format!(
                "init container {}, before Velero's restore-wait, {}",
                w.name, w.reason
            ),
            quote: format!(
                "init containers {} run before restore-wait; {} {}: {}",
                p.before_restore_wait.join(", "),
                w.name,
                w.reason,
                w.message
            ),
            file: p.path.clone(),
            next_step: next_steps::init_container_before_restore_wait(pod, &w.name),
        });
    }
    let init = if w.init {
        "init container"
    } else {
        "container"
    };
    Some(Blocked {
        rule: "pod-not-ready",
        phase: Some(p.phase.clone()),
        cause: format!("{init} {} waiting: {}", w.name, w.reason),
        quote: format!("{init} {} waiting, {}: {}", w.name, w.reason, w.message),
        file: p.path.clone(),
        next_step: next_steps::pod_not_ready(pod, &w.name, &w.reason),
    })
}

/// The VolumeAttachment holding the volume a Multi-Attach error names (`Multi-Attach error for
/// volume "<pv>"`) on another node than the pod's: its name and node.
fn holding_attachment<'a>(
    e: &'a Evidence,
    message: &str,
    pod_node: Option<&str>,
) -> Option<(&'a str, &'a str)> {
    let (_, rest) = message.split_once("for volume \"")?;
    let volume = rest.split('"').next()?;
    e.volume_attachments
        .iter()
        .filter(|a| a.volume == volume && a.attached)
        .find(|a| pod_node != Some(a.node.as_str()))
        .map(|a| (a.name.as_str(), a.node.as_str()))
}

/// The latest Warning event about `kind` `namespace/name` that `matches`.
fn latest_event<'a>(
    e: &'a Evidence,
    kind: &str,
    object: &str,
    matches: impl Fn(&EventEvidence) -> bool,
) -> Option<&'a EventEvidence> {
    e.events
        .iter()
        .filter(|ev| ev.kind == kind && format!("{}/{}", ev.namespace, ev.name) == object)
        .filter(|ev| matches(ev))
        .max_by(|a, b| a.time.cmp(&b.time))
}

/// The first claim of the pod that is not bound, and why.
fn pending_claim(e: &Evidence, pod: &WorkloadPodEvidence) -> Option<Blocked> {
    let claim = pod.claims.iter().find_map(|name| {
        e.claims
            .iter()
            .find(|c| c.namespace == pod.namespace && &c.name == name && c.phase == "Pending")
    })?;
    let key = format!("{}/{}", claim.namespace, claim.name);
    // A write that lost a race (`the object has been modified`) says nothing of why the claim
    // waits; the PV controller retries it at once.
    let event = latest_event(e, "PersistentVolumeClaim", &key, |ev| {
        !ev.message.contains("the object has been modified")
    });
    let provisioner = claim_provisioner(e, claim, event.map(|ev| ev.message.as_str()));
    let subject = match (&provisioner, claim_class(e, claim)) {
        // The title is cut at its length: the provisioner first, the class in the next step.
        (Some(p), Some(_)) => format!("PVC {} waits for provisioner {p}", claim.name),
        _ => format!("PVC {} is Pending", claim.name),
    };
    let gap = match (&provisioner, claim_class(e, claim)) {
        (Some(provisioner), Some(class))
            if !matches!(claim_gap(e, claim), ClaimGap::ClassMissing(_)) =>
        {
            ClaimGap::Unprovisioned { class, provisioner }
        }
        _ => claim_gap(e, claim),
    };
    let blocked = |cause: String, quote: String, file: &str| Blocked {
        rule: "pvc-pending",
        phase: Some(pod.phase.clone()),
        cause: format!("{subject}: {cause}"),
        quote,
        file: file.to_string(),
        next_step: next_steps::pvc_pending(&key, gap),
    };
    if let Some(ev) = event {
        return Some(blocked(
            format!("{}: {}", ev.reason, ev.message),
            format!("{}: {}", ev.reason, ev.message),
            &ev.path,
        ));
    }
    let mut quote = format!(
        "status.phase: Pending, spec.storageClassName: {}",
        claim.storage_class.as_deref().unwrap_or("<unset>")
    );
    if let Some(p) = &provisioner {
        quote += &format!(" (provisioner {p}), no PersistentVolume made for it");
    }
    Some(blocked(storage_class_cause(e, claim), quote, &claim.path))
}

/// The class a claim uses: the one it names, else the default.
fn claim_class<'a>(e: &'a Evidence, claim: &'a ClaimEvidence) -> Option<&'a str> {
    match claim.storage_class.as_deref() {
        Some("") => None,
        Some(class) => Some(class),
        None => e.storage_classes.as_ref()?.default.as_deref(),
    }
}

/// Who should provision the claim: its class's provisioner, else the one its event names
/// (`waiting for a volume to be created, either by external provisioner "x" ...`).
fn claim_provisioner(e: &Evidence, claim: &ClaimEvidence, event: Option<&str>) -> Option<String> {
    let by_class = claim_class(e, claim)
        .and_then(|class| e.storage_classes.as_ref()?.provisioners.get(class).cloned());
    by_class.or_else(|| {
        let message = event?;
        let at = message.find("provisioner \"")? + "provisioner \"".len();
        let end = message[at..].find('"')?;
        Some(message[at..at + end].to_string()).filter(|p| !p.is_empty())
    })
}

/// What the StorageClasses say about a claim that is not bound, for its next step.
fn claim_gap<'a>(e: &Evidence, claim: &'a ClaimEvidence) -> ClaimGap<'a> {
    let classes = e.storage_classes.as_ref();
    match claim.storage_class.as_deref() {
        Some(class) if !class.is_empty() && classes.is_some_and(|c| !c.names.contains(class)) => {
            ClaimGap::ClassMissing(class)
        }
        None if classes.is_some_and(|c| c.default.is_none()) => ClaimGap::NoClass,
        _ => ClaimGap::Other,
    }
}

/// What the StorageClasses say about a claim that is not bound.
fn storage_class_cause(e: &Evidence, claim: &ClaimEvidence) -> String {
    let classes = e.storage_classes.as_ref();
    match claim.storage_class.as_deref() {
        Some("") => {
            "no StorageClass (storageClassName \"\"): it waits for a matching PersistentVolume"
                .to_string()
        }
        Some(class) if classes.is_some_and(|c| !c.names.contains(class)) => {
            format!("StorageClass {class} does not exist")
        }
        Some(class) => format!("not bound (StorageClass {class})"),
        None if classes.is_some_and(|c| c.default.is_none()) => {
            "no StorageClass named and no default one".to_string()
        }
        None => "not bound (default StorageClass)".to_string(),
    }
}

#[cfg(test)]
#[path = "pods_tests.rs"]
mod tests;

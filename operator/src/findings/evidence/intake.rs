//! What each object of the bundle adds to the evidence: its JSON (as written into the bundle,
//! already redacted) read into the bounded fields of mod.rs.

use serde_json::Value;
use velero_debug_crd::ANNOTATION_RECORDED_AT as RECORDED_AT;

use super::*;

/// The Helm release an object belongs to: Helm 3's `meta.helm.sh/release-name` annotation,
/// else the chart labels' `app.kubernetes.io/instance` (with `app.kubernetes.io/managed-by:
/// Helm` or `helm.sh/chart`).
pub(crate) fn helm_release(metadata: &Value) -> Option<String> {
    let labels = &metadata["labels"];
    some_text(&metadata["annotations"]["meta.helm.sh/release-name"]).or_else(|| {
        let by_helm =
            labels["app.kubernetes.io/managed-by"] == "Helm" || labels["helm.sh/chart"].is_string();
        by_helm
            .then(|| some_text(&labels["app.kubernetes.io/instance"]))
            .flatten()
    })
}

/// The containers of a pod's status that wait (init containers first), and the init containers
/// that failed: caught between two restarts, or restarting, or running again after a failure.
fn stopped_containers(status: &Value) -> Vec<WaitingContainer> {
    [
        ("initContainerStatuses", true),
        ("containerStatuses", false),
    ]
    .iter()
    .flat_map(|(key, init)| {
        status[key]
            .as_array()
            .into_iter()
            .flatten()
            .map(move |c| (c, *init))
    })
    .filter_map(|(c, init)| stopped_container(c, init))
    .take(MAX_CONTAINERS_PER_POD)
    .collect()
}

/// One container status, when it waits or, for an init container, failed. The kubelet names a
/// crash-looping init container CrashLoopBackOff only while it holds it back: between that,
/// the same container shows as terminated, waiting to be created or running again, and only
/// its last exit says it fails. Reading that exit keeps the cause the same whichever moment
/// the pod was read.
fn stopped_container(c: &Value, init: bool) -> Option<WaitingContainer> {
    let entry = |reason: String, message: String| WaitingContainer {
        name: text(&c["name"]),
        init,
        reason,
        message,
    };
    let waiting = &c["state"]["waiting"];
    let waiting_reason = text(&waiting["reason"]);
    if waiting.is_object() && !ON_THE_WAY.contains(&waiting_reason.as_str()) {
        return Some(entry(waiting_reason, text(&waiting["message"])));
    }
    let terminated = &c["state"]["terminated"];
    if init && let Some((reason, code)) = failed_exit(terminated) {
        return Some(entry(reason, format!("exit code {code}")));
    }
    // An init container that ended well is done, whatever failed before.
    let last = &c["lastState"]["terminated"];
    if init
        && !terminated.is_object()
        && let Some((reason, code)) = failed_exit(last)
    {
        let restarts = c["restartCount"].as_i64().unwrap_or(0);
        let now = if c["state"]["running"].is_object() {
            "running again"
        } else if waiting_reason.is_empty() {
            "to be started again"
        } else {
            waiting_reason.as_str()
        };
        let message = format!("last exit code {code} ({restarts} restarts), now {now}");
        return Some(entry(reason, message));
    }
    waiting
        .is_object()
        .then(|| entry(waiting_reason.clone(), text(&waiting["message"])))
}

/// A `terminated` state with a non-zero exit code: its reason (Error when none) and code.
fn failed_exit(terminated: &Value) -> Option<(String, i64)> {
    let code = terminated["exitCode"].as_i64().filter(|code| *code != 0)?;
    let reason = some_text(&terminated["reason"]).unwrap_or_else(|| "Error".into());
    Some((reason, code))
}

/// The names of the init containers before Velero's restore-wait (at most
/// MAX_CONTAINERS_PER_POD); empty without it.
fn init_containers_before_restore_wait(spec: &Value) -> Vec<String> {
    let init = spec["initContainers"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    let Some(at) = init
        .iter()
        .position(|c| RESTORE_WAIT_CONTAINERS.iter().any(|w| c["name"] == *w))
    else {
        return Vec::new();
    };
    init[..at]
        .iter()
        .take(MAX_CONTAINERS_PER_POD)
        .map(|c| text(&c["name"]))
        .collect()
}

/// The controller of an object (`ownerReferences` with `controller: true`): kind and name.
fn controller_of(metadata: &Value) -> Option<(String, String)> {
    metadata["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["controller"] == true)
        .map(|r| (text(&r["kind"]), text(&r["name"])))
}

/// `PodVolumeBackup/name` from the label a data-path pod names its operation with.
fn served_operation(labels: &Value) -> Option<String> {
    crate::velero::DATA_PATH_POD_LABELS
        .iter()
        .find_map(|label| {
            let name = labels[label].as_str()?;
            Some(format!(
                "{}/{name}",
                crate::velero::data_path_label_kind(label)?
            ))
        })
}

fn text(v: &Value) -> String {
    v.as_str()
        .map(|s| cap(s, MAX_FIELD_BYTES))
        .unwrap_or_default()
}

fn some_text(v: &Value) -> Option<String> {
    v.as_str()
        .filter(|s| !s.is_empty())
        .map(|s| cap(s, MAX_FIELD_BYTES))
}

/// The container a pod's post-restore exec hook annotations run in: Velero's
/// internal/hook/item_hook_handler.go reads `post.hook.restore.velero.io/command`, and
/// `.../container` or else the pod's first container.
fn post_restore_hook(metadata: &Value, spec: &Value) -> Option<String> {
    let annotations = &metadata["annotations"];
    annotations["post.hook.restore.velero.io/command"].as_str()?;
    some_text(&annotations["post.hook.restore.velero.io/container"])
        .or_else(|| some_text(&spec["containers"][0]["name"]))
}

/// `description, 3 of 10 GiB`: what an item operation's status says of its progress.
fn item_operation_progress(status: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(description) = some_text(&status["description"]) {
        parts.push(description);
    }
    if let Some(total) = status["nTotal"].as_i64().filter(|n| *n > 0) {
        let done = status["nCompleted"].as_i64().unwrap_or(0);
        let units = some_text(&status["operationUnits"]).unwrap_or_default();
        parts.push(format!("{done} of {total} {units}").trim_end().to_string());
    }
    parts.join(", ")
}

fn name_of(obj: &Value) -> String {
    text(&obj["metadata"]["name"])
}

/// What a volume operation moves, as [`Evidence::volume_totals`] names it: `pod/<ns>/<name>`
/// for a PodVolumeBackup/Restore, `pvc/<ns>/<name>` for a DataUpload/Download.
pub(crate) fn volume_subject(kind: &str, spec: &Value) -> Option<String> {
    if kind.starts_with("PodVolume") {
        let pod = &spec["pod"];
        return Some(format!(
            "pod/{}/{}",
            some_text(&pod["namespace"])?,
            some_text(&pod["name"])?
        ));
    }
    let (namespace, claim) = if kind == "DataUpload" {
        (&spec["sourceNamespace"], &spec["sourcePVC"])
    } else {
        (
            &spec["targetVolume"]["namespace"],
            &spec["targetVolume"]["pvc"],
        )
    };
    Some(format!(
        "pvc/{}/{}",
        some_text(namespace)?,
        some_text(claim)?
    ))
}

impl Evidence {
    /// The Backup or Restore (`obj` is the object's JSON, `path` its file in the bundle).
    pub fn set_target(&mut self, path: &str, obj: &Value) {
        let status = &obj["status"];
        let t = &mut self.target;
        t.path = path.to_string();
        t.kind = text(&obj["kind"]);
        t.name = name_of(obj);
        t.namespace = text(&obj["metadata"]["namespace"]);
        t.uid = text(&obj["metadata"]["uid"]);
        t.phase = some_text(&status["phase"]).unwrap_or_else(|| "<none>".into());
        t.failure_reason = some_text(&status["failureReason"]);
        t.errors = status["errors"].as_i64();
        t.warnings = status["warnings"].as_i64();
        t.started = some_text(&status["startTimestamp"]);
        t.completed = some_text(&status["completionTimestamp"]);
        t.validation_errors = status["validationErrors"]
            .as_array()
            .into_iter()
            .flatten()
            .take(20)
            .map(text)
            .collect();
        t.hooks_attempted = status["hookStatus"]["hooksAttempted"].as_i64().unwrap_or(0);
        t.hooks_failed = status["hookStatus"]["hooksFailed"].as_i64().unwrap_or(0);
        t.post_restore_exec_hooks = obj["spec"]["hooks"]["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|r| r["postHooks"].as_array().into_iter().flatten())
            .any(|h| h["exec"].is_object());
        let prefix = if t.kind == "Restore" {
            "restore"
        } else {
            "backup"
        };
        let count = |what: &str| {
            status[format!("{prefix}ItemOperations{what}")]
                .as_i64()
                .unwrap_or(0)
        };
        t.item_operations = (count("Attempted"), count("Completed"), count("Failed"));
        if t.kind == "Restore" {
            t.backup_name = some_text(&obj["spec"]["backupName"]);
        } else {
            t.storage_location = some_text(&obj["spec"]["storageLocation"]);
        }
    }

    /// A Restore's backup, when it still exists.
    pub fn set_restore_backup(&mut self, path: &str, backup: &Value) {
        let t = &mut self.target;
        t.backup_phase = some_text(&backup["status"]["phase"]);
        t.backup_path = Some(path.to_string());
        t.storage_location = some_text(&backup["spec"]["storageLocation"]);
        if t.backup_name.is_none() {
            t.backup_name = Some(name_of(backup));
        }
    }

    pub fn add_operation(&mut self, path: &str, kind: &str, obj: &Value) {
        let (spec, status) = (&obj["spec"], &obj["status"]);
        let phase = some_text(&status["phase"]).unwrap_or_else(|| "<none>".into());
        *self
            .operation_counts
            .entry(kind.to_string())
            .or_default()
            .entry(phase.clone())
            .or_default() += 1;
        let node = if kind == "PodVolumeBackup" {
            some_text(&spec["node"])
        } else {
            some_text(&status["node"]).or_else(|| some_text(&status["acceptedByNode"]))
        };
        self.involved_nodes.extend(node.clone());
        self.count_volume(kind, spec);
        self.timeline.add(path, kind, node.as_deref(), &phase, obj);
        if phase == "Completed" {
            return;
        }
        if self.operations.len() >= MAX_OPERATIONS {
            self.operations_left_out += 1;
            return;
        }
        let pod = &spec["pod"];
        let namespace = some_text(&pod["namespace"])
            .or_else(|| some_text(&spec["sourceNamespace"]))
            .or_else(|| some_text(&spec["targetVolume"]["namespace"]));
        let pod = some_text(&pod["name"]).map(|n| format!("{}/{n}", text(&pod["namespace"])));
        let volume = some_text(&spec["volume"])
            .or_else(|| some_text(&spec["sourcePVC"]))
            .or_else(|| some_text(&spec["targetVolume"]["pvc"]));
        self.operations.push(OperationEvidence {
            path: path.to_string(),
            kind: kind.to_string(),
            name: name_of(obj),
            phase,
            message: text(&status["message"]),
            node,
            pod,
            namespace,
            volume,
            operation_id: some_text(&obj["metadata"]["labels"]["velero.io/async-operation-id"]),
        });
    }

    /// One more volume operation of the pod or claim it moves.
    fn count_volume(&mut self, kind: &str, spec: &Value) {
        let Some(subject) = volume_subject(kind, spec) else {
            return;
        };
        if let Some(n) = self.volume_totals.get_mut(&subject) {
            *n += 1;
        } else if self.volume_totals.len() < MAX_VOLUME_SUBJECTS {
            self.volume_totals.insert(subject, 1);
        } else {
            self.volume_totals_cut = true;
        }
    }

    /// A restored Deployment, StatefulSet, DaemonSet or Job (its JSON).
    pub fn add_application(&mut self, kind: &str, obj: &Value) {
        if self.applications.len() >= MAX_APPLICATIONS {
            return;
        }
        let metadata = &obj["metadata"];
        self.applications.push(ApplicationEvidence {
            kind: kind.to_string(),
            namespace: text(&metadata["namespace"]),
            name: name_of(obj),
            helm_release: helm_release(metadata),
        });
    }

    pub fn add_storage_location(&mut self, path: &str, obj: &Value) {
        self.storage_locations.push(StorageLocationEvidence {
            path: path.to_string(),
            name: name_of(obj),
            phase: text(&obj["status"]["phase"]),
            message: text(&obj["status"]["message"]),
        });
    }

    /// A Velero pod (its JSON), with its containers' restarts and last termination.
    pub fn add_pod(&mut self, path: &str, role: PodRole, pod: &Value) {
        let status = &pod["status"];
        let memory_limit = |name: &Value| {
            ["initContainers", "containers"]
                .iter()
                .flat_map(|key| pod["spec"][key].as_array().into_iter().flatten())
                .find(|c| &c["name"] == name)
                .and_then(|c| some_text(&c["resources"]["limits"]["memory"]))
        };
        let containers = ["initContainerStatuses", "containerStatuses"]
            .iter()
            .flat_map(|key| status[key].as_array().into_iter().flatten())
            .map(|c| {
                let terminated = &c["lastState"]["terminated"];
                let ended = [&c["state"]["terminated"], terminated]
                    .into_iter()
                    .find(|t| t.is_object());
                ContainerEvidence {
                    ended_message: ended
                        .and_then(|t| some_text(&t["message"]))
                        .map(|m| crate::findings::text::cap(&m, 1024)),
                    memory_limit: memory_limit(&c["name"]),
                    name: text(&c["name"]),
                    restarts: c["restartCount"].as_i64().unwrap_or(0),
                    last_terminated: terminated.is_object().then(|| {
                        (
                            some_text(&terminated["reason"]).unwrap_or_else(|| "unknown".into()),
                            terminated["exitCode"].as_i64().unwrap_or(0),
                        )
                    }),
                    waiting: some_text(&c["state"]["waiting"]["reason"]),
                    terminated: c["state"]["terminated"].is_object().then(|| {
                        let ended = &c["state"]["terminated"];
                        (
                            some_text(&ended["reason"]).unwrap_or_else(|| "unknown".into()),
                            ended["exitCode"].as_i64().unwrap_or(0),
                        )
                    }),
                }
            })
            .collect();
        self.pods.push(PodEvidence {
            path: path.to_string(),
            role,
            name: name_of(pod),
            node: some_text(&pod["spec"]["nodeName"]),
            phase: text(&status["phase"]),
            containers,
            serves: served_operation(&pod["metadata"]["labels"]),
            recorded_at: some_text(&pod["metadata"]["annotations"][RECORDED_AT]),
            failed: (status["phase"] == "Failed").then(|| {
                (
                    text(&status["reason"]),
                    crate::findings::text::cap(&text(&status["message"]), 1024),
                )
            }),
        });
    }

    /// The nodes that run a node-agent pod (every node-agent pod, not only those collected),
    /// so a node without one can be named.
    pub fn set_node_agent_nodes(&mut self, nodes: impl IntoIterator<Item = String>) {
        self.node_agent_nodes = Some(nodes.into_iter().collect());
    }

    /// A workload pod (its JSON): phase, node, conditions, waiting containers, claims.
    /// `node`, the node of pod `namespace/name`, ran the PodVolumeRestores that name that pod
    /// and carry no node of their own ([`restore_placed_by_its_pod`]): it is involved, and the
    /// kept ones among them are placed on it.
    pub fn place_pod_volume_restores(&mut self, pod: &str, node: &str) {
        for op in self.operations.iter_mut().filter(|o| {
            o.kind == "PodVolumeRestore"
                && o.node.is_none()
                && o.pod.as_deref() == Some(pod)
                && restore_placed_by_its_pod(&o.phase)
        }) {
            op.node = Some(node.to_string());
        }
        self.timeline
            .place_restores(pod, node, restore_placed_by_its_pod);
        self.involved_nodes.insert(node.to_string());
    }

    pub fn add_workload_pod(&mut self, path: &str, pod: &Value) {
        if self.workload_pods.len() >= MAX_WORKLOAD_PODS {
            return;
        }
        let (spec, status) = (&pod["spec"], &pod["status"]);
        let condition = |kind: &str| {
            status["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["type"] == kind)
        };
        let unschedulable = condition("PodScheduled")
            .filter(|c| c["status"] == "False")
            .map(|c| (text(&c["reason"]), text(&c["message"])));
        let waiting = stopped_containers(status);
        let claims = spec["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| {
                some_text(&v["persistentVolumeClaim"]["claimName"]).or_else(|| {
                    // A generic ephemeral volume's claim is named `<pod>-<volume>`.
                    v["ephemeral"]
                        .is_object()
                        .then(|| format!("{}-{}", name_of(pod), text(&v["name"])))
                })
            })
            .take(MAX_CLAIMS_PER_POD)
            .collect();
        let metadata = &pod["metadata"];
        self.workload_pods.push(WorkloadPodEvidence {
            path: path.to_string(),
            namespace: text(&metadata["namespace"]),
            name: name_of(pod),
            phase: some_text(&status["phase"]).unwrap_or_else(|| "<none>".into()),
            node: some_text(&spec["nodeName"]),
            ready: condition("Ready").is_some_and(|c| c["status"] == "True"),
            unschedulable,
            waiting,
            before_restore_wait: init_containers_before_restore_wait(spec),
            claims,
            owner: controller_of(metadata),
            template_hash: some_text(&metadata["labels"]["pod-template-hash"]),
            helm_release: helm_release(metadata),
            post_restore_hook: post_restore_hook(metadata, spec),
        });
    }

    /// A PersistentVolumeClaim of a workload pod (its JSON).
    pub fn add_claim(&mut self, path: &str, claim: &Value) {
        if self.claims.len() >= MAX_CLAIMS {
            return;
        }
        self.claims.push(ClaimEvidence {
            path: path.to_string(),
            namespace: text(&claim["metadata"]["namespace"]),
            name: name_of(claim),
            phase: some_text(&claim["status"]["phase"]).unwrap_or_else(|| "<none>".into()),
            storage_class: claim["spec"]["storageClassName"]
                .as_str()
                .map(|s| cap(s, MAX_FIELD_BYTES)),
            volume: some_text(&claim["spec"]["volumeName"]),
        });
    }

    /// A ResourceQuota (its JSON).
    pub fn add_quota(&mut self, path: &str, quota: &Value) {
        if self.quotas.len() >= MAX_QUOTAS {
            return;
        }
        let resources = |v: &Value| -> BTreeMap<String, String> {
            v.as_object()
                .into_iter()
                .flatten()
                .take(MAX_QUOTA_RESOURCES)
                .map(|(k, v)| (cap(k, MAX_FIELD_BYTES), text(v)))
                .collect()
        };
        let status = &quota["status"];
        let hard = if status["hard"].is_object() {
            resources(&status["hard"])
        } else {
            resources(&quota["spec"]["hard"])
        };
        self.quotas.push(QuotaEvidence {
            path: path.to_string(),
            namespace: text(&quota["metadata"]["namespace"]),
            name: name_of(quota),
            hard,
            used: resources(&status["used"]),
        });
    }

    /// A VolumeAttachment (its JSON).
    pub fn add_volume_attachment(&mut self, attachment: &Value) {
        if self.volume_attachments.len() >= MAX_ATTACHMENTS {
            return;
        }
        self.volume_attachments.push(AttachmentEvidence {
            name: name_of(attachment),
            volume: text(&attachment["spec"]["source"]["persistentVolumeName"]),
            node: text(&attachment["spec"]["nodeName"]),
            attached: attachment["status"]["attached"] == true,
        });
    }

    /// A LimitRange (its JSON).
    pub fn add_limit_range(&mut self, path: &str, range: &Value) {
        if let Some(range) = limit_ranges::read(path, range, self.limit_ranges.len()) {
            self.limit_ranges.push(range);
        }
    }

    /// The cluster's StorageClasses (their JSON), listed whole.
    pub fn set_storage_classes<'a>(&mut self, classes: impl IntoIterator<Item = &'a Value>) {
        let mut found = StorageClassesEvidence::default();
        for class in classes {
            let name = name_of(class);
            let annotation =
                &class["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"];
            if annotation == "true" && found.default.is_none() {
                found.default = Some(name.clone());
            }
            if found.names.len() < MAX_STORAGE_CLASSES {
                if let Some(provisioner) = some_text(&class["provisioner"]) {
                    found.provisioners.insert(name.clone(), provisioner);
                }
                found.names.insert(name);
            }
        }
        self.storage_classes = Some(found);
    }

    /// Events (a JSON list as written into the bundle): each one [`add_event`](Self::add_event)
    /// takes, then [`trim_events`](Self::trim_events). Collection hands them over one at a time.
    #[cfg(test)]
    pub(crate) fn add_events(&mut self, path: &str, events: &Value) {
        for e in events.as_array().into_iter().flatten() {
            self.add_event(path, e);
        }
        self.trim_events();
    }

    /// One event as written into the bundle at `path`. Only Warning events are kept: once
    /// [`trim_events`](Self::trim_events) trimmed them, the latest and those about the workload
    /// pods and their claims.
    pub fn add_event(&mut self, path: &str, e: &Value) {
        if e["type"] != "Warning" {
            return;
        }
        self.events_seen += 1;
        let obj = &e["involvedObject"];
        let time = velero_debug_crd::event_time::last_seen_text(e)
            .unwrap_or_default()
            .to_string();
        let (namespace, kind, name) = (
            text(&obj["namespace"]),
            text(&obj["kind"]),
            text(&obj["name"]),
        );
        let event = EventEvidence {
            path: path.to_string(),
            time,
            object: format!("{namespace}/{kind}/{name}"),
            namespace,
            kind,
            name,
            reason: text(&e["reason"]),
            message: text(&e["message"]),
            count: e["count"].as_i64().unwrap_or(1),
        };
        if self.events.iter().any(|k| {
            k.object == event.object && k.reason == event.reason && k.message == event.message
        }) {
            return;
        }
        self.events.push(event);
        if self.events.len() > 4 * MAX_EVENTS {
            self.trim_events();
        }
    }

    /// Keeps the events about workload pods and their claims (a few each) and the latest
    /// others: once after the events of a list were added.
    pub fn trim_events(&mut self) {
        let workloads: BTreeSet<(&str, String)> = self
            .operations
            .iter()
            .filter_map(|o| o.pod.clone())
            .chain(self.workload_pods.iter().map(|p| p.key()))
            .map(|pod| ("Pod", pod))
            .chain(self.claims.iter().map(|c| {
                (
                    "PersistentVolumeClaim",
                    format!("{}/{}", c.namespace, c.name),
                )
            }))
            .collect();
        self.events.sort_by(|a, b| b.time.cmp(&a.time));
        let mut per_object: BTreeMap<(String, String), usize> = BTreeMap::new();
        let mut others = 0;
        self.events.retain(|e| {
            let object = format!("{}/{}", e.namespace, e.name);
            if workloads.contains(&(e.kind.as_str(), object.clone())) {
                let n = per_object.entry((e.kind.clone(), object)).or_default();
                *n += 1;
                *n <= MAX_EVENTS_PER_POD
            } else {
                others += 1;
                others <= MAX_EVENTS
            }
        });
        self.events.sort_by(|a, b| a.time.cmp(&b.time));
    }

    /// One entry of itemoperations.json (its JSON).
    pub fn add_item_operation(&mut self, path: &str, op: &Value) {
        let status = &op["status"];
        let phase = some_text(&status["phase"]).unwrap_or_else(|| "<none>".into());
        *self.item_operation_phases.entry(phase.clone()).or_default() += 1;
        let error = text(&status["error"]);
        if (phase == "Completed" && error.is_empty())
            || self.item_operations.len() >= MAX_ITEM_OPERATIONS
        {
            return;
        }
        let spec = &op["spec"];
        let id = &spec["resourceIdentifier"];
        let action = some_text(&spec["backupItemAction"])
            .or_else(|| some_text(&spec["restoreItemAction"]))
            .unwrap_or_default();
        self.item_operations.push(ItemOperationEvidence {
            path: path.to_string(),
            action,
            item: format!(
                "{}/{}/{}",
                text(&id["Resource"]),
                text(&id["Namespace"]),
                text(&id["Name"])
            ),
            operation_id: text(&spec["operationID"]),
            phase,
            error,
            created: some_text(&status["created"]).and_then(|t| t.parse().ok()),
            progress: item_operation_progress(status),
        });
    }

    /// What one log file showed, once it has been read whole.
    pub fn add_log_scan(&mut self, scan: LogScan) {
        let last_words = scan.last_words();
        for hit in scan.earlier() {
            let kept = self
                .log_context
                .iter()
                .filter(|h| h.hit.pattern == hit.pattern)
                .count();
            if kept < MAX_HITS_PER_PATTERN {
                self.log_context.push(LogHitAt {
                    source: scan.source().clone(),
                    hit: hit.clone(),
                });
            }
        }
        let (source, hits, groups, dropped) = scan.into_parts();
        if let Some(words) = last_words
            && source.pod.is_some()
            && self.last_words.len() < MAX_LAST_WORDS
        {
            self.last_words.push((source.clone(), words));
        }
        for hit in hits {
            let most = self.log_hit_counts.entry(hit.pattern).or_default();
            *most = (*most).max(hit.count);
            let cap = if hit.pattern == Pattern::GoPanic {
                MAX_PANIC_HITS
            } else {
                MAX_HITS_PER_PATTERN
            };
            let kept = self
                .log_hits
                .iter()
                .filter(|h| h.hit.pattern == hit.pattern)
                .count();
            if kept < cap {
                self.log_hits.push(LogHitAt {
                    source: source.clone(),
                    hit,
                });
            }
        }
        self.log_lines_left_out += dropped;
        for group in groups {
            if self.log_lines.len() < MAX_LOG_GROUPS {
                self.log_lines.push((source.clone(), group));
            } else {
                self.log_lines_left_out += group.count;
            }
        }
    }

    /// Every place a pattern shows: operations' and the target's status, results, item
    /// operations, logs. Bounded by what each source keeps.
    pub fn mentions(&self, pattern: Pattern) -> Vec<Mention> {
        let mut out = Vec::new();
        let t = &self.target;
        let target_texts = t.failure_reason.iter().chain(&t.validation_errors);
        for text in target_texts {
            if patterns::classify(text).contains(&pattern) {
                out.push(Mention {
                    pattern,
                    quote: patterns::quote_of(text, pattern),
                    file: t.path.clone(),
                    line: None,
                    operation: None,
                    node: None,
                });
            }
        }
        for op in &self.operations {
            if patterns::classify(&op.message).contains(&pattern) {
                out.push(Mention {
                    pattern,
                    quote: patterns::quote_of(&op.message, pattern),
                    file: op.path.clone(),
                    line: None,
                    operation: Some(op.key()),
                    node: op.node.clone(),
                });
            }
        }
        for m in self.results.mentions(pattern) {
            out.push(m.clone());
        }
        for op in &self.item_operations {
            if patterns::classify(&op.error).contains(&pattern) {
                out.push(Mention {
                    pattern,
                    quote: patterns::quote_of(&op.error, pattern),
                    file: op.path.clone(),
                    line: None,
                    operation: None,
                    node: None,
                });
            }
        }
        for h in self.log_hits.iter().filter(|h| h.hit.pattern == pattern) {
            out.push(Mention {
                pattern,
                quote: h.hit.quote.clone(),
                file: h.source.path.clone(),
                line: Some(h.hit.line),
                operation: None,
                node: h.source.node.clone(),
            });
        }
        out
    }
}

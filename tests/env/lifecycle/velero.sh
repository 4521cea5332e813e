# Velero: its CRDs, its real server (with the AWS and GCP plugins) as a process here, and its
# workloads as a cluster would have them: Deployment velero and DaemonSet node-agent, kwok pods
# on the kwok nodes (their logs served from files) and Velero's real node-agent on the real
# node. Sourced by env-up.sh.
# Sets: VELERO_LOG, METRICS_PORT.

velero_crds_install() {
  kubectl create namespace "$NAMESPACE" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  "$VELERO" install --crds-only --dry-run -o yaml | kubectl apply -f - >/dev/null
  kubectl wait --for=condition=Established crd --all --timeout=60s >/dev/null
  log "env-up: Velero CRDs installed ($(kubectl get crd -o name | grep -c velero.io) kinds)"
}

# Whether this Velero version's `velero <subcommand>` has flag --<flag>: 1.14 has neither
# --kubelet-root-dir (install) nor --repo-maintenance-job-configmap (server).
velero_has_flag() { # subcommand flag
  "$VELERO" "$1" --help 2>&1 | grep -qE -- "--$2[ =]"
}

# The server's flags that a bundle reads, as this version's own install sets them.
velero_server_flags() {
  # EnableCSI: Velero's CSI snapshots and data mover, as users start it for them (1.14-1.18).
  VELERO_SERVER_FLAGS=(--uploader-type=kopia --features=EnableCSI)
  if velero_has_flag server repo-maintenance-job-configmap; then
    VELERO_SERVER_FLAGS+=("--repo-maintenance-job-configmap=$MAINTENANCE_CONFIG_MAP")
  fi
}

velero_server_up() {
  velero_server_flags
  # The server refuses to start without its maintenance ConfigMap; `global: {}` keeps Velero's
  # defaults, and a test adds its repository's key.
  kubectl -n "$NAMESPACE" create configmap "$MAINTENANCE_CONFIG_MAP" --from-literal=global='{}' \
    --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  ln -sf "$AWS_PLUGIN" "$VDO_ENV_DIR/plugins/velero-plugin-for-aws"
  ln -sf "$GCP_PLUGIN" "$VDO_ENV_DIR/plugins/velero-plugin-for-gcp"
  METRICS_PORT=$(free_port) PROFILER_PORT=$(free_port)
  VELERO_LOG="$VDO_ENV_DIR/podlogs/velero.log"
  : >"$VELERO_LOG"
  start_group velero "$VDO_ENV_DIR/logs/velero-server.log" env AWS_SHARED_CREDENTIALS_FILE="$CREDS_FILE" \
    STORAGE_EMULATOR_HOST="$GCS_URL" AWS_ENDPOINT_URL_STS="$STS_URL" \
    bash -c 'set -o pipefail; "$@" 2>&1 | tee -a "'"$VDO_ENV_DIR/logs/velero-server.log"'" | python3 "'"$ENV_DIR/lifecycle/cri-log.py"'" "'"$VELERO_LOG"'" stdout' _ \
    "$VELERO" server --kubeconfig "$KUBECONFIG" --namespace "$NAMESPACE" \
    --plugin-dir "$VDO_ENV_DIR/plugins" "${VELERO_SERVER_FLAGS[@]}" \
    --metrics-address "127.0.0.1:$METRICS_PORT" --profiler-address "127.0.0.1:$PROFILER_PORT" \
    --log-level info
  log "env-up: Velero server started (log: $VELERO_LOG); waiting for BSL default to be Available"
  wait_for "BSL default Available" 120 bash -c \
    "[[ \$(kubectl -n $NAMESPACE get bsl default -o jsonpath='{.status.phase}') == Available ]]"
  wait_for "BSL gcs Available" 60 bash -c \
    "[[ \$(kubectl -n $NAMESPACE get bsl gcs -o jsonpath='{.status.phase}') == Available ]]"
  log "env-up: BSLs default and gcs Available"
}

velero_deployment_apply() {
  kubectl apply -f - >/dev/null <<EOF
apiVersion: apps/v1
kind: Deployment
metadata:
  name: velero
  namespace: $NAMESPACE
  labels: {component: velero}
spec:
  replicas: 1
  selector: {matchLabels: {deploy: velero}}
  template:
    metadata:
      labels: {component: velero, deploy: velero}
    spec:
      # Its pod stays on a kwok node; repository maintenance Jobs, made from this template,
      # inherit the toleration and may run on the real node when a test's ConfigMap says so.
      nodeSelector: {type: kwok}
      tolerations: [{key: $NODE_TAINT_KEY, operator: Exists, effect: NoSchedule}]
      initContainers:
      - name: velero-plugin-for-aws
        image: velero/velero-plugin-for-aws:$VELERO_AWS_PLUGIN_VERSION
      containers:
      - name: velero
        image: velero/velero:$VELERO_VERSION
        command: [/velero]
        # The flags the server runs with below that a bundle reads here, as a cluster's own
        # Deployment would carry them.
        args: [server$(printf ', %s' "${VELERO_SERVER_FLAGS[@]}")]
EOF
}

node_agent_apply() {
  # The node-agent DaemonSet as this Velero version's own install makes it, with the real node's
  # kubelet folder and Velero's image made here; it also tolerates the real node's taint and is
  # updated OnDelete. On the kwok nodes its pods are kwok's; on the real node it runs `velero
  # node-agent server` for real. A version without --kubelet-root-dir (1.14) mounts
  # /var/lib/kubelet: its hostPaths are edited to the real node's folder, as users of another
  # kubelet folder edit that version's DaemonSet.
  local root_dir=()
  ! velero_has_flag install kubelet-root-dir || root_dir=(--kubelet-root-dir "$NODE_KUBELET_DIR")
  "$VELERO" install --dry-run -o json --use-node-agent --no-secret --no-default-backup-location \
    --use-volume-snapshots=false --features=EnableCSI --image "$VELERO_IMAGE" "${root_dir[@]}" \
    --plugins "velero/velero-plugin-for-aws:$VELERO_AWS_PLUGIN_VERSION" | python3 -c '
import json, sys
taint, kubelet_dir = sys.argv[1:3]
keep = []
for item in json.load(sys.stdin)["items"]:
    kind, name = item["kind"], item["metadata"]["name"]
    if kind == "DaemonSet" and name == "node-agent":
        spec = item["spec"]["template"]["spec"]
        spec.setdefault("tolerations", []).append({"key": taint, "operator": "Exists", "effect": "NoSchedule"})
        for c in spec["containers"]:
            c["imagePullPolicy"] = "Never"
        for v in spec.get("volumes", []):
            host = v.get("hostPath", {})
            if host.get("path", "").startswith("/var/lib/kubelet/"):
                host["path"] = kubelet_dir + host["path"][len("/var/lib/kubelet"):]
        # A test that changes the template (to keep the node-agent off the real node, or give
        # it a ConfigMap) must not replace the pods on the kwok nodes: their logs are files
        # named after them. OnDelete still removes and adds pods as nodes stop or start
        # matching.
        item["spec"]["updateStrategy"] = {"type": "OnDelete"}
        keep.append(item)
    elif kind in ("ServiceAccount", "ClusterRoleBinding") and name == "velero":
        keep.append(item)
print(json.dumps({"apiVersion": "v1", "kind": "List", "items": keep}))' "$NODE_TAINT_KEY" "$NODE_KUBELET_DIR" >"$VDO_ENV_DIR/node-agent.json" ||
    die "cannot make the node-agent DaemonSet of Velero $VELERO_VERSION from 'velero install --dry-run'"
  kubectl apply -f "$VDO_ENV_DIR/node-agent.json" >/dev/null
  wait_for "velero and node-agent pods Running" 120 bash -c \
    "[[ \$(kubectl -n $NAMESPACE get pods -o jsonpath='{range .items[*]}{.status.phase}{\"\\n\"}{end}' | grep -c Running) -ge 5 ]]"
  wait_for "the node-agent on $NODE_NAME Ready" 120 bash -c \
    "kubectl -n $NAMESPACE get pods -l name=node-agent --field-selector spec.nodeName=$NODE_NAME -o jsonpath='{.items[*].status.containerStatuses[*].ready}' | grep -qx true"
}

# A line as the CRI writes it to a pod's log file.
cri_line() { printf '%s stdout F %s\n' "$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)" "$1"; }

pod_logs_serve() {
  # Each pod's log is a file on this machine; kwok serves it through the API as the kubelet would.
  logs_objects=""
  first_agent=1
  for pod in $(kubectl -n "$NAMESPACE" get pods -l name=node-agent --field-selector "spec.nodeName!=$NODE_NAME" -o jsonpath='{.items[*].metadata.name}'); do
    node=$(kubectl -n "$NAMESPACE" get pod "$pod" -o jsonpath='{.spec.nodeName}')
    f="$VDO_ENV_DIR/podlogs/$pod.log"
    {
      cri_line "time=\"$(date -u +%FT%TZ)\" level=info msg=\"Starting node-agent server $VELERO_VERSION\" logSource=\"pkg/cmd/cli/nodeagent/server.go:1\" node=$node"
      cri_line "time=\"$(date -u +%FT%TZ)\" level=info msg=\"node-agent server started\" node=$node"
    } >"$f"
    previous=""
    if ((first_agent)); then
      # A previous instance's log is served for previous=true (environment.rs reads it). Its
      # status records no restart, so a bundle does not ask for it: tests that need a restarted
      # node-agent make their own (restart_node_agent_on).
      pf="$VDO_ENV_DIR/podlogs/$pod.previous.log"
      {
        cri_line "time=\"$(date -u +%FT%TZ)\" level=info msg=\"Starting node-agent server $VELERO_VERSION\" node=$node"
        cri_line "time=\"$(date -u +%FT%TZ)\" level=error msg=\"previous instance: data path failed, exiting\" node=$node"
      } >"$pf"
      previous="previousLogsFile: $pf"
      first_agent=0
    fi
    logs_objects+="apiVersion: kwok.x-k8s.io/v1alpha1
kind: Logs
metadata: {name: $pod, namespace: $NAMESPACE}
spec:
  logs:
  - containers: [node-agent]
    logsFile: $f
    $previous
---
"
  done
  velero_pod=$(kubectl -n "$NAMESPACE" get pods -l deploy=velero -o jsonpath='{.items[0].metadata.name}')
  # The plugin init container only copies its binary and exits, as in a real install.
  PLUGIN_INIT_LOG="$VDO_ENV_DIR/podlogs/velero-plugin-for-aws.log"
  cri_line "copied velero-plugin-for-aws to /target" >"$PLUGIN_INIT_LOG"
  logs_objects+="apiVersion: kwok.x-k8s.io/v1alpha1
kind: Logs
metadata: {name: $velero_pod, namespace: $NAMESPACE}
spec:
  logs:
  - containers: [velero]
    logsFile: $VELERO_LOG
  - containers: [velero-plugin-for-aws]
    logsFile: $PLUGIN_INIT_LOG
"
  echo "$logs_objects" | kubectl apply -f - >/dev/null
}

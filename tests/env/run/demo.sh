#!/usr/bin/env bash
# `make demo`: the main job, end to end, on the local environment. A real backup, a restore
# that the real Velero server ends PartiallyFailed, the DebugBundle the operator makes for it by
# itself, downloaded through its presigned URL with `kubectl velero-debug` (the plugin of cli/,
# which checks the sha256 while streaming) and shown; then a bundle made by hand with the
# plugin. The operator runs as a local process under the Helm chart's ServiceAccount (no
# container engine runs here).
#
# What it shows is also recorded, command and output, in docs/transcripts/NAME.txt (replaced
# only when the demo succeeds). README.md and docs/ quote those transcripts, and `make lint`
# (tests/lint/transcripts.py) fails when a quoted transcript no longer matches its recording.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

STEPS=10
demo_dir="$VDO_CACHE/demo"
rm -rf "$demo_dir" && mkdir -p "$demo_dir"
recording="$demo_dir/transcripts"
mkdir -p "$recording"
printf '$ make demo\n' >"$recording/make-demo.txt"

# A line of the demo's own progress, on stderr and in the make-demo transcript.
say() {
  local line
  line="$(printf '[%s] %s' "$(date +%H:%M:%S)" "$*")"
  printf '%s\n' "$line" >&2
  printf '%s\n' "$line" >>"$recording/make-demo.txt"
}
step() { say "demo [$1/$STEPS] $2"; }
# show NAME COMMAND...: runs COMMAND as a user would type it and shows it with its output
# (stderr too: what a user without a terminal sees), appending both to transcript NAME.
show() {
  local name=$1
  shift
  { printf '$ %s\n' "$*"; "$@" 2>&1; } | tee -a "$recording/$name.txt"
}

step 1 "environment: kube-apiserver, etcd, kwok nodes, a real node (kubelet, containerd, Velero's node-agent), S3, the real Velero server"
VDO_OPERATOR=0 "$ENV_DIR/lifecycle/env-up.sh" >/dev/null
export KUBECONFIG="$VDO_ENV_DIR/kubeconfig"
velero_cli="$(tool_dir velero "$VELERO_VERSION")/bin/velero"
velero() { "$velero_cli" --kubeconfig "$KUBECONFIG" -n velero "$@"; }

step 2 "helm install the chart (CRD, ServiceAccount, least-privilege RBAC; 0 replicas here)"
"$ENV_DIR/lifecycle/operator/chart-install.sh" >/dev/null

step 3 "operator: built from the working tree, running as the chart's ServiceAccount"
VDO_AS_SERVICE_ACCOUNT=1 "$ENV_DIR/lifecycle/operator/operator-up.sh"

step 4 "a real backup of namespace 'shop' (three ConfigMaps; a StatefulSet whose volume goes file by file through the node-agent, and one whose CSI volume is snapshotted and moved by the data mover)"
suffix=$(date +%s)
src="shop-$suffix"
kubectl create namespace "$src" >/dev/null
for name in prices stock banner; do
  kubectl -n "$src" create configmap "$name" --from-literal=updated="$(date -u +%FT%TZ)" >/dev/null
done
real_node=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["realNode"]["name"])' "$VDO_ENV_DIR/env.json")
taint=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["realNode"]["taintKey"])' "$VDO_ENV_DIR/env.json")
kubectl -n "$src" apply -f - >/dev/null <<EOF
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: orders}
spec:
  serviceName: orders
  replicas: 1
  selector: {matchLabels: {app: orders}}
  template:
    metadata:
      labels: {app: orders}
      # Opted in to fs-backup; the CSI volume below goes through a snapshot and the data mover.
      annotations: {backup.velero.io/backup-volumes: data}
    spec:
      nodeSelector: {kubernetes.io/hostname: $real_node}
      tolerations: [{key: $taint, operator: Exists, effect: NoSchedule}]
      terminationGracePeriodSeconds: 0
      containers:
      - name: db
        image: vdo.local/busybox:1
        imagePullPolicy: Never
        command: [sh, -c, "[ -f /data/orders ] || dd if=/dev/urandom of=/data/orders bs=64k count=16 2>/dev/null; exec sleep 86400"]
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 64Mi}}}
EOF
csi_class=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["realNode"]["csi"]["storageClass"])' "$VDO_ENV_DIR/env.json")
kubectl -n "$src" apply -f - >/dev/null <<EOF
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: ledger}
spec:
  serviceName: ledger
  replicas: 1
  selector: {matchLabels: {app: ledger}}
  template:
    metadata: {labels: {app: ledger}}
    spec:
      nodeSelector: {kubernetes.io/hostname: $real_node}
      tolerations: [{key: $taint, operator: Exists, effect: NoSchedule}]
      terminationGracePeriodSeconds: 0
      containers:
      - name: db
        image: vdo.local/busybox:1
        imagePullPolicy: Never
        command: [sh, -c, "[ -f /data/ledger ] || dd if=/dev/urandom of=/data/ledger bs=64k count=16 2>/dev/null; exec sleep 86400"]
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], storageClassName: $csi_class, resources: {requests: {storage: 64Mi}}}
EOF
for pod in orders-0 ledger-0; do
  for _ in $(seq 1 60); do kubectl -n "$src" get pod "$pod" >/dev/null 2>&1 && break; sleep 1; done
  kubectl -n "$src" wait --for=condition=Ready "pod/$pod" --timeout=120s >/dev/null ||
    die "pod $pod of the StatefulSets did not start on $real_node"
done
backup="nightly-$suffix"
velero backup create "$backup" --include-namespaces "$src" --snapshot-move-data \
  --storage-location real-node --wait >/dev/null
say "demo: backup $backup: $(kubectl -n velero get backup "$backup" -o jsonpath='{.status.phase}'), $(kubectl -n velero get podvolumebackups -l "velero.io/backup-name=$backup" -o jsonpath='{.items[*].status.phase}') volume backup and $(kubectl -n velero get datauploads -l "velero.io/backup-name=$backup" -o jsonpath='{.items[*].status.phase}') data upload on $real_node"

step 5 "a restore into 'shop-copy', whose ResourceQuota admits no ConfigMap: PartiallyFailed"
dst="$src-copy"
kubectl create namespace "$dst" >/dev/null
kubectl -n "$dst" create quota no-configmaps --hard=count/configmaps=0 >/dev/null
for _ in $(seq 1 60); do
  [[ -n "$(kubectl -n "$dst" get quota no-configmaps -o jsonpath='{.status.hard}')" ]] && break
  sleep 1
done
restore="restore-$suffix"
velero restore create "$restore" --from-backup "$backup" \
  --namespace-mappings "$src:$dst" --wait >/dev/null
phase=$(kubectl -n velero get restore "$restore" -o jsonpath='{.status.phase}')
say "demo: restore $restore: $phase"
[[ "$phase" == PartiallyFailed ]] || die "the restore ended $phase, not PartiallyFailed"
ended=$(date +%s)

step 6 "the operator makes the DebugBundle by itself"
uid=$(kubectl -n velero get restore "$restore" -o jsonpath='{.metadata.uid}')
selector="velerodebug.io/auto=true,velerodebug.io/target-uid=$uid"
bundle=""
for _ in $(seq 1 180); do
  bundle=$(kubectl -n velero get debugbundles -l "$selector" \
    -o jsonpath='{.items[0].metadata.name}' 2>/dev/null || true)
  if [[ -n "$bundle" ]]; then
    bundle_phase=$(kubectl -n velero get debugbundle "$bundle" -o jsonpath='{.status.phase}')
    [[ "$bundle_phase" == Completed || "$bundle_phase" == Failed ]] && break
  fi
  sleep 1
done
[[ -n "$bundle" ]] || die "no automatic bundle for restore $restore; see $VDO_ENV_DIR/logs/operator-0.log"
[[ "$bundle_phase" == Completed ]] ||
  die "bundle $bundle: $(kubectl -n velero get debugbundle "$bundle" -o jsonpath='{.status.conditions}')"
say "demo: $bundle Completed $(($(date +%s) - ended)) s after the restore ended"
show auto-bundle kubectl get debugbundles -n velero "$bundle"

step 7 "kubectl velero-debug download: the presigned URL, sha256 checked while streaming, unpacked"
cargo build -q -p kubectl-velero-debug --manifest-path "$REPO_ROOT/Cargo.toml"
export PATH="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug:$PATH"
cd "$demo_dir"
# Only this restore's bundles: the shared environment may hold others.
show plugin-list kubectl velero-debug list -l "velerodebug.io/target-uid=$uid"
show plugin-download kubectl velero-debug download "$bundle" --extract .
say "demo: sha256 $(kubectl -n velero get debugbundle "$bundle" -o jsonpath='{.status.archive.sha256}') checked by the plugin"

step 8 "what is in it: its files and summary.md, the probable cause first"
echo
echo "== files ($(tar -tzf "$bundle.tar.gz" | grep -vc '/$'))"
tar -tzf "$bundle.tar.gz" | grep -v '/$' | sort
echo
show summary kubectl velero-debug summary "$bundle"
echo

step 9 "a bundle made by hand for the restore that just failed: created, followed, downloaded"
show first-bundle kubectl velero-debug create restore --latest-failed --wait --download
# create prints which restore it picked (stderr), then the bundle's name alone on a line (the
# transcript's first line is the command).
manual=$(awk 'NR > 1 && !/ / { print; exit }' "$recording/first-bundle.txt")
kubectl -n velero get debugbundle "$manual" >/dev/null || die "create printed no bundle name first"
picked=$(kubectl -n velero get debugbundle "$manual" -o jsonpath='{.spec.restore}')
[[ "$picked" == "$restore" ]] || die "--latest-failed picked restore $picked, not $restore"
show plugin-describe kubectl velero-debug describe "$manual"

step 10 "report.html, opened by the plugin and rendered in headless Chromium"
report=$(kubectl velero-debug report "$bundle.tar.gz" --dir "$demo_dir/report" --no-open)
browser_tools="$(tool_dir browser "playwright$PLAYWRIGHT_CORE_VERSION-axe$AXE_CORE_VERSION-vnu$VNU_JAR_VERSION")/node_modules"
screenshot="$demo_dir/$bundle-report.png"
NODE_PATH="$browser_tools" node "$REPO_ROOT/tests/browser/report-check.cjs" "$report" "$screenshot" \
  >"$demo_dir/$bundle-report-check.json" || die "the report did not render in Chromium"
say "demo: $(jq -r '"\(.bars | length) operations drawn, \(.consoleErrors | length) console errors, \(.requests | length) request(s), loaded in \(.loadMs) ms"' "$demo_dir/$bundle-report-check.json")"
# The restore's volumes came back through the real node-agent: a PodVolumeRestore and a
# DataDownload (the data mover's) are drawn.
for kind in PodVolumeRestore DataDownload; do
  bars=$(jq --arg k "$kind" '[.bars[] | select(.kind == $k)] | length' "$demo_dir/$bundle-report-check.json")
  ((bars >= 1)) || die "the report draws no $kind (bars: $(jq -c '.bars' "$demo_dir/$bundle-report-check.json"))"
  say "demo: $bars $kind drawn, from the real node-agent's restore"
done

rm -rf "$REPO_ROOT/docs/transcripts"
mkdir -p "$REPO_ROOT/docs/transcripts"
cp "$recording"/*.txt "$REPO_ROOT/docs/transcripts/"
echo
log "demo: done. The bundle is unpacked in $demo_dir/$bundle."
log "demo: its report: $report; as Chromium drew it: $screenshot"
log "demo: transcripts recorded in docs/transcripts/ (make lint compares README.md and docs/ with them)."
log "demo: the environment keeps running (export KUBECONFIG=$KUBECONFIG); stop it with 'make env-down'."

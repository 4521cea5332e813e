#!/usr/bin/env bash
# (Re)starts the operator built from the working tree as local processes against the running
# environment, after installing the CRD from deploy/. env-down stops them with the rest.
#   VDO_OPERATOR_REPLICAS=2   two processes (leader election decides which one works)
#   VDO_SKIP_BUILD=1          restart the binary already built
#   VDO_AS_SERVICE_ACCOUNT=1  authenticate as the chart's ServiceAccount (TokenRequest token;
#                             the chart's manifests must be applied: chart-install.sh)
#   VDO_UPLOAD_BYTES_PER_SECOND, VDO_TARGET_WAIT_SECONDS, VDO_MAX_ATTEMPTS: operator settings
# Each process i has pids/operator-i.pid, logs/operator-i.log, and its /metrics port in
# operator-i.metrics-port; its Lease identity is operator-i.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
[[ -f "$VDO_ENV_DIR/env.json" ]] || die "no environment running: run 'make env-up'"
export KUBECONFIG="$VDO_ENV_DIR/kubeconfig"

kubectl apply --server-side --force-conflicts --field-manager=velero-debug-env \
  -f "$REPO_ROOT/deploy/crd.yaml" >/dev/null
kubectl wait --for=condition=Established crd/debugbundles.velerodebug.io --timeout=60s >/dev/null

bin="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug/velero-debug-operator"
if [[ "${VDO_SKIP_BUILD:-0}" != 1 || ! -x "$bin" ]]; then
  log "operator: building from the working tree"
  # The first build takes minutes: a progress line every 50 crates, errors in full.
  (cd "$REPO_ROOT" && cargo build -p velero-debug-operator 2>&1) |
    awk '/^ *Compiling/ { n++; if (n % 50 == 0) print "  ... " n " crates compiled"; next }
         /^ *(Finished|Blocking|Updating|Downloading|Downloaded|Locking|Adding)/ { next }
         { print }' >&2
fi

stop_operator() { # pidfile
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$1"
}
for f in "$VDO_ENV_DIR"/pids/operator*.pid; do [[ -e "$f" ]] && stop_operator "$f"; done
rm -f "$VDO_ENV_DIR"/operator-*.metrics-port

operator_kubeconfig="$KUBECONFIG"
if [[ "${VDO_AS_SERVICE_ACCOUNT:-0}" == 1 ]]; then
  "$ENV_DIR/sa-kubeconfig.sh" >/dev/null
  operator_kubeconfig="$VDO_ENV_DIR/operator-kubeconfig"
  log "operator: authenticating as system:serviceaccount:velero:velero-debug-operator"
fi

mkdir -p "$VDO_ENV_DIR/spool"
replicas="${VDO_OPERATOR_REPLICAS:-1}"
for i in $(seq 0 $((replicas - 1))); do
  port=$(free_port)
  # Short waits so the failure-path tests finish quickly; production defaults are longer.
  setsid env RUST_LOG="${RUST_LOG:-info,velero_debug_operator=debug}" \
    TARGET_WAIT_SECONDS="${VDO_TARGET_WAIT_SECONDS:-15}" MAX_ATTEMPTS="${VDO_MAX_ATTEMPTS:-3}" \
    MAX_AUTO_BUNDLES_PER_NAMESPACE="${VDO_MAX_AUTO_BUNDLES:-200}" \
    UPLOAD_BYTES_PER_SECOND="${VDO_UPLOAD_BYTES_PER_SECOND:-0}" \
    POD_NAME="operator-$i" METRICS_ADDR="127.0.0.1:$port" KUBECONFIG="$operator_kubeconfig" \
    "$bin" --namespace velero --spool-dir "$VDO_ENV_DIR/spool" \
    >>"$VDO_ENV_DIR/logs/operator-$i.log" 2>&1 </dev/null &
  echo $! >"$VDO_ENV_DIR/pids/operator-$i.pid"
  echo "$port" >"$VDO_ENV_DIR/operator-$i.metrics-port"
  log "operator-$i: running (pid $!, metrics 127.0.0.1:$port, log $VDO_ENV_DIR/logs/operator-$i.log)"
done
# Ready once one of them leads (the others stand by).
for _ in $(seq 1 300); do
  holder=$(kubectl -n velero get lease velero-debug-operator -o jsonpath='{.spec.holderIdentity}' 2>/dev/null || true)
  [[ "$holder" == operator-* ]] && kill -0 "$(cat "$VDO_ENV_DIR/pids/$holder.pid" 2>/dev/null)" 2>/dev/null && break
  sleep 0.1
done
[[ "$holder" == operator-* ]] || die "no operator took the leader lease; see $VDO_ENV_DIR/logs/operator-0.log"
log "operator: $holder leads"

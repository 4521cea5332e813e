#!/usr/bin/env bash
# (Re)starts the operator built from the working tree as a local process against the running
# environment, after installing the CRD from deploy/. env-down stops it with the rest.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
[[ -f "$VDO_ENV_DIR/env.json" ]] || die "no environment running: run 'make env-up'"
export KUBECONFIG="$VDO_ENV_DIR/kubeconfig"

kubectl apply -f "$REPO_ROOT/deploy/crd.yaml" >/dev/null
kubectl wait --for=condition=Established crd/debugbundles.velerodebug.io --timeout=60s >/dev/null

log "operator: building from the working tree"
(cd "$REPO_ROOT" && cargo build -q -p velero-debug-operator)
bin="$REPO_ROOT/target/debug/velero-debug-operator"

pidfile="$VDO_ENV_DIR/pids/operator.pid"
if pid=$(cat "$pidfile" 2>/dev/null) && kill -0 "$pid" 2>/dev/null; then
  kill -TERM -- "-$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$pid" 2>/dev/null || true
fi
mkdir -p "$VDO_ENV_DIR/spool"
# Short waits so the failure-path tests finish quickly; production defaults are longer.
setsid env RUST_LOG="${RUST_LOG:-info,velero_debug_operator=debug}" \
  TARGET_WAIT_SECONDS="${VDO_TARGET_WAIT_SECONDS:-15}" MAX_ATTEMPTS="${VDO_MAX_ATTEMPTS:-3}" \
  MAX_AUTO_BUNDLES_PER_NAMESPACE="${VDO_MAX_AUTO_BUNDLES:-200}" \
  "$bin" --namespace velero --spool-dir "$VDO_ENV_DIR/spool" \
  >>"$VDO_ENV_DIR/logs/operator.log" 2>&1 </dev/null &
echo $! >"$pidfile"
log "operator: running (pid $(cat "$pidfile"), log $VDO_ENV_DIR/logs/operator.log)"

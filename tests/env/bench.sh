#!/usr/bin/env bash
# `make bench`: runs the release-built operator against the local environment and measures a
# bundle over ~1 GiB of logs (time vs gzip -6, peak RSS) and API requests vs object count.
# Prints a Markdown table; BENCHMARKS.md keeps the figures with the date and machine.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

VDO_OPERATOR=0 "$ENV_DIR/env-up.sh" >/dev/null
export VDO_ENV_FILE="$VDO_ENV_DIR/env.json" KUBECONFIG="$VDO_ENV_DIR/kubeconfig"
kubectl apply --server-side --force-conflicts --field-manager=velero-debug-env \
  -f "$REPO_ROOT/deploy/crd.yaml" >/dev/null
kubectl wait --for=condition=Established crd/debugbundles.velerodebug.io --timeout=60s >/dev/null

log "bench: building the release operator and the bench"
(cd "$REPO_ROOT" && cargo build -q --release -p velero-debug-operator &&
  cargo build -q --release -p velero-debug-e2e --bin bench_bundle)

# A fresh operator process, so its peak RSS belongs to this bench alone.
for f in "$VDO_ENV_DIR"/pids/operator*.pid; do
  if pid=$(cat "$f" 2>/dev/null) && kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || true
    sleep 1
  fi
  rm -f "$f"
done
pidfile="$VDO_ENV_DIR/pids/operator-bench.pid"
mkdir -p "$VDO_ENV_DIR/spool"
setsid env RUST_LOG=info METRICS_ADDR=127.0.0.1:0 LEADER_ELECTION=false MAX_BUNDLE_BYTES=4294967296 \
  "$REPO_ROOT/target/release/velero-debug-operator" --namespace velero \
  --spool-dir "$VDO_ENV_DIR/spool" >>"$VDO_ENV_DIR/logs/operator-bench.log" 2>&1 </dev/null &
echo $! >"$pidfile"
sleep 2
kill -0 "$(cat "$pidfile")" 2>/dev/null || die "the operator did not start; see $VDO_ENV_DIR/logs/operator-bench.log"

log "bench: running (this takes a few minutes)"
"$REPO_ROOT/target/release/bench_bundle" --operator-pid "$(cat "$pidfile")" "$@"

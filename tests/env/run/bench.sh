#!/usr/bin/env bash
# `make bench`: runs the release-built operator against the local environment and measures a
# bundle over ~1 GiB of logs (time vs gzip -6, peak RSS), API requests vs object count, and
# 1,000 bundles at once (time to all Completed, RSS), and one archive uploaded to the S3, GCS
# and Azure locations (scenario 4). Arguments go to the bench
# (`make bench BENCH_ARGS="--scenarios 3"`: the load alone; `--rounds N`, `--load-bundles N`;
# see bench_bundle.rs).
# Prints Markdown tables; BENCHMARKS.md keeps the figures with the date and machine.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

VDO_OPERATOR=0 "$ENV_DIR/lifecycle/env-up.sh" >/dev/null
export VDO_ENV_FILE="$VDO_ENV_DIR/env.json" KUBECONFIG="$VDO_ENV_DIR/kubeconfig"
# BSL gcs is fake-gcs-server, reached as Google's clients reach an emulator (the operator and
# the bench's upload scenario alike).
STORAGE_EMULATOR_HOST=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["gcs"]["endpoint"])' "$VDO_ENV_FILE")
export STORAGE_EMULATOR_HOST
# Azurite's host, trusted as operator-up.sh trusts it (the operator and the upload scenario).
TRUSTED_STORAGE_HOSTS=$(python3 -c 'import json,sys,urllib.parse; print(urllib.parse.urlsplit(json.load(open(sys.argv[1]))["azure"]["endpoint"]).netloc)' "$VDO_ENV_FILE")
export TRUSTED_STORAGE_HOSTS
kubectl apply --server-side --force-conflicts --field-manager=velero-debug-env \
  -f "$REPO_ROOT/deploy/crd.yaml" >/dev/null
kubectl wait --for=condition=Established crd/debugbundles.velerodebug.io --timeout=60s >/dev/null

log "bench: building the release operator and the bench"
# The release target of `make image` (outside the clone, kept between runs): the operator
# measured is the one the image ships, and a machine pays for the release build once.
release_target="${IMAGE_CARGO_TARGET_DIR:-$VDO_CACHE/cargo-target/image}"
(cd "$REPO_ROOT" && export CARGO_TARGET_DIR="$release_target" &&
  env -u SOURCE_DATE_EPOCH cargo build -q --release --locked -p velero-debug-operator &&
  env -u SOURCE_DATE_EPOCH cargo build -q --release --locked -p velero-debug-e2e --bin bench_bundle &&
  env -u SOURCE_DATE_EPOCH cargo build -q --release --locked -p kubectl-velero-debug)
# Scenario 7 measures the plugin as a release ships it.
export VDO_PLUGIN="$release_target/release/kubectl-velero_debug"

# A fresh operator process, so its peak RSS belongs to this bench alone.
# The old one must be gone first: this one runs without leader election.
for f in "$VDO_ENV_DIR"/pids/operator*.pid; do
  if pid=$(cat "$f" 2>/dev/null); then
    left=$(stop_group "$pid" 10) || die "operator (group $pid) still running after SIGKILL: $left"
  fi
  rm -f "$f"
done
pidfile="$VDO_ENV_DIR/pids/operator-bench.pid"
mkdir -p "$VDO_ENV_DIR/spool"
# The operator and the bench's source floor read as many logs at once.
log_concurrency="${LOG_CONCURRENCY:-8}"
# BENCH_OPERATOR_WRAPPER runs the operator under a profiler, such as
# "heaptrack -o /tmp/operator": where its peak memory goes (its timings are then not figures).
# shellcheck disable=SC2086 # the wrapper is a command and its arguments
setsid env RUST_LOG=info,velero_debug_operator::bundle::deadline=debug METRICS_ADDR=127.0.0.1:0 LEADER_ELECTION=false LOG_CONCURRENCY="$log_concurrency" COMPRESSION_THREADS="${COMPRESSION_THREADS:-2}" MAX_BUNDLE_BYTES=4294967296 MAX_INFLATED_BYTES=2147483648 \
  ${BENCH_OPERATOR_WRAPPER:-} "$release_target/release/velero-debug-operator" --namespace velero \
  --spool-dir "$VDO_ENV_DIR/spool" >>"$VDO_ENV_DIR/logs/operator-bench.log" 2>&1 </dev/null &
echo $! >"$pidfile"
sleep 2
[[ -n "$(pid_live "$(cat "$pidfile")")" ]] || die "the operator did not start; see $VDO_ENV_DIR/logs/operator-bench.log"

log "bench: running (this takes a few minutes; the load scenario up to an hour)"
"$release_target/release/bench_bundle" --operator-pid "$(cat "$pidfile")" \
  --log-concurrency "$log_concurrency" "$@"

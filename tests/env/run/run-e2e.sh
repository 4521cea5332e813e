#!/usr/bin/env bash
# Runs the end-to-end tests against the local environment: starts it when none is running and
# stops it afterwards unless KEEP_ENV=1 or it was already running.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

# An environment counts as already running only if its API server answers and it runs the
# Velero version asked for; a stale env.json left by a killed session is replaced, and so is an
# environment of another Velero version (env-up restarts it): both are stopped again at the end.
started=1
if [[ -f "$VDO_ENV_DIR/env.json" ]] && [[ "$(running_velero_version)" == "$VELERO_VERSION" ]] &&
  kubectl --kubeconfig "$VDO_ENV_DIR/kubeconfig" get --raw=/readyz >/dev/null 2>&1; then
  started=0
fi
log "e2e: Velero $VELERO_VERSION"
# env-up reuses a running environment and repairs a half-running one.
"$ENV_DIR/lifecycle/env-up.sh" >/dev/null
# The teardown is reported apart from the tests: which of the two failed is said in the last
# lines, and a run whose tests failed keeps that result whatever the teardown did.
stop_env() {
  local tests_rc=$? teardown=0
  if [[ $started == 1 && "${KEEP_ENV:-0}" != 1 ]]; then
    "$ENV_DIR/lifecycle/env-down.sh" || teardown=$?
  fi
  if ((tests_rc == 0)); then log "e2e: tests passed"; else log "e2e: tests FAILED (exit $tests_rc)"; fi
  if ((teardown != 0)); then
    log "e2e: teardown FAILED (env-down exit $teardown): a process of the environment outlived SIGKILL; see above"
  fi
  ((tests_rc != 0)) && exit "$tests_rc"
  exit "$teardown"
}
trap stop_env EXIT

# The chart (CRD, ServiceAccount, RBAC) installed with Helm; the operator under test is always
# the working tree's, running as the chart's ServiceAccount, so every test also proves the
# chart's RBAC is enough.
"$ENV_DIR/lifecycle/operator/chart-install.sh"
# The rendered chart (default values and every option on) against the real API server.
KUBECONFIG="$VDO_ENV_DIR/kubeconfig" "$REPO_ROOT/tests/lint/chart-check.sh" --server
export VDO_AS_SERVICE_ACCOUNT=1
"$ENV_DIR/lifecycle/operator/operator-up.sh"
export VDO_ENV_FILE="$VDO_ENV_DIR/env.json"
export KUBECONFIG="$VDO_ENV_DIR/kubeconfig"
# Tests that call the operator's storage port reach BSL gcs as the operator does.
STORAGE_EMULATOR_HOST=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["gcs"]["endpoint"])' "$VDO_ENV_FILE")
export STORAGE_EMULATOR_HOST
# Azurite's host, trusted as operator-up.sh trusts it (tests that upload through the
# operator's storage port themselves).
TRUSTED_STORAGE_HOSTS=$(python3 -c 'import json,sys,urllib.parse; print(urllib.parse.urlsplit(json.load(open(sys.argv[1]))["azure"]["endpoint"]).netloc)' "$VDO_ENV_FILE")
export TRUSTED_STORAGE_HOSTS
cd "$REPO_ROOT"
# The kubectl plugin the plugin's tests drive.
cargo build -q -p kubectl-velero-debug
# `make fuzz`: only the generated-spec test, with VDO_GENERATED_SPECS bundles.
if [[ "${E2E_ONLY_GENERATED:-0}" == 1 ]]; then
  log "e2e: ${VDO_GENERATED_SPECS:-60} generated DebugBundles"
  cargo test -p velero-debug-e2e --test e2e -- --nocapture generated_specs::
  exit 0
fi
# `make chaos`: only the fault tests, at full strength.
if [[ "${E2E_ONLY_FAULTS:-0}" == 1 ]]; then
  log "e2e: fault tests (${VDO_CHAOS_KILLS:-20} kills, store down ${VDO_CHAOS_OUTAGE_SECONDS:-60}s)"
  VDO_CHAOS_KILLS=${VDO_CHAOS_KILLS:-20} VDO_CHAOS_OUTAGE_SECONDS=${VDO_CHAOS_OUTAGE_SECONDS:-60} \
    VDO_CHAOS_LOG_MIB=${VDO_CHAOS_LOG_MIB:-16} \
    cargo test -p velero-debug-e2e --test e2e -- --test-threads=1 --nocapture faults::
  exit 0
fi
# E2E_TESTS (exact names, one a line: the version pass) runs those alone: the serial ones
# after the others, one at a time.
if [[ -n "${E2E_TESTS:-}" ]]; then
  mapfile -t shared_tests < <(grep -v 'serial_' <<<"$E2E_TESTS" || true)
  mapfile -t serial_tests < <(grep 'serial_' <<<"$E2E_TESTS" || true)
  shared=0 serial=0
  log "e2e: running ${#shared_tests[@]} tests, then ${#serial_tests[@]} alone"
  ((${#shared_tests[@]} == 0)) || cargo test -p velero-debug-e2e --test e2e -- \
    --test-threads="${E2E_THREADS:-4}" --exact "${shared_tests[@]}" || shared=$?
  ((${#serial_tests[@]} == 0)) || cargo test -p velero-debug-e2e --test e2e -- \
    --test-threads=1 --exact "${serial_tests[@]}" || serial=$?
  ((shared == 0 && serial == 0))
  exit
fi
# E2E_FILTER (a test name's part, such as `serve::`) runs only the tests whose names hold it.
filter=()
[[ -z "${E2E_FILTER:-}" ]] || filter=("$E2E_FILTER")
log "e2e: running the end-to-end tests${E2E_FILTER:+ matching $E2E_FILTER}"
shared=0
cargo test -p velero-debug-e2e -- --test-threads="${E2E_THREADS:-4}" --skip serial_ "${filter[@]}" || shared=$?
# Tests that restart the operator run alone, so no other test's bundle is cut short. They run
# whatever the others did, so a run reports every test's result (docs/compatibility.md is made
# of them).
log "e2e: running the tests that restart the operator"
serial=0
serial_tests=(serial_)
if [[ -n "${E2E_FILTER:-}" ]]; then
  # libtest's filters match any of them; these are the serial tests that also match E2E_FILTER.
  mapfile -t serial_tests < <(cargo test -q -p velero-debug-e2e -- --list --format terse serial_ 2>/dev/null |
    sed -n 's/: test$//p' | grep -F -- "$E2E_FILTER" || true)
  ((${#serial_tests[@]} == 0)) || serial_tests=(--exact "${serial_tests[@]}")
fi
if ((${#serial_tests[@]} > 0)); then
  cargo test -p velero-debug-e2e -- --test-threads=1 "${serial_tests[@]}" || serial=$?
fi
((shared == 0)) || log "e2e: the tests that share the environment FAILED (exit $shared)"
((serial == 0)) || log "e2e: the tests that restart the operator FAILED (exit $serial)"
((shared == 0 && serial == 0))

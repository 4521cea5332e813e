#!/usr/bin/env bash
# The first step of `make test`: the tools build beside cargo's builds (the dev build that lint
# and the tests use, then the image's release build), so that the CPU one of them leaves idle
# (module downloads, links, the few crates that compile for minutes on one core) serves the
# other. Only a cold machine gains; on a warm one each part finds its cache and returns at
# once. A cargo build that fails here is left for lint (or the image step) to report; a tool
# that fails to build stops the run.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

start=$(date +%s)
bash "$ENV_DIR/tools/tools.sh" &
tools=$!

cargo_step() { # what command...
  local what=$1 t0
  shift
  t0=$(date +%s)
  if "$@" >"$VDO_CACHE/prebuild-$what.log" 2>&1; then
    log "prebuild: cargo $what done in $(($(date +%s) - t0))s"
  else
    log "prebuild: cargo $what failed (its own step reports why; log: $VDO_CACHE/prebuild-$what.log)"
  fi
}

mkdir -p "$VDO_CACHE"
log "prebuild: cargo's dev and release builds beside the tools"
# The same commands as lint, unit, image and run-e2e.sh run (the packages a command selects
# decide the features its dependencies build with), so each finds its build done.
cargo_step check cargo clippy --workspace --all-targets
cargo_step operator cargo build -p velero-debug-operator
cargo_step unit cargo test --workspace --exclude velero-debug-e2e --no-run
cargo_step e2e cargo test -p velero-debug-e2e --no-run
cargo_step plugin cargo build -p kubectl-velero-debug
cargo_step release env -u SOURCE_DATE_EPOCH \
  VDO_GIT_REVISION="$(git -C "$REPO_ROOT" rev-parse HEAD 2>/dev/null || echo unknown)" \
  CARGO_TARGET_DIR="${IMAGE_CARGO_TARGET_DIR:-$VDO_CACHE/cargo-target/image}" \
  cargo build --release --locked -p velero-debug-operator

wait "$tools" || die "prebuild: the tools did not build (see above)"
log "prebuild: done in $(($(date +%s) - start))s"

#!/usr/bin/env bash
# The krew manifest as a release renders it, checked by krew's own tools (make tools: krew
# v0.4.3): cli/krew/package.sh packs the plugin built here, cli/krew/render-manifest.sh fills
# the manifest from those archives, served from loopback; then krew's validate-krew-manifest
# (the krew-index's check: structure, every platform matched once, each platform installed
# with `kubectl krew install` from its uri with its sha256), and a real install for this
# machine whose plugin and completion helper then answer through kubectl.
# Only linux-amd64 can be built here: the other four platforms' archives hold the same binary
# as stand-ins (krew checks their sha256, names and layout, never runs them).
source "$(dirname "${BASH_SOURCE[0]}")/../env/lib/common.sh"
KREW_BIN="$(tool_dir krew "$KREW_VERSION")/bin"
[[ -x "$KREW_BIN/validate-krew-manifest" ]] || die "krew is not built: run 'make tools'"
cd "$REPO_ROOT"
cargo build -q -p kubectl-velero-debug
binary="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug/kubectl-velero_debug"
work="$(mktemp -d)"
server_pid=""
cleanup() { [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
dist="$work/dist"
for platform in linux-amd64 linux-arm64 darwin-amd64 darwin-arm64 windows-amd64; do
  cli/krew/package.sh "$platform" "$binary" "$dist"
done
port=$(free_port)
python3 -m http.server --bind 127.0.0.1 --directory "$dist" "$port" >"$work/http.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 50); do curl -fsS -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null && break; sleep 0.2; done
version=0.0.0-check
manifest="$work/velero-debug.yaml"
cli/krew/render-manifest.sh "$version" https://github.com/velero-debug-operator/velero-debug-operator \
  "http://127.0.0.1:$port" "$dist" >"$manifest"
PATH="$KREW_BIN:$PATH" "$KREW_BIN/validate-krew-manifest" -manifest "$manifest" 2>"$work/validate.log" ||
  { cat "$work/validate.log" >&2; die "krew-check: validate-krew-manifest refused the rendered manifest"; }
# Installed for this machine as a user installs it, then run through kubectl.
export KREW_ROOT="$work/krew"
PATH="$KREW_BIN:$PATH" kubectl krew install --manifest="$manifest" >"$work/install.log" 2>&1 ||
  { cat "$work/install.log" >&2; die "krew-check: kubectl krew install failed"; }
PATH="$KREW_ROOT/bin:$PATH" kubectl velero-debug --version | grep -q '^kubectl-velero_debug ' ||
  die "krew-check: the installed plugin does not answer through kubectl"
helper="$KREW_ROOT/store/velero-debug/v$version/kubectl_complete-velero_debug"
[[ -x "$helper" ]] || die "krew-check: the archive did not bring $helper"
PATH="$KREW_ROOT/bin:$PATH" "$helper" des | grep -q $'^describe\t' ||
  die "krew-check: the completion helper does not complete 'des'"
log "krew-check: validate-krew-manifest: $(grep -o "all [0-9]* spec.platforms installed fine" "$work/validate.log"); installed here, it answers and completes through kubectl"

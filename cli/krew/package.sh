#!/usr/bin/env bash
# Packs the plugin for one platform as krew and the release publish it:
#   package.sh PLATFORM BINARY OUT_DIR   (PLATFORM: linux-amd64, darwin-arm64, windows-amd64, ...)
# writes OUT_DIR/kubectl-velero_debug-PLATFORM.tar.gz (.zip on Windows) holding the binary,
# LICENSE and, outside Windows, kubectl_complete-velero_debug (kubectl's completion helper).
set -euo pipefail
[[ $# == 3 ]] || { echo "usage: $0 PLATFORM BINARY OUT_DIR" >&2; exit 2; }
platform=$1 binary=$2 out=$3
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
[[ -f "$binary" ]] || { echo "package.sh: no binary at $binary" >&2; exit 1; }
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$out"
cp "$repo/LICENSE" "$stage/"
if [[ $platform == windows-* ]]; then
  cp "$binary" "$stage/kubectl-velero_debug.exe"
  # python3's zipfile, not 7z or zip: present on every runner and on this machine alike.
  (cd "$stage" && python3 -m zipfile -c "$out/kubectl-velero_debug-$platform.zip" \
    kubectl-velero_debug.exe LICENSE)
else
  cp "$binary" "$stage/kubectl-velero_debug"
  cp "$repo/cli/kubectl_complete-velero_debug" "$stage/"
  chmod 755 "$stage/kubectl-velero_debug" "$stage/kubectl_complete-velero_debug"
  tar -czf "$out/kubectl-velero_debug-$platform.tar.gz" -C "$stage" \
    kubectl-velero_debug kubectl_complete-velero_debug LICENSE
fi

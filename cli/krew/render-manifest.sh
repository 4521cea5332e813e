#!/usr/bin/env bash
# Fills cli/krew/velero-debug.yaml for a release:
#   render-manifest.sh VERSION HOMEPAGE DOWNLOAD_BASE DIST_DIR > velero-debug.yaml
# VERSION without the v (1.2.0); HOMEPAGE the project's page; DOWNLOAD_BASE the folder URL the
# release's archives are served from; DIST_DIR holds those archives (package.sh), whose sha256
# go into the manifest. Fails when an archive is missing or anything is left unfilled.
set -euo pipefail
[[ $# == 4 ]] || { echo "usage: $0 VERSION HOMEPAGE DOWNLOAD_BASE DIST_DIR" >&2; exit 2; }
version=$1 homepage=$2 base=${3%/} dist=$4
template="$(dirname "${BASH_SOURCE[0]}")/velero-debug.yaml"
[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$ ]] ||
  { echo "render-manifest.sh: version $version is not semver (without the v)" >&2; exit 1; }
manifest="$(<"$template")"
manifest="${manifest//VERSION/$version}"
manifest="${manifest//HOMEPAGE/$homepage}"
manifest="${manifest//DOWNLOAD_BASE/$base}"
for archive in $(grep -o 'kubectl-velero_debug-[a-z0-9-]*\.\(tar\.gz\|zip\)' <<<"$manifest" | sort -u); do
  [[ -f "$dist/$archive" ]] || { echo "render-manifest.sh: $dist/$archive is missing" >&2; exit 1; }
  platform=${archive#kubectl-velero_debug-}
  platform=${platform%%.*}
  key="SHA256_$(tr 'a-z-' 'A-Z_' <<<"$platform")"
  sum=$(sha256sum "$dist/$archive" | cut -d' ' -f1)
  manifest="${manifest//$key/$sum}"
done
left=$(grep -oE 'SHA256_[A-Z0-9_]+|VERSION|HOMEPAGE|DOWNLOAD_BASE|example\.invalid' <<<"$manifest" || true)
[[ -z "$left" ]] || { echo "render-manifest.sh: left unfilled: $(sort -u <<<"$left" | tr '\n' ' ')" >&2; exit 1; }
printf '%s\n' "$manifest"

#!/usr/bin/env bash
# The version pass (`make e2e-velero-X`; `make test` runs it on the oldest version): the
# scenarios of version-pass.tsv on a fresh environment of Velero X (1.14 or v1.14.1: the
# release versions.env pins for it), its server, CLI, helpers and node-agent built once into
# their own tool folders. Writes docs/compatibility/<version>.json, the results
# docs/compatibility.md's table is made of (tests/lint/compatibility.py), and fails when a
# scenario did.
# `version-pass.sh --record LOG` records the scenarios' results of a run of the whole suite (an
# unfiltered `make e2e`, on the version it ran).
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
record() { # version log
  python3 "$REPO_ROOT/tests/lint/compatibility.py" record "$1" "$2" \
    "$(git -C "$REPO_ROOT" rev-parse --short HEAD)"
}
if [[ "${1:-}" == --record ]]; then
  record "$VELERO_VERSION" "$2"
  exit
fi
[[ $# == 1 ]] || die "usage: version-pass.sh VERSION (1.14, 1.16, 1.17, 1.18 or a release such as v1.14.1)"
VELERO_VERSION=$(velero_release_of "$1")
export VELERO_VERSION
log "version pass: Velero $VELERO_VERSION"
VELERO_VERSION=$VELERO_VERSION bash "$ENV_DIR/tools/tools.sh" velero velero_helpers

scenarios="$ENV_DIR/run/version-pass.tsv"
names=$(grep -v '^#' "$scenarios" | cut -f2)
out="$VDO_CACHE/version-pass-$VELERO_VERSION.log"
rc=0
E2E_TESTS="$names" bash "$ENV_DIR/run/run-e2e.sh" 2>&1 | tee "$out" || rc=$?
record "$VELERO_VERSION" "$out" || rc=1
exit "$rc"

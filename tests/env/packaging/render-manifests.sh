#!/usr/bin/env bash
# Writes what is generated from the chart: the chart's copy of the CRD (from deploy/crd.yaml,
# which `make crd` writes from the Rust types) and deploy/manifests.yaml (the chart rendered
# with its default values, CRD left out). With --check, changes nothing and fails naming the
# file that is out of date.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
HELM="$(tool_dir helm "$HELM_VERSION$HELM_BUILD")/bin/helm"
[[ -x "$HELM" ]] || die "helm is not built: run 'make tools'"
chart="$REPO_ROOT/charts/velero-debug-operator"

render() { # the chart with default values, as installed into namespace velero (no helm test pod, no uninstall hook)
  "$HELM" template velero-debug-operator "$chart" --namespace velero --kube-version 1.33.0 \
    --skip-crds --skip-tests --no-hooks
}

if [[ "${1:-}" == --check ]]; then
  status=0
  if ! diff -u "$REPO_ROOT/deploy/crd.yaml" "$chart/crds/debugbundles.velerodebug.io.yaml"; then
    log "charts/velero-debug-operator/crds/ differs from deploy/crd.yaml: run 'make manifests'"
    status=1
  fi
  if ! diff -u "$REPO_ROOT/deploy/manifests.yaml" <(render); then
    log "deploy/manifests.yaml differs from the chart: run 'make manifests'"
    status=1
  fi
  exit $status
fi
cp "$REPO_ROOT/deploy/crd.yaml" "$chart/crds/debugbundles.velerodebug.io.yaml"
render >"$REPO_ROOT/deploy/manifests.yaml"
log "wrote charts/velero-debug-operator/crds/ and deploy/manifests.yaml"

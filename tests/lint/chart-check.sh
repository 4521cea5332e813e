#!/usr/bin/env bash
# Checks the chart's manifests: the chart rendered with its default values and with
# ci/all-options-values.yaml (every option on), CRD and `helm test` pod included.
#   offline  kubeconform, strict, against JSON schemas generated from Kubernetes' own OpenAPI
#            documents (k8s.io/kubernetes@$KUBERNETES_VERSION in the Go module cache; converted
#            by openapi-to-jsonschema.py, cached under $VDO_CACHE/kubeconform-schemas): unknown
#            fields, wrong types and kinds without a schema fail. Also: `helm lint --strict`
#            with every option on, and `helm template` without --kube-version (no cluster); the
#            spool's size derived from the collection settings, a smaller explicit one refused.
#   server   `kubectl apply --server-side --dry-run=server --validate=strict` of both renders on
#            the cluster of $KUBECONFIG (nothing is changed there): the API server's own
#            validation, the CRD's CEL rules compiled, admission.
# usage: chart-check.sh [--offline | --server]
#   (none)     offline, then server when $KUBECONFIG is set and the API server answers
#   --offline  offline only (`make lint`)
#   --server   server only; fails when no API server answers (the e2e run)
# Kinds no schema here covers (ServiceMonitor, PrometheusRule: prometheus-operator's CRDs; the
# rules themselves are checked by promtool-check.sh) are skipped offline
# and left out of the server check, and named in the output. Fails on any problem.
source "$(dirname "${BASH_SOURCE[0]}")/../env/lib/common.sh"
HELM="${HELM:-$(tool_dir helm "$HELM_VERSION$HELM_BUILD")/bin/helm}"
KUBECONFORM="$(tool_dir kubeconform "$KUBECONFORM_VERSION")/bin/kubeconform"
chart="$REPO_ROOT/charts/velero-debug-operator"
# The renders' release and namespace; the release name is not the one chart-install.sh uses, so
# the server check never meets that release's objects (only the CRD and the fixed-name ledger
# ConfigMap are shared, and applied in dry run).
release=vdo-chart-check
namespace="${CHART_CHECK_NAMESPACE:-velero}"
skip_kinds=ServiceMonitor,PrometheusRule
mode="${1:-auto}"
case "$mode" in auto | --offline | --server) ;; *) die "usage: $0 [--offline | --server]" ;; esac

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=0
fail() { log "FAIL: $*"; failed=1; }

render() { # name [helm args...]: the chart into $work/<name>.yaml, for the pinned Kubernetes
  local name="$1"
  shift
  "$HELM" template "$release" "$chart" --namespace "$namespace" --include-crds \
    --kube-version "${KUBERNETES_VERSION#v}" "$@" >"$work/$name.yaml" ||
    die "helm template ($name) failed"
}

[[ -x "$HELM" ]] || die "helm is not built: run 'make tools'"
render default
render all-options -f "$chart/ci/all-options-values.yaml"

schemas() { # prints the folder of the per-kind JSON schemas, generating it once
  local converter="$REPO_ROOT/tests/lint/openapi-to-jsonschema.py" spec out
  out="$VDO_CACHE/kubeconform-schemas/$KUBERNETES_VERSION-$(sha256sum "$converter" | cut -c1-12)"
  if [[ ! -f "$out/.complete" ]]; then
    spec="${GOMODCACHE:-$VDO_CACHE/go/mod}/k8s.io/kubernetes@$KUBERNETES_VERSION/api/openapi-spec/v3"
    if [[ ! -d "$spec" ]]; then
      log "k8s.io/kubernetes@$KUBERNETES_VERSION is not in the module cache: downloading it"
      GOMODCACHE="${GOMODCACHE:-$VDO_CACHE/go/mod}" GOFLAGS=-mod=mod \
        go mod download "k8s.io/kubernetes@$KUBERNETES_VERSION" >&2 ||
        die "cannot get k8s.io/kubernetes@$KUBERNETES_VERSION (run 'make tools')"
    fi
    rm -rf "$out.tmp" && mkdir -p "$out.tmp"
    python3 "$converter" "$spec" "$out.tmp" >&2 || die "schema generation failed"
    touch "$out.tmp/.complete" && rm -rf "$out" && mv "$out.tmp" "$out"
  fi
  echo "$out"
}

offline() {
  [[ -x "$KUBECONFORM" ]] || die "kubeconform is not built: run 'make tools'"
  local dir name
  dir="$(schemas)"
  for name in default all-options; do
    log "kubeconform (strict, Kubernetes $KUBERNETES_VERSION OpenAPI, $(find "$dir" -name '*.json' | wc -l) kinds; skipped: $skip_kinds): $name values"
    "$KUBECONFORM" -strict -summary -verbose -skip "$skip_kinds" \
      -schema-location "$dir/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
      "$work/$name.yaml" || fail "kubeconform: the chart with $name values"
  done
  log "helm lint --strict with the all-options values (values.schema.json, templates)"
  "$HELM" lint --strict "$chart" -f "$chart/ci/all-options-values.yaml" >/dev/null ||
    fail "helm lint --strict with ci/all-options-values.yaml"
  spool
  proxy
  log "helm template without --kube-version (no cluster; the chart's kubeVersion against helm's default)"
  if ! "$HELM" template "$release" "$chart" >/dev/null; then
    fail "helm template without --kube-version (a helm built without upstream's k8sVersion ldflags defaults to Kubernetes v1.20)"
  fi
}

spool_size() { # [helm args...]: the spool emptyDir's sizeLimit and the ephemeral-storage request
  "$HELM" template "$release" "$chart" "$@" |
    awk '/sizeLimit:|ephemeral-storage:/ { printf "%s ", $2 }'
}

spool() { # the spool's size derived from the collection settings, or refused below them
  local mib=1048576 needed expected out
  # maxConcurrentBundles x (2 x maxBundleBytes + maxInflatedBytes) + 10%, up to MiB: defaults.
  needed=$((4 * (2 * 536870912 + 134217728) * 11 / 10))
  expected="$(((needed + mib - 1) / mib))Mi"
  log "spool: derived $expected from the default values; a smaller spool.sizeLimit is refused"
  out="$(spool_size)"
  [[ "$out" == "$expected $expected " ]] ||
    fail "spool: default values give '$out', not sizeLimit and request $expected"
  needed=$((1 * (2 * 64 * mib + 16 * mib) * 11 / 10))
  out="$(spool_size --set collection.maxConcurrentBundles=1 --set collection.maxBundleBytes=$((64 * mib)) \
    --set collection.maxInflatedBytes=$((16 * mib)))"
  [[ "$out" == "$(((needed + mib - 1) / mib))Mi $(((needed + mib - 1) / mib))Mi " ]] ||
    fail "spool: 1 x (2 x 64Mi + 16Mi) gives '$out'"
  out="$(spool_size --set spool.sizeLimit=6Gi)"
  [[ "$out" == "6Gi 6Gi " ]] || fail "spool: an explicit 6Gi became '$out'"
  out="$(spool_size --set spool.sizeLimit=$((${expected%Mi} - 1))Mi 2>&1)" &&
    fail "spool: a sizeLimit 1Mi below $expected was accepted"
  [[ "$out" == *"spool.sizeLimit $((${expected%Mi} - 1))Mi is below"*"= ${expected}"* ]] ||
    fail "spool: the refusal does not say why: $out"
  out="$(spool_size --set spool.sizeLimit=2Gi --set collection.maxConcurrentBundles=1 2>&1)" ||
    fail "spool: 2Gi for one slot of the default sizes (1267Mi) was refused: $out"
}

env_value() { # NAME [helm args...]: the operator container's variable NAME, as rendered
  local name=$1
  shift
  "$HELM" template "$release" "$chart" "$@" | python3 -c '
import sys, yaml
for doc in yaml.safe_load_all(sys.stdin):
    if doc and doc.get("kind") == "Deployment":
        for e in doc["spec"]["template"]["spec"]["containers"][0].get("env", []):
            if e["name"] == sys.argv[1]:
                print(e.get("value") or "valueFrom:" + e["valueFrom"]["secretKeyRef"]["name"])
' "$name"
}

proxy() { # the proxy value: both variables, NO_PROXY naming the API server, a Secret instead
  local out api='$(KUBERNETES_SERVICE_HOST),kubernetes.default.svc,kubernetes.default,kubernetes,localhost,127.0.0.1'
  log "proxy: HTTPS_PROXY, HTTP_PROXY and NO_PROXY (the API server first) rendered from proxy"
  [[ -z "$(env_value NO_PROXY)" ]] || fail "proxy: NO_PROXY set with no proxy"
  local set=(--set proxy.httpsProxy=http://p.corp:3128 --set proxy.httpProxy=http://q.corp:3128
    --set 'proxy.noProxy={minio.backup.svc,10.0.0.0/8}')
  [[ "$(env_value HTTPS_PROXY "${set[@]}")" == http://p.corp:3128 ]] || fail "proxy: HTTPS_PROXY"
  [[ "$(env_value HTTP_PROXY "${set[@]}")" == http://q.corp:3128 ]] || fail "proxy: HTTP_PROXY"
  out="$(env_value NO_PROXY "${set[@]}")"
  [[ "$out" == "$api,minio.backup.svc,10.0.0.0/8" ]] || fail "proxy: NO_PROXY is '$out'"
  [[ "$(env_value HTTPS_PROXY --set proxy.existingSecret=corp-proxy)" == valueFrom:corp-proxy ]] ||
    fail "proxy: existingSecret does not give HTTPS_PROXY"
  [[ "$(env_value NO_PROXY --set proxy.existingSecret=corp-proxy)" == "$api" ]] ||
    fail "proxy: existingSecret does not give NO_PROXY"
  out="$("$HELM" template "$release" "$chart" "${set[@]}" --set 'extraEnv[0].name=NO_PROXY' \
    --set 'extraEnv[0].value=x' 2>&1)" && fail "proxy: extraEnv NO_PROXY accepted beside proxy"
  [[ "$out" == *"extraEnv: NO_PROXY is set by the chart"* ]] || fail "proxy: refusal says: $out"
}

reachable() {
  [[ -n "${KUBECONFIG:-}" ]] && kubectl get --raw /readyz --request-timeout=5s >/dev/null 2>&1
}

server() {
  local name
  for name in default all-options; do
    # One document per object; kinds the cluster may not serve are left out.
    python3 - "$work/$name.yaml" "$skip_kinds" >"$work/$name-server.yaml" <<'PY'
import re, sys
skip = sys.argv[2].split(",")
docs = open(sys.argv[1]).read().split("\n---\n")
kept = [d for d in docs if not any(re.search(rf"^kind: {k}$", d, re.M) for k in skip)]
print("\n---\n".join(kept))
PY
    log "kubectl apply --server-side --dry-run=server --validate=strict ($(kubectl config current-context), namespace $namespace; left out: $skip_kinds): $name values"
    kubectl apply --server-side --force-conflicts --field-manager=vdo-chart-check \
      --dry-run=server --validate=strict -f "$work/$name-server.yaml" ||
      fail "server dry run: the chart with $name values"
  done
}

case "$mode" in
  --offline) offline ;;
  --server)
    reachable || die "no API server answers (KUBECONFIG=${KUBECONFIG:-unset})"
    server
    ;;
  auto)
    offline
    if reachable; then server; else log "no API server answers (KUBECONFIG=${KUBECONFIG:-unset}): server check skipped"; fi
    ;;
esac
((failed == 0)) || die "chart check failed"
log "chart check passed ($mode)"

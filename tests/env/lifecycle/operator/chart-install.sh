#!/usr/bin/env bash
# Installs the Helm chart into the running environment: the CRD, the ServiceAccount and its
# least-privilege RBAC, the metrics Service. No container engine runs here, so the Deployment
# has 0 replicas; the operator runs as local processes under the chart's ServiceAccount
# (operator-up.sh with VDO_AS_SERVICE_ACCOUNT=1). Besides Velero's default Secret it may read
# the credentials of BSLs gcs and azure, the three Secrets the storage-provider tests make and
# the one with a wrong key the real-failures test makes. Otherwise the chart's defaults, but for
# VDO_CHART_SET: more values, one a line, as --set-json takes them (a test's narrower RBAC; run again without it
# to go back).
source "$(dirname "${BASH_SOURCE[0]}")/../../lib/common.sh"
[[ -f "$VDO_ENV_DIR/env.json" ]] || die "no environment running: run 'make env-up'"
export KUBECONFIG="$VDO_ENV_DIR/kubeconfig"
HELM="$(tool_dir helm "$HELM_VERSION$HELM_BUILD")/bin/helm"
[[ -x "$HELM" ]] || die "helm is not built: run 'make tools'"
extra=()
while IFS= read -r value; do
  [[ -n "$value" ]] && extra+=(--set-json "$value")
done <<<"${VDO_CHART_SET:-}"
"$HELM" upgrade --install velero-debug-operator "$REPO_ROOT/charts/velero-debug-operator" \
  --namespace velero --set replicaCount=0 \
  --set 'rbac.credentialSecrets={cloud-credentials,gcs-credentials,azure-credentials,gcs-bad-credentials,azure-bad-credentials,aws-bad-credentials,aws-wrong-key-credentials,aws-web-identity-credentials,aws-assume-role-credentials,aws-denied-role-credentials,azure-entra-credentials,azure-entra-wrong-credentials,azure-entra-workload-credentials,azure-entra-injected-credentials}' \
  --set 'rbac.veleroConfigMaps={node-agent-config,repo-maintenance-job-config,vdo-repo-maintenance}' \
  "${extra[@]}" >/dev/null
# helm installs a chart's CRDs only once; keep the CRD current like `kubectl apply` would.
kubectl apply --server-side --force-conflicts --field-manager=velero-debug-env \
  -f "$REPO_ROOT/deploy/crd.yaml" >/dev/null
kubectl wait --for=condition=Established crd/debugbundles.velerodebug.io --timeout=60s >/dev/null
log "chart: installed (release velero-debug-operator in velero, 0 replicas)"

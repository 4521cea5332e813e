#!/usr/bin/env bash
# Writes $VDO_ENV_DIR/operator-kubeconfig: the environment's API server, authenticated as the
# chart's ServiceAccount with a TokenRequest token (24 h), and no other credential. The chart
# must be installed (chart-install.sh).
source "$(dirname "${BASH_SOURCE[0]}")/../../lib/common.sh"
[[ -f "$VDO_ENV_DIR/env.json" ]] || die "no environment running: run 'make env-up'"
export KUBECONFIG="$VDO_ENV_DIR/kubeconfig"
sa=velero-debug-operator
kubectl -n velero get serviceaccount "$sa" >/dev/null 2>&1 ||
  die "ServiceAccount velero/$sa is missing: run tests/env/lifecycle/operator/chart-install.sh"
token=$(kubectl -n velero create token "$sa" --duration=24h)
out="$VDO_ENV_DIR/operator-kubeconfig"
kubectl config view --raw --minify --flatten >"$out.tmp"
cluster=$(kubectl --kubeconfig "$out.tmp" config view -o jsonpath='{.contexts[0].context.cluster}')
admin=$(kubectl --kubeconfig "$out.tmp" config view -o jsonpath='{.contexts[0].context.user}')
kubectl --kubeconfig "$out.tmp" config set-credentials "$sa" --token="$token" >/dev/null
kubectl --kubeconfig "$out.tmp" config set-context "$sa" --cluster="$cluster" --user="$sa" \
  --namespace=velero >/dev/null
kubectl --kubeconfig "$out.tmp" config use-context "$sa" >/dev/null
kubectl --kubeconfig "$out.tmp" config unset "users.$admin" >/dev/null
kubectl --kubeconfig "$out.tmp" config unset "contexts.$(kubectl config current-context)" >/dev/null
chmod 600 "$out.tmp" && mv "$out.tmp" "$out"
echo "$out"

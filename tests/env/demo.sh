#!/usr/bin/env bash
# `make demo`: the main job, end to end, on the local environment. A real backup, a restore
# that the real Velero server ends PartiallyFailed, the DebugBundle the operator makes for it by
# itself, downloaded through its presigned URL with `kubectl velero-debug` (the plugin of cli/,
# which checks the sha256 while streaming) and shown. The operator runs as a local process
# under the Helm chart's ServiceAccount (no container engine runs here).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

step() { log "demo [$1/8] $2"; }
demo_dir="$VDO_CACHE/demo"
rm -rf "$demo_dir" && mkdir -p "$demo_dir"

step 1 "environment: kube-apiserver, etcd, kwok nodes, S3, the real Velero server"
VDO_OPERATOR=0 "$ENV_DIR/env-up.sh" >/dev/null
export KUBECONFIG="$VDO_ENV_DIR/kubeconfig"
velero_cli="$(tool_dir velero "$VELERO_VERSION")/bin/velero"
velero() { "$velero_cli" --kubeconfig "$KUBECONFIG" -n velero "$@"; }

step 2 "helm install the chart (CRD, ServiceAccount, least-privilege RBAC; 0 replicas here)"
"$ENV_DIR/chart-install.sh" >/dev/null

step 3 "operator: built from the working tree, running as the chart's ServiceAccount"
VDO_AS_SERVICE_ACCOUNT=1 "$ENV_DIR/operator-up.sh"

step 4 "a real backup of namespace 'shop' (three ConfigMaps)"
suffix=$(date +%s)
src="shop-$suffix"
kubectl create namespace "$src" >/dev/null
for name in prices stock banner; do
  kubectl -n "$src" create configmap "$name" --from-literal=updated="$(date -u +%FT%TZ)" >/dev/null
done
backup="nightly-$suffix"
velero backup create "$backup" --include-namespaces "$src" --wait >/dev/null
log "demo: backup $backup: $(kubectl -n velero get backup "$backup" -o jsonpath='{.status.phase}')"

step 5 "a restore into 'shop-copy', whose ResourceQuota admits no ConfigMap: PartiallyFailed"
dst="$src-copy"
kubectl create namespace "$dst" >/dev/null
kubectl -n "$dst" create quota no-configmaps --hard=count/configmaps=0 >/dev/null
for _ in $(seq 1 60); do
  [[ -n "$(kubectl -n "$dst" get quota no-configmaps -o jsonpath='{.status.hard}')" ]] && break
  sleep 1
done
restore="restore-$suffix"
velero restore create "$restore" --from-backup "$backup" \
  --namespace-mappings "$src:$dst" --wait >/dev/null
phase=$(kubectl -n velero get restore "$restore" -o jsonpath='{.status.phase}')
log "demo: restore $restore: $phase"
[[ "$phase" == PartiallyFailed ]] || die "the restore ended $phase, not PartiallyFailed"
ended=$(date +%s)

step 6 "the operator makes the DebugBundle by itself"
uid=$(kubectl -n velero get restore "$restore" -o jsonpath='{.metadata.uid}')
selector="velerodebug.io/auto=true,velerodebug.io/target-uid=$uid"
bundle=""
for _ in $(seq 1 180); do
  bundle=$(kubectl -n velero get debugbundles -l "$selector" \
    -o jsonpath='{.items[0].metadata.name}' 2>/dev/null || true)
  if [[ -n "$bundle" ]]; then
    bundle_phase=$(kubectl -n velero get debugbundle "$bundle" -o jsonpath='{.status.phase}')
    [[ "$bundle_phase" == Completed || "$bundle_phase" == Failed ]] && break
  fi
  sleep 1
done
[[ -n "$bundle" ]] || die "no automatic bundle for restore $restore; see $VDO_ENV_DIR/logs/operator-0.log"
[[ "$bundle_phase" == Completed ]] ||
  die "bundle $bundle: $(kubectl -n velero get debugbundle "$bundle" -o jsonpath='{.status.conditions}')"
log "demo: $bundle Completed $(($(date +%s) - ended)) s after the restore ended"
kubectl -n velero get debugbundle "$bundle"

step 7 "kubectl velero-debug download: the presigned URL, sha256 checked while streaming, unpacked"
cargo build -q -p kubectl-velero-debug --manifest-path "$REPO_ROOT/Cargo.toml"
export PATH="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug:$PATH"
kubectl velero-debug list
kubectl velero-debug download "$bundle" -o "$demo_dir/$bundle.tar.gz" --extract "$demo_dir"
log "demo: sha256 $(kubectl -n velero get debugbundle "$bundle" -o jsonpath='{.status.archive.sha256}') checked by the plugin"

step 8 "what is in it"
echo
echo "== files ($(tar -tzf "$demo_dir/$bundle.tar.gz" | grep -vc '/$'))"
tar -tzf "$demo_dir/$bundle.tar.gz" | grep -v '/$' | sort
echo
echo "== kubectl velero-debug summary $bundle"
kubectl velero-debug summary "$bundle"
echo
log "demo: done. The bundle is unpacked in $demo_dir/$bundle."
log "demo: the environment keeps running (export KUBECONFIG=$KUBECONFIG); stop it with 'make env-down'."

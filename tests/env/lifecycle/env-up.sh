#!/usr/bin/env bash
# Starts the local test environment, every server on 127.0.0.1, one component after another
# (tests/env/lifecycle/README.md says what each starts and leaves behind):
#   certificates.sh   the test CA and a server certificate
#   object-stores.sh  S3 (s3s-fs, also behind HTTPS), GCS (fake-gcs-server), Azure Blob
#                     (Azurite), with their BackupStorageLocations
#   identities.sh     AWS STS (moto), Entra ID's token endpoint, a GCP service-account key
#   cluster.sh        kwokctl's binary control plane and three kwok nodes
#   real-node/        a kubelet with containerd on this machine (needs root)
#   velero.sh         Velero's CRDs, its real server and plugins, Deployment velero and
#                     DaemonSet node-agent (Velero's real node-agent on the real node)
#   describe.sh       env.json, what tests, the demo and the bench read
#   operator/         the chart's objects and the operator (VDO_OPERATOR=0 leaves it out)
# A second run reuses a running environment; one only partly running, or of another Velero
# version, is stopped first. State: $VDO_ENV_DIR.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

CLUSTER_NAME="${VDO_CLUSTER_NAME:-vdo}"
NAMESPACE=velero
BUCKET=velero
PREFIX=cluster-a
REGION=minio
GCS_BUCKET=velero-gcs
AZURE_ACCOUNT=vdoaccount
AZURE_CONTAINER=velero

bin() { echo "$(tool_dir "$1" "$2")/bin/$3"; }
ETCD=$(bin etcd "$ETCD_VERSION" etcd)
KUBE_DIR=$(tool_dir kubernetes "$KUBERNETES_VERSION")/bin
KWOK=$(bin kwok "$KWOK_VERSION" kwok)
KWOKCTL=$(bin kwok "$KWOK_VERSION" kwokctl)
VELERO=$(bin velero "$VELERO_VERSION" velero)
AWS_PLUGIN=$(bin velero_aws_plugin "$VELERO_AWS_PLUGIN_VERSION" velero-plugin-for-aws)
S3S_FS=$(bin s3s_fs "$S3S_FS_VERSION$S3S_FS_BUILD" s3s-fs)
FAKE_GCS=$(bin fake_gcs_server "$FAKE_GCS_SERVER_VERSION" fake-gcs-server)
GCP_PLUGIN=$(bin velero_gcp_plugin "$VELERO_GCP_PLUGIN_VERSION" velero-plugin-for-gcp)
AZURITE=$(bin azurite "$AZURITE_VERSION" azurite-blob)
PYTOOLS=$(tool_dir pytools "$(pytools_version)")/venv/bin/python
MOTO_SERVER=$(dirname "$PYTOOLS")/moto_server
ENTRA_ISSUER=$(bin entra_issuer "$MOCK_OAUTH2_SERVER_VERSION" mock-oauth2-server)
TINYPROXY=$(bin tinyproxy "$TINYPROXY_VERSION" tinyproxy)
BROWSER_TOOLS=$(tool_dir browser "playwright$PLAYWRIGHT_CORE_VERSION-axe$AXE_CORE_VERSION-vnu$VNU_JAR_VERSION")/node_modules
for b in "$ETCD" "$KUBE_DIR/kube-apiserver" "$KWOK" "$KWOKCTL" "$VELERO" "$AWS_PLUGIN" "$S3S_FS" \
  "$FAKE_GCS" "$GCP_PLUGIN" "$AZURITE" "$PYTOOLS" "$MOTO_SERVER" "$TINYPROXY" "$ENTRA_ISSUER"; do
  [[ -x "$b" ]] || die "missing $b: run 'make tools' first"
done

export KUBECONFIG="$VDO_ENV_DIR/kubeconfig"
ENV_JSON="$VDO_ENV_DIR/env.json"
export KWOK_WORKDIR="$VDO_ENV_DIR/kwok"
LIFECYCLE="$ENV_DIR/lifecycle"
source "$LIFECYCLE/real-node/node-common.sh"

# Prints the pid file's pid if that process is alive.
alive_pid() { local p; p=$(cat "$1" 2>/dev/null) && [[ -n "$(pid_live "$p")" ]] && echo "$p"; }

print_env() {
  log "environment ready: $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["s3"]["endpoint"])' "$ENV_JSON") (S3)"
  echo "export KUBECONFIG=$KUBECONFIG"
  echo "export VDO_ENV_FILE=$ENV_JSON"
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("export VDO_S3_ENDPOINT=" + d["s3"]["endpoint"])' "$ENV_JSON"
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("export VDO_GCS_ENDPOINT=" + d["gcs"]["endpoint"])' "$ENV_JSON"
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("export VDO_AZURE_ENDPOINT=" + d["azure"]["endpoint"])' "$ENV_JSON"
}

# Another Velero version asked for: its CRDs and server replace the running ones only through a
# fresh environment (a cluster whose CRDs were another version's keeps objects of that shape).
if [[ -f "$ENV_JSON" ]] && [[ "$(running_velero_version)" != "$VELERO_VERSION" ]]; then
  log "env-up: the running environment has Velero '$(running_velero_version)', $VELERO_VERSION asked for; stopping it first"
  "$LIFECYCLE/env-down.sh"
fi
if [[ -f "$ENV_JSON" ]] && alive_pid "$VDO_ENV_DIR/pids/s3.pid" >/dev/null &&
  alive_pid "$VDO_ENV_DIR/pids/gcs.pid" >/dev/null && alive_pid "$VDO_ENV_DIR/pids/azure.pid" >/dev/null &&
  alive_pid "$VDO_ENV_DIR/pids/velero.pid" >/dev/null &&
  kubectl get --raw=/readyz >/dev/null 2>&1; then
  log "env-up: reusing the running environment in $VDO_ENV_DIR (Velero $VELERO_VERSION)"
  print_env
  exit 0
fi
if [[ -f "$ENV_JSON" ]]; then
  log "env-up: a previous environment is only partly running; stopping it first"
  "$LIFECYCLE/env-down.sh"
fi

mkdir -p "$VDO_ENV_DIR"/{pids,logs,plugins,s3,gcs,azurite,podlogs}
start_all=$(date +%s)

for component in certificates object-stores identities cluster velero describe; do
  source "$LIFECYCLE/$component.sh"
done

# Servers that are slow to start go first and are waited for once the cluster is up.
test_ca_make
gcs_start
azure_start
entra_issuer_start
gcp_key_make
cluster_up
velero_crds_install
sts_up
s3_up
# The real node dials the API server and reaches S3 under its own address (node-up.sh's DNAT).
API_PORT=$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}' | sed 's/.*://')
"$LIFECYCLE/real-node/node-up.sh" "$API_PORT" "$S3_PORT"
s3_node_location
gcs_ready
entra_issuer_ready
azure_ready
velero_server_up
s3_tls_up
velero_deployment_apply
node_agent_apply
pod_logs_serve
env_json_write

# VDO_OPERATOR=0 leaves the operator out (to run it by hand, e.g. under a debugger).
if [[ "${VDO_OPERATOR:-1}" == 1 ]]; then
  "$LIFECYCLE/operator/chart-install.sh"
  VDO_AS_SERVICE_ACCOUNT=1 "$LIFECYCLE/operator/operator-up.sh"
fi
log "env-up: environment up in $(($(date +%s) - start_all))s"
print_env

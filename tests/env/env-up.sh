#!/usr/bin/env bash
# Starts the local test environment, every server on 127.0.0.1:
#   kwokctl binary cluster (etcd, kube-apiserver, controller-manager, scheduler, kwok) with
#   three fake nodes; namespace velero with Velero's real CRDs; an S3 server (s3s-fs) with a
#   bucket; Secret cloud-credentials and BSL default; fake-gcs-server with bucket velero-gcs,
#   Secret gcs-credentials and BSL gcs; Azurite (blob service, HTTPS) with container velero,
#   Secret azure-credentials and BSL azure (Unavailable: no Azure plugin can be had here); the
#   real Velero server with the AWS and GCP plugins; Deployment velero and DaemonSet node-agent
#   as kwok pods whose logs the API serves (the velero pod's log is the real server's log).
# A second run reuses a running environment. State: $VDO_ENV_DIR (env.json describes it).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

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
source "$ENV_DIR/node-common.sh"

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
  "$ENV_DIR/env-down.sh"
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
  "$ENV_DIR/env-down.sh"
fi

mkdir -p "$VDO_ENV_DIR"/{pids,logs,plugins,s3,gcs,azurite,podlogs}
start_all=$(date +%s)


# --- test CA and server certificate (Azurite; S3 behind HTTPS) ----------------------------------
TLS_DIR="$VDO_ENV_DIR/tls"
mkdir -p "$TLS_DIR"
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=vdo-test-ca" \
  -keyout "$TLS_DIR/ca.key" -out "$TLS_DIR/ca.crt" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
  -keyout "$TLS_DIR/server.key" -out "$TLS_DIR/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$TLS_DIR/san.ext"
openssl x509 -req -in "$TLS_DIR/server.csr" -CA "$TLS_DIR/ca.crt" -CAkey "$TLS_DIR/ca.key" \
  -CAcreateserial -days 30 -extfile "$TLS_DIR/san.ext" -out "$TLS_DIR/server.crt" 2>/dev/null
CA_B64=$(base64 -w0 <"$TLS_DIR/ca.crt")

# --- GCS and Azure Blob servers, started now so they come up while the cluster does ----------
# fake-gcs-server: JSON API over http; download URLs are path-style on its own address. It holds
# an upload in memory several times over (read whole, copied, read back); madvdontneed=0 lets
# the Go runtime reuse those pages for the next upload instead of the kernel zeroing new ones.
GCS_PORT=$(free_port "${VDO_GCS_PORT:-0}") || die "cannot listen for GCS"
GCS_URL="http://127.0.0.1:$GCS_PORT"
start_group gcs "$VDO_ENV_DIR/logs/gcs.log" env GODEBUG=madvdontneed=0 "$FAKE_GCS" -scheme http -host 127.0.0.1 -port "$GCS_PORT" \
  -backend filesystem -filesystem-root "$VDO_ENV_DIR/gcs" \
  -public-host "127.0.0.1:$GCS_PORT" -external-url "$GCS_URL"
# Azurite: blob service only, over HTTPS with the test CA, an account of our own (a random key,
# not the well-known devstoreaccount1 one), never any telemetry. Its OAuth mode takes Entra ID
# bearer tokens (issuer, audience and lifetime checked) beside keys and SAS.
AZURE_PORT=$(free_port "${VDO_AZURE_PORT:-0}") || die "cannot listen for Azure Blob"
AZURE_KEY=$(head -c 64 /dev/urandom | base64 -w0)
AZURE_URL="https://127.0.0.1:$AZURE_PORT/$AZURE_ACCOUNT"
# A young generation of 64 MiB for Azurite's V8: each 32 MiB block is garbage at once, and with
# the default size the collector was most of its CPU (perf); uploads take about half as long.
start_group azure "$VDO_ENV_DIR/logs/azurite.log" env AZURITE_ACCOUNTS="$AZURE_ACCOUNT:$AZURE_KEY" \
  NODE_OPTIONS=--max-semi-space-size=64 \
  "$AZURITE" --disableTelemetry --blobHost 127.0.0.1 --blobPort "$AZURE_PORT" \
  --location "$VDO_ENV_DIR/azurite" --cert "$TLS_DIR/server.crt" --key "$TLS_DIR/server.key" \
  --oauth basic

# Entra ID's token endpoint for one tenant and one service principal (random ids and secret):
# NAV's mock-oauth2-server over HTTPS with the test CA, answering
# /<tenant>/oauth2/v2.0/token. The principal's own secret, or the federated token of its
# workload identity (a file the operator may be pointed at), gets a token as Entra issues one
# for Blob storage (issuer sts.windows.net/<tenant>/, audience storage, its object and tenant
# ids); any other secret or assertion gets one of the server's own issuer, which Azurite
# refuses.
ENTRA_PORT=$(free_port 0) || die "cannot listen for the Entra token issuer"
ENTRA_URL="https://127.0.0.1:$ENTRA_PORT"
ENTRA_TENANT=$(cat /proc/sys/kernel/random/uuid)
ENTRA_CLIENT=$(cat /proc/sys/kernel/random/uuid)
ENTRA_OBJECT=$(cat /proc/sys/kernel/random/uuid)
ENTRA_SECRET=$(head -c 24 /dev/urandom | base64 -w0 | tr '+/' '-_')
# The workload identity's federated token: a JWT naming the principal as issuer and subject (the
# server parses a client assertion as its own client's; Entra checks a federated credential
# instead), valid a week, HMAC-signed with a key nobody keeps.
ENTRA_FEDERATED_TOKEN=$(CLIENT="$ENTRA_CLIENT" python3 -c '
import base64, hashlib, hmac, json, os, time, uuid
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
now, client = int(time.time()), os.environ["CLIENT"]
signed = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + b64(json.dumps(
    {"iss": client, "sub": client, "aud": "api://AzureADTokenExchange", "iat": now,
     "exp": now + 7 * 86400, "jti": str(uuid.uuid4())}).encode())
print(signed + "." + b64(hmac.new(os.urandom(32), signed.encode(), hashlib.sha256).digest()))')
printf '%s' "$ENTRA_FEDERATED_TOKEN" >"$VDO_ENV_DIR/azure-federated-token"
openssl pkcs12 -export -in "$TLS_DIR/server.crt" -inkey "$TLS_DIR/server.key" \
  -out "$TLS_DIR/server.p12" -passout pass:vdo-test 2>/dev/null
cat >"$VDO_ENV_DIR/entra-issuer.json" <<JSON
{"interactiveLogin": false,
 "httpServer": {"type": "NettyWrapper", "ssl": {"keystoreFile": "$TLS_DIR/server.p12",
   "keystoreType": "PKCS12", "keystorePassword": "vdo-test", "keyPassword": "vdo-test"}},
 "tokenCallbacks": [{"issuerId": "$ENTRA_TENANT/oauth2/v2.0", "tokenExpiry": 3600,
   "requestMappings": [
     {"requestParam": "client_secret", "match": "$ENTRA_SECRET",
      "claims": {"iss": "https://sts.windows.net/$ENTRA_TENANT/", "aud": "https://storage.azure.com",
                 "sub": "$ENTRA_OBJECT", "oid": "$ENTRA_OBJECT", "tid": "$ENTRA_TENANT",
                 "appid": "$ENTRA_CLIENT"}},
     {"requestParam": "client_assertion", "match": "$ENTRA_FEDERATED_TOKEN",
      "claims": {"iss": "https://sts.windows.net/$ENTRA_TENANT/", "aud": "https://storage.azure.com",
                 "sub": "$ENTRA_OBJECT", "oid": "$ENTRA_OBJECT", "tid": "$ENTRA_TENANT",
                 "appid": "$ENTRA_CLIENT"}}]}]}
JSON
start_group entra "$VDO_ENV_DIR/logs/entra-issuer.log" env SERVER_PORT="$ENTRA_PORT" \
  SERVER_HOSTNAME=127.0.0.1 JSON_CONFIG_PATH="$VDO_ENV_DIR/entra-issuer.json" "$ENTRA_ISSUER"

# A GCP service-account key of our own: a fresh RSA key (PKCS#8); nothing checks it with Google.
GCS_CREDS_FILE="$VDO_ENV_DIR/gcs-credentials.json"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 2>/dev/null |
  python3 -c '
import json, os, sys
email = "vdo@test-project.iam.gserviceaccount.com"
json.dump({
    "type": "service_account",
    "project_id": "test-project",
    "private_key_id": os.urandom(20).hex(),
    "private_key": sys.stdin.read(),
    "client_email": email,
    "client_id": "1" + "".join(str(b % 10) for b in os.urandom(20)),
    "auth_uri": "https://accounts.google.com/o/oauth2/auth",
    "token_uri": "https://oauth2.googleapis.com/token",
    "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
    "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/" + email.replace("@", "%40"),
    "universe_domain": "googleapis.com",
}, open(sys.argv[1], "w"), indent=2)' "$GCS_CREDS_FILE"
chmod 600 "$GCS_CREDS_FILE"
grep -q 'BEGIN PRIVATE KEY' "$GCS_CREDS_FILE" || die "no PKCS#8 key in $GCS_CREDS_FILE"

# --- cluster ---------------------------------------------------------------------------------
log "env-up: starting the kwok cluster '$CLUSTER_NAME' (binary runtime)"
t=$(date +%s)
# The API server's certificate also names the `kubernetes` Service's address (the real node's
# pods dial it), and the API server calls kubelets with the admin certificate, which the real
# node's kubelet checks (kwok's own kubelets take any caller). It dials a node by its
# InternalIP first: the real node's name resolves nowhere, and kwok's nodes have only a
# Hostname (localhost). kwok runs only the nodes it made (annotated kwok.x-k8s.io/node=fake):
# kwokctl's default, all nodes, had kwok renew the real node's lease and patch and delete its
# pods beside the kubelet, and a data-path pod's Running status then waited for minutes.
KWOK_PKI="$KWOK_WORKDIR/clusters/$CLUSTER_NAME/pki"
cat >"$VDO_ENV_DIR/kwokctl.yaml" <<EOF
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  kubeApiserverCertSANs: ["$KUBERNETES_SERVICE_IP"]
componentsPatches:
- name: kwok-controller
  extraArgs:
  - {key: manage-all-nodes, value: "false"}
  - {key: manage-nodes-with-annotation-selector, value: kwok.x-k8s.io/node=fake}
EOF
"$KWOKCTL" --config "$VDO_ENV_DIR/kwokctl.yaml" create cluster --name "$CLUSTER_NAME" --runtime binary \
  --extra-args "kube-apiserver=kubelet-client-certificate=$KWOK_PKI/admin.crt" \
  --extra-args "kube-apiserver=kubelet-client-key=$KWOK_PKI/admin.key" \
  --extra-args "kube-apiserver=kubelet-preferred-address-types=InternalIP,Hostname" \
  --kubeconfig "$KUBECONFIG" \
  --etcd-binary "$ETCD" \
  --kube-apiserver-binary "$KUBE_DIR/kube-apiserver" \
  --kube-controller-manager-binary "$KUBE_DIR/kube-controller-manager" \
  --kube-scheduler-binary "$KUBE_DIR/kube-scheduler" \
  --kwok-controller-binary "$KWOK" \
  --enable-crds=Logs,ClusterLogs \
  --wait 120s >"$VDO_ENV_DIR/logs/kwokctl-create.log" 2>&1 ||
  { tail -n 30 "$VDO_ENV_DIR/logs/kwokctl-create.log" >&2; die "kwokctl create cluster failed; log: $VDO_ENV_DIR/logs/kwokctl-create.log"; }
kubectl config use-context "kwok-$CLUSTER_NAME" >/dev/null
log "env-up: cluster up in $(($(date +%s) - t))s ($(kubectl version -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["serverVersion"]["gitVersion"])'))"

for i in 0 1 2; do
  cat <<EOF
apiVersion: v1
kind: Node
metadata:
  name: node-$i
  annotations: {kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: "0"}
  labels:
    kubernetes.io/hostname: node-$i
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
status:
  allocatable: {cpu: "32", memory: 256Gi, pods: "110"}
  capacity: {cpu: "32", memory: 256Gi, pods: "110"}
---
EOF
done | kubectl apply -f - >/dev/null
wait_for "3 nodes Ready" 60 kubectl wait --for=condition=Ready node --all --timeout=1s

# --- Velero CRDs and namespace ---------------------------------------------------------------
kubectl create namespace "$NAMESPACE" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
"$VELERO" install --crds-only --dry-run -o yaml | kubectl apply -f - >/dev/null
kubectl wait --for=condition=Established crd --all --timeout=60s >/dev/null
log "env-up: Velero CRDs installed ($(kubectl get crd -o name | grep -c velero.io) kinds)"

# --- STS ---------------------------------------------------------------------------------------
# moto's server as AWS STS: AWS role profiles (role_arn with web_identity_token_file or
# source_profile) are assumed through it by the operator and the Velero server alike, and
# s3s-fs accepts the keys it hands out. It checks neither tokens nor trust policies; a test
# turns its IAM checks on for a role that cannot be assumed. The web identity token is
# JWT-shaped (audience sts.amazonaws.com, as EKS's) but signed by nobody: no one checks it.
STS_PORT=$(free_port "${VDO_STS_PORT:-0}") || die "cannot listen for STS"
STS_URL="http://127.0.0.1:$STS_PORT"
start_group sts "$VDO_ENV_DIR/logs/moto.log" "$MOTO_SERVER" -H 127.0.0.1 -p "$STS_PORT"
WEB_IDENTITY_TOKEN_FILE="$VDO_ENV_DIR/aws-web-identity-token"
python3 - "$WEB_IDENTITY_TOKEN_FILE" <<'PY'
import base64, json, sys, time
part = lambda o: base64.urlsafe_b64encode(json.dumps(o).encode()).rstrip(b"=").decode()
claims = {"aud": ["sts.amazonaws.com"], "iss": "https://vdo.invalid", "exp": int(time.time()) + 7 * 86400,
          "sub": "system:serviceaccount:velero:velero-debug-operator"}
open(sys.argv[1], "w").write(part({"alg": "RS256", "kid": "vdo"}) + "." + part(claims) + ".unsigned")
PY
wait_for "STS on $STS_URL" 60 curl -sf -o /dev/null "$STS_URL/moto-api/data.json"
log "env-up: STS (moto) on $STS_URL"

# --- S3 ----------------------------------------------------------------------------------------
S3_PORT=$(free_port "${VDO_S3_PORT:-0}") || die "cannot listen for S3"
ACCESS_KEY="vdo-access-$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
SECRET_KEY="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
mkdir -p "$VDO_ENV_DIR/s3/$BUCKET"
start_group s3 "$VDO_ENV_DIR/logs/s3.log" "$S3S_FS" --host 127.0.0.1 --port "$S3_PORT" \
  --access-key "$ACCESS_KEY" --secret-key "$SECRET_KEY" \
  --sts-keys-url "$STS_URL/moto-api/data.json" "$VDO_ENV_DIR/s3"
S3_URL="http://127.0.0.1:$S3_PORT"
# The same server under a second address: presigned URLs are made for publicUrl.
S3_PUBLIC_URL="http://localhost:$S3_PORT"
wait_for "S3 on $S3_URL" 30 curl -s -o /dev/null "$S3_URL/"
log "env-up: S3 (s3s-fs) on $S3_URL, bucket $BUCKET"

CREDS_FILE="$VDO_ENV_DIR/cloud-credentials"
printf '[default]\naws_access_key_id=%s\naws_secret_access_key=%s\n' "$ACCESS_KEY" "$SECRET_KEY" >"$CREDS_FILE"
chmod 600 "$CREDS_FILE"
kubectl -n "$NAMESPACE" create secret generic cloud-credentials --from-file=cloud="$CREDS_FILE" \
  --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl apply -f - >/dev/null <<EOF
apiVersion: velero.io/v1
kind: BackupStorageLocation
metadata: {name: default, namespace: $NAMESPACE}
spec:
  provider: aws
  default: true
  # Validated often, so a test sees quickly whether an upload made it Unavailable.
  validationFrequency: 10s
  objectStorage: {bucket: $BUCKET, prefix: $PREFIX}
  config:
    region: $REGION
    s3ForcePathStyle: "true"
    s3Url: $S3_URL
    publicUrl: $S3_PUBLIC_URL
    checksumAlgorithm: ""
EOF

# --- the real node (node-up.sh), and a storage location its pods reach ------------------------
API_PORT=$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}' | sed 's/.*://')
"$ENV_DIR/node-up.sh" "$API_PORT" "$S3_PORT"
# The same S3 store under the node's address (node-up.sh's DNAT): fs-backups of the real node's
# volumes go here, since the node-agent's kopia dials the BSL's s3Url from inside its pod.
S3_NODE_URL="http://$NODE_IP:$S3_PORT"
kubectl apply -f - >/dev/null <<EOF
apiVersion: velero.io/v1
kind: BackupStorageLocation
metadata: {name: real-node, namespace: $NAMESPACE}
spec:
  provider: aws
  validationFrequency: 10s
  objectStorage: {bucket: $BUCKET, prefix: real-node}
  credential: {name: cloud-credentials, key: cloud}
  config:
    region: $REGION
    s3ForcePathStyle: "true"
    s3Url: $S3_NODE_URL
    publicUrl: $S3_PUBLIC_URL
    checksumAlgorithm: ""
EOF

# --- GCS (fake-gcs-server) ----------------------------------------------------------------------
wait_for "GCS on $GCS_URL" 30 curl -sf -o /dev/null "$GCS_URL/storage/v1/b"
curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' -d "{\"name\": \"$GCS_BUCKET\"}" \
  "$GCS_URL/storage/v1/b?project=test-project" || die "cannot create bucket $GCS_BUCKET on $GCS_URL"
log "env-up: GCS (fake-gcs-server) on $GCS_URL, bucket $GCS_BUCKET"
kubectl -n "$NAMESPACE" create secret generic gcs-credentials --from-file=cloud="$GCS_CREDS_FILE" \
  --dry-run=client -o yaml | kubectl apply -f - >/dev/null
# The plugin reaches fake-gcs-server through STORAGE_EMULATOR_HOST in the Velero server's
# environment (no OAuth token is fetched then); the BSL itself names no endpoint.
kubectl apply -f - >/dev/null <<EOF
apiVersion: velero.io/v1
kind: BackupStorageLocation
metadata: {name: gcs, namespace: $NAMESPACE}
spec:
  provider: gcp
  validationFrequency: 10s
  objectStorage: {bucket: $GCS_BUCKET, prefix: $PREFIX}
  credential: {name: gcs-credentials, key: cloud}
EOF

# --- Azure Blob (Azurite) -----------------------------------------------------------------------
wait_for "Azure Blob on $AZURE_URL" 30 curl -s --cacert "$TLS_DIR/ca.crt" -o /dev/null "$AZURE_URL"
wait_for "the Entra token issuer on $ENTRA_URL" 90 curl -sf --cacert "$TLS_DIR/ca.crt" -o /dev/null "$ENTRA_URL/isalive"
AZURE_ACCOUNT="$AZURE_ACCOUNT" AZURE_KEY="$AZURE_KEY" AZURE_URL="$AZURE_URL" "$PYTOOLS" - \
  "$AZURE_CONTAINER" "$TLS_DIR/ca.crt" <<'PY' || die "cannot create container $AZURE_CONTAINER on $AZURE_URL"
import os, sys
from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import BlobServiceClient
service = BlobServiceClient(
    os.environ["AZURE_URL"],
    credential={"account_name": os.environ["AZURE_ACCOUNT"], "account_key": os.environ["AZURE_KEY"]},
    connection_verify=sys.argv[2],
)
try:
    service.create_container(sys.argv[1])
except ResourceExistsError:
    pass
PY
log "env-up: Azure Blob (Azurite) on $AZURE_URL, container $AZURE_CONTAINER"
AZURE_CREDS_FILE="$VDO_ENV_DIR/azure-credentials"
printf 'AZURE_STORAGE_ACCOUNT_ACCESS_KEY=%s\nAZURE_CLOUD_NAME=AzurePublicCloud\n' "$AZURE_KEY" >"$AZURE_CREDS_FILE"
chmod 600 "$AZURE_CREDS_FILE"
kubectl -n "$NAMESPACE" create secret generic azure-credentials --from-file=cloud="$AZURE_CREDS_FILE" \
  --dry-run=client -o yaml | kubectl apply -f - >/dev/null
# Velero cannot load the Azure plugin here (the Go module proxy refuses it), so this BSL stays
# Unavailable; it is what the operator reads, with the settings the real plugin would use.
kubectl apply -f - >/dev/null <<EOF
apiVersion: velero.io/v1
kind: BackupStorageLocation
metadata: {name: azure, namespace: $NAMESPACE}
spec:
  provider: azure
  objectStorage:
    bucket: $AZURE_CONTAINER
    prefix: $PREFIX
    caCert: $CA_B64
  credential: {name: azure-credentials, key: cloud}
  config:
    storageAccount: $AZURE_ACCOUNT
    resourceGroup: vdo-rg
    subscriptionId: 00000000-0000-0000-0000-000000000000
    storageAccountKeyEnvVar: AZURE_STORAGE_ACCOUNT_ACCESS_KEY
    storageAccountURI: $AZURE_URL
EOF

# --- Velero server -----------------------------------------------------------------------------
# The server refuses to start without its maintenance ConfigMap; `global: {}` keeps Velero's
# defaults, and a test adds its repository's key.
kubectl -n "$NAMESPACE" create configmap "$MAINTENANCE_CONFIG_MAP" --from-literal=global='{}' \
  --dry-run=client -o yaml | kubectl apply -f - >/dev/null
ln -sf "$AWS_PLUGIN" "$VDO_ENV_DIR/plugins/velero-plugin-for-aws"
ln -sf "$GCP_PLUGIN" "$VDO_ENV_DIR/plugins/velero-plugin-for-gcp"
METRICS_PORT=$(free_port) PROFILER_PORT=$(free_port)
VELERO_LOG="$VDO_ENV_DIR/podlogs/velero.log"
: >"$VELERO_LOG"
start_group velero "$VDO_ENV_DIR/logs/velero-server.log" env AWS_SHARED_CREDENTIALS_FILE="$CREDS_FILE" \
  STORAGE_EMULATOR_HOST="$GCS_URL" AWS_ENDPOINT_URL_STS="$STS_URL" \
  bash -c 'set -o pipefail; "$@" 2>&1 | tee -a "'"$VDO_ENV_DIR/logs/velero-server.log"'" | python3 "'"$ENV_DIR/cri-log.py"'" "'"$VELERO_LOG"'" stdout' _ \
  "$VELERO" server --kubeconfig "$KUBECONFIG" --namespace "$NAMESPACE" \
  --plugin-dir "$VDO_ENV_DIR/plugins" --uploader-type kopia \
  --metrics-address "127.0.0.1:$METRICS_PORT" --profiler-address "127.0.0.1:$PROFILER_PORT" \
  --repo-maintenance-job-configmap "$MAINTENANCE_CONFIG_MAP" --log-level info
log "env-up: Velero server started (log: $VELERO_LOG); waiting for BSL default to be Available"
wait_for "BSL default Available" 120 bash -c \
  "[[ \$(kubectl -n $NAMESPACE get bsl default -o jsonpath='{.status.phase}') == Available ]]"
wait_for "BSL gcs Available" 60 bash -c \
  "[[ \$(kubectl -n $NAMESPACE get bsl gcs -o jsonpath='{.status.phase}') == Available ]]"
log "env-up: BSLs default and gcs Available"

# --- S3 behind HTTPS, for the BSL settings caCert and insecureSkipTLSVerify --------------------
# (with the server certificate made at the start)
S3_TLS_PORT=$(free_port)
start_group s3-tls "$VDO_ENV_DIR/logs/s3-tls.log" python3 "$ENV_DIR/tls-proxy.py" \
  "$S3_TLS_PORT" "$S3_PORT" "$TLS_DIR/server.crt" "$TLS_DIR/server.key"
S3_TLS_URL="https://localhost:$S3_TLS_PORT"
wait_for "S3 on $S3_TLS_URL" 30 curl -s --cacert "$TLS_DIR/ca.crt" -o /dev/null "$S3_TLS_URL/"
tls_bsl() { # name, then the lines that say how the certificate is trusted
  local name=$1 trust=$2
  kubectl apply -f - >/dev/null <<EOF
apiVersion: velero.io/v1
kind: BackupStorageLocation
metadata: {name: $name, namespace: $NAMESPACE}
spec:
  provider: aws
  validationFrequency: 10s
  objectStorage:
    bucket: $BUCKET
    prefix: $name
$trust
  config:
    region: $REGION
    s3ForcePathStyle: "true"
    s3Url: $S3_TLS_URL
    publicUrl: $S3_TLS_URL
    checksumAlgorithm: ""
EOF
}
tls_bsl tls-ca "    caCert: $CA_B64"
tls_bsl tls-insecure "  # (no caCert: the server certificate is not verified)"
kubectl -n "$NAMESPACE" patch bsl tls-insecure --type merge \
  -p '{"spec":{"config":{"insecureSkipTLSVerify":"true"}}}' >/dev/null
wait_for "BSLs tls-ca and tls-insecure Available" 120 bash -c \
  "[[ \$(kubectl -n $NAMESPACE get bsl tls-ca tls-insecure -o jsonpath='{.items[*].status.phase}') == 'Available Available' ]]"
log "env-up: S3 behind HTTPS on $S3_TLS_URL (BSLs tls-ca, tls-insecure)"

# --- Velero workloads as kwok pods ------------------------------------------------------------
kubectl apply -f - >/dev/null <<EOF
apiVersion: apps/v1
kind: Deployment
metadata:
  name: velero
  namespace: $NAMESPACE
  labels: {component: velero}
spec:
  replicas: 1
  selector: {matchLabels: {deploy: velero}}
  template:
    metadata:
      labels: {component: velero, deploy: velero}
    spec:
      # Its pod stays on a kwok node; repository maintenance Jobs, made from this template,
      # inherit the toleration and may run on the real node when a test's ConfigMap says so.
      nodeSelector: {type: kwok}
      tolerations: [{key: $NODE_TAINT_KEY, operator: Exists, effect: NoSchedule}]
      initContainers:
      - name: velero-plugin-for-aws
        image: velero/velero-plugin-for-aws:$VELERO_AWS_PLUGIN_VERSION
      containers:
      - name: velero
        image: velero/velero:$VELERO_VERSION
        command: [/velero]
        # The flags the server runs with below that a bundle reads here, as a cluster's own
        # Deployment would carry them.
        args: [server, --uploader-type=kopia, --repo-maintenance-job-configmap=$MAINTENANCE_CONFIG_MAP]
EOF
# The node-agent DaemonSet as this Velero version's own install makes it, with the real node's
# kubelet folder and Velero's image made here; it also tolerates the real node's taint and is
# updated OnDelete. On the kwok nodes its pods are kwok's; on the real node it runs `velero
# node-agent server` for real.
"$VELERO" install --dry-run -o json --use-node-agent --no-secret --no-default-backup-location \
  --use-volume-snapshots=false --image "$VELERO_IMAGE" --kubelet-root-dir "$NODE_KUBELET_DIR" \
  --plugins "velero/velero-plugin-for-aws:$VELERO_AWS_PLUGIN_VERSION" | python3 -c '
import json, sys
taint = sys.argv[1]
keep = []
for item in json.load(sys.stdin)["items"]:
    kind, name = item["kind"], item["metadata"]["name"]
    if kind == "DaemonSet" and name == "node-agent":
        spec = item["spec"]["template"]["spec"]
        spec.setdefault("tolerations", []).append({"key": taint, "operator": "Exists", "effect": "NoSchedule"})
        for c in spec["containers"]:
            c["imagePullPolicy"] = "Never"
        # A test that changes the template (to keep the node-agent off the real node, or give
        # it a ConfigMap) must not replace the pods on the kwok nodes: their logs are files
        # named after them. OnDelete still removes and adds pods as nodes stop or start
        # matching.
        item["spec"]["updateStrategy"] = {"type": "OnDelete"}
        keep.append(item)
    elif kind in ("ServiceAccount", "ClusterRoleBinding") and name == "velero":
        keep.append(item)
print(json.dumps({"apiVersion": "v1", "kind": "List", "items": keep}))' "$NODE_TAINT_KEY" >"$VDO_ENV_DIR/node-agent.json" ||
  die "cannot make the node-agent DaemonSet of Velero $VELERO_VERSION from 'velero install --dry-run'"
kubectl apply -f "$VDO_ENV_DIR/node-agent.json" >/dev/null
wait_for "velero and node-agent pods Running" 120 bash -c \
  "[[ \$(kubectl -n $NAMESPACE get pods -o jsonpath='{range .items[*]}{.status.phase}{\"\\n\"}{end}' | grep -c Running) -ge 5 ]]"
wait_for "the node-agent on $NODE_NAME Ready" 120 bash -c \
  "kubectl -n $NAMESPACE get pods -l name=node-agent --field-selector spec.nodeName=$NODE_NAME -o jsonpath='{.items[*].status.containerStatuses[*].ready}' | grep -qx true"

# Each pod's log is a file on this machine; kwok serves it through the API as the kubelet would.
cri_line() { printf '%s stdout F %s\n' "$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)" "$1"; }
logs_objects=""
first_agent=1
for pod in $(kubectl -n "$NAMESPACE" get pods -l name=node-agent --field-selector "spec.nodeName!=$NODE_NAME" -o jsonpath='{.items[*].metadata.name}'); do
  node=$(kubectl -n "$NAMESPACE" get pod "$pod" -o jsonpath='{.spec.nodeName}')
  f="$VDO_ENV_DIR/podlogs/$pod.log"
  {
    cri_line "time=\"$(date -u +%FT%TZ)\" level=info msg=\"Starting node-agent server $VELERO_VERSION\" logSource=\"pkg/cmd/cli/nodeagent/server.go:1\" node=$node"
    cri_line "time=\"$(date -u +%FT%TZ)\" level=info msg=\"node-agent server started\" node=$node"
  } >"$f"
  previous=""
  if ((first_agent)); then
    # A previous instance's log is served for previous=true (environment.rs reads it). Its
    # status records no restart, so a bundle does not ask for it: tests that need a restarted
    # node-agent make their own (restart_node_agent_on).
    pf="$VDO_ENV_DIR/podlogs/$pod.previous.log"
    {
      cri_line "time=\"$(date -u +%FT%TZ)\" level=info msg=\"Starting node-agent server $VELERO_VERSION\" node=$node"
      cri_line "time=\"$(date -u +%FT%TZ)\" level=error msg=\"previous instance: data path failed, exiting\" node=$node"
    } >"$pf"
    previous="previousLogsFile: $pf"
    first_agent=0
  fi
  logs_objects+="apiVersion: kwok.x-k8s.io/v1alpha1
kind: Logs
metadata: {name: $pod, namespace: $NAMESPACE}
spec:
  logs:
  - containers: [node-agent]
    logsFile: $f
    $previous
---
"
done
velero_pod=$(kubectl -n "$NAMESPACE" get pods -l deploy=velero -o jsonpath='{.items[0].metadata.name}')
# The plugin init container only copies its binary and exits, as in a real install.
PLUGIN_INIT_LOG="$VDO_ENV_DIR/podlogs/velero-plugin-for-aws.log"
cri_line "copied velero-plugin-for-aws to /target" >"$PLUGIN_INIT_LOG"
logs_objects+="apiVersion: kwok.x-k8s.io/v1alpha1
kind: Logs
metadata: {name: $velero_pod, namespace: $NAMESPACE}
spec:
  logs:
  - containers: [velero]
    logsFile: $VELERO_LOG
  - containers: [velero-plugin-for-aws]
    logsFile: $PLUGIN_INIT_LOG
"
echo "$logs_objects" | kubectl apply -f - >/dev/null

# --- describe the environment for tests and the demo -------------------------------------------
python3 - "$ENV_JSON" <<PY
import json, sys
json.dump({
    "kubeconfig": "$KUBECONFIG",
    "context": "kwok-$CLUSTER_NAME",
    "namespace": "$NAMESPACE",
    "velero": {"version": "$VELERO_VERSION", "cli": "$VELERO", "log": "$VELERO_LOG", "metrics": "http://127.0.0.1:$METRICS_PORT/metrics"},
    "s3": {"endpoint": "$S3_URL", "publicEndpoint": "$S3_PUBLIC_URL", "region": "$REGION",
           "bucket": "$BUCKET", "prefix": "$PREFIX",
           "accessKey": "$ACCESS_KEY", "secretKey": "$SECRET_KEY", "credentialsFile": "$CREDS_FILE",
           "dataDir": "$VDO_ENV_DIR/s3", "tlsEndpoint": "$S3_TLS_URL",
           "caFile": "$TLS_DIR/ca.crt"},
    "sts": {"endpoint": "$STS_URL", "webIdentityTokenFile": "$WEB_IDENTITY_TOKEN_FILE"},
    "gcs": {"endpoint": "$GCS_URL", "bucket": "$GCS_BUCKET", "prefix": "$PREFIX",
            "credentialsFile": "$GCS_CREDS_FILE", "dataDir": "$VDO_ENV_DIR/gcs"},
    "azure": {"endpoint": "$AZURE_URL", "account": "$AZURE_ACCOUNT", "key": "$AZURE_KEY",
              "container": "$AZURE_CONTAINER", "prefix": "$PREFIX", "caFile": "$TLS_DIR/ca.crt",
              "credentialsFile": "$AZURE_CREDS_FILE", "dataDir": "$VDO_ENV_DIR/azurite"},
    "entra": {"authority": "$ENTRA_URL", "tenant": "$ENTRA_TENANT", "clientId": "$ENTRA_CLIENT",
              "clientSecret": "$ENTRA_SECRET", "objectId": "$ENTRA_OBJECT",
              "federatedTokenFile": "$VDO_ENV_DIR/azure-federated-token"},
    "pytools": "$PYTOOLS",
    "tinyproxy": "$TINYPROXY",
    "browserTools": "$BROWSER_TOOLS",
    "podLogsDir": "$VDO_ENV_DIR/podlogs",
    "realNode": {"name": "$NODE_NAME", "address": "$NODE_IP", "taintKey": "$NODE_TAINT_KEY",
                 "kubeletDir": "$NODE_KUBELET_DIR", "storageLocation": "real-node",
                 "s3Endpoint": "$S3_NODE_URL", "veleroImage": "$VELERO_IMAGE",
                 "busyboxImage": "$BUSYBOX_IMAGE", "storageClass": "local-path",
                 "maintenanceConfigMap": "$MAINTENANCE_CONFIG_MAP"},
}, open(sys.argv[1], "w"), indent=2)
PY
# VDO_OPERATOR=0 leaves the operator out (to run it by hand, e.g. under a debugger).
if [[ "${VDO_OPERATOR:-1}" == 1 ]]; then
  "$ENV_DIR/chart-install.sh"
  VDO_AS_SERVICE_ACCOUNT=1 "$ENV_DIR/operator-up.sh"
fi
log "env-up: environment up in $(($(date +%s) - start_all))s"
print_env

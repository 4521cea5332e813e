# The object stores and their BackupStorageLocations: S3 (s3s-fs, also behind HTTPS and under the
# real node's address), GCS (fake-gcs-server) and Azure Blob (Azurite). Sourced by env-up.sh.
# The GCS and Azure servers start first (gcs_start, azure_start) and are waited for later
# (gcs_ready, azure_ready), so they come up while the cluster does.
# Sets: GCS_URL; AZURE_URL, AZURE_KEY, AZURE_CREDS_FILE; S3_PORT, S3_URL, S3_PUBLIC_URL,
# ACCESS_KEY, SECRET_KEY, CREDS_FILE; S3_NODE_URL; S3_TLS_URL.

gcs_start() {
  # fake-gcs-server: JSON API over http; download URLs are path-style on its own address. It holds
  # an upload in memory several times over (read whole, copied, read back); madvdontneed=0 lets
  # the Go runtime reuse those pages for the next upload instead of the kernel zeroing new ones.
  GCS_PORT=$(free_port "${VDO_GCS_PORT:-0}") || die "cannot listen for GCS"
  GCS_URL="http://127.0.0.1:$GCS_PORT"
  start_group gcs "$VDO_ENV_DIR/logs/gcs.log" env GODEBUG=madvdontneed=0 "$FAKE_GCS" -scheme http -host 127.0.0.1 -port "$GCS_PORT" \
    -backend filesystem -filesystem-root "$VDO_ENV_DIR/gcs" \
    -public-host "127.0.0.1:$GCS_PORT" -external-url "$GCS_URL"
}

azure_start() {
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
}

s3_up() {
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
}

s3_node_location() {
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
}

gcs_ready() {
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
}

azure_ready() {
  wait_for "Azure Blob on $AZURE_URL" 30 curl -s --cacert "$TLS_DIR/ca.crt" -o /dev/null "$AZURE_URL"
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
}

s3_tls_up() {
  # (with the server certificate made at the start)
  S3_TLS_PORT=$(free_port)
  start_group s3-tls "$VDO_ENV_DIR/logs/s3-tls.log" python3 "$ENV_DIR/doubles/tls-proxy.py" \
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
}

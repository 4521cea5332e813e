# env.json: the running environment as tests, the demo and the bench read it (tests/src/env.rs).
# Sourced by env-up.sh, once every component is up.

env_json_write() {
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
                 "maintenanceConfigMap": "$MAINTENANCE_CONFIG_MAP",
                 "csi": {"driver": "$CSI_DRIVER", "storageClass": "$CSI_STORAGE_CLASS",
                         "snapshotClass": "$CSI_SNAPSHOT_CLASS"}},
}, open(sys.argv[1], "w"), indent=2)
PY
}

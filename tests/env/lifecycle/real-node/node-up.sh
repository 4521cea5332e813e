#!/usr/bin/env bash
# Starts the real node beside the kwok nodes (called by env-up.sh once the cluster and the
# object stores run): a bridge and a DNAT chain of our own, containerd with runc and the CNI
# bridge, Velero's image, a pause image and a busybox image made here and imported (nothing is
# pulled), the kubelet of the control plane's release as system:node:<name>, and Rancher's
# local-path-provisioner as the default StorageClass, and CSI beside it (csi.sh). The node is tainted, so only pods that
# ask for it (tolerate the taint) run there: the kwok tests' pods never land on it.
#
# Usage: node-up.sh API_PORT S3_PORT
# node-down.sh undoes all of it; env-down.sh calls it.
source "$(dirname "${BASH_SOURCE[0]}")/../../lib/common.sh"
source "$ENV_DIR/lifecycle/real-node/node-common.sh"

API_PORT=$1 S3_PORT=$2
[[ $(id -u) == 0 ]] || die "node-up: the real node needs root (mounts, network namespaces, cgroups)"
command -v iptables >/dev/null || die "node-up: iptables is missing: run 'make tools' (as root) or apt-get install iptables"
RUNTIME_DIR=$(tool_dir node_runtime "$(node_runtime_version)")
KUBELET=$(tool_dir kubelet "$KUBERNETES_VERSION")/bin/kubelet
HELPERS=$(tool_dir velero_helpers "$VELERO_VERSION")/bin
LOCAL_PATH=$(tool_dir local_path_provisioner "$LOCAL_PATH_PROVISIONER_VERSION")/bin/local-path-provisioner
VELERO=$(tool_dir velero "$VELERO_VERSION")/bin/velero
for b in "$RUNTIME_DIR/bin/containerd" "$RUNTIME_DIR/bin/runc" "$KUBELET" "$HELPERS/velero-restore-helper" \
  "$HELPERS/velero-helper" "$LOCAL_PATH" "$VELERO"; do
  [[ -x "$b" ]] || die "missing $b: run 'make tools' first"
done
PKI="$KWOK_WORKDIR/clusters/$CLUSTER_NAME/pki"
[[ -f "$PKI/ca.key" ]] || die "node-up: no cluster CA in $PKI (start the cluster first)"
start=$(date +%s)
mkdir -p "$NODE_DIR"/{containerd,state,kubelet,cni,images,local-path,pki}

# --- network: the bridge, its gateway (the node's address) and our DNAT chain ------------------
# Pods reach the API server through the `kubernetes` Service's address and the S3 store through
# the gateway, both rewritten to the loopback servers (route_localnet lets a packet from the
# bridge reach 127.0.0.1). Host processes reach the same addresses through OUTPUT.
ip link add "$NODE_BRIDGE" type bridge
ip addr add "$NODE_IP/24" dev "$NODE_BRIDGE"
ip link set "$NODE_BRIDGE" up
sysctl -qw "net.ipv4.conf.$NODE_BRIDGE.route_localnet=1"
iptables -t nat -N "$NODE_CHAIN"
iptables -t nat -A PREROUTING -i "$NODE_BRIDGE" -j "$NODE_CHAIN"
iptables -t nat -A OUTPUT -j "$NODE_CHAIN"
iptables -t nat -A "$NODE_CHAIN" -d "$KUBERNETES_SERVICE_IP/32" -p tcp --dport 443 -j DNAT --to-destination "127.0.0.1:$API_PORT"
iptables -t nat -A "$NODE_CHAIN" -d "$NODE_IP/32" -p tcp --dport "$S3_PORT" -j DNAT --to-destination "127.0.0.1:$S3_PORT"

# --- containerd --------------------------------------------------------------------------------
cat >"$NODE_DIR/cni/10-vdo.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "vdo", "plugins": [
  {"type": "bridge", "bridge": "$NODE_BRIDGE", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$NODE_SUBNET", "gateway": "$NODE_IP"}]],
            "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$NODE_DIR/cni/ipam"}},
  {"type": "loopback"}]}
EOF
# restrict_oom_score_adj: this sandbox lacks CAP_SYS_RESOURCE, which a pod sandbox's -998 needs.
cat >"$NODE_DIR/containerd.toml" <<EOF
version = 2
root = "$NODE_DIR/containerd"
state = "$NODE_DIR/state"
[grpc]
  address = "$NODE_SOCKET"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$RUNTIME_DIR/bin/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$RUNTIME_DIR/cni"
    conf_dir = "$NODE_DIR/cni"
EOF
start_group node-containerd "$VDO_ENV_DIR/logs/node-containerd.log" \
  env PATH="$RUNTIME_DIR/bin:$PATH" "$RUNTIME_DIR/bin/containerd" --config "$NODE_DIR/containerd.toml"
wait_for "containerd on $NODE_SOCKET" 60 "$RUNTIME_DIR/bin/ctr" --address "$NODE_SOCKET" version

# --- images, made here -------------------------------------------------------------------------
image() { # name, then oci-image.py's options
  local tar
  tar="$NODE_DIR/images/$(echo "$1" | tr '/:' '__').tar"
  python3 "$ENV_DIR/lifecycle/real-node/oci-image.py" "$tar" "$@" >/dev/null
  "$RUNTIME_DIR/bin/ctr" --address "$NODE_SOCKET" -n k8s.io images import "$tar" >/dev/null
}
passwd=(--text "/etc/passwd=root:x:0:0:root:/root:/bin/sh" --text "/etc/group=root:x:0:")
# Velero's image as its Dockerfile lays it out: /velero and its two helpers at the root.
image "$VELERO_IMAGE" --file "/velero=$VELERO" --file "/velero-restore-helper=$HELPERS/velero-restore-helper" \
  --file "/velero-helper=$HELPERS/velero-helper" --dir /tmp --dir /root --dir /scratch "${passwd[@]}" \
  --env HOME=/root --entrypoint /velero
# Velero before 1.16 gives a restored pod's restore-wait init container this image of its own
# (pkg/restore/actions: DefaultRestoreHelperImage); later versions, the server's image.
image "docker.io/velero/velero-restore-helper:$VELERO_VERSION" \
  --file "/velero-restore-helper=$HELPERS/velero-restore-helper" --entrypoint /velero-restore-helper
# The sandbox's holding process: Velero's own `velero-helper pause`.
image "$PAUSE_IMAGE" --file "/pause=$HELPERS/velero-helper" --entrypoint /pause pause
busybox_links=()
for c in sh mkdir rm cat ls sleep echo dd sha256sum test true false; do busybox_links+=(--link "/bin/$c=busybox"); done
image "$BUSYBOX_IMAGE" --file "/bin/busybox=$RUNTIME_DIR/bin/busybox" "${busybox_links[@]}" --dir /tmp \
  "${passwd[@]}" --entrypoint /bin/sh
log "node-up: images imported: $("$RUNTIME_DIR/bin/ctr" --address "$NODE_SOCKET" -n k8s.io images ls -q | grep -v '^sha256:' | tr '\n' ' ')"

# --- the kubelet, as system:node:<name> with a client certificate from the cluster's CA ---------
openssl req -newkey rsa:2048 -nodes -subj "/O=system:nodes/CN=system:node:$NODE_NAME" \
  -keyout "$NODE_DIR/pki/kubelet.key" -out "$NODE_DIR/pki/kubelet.csr" 2>/dev/null
printf 'extendedKeyUsage=clientAuth\n' >"$NODE_DIR/pki/client.ext"
openssl x509 -req -in "$NODE_DIR/pki/kubelet.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
  -days 30 -extfile "$NODE_DIR/pki/client.ext" -out "$NODE_DIR/pki/kubelet.crt" 2>/dev/null
cat >"$NODE_DIR/kubelet.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: vdo
  cluster: {server: "https://127.0.0.1:$API_PORT", certificate-authority: "$PKI/ca.crt"}
users:
- name: node
  user: {client-certificate: "$NODE_DIR/pki/kubelet.crt", client-key: "$NODE_DIR/pki/kubelet.key"}
contexts:
- name: node
  context: {cluster: vdo, user: node}
current-context: node
EOF
# The API server calls the kubelet (logs, exec) with the cluster's admin certificate
# (env-up.sh passes it as --kubelet-client-certificate); the kubelet checks it against the
# cluster's CA and asks the API server whether that user may.
cat >"$NODE_DIR/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: $KUBELET_PORT
healthzBindAddress: 127.0.0.1
healthzPort: 0
readOnlyPort: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: "$PKI/ca.crt"}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix://$NODE_SOCKET
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupsPerQOS: false
cgroupRoot: /$NODE_CGROUP
enforceNodeAllocatable: []
failSwapOn: false
registerWithTaints:
- {key: $NODE_TAINT_KEY, value: "true", effect: NoSchedule}
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
podPidsLimit: 4096
# No DNS server runs here; naming one (the node's own address, where nothing answers on 53)
# keeps the kubelet from a MissingClusterDNS Warning event on every pod, which bundles would
# carry as evidence. Pods dial addresses, never names.
clusterDNS: [$NODE_IP]
clusterDomain: cluster.local
EOF
# Each cgroup hierarchy gets our root, so everything the node's pods make sits under it and
# node-down.sh can check that none is left.
for h in /sys/fs/cgroup/*/; do
  [[ -f "$h/cgroup.procs" ]] && mkdir -p "$h$NODE_CGROUP"
done
start_group node-kubelet "$VDO_ENV_DIR/logs/node-kubelet.log" env PATH="$RUNTIME_DIR/bin:$PATH" "$KUBELET" \
  --config "$NODE_DIR/kubelet.yaml" --kubeconfig "$NODE_DIR/kubelet.kubeconfig" \
  --root-dir "$NODE_KUBELET_DIR" --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" \
  --node-labels "type=real,$NODE_TAINT_KEY=true" --v 1
wait_for "node $NODE_NAME Ready" 120 kubectl wait --for=condition=Ready "node/$NODE_NAME" --timeout=1s

# --- volumes: local-path-provisioner, the default StorageClass ----------------------------------
# `local` volumes (not hostPath: Velero's fs-backup skips hostPath volumes), made under the
# node's folder by helper pods on the real node.
kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Namespace
metadata: {name: local-path-storage}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: local-path-provisioner-service-account, namespace: local-path-storage}
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: local-path
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
    defaultVolumeType: local
provisioner: rancher.io/local-path
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Delete
---
apiVersion: v1
kind: ConfigMap
metadata: {name: local-path-config, namespace: local-path-storage}
data:
  config.json: '{"nodePathMap": [{"node": "DEFAULT_PATH_FOR_NON_LISTED_NODES", "paths": ["$NODE_DIR/local-path"]}]}'
  setup: |-
    #!/bin/sh
    set -eu
    mkdir -m 0777 -p "\$VOL_DIR"
  teardown: |-
    #!/bin/sh
    set -eu
    rm -rf "\$VOL_DIR"
  helperPod.yaml: |-
    apiVersion: v1
    kind: Pod
    metadata: {name: helper-pod}
    spec:
      tolerations: [{key: $NODE_TAINT_KEY, operator: Exists, effect: NoSchedule}]
      containers:
      - {name: helper-pod, image: $BUSYBOX_IMAGE, imagePullPolicy: Never}
EOF
kubectl -n local-path-storage get configmap local-path-config -o jsonpath='{.data.config\.json}' >"$NODE_DIR/local-path.json"
kubectl -n local-path-storage get configmap local-path-config -o jsonpath='{.data.helperPod\.yaml}' >"$NODE_DIR/local-path-helper.yaml"
start_group node-local-path "$VDO_ENV_DIR/logs/node-local-path.log" "$LOCAL_PATH" --debug start \
  --config "$NODE_DIR/local-path.json" --helper-pod-file "$NODE_DIR/local-path-helper.yaml" \
  --namespace local-path-storage --kubeconfig "$KUBECONFIG" --helper-image "$BUSYBOX_IMAGE"
"$ENV_DIR/lifecycle/real-node/csi.sh" up
log "node-up: real node $NODE_NAME Ready at $NODE_IP in $(($(date +%s) - start))s (kubelet $KUBERNETES_VERSION, containerd $("$RUNTIME_DIR/bin/containerd" --version | awk '{print $3}'))"

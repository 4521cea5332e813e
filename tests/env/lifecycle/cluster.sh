# The control plane: kwokctl's binary cluster (etcd, kube-apiserver, controller-manager,
# scheduler, kwok) and three kwok nodes. Sourced by env-up.sh, which sets the binaries' paths,
# KUBECONFIG and KWOK_WORKDIR; node-common.sh gives the names the real node needs in the API
# server's certificate.

cluster_up() {
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
}

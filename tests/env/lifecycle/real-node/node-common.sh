# The real node's names and addresses, shared by node-up.sh, node-down.sh and env-up.sh.
# Sourced after common.sh.
CLUSTER_NAME="${VDO_CLUSTER_NAME:-vdo}"
export KWOK_WORKDIR="$VDO_ENV_DIR/kwok"
# Always this environment's cluster, whatever the caller's KUBECONFIG says.
export KUBECONFIG="$VDO_ENV_DIR/kubeconfig"
NODE_NAME=node-real
NODE_DIR="$VDO_ENV_DIR/node"
NODE_KUBELET_DIR="$NODE_DIR/kubelet"
NODE_SOCKET="$NODE_DIR/containerd.sock"
# The pods' bridge and subnet; its gateway is the node's address. The addresses live only in
# the bridge and the network namespaces the node makes on this machine. The bridge, chain and
# cgroup names can be set, so the teardown test leaves its own beside a running environment's.
NODE_BRIDGE=${VDO_NODE_BRIDGE:-vdo-node0}
NODE_SUBNET=10.244.77.0/24
NODE_IP=10.244.77.1
NODE_CHAIN=${VDO_NODE_CHAIN:-VDO-NODE}
NODE_CGROUP=${VDO_NODE_CGROUP:-vdo-node}
KUBELET_PORT=10350
# The API server's default --service-cluster-ip-range is 10.0.0.0/24: the `kubernetes`
# Service, which in-cluster clients dial, is its first address.
KUBERNETES_SERVICE_IP=10.0.0.1
# Only pods that tolerate it run on the real node. A key Velero lets repository maintenance
# Jobs inherit from its Deployment (pkg/util/third_party.go ThirdPartyTolerations), so they too
# can run there, as on a cluster whose system nodes carry it.
NODE_TAINT_KEY=CriticalAddonsOnly
# Velero's --repo-maintenance-job-configmap: env-up makes it with Velero's defaults; a test adds
# a key NAMESPACE-LOCATION-kopia, for one repository.
MAINTENANCE_CONFIG_MAP=vdo-repo-maintenance
VELERO_IMAGE="docker.io/velero/velero:$VELERO_VERSION"
PAUSE_IMAGE=vdo.local/pause:1
BUSYBOX_IMAGE=vdo.local/busybox:1
# CSI on the real node (csi.sh): our hostpath driver under the upstream sidecars.
CSI_DRIVER=hostpath.csi.vdo.local
CSI_DIR="$NODE_DIR/csi"
CSI_SOCKET="$CSI_DIR/csi.sock"
CSI_DATA_DIR="$CSI_DIR/data"
CSI_TOPOLOGY_KEY=topology.hostpath.csi.vdo.local/node
CSI_STORAGE_CLASS=vdo-csi
CSI_SNAPSHOT_CLASS=vdo-csi

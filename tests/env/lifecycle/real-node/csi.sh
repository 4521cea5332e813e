#!/usr/bin/env bash
# CSI on the real node, the data mover's path (node-up.sh calls `csi.sh up` once the kubelet is
# Ready): the VolumeSnapshot CRDs, the upstream snapshot controller, our hostpath driver (which
# registers itself with the kubelet), the upstream csi-provisioner and csi-snapshotter beside it,
# and the objects users make for it: a CSIDriver, StorageClass vdo-csi and VolumeSnapshotClass
# vdo-csi labelled for Velero. Each runs as a process beside the control plane, as
# local-path-provisioner does; the driver's data sits under the node's folder.
#
# Usage: csi.sh up | start COMPONENT | stop COMPONENT
#   COMPONENT: snapshot-controller, driver, provisioner, snapshotter (tests stop and start one
#   to make the failure its absence causes). node-down.sh stops them all.
source "$(dirname "${BASH_SOURCE[0]}")/../../lib/common.sh"
source "$ENV_DIR/lifecycle/real-node/node-common.sh"

SIDECARS=$(tool_dir csi_sidecars "$(csi_sidecars_version)")
DRIVER=$(tool_dir csi_hostpath "$(csi_hostpath_version)")/bin/vdo-csi-hostpath
for b in "$SIDECARS/bin/snapshot-controller" "$SIDECARS/bin/csi-provisioner" "$SIDECARS/bin/csi-snapshotter" "$DRIVER"; do
  [[ -x "$b" ]] || die "missing $b: run 'make tools' first"
done

# Every component's command; its process group is pids/csi-<component>.pid.
command_of() { # component
  case $1 in
    snapshot-controller) echo "$SIDECARS/bin/snapshot-controller --kubeconfig=$KUBECONFIG --leader-election=false --v=2" ;;
    driver) echo "$DRIVER --driver-name=$CSI_DRIVER --endpoint=$CSI_SOCKET --plugins-registry=$NODE_KUBELET_DIR/plugins_registry --root=$CSI_DATA_DIR --node-id=$NODE_NAME --topology-key=$CSI_TOPOLOGY_KEY" ;;
    provisioner) echo "$SIDECARS/bin/csi-provisioner --csi-address=$CSI_SOCKET --kubeconfig=$KUBECONFIG --leader-election=false --extra-create-metadata --v=2" ;;
    snapshotter) echo "$SIDECARS/bin/csi-snapshotter --csi-address=$CSI_SOCKET --kubeconfig=$KUBECONFIG --leader-election=false --extra-create-metadata --v=2" ;;
    *) die "csi.sh: unknown component '$1' (snapshot-controller, driver, provisioner, snapshotter)" ;;
  esac
}

csi_start() { # component
  local cmd
  cmd=$(command_of "$1")
  # shellcheck disable=SC2086 # the command's words, none with spaces (all our own paths)
  start_group "csi-$1" "$VDO_ENV_DIR/logs/csi-$1.log" $cmd
}

csi_stop() { # component
  local f="$VDO_ENV_DIR/pids/csi-$1.pid" left
  command_of "$1" >/dev/null
  [[ -f "$f" ]] || return 0
  if ! left=$(stop_group "$(cat "$f")" 10); then
    die "csi.sh: csi-$1 outlived SIGKILL: $left"
  fi
  rm -f "$f"
}

csi_objects() {
  kubectl apply -f "$SIDECARS/crd/" >/dev/null
  kubectl wait --for=condition=Established --timeout=60s \
    crd/volumesnapshots.snapshot.storage.k8s.io crd/volumesnapshotcontents.snapshot.storage.k8s.io \
    crd/volumesnapshotclasses.snapshot.storage.k8s.io >/dev/null
  # allowedTopologies keeps every pod of a vdo-csi claim on the real node: the scheduler leaves
  # out nodes without the topology label the kubelet sets from the driver's NodeGetInfo (kwok's).
  kubectl apply -f - >/dev/null <<YAML
apiVersion: storage.k8s.io/v1
kind: CSIDriver
metadata: {name: $CSI_DRIVER}
spec:
  attachRequired: false
  podInfoOnMount: false
  fsGroupPolicy: None
  volumeLifecycleModes: [Persistent]
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: $CSI_STORAGE_CLASS}
provisioner: $CSI_DRIVER
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Delete
allowedTopologies:
- matchLabelExpressions:
  - {key: $CSI_TOPOLOGY_KEY, values: [$NODE_NAME]}
---
apiVersion: snapshot.storage.k8s.io/v1
kind: VolumeSnapshotClass
metadata:
  name: $CSI_SNAPSHOT_CLASS
  labels: {velero.io/csi-volumesnapshot-class: "true"}
driver: $CSI_DRIVER
deletionPolicy: Delete
YAML
}

# The kubelet lists a registered driver in its CSINode.
driver_registered() {
  kubectl get csinode "$NODE_NAME" -o jsonpath='{.spec.drivers[*].name}' 2>/dev/null | grep -qw "$CSI_DRIVER"
}

csi_up() {
  local start c
  start=$(date +%s)
  mkdir -p "$CSI_DATA_DIR"
  csi_objects
  for c in snapshot-controller driver provisioner snapshotter; do csi_start "$c"; done
  wait_for "CSI driver $CSI_DRIVER registered on $NODE_NAME (its CSINode)" 60 driver_registered
  log "csi: $CSI_DRIVER registered on $NODE_NAME, snapshot controller and sidecars running in $(($(date +%s) - start))s"
}

case ${1:-} in
  up) csi_up ;;
  start) csi_start "${2:?component}" ;;
  stop) csi_stop "${2:?component}" ;;
  *) die "usage: csi.sh up | start COMPONENT | stop COMPONENT" ;;
esac

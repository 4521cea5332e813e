#!/usr/bin/env bash
# Stops the real node node-up.sh started and removes everything it made: the kubelet, the
# provisioner, CSI's processes (the snapshot controller, our driver and its sidecars), every container and its shim, containerd, the mounts under the node's folder,
# the pods' network namespaces, the bridge, our DNAT chain and our cgroups. Then checks that
# none of them is left, and fails naming what is. env-down.sh calls it first, while the API
# server still answers; it also runs on its own, on whatever part of a node is there.
source "$(dirname "${BASH_SOURCE[0]}")/../../lib/common.sh"
source "$ENV_DIR/lifecycle/real-node/node-common.sh"

RUNTIME_DIR=$(tool_dir node_runtime "$(node_runtime_version)")
CTR=("$RUNTIME_DIR/bin/ctr" --address "$NODE_SOCKET" -n k8s.io)

stop_named_group() { # name grace
  local f="$VDO_ENV_DIR/pids/$1.pid" pid still
  [[ -f "$f" ]] || return 0
  pid=$(cat "$f")
  if ! still=$(stop_group "$pid" "$2"); then
    log "node-down: $1 outlived SIGKILL: $still"
    return 1
  fi
  rm -f "$f"
}

# Processes of the node that are not in a group we started: containerd's shims (they make
# groups of their own so that they outlive a containerd restart), named by the node's paths,
# and every process in the node's cgroups (the containers, even once their shim is gone).
node_processes() {
  local p cmd
  {
    for p in /proc/[0-9]*; do
      cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
      [[ "$cmd" == *"$NODE_SOCKET"* || "$cmd" == *"$NODE_DIR/"* ]] && echo "${p#/proc/}"
    done
    find /sys/fs/cgroup/*/"$NODE_CGROUP" -name cgroup.procs -exec cat {} + 2>/dev/null
  } | sort -un | while read -r p; do pid_live "$p"; done
}

# The network namespace path of each pod sandbox containerd holds.
sandbox_netns() {
  local id
  [[ -S "$NODE_SOCKET" ]] || return 0
  for id in $("${CTR[@]}" containers ls -q 2>/dev/null); do
    "${CTR[@]}" containers info "$id" 2>/dev/null | python3 -c '
import json, sys
for ns in json.load(sys.stdin).get("Spec", {}).get("linux", {}).get("namespaces", []):
    if ns.get("type") == "network" and ns.get("path", "").startswith("/var/run/netns/"):
        print(ns["path"])' || true
  done | sort -u
}

[[ -d "$NODE_DIR" ]] || exit 0
log "node-down: stopping the real node $NODE_NAME"
failed=0
# CSI first (csi.sh): the driver's registration socket goes with it, so the kubelet drops it.
for c in snapshotter provisioner driver snapshot-controller; do stop_named_group "csi-$c" 10 || failed=1; done
stop_named_group node-local-path 5 || failed=1
stop_named_group node-kubelet 10 || failed=1
netns=$(sandbox_netns)
# Every container's task, then containerd itself.
if [[ -S "$NODE_SOCKET" ]]; then
  for id in $("${CTR[@]}" tasks ls -q 2>/dev/null); do
    "${CTR[@]}" tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
  done
  for _ in $(seq 1 50); do
    [[ -z "$("${CTR[@]}" tasks ls -q 2>/dev/null | head -c1)" ]] && break
    "${CTR[@]}" tasks ls -q 2>/dev/null | xargs -r -n1 "${CTR[@]}" tasks delete >/dev/null 2>&1 || true
    sleep 0.2
  done
fi
stop_named_group node-containerd 10 || failed=1
# Shims and containers left (a task containerd could not stop): KILL, by the node's paths.
for pid in $(node_processes | awk '{print $1}'); do kill -KILL "$pid" 2>/dev/null || true; done
for _ in $(seq 1 50); do [[ -z "$(node_processes)" ]] && break; sleep 0.1; done

# Mounts under the node's folder, deepest first (volumes, tokens, rootfs, shm, the kubelet's
# own rshared bind mount of its folder).
mounts_under() { awk -v d="$NODE_DIR" '$5 == d || index($5, d "/") == 1 {print $5}' /proc/self/mountinfo | sort -r; }
for _ in 1 2 3; do
  for m in $(mounts_under); do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
done
for ns in $netns; do
  [[ -e "$ns" ]] || continue
  umount "$ns" 2>/dev/null || umount -l "$ns" 2>/dev/null || true
  rm -f "$ns"
done
ip link del "$NODE_BRIDGE" 2>/dev/null || true
if iptables -t nat -S "$NODE_CHAIN" >/dev/null 2>&1; then
  while iptables -t nat -D PREROUTING -i "$NODE_BRIDGE" -j "$NODE_CHAIN" 2>/dev/null; do :; done
  while iptables -t nat -D OUTPUT -j "$NODE_CHAIN" 2>/dev/null; do :; done
  iptables -t nat -F "$NODE_CHAIN" && iptables -t nat -X "$NODE_CHAIN"
fi
# Our cgroups, deepest first, in every hierarchy.
our_cgroups() { find /sys/fs/cgroup/*/"$NODE_CGROUP" -depth -type d 2>/dev/null; }
for _ in 1 2 3; do
  for c in $(our_cgroups); do rmdir "$c" 2>/dev/null || true; done
  [[ -z "$(our_cgroups)" ]] && break
  sleep 0.5
done
kubectl delete node "$NODE_NAME" --wait=false >/dev/null 2>&1 || true

# What is left, named.
left=""
add_left() { [[ -z "$2" ]] || left+=$'\n'"  $1:"$'\n'"$(sed 's/^/    /' <<<"$2")"; }
add_left "processes" "$(node_processes)"
add_left "mounts" "$(mounts_under)"
add_left "network namespaces" "$(for ns in $netns; do [[ -e "$ns" ]] && echo "$ns"; done)"
add_left "bridge" "$(ip -o link show "$NODE_BRIDGE" 2>/dev/null)"
add_left "iptables" "$(iptables -t nat -S 2>/dev/null | grep -- "$NODE_CHAIN")"
add_left "cgroups" "$(our_cgroups)"
[[ -z "$left" && $failed == 0 ]] || die "node-down: the real node left:$left"
rm -rf "$NODE_DIR"
log "node-down: the real node is gone (no process, mount, network namespace, bridge, iptables rule or cgroup of it left)"

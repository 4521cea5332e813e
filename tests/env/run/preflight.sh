#!/usr/bin/env bash
# What `make demo` and `make test` need of the machine, checked before anything builds: the
# real node (node-up.sh) mounts, makes a network namespace and a bridge, writes iptables rules
# and cgroups, so it runs as root. Failing here takes a second; failing in node-up comes after
# the tools built for half an hour on a new machine.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

problems=()
[[ $(id -u) == 0 ]] ||
  problems+=("not root: the real node needs root for its mounts, network namespace, bridge, iptables rules and cgroups (run as root, or in a root container with CAP_SYS_ADMIN)")
if [[ ! -f /sys/fs/cgroup/cgroup.controllers && ! -d /sys/fs/cgroup/memory ]]; then
  problems+=("no cgroups at /sys/fs/cgroup (v2's cgroup.controllers or v1's memory controller): the kubelet and containerd need them")
fi
command -v iptables >/dev/null || [[ $(id -u) == 0 ]] ||
  problems+=("no iptables: apt-get install iptables (as root; make tools installs it as root)")
for tool in go cargo python3 openssl curl; do
  command -v "$tool" >/dev/null || problems+=("no $tool on the PATH (README, For developers)")
done
if ((${#problems[@]} > 0)); then
  printf '%s\n' "${problems[@]/#/preflight: }" >&2
  die "preflight: this machine cannot run the local environment (README, For developers)"
fi
log "preflight: root, cgroups $([[ -f /sys/fs/cgroup/cgroup.controllers ]] && echo v2 || echo v1), the toolchains: fine"

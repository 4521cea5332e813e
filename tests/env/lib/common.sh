# Shared settings for the test-environment scripts. Sourced, not run.
set -euo pipefail

# tests/env, the root of every path below (its README maps the folders).
ENV_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPO_ROOT="$(cd "$ENV_DIR/../.." && pwd)"
# shellcheck source=../tools/versions.env
source "$ENV_DIR/tools/versions.env"

# Built tools live outside the repo so a fresh clone reuses them.
VDO_CACHE="${VDO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/velero-debug-operator}"
TOOLS_DIR="$VDO_CACHE/tools"
# Running-environment state (pids, logs, kubeconfig) also lives outside the repo.
VDO_ENV_DIR="${VDO_ENV_DIR:-$VDO_CACHE/env}"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

tool_dir() { # component version
  echo "$TOOLS_DIR/$1-$2"
}

# The Velero version the environment in $VDO_ENV_DIR was started with (its env.json); for one
# started before the version was recorded, the version in its CLI's tool folder
# (tools/velero-<version>/bin). Empty when there is none.
running_velero_version() {
  python3 - "$VDO_ENV_DIR/env.json" <<'PY' 2>/dev/null
import json, re, sys
velero = json.load(open(sys.argv[1]))["velero"]
found = re.search(r"/velero-(v[^/]+)/bin/", velero.get("cli", ""))
print(velero.get("version") or (found.group(1) if found else ""))
PY
}

# The pytools venv's key: its two pinned libraries and the interpreter it links to (a venv is
# tied to its Python's minor version).
pytools_version() {
  local py
  py=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])') || return
  echo "gcs$PYTOOLS_GOOGLE_CLOUD_STORAGE_VERSION-azblob$PYTOOLS_AZURE_STORAGE_BLOB_VERSION-moto$PYTOOLS_MOTO_VERSION-azid$PYTOOLS_AZURE_IDENTITY_VERSION-azmgmt$PYTOOLS_AZURE_MGMT_STORAGE_VERSION-py$py"
}

# The real node's runtime key: Debian's versions, the epoch dropped (a ':' in a folder name would
# split PATH).
node_runtime_version() {
  echo "containerd$CONTAINERD_VERSION-runc$RUNC_VERSION-cni$CNI_PLUGINS_VERSION-busybox${BUSYBOX_VERSION#*:}"
}

# The CSI sidecars' key: the releases of both modules and of the Kubernetes modules they build with.
csi_sidecars_version() {
  echo "snapshotter$CSI_SNAPSHOTTER_VERSION-provisioner$CSI_PROVISIONER_VERSION-k8s$CSI_KUBE_MODULES_VERSION"
}

# Our CSI driver's key: a hash of its sources, so an edit rebuilds it.
csi_hostpath_version() {
  cat "$ENV_DIR"/csi-driver/go.mod "$ENV_DIR"/csi-driver/go.sum "$ENV_DIR"/csi-driver/*.go | sha256sum | cut -c1-12
}

# A free loopback port, or the one asked for if it is free; a busy one is reported by number.
free_port() { # [wanted]
  python3 - "${1:-0}" <<'PY'
import socket, sys
want = int(sys.argv[1])
s = socket.socket()
try:
    s.bind(("127.0.0.1", want))
except OSError as e:
    sys.exit(f"port {want} on 127.0.0.1 is busy: {e}")
print(s.getsockname()[1])
PY
}

wait_for() { # description timeout-seconds command...
  local what=$1 timeout=$2 i
  shift 2
  for ((i = 0; i < timeout; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  die "timed out after ${timeout}s waiting for $what"
}

# Starts a command in its own process group (so env-down can stop it and its children at once)
# and records the group's pid.
start_group() { # name logfile command...
  local name=$1 logf=$2
  shift 2
  setsid "$@" >>"$logf" 2>&1 </dev/null &
  echo $! >"$VDO_ENV_DIR/pids/$name.pid"
}

# --- Stopping what a script started -----------------------------------------------------------
# A killed process stays a zombie until its parent reaps it. Our groups' leaders are orphans
# (their starting shell is gone), and on these machines PID 1 reaps orphans seconds late, so
# `kill -0` (which succeeds for a zombie) is no test of "stopped". A zombie runs nothing and
# holds no port or file: it counts as gone.

# "pid state command" of each process of group $1 that is not a zombie; nothing when none is.
group_live() { # pgid
  local stat line rest state pgrp pid
  for stat in /proc/[0-9]*/stat; do
    read -r line 2>/dev/null <"$stat" || continue
    rest=${line##*) } # fields after the command name, which may hold spaces and parentheses
    read -r state _ pgrp _ <<<"$rest"
    [[ "$pgrp" == "$1" && "$state" != Z ]] || continue
    pid=${stat#/proc/}
    pid=${pid%/stat}
    printf '%s %s %s\n' "$pid" "$state" "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-200)"
  done
}

# "pid state command" of process $1 when it is alive and not a zombie.
pid_live() { # pid
  local line rest state
  read -r line 2>/dev/null <"/proc/$1/stat" || return 0
  rest=${line##*) }
  read -r state _ <<<"$rest"
  [[ "$state" == Z ]] && return 0
  printf '%s %s %s\n' "$1" "$state" "$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | cut -c1-200)"
}

# Waits up to $2 seconds until group $1 has no live process; false if one is left.
group_wait_gone() { # pgid seconds
  local deadline=$((SECONDS + $2))
  while [[ -n "$(group_live "$1")" ]]; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

# Stops process group $1: TERM, up to $2 seconds for its own shutdown, then KILL and up to 10
# seconds for the kernel. Prints what is still live (pid, state, command) and fails if any is.
stop_group() { # pgid grace-seconds
  local pgid=$1 left
  [[ -n "$(group_live "$pgid")" ]] || return 0
  kill -TERM -- "-$pgid" 2>/dev/null || kill -TERM "$pgid" 2>/dev/null || true
  group_wait_gone "$pgid" "$2" && return 0
  kill -KILL -- "-$pgid" 2>/dev/null || true
  group_wait_gone "$pgid" 10 && return 0
  left=$(group_live "$pgid")
  printf '%s\n' "$left"
  return 1
}

#!/usr/bin/env bash
# Stops exactly what env-up.sh started, by the process ids it recorded, and checks that none of
# them is left. The last environment's logs are kept in $VDO_CACHE/last-env-logs.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

CLUSTER_NAME="${VDO_CLUSTER_NAME:-vdo}"
export KWOK_WORKDIR="$VDO_ENV_DIR/kwok"
KWOKCTL="$(tool_dir kwok "$KWOK_VERSION")/bin/kwokctl"

[[ -d "$VDO_ENV_DIR" ]] || { log "env-down: no environment in $VDO_ENV_DIR"; exit 0; }

# The real node first, while the API server still answers; node-down.sh names what it could not
# remove, and then the state folder is kept for a look, as for a process that outlives SIGKILL.
node_left=0
"$ENV_DIR/lifecycle/real-node/node-down.sh" || node_left=1

# Our own process groups (operator, Velero server, S3): TERM, the time each one's own shutdown
# needs, then KILL. What is still live after that is named, not just counted.
left=""
grace_of() { # name
  case "$1" in
    velero) echo 30 ;; # its controllers and plugin processes stop in turn
    *) echo 5 ;;
  esac
}
for f in "$VDO_ENV_DIR"/pids/*.pid; do
  [[ -e "$f" ]] || continue
  name=$(basename "$f" .pid)
  pid=$(cat "$f" 2>/dev/null) || continue
  [[ "$pid" =~ ^[0-9]+$ ]] || { log "env-down: $f holds no pid"; continue; }
  log "env-down: stopping $name (pid $pid)"
  if ! still=$(stop_group "$pid" "$(grace_of "$name")"); then
    left+=$'\n'"  $name (group $pid):"$'\n'"$(sed 's/^/    /' <<<"$still")"
  fi
done

# The cluster's processes, started by kwokctl, which records their pids in its workdir.
cluster_pids=$(cat "$KWOK_WORKDIR/clusters/$CLUSTER_NAME/pids/"*.pid 2>/dev/null || true)
if [[ -x "$KWOKCTL" && -d "$KWOK_WORKDIR/clusters/$CLUSTER_NAME" ]]; then
  log "env-down: deleting the kwok cluster '$CLUSTER_NAME'"
  "$KWOKCTL" delete cluster --name "$CLUSTER_NAME" >/dev/null 2>&1 || log "env-down: kwokctl delete failed; killing by pid"
fi
for pid in $cluster_pids; do
  [[ -n "$(pid_live "$pid")" ]] && kill -KILL "$pid" 2>/dev/null || true
done
for pid in $cluster_pids; do
  for _ in $(seq 1 100); do
    [[ -n "$(pid_live "$pid")" ]] || break
    sleep 0.1
  done
  still=$(pid_live "$pid")
  [[ -z "$still" ]] || left+=$'\n'"  cluster process: $still"
done
[[ -z "$left" ]] || die "env-down: processes still running after SIGKILL (pid state command):$left"
((node_left == 0)) || die "env-down: the real node was not removed whole (see node-down above); $VDO_ENV_DIR is kept"

rm -rf "$VDO_CACHE/last-env-logs"
mkdir -p "$VDO_CACHE/last-env-logs"
cp -r "$VDO_ENV_DIR/logs/." "$VDO_ENV_DIR/podlogs/." "$VDO_CACHE/last-env-logs/" 2>/dev/null || true
rm -rf "$VDO_ENV_DIR"
log "env-down: environment stopped; no process of it is left (logs: $VDO_CACHE/last-env-logs)"

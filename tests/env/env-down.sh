#!/usr/bin/env bash
# Stops exactly what env-up.sh started, by the process ids it recorded, and checks that none of
# them is left. The last environment's logs are kept in $VDO_CACHE/last-env-logs.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

CLUSTER_NAME="${VDO_CLUSTER_NAME:-vdo}"
export KWOK_WORKDIR="$VDO_ENV_DIR/kwok"
KWOKCTL="$(tool_dir kwok "$KWOK_VERSION")/bin/kwokctl"

[[ -d "$VDO_ENV_DIR" ]] || { log "env-down: no environment in $VDO_ENV_DIR"; exit 0; }

# Our own process groups (operator, Velero server, S3): TERM, then KILL what is left.
stop_group() { # pidfile
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 0
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    kill -0 -- "-$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL -- "-$pid" 2>/dev/null || true
}
for f in "$VDO_ENV_DIR"/pids/*.pid; do
  [[ -e "$f" ]] || continue
  log "env-down: stopping $(basename "$f" .pid) (pid $(cat "$f"))"
  stop_group "$f"
done

# The cluster's processes, started by kwokctl, which records their pids in its workdir.
cluster_pids=$(cat "$KWOK_WORKDIR/clusters/$CLUSTER_NAME/pids/"*.pid 2>/dev/null || true)
if [[ -x "$KWOKCTL" && -d "$KWOK_WORKDIR/clusters/$CLUSTER_NAME" ]]; then
  log "env-down: deleting the kwok cluster '$CLUSTER_NAME'"
  "$KWOKCTL" delete cluster --name "$CLUSTER_NAME" >/dev/null 2>&1 || log "env-down: kwokctl delete failed; killing by pid"
fi
for pid in $cluster_pids; do
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
done

left=""
for f in "$VDO_ENV_DIR"/pids/*.pid; do
  [[ -e "$f" ]] || continue
  pid=$(cat "$f")
  kill -0 -- "-$pid" 2>/dev/null && left+=" $pid"
done
for pid in $cluster_pids; do kill -0 "$pid" 2>/dev/null && left+=" $pid"; done
[[ -z "$left" ]] || die "env-down: processes still running:$left"

rm -rf "$VDO_CACHE/last-env-logs"
mkdir -p "$VDO_CACHE/last-env-logs"
cp -r "$VDO_ENV_DIR/logs/." "$VDO_ENV_DIR/podlogs/." "$VDO_CACHE/last-env-logs/" 2>/dev/null || true
rm -rf "$VDO_ENV_DIR"
log "env-down: environment stopped; no process of it is left (logs: $VDO_CACHE/last-env-logs)"

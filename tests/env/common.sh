# Shared settings for the test-environment scripts. Sourced, not run.
set -euo pipefail

ENV_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$ENV_DIR/../.." && pwd)"
# shellcheck source=versions.env
source "$ENV_DIR/versions.env"

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

#!/usr/bin/env bash
# The demo: for now it brings the local environment up and says how to use it.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
"$ENV_DIR/env-up.sh"
log "demo: the environment is up. The automatic-bundle demo arrives with the operator; stop it with 'make env-down'."

#!/usr/bin/env bash
# The helm built by `make tools`, with the given arguments.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
HELM="$(tool_dir helm "$HELM_VERSION$HELM_BUILD")/bin/helm"
[[ -x "$HELM" ]] || die "helm is not built: run 'make tools'"
cd "$REPO_ROOT" && exec "$HELM" "$@"

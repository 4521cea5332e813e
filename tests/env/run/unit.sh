#!/usr/bin/env bash
# `make unit`: the tests that need no server. The identity tests compare our token and signing
# requests with those of Google's and Microsoft's Python libraries, so the cached pytools venv
# is built first (at once when cached) and named in VDO_PYTOOLS.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

bash "$ENV_DIR/tools/tools.sh" pytools
python="$(tool_dir pytools "$(pytools_version)")/venv/bin/python"
VDO_PYTOOLS="$python" cargo test --workspace --exclude velero-debug-e2e

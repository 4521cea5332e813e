#!/usr/bin/env bash
# The GitHub workflows (.github/workflows) checked by the actionlint built by `make tools`
# (syntax, expressions, action inputs, runner labels; their shell too when shellcheck is on PATH).
source "$(dirname "${BASH_SOURCE[0]}")/../env/lib/common.sh"
ACTIONLINT="$(tool_dir actionlint "$ACTIONLINT_VERSION")/bin/actionlint"
[[ -x "$ACTIONLINT" ]] || die "actionlint is not built: run 'make tools'"
cd "$REPO_ROOT"
"$ACTIONLINT" .github/workflows/*.yml
log "actionlint: $(ls .github/workflows/*.yml | tr '\n' ' ')passed"

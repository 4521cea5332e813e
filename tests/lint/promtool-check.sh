#!/usr/bin/env bash
# The chart's alerting rules: `promtool check rules` (syntax, PromQL) and `promtool test rules`
# (tests/monitoring/alerts-test.yaml: each alert fires on its series and stays quiet on normal
# ones). Run by `make lint`.
source "$(dirname "${BASH_SOURCE[0]}")/../env/lib/common.sh"
PROMTOOL="$(tool_dir promtool "$PROMTOOL_VERSION$PROMTOOL_BUILD")/bin/promtool"
[[ -x "$PROMTOOL" ]] || die "promtool is not built: run 'make tools'"
rules="$REPO_ROOT/charts/velero-debug-operator/files/prometheus-rules.yaml"
log "promtool check rules: ${rules#"$REPO_ROOT/"}"
"$PROMTOOL" check rules "$rules" >/dev/null || die "promtool check rules failed"
log "promtool test rules: tests/monitoring/alerts-test.yaml"
(cd "$REPO_ROOT/tests/monitoring" && "$PROMTOOL" test rules alerts-test.yaml) ||
  die "promtool test rules failed"

# velero-debug-operator: the two commands a new machine needs are `make demo` and `make test`.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
ENV := tests/env
# KEEP_ENV=1 leaves the environment running after `make test` / `make e2e`.
KEEP_ENV ?= 0
# Cargo's build output lives outside the repo, like the built tools, so a fresh clone (CI)
# compiles only the workspace's own crates, not every dependency again. Unset it to use ./target.
VDO_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/velero-debug-operator
export CARGO_TARGET_DIR ?= $(VDO_CACHE)/cargo-target/dev

.PHONY: tools env-up env-down crd manifests lint unit image e2e fuzz chaos test demo bench

tools: ## build every component of the local environment (cached outside the repo)
	bash $(ENV)/tools/tools.sh

env-up: tools ## start the local environment (reuses a running one)
	bash $(ENV)/lifecycle/env-up.sh

env-down: ## stop everything env-up started
	bash $(ENV)/lifecycle/env-down.sh

crd: ## regenerate deploy/crd.yaml from the Rust types, then what the chart derives from it
	cargo run -q -p velero-debug-crd --bin crdgen > deploy/crd.yaml
	bash $(ENV)/packaging/render-manifests.sh

manifests: tools ## the chart's CRD copy and deploy/manifests.yaml, rendered from the chart
	bash $(ENV)/packaging/render-manifests.sh

lint: tools ## fmt, clippy, tests/lint (transcripts, settings, rule catalogue, chart README, links, layering, file sizes, the compatibility table), the chart checks, actionlint, the alerting rules (promtool), our Go (gofmt, vet)
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	# The settings check compares the built operator's --help with the chart and the docs.
	cargo build -q -p velero-debug-operator
	python3 -m unittest discover -s tests/lint -t tests/lint -q
	python3 tests/lint/layering.py
	python3 tests/lint/file_sizes.py
	python3 tests/lint/compatibility.py
	bash $(ENV)/tools/helm.sh lint --strict charts/velero-debug-operator
	bash $(ENV)/packaging/render-manifests.sh --check
	bash tests/lint/chart-check.sh --offline
	bash tests/lint/actionlint.sh
	bash tests/lint/krew-check.sh
	bash tests/lint/promtool-check.sh
	bash tests/lint/go-check.sh

unit: ## tests that need no server (the identity ones run Google's and Microsoft's Python libraries)
	bash $(ENV)/run/unit.sh

image: tools ## the operator's OCI image, without a container engine (target/image/)
	bash $(ENV)/packaging/image.sh

# E2E_FILTER=part-of-a-test-name runs only the matching tests (`make e2e E2E_FILTER=report::`).
# A run of the whole suite records its version pass (docs/compatibility.md's table).
e2e: tools image ## end-to-end tests on the real environment (started when none is up)
	KEEP_ENV=$(KEEP_ENV) bash $(ENV)/run/run-e2e.sh 2>&1 | tee $(VDO_CACHE)/e2e.log
	[[ -n "$(E2E_FILTER)" ]] || bash $(ENV)/run/version-pass.sh --record $(VDO_CACHE)/e2e.log

# The version pass (tests/env/run/version-pass.tsv) on another Velero: `make e2e-velero-1.16`
# (1.14, 1.15, 1.16, 1.17, 1.18, or a release such as v1.14.1); `make test` runs it on 1.14.
e2e-velero-%: tools ## the version pass on Velero % on a fresh environment; writes docs/compatibility/
	KEEP_ENV=$(KEEP_ENV) bash $(ENV)/run/version-pass.sh $*

fuzz: tools ## 500 generated DebugBundles and 3000 durations on the real environment (the suite: 60 and 300)
	E2E_ONLY_GENERATED=1 VDO_GENERATED_SPECS=$${VDO_GENERATED_SPECS:-500} VDO_GENERATED_DURATIONS=$${VDO_GENERATED_DURATIONS:-3000} KEEP_ENV=$(KEEP_ENV) bash $(ENV)/run/run-e2e.sh

chaos: tools ## the fault tests at full strength: 20 SIGKILLs of the leader, the store down 60 s (the suite: 3 and 20 s)
	E2E_ONLY_FAULTS=1 KEEP_ENV=$(KEEP_ENV) bash $(ENV)/run/run-e2e.sh

# prebuild: on a cold machine, cargo's builds run beside the tools' (tests/env/tools/prebuild.sh).
test: ## lint, unit, e2e and the version pass on Velero 1.14, after building the tools and cargo's builds side by side
	bash $(ENV)/run/preflight.sh
	bash $(ENV)/tools/prebuild.sh
	$(MAKE) lint unit e2e
	$(MAKE) e2e-velero-1.14

demo: ## the main job end to end on the local environment (checks the machine first)
	bash $(ENV)/run/preflight.sh
	$(MAKE) tools
	bash $(ENV)/run/demo.sh

bench: tools ## benchmarks on the local environment (figures go to BENCHMARKS.md)
	bash $(ENV)/run/bench.sh $(BENCH_ARGS)

#!/usr/bin/env bash
# Our Go (the environment's hostpath CSI driver, tests/env/csi-driver): gofmt and go vet, with
# the tools build's module and build caches.
source "$(dirname "${BASH_SOURCE[0]}")/../env/lib/common.sh"
export GOMODCACHE="$VDO_CACHE/go/mod" GOCACHE="$VDO_CACHE/go/build" GOFLAGS="-mod=mod -buildvcs=false"
cd "$ENV_DIR/csi-driver"
unformatted=$(gofmt -l .)
[[ -z "$unformatted" ]] || die "go-check: not gofmt'd: $unformatted"
go vet ./...

#!/usr/bin/env bash
# Builds every component of the local test environment from source, at the versions pinned in
# versions.env, into $VDO_CACHE/tools/<component>-<version>/bin. Idempotent: a component whose
# stamp exists is skipped, so only the first run (or a version bump) pays.
#
# Usage: tools.sh [component ...]   (default: all)
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

mkdir -p "$TOOLS_DIR/logs"
export GOMODCACHE="$VDO_CACHE/go/mod"
export GOCACHE="$VDO_CACHE/go/build"
export GOFLAGS="-mod=mod -buildvcs=false"
export CGO_ENABLED=0
export GOBIN=""

# Writes a wrapper module in $1 that requires $2@$3 and carries over the dependency's replace
# directives that point at other published modules. Replaces to local paths (Kubernetes'
# staging tree) are mapped to the published module at $4, when given.
wrapper_module() { # dir module version [staging-version]
  local dir=$1 mod=$2 ver=$3 staging=${4:-}
  rm -rf "$dir" && mkdir -p "$dir"
  (
    cd "$dir"
    go mod init vdo-tools/wrapper >/dev/null 2>&1
    local gomod
    gomod=$(go mod download -json "$mod@$ver" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
    go mod edit -json "$gomod" | STAGING="$staging" python3 -c '
import json, os, sys
staging = os.environ["STAGING"]
for r in json.load(sys.stdin).get("Replace") or []:
    old, new = r["Old"], r["New"]
    if new.get("Version"):
        print("-replace=%s=%s@%s" % (old["Path"], new["Path"], new["Version"]))
    elif staging and new["Path"].startswith("./staging/"):
        print("-replace=%s=%s@%s" % (old["Path"], old["Path"], staging))
' | xargs -r go mod edit
    go mod edit -require="$mod@$ver"
  )
}

# The module's own go.sum, into the wrapper's: hashes of its dependencies that the module's own
# checksum vouches for. Velero 1.16's kopia fork (a pseudo-version of
# github.com/project-velero/kopia) is not in the checksum database this machine reaches, so
# without them go refuses it ("verifying module: ... 404 Not Found").
seed_sums() { # dir module version
  local src
  src=$(go mod download -json "$2@$3" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  [[ ! -f "$src/go.sum" ]] || cat "$src/go.sum" >>"$1/go.sum"
}

build_etcd() { # out
  local w="$VDO_CACHE/wrappers/etcd-$ETCD_VERSION"
  wrapper_module "$w" go.etcd.io/etcd/server/v3 "$ETCD_VERSION"
  (cd "$w" && go get go.etcd.io/etcd/server/v3@"$ETCD_VERSION" &&
    go build -trimpath -ldflags "-s -w" -o "$1/bin/etcd" go.etcd.io/etcd/server/v3)
}

# Binaries of the Kubernetes tree, built from a wrapper module named $2 (one per component, so
# each is cached by itself; Go's build cache shares the packages they have in common).
build_kube_cmds() { # out wrapper-name cmd...
  local out=$1 w="$VDO_CACHE/wrappers/$2-$KUBERNETES_VERSION"
  shift 2
  local staging="v0.${KUBERNETES_VERSION#v1.}"
  wrapper_module "$w" k8s.io/kubernetes "$KUBERNETES_VERSION" "$staging"
  local major minor
  major=$(echo "${KUBERNETES_VERSION#v}" | cut -d. -f1)
  minor=$(echo "${KUBERNETES_VERSION#v}" | cut -d. -f2)
  local ld="-s -w -X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION"
  ld+=" -X k8s.io/component-base/version.gitMajor=$major -X k8s.io/component-base/version.gitMinor=$minor"
  ld+=" -X k8s.io/component-base/version.gitTreeState=clean"
  (
    cd "$w"
    local c
    for c in "$@"; do go get "k8s.io/kubernetes/cmd/$c@$KUBERNETES_VERSION"; done
    for c in "$@"; do
      log "  kubernetes: building $c"
      go build -trimpath -ldflags "$ld" -o "$out/bin/$c" "k8s.io/kubernetes/cmd/$c"
    done
  )
}

build_kubernetes() { # out
  build_kube_cmds "$1" kubernetes kube-apiserver kube-controller-manager kube-scheduler
}

# The real node's kubelet (node-up.sh), from the same release as the control plane.
build_kubelet() { # out
  build_kube_cmds "$1" kubelet kubelet
}

build_kwok() { # out
  local ld="-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION"
  GOBIN="$1/bin" go install -trimpath -ldflags "$ld" \
    "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION"
}

build_velero() { # out
  local w="$VDO_CACHE/wrappers/velero-$VELERO_VERSION"
  wrapper_module "$w" github.com/vmware-tanzu/velero "$VELERO_VERSION"
  seed_sums "$w" github.com/vmware-tanzu/velero "$VELERO_VERSION"
  local r
  for r in $VELERO_EXTRA_REPLACES; do (cd "$w" && go mod edit -replace="$r"); done
  local ld="-s -w -X github.com/vmware-tanzu/velero/pkg/buildinfo.Version=$VELERO_VERSION"
  (cd "$w" && go get "github.com/vmware-tanzu/velero/cmd/velero@$VELERO_VERSION" &&
    go build -trimpath -ldflags "$ld" -o "$1/bin/velero" github.com/vmware-tanzu/velero/cmd/velero)
}

# The two helpers Velero's image ships beside /velero: velero-restore-helper (the restore-wait
# init container a restored pod gets) and velero-helper (`pause`, which the real node's pause
# image runs). Built from Velero's module at the same version, so the real node's image is
# the Velero that the server runs.
build_velero_helpers() { # out
  local w="$VDO_CACHE/wrappers/velero-helpers-$VELERO_VERSION"
  wrapper_module "$w" github.com/vmware-tanzu/velero "$VELERO_VERSION"
  seed_sums "$w" github.com/vmware-tanzu/velero "$VELERO_VERSION"
  local r c
  for r in $VELERO_EXTRA_REPLACES; do (cd "$w" && go mod edit -replace="$r"); done
  (
    cd "$w"
    for c in velero-restore-helper velero-helper; do
      go get "github.com/vmware-tanzu/velero/cmd/$c@$VELERO_VERSION" &&
        go build -trimpath -ldflags "-s -w" -o "$1/bin/$c" "github.com/vmware-tanzu/velero/cmd/$c" || return
    done
  )
}

build_velero_aws_plugin() { # out
  GOBIN="$1/bin" go install -trimpath -ldflags "-s -w" \
    "github.com/vmware-tanzu/velero-plugin-for-aws/velero-plugin-for-aws@$VELERO_AWS_PLUGIN_VERSION"
}

# s3s-fs from its crates.io source with three changes, as real stores behave: writes into a
# missing bucket are refused with NoSuchBucket instead of creating it (s3s-fs-bucket-guard.py),
# ListMultipartUploads lists the open uploads instead of answering NotImplemented
# (s3s-fs-list-uploads.py; tests/env/tools/s3s-fs-check.sh checks it on the built binary), and the
# keys of roles assumed through moto's STS are accepted (s3s-fs-sts-keys.py).
build_s3s_fs() { # out
  local work="$VDO_CACHE/src/s3s-fs-$S3S_FS_VERSION$S3S_FS_BUILD"
  # Each step checked: a function called in `if !` runs without errexit.
  rm -rf "$work" && mkdir -p "$work/fetch/src" || return
  # An empty package depending on the exact version makes cargo download the crate's source.
  printf '[package]\nname = "fetch"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\ns3s-fs = "=%s"\n' \
    "$S3S_FS_VERSION" >"$work/fetch/Cargo.toml" || return
  touch "$work/fetch/src/lib.rs" || return
  cargo fetch --quiet --manifest-path "$work/fetch/Cargo.toml" || return
  local src
  src=$(cargo metadata --format-version 1 --manifest-path "$work/fetch/Cargo.toml" |
    python3 -c 'import json,sys; m=json.load(sys.stdin); print(next(p["manifest_path"] for p in m["packages"] if p["name"]=="s3s-fs"))') || return
  cp -r "$(dirname "$src")" "$work/s3s-fs" && chmod -R u+w "$work/s3s-fs" || return
  python3 "$ENV_DIR/tools/s3s-fs-bucket-guard.py" "$work/s3s-fs" || return
  python3 "$ENV_DIR/tools/s3s-fs-list-uploads.py" "$work/s3s-fs" || return
  python3 "$ENV_DIR/tools/s3s-fs-sts-keys.py" "$work/s3s-fs" || return
  CARGO_TARGET_DIR="$VDO_CACHE/cargo-target/s3s-fs" \
    cargo install --quiet --locked --root "$1" --features binary --path "$work/s3s-fs"
}

build_fake_gcs_server() { # out
  GOBIN="$1/bin" go install -trimpath -ldflags "-s -w" \
    "github.com/fsouza/fake-gcs-server@$FAKE_GCS_SERVER_VERSION"
}

# Its main package is in the module's subfolder of the same name, like the AWS plugin's.
build_velero_gcp_plugin() { # out
  GOBIN="$1/bin" go install -trimpath -ldflags "-s -w" \
    "github.com/vmware-tanzu/velero-plugin-for-gcp/velero-plugin-for-gcp@$VELERO_GCP_PLUGIN_VERSION"
}

# Azurite from npm into the tool folder; bin/azurite-blob starts the blob service alone.
# (Azurite 3.37 declares node >= 22 but runs on node 20; npm only warns.)
build_azurite() { # out
  npm install --prefix "$1" --no-audit --no-fund --no-update-notifier "azurite@$AZURITE_VERSION" || return
  [[ -x "$1/node_modules/.bin/azurite-blob" ]] || { echo "no azurite-blob in $1/node_modules/.bin" >&2; return 1; }
  ln -sf ../node_modules/.bin/azurite-blob "$1/bin/azurite-blob"
  "$1/bin/azurite-blob" --version
}

# NAV's mock-oauth2-server from Maven Central, with its dependencies: an OAuth2 server that
# answers Entra's token path (/<tenant>/oauth2/v2.0/token) with tokens whose claims are
# configured per request, which Azurite's OAuth mode accepts (it checks issuer, audience and
# lifetime, not the signature). bin/mock-oauth2-server runs it on the machine's Java.
build_entra_issuer() { # out
  mkdir -p "$1/build" || return
  cat >"$1/build/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>
  <groupId>vdo</groupId><artifactId>entra-issuer</artifactId><version>1</version>
  <dependencies><dependency><groupId>no.nav.security</groupId><artifactId>mock-oauth2-server</artifactId>
    <version>$MOCK_OAUTH2_SERVER_VERSION</version></dependency></dependencies>
</project>
POM
  (cd "$1/build" && mvn -q -B dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$1/lib") || return
  rm -rf "$1/build"
  printf '#!/bin/sh
exec java -cp "%s/lib/*" no.nav.security.mock.oauth2.StandaloneMockOAuth2ServerKt "$@"
' "$1" \
    >"$1/bin/mock-oauth2-server" && chmod +x "$1/bin/mock-oauth2-server"
}

# A Python venv with Google's and Azure's storage client libraries: env-up creates the Azure
# container with it, tests compare our signed URLs with the ones these libraries make. And
# moto's server, env-up's STS, and Microsoft's identity library.
build_pytools() { # out
  python3 -m venv "$1/venv" || return
  "$1/venv/bin/pip" install --quiet --disable-pip-version-check \
    "google-cloud-storage==$PYTOOLS_GOOGLE_CLOUD_STORAGE_VERSION" \
    "azure-storage-blob==$PYTOOLS_AZURE_STORAGE_BLOB_VERSION" \
    "moto[server]==$PYTOOLS_MOTO_VERSION" \
    "azure-identity==$PYTOOLS_AZURE_IDENTITY_VERSION" \
    "azure-mgmt-storage==$PYTOOLS_AZURE_MGMT_STORAGE_VERSION" || return
  "$1/venv/bin/pip" freeze --disable-pip-version-check >"$1/requirements.lock" || return
  # A script, not a link: Python finds its venv from the path it was started by.
  printf '#!/bin/sh\nexec "%s/venv/bin/python" "$@"\n' "$1" >"$1/bin/python" && chmod +x "$1/bin/python" || return
  "$1/bin/python" -c 'import google.cloud.storage, google.auth, azure.storage.blob, azure.identity, azure.mgmt.storage, moto.server'
}

build_helm() { # out
  local ld="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  # Helm's own release builds stamp the Kubernetes version `helm template` and `helm lint`
  # assume (that of its client-go); a plain `go install` leaves v1.20, below the chart's
  # kubeVersion constraint.
  local minor
  minor=$(go mod download -json "helm.sh/helm/v3@$HELM_VERSION" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])' |
    xargs grep -m1 'k8s.io/client-go ' | sed -E 's/.*v0\.([0-9]+)\..*/\1/')
  [[ "$minor" =~ ^[0-9]+$ ]] || { echo "no client-go version in helm's go.mod" >&2; return 1; }
  local pkg
  for pkg in chartutil lint/rules; do
    ld+=" -X helm.sh/helm/v3/pkg/$pkg.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/$pkg.k8sVersionMinor=$minor"
  done
  GOBIN="$1/bin" go install -trimpath -ldflags "$ld" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
}

build_crane() { # out
  GOBIN="$1/bin" go install -trimpath -ldflags "-s -w" \
    "github.com/google/go-containerregistry/cmd/crane@$CRANE_VERSION"
}

build_kubeconform() { # out
  GOBIN="$1/bin" go install -trimpath -ldflags "-s -w" \
    "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"
}

build_actionlint() { # out
  GOBIN="$1/bin" go install -trimpath -ldflags "-s -w" \
    "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION"
}

build_promtool() { # out
  GOBIN="$1/bin" go install -tags remove_all_sd -trimpath -ldflags "-s -w" \
    "github.com/prometheus/prometheus/cmd/promtool@$PROMTOOL_VERSION"
}

build_krew() { # out
  GOBIN="$1/bin" go install -trimpath -ldflags "-s -w" \
    "sigs.k8s.io/krew/cmd/krew@$KREW_VERSION" \
    "sigs.k8s.io/krew/cmd/validate-krew-manifest@$KREW_VERSION"
  # kubectl finds it as a plugin by this name (`kubectl krew`).
  mv "$1/bin/krew" "$1/bin/kubectl-krew"
}

build_bash_completion() { # out
  local deb
  deb="$(mktemp -d)"
  (cd "$deb" && apt-get download "bash-completion=$BASH_COMPLETION_VERSION")
  dpkg-deb -x "$deb"/bash-completion_*.deb "$1"
  rm -rf "$deb"
  [[ -f "$1/usr/share/bash-completion/bash_completion" ]]
}

build_tinyproxy() { # out
  local deb
  deb="$(mktemp -d)"
  (cd "$deb" && apt-get download "tinyproxy-bin=$TINYPROXY_VERSION")
  dpkg-deb -x "$deb"/tinyproxy-bin_*.deb "$deb/root"
  cp "$deb/root/usr/bin/tinyproxy" "$1/bin/tinyproxy"
  rm -rf "$deb"
  "$1/bin/tinyproxy" -v
}

# The real node's container runtime, from Debian's packages unpacked into the tool folder (not
# installed): containerd, runc, the CNI plugins, and busybox-static (the shell of the real
# node's workload and helper images). iptables is a system package (the node's DNAT rules),
# installed with apt-get when missing, as root, like chromium.
build_node_runtime() { # out
  if ! command -v iptables >/dev/null; then
    [[ $(id -u) == 0 ]] || die "iptables is missing: apt-get install iptables (as root)"
    apt-get install -y --no-install-recommends iptables || return
  fi
  local deb pkg
  deb="$(mktemp -d)"
  (cd "$deb" && apt-get download "containerd=$CONTAINERD_VERSION" "runc=$RUNC_VERSION" \
    "containernetworking-plugins=$CNI_PLUGINS_VERSION" "busybox-static=$BUSYBOX_VERSION") || return
  for pkg in "$deb"/*.deb; do dpkg-deb -x "$pkg" "$deb/root" || return; done
  cp "$deb/root/usr/bin/containerd" "$deb/root/usr/bin/containerd-shim-runc-v2" "$deb/root/usr/bin/ctr" \
    "$deb/root/usr/sbin/runc" "$deb/root/bin/busybox" "$1/bin/" || return
  mkdir -p "$1/cni" && cp "$deb/root/usr/lib/cni/"{bridge,host-local,loopback} "$1/cni/" || return
  rm -rf "$deb"
  "$1/bin/containerd" --version && "$1/bin/runc" --version && "$1/bin/busybox" true
}

# The real node's default StorageClass: Rancher's local-path-provisioner, run as a process
# beside the control plane (node-up.sh); its helper pods run on the real node.
build_local_path_provisioner() { # out
  GOBIN="$1/bin" go install -trimpath -ldflags "-s -w" \
    "github.com/rancher/local-path-provisioner@$LOCAL_PATH_PROVISIONER_VERSION"
}

# CSI's upstream parts (the data mover's path on the real node): the snapshot controller, the
# csi-snapshotter and csi-provisioner sidecars, from one wrapper module with `tool` lines. Their
# go.mod files replace every k8s.io staging module; the wrapper replaces them all with one
# release, and the snapshot client module with its published version (theirs is ./client).
build_csi_sidecars() { # out
  local w="$VDO_CACHE/wrappers/csi-sidecars-$(version_of csi_sidecars)" m mods
  rm -rf "$w" && mkdir -p "$w" && cd "$w" || return
  go mod init vdo-tools/csi-sidecars >/dev/null 2>&1
  mods=$(for m in "github.com/kubernetes-csi/external-snapshotter/v8@$CSI_SNAPSHOTTER_VERSION" \
    "github.com/kubernetes-csi/external-provisioner/v6@$CSI_PROVISIONER_VERSION"; do
    go mod edit -json "$(go mod download -json "$m" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')"
  done | python3 -c '
import json, sys
dec, text, seen = json.JSONDecoder(), sys.stdin.read(), set()
i = 0
while i < len(text):
    if text[i].isspace():
        i += 1
        continue
    doc, i = dec.raw_decode(text, i)
    for r in doc.get("Replace") or []:
        if r["Old"]["Path"].startswith("k8s.io/"):
            seen.add(r["Old"]["Path"])
print(" ".join(sorted(seen)))')
  for m in $mods k8s.io/kubernetes; do
    if [[ $m == k8s.io/kubernetes ]]; then
      go mod edit -replace="$m=$m@v1${CSI_KUBE_MODULES_VERSION#v0}"
    else
      go mod edit -replace="$m=$m@$CSI_KUBE_MODULES_VERSION"
    fi
  done
  go mod edit -replace="github.com/kubernetes-csi/external-snapshotter/client/v8=github.com/kubernetes-csi/external-snapshotter/client/v8@$CSI_SNAPSHOTTER_VERSION"
  go mod edit -require="github.com/kubernetes-csi/external-snapshotter/v8@$CSI_SNAPSHOTTER_VERSION" \
    -require="github.com/kubernetes-csi/external-provisioner/v6@$CSI_PROVISIONER_VERSION"
  go mod tidy >/dev/null 2>&1 || true
  for m in github.com/kubernetes-csi/external-snapshotter/v8/cmd/snapshot-controller \
    github.com/kubernetes-csi/external-snapshotter/v8/cmd/csi-snapshotter \
    github.com/kubernetes-csi/external-provisioner/v6/cmd/csi-provisioner; do
    go build -trimpath -ldflags "-s -w" -o "$1/bin/${m##*/}" "$m" || return
  done
  # The snapshot CRDs of the same release, as its deploy manifests install them.
  local client
  client=$(go mod download -json "github.com/kubernetes-csi/external-snapshotter/client/v8@$CSI_SNAPSHOTTER_VERSION" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  mkdir -p "$1/crd" && cp "$client"/config/crd/snapshot.storage.k8s.io_volumesnapshot*.yaml "$1/crd/"
  ls "$1/crd"
}

# Our hostpath CSI driver (tests/env/csi-driver), keyed by its sources' hash.
build_csi_hostpath() { # out
  cd "$ENV_DIR/csi-driver" && go build -trimpath -ldflags "-s -w" -o "$1/bin/vdo-csi-hostpath" .
}

# The report's browser test: Debian's chromium (a system package: installed with apt-get when
# missing, as root), and from npm playwright-core (drives it), axe-core (the accessibility
# check, run in the page) and vnu-jar (the W3C HTML validator, run with the machine's Java).
build_browser() { # out
  if ! command -v chromium >/dev/null; then
    [[ $(id -u) == 0 ]] || die "Debian's chromium is missing: apt-get install chromium (as root)"
    apt-get install -y --no-install-recommends chromium
  fi
  chromium --version
  command -v java >/dev/null || die "java (11 or later) is needed to run the HTML validator"
  cat >"$1/package.json" <<JSON
{"private": true, "dependencies": {"playwright-core": "$PLAYWRIGHT_CORE_VERSION",
 "axe-core": "$AXE_CORE_VERSION", "vnu-jar": "$VNU_JAR_VERSION"}}
JSON
  (cd "$1" && npm install --no-audit --no-fund --omit=dev)
  [[ -f "$1/node_modules/vnu-jar/build/dist/vnu.jar" ]]
}

# component -> version variable, in build order (what the environment needs first comes first)
COMPONENTS=(etcd kubernetes kwok velero velero_aws_plugin s3s_fs fake_gcs_server velero_gcp_plugin
  azurite entra_issuer pytools helm crane kubeconform actionlint promtool krew bash_completion tinyproxy browser
  kubelet velero_helpers node_runtime local_path_provisioner csi_sidecars csi_hostpath)
version_of() {
  case $1 in
    etcd) echo "$ETCD_VERSION" ;;
    kubernetes) echo "$KUBERNETES_VERSION" ;;
    kwok) echo "$KWOK_VERSION" ;;
    velero) echo "$VELERO_VERSION" ;;
    velero_aws_plugin) echo "$VELERO_AWS_PLUGIN_VERSION" ;;
    s3s_fs) echo "$S3S_FS_VERSION$S3S_FS_BUILD" ;;
    fake_gcs_server) echo "$FAKE_GCS_SERVER_VERSION" ;;
    velero_gcp_plugin) echo "$VELERO_GCP_PLUGIN_VERSION" ;;
    azurite) echo "$AZURITE_VERSION" ;;
    entra_issuer) echo "$MOCK_OAUTH2_SERVER_VERSION" ;;
    pytools) pytools_version ;;
    helm) echo "$HELM_VERSION$HELM_BUILD" ;;
    crane) echo "$CRANE_VERSION" ;;
    kubeconform) echo "$KUBECONFORM_VERSION" ;;
    actionlint) echo "$ACTIONLINT_VERSION" ;;
    promtool) echo "$PROMTOOL_VERSION$PROMTOOL_BUILD" ;;
    krew) echo "$KREW_VERSION" ;;
    bash_completion) echo "$BASH_COMPLETION_VERSION" ;;
    tinyproxy) echo "$TINYPROXY_VERSION" ;;
    kubelet) echo "$KUBERNETES_VERSION" ;;
    velero_helpers) echo "$VELERO_VERSION" ;;
    node_runtime) node_runtime_version ;;
    local_path_provisioner) echo "$LOCAL_PATH_PROVISIONER_VERSION" ;;
    csi_hostpath) csi_hostpath_version ;;
    csi_sidecars) csi_sidecars_version ;;
    browser) echo "playwright$PLAYWRIGHT_CORE_VERSION-axe$AXE_CORE_VERSION-vnu$VNU_JAR_VERSION" ;;
    *) die "unknown component $1 (known: ${COMPONENTS[*]})" ;;
  esac
}

build_component() {
  local c=$1 v out logf start
  v=$(version_of "$c")
  out=$(tool_dir "$c" "$v")
  if [[ -f "$out/.built" ]]; then
    log "tools: $c $v cached ($out)"
    return 0
  fi
  logf="$TOOLS_DIR/logs/$c-$v.log"
  log "tools: building $c $v (log: $logf)"
  start=$(date +%s)
  rm -rf "$out" && mkdir -p "$out/bin"
  if ! "build_$c" "$out" >"$logf" 2>&1; then
    tail -n 20 "$logf" >&2
    die "tools: building $c $v failed; full log: $logf"
  fi
  touch "$out/.built"
  log "tools: built $c $v in $(($(date +%s) - start))s"
}

total_start=$(date +%s)
for c in "${@:-${COMPONENTS[@]}}"; do
  build_component "$c"
done
log "tools: all requested components ready in $(($(date +%s) - total_start))s ($TOOLS_DIR)"

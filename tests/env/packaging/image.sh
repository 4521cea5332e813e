#!/usr/bin/env bash
# `make image`: the operator's OCI image, built without a container engine.
#
# The layer holds the release binary, exactly the shared libraries `ldd` says it loads, the CA
# certificates, a passwd/group entry for the non-root user 65532, nsswitch.conf, /tmp and the
# /spool mount point; crane (built by tools.sh) turns it into an image through a registry it serves on
# loopback for the length of this script, sets the config (entrypoint, user, env, port,
# platform, OCI labels) and writes:
#   target/image/oci/                        an OCI image layout (skopeo oci:, crane push)
#   target/image/velero-debug-operator.tar   a tarball that `docker load` and `crane push` take
#   target/image/digest                      the manifest's digest
# Settings: IMAGE_VERSION (default: the workspace version), IMAGE_REVISION (default: git HEAD),
# IMAGE_SOURCE (the repository URL in the labels), SOURCE_DATE_EPOCH (file times; default:
# the HEAD commit's time, so one commit gives one image).
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
cd "$REPO_ROOT"

crane="$(tool_dir crane "$CRANE_VERSION")/bin/crane"
[[ -x "$crane" ]] || die "crane is not built: run 'make tools'"
version="${IMAGE_VERSION:-$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)}"
revision="${IMAGE_REVISION:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}"
source_url="${IMAGE_SOURCE:-https://github.com/velero-debug-operator/velero-debug-operator}"
# Not exported before the build: aws-lc-sys reruns its build script when SOURCE_DATE_EPOCH
# changes, so a new commit would rebuild the whole crypto stack.
file_time="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}"
case "$(uname -m)" in
  x86_64) arch=amd64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) die "no image for $(uname -m)" ;;
esac

# The release build keeps its own target folder outside the clone, so a fresh clone (CI) pays
# for it once per machine; cargo rebuilds what changed.
release_target="${IMAGE_CARGO_TARGET_DIR:-$VDO_CACHE/cargo-target/image}"
log "image: building the operator (release; first build takes minutes)"
start=$(date +%s)
# velero_debug_build_info's revision label (metrics/mod.rs).
VDO_GIT_REVISION=$(git -C "$REPO_ROOT" rev-parse HEAD 2>/dev/null || echo unknown)
export VDO_GIT_REVISION
# The last crate (the operator's own) compiles for minutes without a line: a line a minute
# says the build is still going.
(while sleep 60 </dev/null >/dev/null 2>&1; do log "image: still building ($(($(date +%s) - start))s)"; done) &
ticker=$!
CARGO_TARGET_DIR="$release_target" env -u SOURCE_DATE_EPOCH cargo build --release --locked -p velero-debug-operator 2>&1 |
  awk '/^ *Compiling/ { n++; if (n % 50 == 0) print "  ... " n " crates compiled"; next }
       /^ *(Finished|Blocking|Updating|Downloading|Downloaded|Locking|Adding)/ { next }
       { print }' >&2 || { kill "$ticker"; exit 1; }
kill "$ticker"
bin="$release_target/release/velero-debug-operator"
[[ -x "$bin" ]] || die "release build produced no $bin"
log "image: binary built in $(($(date +%s) - start))s"

out="$REPO_ROOT/target/image"
work=$(mktemp -d)
registry_pid=
cleanup() {
  [[ -n "$registry_pid" ]] && kill "$registry_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
root="$work/rootfs"
mkdir -p "$root/usr/local/bin" "$root/etc/ssl/certs" "$root/tmp" "$root/spool" "$root/home/nonroot"
cp "$bin" "$root/usr/local/bin/velero-debug-operator"
# Debug info stays out of the image (the release profile keeps line tables for backtraces).
strip --strip-debug "$root/usr/local/bin/velero-debug-operator"

# Exactly what the dynamic loader resolves: "name => /path (addr)" and the loader itself.
libs=$(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
[[ -n "$libs" ]] || die "ldd found no libraries for $bin (a static build needs none: drop this check)"
for lib in $libs; do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
bundle=/etc/ssl/certs/ca-certificates.crt
[[ -s "$bundle" ]] || die "no CA bundle at $bundle: install the ca-certificates package"
cp "$bundle" "$root$bundle"
# The kubelet mounts /etc/hosts and /etc/resolv.conf; without this file glibc asks DNS first
# and never reads /etc/hosts when DNS answers "no such name" (localhost, a hosts-file alias).
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$root/etc/nsswitch.conf"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$root/etc/group"

# The layer: sorted, fixed times, root-owned except the user's folders (no chown, so it also
# builds as a user that is not root).
SOURCE_DATE_EPOCH="$file_time" python3 - "$root" "$work/layer.tar" <<'PY'
import os, sys, tarfile
root, out = sys.argv[1], sys.argv[2]
epoch = int(os.environ["SOURCE_DATE_EPOCH"])
owned = {"spool", "home/nonroot"}
modes = {"tmp": 0o1777}
with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames) + sorted(filenames):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            info = tar.gettarinfo(path, rel)
            info.uid = info.gid = 65532 if rel in owned else 0
            info.uname = info.gname = ""
            info.mtime = epoch
            if info.isdir():
                info.mode = modes.get(rel, 0o755)
                tar.addfile(info)
            else:
                info.mode = 0o755 if os.access(path, os.X_OK) else 0o644
                with open(path, "rb") as f:
                    tar.addfile(info, f)
PY

port=$(free_port)
"$crane" registry serve --address "127.0.0.1:$port" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 1 50); do
  curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break
  sleep 0.1
done
repo="127.0.0.1:$port/velero-debug-operator"
"$crane" append --insecure --oci-empty-base -f "$work/layer.tar" -t "$repo:layer" >/dev/null
config=(
  --set-platform "linux/$arch" --entrypoint /usr/local/bin/velero-debug-operator
  -u 65532:65532 -w / -e SPOOL_DIR=/spool --exposed-ports 8080/tcp
  -l "org.opencontainers.image.title=velero-debug-operator"
  -l "org.opencontainers.image.source=$source_url"
  -l "org.opencontainers.image.version=$version"
  -l "org.opencontainers.image.revision=$revision"
  -l "org.opencontainers.image.licenses=Apache-2.0"
)
"$crane" mutate --insecure "$repo:layer" -t "$repo:$version" "${config[@]}" >/dev/null
"$crane" validate --insecure --remote "$repo:$version" >/dev/null
rm -rf "$out" && mkdir -p "$out"
"$crane" pull --insecure --format=oci "$repo:$version" "$out/oci"
# The same mutation once more, written as a tarball tagged with the plain name `docker load`
# should give it.
"$crane" mutate --insecure "$repo:layer" -t "velero-debug-operator:$version" \
  -o "$out/velero-debug-operator.tar" "${config[@]}" >/dev/null
"$crane" digest --insecure "$repo:$version" >"$out/digest"
log "image: velero-debug-operator:$version linux/$arch $(cat "$out/digest")"
log "image: $(du -sh "$out/velero-debug-operator.tar" | cut -f1) in $out (OCI layout oci/, tarball velero-debug-operator.tar)"

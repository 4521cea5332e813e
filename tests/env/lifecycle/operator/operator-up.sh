#!/usr/bin/env bash
# (Re)starts the operator built from the working tree as local processes against the running
# environment, after installing the CRD from deploy/. env-down stops them with the rest.
#   VDO_OPERATOR_REPLICAS=2   two processes (leader election decides which one works)
#   VDO_SKIP_BUILD=1          restart the binary already built
#   VDO_AS_SERVICE_ACCOUNT=1  authenticate as the chart's ServiceAccount (TokenRequest token;
#                             the chart's manifests must be applied: chart-install.sh)
#   VDO_OPERATOR_IMAGE=DIR    run the operator of the OCI image layout DIR (make image:
#                             target/image/oci) as a container would: its root filesystem
#                             unpacked and mounted read-only, its entrypoint, user and
#                             environment, a writable /spool, the ServiceAccount token in the
#                             in-cluster place; nothing of the host's (implies
#                             VDO_AS_SERVICE_ACCOUNT=1)
#   VDO_SKIP_CRD=1            leave the installed CRD as it is (the CRD upgrade test)
#   VDO_APPLY_CRD=true        the operator applies its own CRD at start (chart default)
#   VDO_OPERATOR_ONLY=i       (re)start process i alone, leaving the others running (the
#                             fault tests bring a killed replica back as a standby)
#   VDO_OPERATOR_API_SERVER=URL and VDO_OPERATOR_API_CA=FILE
#                             the processes started reach the API server at URL (a test's
#                             fault proxy in front of it), trusting the CA in FILE: each gets
#                             a copy of its kubeconfig, operator-i-kubeconfig (not with
#                             VDO_OPERATOR_IMAGE)
#   VDO_OPERATOR_NAMESPACE=NS the Velero namespace served (default velero): a second install
#                             in the same cluster (its Lease is in NS)
#   VDO_UPLOAD_BYTES_PER_SECOND, VDO_TARGET_WAIT_SECONDS, VDO_MAX_ATTEMPTS, VDO_BUNDLE_DEADLINE,
#   VDO_AWS_CONTAINER_CREDENTIALS_FULL_URI, VDO_AWS_WEB_IDENTITY_TOKEN_FILE,
#   VDO_AZURE_FEDERATED_TOKEN_FILE: operator settings
# Each process i has pids/operator-i.pid, logs/operator-i.log, and its /metrics port in
# operator-i.metrics-port; its Lease identity is operator-i.
source "$(dirname "${BASH_SOURCE[0]}")/../../lib/common.sh"
[[ -f "$VDO_ENV_DIR/env.json" ]] || die "no environment running: run 'make env-up'"
export KUBECONFIG="$VDO_ENV_DIR/kubeconfig"

if [[ "${VDO_SKIP_CRD:-0}" != 1 ]]; then
  kubectl apply --server-side --force-conflicts --field-manager=velero-debug-env \
    -f "$REPO_ROOT/deploy/crd.yaml" >/dev/null
fi
kubectl wait --for=condition=Established crd/debugbundles.velerodebug.io --timeout=60s >/dev/null

bin="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug/velero-debug-operator"
image="${VDO_OPERATOR_IMAGE:-}"
if [[ -n "$image" ]]; then
  [[ -f "$image/index.json" ]] || die "$image is no OCI image layout: run 'make image'"
  export VDO_AS_SERVICE_ACCOUNT=1
elif [[ "${VDO_SKIP_BUILD:-0}" != 1 || ! -x "$bin" ]]; then
  log "operator: building from the working tree"
  # The first build takes minutes: a progress line every 50 crates, errors in full.
  (cd "$REPO_ROOT" && cargo build -p velero-debug-operator 2>&1) |
    awk '/^ *Compiling/ { n++; if (n % 50 == 0) print "  ... " n " crates compiled"; next }
         /^ *(Finished|Blocking|Updating|Downloading|Downloaded|Locking|Adding)/ { next }
         { print }' >&2
fi

stop_operator() { # pidfile
  local pid left
  pid=$(cat "$1" 2>/dev/null) || return 0
  # The operator hands its lease over on TERM; a zombie counts as stopped (common.sh).
  left=$(stop_group "$pid" 10) || die "operator (group $pid) still running after SIGKILL: $left"
  rm -f "$1"
}
only="${VDO_OPERATOR_ONLY:-}"
if [[ -n "$only" ]]; then
  stop_operator "$VDO_ENV_DIR/pids/operator-$only.pid"
  rm -f "$VDO_ENV_DIR/operator-$only.metrics-port"
else
  for f in "$VDO_ENV_DIR"/pids/operator*.pid; do [[ -e "$f" ]] && stop_operator "$f"; done
  rm -f "$VDO_ENV_DIR"/operator-*.metrics-port
fi

operator_kubeconfig="$KUBECONFIG"
if [[ "${VDO_AS_SERVICE_ACCOUNT:-0}" == 1 ]]; then
  "$ENV_DIR/lifecycle/operator/sa-kubeconfig.sh" >/dev/null
  operator_kubeconfig="$VDO_ENV_DIR/operator-kubeconfig"
  log "operator: authenticating as system:serviceaccount:velero:velero-debug-operator"
fi

# The image's root filesystem and what a kubelet would give its container: the in-cluster
# ServiceAccount files and the API server's address in the environment.
if [[ -n "$image" ]]; then
  root="$VDO_ENV_DIR/image/rootfs"
  mkdir -p "$VDO_ENV_DIR/image"
  image_config=$(python3 "$ENV_DIR/lifecycle/operator/oci-unpack.py" "$image" "$root" "$VDO_ENV_DIR/image/config.json")
  entrypoint=$(jq -r '.Entrypoint[0]' <<<"$image_config")
  user=$(jq -r '.User' <<<"$image_config")
  mapfile -t image_env < <(jq -r '.Env[]?' <<<"$image_config")
  sa="$VDO_ENV_DIR/image/serviceaccount"
  mkdir -p "$sa"
  kubectl --kubeconfig "$operator_kubeconfig" config view --raw -o jsonpath='{.users[0].user.token}' >"$sa/token"
  kubectl --kubeconfig "$operator_kubeconfig" config view --raw \
    -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' | base64 -d >"$sa/ca.crt"
  printf velero >"$sa/namespace"
  server=$(kubectl --kubeconfig "$operator_kubeconfig" config view -o jsonpath='{.clusters[0].cluster.server}')
  api_host=$(sed -E 's#^https://([^:/]+):([0-9]+).*#\1#' <<<"$server")
  api_port=$(sed -E 's#^https://([^:/]+):([0-9]+).*#\2#' <<<"$server")
  # Mount points a runtime would make; the root is read-only once mounted.
  mkdir -p "$root/proc" "$root/dev" "$root/var/run/secrets/kubernetes.io/serviceaccount"
  touch "$root/etc/hosts" "$root/etc/resolv.conf"
  # What the kubelet writes for a pod: its own /etc/hosts, the node's resolver.
  printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$VDO_ENV_DIR/image/hosts"
  cp /etc/resolv.conf "$VDO_ENV_DIR/image/resolv.conf" 2>/dev/null || : >"$VDO_ENV_DIR/image/resolv.conf"
  mkdir -p "$VDO_ENV_DIR/image/spool" && chown "$user" "$VDO_ENV_DIR/image/spool"
fi

# The environment's GCS emulator, as the Velero server is given it: GCS clients (the
# operator's too) talk to it instead of storage.googleapis.com, without OAuth.
gcs_emulator=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("gcs", {}).get("endpoint", ""))' "$VDO_ENV_DIR/env.json")
# moto's STS, as the operator's environment would name a regional one: a BSL profile's role
# (role_arn with web_identity_token_file or source_profile) is assumed there.
sts_endpoint=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("sts", {}).get("endpoint", ""))' "$VDO_ENV_DIR/env.json")
# Azurite is no account's own endpoint: the operator sends it the account key's signatures
# only when told to trust its host (storage/transport/trust.rs), as a site would for Azure Stack.
# The Entra token issuer likewise (the test's activeDirectoryAuthorityURI).
azure_host=$(python3 -c 'import json,sys,urllib.parse
env = json.load(open(sys.argv[1]))
hosts = [urllib.parse.urlsplit(env.get(k, {}).get(u, "")).netloc for k, u in (("azure", "endpoint"), ("entra", "authority"))]
print(",".join(h for h in hosts if h))' "$VDO_ENV_DIR/env.json")

# The kubeconfig process $i runs with: the operator's, or a copy of it through
# VDO_OPERATOR_API_SERVER.
kubeconfig_of() { # i
  [[ -n "${VDO_OPERATOR_API_SERVER:-}" ]] || { echo "$operator_kubeconfig"; return; }
  local out="$VDO_ENV_DIR/operator-$1-kubeconfig" cluster
  cp "$operator_kubeconfig" "$out.tmp"
  cluster=$(kubectl --kubeconfig "$out.tmp" config view --minify -o jsonpath='{.clusters[0].name}')
  kubectl --kubeconfig "$out.tmp" config set-cluster "$cluster" --server="$VDO_OPERATOR_API_SERVER" \
    --certificate-authority="${VDO_OPERATOR_API_CA:?with VDO_OPERATOR_API_SERVER}" --embed-certs >/dev/null
  chmod 600 "$out.tmp" && mv "$out.tmp" "$out"
  echo "$out"
}

# Runs operator process $i: the working tree's binary, or the image's entrypoint in its root.
start_operator() { # i port
  local i=$1 port=$2
  # Short waits so the failure-path tests finish quickly; production defaults are longer.
  local settings=(
    RUST_LOG="${RUST_LOG:-info,velero_debug_operator=debug}"
    TARGET_WAIT_SECONDS="${VDO_TARGET_WAIT_SECONDS:-15}" MAX_ATTEMPTS="${VDO_MAX_ATTEMPTS:-3}"
    MAX_AUTO_BUNDLES_PER_NAMESPACE="${VDO_MAX_AUTO_BUNDLES:-200}"
    UPLOAD_BYTES_PER_SECOND="${VDO_UPLOAD_BYTES_PER_SECOND:-0}"
    APPLY_CRD="${VDO_APPLY_CRD:-false}"
    ORPHAN_SWEEP_INTERVAL="${VDO_ORPHAN_SWEEP_INTERVAL:-3s}" ORPHAN_GRACE="${VDO_ORPHAN_GRACE:-0s}"
    ARCHIVE_DELETE_LIMIT="${VDO_ARCHIVE_DELETE_LIMIT:-15s}"
    POD_NAME="operator-$i" METRICS_ADDR="127.0.0.1:$port"
  )
  [[ -n "${VDO_BUNDLE_DEADLINE:-}" ]] && settings+=(BUNDLE_DEADLINE="$VDO_BUNDLE_DEADLINE")
  [[ -n "$gcs_emulator" ]] && settings+=(STORAGE_EMULATOR_HOST="$gcs_emulator")
  [[ -n "$azure_host" ]] && settings+=(TRUSTED_STORAGE_HOSTS="$azure_host")
  [[ -n "$sts_endpoint" ]] && settings+=(AWS_ENDPOINT_URL_STS="$sts_endpoint")
  # The operator's own web identity token, as EKS's webhook names a pod's projected one (the
  # test of roles assumed with it); not always: without AWS_ROLE_ARN beside it, the AWS
  # default chain stops at it instead of trying the next source.
  [[ -n "${VDO_AWS_WEB_IDENTITY_TOKEN_FILE:-}" ]] &&
    settings+=(AWS_WEB_IDENTITY_TOKEN_FILE="$VDO_AWS_WEB_IDENTITY_TOKEN_FILE")
  # The operator's own federated token, as AKS's workload identity webhook names a pod's (the
  # test of Entra ID workload identity).
  [[ -n "${VDO_AZURE_FEDERATED_TOKEN_FILE:-}" ]] &&
    settings+=(AZURE_FEDERATED_TOKEN_FILE="$VDO_AZURE_FEDERATED_TOKEN_FILE")
  # Temporary credentials from a local endpoint, through the AWS default chain (the test of
  # URLs bounded by their credentials' expiry).
  [[ -n "${VDO_AWS_CONTAINER_CREDENTIALS_FULL_URI:-}" ]] &&
    settings+=(AWS_CONTAINER_CREDENTIALS_FULL_URI="$VDO_AWS_CONTAINER_CREDENTIALS_FULL_URI")
  if [[ -z "$image" ]]; then
    setsid env "${settings[@]}" KUBECONFIG="$(kubeconfig_of "$i")" \
      "$bin" --namespace "${VDO_OPERATOR_NAMESPACE:-velero}" --spool-dir "$VDO_ENV_DIR/spool" \
      >>"$VDO_ENV_DIR/logs/operator-$i.log" 2>&1 </dev/null &
    return
  fi
  # A mount namespace of its own: the root bound read-only, /spool writable, the token
  # read-only; then chroot as the image's user, and exec, so the pid is the operator's.
  # env -i: nothing of the host's environment reaches it.
  # shellcheck disable=SC2016
  setsid env -i "${image_env[@]}" "${settings[@]}" \
    KUBERNETES_SERVICE_HOST="$api_host" KUBERNETES_SERVICE_PORT="$api_port" \
    /usr/bin/unshare --mount --propagation private -- /bin/sh -c '
      set -e; root=$1 spool=$2 sa=$3 user=$4; shift 4
      PATH=/usr/sbin:/usr/bin:/sbin:/bin # not exported: the operator gets none
      mount --bind "$root" "$root"
      mount --bind "$spool" "$root/spool"
      mount --bind "$sa" "$root/var/run/secrets/kubernetes.io/serviceaccount"
      mount -o remount,bind,ro "$root/var/run/secrets/kubernetes.io/serviceaccount"
      mount --bind "${sa%/serviceaccount}/hosts" "$root/etc/hosts"
      mount --bind "${sa%/serviceaccount}/resolv.conf" "$root/etc/resolv.conf"
      mount -t proc proc "$root/proc"
      mount --rbind /dev "$root/dev"
      mount -o remount,bind,ro "$root"
      unset PWD OLDPWD
      exec /usr/sbin/chroot --userspec="$user" "$root" "$@"' \
    sh "$root" "$VDO_ENV_DIR/image/spool" "$sa" "$user" "$entrypoint" --namespace velero \
    >>"$VDO_ENV_DIR/logs/operator-$i.log" 2>&1 </dev/null &
}

mkdir -p "$VDO_ENV_DIR/spool"
replicas="${VDO_OPERATOR_REPLICAS:-1}"
indexes=$(seq 0 $((replicas - 1)))
[[ -n "$only" ]] && indexes=$only
for i in $indexes; do
  port=$(free_port)
  start_operator "$i" "$port"
  echo $! >"$VDO_ENV_DIR/pids/operator-$i.pid"
  echo "$port" >"$VDO_ENV_DIR/operator-$i.metrics-port"
  log "operator-$i: running (pid $!, metrics 127.0.0.1:$port, log $VDO_ENV_DIR/logs/operator-$i.log)"
done
# A replica brought back alone stands by; the others already lead or will. No replica: the
# chart's uninstall hook is tested with no operator to answer it.
[[ -n "$only" || "$replicas" == 0 ]] && exit 0
# Ready once one of them leads (the others stand by).
for _ in $(seq 1 300); do
  holder=$(kubectl -n "${VDO_OPERATOR_NAMESPACE:-velero}" get lease velero-debug-operator -o jsonpath='{.spec.holderIdentity}' 2>/dev/null || true)
  [[ "$holder" == operator-* ]] && [[ -n "$(pid_live "$(cat "$VDO_ENV_DIR/pids/$holder.pid" 2>/dev/null)")" ]] && break
  sleep 0.1
done
[[ "$holder" == operator-* ]] || die "no operator took the leader lease; see $VDO_ENV_DIR/logs/operator-0.log"
log "operator: $holder leads"

# The cloud identities the operator and Velero assume, each served by its vendor's emulator or a
# published server: AWS STS (moto), Entra ID's token endpoint (mock-oauth2-server) and a GCP
# service-account key. Sourced by env-up.sh.
# Sets: ENTRA_URL, ENTRA_TENANT, ENTRA_CLIENT, ENTRA_OBJECT, ENTRA_SECRET; GCS_CREDS_FILE;
# STS_URL, WEB_IDENTITY_TOKEN_FILE.

# Started early: the JVM takes longest to come up; entra_issuer_ready waits for it.
entra_issuer_start() {
  # Entra ID's token endpoint for one tenant and one service principal (random ids and secret):
  # NAV's mock-oauth2-server over HTTPS with the test CA, answering
  # /<tenant>/oauth2/v2.0/token. The principal's own secret, or the federated token of its
  # workload identity (a file the operator may be pointed at), gets a token as Entra issues one
  # for Blob storage (issuer sts.windows.net/<tenant>/, audience storage, its object and tenant
  # ids); any other secret or assertion gets one of the server's own issuer, which Azurite
  # refuses.
  ENTRA_PORT=$(free_port 0) || die "cannot listen for the Entra token issuer"
  ENTRA_URL="https://127.0.0.1:$ENTRA_PORT"
  ENTRA_TENANT=$(cat /proc/sys/kernel/random/uuid)
  ENTRA_CLIENT=$(cat /proc/sys/kernel/random/uuid)
  ENTRA_OBJECT=$(cat /proc/sys/kernel/random/uuid)
  ENTRA_SECRET=$(head -c 24 /dev/urandom | base64 -w0 | tr '+/' '-_')
  # The workload identity's federated token: a JWT naming the principal as issuer and subject (the
  # server parses a client assertion as its own client's; Entra checks a federated credential
  # instead), valid a week, HMAC-signed with a key nobody keeps.
  ENTRA_FEDERATED_TOKEN=$(CLIENT="$ENTRA_CLIENT" python3 -c '
import base64, hashlib, hmac, json, os, time, uuid
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
now, client = int(time.time()), os.environ["CLIENT"]
signed = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + b64(json.dumps(
    {"iss": client, "sub": client, "aud": "api://AzureADTokenExchange", "iat": now,
     "exp": now + 7 * 86400, "jti": str(uuid.uuid4())}).encode())
print(signed + "." + b64(hmac.new(os.urandom(32), signed.encode(), hashlib.sha256).digest()))')
  printf '%s' "$ENTRA_FEDERATED_TOKEN" >"$VDO_ENV_DIR/azure-federated-token"
  openssl pkcs12 -export -in "$TLS_DIR/server.crt" -inkey "$TLS_DIR/server.key" \
    -out "$TLS_DIR/server.p12" -passout pass:vdo-test 2>/dev/null
  cat >"$VDO_ENV_DIR/entra-issuer.json" <<JSON
{"interactiveLogin": false,
 "httpServer": {"type": "NettyWrapper", "ssl": {"keystoreFile": "$TLS_DIR/server.p12",
   "keystoreType": "PKCS12", "keystorePassword": "vdo-test", "keyPassword": "vdo-test"}},
 "tokenCallbacks": [{"issuerId": "$ENTRA_TENANT/oauth2/v2.0", "tokenExpiry": 3600,
   "requestMappings": [
     {"requestParam": "client_secret", "match": "$ENTRA_SECRET",
      "claims": {"iss": "https://sts.windows.net/$ENTRA_TENANT/", "aud": "https://storage.azure.com",
                 "sub": "$ENTRA_OBJECT", "oid": "$ENTRA_OBJECT", "tid": "$ENTRA_TENANT",
                 "appid": "$ENTRA_CLIENT"}},
     {"requestParam": "client_assertion", "match": "$ENTRA_FEDERATED_TOKEN",
      "claims": {"iss": "https://sts.windows.net/$ENTRA_TENANT/", "aud": "https://storage.azure.com",
                 "sub": "$ENTRA_OBJECT", "oid": "$ENTRA_OBJECT", "tid": "$ENTRA_TENANT",
                 "appid": "$ENTRA_CLIENT"}}]}]}
JSON
  start_group entra "$VDO_ENV_DIR/logs/entra-issuer.log" env SERVER_PORT="$ENTRA_PORT" \
    SERVER_HOSTNAME=127.0.0.1 JSON_CONFIG_PATH="$VDO_ENV_DIR/entra-issuer.json" "$ENTRA_ISSUER"
}

entra_issuer_ready() {
  wait_for "the Entra token issuer on $ENTRA_URL" 90 curl -sf --cacert "$TLS_DIR/ca.crt" -o /dev/null "$ENTRA_URL/isalive"
}

gcp_key_make() {
  # A GCP service-account key of our own: a fresh RSA key (PKCS#8); nothing checks it with Google.
  GCS_CREDS_FILE="$VDO_ENV_DIR/gcs-credentials.json"
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 2>/dev/null |
    python3 -c '
import json, os, sys
email = "vdo@test-project.iam.gserviceaccount.com"
json.dump({
    "type": "service_account",
    "project_id": "test-project",
    "private_key_id": os.urandom(20).hex(),
    "private_key": sys.stdin.read(),
    "client_email": email,
    "client_id": "1" + "".join(str(b % 10) for b in os.urandom(20)),
    "auth_uri": "https://accounts.google.com/o/oauth2/auth",
    "token_uri": "https://oauth2.googleapis.com/token",
    "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
    "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/" + email.replace("@", "%40"),
    "universe_domain": "googleapis.com",
}, open(sys.argv[1], "w"), indent=2)' "$GCS_CREDS_FILE"
  chmod 600 "$GCS_CREDS_FILE"
  grep -q 'BEGIN PRIVATE KEY' "$GCS_CREDS_FILE" || die "no PKCS#8 key in $GCS_CREDS_FILE"
}

sts_up() {
  # moto's server as AWS STS: AWS role profiles (role_arn with web_identity_token_file or
  # source_profile) are assumed through it by the operator and the Velero server alike, and
  # s3s-fs accepts the keys it hands out. It checks neither tokens nor trust policies; a test
  # turns its IAM checks on for a role that cannot be assumed. The web identity token is
  # JWT-shaped (audience sts.amazonaws.com, as EKS's) but signed by nobody: no one checks it.
  STS_PORT=$(free_port "${VDO_STS_PORT:-0}") || die "cannot listen for STS"
  STS_URL="http://127.0.0.1:$STS_PORT"
  start_group sts "$VDO_ENV_DIR/logs/moto.log" "$MOTO_SERVER" -H 127.0.0.1 -p "$STS_PORT"
  WEB_IDENTITY_TOKEN_FILE="$VDO_ENV_DIR/aws-web-identity-token"
  python3 - "$WEB_IDENTITY_TOKEN_FILE" <<'PY'
import base64, json, sys, time
part = lambda o: base64.urlsafe_b64encode(json.dumps(o).encode()).rstrip(b"=").decode()
claims = {"aud": ["sts.amazonaws.com"], "iss": "https://vdo.invalid", "exp": int(time.time()) + 7 * 86400,
          "sub": "system:serviceaccount:velero:velero-debug-operator"}
open(sys.argv[1], "w").write(part({"alg": "RS256", "kid": "vdo"}) + "." + part(claims) + ".unsigned")
PY
  wait_for "STS on $STS_URL" 60 curl -sf -o /dev/null "$STS_URL/moto-api/data.json"
  log "env-up: STS (moto) on $STS_URL"
}

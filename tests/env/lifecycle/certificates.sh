# The environment's test CA and the server certificate it signs (localhost, 127.0.0.1), used by
# Azurite, the Entra token issuer and S3 behind HTTPS. Sourced by env-up.sh.
# Sets: TLS_DIR (ca.crt, server.crt, server.key), CA_B64 (the CA, base64, for a BSL's caCert).

test_ca_make() {
  TLS_DIR="$VDO_ENV_DIR/tls"
  mkdir -p "$TLS_DIR"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=vdo-test-ca" \
    -keyout "$TLS_DIR/ca.key" -out "$TLS_DIR/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout "$TLS_DIR/server.key" -out "$TLS_DIR/server.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$TLS_DIR/san.ext"
  openssl x509 -req -in "$TLS_DIR/server.csr" -CA "$TLS_DIR/ca.crt" -CAkey "$TLS_DIR/ca.key" \
    -CAcreateserial -days 30 -extfile "$TLS_DIR/san.ext" -out "$TLS_DIR/server.crt" 2>/dev/null
  CA_B64=$(base64 -w0 <"$TLS_DIR/ca.crt")
}

#!/usr/bin/env bash
# Checks the edits made to s3s-fs (s3s-fs-bucket-guard.py, s3s-fs-list-uploads.py) on a built
# binary: starts it on a free loopback port over a temporary root folder with bucket `velero`,
# talks S3 to it (SigV4 signed by the Python standard library: no SDK or aws CLI needed), and
# stops it. The running environment is not touched.
#
# Usage: s3s-fs-check.sh [s3s-fs binary]   (default: the one tools.sh builds for versions.env)
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

BIN="${1:-$(tool_dir s3s_fs "$S3S_FS_VERSION$S3S_FS_BUILD")/bin/s3s-fs}"
[[ -x "$BIN" ]] || die "missing $BIN: run 'tests/env/tools/tools.sh s3s_fs' first"

ROOT=$(mktemp -d)
SERVER_PID=""
cleanup() {
  if [[ -n "$SERVER_PID" ]]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$ROOT"
}
trap cleanup EXIT

mkdir -p "$ROOT/store/velero"
PORT=$(free_port) || die "cannot listen"
"$BIN" --host 127.0.0.1 --port "$PORT" --access-key check-ak --secret-key check-sk "$ROOT/store" \
  >"$ROOT/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do
  curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break
  [[ -n "$(pid_live "$SERVER_PID")" ]] || { cat "$ROOT/server.log" >&2; die "s3s-fs exited"; }
  sleep 0.1
done
log "s3s-fs-check: $BIN on 127.0.0.1:$PORT, root $ROOT/store"

if ! python3 - "http://127.0.0.1:$PORT" "$ROOT/store" <<'PY'; then
import datetime, hashlib, hmac, http.client, os, sys, urllib.parse
import xml.etree.ElementTree as ET

URL, STORE = sys.argv[1], sys.argv[2]
HOST = urllib.parse.urlparse(URL).netloc
AK, SK, REGION = "check-ak", "check-sk", "us-east-1"
BUCKET = "velero"
q = lambda s: urllib.parse.quote(s, safe="-_.~")


def request(method, path, query=(), headers=None, body=b""):
    """A SigV4-signed request; returns (status, root element of the XML body or None)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    payload = hashlib.sha256(body).hexdigest()
    hdrs = {"host": HOST, "x-amz-date": amz_date, "x-amz-content-sha256": payload}
    hdrs.update({k.lower(): v for k, v in (headers or {}).items()})
    uri = urllib.parse.quote(path, safe="/-_.~")
    qs = "&".join(f"{q(k)}={q(v)}" for k, v in sorted(query))
    signed = ";".join(sorted(hdrs))
    canonical = "\n".join(
        [method, uri, qs, "".join(f"{k}:{hdrs[k].strip()}\n" for k in sorted(hdrs)), signed, payload]
    )
    scope = f"{day}/{REGION}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + SK).encode()
    for part in (day, REGION, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    hdrs["authorization"] = f"AWS4-HMAC-SHA256 Credential={AK}/{scope}, SignedHeaders={signed}, Signature={sig}"
    conn = http.client.HTTPConnection(HOST, timeout=10)
    conn.request(method, uri + ("?" + qs if qs else ""), body=body, headers=hdrs)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    root = ET.fromstring(data) if data.strip() else None
    if root is not None:  # drop namespaces: {ns}Tag -> Tag
        for el in root.iter():
            el.tag = el.tag.rpartition("}")[2]
    return resp.status, root


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        sys.exit(1)


def create(key, metadata=None):
    headers = {f"x-amz-meta-{k}": v for k, v in (metadata or {}).items()}
    status, root = request("POST", f"/{BUCKET}/{key}", [("uploads", "")], headers)
    assert status == 200, (status, root is not None and ET.tostring(root))
    return root.findtext("UploadId")


def list_uploads(bucket=BUCKET, **params):
    query = [("uploads", "")] + [(k.replace("_", "-"), str(v)) for k, v in params.items()]
    return request("GET", f"/{bucket}", query)


def listed(root):
    return [(u.findtext("Key"), u.findtext("UploadId")) for u in root.findall("Upload")]


def open_upload_files():
    return sorted(n for n in os.listdir(STORE) if n.startswith(".upload-") and n.endswith(".json"))


id_one = create("a/one", {"purpose": "check"})  # with user metadata
id_two = create("a/two")  # without
id_three = create("b/three")
# A completed upload is no longer listed.
id_done = create("c/done")
status, _ = request("PUT", f"/{BUCKET}/c/done", [("partNumber", "1"), ("uploadId", id_done)], body=b"part")
check(status == 200, "UploadPart c/done")
body = (
    "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>"
).encode()
status, _ = request("POST", f"/{BUCKET}/c/done", [("uploadId", id_done)], body=body)
check(status == 200, "CompleteMultipartUpload c/done")
print(f"     uploads: a/one {id_one} (metadata), a/two {id_two}, b/three {id_three}, c/done completed")

status, root = list_uploads(prefix="a/")
check(status == 200 and root.tag == "ListMultipartUploadsResult", f"ListMultipartUploads prefix a/: {status}")
a_sorted = sorted([("a/one", id_one), ("a/two", id_two)])
check(listed(root) == a_sorted, f"prefix a/ lists a/one and a/two: {listed(root)}")
check(root.findtext("IsTruncated") == "false", "not truncated")
check(root.findtext("Bucket") == BUCKET and root.findtext("Prefix") == "a/", "Bucket and Prefix echoed")
now = datetime.datetime.now(datetime.timezone.utc)
for u in root.findall("Upload"):
    initiated = datetime.datetime.fromisoformat(u.findtext("Initiated").replace("Z", "+00:00"))
    check(abs((now - initiated).total_seconds()) < 60, f"Initiated of {u.findtext('Key')} is now: {initiated}")

status, root = list_uploads(prefix="a/", max_uploads=1)
check(listed(root) == a_sorted[:1], f"max-uploads=1 lists the first: {listed(root)}")
check(root.findtext("IsTruncated") == "true", "max-uploads=1 is truncated")
check(
    (root.findtext("NextKeyMarker"), root.findtext("NextUploadIdMarker")) == a_sorted[0],
    f"NextKeyMarker/NextUploadIdMarker name the first: {root.findtext('NextKeyMarker')} {root.findtext('NextUploadIdMarker')}",
)
status, root = list_uploads(
    prefix="a/", max_uploads=1, key_marker=a_sorted[0][0], upload_id_marker=a_sorted[0][1]
)
check(listed(root) == a_sorted[1:], f"the next page (key-marker, upload-id-marker) lists the second: {listed(root)}")
check(root.findtext("IsTruncated") == "false" and root.find("NextKeyMarker") is None, "the last page is not truncated")
status, root = list_uploads(key_marker="a/one")
check(listed(root) == sorted([("a/two", id_two), ("b/three", id_three)]), f"key-marker a/one alone skips a/one: {listed(root)}")

status, _ = request("DELETE", f"/{BUCKET}/a/one", [("uploadId", id_one)])
check(status == 204, f"AbortMultipartUpload a/one: {status}")
status, root = list_uploads(prefix="a/")
check(listed(root) == [("a/two", id_two)], f"after the abort, prefix a/ lists a/two only: {listed(root)}")
status, root = list_uploads()
check(
    listed(root) == [("a/two", id_two), ("b/three", id_three)],
    f"no prefix lists a/two and b/three (not the aborted or completed): {listed(root)}",
)
leftovers = [n for n in os.listdir(STORE) if id_one in n or id_done in n]
check(leftovers == [], f"nothing of the aborted or completed upload left in the root: {leftovers}")

status, root = list_uploads(bucket="missing")
check(status == 404 and root.findtext("Code") == "NoSuchBucket", f"missing bucket: {status} {root.findtext('Code')}")
before = open_upload_files()
status, root = request("POST", "/missing/x", [("uploads", "")])
check(status == 404 and root.findtext("Code") == "NoSuchBucket", f"CreateMultipartUpload in a missing bucket: {status}")
check(open_upload_files() == before and not os.path.exists(os.path.join(STORE, "missing")), "and it left nothing behind")
check(len(before) == 2, f"one .upload-*.json per open upload: {before}")
PY
  tail -n 20 "$ROOT/server.log" >&2
  die "s3s-fs-check: FAILED"
fi
log "s3s-fs-check: all checks passed"

#!/usr/bin/env python3
"""Prints the V4 signed URL Google's own client library makes for a GET of one object at a
fixed time, so our signer can be compared with it byte for byte (fake-gcs-server checks no
signature). Run with the pytools venv's python (tools.sh pytools; env.json "pytools").

Usage: gcs-v4-sign.py SERVICE_ACCOUNT_JSON BUCKET OBJECT TIME EXPIRES_SECONDS [API_ACCESS_ENDPOINT]
  TIME: RFC 3339 (e.g. 2026-11-25T12:00:00Z); the URL's X-Goog-Date.
  API_ACCESS_ENDPOINT: scheme and host the URL points at (default https://storage.googleapis.com).
"""
import datetime
import sys

from google.cloud.storage import _signing
from google.cloud.storage.blob import _quote
from google.oauth2 import service_account


def main(argv):
    if len(argv) not in (6, 7):
        sys.exit(__doc__)
    key_file, bucket, obj, when, expires = argv[1:6]
    endpoint = argv[6] if len(argv) == 7 else _signing.DEFAULT_ENDPOINT
    t = datetime.datetime.fromisoformat(when.replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=datetime.timezone.utc)
    stamp = t.astimezone(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    credentials = service_account.Credentials.from_service_account_file(key_file)
    # The object name quoted as Blob.generate_signed_url quotes it ('/' and '~' kept).
    resource = f"/{bucket}/{_quote(obj, safe=b'/~')}"
    print(
        _signing.generate_signed_url_v4(
            credentials,
            resource=resource,
            expiration=int(expires),
            api_access_endpoint=endpoint,
            method="GET",
            _request_timestamp=stamp,
        )
    )


if __name__ == "__main__":
    main(sys.argv)

"""Makes Google's and Microsoft's own Python libraries send one token or signing request to a
recording listener, so that a unit test can compare it with ours (operator/src/storage/
*_identity_tests.rs). What each library then does with the answer does not matter; its
request is what is compared.

    identity-requests.py gce-token <metadata host:port> <scope>
    identity-requests.py sign-blob <iam root URL> <email> <token> <base64 message>
    identity-requests.py external-account <external_account JSON file> <scope>
"""
import base64
import json
import os
import sys


def gce_token(host, scope):
    os.environ["GCE_METADATA_HOST"] = host
    import google.auth.transport.requests
    from google.auth import compute_engine

    credentials = compute_engine.Credentials(scopes=[scope])
    credentials.refresh(google.auth.transport.requests.Request())


def sign_blob(iam_root, email, token, message):
    import google.auth.transport.requests
    import google.oauth2.credentials
    from google.auth import iam

    # The library's endpoint is Google's; the request is sent to the listener instead.
    iam._IAM_SIGN_ENDPOINT = (
        iam_root + "/v1/projects/-/serviceAccounts/{}:signBlob"
    )
    credentials = google.oauth2.credentials.Credentials(token)
    signer = iam.Signer(
        google.auth.transport.requests.Request(), credentials, email
    )
    signer.sign(base64.b64decode(message))


def external_account(path, scope):
    import google.auth.transport.requests
    from google.auth import identity_pool

    with open(path) as f:
        info = json.load(f)
    credentials = identity_pool.Credentials.from_info(info, scopes=[scope])
    credentials.refresh(google.auth.transport.requests.Request())


def main():
    kind, args = sys.argv[1], sys.argv[2:]
    {
        "gce-token": gce_token,
        "sign-blob": sign_blob,
        "external-account": external_account,
    }[kind](*args)


if __name__ == "__main__":
    main()

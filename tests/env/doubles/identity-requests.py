"""Makes Google's and Microsoft's own Python libraries send one token or signing request to a
recording listener, so that a unit test can compare it with ours (operator/src/storage/
*_identity_tests.rs). What each library then does with the answer does not matter; its
request is what is compared.

    identity-requests.py gce-token <metadata host:port> <scope>
    identity-requests.py sign-blob <iam root URL> <email> <token> <base64 message>
    identity-requests.py external-account <external_account JSON file> <scope>
    identity-requests.py google-file <credential JSON file> <scope>  (authorized_user, or
        impersonated_service_account with an authorized_user source; refreshed)
    identity-requests.py entra-secret <tenant> <client> <secret> <authority host>
    identity-requests.py entra-certificate <tenant> <client> <PEM file> <authority host> [password]
    identity-requests.py entra-user <tenant> <client> <username> <password> <authority host>
    identity-requests.py entra-federated <tenant> <client> <token file> <authority host>
    identity-requests.py entra-managed <client id, or - for the system-assigned identity>
    identity-requests.py arm-list-keys <subscription> <resource group> <account> <token>
        (prints the listKeys request azure-mgmt-storage handed its transport)
    identity-requests.py user-delegation-sas <JSON: account, container, blob, start, expiry,
        protocol, key>  (prints azure-storage-blob's SAS)

Before the kind, `--at <Unix seconds> --id <UUID>` pin the clock and the random UUIDs the
library reads (a certificate's assertion is stamped with both), so that a request can be
compared to the byte.

The entra-* kinds print, as JSON, the requests azure-identity handed its transport (a
capturing azure-core transport: they need no network).
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


def google_file(path, scope):
    import google.auth.transport.requests
    import google.oauth2.credentials
    from google.auth import impersonated_credentials

    with open(path) as f:
        info = json.load(f)
    # google-auth's own readers of these files; a refresh token always goes to Google's
    # token endpoint, moved here with the library's own with_token_uri to the file's (the
    # listener).
    user = lambda i, **kw: google.oauth2.credentials.Credentials.from_authorized_user_info(
        i, **kw
    ).with_token_uri(i["token_uri"])
    if info["type"] == "authorized_user":
        credentials = user(info, scopes=[scope])
    else:
        source = user(info["source_credentials"])
        url = info["service_account_impersonation_url"]
        credentials = impersonated_credentials.Credentials(
            source_credentials=source,
            target_principal=url.split("/serviceAccounts/")[1].split(":")[0],
            target_scopes=[scope],
            delegates=info.get("delegates"),
            iam_endpoint_override=url,
        )
    credentials.refresh(google.auth.transport.requests.Request())


CAPTURED = []


def capture_transport():
    """An azure-core transport that keeps each request and answers as Entra would."""
    import requests
    from azure.core.pipeline.transport import HttpTransport
    from azure.core.pipeline.transport._requests_basic import RequestsTransportResponse

    class Capture(HttpTransport):
        def __enter__(self):
            return self

        def __exit__(self, *args):
            pass

        def open(self):
            pass

        def close(self):
            pass

        def send(self, request, **kwargs):
            body = request.body or b""
            if isinstance(body, dict):
                body = requests.models.RequestEncodingMixin._encode_params(body)
            if isinstance(body, bytes):
                body = body.decode()
            CAPTURED.append({
                "method": request.method,
                "url": request.url,
                "headers": {k.lower(): v for k, v in request.headers.items()},
                "body": body,
            })
            answer = requests.Response()
            answer.status_code, answer.reason, answer.url = 200, "OK", request.url
            if "openid-configuration" in request.url:
                root = request.url.split("/v2.0/")[0]
                payload = {
                    "token_endpoint": root + "/oauth2/v2.0/token",
                    "authorization_endpoint": root + "/oauth2/v2.0/authorize",
                    "issuer": root + "/v2.0",
                }
            else:
                payload = {
                    "token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                    "expires_on": "4102444800", "resource": "https://storage.azure.com",
                    "access_token": "eyJ0eXAiOiJKV1QifQ.e30.recorded",
                }
            answer._content = json.dumps(payload).encode()
            answer.headers["Content-Type"] = "application/json"
            return RequestsTransportResponse(request, answer)

    return Capture()


def entra_secret(tenant, client, secret, authority):
    from azure.identity import ClientSecretCredential

    credential = ClientSecretCredential(
        tenant, client, secret, authority=authority, transport=capture_transport()
    )
    credential.get_token("https://storage.azure.com/.default")


def entra_certificate(tenant, client, pem_file, authority, password=None):
    from azure.identity import CertificateCredential

    credential = CertificateCredential(
        tenant, client, certificate_path=pem_file, password=password, authority=authority,
        transport=capture_transport(),
    )
    credential.get_token("https://storage.azure.com/.default")


def entra_user(tenant, client, username, password, authority):
    import warnings

    from azure.identity import UsernamePasswordCredential

    warnings.simplefilter("ignore")  # deprecated, as the flow is
    credential = UsernamePasswordCredential(
        client, username, password, tenant_id=tenant, authority=authority,
        transport=capture_transport(),
    )
    try:
        credential.get_token("https://storage.azure.com/.default")
    except Exception:
        pass  # it wants an id token from the answer too: the request is what counts


def entra_federated(tenant, client, token_file, authority):
    from azure.identity import WorkloadIdentityCredential

    credential = WorkloadIdentityCredential(
        tenant_id=tenant, client_id=client, token_file_path=token_file,
        authority=authority, transport=capture_transport(),
    )
    credential.get_token("https://storage.azure.com/.default")


def entra_managed(client):
    from azure.identity import ManagedIdentityCredential

    for name in ("IDENTITY_ENDPOINT", "MSI_ENDPOINT", "AZURE_FEDERATED_TOKEN_FILE"):
        os.environ.pop(name, None)
    kwargs = {} if client == "-" else {"client_id": client}
    credential = ManagedIdentityCredential(transport=capture_transport(), **kwargs)
    credential.get_token("https://storage.azure.com/.default")


def arm_list_keys(subscription, group, account, token):
    from azure.core.credentials import AccessToken
    from azure.mgmt.storage import StorageManagementClient

    class Fixed:
        def get_token(self, *scopes, **kwargs):
            return AccessToken(token, 4102444800)

    client = StorageManagementClient(Fixed(), subscription, transport=capture_transport())
    try:
        client.storage_accounts.list_keys(group, account, expand="kerb")
    except Exception:
        pass  # the answer is Entra's shape, not Resource Manager's: the request is what counts


def user_delegation_sas(spec):
    from datetime import datetime

    from azure.storage.blob import BlobSasPermissions, UserDelegationKey, generate_blob_sas

    spec = json.loads(spec)
    key = UserDelegationKey()
    for name, value in spec["key"].items():
        setattr(key, name, value)
    when = lambda t: datetime.fromisoformat(t.replace("Z", "+00:00"))
    print(generate_blob_sas(
        spec["account"], spec["container"], spec["blob"], user_delegation_key=key,
        permission=BlobSasPermissions(read=True), start=when(spec["start"]),
        expiry=when(spec["expiry"]), protocol=spec["protocol"],
    ))


def pin(at, id):
    """The clock at `at` (whole seconds, as an int: MSAL writes the float it gets) and every
    uuid4 `id`."""
    import time
    import uuid

    time.time = lambda: int(at)
    uuid.uuid4 = lambda: uuid.UUID(id)


def main():
    argv = sys.argv[1:]
    if argv[0] == "--at":
        pin(argv[1], argv[3])
        argv = argv[4:]
    kind, args = argv[0], argv[1:]
    {
        "gce-token": gce_token,
        "sign-blob": sign_blob,
        "external-account": external_account,
        "google-file": google_file,
        "entra-secret": entra_secret,
        "entra-federated": entra_federated,
        "entra-certificate": entra_certificate,
        "entra-user": entra_user,
        "entra-managed": entra_managed,
        "user-delegation-sas": user_delegation_sas,
        "arm-list-keys": arm_list_keys,
    }[kind](*args)
    if kind.startswith("entra-") or kind == "arm-list-keys":
        print(json.dumps(CAPTURED))


if __name__ == "__main__":
    main()

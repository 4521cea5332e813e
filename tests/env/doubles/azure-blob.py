"""Azure Blob operations for the e2e tests, made with Microsoft's own client (azure-storage-blob,
in the pytools venv) against Azurite: what the tests must do to the store without going through
the operator (lay Velero's files, check an archive is there or gone, leave an upload open).

Connection from the environment: VDO_AZURE_URL (account URL), VDO_AZURE_ACCOUNT, VDO_AZURE_KEY,
VDO_AZURE_CONTAINER, VDO_AZURE_CA (CA file of an https endpoint, optional).

  azure-blob.py put-tree PREFIX DIR          every file under DIR, as PREFIX/<relative path>
  azure-blob.py put KEY FILE [NAME=VALUE...] one blob, with metadata
  azure-blob.py exists KEY                   prints yes or no
  azure-blob.py stage KEY BLOCK              one uncommitted block named BLOCK on KEY (an open upload)
  azure-blob.py uncommitted KEY              how many uncommitted blocks KEY has (0 when it is gone)
  azure-blob.py metadata KEY                 the blob's metadata as JSON
  azure-blob.py timed-upload KEY FILE MIB N  FILE uploaded in MIB MiB blocks, N at once, each with
                                             its MD5 (as the operator does); prints the seconds
                                             it took, then deletes the blob (make bench's floor)
"""
import json
import os
import pathlib
import sys
import time

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobServiceClient


def container(**kwargs):
    ca = os.environ.get("VDO_AZURE_CA")
    if ca:
        kwargs["connection_verify"] = ca
    service = BlobServiceClient(
        account_url=os.environ["VDO_AZURE_URL"],
        credential={"account_name": os.environ["VDO_AZURE_ACCOUNT"],
                    "account_key": os.environ["VDO_AZURE_KEY"]},
        **kwargs,
    )
    return service.get_container_client(os.environ["VDO_AZURE_CONTAINER"])


def main(argv):
    c = container()
    command, args = argv[0], argv[1:]
    if command == "put-tree":
        prefix, root = args[0].rstrip("/"), pathlib.Path(args[1])
        count = 0
        for path in sorted(root.rglob("*")):
            if path.is_file():
                with open(path, "rb") as f:
                    c.upload_blob(f"{prefix}/{path.relative_to(root).as_posix()}", f, overwrite=True)
                count += 1
        print(count)
    elif command == "put":
        key, file = args[0], args[1]
        metadata = dict(a.split("=", 1) for a in args[2:])
        with open(file, "rb") as f:
            c.upload_blob(key, f, overwrite=True, metadata=metadata or None)
    elif command == "exists":
        print("yes" if c.get_blob_client(args[0]).exists() else "no")
    elif command == "stage":
        # The client base64-encodes the block id itself, as the REST API wants it.
        c.get_blob_client(args[0]).stage_block(args[1], b"an upload left open")
    elif command == "uncommitted":
        try:
            _, uncommitted = c.get_blob_client(args[0]).get_block_list("uncommitted")
        except ResourceNotFoundError:
            uncommitted = []
        print(len(uncommitted))
    elif command == "metadata":
        print(json.dumps(c.get_blob_client(args[0]).get_blob_properties().metadata))
    elif command == "timed-upload":
        key, file, mib, n = args[0], args[1], int(args[2]), int(args[3])
        c.close()
        c = container(max_block_size=mib << 20, max_single_put_size=4 << 20)
        started = time.monotonic()
        with open(file, "rb") as f:
            c.upload_blob(key, f, overwrite=True, max_concurrency=n, validate_content=True)
        print(f"{time.monotonic() - started:.3f}")
        c.delete_blob(key)
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main(sys.argv[1:])

#!/usr/bin/env python3
"""Makes s3s-fs refuse writes into a bucket that does not exist, as real stores do.

s3s-fs creates the folder of a missing bucket on the first PutObject or multipart upload, so a
BackupStorageLocation naming a bucket that was never made turns Available after a bundle writes
into it. S3 and MinIO answer NoSuchBucket (404); with this guard s3s-fs does too. Edits
src/s3.rs of the unpacked crate in place; fails when an anchor is not found exactly once, so a
version bump that moves the code is noticed, not silently unguarded.
"""
import sys
from pathlib import Path

GUARD = (
    "        if self.get_bucket_path(&{bucket})?.exists().not() {{\n"
    "            return Err(s3_error!(NoSuchBucket));\n"
    "        }}\n"
)

# (anchor, bucket expression): the guard goes right after the anchor's first line.
EDITS = [
    # put_object: before anything is written for the key.
    ("        let Some(body) = body else { return Err(s3_error!(IncompleteBody)) };\n", "bucket"),
    # create_multipart_upload: before the upload id and the object's attributes are saved (a
    # refused upload would otherwise leave its `.upload-{id}.json` behind).
    (
        "        let input = req.input;\n"
        "        let upload_id = self.create_upload_id(req.credentials.as_ref()).await?;\n",
        "input.bucket",
    ),
]


def main() -> None:
    path = Path(sys.argv[1]) / "src" / "s3.rs"
    text = path.read_text()
    for anchor, bucket in EDITS:
        count = text.count(anchor)
        if count != 1:
            sys.exit(f"{path}: anchor found {count} times, expected once:\n{anchor}")
        first, _, rest = anchor.partition("\n")
        text = text.replace(anchor, first + "\n" + GUARD.format(bucket=bucket) + rest)
    path.write_text(text)


if __name__ == "__main__":
    main()

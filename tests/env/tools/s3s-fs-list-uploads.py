#!/usr/bin/env python3
"""Makes s3s-fs list open multipart uploads (ListMultipartUploads), as S3 and MinIO do.

s3s-fs answers NotImplemented to ListMultipartUploads, so the operator's garbage collector cannot
find the uploads a crash left open there. This adds `list_multipart_uploads` to its `S3` impl.
No new state is needed: for every upload, create_multipart_upload writes `.upload-{id}.json`
(removed when the upload is completed or aborted) and, with or without user metadata, the
attributes file `.bucket-{b64url bucket}.object-{b64url key}.upload-{id}.metadata.json`
(removed on complete and abort too), both in the root folder. An upload is listed when both
exist; bucket and key come from the attributes file's name, `Initiated` from the upload file's
modification time. Uploads are sorted by (key, upload id); Prefix, KeyMarker, UploadIdMarker
and MaxUploads (1 to 1000, default 1000) are honoured, with IsTruncated and, when truncated,
NextKeyMarker/NextUploadIdMarker (the last upload listed); Delimiter is ignored (no
CommonPrefixes). A missing bucket is NoSuchBucket.

Edits src/s3.rs of the unpacked crate in place, after s3s-fs-bucket-guard.py; fails when an
anchor is not found exactly once, so a version bump that moves the code is noticed.
"""
import sys
from pathlib import Path

# What the listing relies on: create_multipart_upload saves the attributes file unconditionally.
# Checked, not edited: if this line moves (or gains a condition), the listing must be revisited.
REQUIRED = [
    "        self.save_object_attributes(&input.bucket, &input.key, &obj_attrs, Some(upload_id))\n",
]

LIST_UPLOADS = r"""
    #[tracing::instrument]
    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let input = req.input;
        if self.get_bucket_path(&input.bucket)?.exists().not() {
            return Err(s3_error!(NoSuchBucket));
        }
        let prefix = input.prefix.as_deref().unwrap_or("");
        let max_uploads = input.max_uploads.unwrap_or(1000).clamp(1, 1000);

        // An open upload: `.bucket-{b64 bucket}.object-{b64 key}.upload-{id}.metadata.json`
        // (always written by create_multipart_upload) and `.upload-{id}.json` (removed when the
        // upload is completed or aborted). URL-safe base64 has no '.', so the name splits cleanly.
        let decode = |s: &str| String::from_utf8(base64_simd::URL_SAFE_NO_PAD.decode_to_vec(s).ok()?).ok();
        let mut uploads: Vec<(String, String, Timestamp)> = Vec::new();
        let mut iter = try_!(fs::read_dir(&self.root).await);
        while let Some(entry) = try_!(iter.next_entry().await) {
            let file_name = entry.file_name();
            let Some(name) = file_name.to_str() else { continue };
            let Some(name) = name.strip_prefix(".bucket-").and_then(|n| n.strip_suffix(".metadata.json")) else {
                continue;
            };
            let Some((bucket, rest)) = name.split_once(".object-") else { continue };
            let Some((key, upload_id)) = rest.split_once(".upload-") else { continue };
            if decode(bucket).as_deref() != Some(input.bucket.as_str()) {
                continue;
            }
            let Some(key) = decode(key) else { continue };
            if key.starts_with(prefix).not() || Uuid::parse_str(upload_id).is_err() {
                continue;
            }
            let upload_path = self.resolve_abs_path(format!(".upload-{upload_id}.json"))?;
            let initiated = match fs::metadata(&upload_path).await {
                Ok(meta) => Timestamp::from(try_!(meta.modified())),
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue, // completed or aborted
                Err(e) => return Err(s3s::S3Error::internal_error(e)),
            };
            uploads.push((key, upload_id.to_owned(), initiated));
        }
        uploads.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));

        // After (KeyMarker, UploadIdMarker); a KeyMarker alone skips every upload of that key.
        if let Some(key_marker) = input.key_marker.as_deref() {
            let id_marker = input.upload_id_marker.as_deref();
            uploads.retain(|(key, id, _)| match id_marker {
                Some(id_marker) => (key.as_str(), id.as_str()) > (key_marker, id_marker),
                None => key.as_str() > key_marker,
            });
        }
        let max = usize::try_from(max_uploads).unwrap_or(1000);
        let is_truncated = uploads.len() > max;
        uploads.truncate(max);
        let (next_key_marker, next_upload_id_marker) = match uploads.last() {
            Some((key, id, _)) if is_truncated => (Some(key.clone()), Some(id.clone())),
            _ => (None, None),
        };

        let output = ListMultipartUploadsOutput {
            bucket: Some(input.bucket),
            prefix: input.prefix,
            key_marker: input.key_marker,
            upload_id_marker: input.upload_id_marker,
            max_uploads: Some(max_uploads),
            is_truncated: Some(is_truncated),
            next_key_marker,
            next_upload_id_marker,
            uploads: Some(
                uploads
                    .into_iter()
                    .map(|(key, upload_id, initiated)| MultipartUpload {
                        key: Some(key),
                        upload_id: Some(upload_id),
                        initiated: Some(initiated),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }
"""

# (anchor, text inserted right after it)
EDITS = [
    # The end of abort_multipart_upload, the last method of `impl S3 for FileSystem`.
    (
        "        Ok(S3Response::new(AbortMultipartUploadOutput { ..Default::default() }))\n"
        "    }\n",
        LIST_UPLOADS,
    ),
]


def main() -> None:
    path = Path(sys.argv[1]) / "src" / "s3.rs"
    text = path.read_text()
    for anchor in REQUIRED + [anchor for anchor, _ in EDITS]:
        count = text.count(anchor)
        if count != 1:
            sys.exit(f"{path}: anchor found {count} times, expected once:\n{anchor}")
    if "async fn list_multipart_uploads" in text:
        sys.exit(f"{path}: already has list_multipart_uploads (applied twice, or upstream has it now)")
    for anchor, insert in EDITS:
        text = text.replace(anchor, anchor + insert)
    path.write_text(text)


if __name__ == "__main__":
    main()

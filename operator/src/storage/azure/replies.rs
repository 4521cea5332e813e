//! What the Blob service answers, read within bounds: a listing page, the block ids of an
//! upload of ours read back from a block list, and the error document with what its code means.

use base64::Engine;

use crate::storage::{
    port::StorageError,
    port::StoredObject,
    transport::http::{self, Answer, Errors, Refusal},
};

/// Block ids of one blob must all have one length: the upload id and a six-digit index.
pub(in crate::storage) fn block_id(upload_id: &str, index: u64) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{upload_id}-{index:06}"))
}

pub(in crate::storage) fn first_block_upload_id(block_list: &str) -> Option<String> {
    let doc = roxmltree::Document::parse(block_list).ok()?;
    let name = doc.descendants().find(|n| n.has_tag_name("Name"))?.text()?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(name)
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, index) = decoded.rsplit_once('-')?;
    (index.len() == 6
        && index.bytes().all(|b| b.is_ascii_digit())
        && id.len() == 16
        && id.bytes().all(|b| b.is_ascii_hexdigit()))
    .then(|| id.to_string())
}

/// A listing or block list body, at most 16 MiB (a page of 1,000 blobs is far less).
pub(in crate::storage) async fn bounded_text(
    errors: &Errors,
    operation: &'static str,
    response: reqwest::Response,
) -> Result<String, StorageError> {
    let body = http::bounded_body(errors, operation, response, MAX_LISTING_BYTES).await?;
    String::from_utf8(body).map_err(|_| StorageError::Failed {
        location: errors.location.clone(),
        operation,
        message: "the answer is not UTF-8 text".into(),
    })
}

const MAX_LISTING_BYTES: usize = 16 << 20;

pub(in crate::storage) struct Listing {
    pub(in crate::storage) blobs: Vec<StoredObject>,
    pub(in crate::storage) next_marker: String,
}

/// `EnumerationResults`: each `Blob`'s `Name` and `Properties/Last-Modified` (RFC 1123),
/// and `NextMarker`.
pub(in crate::storage) fn read_listing(xml: &str) -> Result<Listing, String> {
    let doc =
        roxmltree::Document::parse(xml).map_err(|e| format!("the listing is not XML: {e}"))?;
    let child_text = |node: roxmltree::Node, name: &str| {
        node.children()
            .find(|c| c.has_tag_name(name))
            .and_then(|c| c.text())
            .map(str::to_string)
    };
    let blobs = doc
        .descendants()
        .filter(|n| n.has_tag_name("Blob"))
        .filter_map(|blob| {
            let key = child_text(blob, "Name")?;
            let written = blob
                .children()
                .find(|c| c.has_tag_name("Properties"))
                .and_then(|p| child_text(p, "Last-Modified"))
                .and_then(|t| jiff::fmt::rfc2822::parse(&t).ok())
                .map_or(0, |z| z.timestamp().as_second());
            Some(StoredObject { key, written })
        })
        .collect();
    let next_marker = doc
        .root_element()
        .children()
        .find(|c| c.has_tag_name("NextMarker"))
        .and_then(|c| c.text())
        .unwrap_or_default()
        .to_string();
    Ok(Listing { blobs, next_marker })
}

/// Azure's error document: `<Error><Code/><Message/></Error>`.
pub(in crate::storage) fn read_error(status: u16, body: &str) -> Answer {
    let doc = roxmltree::Document::parse(body.trim_start_matches('\u{feff}')).ok();
    let field = |name: &str| {
        doc.as_ref()
            .and_then(|d| d.descendants().find(|n| n.has_tag_name(name)))
            .and_then(|n| n.text())
            .map(|t| t.lines().next().unwrap_or_default().to_string())
            .unwrap_or_default()
    };
    Answer {
        status,
        code: field("Code"),
        message: field("Message"),
    }
}

pub(in crate::storage) fn refusal(code: &str) -> Refusal {
    match code {
        "AuthenticationFailed"
        | "AuthorizationFailure"
        | "AuthorizationPermissionMismatch"
        | "AuthorizationProtocolMismatch"
        | "AuthorizationResourceTypeMismatch"
        | "InvalidAuthenticationInfo"
        | "NoAuthenticationInformation"
        | "AccountIsDisabled" => Refusal::Credentials,
        "ContainerNotFound" | "ContainerBeingDeleted" => Refusal::BucketMissing,
        "BlobNotFound" => Refusal::NotFound,
        // Committing blocks that are no longer staged: the upload was aborted meanwhile.
        "InvalidBlockList" => Refusal::UploadGone,
        _ => Refusal::Other,
    }
}

#[cfg(test)]
#[path = "replies_tests.rs"]
mod tests;

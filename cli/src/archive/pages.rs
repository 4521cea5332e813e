//! Which files of an unpacked bundle a browser would open as pages, and whether each is one
//! the operator writes. A link in report.html, stretched over the page by CSS, opens its
//! target on the first click: so `report` opens a bundle only when every page in it passes
//! the strict reader (velero_debug_crd::report_page), read as a browser reads it (names of
//! elements and attributes whatever their case), and every link stays inside the bundle.

use std::{
    fs::File,
    io::{self, Read},
    path::{Path, PathBuf},
};

use velero_debug_crd::report_page::{
    MAX_REPORT_PAGE_BYTES, REPORT_HEAD_END, REPORT_HEAD_START, check_report_page,
};

/// Extensions a browser opens as a document that may run scripts, whatever the content.
const PAGE_EXTENSIONS: &[&str] = &[
    "htm", "html", "mht", "mhtml", "shtml", "svg", "svgz", "xht", "xhtml", "xml", "xsl", "xslt",
];

/// How far into a file a browser looks to tell markup from text.
const SNIFFED_BYTES: u64 = 1024;

#[derive(Debug, thiserror::Error)]
pub(crate) enum NotOpened {
    #[error("{} is not a page the operator writes ({why})", path.display())]
    NotOurs { path: PathBuf, why: String },
    #[error("reading {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
}

/// Ok when every page under `folder` is one the operator writes; else the first that is not.
pub(crate) fn every_page_ours(folder: &Path) -> Result<(), NotOpened> {
    let read_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| NotOpened::Read { path, source }
    };
    let mut folders = vec![folder.to_path_buf()];
    while let Some(dir) = folders.pop() {
        for entry in std::fs::read_dir(&dir).map_err(read_error(&dir))? {
            let path = entry.map_err(read_error(&dir))?.path();
            let kind = std::fs::symlink_metadata(&path)
                .map_err(read_error(&path))?
                .file_type();
            if kind.is_dir() {
                folders.push(path);
                continue;
            }
            let not_ours = |why: String| NotOpened::NotOurs {
                path: path.strip_prefix(folder).unwrap_or(&path).to_path_buf(),
                why,
            };
            // Unpacking writes no link; one here was put by someone else.
            if !kind.is_file() {
                return Err(not_ours("not a regular file".into()));
            }
            if let Some(page) = page_at(&path).map_err(read_error(&path))? {
                check_page(&page).map_err(not_ours)?;
            }
        }
    }
    Ok(())
}

/// The file at `path` when a browser would open it as a page (its extension, or markup first,
/// which browsers sniff in a file of unknown type), up to one byte past the bound of a page.
fn page_at(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let by_name = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| PAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
    let mut file = File::open(path)?;
    let mut head = Vec::new();
    (&mut file).take(SNIFFED_BYTES).read_to_end(&mut head)?;
    if !by_name && !starts_as_markup(&head) {
        return Ok(None);
    }
    let mut page = head;
    file.take(MAX_REPORT_PAGE_BYTES + 1 - page.len() as u64)
        .read_to_end(&mut page)?;
    Ok(Some(page))
}

/// True when the first thing in `head`, after a byte order mark and white space, is `<`.
fn starts_as_markup(head: &[u8]) -> bool {
    let text = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    text.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<')
}

/// Ok when `page` is one the operator writes, read as a browser reads it; else why not.
pub(crate) fn check_page(page: &[u8]) -> Result<(), String> {
    if page.len() as u64 > MAX_REPORT_PAGE_BYTES {
        return Err(format!("more than {MAX_REPORT_PAGE_BYTES} bytes"));
    }
    let page = names_lowercased(page);
    check_report_page(&page).map_err(|e| e.to_string())?;
    // It passed, so it is UTF-8 and every attribute is ` name="value"`.
    let page = String::from_utf8_lossy(&page);
    for (at, attribute) in page.match_indices(" href=\"") {
        let value = &page[at + attribute.len()..];
        link_stays_inside(&value[..value.find('"').unwrap_or(value.len())])?;
    }
    Ok(())
}

/// `page` with everything after its fixed head in lower case: HTML's names of elements and
/// attributes have no case (`HREF` is `href`), and the strict reader compares them as written.
/// The reader's checks of values do not depend on their case.
fn names_lowercased(page: &[u8]) -> Vec<u8> {
    let head_end = page
        .strip_prefix(REPORT_HEAD_START.as_bytes())
        .and_then(|rest| {
            let at = rest
                .windows(REPORT_HEAD_END.len())
                .position(|w| w == REPORT_HEAD_END.as_bytes())?;
            Some(REPORT_HEAD_START.len() + at + REPORT_HEAD_END.len())
        });
    let mut page = page.to_vec();
    if let Some(end) = head_end {
        page[end..].make_ascii_lowercase();
    }
    page
}

/// Ok for a link to a place in the page (`#...`) or to a file below the page's folder as the
/// operator writes it (`./` then letters, digits, `-_.~/` and `%XX`), with no `..` step,
/// percent-encoded or not.
fn link_stays_inside(href: &str) -> Result<(), String> {
    if href.starts_with('#') {
        return Ok(());
    }
    let refused = || Err(format!("a link out of the bundle: {href}"));
    let Some(path) = href.strip_prefix("./") else {
        return refused();
    };
    let written_by_operator = |b: u8| b.is_ascii_alphanumeric() || b"-_.~%/".contains(&b);
    if !path.bytes().all(written_by_operator) {
        return refused();
    }
    let decoded = percent_decoded(path);
    if decoded
        .split(|b| matches!(b, b'/' | b'\\'))
        .any(|step| step == b"..")
    {
        return refused();
    }
    Ok(())
}

fn percent_decoded(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
#[path = "pages_tests.rs"]
mod tests;

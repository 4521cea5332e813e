//! The shape of the report.html the operator writes into every bundle, shared by the operator
//! (which writes its head from these constants) and the plugin (which opens a report in a
//! browser only when it has this shape: a bundle someone sent is hostile input).
//!
//! The check reads the small subset of HTML the operator writes, strictly: the exact head, with
//! a Content-Security-Policy that forbids every script before anything else; then only
//! elements of [`ELEMENTS`], attributes `name="value"` (no event handlers, no script scheme in
//! a URL, links relative or to the page itself), text with `<` and `>` escaped, one stylesheet. Anything outside that
//! subset is refused, so what a browser would make of it never matters. Written here rather
//! than taken from an HTML parser: a parser accepts what this must refuse.

/// The document up to the stylesheet's hash in its policy (`sha256-<base64>`).
pub const REPORT_HEAD_START: &str = concat!(
    r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">"#,
    r#"<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'sha256-"#,
);

/// From after the hash to the start of the title's text.
pub const REPORT_HEAD_END: &str = concat!(
    r#"'; img-src 'none'; form-action 'none'; base-uri 'none'">"#,
    r#"<meta name="viewport" content="width=device-width, initial-scale=1"><title>"#,
);

/// The most bytes of a report the plugin reads (the operator writes at most 2 MiB).
pub const MAX_REPORT_PAGE_BYTES: u64 = 4 * 1024 * 1024;

/// The elements the report uses after its head's meta elements (HTML, then SVG's).
const ELEMENTS: &[&str] = &[
    "a", "b", "body", "code", "details", "div", "h1", "h2", "h3", "head", "header", "html", "li",
    "main", "ol", "p", "pre", "section", "span", "strong", "style", "summary", "title", "ul",
    "circle", "defs", "desc", "g", "line", "path", "pattern", "rect", "svg", "text",
];

/// Words refused anywhere after the head, whatever the case (in the operator's text they are
/// escaped: `&lt;script`).
const REFUSED_WORDS: &[&str] = &["<script", "<!--", "<meta"];

/// URL schemes refused in an attribute that holds a URL, whatever the case (elsewhere, as in
/// an `aria-label` naming an object, they are text).
const REFUSED_SCHEMES: &[&str] = &["javascript:", "vbscript:", "data:"];
const URL_ATTRIBUTES: &[&str] = &[
    "href",
    "src",
    "action",
    "formaction",
    "data",
    "poster",
    "background",
    "cite",
    "ping",
];

/// Why a page is not one the operator wrote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotOurReport(String);

fn refuse<T>(why: impl Into<String>) -> Result<T, NotOurReport> {
    Err(NotOurReport(why.into()))
}

/// Ok when `page` has the shape of a report the operator writes; else why not.
pub fn check_report_page(page: &[u8]) -> Result<(), NotOurReport> {
    let Ok(page) = std::str::from_utf8(page) else {
        return refuse("it is not UTF-8 text");
    };
    let Some(rest) = page.strip_prefix(REPORT_HEAD_START) else {
        return refuse(
            "its head is not the operator's (a Content-Security-Policy forbidding scripts, first)",
        );
    };
    let hash_len = rest.find('\'').unwrap_or(0);
    let hash = &rest[..hash_len];
    let base64 = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=');
    if hash.len() != 44 || !hash.chars().all(base64) {
        return refuse("its policy's stylesheet hash is not a SHA-256");
    }
    let Some(body) = rest[hash_len..].strip_prefix(REPORT_HEAD_END) else {
        return refuse("its head is not the operator's (the policy or viewport differ)");
    };
    let lower = body.to_ascii_lowercase();
    if let Some(word) = REFUSED_WORDS.iter().find(|w| lower.contains(**w)) {
        return refuse(format!("it holds `{word}`"));
    }
    Reader {
        rest: body,
        styles: 0,
    }
    .read_all()
}

/// The page after its head's fixed part, read tag by tag.
struct Reader<'a> {
    rest: &'a str,
    styles: usize,
}

impl<'a> Reader<'a> {
    fn read_all(mut self) -> Result<(), NotOurReport> {
        while let Some(at) = self.rest.find('<') {
            if self.rest[..at].contains('>') {
                return refuse("a `>` outside any tag");
            }
            self.rest = &self.rest[at + 1..];
            self.tag()?;
        }
        if self.rest.contains('>') {
            return refuse("a `>` outside any tag");
        }
        Ok(())
    }

    /// One tag, after its `<`.
    fn tag(&mut self) -> Result<(), NotOurReport> {
        let closing = self.rest.starts_with('/');
        if closing {
            self.rest = &self.rest[1..];
        }
        let name = self.take_while(|c| c.is_ascii_alphanumeric());
        if !ELEMENTS.contains(&name) {
            return refuse(format!("an element the operator does not write: <{name}>"));
        }
        if closing {
            return self.expect_end();
        }
        loop {
            self.take_while(|c| c == ' ');
            if self.rest.starts_with('>') || self.rest.starts_with("/>") {
                break;
            }
            self.attribute()?;
        }
        self.expect_end()?;
        if name == "style" {
            self.stylesheet()?;
        }
        Ok(())
    }

    /// `name` or `name="value"`.
    fn attribute(&mut self) -> Result<(), NotOurReport> {
        let name = self.take_while(|c| c.is_ascii_alphanumeric() || c == '-');
        if name.is_empty() {
            return refuse("a tag the operator does not write");
        }
        if name.to_ascii_lowercase().starts_with("on") {
            return refuse(format!("an event handler attribute `{name}`"));
        }
        let Some(after) = self.rest.strip_prefix("=\"") else {
            return Ok(());
        };
        let Some(end) = after.find('"') else {
            return refuse("an attribute value that does not end");
        };
        let value = &after[..end];
        let lower = value.to_ascii_lowercase();
        let url = URL_ATTRIBUTES.contains(&name.to_ascii_lowercase().as_str());
        if let Some(scheme) = REFUSED_SCHEMES.iter().find(|s| url && lower.contains(**s)) {
            return refuse(format!("`{scheme}` in attribute `{name}`"));
        }
        if value.contains(['<', '>']) {
            return refuse(format!("a raw `<` or `>` in attribute `{name}`"));
        }
        if name == "href" && !(value.starts_with("./") || value.starts_with('#')) {
            return refuse(format!("a link out of the bundle: {value}"));
        }
        self.rest = &after[end + 1..];
        Ok(())
    }

    /// The one stylesheet's text, up to its end tag.
    fn stylesheet(&mut self) -> Result<(), NotOurReport> {
        self.styles += 1;
        if self.styles > 1 {
            return refuse("more than one stylesheet");
        }
        let Some(end) = self.rest.find("</style>") else {
            return refuse("a stylesheet that does not end");
        };
        if self.rest[..end].contains('<') {
            return refuse("markup inside the stylesheet");
        }
        self.rest = &self.rest[end + "</style>".len()..];
        Ok(())
    }

    fn expect_end(&mut self) -> Result<(), NotOurReport> {
        let rest = self.rest.strip_prefix('/').unwrap_or(self.rest);
        match rest.strip_prefix('>') {
            Some(after) => {
                self.rest = after;
                Ok(())
            }
            None => refuse("a tag the operator does not write"),
        }
    }

    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> &'a str {
        let rest: &'a str = self.rest;
        let end = rest.find(|c: char| !keep(c)).unwrap_or(rest.len());
        let (taken, after) = rest.split_at(end);
        self.rest = after;
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(body: &str) -> String {
        format!(
            "{REPORT_HEAD_START}{}{REPORT_HEAD_END}t</title><style>p > a {{ color: red }}</style></head>{body}</html>\n",
            "A".repeat(43) + "="
        )
    }

    #[test]
    fn a_page_of_the_operator_s_shape_is_accepted() {
        let body = r##"<body><header><h1>Restore r: Failed</h1></header><main><p class="file"><a href="./logs/velero.log">velero.log</a> &lt;b&gt;</p><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><rect x="1" y="2" width="3" height="4"/><text text-anchor="end">a &amp; b</text></svg><details><summary>s</summary><a href="#f1">1</a></details><g aria-label="javascript:alert(1)"></g></main></body>"##;
        check_report_page(page(body).as_bytes()).unwrap();
    }

    #[test]
    fn scripts_handlers_and_foreign_links_are_refused_with_why() {
        let cases = [
            ("<body><script>alert(1)</script></body>", "<script"),
            ("<body><SCRIPT>alert(1)</SCRIPT></body>", "<script"),
            (r#"<body><p onclick="x()">a</p></body>"#, "event handler"),
            (
                r#"<body><p OnMouseOver="x()">a</p></body>"#,
                "event handler",
            ),
            (
                r#"<body><a href="https://evil.example/">a</a></body>"#,
                "link out",
            ),
            (
                r#"<body><a href="JavaScript:x()">a</a></body>"#,
                "javascript:",
            ),
            ("<body><iframe></iframe></body>", "<iframe>"),
            ("<body><img src=x></body>", "<img>"),
            (
                r#"<body><meta http-equiv="refresh" content="0;url=x"></body>"#,
                "<meta",
            ),
            ("<body><!-- x --></body>", "<!--"),
            (
                "<body><style>p{}</style></body>",
                "more than one stylesheet",
            ),
            (r#"<body><p title="a>b">a</p></body>"#, "raw `<` or `>`"),
            ("<body><p>a > b</p></body>", "outside any tag"),
            ("<body><p/onclick=x>a</p></body>", "does not write"),
        ];
        for (body, why) in cases {
            let e = check_report_page(page(body).as_bytes()).unwrap_err();
            assert!(e.to_string().contains(why), "{body}: {e}");
        }
    }

    #[test]
    fn a_page_without_the_operator_s_head_is_refused() {
        let e = check_report_page(b"<html><body>hello</body></html>").unwrap_err();
        assert!(e.to_string().contains("head"), "{e}");
        let weak = page("<body></body>").replace("default-src 'none'", "default-src *");
        assert!(check_report_page(weak.as_bytes()).is_err());
        let short = page("<body></body>").replace(&("A".repeat(43) + "="), "AAAA");
        let e = check_report_page(short.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("hash"), "{e}");
        assert!(check_report_page(b"\xff\xfe").is_err());
    }
}

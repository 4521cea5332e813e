//! Text into HTML: everything the report shows comes from the cluster, the bucket or a log,
//! so every string is escaped, attribute or text alike.

use std::fmt::Write;

/// `text` escaped for an HTML text node or a quoted attribute value.
pub(crate) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters are not allowed in HTML text; they show as U+FFFD.
            c if c.is_control() && !matches!(c, '\n' | '\t') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// A relative link to a bundle file: each path segment percent-encoded and empty, `.` and `..`
/// segments dropped, so a name shaped like a URL (`javascript:`, `//host`, `../..`) or holding
/// `?#%` stays a file of the bundle.
pub(crate) fn file_href(path: &str) -> String {
    let mut out = String::from("./");
    let segments = path
        .split('/')
        .filter(|s| !s.is_empty() && *s != "." && *s != "..");
    for (i, segment) in segments.enumerate() {
        if i > 0 {
            out.push('/');
        }
        for b in segment.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                out.push(b as char);
            } else {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_quotes_and_control_characters_are_escaped() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\"\u{1b}"),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;\u{fffd}"
        );
    }

    #[test]
    fn a_file_link_stays_relative_whatever_the_name() {
        assert_eq!(file_href("logs/velero.log"), "./logs/velero.log");
        assert_eq!(
            file_href("javascript:alert(1)"),
            "./javascript%3Aalert%281%29"
        );
        assert_eq!(file_href("a b/c?d#e"), "./a%20b/c%3Fd%23e");
        assert_eq!(file_href("//evil.example/x"), "./evil.example/x");
        assert_eq!(file_href("../../etc/passwd"), "./etc/passwd");
    }
}

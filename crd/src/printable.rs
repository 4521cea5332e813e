//! The one sanitiser for text from the cluster or a bucket (event messages, log lines, object
//! names, error messages) before it reaches a terminal or Markdown: summary.md, status fields
//! people read with kubectl, and everything the kubectl plugin prints for people.

use std::borrow::Cow;

/// `text` with every character a terminal or a Markdown viewer would act on, rather than show,
/// replaced by its visible escape (`\u{1b}`): C0 controls but line feed and tab, DEL, C1
/// controls, the bidi embeddings, overrides, isolates and marks, and the line and paragraph
/// separators. An escape, not U+FFFD and not nothing, so a reader still sees that something was
/// there and what it was (an ESC sequence from a log line reads as `\u{1b}[31m`) while no
/// terminal runs it and no reordering hides the text around it.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(acted_on) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if acted_on(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// True for a character a terminal or a text renderer acts on instead of showing.
fn acted_on(c: char) -> bool {
    match c {
        '\n' | '\t' => false,
        // C0 (carriage return included: it rewrites the line on a terminal), DEL, C1.
        '\0'..='\u{1f}' | '\u{7f}'..='\u{9f}' => true,
        // Arabic letter mark, left-to-right and right-to-left marks.
        '\u{061c}' | '\u{200e}' | '\u{200f}' => true,
        // Line and paragraph separators: a line break to some viewers only.
        '\u{2028}' | '\u{2029}' => true,
        // Bidi embeddings and overrides (LRE..RLO), then isolates (LRI..PDI).
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        let text = "Restore r1 PartiallyFailed: 3 errors\n\tsee logs/ — ünïcode 日本";
        assert!(matches!(printable(text), Cow::Borrowed(t) if t == text));
    }

    #[test]
    fn controls_are_shown_escaped() {
        assert_eq!(
            printable("\u{1b}[31mred\u{1b}[0m"),
            "\\u{1b}[31mred\\u{1b}[0m"
        );
        assert_eq!(printable("a\rb"), "a\\u{d}b");
        assert_eq!(printable("bell\u{7}\0"), "bell\\u{7}\\u{0}");
        assert_eq!(printable("del\u{7f}"), "del\\u{7f}");
        // C1: CSI (U+009B) starts an escape sequence on its own in some terminals.
        assert_eq!(printable("\u{9b}2J\u{80}\u{9f}"), "\\u{9b}2J\\u{80}\\u{9f}");
    }

    #[test]
    fn bidi_controls_and_separators_are_shown_escaped() {
        for c in ('\u{202a}'..='\u{202e}')
            .chain('\u{2066}'..='\u{2069}')
            .chain(['\u{061c}', '\u{200e}', '\u{200f}', '\u{2028}', '\u{2029}'])
        {
            let text = format!("ok{c}gpj.exe");
            let shown = printable(&text);
            assert!(!shown.contains(c), "{c:?} kept in {shown:?}");
            assert_eq!(shown, format!("ok{}gpj.exe", c.escape_unicode()));
        }
    }

    #[test]
    fn line_feed_and_tab_are_kept_and_neighbours_are_not() {
        assert_eq!(printable("a\nb\tc"), "a\nb\tc");
        // The characters next to the ranges are shown as they are.
        for c in [
            ' ', '~', '\u{a0}', '\u{202f}', '\u{2065}', '\u{206a}', '\u{200d}',
        ] {
            assert_eq!(printable(&c.to_string()), c.to_string(), "{c:?}");
        }
    }
}

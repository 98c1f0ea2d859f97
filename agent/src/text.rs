//! Guest-derived text made safe to show: every string a guest controls (a record name, a
//! template, a path, a log message) is cut to a few hundred bytes and has its control
//! characters escaped before it reaches a report or a host log line, so a guest can neither
//! grow the metadata without bound nor forge log lines.
//!
//! A cut string ends in `…(N bytes)`, N being the original length, and is always cut on a
//! character boundary.

use std::borrow::Cow;
use std::fmt::Write;

/// `s` as a quoted, escaped string of at most `hostapi::abi::limits::QUOTE_BYTES` bytes of
/// the original, like `{:?}`: `"abc"`, or `"abc"…(8388608 bytes)` when it was cut.
pub fn quote(s: &str) -> String {
    quote_max(s, hostapi::abi::limits::QUOTE_BYTES)
}

/// [`quote`] with an explicit cut.
pub fn quote_max(s: &str, max: usize) -> String {
    let head = floor(s, max);
    let mut out = format!("{head:?}");
    if head.len() < s.len() {
        let _ = write!(out, "…({} bytes)", s.len());
    }
    out
}

/// `s` unquoted, with control characters (and Unicode bidi controls) escaped, cut so the
/// result is at most `max` bytes plus the `…(N bytes)` marker. Borrowed when nothing changes.
pub fn clip(s: &str, max: usize) -> Cow<'_, str> {
    if s.len() <= max && !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(max.min(s.len()) + 24);
    for c in s.chars() {
        let before = out.len();
        if needs_escape(c) {
            let _ = write!(out, "{}", c.escape_default());
        } else {
            out.push(c);
        }
        if out.len() > max {
            out.truncate(before);
            let _ = write!(out, "…({} bytes)", s.len());
            return Cow::Owned(out);
        }
    }
    Cow::Owned(out)
}

/// Control characters end lines or drive terminals; bidi controls reorder what a reader sees.
fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub fn floor(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_strings_are_untouched() {
        assert_eq!(quote("config/a.json"), r#""config/a.json""#);
        assert!(matches!(clip("plain message", 256), Cow::Borrowed("plain message")));
    }

    #[test]
    fn long_strings_are_cut_on_a_char_boundary_with_their_length() {
        let big = "é".repeat(1000); // 2000 bytes
        let q = quote(&big);
        assert_eq!(q, format!("{:?}…(2000 bytes)", "é".repeat(128)));
        let c = clip(&big, 255);
        assert_eq!(c, format!("{}…(2000 bytes)", "é".repeat(127)));
        assert_eq!(floor("aé", 2), "a");
    }

    #[test]
    fn control_characters_cannot_forge_lines() {
        assert_eq!(clip("a\nINFO forged\x1b[31m", 256), "a\\nINFO forged\\u{1b}[31m");
        assert_eq!(clip("x\u{202e}y", 256), "x\\u{202e}y");
        assert_eq!(quote("a\nb"), r#""a\nb""#);
        // An escape is never split by the cut.
        assert_eq!(clip("ab\ncd", 3), "ab…(5 bytes)");
    }
}

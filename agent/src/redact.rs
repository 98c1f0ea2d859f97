//! URL redaction: the one place that decides how a URL is shown to anyone (logs, `/status`,
//! `status.json`, the accepted-index state, archive metadata). Index and upload URLs may
//! carry credentials (`https://user:pass@host/…`) or tokens in the query (`?token=…`); neither
//! may leave the process. Every query *value* is hidden, not only known token names, because
//! the agent cannot know which parameter a given server treats as a secret.

use reqwest::Url;

/// What a hidden part is replaced with.
pub const MASK: &str = "REDACTED";

/// `url` with its userinfo and every query value replaced by [`MASK`] (and no fragment).
/// Query keys stay, so an operator can still tell which URL is meant.
pub fn url(url: &Url) -> String {
    let mut u = url.clone();
    if !u.username().is_empty() {
        let _ = u.set_username(MASK);
    }
    if u.password().is_some() {
        let _ = u.set_password(None);
    }
    if let Some(q) = u.query() {
        let masked: Vec<String> = q
            .split('&')
            .filter(|kv| !kv.is_empty())
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) => format!("{k}={MASK}"),
                // A bare `?secret` is a value too.
                None => MASK.to_owned(),
            })
            .collect();
        u.set_query(Some(&masked.join("&")));
    }
    u.set_fragment(None);
    u.to_string()
}

/// [`url`] for a URL given as text. Text that does not parse is not shown at all, since
/// where its secrets are cannot be told.
pub fn url_str(text: &str) -> String {
    match Url::parse(text) {
        Ok(u) => url(&u),
        Err(_) => format!("(unparsable URL, {MASK})"),
    }
}

/// The secret fragments of `url`: its username, password and query values (raw and
/// percent-decoded), longest first, so [`scrub`] never leaves a tail of a longer one.
pub fn secrets(url: &Url) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |s: &str| {
        if !s.is_empty() && s != MASK {
            out.push(s.to_owned());
            if let Ok(d) = percent_encoding::percent_decode_str(s).decode_utf8()
                && !d.is_empty()
                && d != s
            {
                out.push(d.into_owned());
            }
        }
    };
    push(url.username());
    if let Some(p) = url.password() {
        push(p);
    }
    if let Some(q) = url.query() {
        for kv in q.split('&') {
            push(kv.split_once('=').map_or(kv, |(_, v)| v));
        }
    }
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out.dedup();
    out
}

/// `text` (an error message, say, which a library may have built with the raw URL in it)
/// with every occurrence of `url` and of its secret fragments replaced.
pub fn scrub(text: &str, url: &Url) -> String {
    let mut out = text.replace(url.as_str(), &self::url(url));
    for s in secrets(url) {
        // One-character values would shred ordinary text; they protect nothing anyway.
        if s.len() >= 2 {
            out = out.replace(&s, MASK);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_and_query_values_are_hidden() {
        let u: Url = "https://alice:s3cret@example.com:8443/site/index.json?token=abc123&x&y=1#frag".parse().unwrap();
        let shown = url(&u);
        assert_eq!(shown, "https://REDACTED@example.com:8443/site/index.json?token=REDACTED&REDACTED&y=REDACTED");
        for s in ["alice", "s3cret", "abc123", "frag"] {
            assert!(!shown.contains(s), "{s} in {shown}");
        }
        let plain: Url = "http://127.0.0.1:80/index.json".parse().unwrap();
        assert_eq!(url(&plain), "http://127.0.0.1/index.json");
    }

    #[test]
    fn scrub_catches_secrets_inside_library_messages() {
        let u: Url = "https://bob:pa%20ss@h.example/i.json?token=t%2Fk".parse().unwrap();
        let msg = format!("error sending request for url ({u}): pa ss and t/k and tk");
        let out = scrub(&msg, &u);
        for s in ["bob", "pa ss", "pa%20ss", "t%2Fk", "t/k"] {
            assert!(!out.contains(s), "{s} in {out}");
        }
        assert!(out.contains("and tk"), "{out}");
    }

    #[test]
    fn unparsable_text_is_not_shown() {
        assert!(!url_str("not a url user:pw@host?x=1").contains("pw"));
    }
}

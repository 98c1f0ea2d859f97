//! Record-path globs for `inspect ARCHIVE ls GLOB`: `*`, `**` and `?`, matched like `ls` does.
//!
//! - `*` matches any run of characters within one path segment (never `/`);
//! - `**` matches any run of characters across segments (`config/**/worker-*.json`), and
//!   `**/` also matches no directory at all;
//! - `?` matches one character other than `/`;
//! - everything else matches itself.
//!
//! As with `ls DIR`, a pattern that matches a directory matches every record under it:
//! `config/node`, `config/*` and `config/pod/openshift-*` all list whole subtrees.

/// A compiled record-path pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    tokens: Vec<Token>,
    source: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    /// `?`
    One,
    /// `*`
    Star,
    /// `**`, and whether a `/` directly follows it (`**/` may match nothing at all).
    StarStar { slash: bool },
}

impl Glob {
    /// Compiles `pattern`. Leading `/` and `./` are ignored, as record paths have neither.
    pub fn new(pattern: &str) -> Self {
        let trimmed = pattern.trim_start_matches("./").trim_start_matches('/').trim_end_matches('/');
        let chars: Vec<char> = trimmed.chars().collect();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '*' if chars.get(i + 1) == Some(&'*') => {
                    let slash = chars.get(i + 2) == Some(&'/');
                    tokens.push(Token::StarStar { slash });
                    i += if slash { 3 } else { 2 };
                    // `***` is `**`.
                    while !slash && chars.get(i) == Some(&'*') {
                        i += 1;
                    }
                }
                '*' => {
                    tokens.push(Token::Star);
                    i += 1;
                }
                '?' => {
                    tokens.push(Token::One);
                    i += 1;
                }
                c => {
                    tokens.push(Token::Literal(c));
                    i += 1;
                }
            }
        }
        Glob { tokens, source: pattern.to_owned() }
    }

    /// The pattern as given.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether `path` matches the pattern, or lies under a directory that does.
    pub fn matches(&self, path: &str) -> bool {
        let chars: Vec<char> = path.chars().collect();
        if match_here(&self.tokens, &chars) {
            return true;
        }
        // Every directory prefix of the path: `a`, `a/b` for `a/b/c.json`.
        chars.iter().enumerate().any(|(i, &c)| c == '/' && match_here(&self.tokens, &chars[..i]))
    }
}

fn match_here(tokens: &[Token], s: &[char]) -> bool {
    let Some((first, rest)) = tokens.split_first() else {
        return s.is_empty();
    };
    match first {
        Token::Literal(c) => s.first() == Some(c) && match_here(rest, &s[1..]),
        Token::One => s.first().is_some_and(|&c| c != '/') && match_here(rest, &s[1..]),
        Token::Star => {
            // Try every length up to the next `/`.
            let limit = s.iter().position(|&c| c == '/').unwrap_or(s.len());
            (0..=limit).any(|n| match_here(rest, &s[n..]))
        }
        Token::StarStar { slash: false } => (0..=s.len()).any(|n| match_here(rest, &s[n..])),
        Token::StarStar { slash: true } => {
            // `**/` matches nothing, or anything that ends with a `/`.
            match_here(rest, s) || (0..s.len()).any(|n| s[n] == '/' && match_here(rest, &s[n + 1..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Glob;

    fn m(pattern: &str, path: &str) -> bool {
        Glob::new(pattern).matches(path)
    }

    #[test]
    fn literals_and_directories() {
        assert!(m("config/id", "config/id"));
        assert!(!m("config/id", "config/ids"));
        assert!(m("config/node", "config/node/worker-0.json"), "a directory lists its records");
        assert!(m("config/node/", "config/node/worker-0.json"));
        assert!(m("./config", "config/version.json"));
        assert!(!m("config/no", "config/node/worker-0.json"), "prefixes only at segment boundaries");
    }

    #[test]
    fn star_stays_within_a_segment() {
        assert!(m("config/node/*.json", "config/node/worker-0.json"));
        assert!(!m("config/*.json", "config/node/worker-0.json"));
        assert!(m("config/*", "config/node/worker-0.json"), "config/* matches the directory config/node");
        assert!(m("config/pod/openshift-*", "config/pod/openshift-etcd/etcd-0.json"));
        assert!(!m("config/pod/openshift-*", "config/pod/di-288312/x.json"));
        assert!(m("*", "config/id"));
        assert!(m("config/*/worker-?.json", "config/node/worker-0.json"));
        assert!(!m("config/*/worker-?.json", "config/node/worker-10.json"));
        assert!(!m("config/?", "config/ab"));
    }

    #[test]
    fn double_star_crosses_segments() {
        assert!(m("**/worker-*.json", "config/node/worker-0.json"));
        assert!(m("**/id", "config/id"));
        assert!(m("**/id", "id"), "**/ matches no directory at all");
        assert!(m("config/**/*.json", "config/version.json"));
        assert!(m("config/**/*.json", "config/pod/ns/p.json"));
        assert!(!m("config/**/*.json", "config/id"));
        assert!(m("**.json", "a/b/c.json"));
        assert!(m("**", "anything/at/all"));
        assert!(m("***.json", "a/b.json"));
        assert!(m("a/**/*", "a/b"));
        assert!(!m("events/**", "config/id"));
    }

    #[test]
    fn unicode_and_special_characters_are_literal() {
        assert!(m("config/ünï/[x]", "config/ünï/[x]"));
        assert!(!m("config/[x]", "config/x"));
    }
}

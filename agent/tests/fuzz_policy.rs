//! Fuzzing the API path parser and the request policy (issue 11): from a table of requests the
//! policy must deny (Secrets in every form, dangerous subresources, watches), generate variants
//! by percent-encoding any character (`%2F`, `%73ecrets`), changing case, adding slashes, dot
//! segments, `;` parameters, the legacy watch prefix, a trailing slash and query tricks, and
//! check that none of them is ever allowed, even with every path declared. Also: the parser
//! never panics, and the activation check is sound (a declared pattern that matches a path the
//! policy denies for Secrets or a subresource is refused up front).
//!
//! `PROPTEST_CASES` sets the cases of every target (the defaults run in seconds) and
//! `PROPTEST_RNG_SEED` the seed (default: fixed per target, so CI is reproducible):
//!
//! ```text
//! PROPTEST_CASES=100000 PROPTEST_RNG_SEED=$RANDOM cargo test -p agent --test fuzz_policy --release -- --nocapture
//! ```

use std::fmt::Debug;

use agent::apipath::{self, ApiPath};
use agent::policy::{self, Decision, DenyReason, ModulePolicy};
use hostapi::{Manifest, Permission};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};

fn fuzz<S>(target: &str, default_cases: u32, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: Debug,
{
    let mut config = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = default_cases;
    }
    let seed = match config.rng_seed {
        RngSeed::Fixed(seed) => seed,
        RngSeed::Random => target.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)),
    };
    config.rng_seed = RngSeed::Fixed(seed);
    config.failure_persistence = None;
    let result = TestRunner::new(config).run(&strategy, test);
    if let Err(e) = result {
        panic!("fuzz {target} failed; reproduce with PROPTEST_RNG_SEED={seed}:\n{e}");
    }
}

/// Requests the default policy denies by what they address, not by how they are spelt.
const DENIED: &[&str] = &[
    "/api/v1/secrets",
    "/api/v1/secrets/pull-secret",
    "/api/v1/namespaces/openshift-config/secrets",
    "/api/v1/namespaces/openshift-config/secrets/pull-secret",
    "/apis/example.com/v1/namespaces/a/secrets/b",
    "/apis/image.openshift.io/v1/namespaces/openshift/imagestreams/cli/secrets",
    "/apis/oauth.openshift.io/v1/oauthaccesstokens",
    "/apis/oauth.openshift.io/v1/oauthaccesstokens/sha256~abc",
    "/api/v1/namespaces/default/serviceaccounts/default/token",
    "/api/v1/nodes/master-0/proxy",
    "/api/v1/nodes/master-0/proxy/metrics/cadvisor",
    "/api/v1/namespaces/a/services/https:web:8443/proxy/x",
    "/api/v1/namespaces/a/pods/p/proxy",
    "/api/v1/namespaces/a/pods/p/exec",
    "/api/v1/namespaces/a/pods/p/attach",
    "/api/v1/namespaces/a/pods/p/portforward",
    "/api/v1/proxy/nodes/master-0/metrics",
    "/api/v1/watch/pods",
    "/apis/apps/v1/watch/namespaces/a/deployments",
];

/// Requests the default policy allows when declared; any watch or `#` added to them is denied.
const ALLOWED: &[&str] = &[
    "/api/v1/nodes",
    "/api/v1/pods",
    "/api/v1/namespaces/a/pods/p/log",
    "/apis/config.openshift.io/v1/clusteroperators",
    "/version",
];

/// A manifest declaring every path of up to 12 segments, so only the policy's resource rules
/// can deny.
fn everything() -> Manifest {
    Manifest {
        name: "fuzz".into(),
        version: "1".into(),
        abi: 1,
        description: String::new(),
        reproduces: Vec::new(),
        permissions: (1..=12).map(|n| Permission::parse(&format!("GET {}", "/*".repeat(n))).unwrap()).collect(),
    }
}

/// One way to respell a path (the part before `?`).
#[derive(Debug, Clone)]
enum Mutation {
    /// Percent-encode the byte at this position (upper- or lower-case hex), or double-encode it.
    Encode(usize, bool, bool),
    /// Flip the case of the letter at this position.
    Case(usize),
    /// Double the slash at the n-th slash.
    Slash(usize),
    /// Insert `/.`, `/..` or `/x/..` at the n-th slash.
    Dot(usize, u8),
    /// Append `;x=1` (or just `;`) to the n-th segment.
    Param(usize, bool),
    /// Insert the legacy `watch/` prefix after the API prefix.
    WatchPrefix,
    /// Add a trailing slash.
    Trailing,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<bool>(), any::<bool>()).prop_map(|(i, u, d)| Mutation::Encode(i, u, d)),
        any::<usize>().prop_map(Mutation::Case),
        any::<usize>().prop_map(Mutation::Slash),
        (any::<usize>(), 0u8..3).prop_map(|(i, k)| Mutation::Dot(i, k)),
        (any::<usize>(), any::<bool>()).prop_map(|(i, v)| Mutation::Param(i, v)),
        Just(Mutation::WatchPrefix),
        Just(Mutation::Trailing),
    ]
}

fn apply(path: &str, m: &Mutation) -> String {
    let slashes: Vec<usize> = path.match_indices('/').map(|(i, _)| i).collect();
    let at_slash = |n: usize| slashes[n % slashes.len()];
    match *m {
        Mutation::Encode(i, upper, double) => {
            let i = i % path.len();
            let b = path.as_bytes()[i];
            let enc = if upper { format!("%{b:02X}") } else { format!("%{b:02x}") };
            let enc = if double { enc.replacen('%', "%25", 1) } else { enc };
            format!("{}{enc}{}", &path[..i], &path[i + 1..])
        }
        Mutation::Case(i) => {
            let letters: Vec<usize> = path.bytes().enumerate().filter(|(_, b)| b.is_ascii_alphabetic()).map(|(i, _)| i).collect();
            let i = letters[i % letters.len()];
            let mut bytes = path.as_bytes().to_vec();
            bytes[i] ^= 0x20;
            String::from_utf8(bytes).unwrap()
        }
        Mutation::Slash(n) => {
            let i = at_slash(n);
            format!("{}/{}", &path[..i], &path[i..])
        }
        Mutation::Dot(n, k) => {
            let i = at_slash(n);
            let ins = ["/.", "/..", "/x/.."][k as usize];
            format!("{}{ins}{}", &path[..i], &path[i..])
        }
        Mutation::Param(n, value) => {
            // The end of the n-th segment: the next slash, or the end.
            let ends: Vec<usize> = slashes.iter().skip(1).copied().chain([path.len()]).collect();
            let i = ends[n % ends.len()];
            let p = if value { ";x=1" } else { ";" };
            format!("{}{p}{}", &path[..i], &path[i..])
        }
        Mutation::WatchPrefix => {
            let skip = if path.starts_with("/apis/") { 3 } else { 2 };
            match slashes.get(skip) {
                Some(&i) => format!("{}/watch{}", &path[..i], &path[i..]),
                None => format!("{path}/watch"),
            }
        }
        Mutation::Trailing => format!("{path}/"),
    }
}

/// A query a guest might append: neutral, or a watch/fragment trick.
fn query() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("?limit=5".to_owned()),
        Just("?labelSelector=app%3Dx".to_owned()),
        Just("?x=1#".to_owned()),
        Just("#".to_owned()),
        Just("?watch=true".to_owned()),
        Just("?a=b&watch=1".to_owned()),
        Just("?%77atch=true".to_owned()),
        Just("?watch=false&watch=true".to_owned()),
        Just("?x=1;watch=true".to_owned()),
    ]
}

fn allowed(d: &Decision) -> bool {
    *d == Decision::Allow
}

#[test]
fn respelled_denied_requests_are_never_allowed() {
    let manifest = everything();
    let policy = ModulePolicy::default();
    // The table itself is denied, else the property says nothing.
    for p in DENIED {
        assert!(!allowed(&policy::decide(&manifest, &policy, "GET", p)), "{p}");
    }
    let strategy = (0..DENIED.len(), prop::collection::vec(mutation(), 0..4), query());
    // How many variants still parsed, so the property is known not to hold only because the
    // parser refuses everything.
    let parsed = std::sync::atomic::AtomicU64::new(0);
    fuzz("respelled_denied", 4000, strategy, |(i, mutations, q)| {
        let mut path = DENIED[i].to_owned();
        for m in &mutations {
            path = apply(&path, m);
        }
        path += &q;
        if ApiPath::parse(&path).is_ok() {
            parsed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let d = policy::decide(&manifest, &policy, "GET", &path);
        prop_assert!(!allowed(&d), "{path} is allowed (from {} by {mutations:?})", DENIED[i]);
        Ok(())
    });
    let parsed = parsed.into_inner();
    eprintln!("fuzz respelled_denied: {parsed} variants parsed and were still denied");
    assert!(parsed > 100, "only {parsed} variants parsed: the mutations exercise nothing but the parser's refusals");
}

/// A watch or a fragment added to an allowed request, in any case and encoding of the key.
#[test]
fn watch_and_fragment_tricks_are_never_allowed() {
    let manifest = everything();
    let policy = ModulePolicy::default();
    for p in ALLOWED {
        assert!(allowed(&policy::decide(&manifest, &policy, "GET", p)), "{p}");
    }
    let key = prop::collection::vec((any::<bool>(), any::<bool>()), 5).prop_map(|flags| {
        "watch".bytes().zip(flags).map(|(b, (upper, enc))| {
            let b = if upper { b.to_ascii_uppercase() } else { b };
            if enc { format!("%{b:02x}") } else { (b as char).to_string() }
        }).collect::<String>()
    });
    let value = prop_oneof![Just(""), Just("true"), Just("1"), Just("TRUE"), Just("yes"), Just("t")];
    let before = prop_oneof![Just(""), Just("a=b&"), Just("limit=1&")];
    let fragment = prop_oneof![Just(""), Just("#"), Just("#x")];
    let strategy = (0..ALLOWED.len(), before, key, any::<bool>(), value, fragment);
    fuzz("watch_and_fragment", 2000, strategy, |(i, before, key, eq, value, fragment)| {
        // `watch` alone (no `=`) is a watch too: the API server reads an empty value as true.
        let value = if eq { format!("={value}") } else { String::new() };
        let path = format!("{}?{before}{key}{value}{fragment}", ALLOWED[i]);
        let d = policy::decide(&manifest, &policy, "GET", &path);
        prop_assert!(!allowed(&d), "{path} is allowed");
        if !fragment.is_empty() {
            prop_assert!(matches!(d, Decision::Deny { reason: DenyReason::Malformed(apipath::ApiPathError::Fragment), .. }), "{path}: {d:?}");
        }
        Ok(())
    });
}

#[test]
fn the_parser_never_panics() {
    let alphabet = prop::sample::select(vec!["/", "api", "apis", "v1", "watch", "proxy", "namespaces", "secrets", "*", ".", "..", "%", "%2F", "?", "&", "=", "#", ";", "\\", " ", "x", "A", "é", "\0"]);
    let tokens = prop::collection::vec(alphabet, 0..24).prop_map(|t| t.concat());
    let strategy = prop_oneof![any::<String>(), tokens];
    fuzz("parser_never_panics", 4000, strategy, |s| {
        let _ = ApiPath::parse(&s);
        let _ = apipath::pattern_shapes(&s);
        let _ = policy::decide(&everything(), &ModulePolicy::default(), "GET", &s);
        if let Ok(p) = Permission::parse(&format!("GET {s}")) {
            let m = Manifest { permissions: vec![p], ..everything() };
            let _ = policy::check_declared(&m, &ModulePolicy::default());
        }
        Ok(())
    });
}

/// Soundness of the activation check: star any segments of a path the policy denies for
/// Secrets or a subresource, and the resulting declaration is refused at activation.
#[test]
fn activation_refuses_every_pattern_that_matches_a_denied_path() {
    let manifest = everything();
    let policy = ModulePolicy::default();
    let strategy = (0..DENIED.len(), prop::collection::vec(any::<bool>(), 12));
    fuzz("activation_sound", 2000, strategy, |(i, stars)| {
        let path = DENIED[i];
        let d = policy::decide(&manifest, &policy, "GET", path);
        if !matches!(d, Decision::Deny { reason: DenyReason::Secrets | DenyReason::Subresource(_), .. }) {
            return Ok(());
        }
        let pattern: Vec<&str> =
            path[1..].split('/').zip(&stars).map(|(seg, star)| if *star { "*" } else { seg }).collect();
        let perm = Permission::parse(&format!("GET /{}", pattern.join("/"))).unwrap();
        assert!(perm.matches("GET", path));
        let m = Manifest { permissions: vec![perm.clone()], ..everything() };
        let r = policy::check_declared(&m, &policy);
        prop_assert!(r.is_err(), "{perm} matches {path} (denied: {d:?}) but is accepted at activation");
        Ok(())
    });
}

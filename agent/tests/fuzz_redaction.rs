//! Fuzzing the redaction specs (ABI.md §5.14) and the networking obfuscator, with proptest as
//! `fuzz.rs` does: arbitrary specs and documents never panic and stay within the ABI's bounds,
//! the output is always JSON, `xout` keeps every string's byte length, and obfuscation leaves
//! no planted address behind. `PROPTEST_CASES` and `PROPTEST_RNG_SEED` work as in `fuzz.rs`.

use agent::obfuscate::Obfuscator;
use agent::redaction::{Spec, SpecError};
use hostapi::abi::redact::{MAX_RULES, MAX_SEGMENTS, MAX_SPEC_BYTES};
use proptest::prelude::*;
use serde_json::Value;

fn config(cases: u32) -> ProptestConfig {
    let mut c = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = cases;
    }
    c
}

/// JSON documents with the keys pointers are made of, so rules often hit something.
fn doc() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("a".to_owned()),
        Just("b".to_owned()),
        Just("kubernetes.io/x".to_owned()),
        Just("*".to_owned()),
        Just("0".to_owned()),
        "[a-z~/é]{0,3}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::String),
        Just(Value::String("-----BEGIN X-----\nAA\n-----END X-----\n".into())),
    ];
    leaf.prop_recursive(6, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..5).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A pointer over those keys, up to 6 segments deep.
fn pointer() -> impl Strategy<Value = String> {
    prop::collection::vec(prop_oneof![Just("a"), Just("b"), Just("*"), Just("0"), Just("1"), Just("kubernetes.io~1x"), Just("~0")], 1..6)
        .prop_map(|segs| segs.iter().map(|s| format!("/{s}")).collect())
}

fn rule() -> impl Strategy<Value = String> {
    (prop_oneof![Just("remove"), Just("blank"), Just("xout"), Just("url"), Just("url-list"), Just("pem")], pointer(), any::<bool>())
        .prop_map(|(a, p, except)| {
            let except = if except && p.contains('*') { " except-product-keys" } else { "" };
            format!("{a} {p}{except}")
        })
}

/// Spec text: mostly grammatical lines, sometimes anything.
fn spec_text() -> impl Strategy<Value = String> {
    prop::collection::vec(prop_oneof![4 => rule(), 1 => "\\PC{0,40}", 1 => Just(String::new())], 0..80).prop_map(|l| l.join("\n"))
}

/// `out` has `input`'s shape; each string is unchanged or all `x` of the same byte length.
fn xout_only(input: &Value, out: &Value) -> bool {
    match (input, out) {
        (Value::String(a), Value::String(b)) => a == b || (a.len() == b.len() && b.bytes().all(|c| c == b'x')),
        (Value::Array(a), Value::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| xout_only(x, y)),
        (Value::Object(a), Value::Object(b)) => a.len() == b.len() && a.iter().zip(b).all(|((ka, x), (kb, y))| ka == kb && xout_only(x, y)),
        (a, b) => a == b,
    }
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn arbitrary_specs_parse_or_are_refused_within_bounds(text in spec_text()) {
        match Spec::parse(&text) {
            Ok(spec) => {
                prop_assert!(text.len() <= MAX_SPEC_BYTES);
                prop_assert!(spec.len() <= MAX_RULES);
                // What a spec says is what it prints.
                prop_assert_eq!(Spec::parse(&spec.to_string()).unwrap(), spec);
            }
            Err(SpecError::TooLong(n)) => prop_assert!(n > MAX_SPEC_BYTES),
            Err(SpecError::TooManyRules) => prop_assert!(text.lines().filter(|l| !l.trim().is_empty()).count() > MAX_RULES),
            Err(SpecError::Line { line, .. }) => prop_assert!(line >= 1 && line <= text.split('\n').count()),
        }
    }

    #[test]
    fn applying_any_spec_to_any_document_gives_json(doc in doc(), rules in prop::collection::vec(rule(), 0..12)) {
        let spec = Spec::parse(&rules.join("\n")).unwrap();
        let input = serde_json::to_vec(&doc).unwrap();
        let out = spec.apply(&input).unwrap();
        let parsed: Value = serde_json::from_slice(&out).expect("the output is JSON");
        if !rules.iter().any(|r| r.starts_with("pem") || r.starts_with("blank")) {
            prop_assert!(out.len() <= input.len(), "{} > {}", out.len(), input.len());
        }
        // Applying twice changes nothing more (every action is idempotent on its own output)
        // unless removals shift array indexes under later rules.
        if !rules.iter().any(|r| r.starts_with("remove")) {
            let again = spec.apply(&out).unwrap();
            prop_assert_eq!(serde_json::from_slice::<Value>(&again).unwrap(), parsed);
        }
    }

    #[test]
    fn xout_keeps_every_string_length(doc in doc(), ptrs in prop::collection::vec((pointer(), any::<bool>()), 1..8)) {
        let text: Vec<String> = ptrs
            .iter()
            .map(|(p, e)| format!("xout {p}{}", if *e && p.contains('*') { " except-product-keys" } else { "" }))
            .collect();
        let spec = Spec::parse(&text.join("\n")).unwrap();
        let input = serde_json::to_vec(&doc).unwrap();
        // Compared as parsed from the same bytes (serde_json's float parsing is not exact).
        let doc: Value = serde_json::from_slice(&input).unwrap();
        let out: Value = serde_json::from_slice(&spec.apply(&input).unwrap()).unwrap();
        prop_assert!(xout_only(&doc, &out), "{doc} -> {out}");
    }

    #[test]
    fn non_json_is_refused_not_panicked(bytes in prop::collection::vec(any::<u8>(), 0..256), rules in prop::collection::vec(rule(), 0..4)) {
        let spec = Spec::parse(&rules.join("\n")).unwrap();
        if let Ok(out) = spec.apply(&bytes) {
            prop_assert!(serde_json::from_slice::<Value>(&out).is_ok());
        }
    }

    #[test]
    fn obfuscation_never_panics_and_leaves_no_planted_address(
        noise in "\\PC{0,200}",
        octets in prop::collection::vec((11u8..=223, any::<u8>(), any::<u8>(), 1u8..=254), 1..6),
        v6 in prop::collection::vec(1u16..=0xfffe, 1..4),
    ) {
        let o = Obfuscator::new(Some("example.org"));
        let _ = o.bytes(noise.as_bytes());
        let v4: Vec<String> = octets.iter().filter(|(a, ..)| *a != 127).map(|(a, b, c, d)| format!("{a}.{b}.{c}.{d}")).collect();
        let v6: Vec<String> = v6.iter().map(|g| format!("fd00:{g:x}::{g:x}")).collect();
        let text = format!("{{\"n\":\"{}\",\"a\":\"{}\",\"b\":\"{}\",\"d\":\"api.example.org\"}}", noise.replace(['"', '\\'], ""), v4.join(" "), v6.join(","));
        let out = String::from_utf8(o.bytes(text.as_bytes())).unwrap();
        let parsed: Value = serde_json::from_str(&out).expect("still JSON");
        let left: Vec<&str> = parsed["a"].as_str().unwrap().split(' ').chain(parsed["b"].as_str().unwrap().split(',')).collect();
        for ip in v4.iter().chain(&v6) {
            prop_assert!(!left.contains(&ip.as_str()), "{ip} left in {out}");
        }
        prop_assert!(!out.contains("example.org"));
        // The same input gives the same output within an archive.
        prop_assert_eq!(String::from_utf8(o.bytes(text.as_bytes())).unwrap(), out);
    }
}

#[test]
fn bounds_are_exact() {
    assert!(Spec::parse(&"remove /a\n".repeat(MAX_RULES)).is_ok());
    assert_eq!(Spec::parse(&"remove /a\n".repeat(MAX_RULES + 1)), Err(SpecError::TooManyRules));
    assert!(Spec::parse(&format!("xout {}", "/a".repeat(MAX_SEGMENTS))).is_ok());
    assert!(Spec::parse(&format!("xout {}", "/a".repeat(MAX_SEGMENTS + 1))).is_err());
    let long = format!("xout /{}", "a".repeat(MAX_SPEC_BYTES));
    assert_eq!(Spec::parse(&long), Err(SpecError::TooLong(long.len())));
}

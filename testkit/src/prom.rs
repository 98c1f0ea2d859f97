//! Strict checks of a `/metrics` exposition, for tests: a line-format checker of the
//! Prometheus text format 0.0.4 as `promtool check metrics` reads it, and the reference
//! parsers of the Python `prometheus_client` (0.0.4 and OpenMetrics), installed from PyPI into
//! the repository's `.venv/` when missing (as `cargo xtask` installs Go there).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// One family of a checked exposition.
#[derive(Debug, Clone, Default)]
pub struct Family {
    /// `counter`, `gauge`, `histogram`, `summary` or `untyped`.
    pub kind: String,
    /// Its HELP text.
    pub help: String,
    /// Samples: (sample name, labels, value).
    pub samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

fn valid_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':') && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
}

fn valid_label_name(s: &str) -> bool {
    valid_name(s) && !s.contains(':')
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

/// Parses `{a="x",b="y"}` (after the name); returns the labels and the rest of the line.
fn parse_labels(s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    let Some(mut rest) = s.strip_prefix('{') else { return Ok((labels, s)) };
    loop {
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((labels, r));
        }
        let eq = rest.find('=').ok_or("label without '='")?;
        let name = rest[..eq].trim();
        if !valid_label_name(name) {
            return Err(format!("bad label name {name:?}"));
        }
        rest = rest[eq + 1..].strip_prefix('"').ok_or("label value not quoted")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err("unterminated label value".into()),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("bad escape {other:?} in a label value")),
                },
                Some((_, '\n')) => return Err("raw newline in a label value".into()),
                Some((_, c)) => value.push(c),
            }
        };
        if labels.insert(name.to_owned(), value).is_some() {
            return Err(format!("label {name} repeated"));
        }
        rest = &rest[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

/// Checks `text` strictly as the Prometheus text format 0.0.4 and returns its families:
/// HELP and TYPE for every family, before its samples, each once; samples of a family
/// together; counter families (and so their samples) named `*_total`; histograms with `le`
/// buckets ending at `+Inf`, cumulative, and `_count` equal to the `+Inf` bucket; no
/// OpenMetrics-only lines (`# EOF`, `# UNIT`, `_created`); no duplicate series.
pub fn check_text_0_0_4(text: &str) -> Result<BTreeMap<String, Family>, String> {
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    let mut help_seen = BTreeSet::new();
    let mut closed = BTreeSet::new();
    let mut current: Option<String> = None;
    let mut series = BTreeSet::new();
    for (n, line) in text.lines().enumerate() {
        let at = |m: String| format!("line {}: {m}: {line:?}", n + 1);
        if line.trim().is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('#') {
            let rest = rest.trim_start();
            let (kw, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            match kw {
                "HELP" | "TYPE" => {
                    let (name, arg) = tail.split_once(' ').unwrap_or((tail, ""));
                    if !valid_name(name) {
                        return Err(at("bad metric name".into()));
                    }
                    if closed.contains(name) {
                        return Err(at(format!("family {name} declared again after other families")));
                    }
                    if current.as_deref() != Some(name) {
                        if let Some(c) = current.take() {
                            closed.insert(c);
                        }
                        current = Some(name.to_owned());
                    }
                    let fam = families.entry(name.to_owned()).or_default();
                    if !fam.samples.is_empty() {
                        return Err(at(format!("{kw} after samples of {name}")));
                    }
                    if kw == "HELP" {
                        if !help_seen.insert(name.to_owned()) {
                            return Err(at("HELP repeated".into()));
                        }
                        if arg.trim().is_empty() {
                            return Err(at("empty HELP".into()));
                        }
                        fam.help = arg.to_owned();
                    } else {
                        if !fam.kind.is_empty() {
                            return Err(at("TYPE repeated".into()));
                        }
                        if !matches!(arg, "counter" | "gauge" | "histogram" | "summary" | "untyped") {
                            return Err(at(format!("unknown type {arg:?}")));
                        }
                        if arg == "counter" && !name.ends_with("_total") {
                            return Err(at("a counter family must be named *_total in 0.0.4".into()));
                        }
                        fam.kind = arg.to_owned();
                    }
                }
                "EOF" | "UNIT" => return Err(at("OpenMetrics-only line in the 0.0.4 format".into())),
                _ => {}
            }
            continue;
        }
        let name_end = line.find(['{', ' ']).ok_or_else(|| at("no value".into()))?;
        let sample = &line[..name_end];
        if !valid_name(sample) {
            return Err(at("bad sample name".into()));
        }
        let (labels, rest) = parse_labels(&line[name_end..]).map_err(at)?;
        let mut parts = rest.split_whitespace();
        let value = parts.next().and_then(parse_value).ok_or_else(|| at("bad value".into()))?;
        if let Some(ts) = parts.next() {
            ts.parse::<i64>().map_err(|_| at("bad timestamp".into()))?;
        }
        if parts.next().is_some() {
            return Err(at("trailing text".into()));
        }
        let Some(fam_name) = current.clone() else { return Err(at("sample before any HELP/TYPE".into())) };
        let fam = families.get_mut(&fam_name).expect("current family exists");
        if fam.kind.is_empty() || fam.help.is_empty() {
            return Err(at(format!("family {fam_name} lacks HELP or TYPE")));
        }
        let ok = match fam.kind.as_str() {
            "histogram" => {
                sample == format!("{fam_name}_sum")
                    || sample == format!("{fam_name}_count")
                    || (sample == format!("{fam_name}_bucket") && labels.contains_key("le"))
            }
            "summary" => sample == fam_name || sample == format!("{fam_name}_sum") || sample == format!("{fam_name}_count"),
            _ => sample == fam_name,
        };
        if !ok {
            return Err(at(format!("sample does not belong to the {} family {fam_name}", fam.kind)));
        }
        if sample.ends_with("_created") {
            return Err(at("_created samples are OpenMetrics only".into()));
        }
        if !series.insert(format!("{sample}{labels:?}")) {
            return Err(at("duplicate series".into()));
        }
        fam.samples.push((sample.to_owned(), labels, value));
    }
    for (name, fam) in &families {
        if fam.kind.is_empty() || fam.help.is_empty() {
            return Err(format!("family {name} lacks HELP or TYPE"));
        }
        if fam.kind == "histogram" {
            let mut by_set: BTreeMap<BTreeMap<String, String>, Vec<(f64, f64)>> = BTreeMap::new();
            let mut counts = BTreeMap::new();
            for (s, l, v) in &fam.samples {
                let mut rest = l.clone();
                if s.ends_with("_bucket") {
                    let le = rest.remove("le").and_then(|x| parse_value(&x)).ok_or(format!("{name}: bad le"))?;
                    by_set.entry(rest).or_default().push((le, *v));
                } else if s.ends_with("_count") {
                    counts.insert(rest, *v);
                }
            }
            for (set, buckets) in by_set {
                let last = buckets.last().ok_or(format!("{name}: no buckets"))?;
                if last.0 != f64::INFINITY {
                    return Err(format!("{name}{set:?}: the last bucket is not +Inf"));
                }
                if buckets.windows(2).any(|w| w[0].0 >= w[1].0 || w[0].1 > w[1].1) {
                    return Err(format!("{name}{set:?}: buckets not increasing and cumulative"));
                }
                if counts.get(&set) != Some(&last.1) {
                    return Err(format!("{name}{set:?}: _count differs from the +Inf bucket"));
                }
            }
        }
    }
    Ok(families)
}

/// A Python with `prometheus_client`: the repository's `.venv/bin/python`, created and
/// filled from PyPI when it lacks the package.
pub fn python_with_prometheus_client() -> PathBuf {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let venv = root.join(".venv");
    let python = venv.join("bin/python");
    let has = |p: &PathBuf| std::process::Command::new(p).args(["-c", "import prometheus_client"]).output().is_ok_and(|o| o.status.success());
    if !has(&python) {
        if !python.exists() {
            let ok = std::process::Command::new("python3").args(["-m", "venv"]).arg(&venv).status().is_ok_and(|s| s.success());
            assert!(ok, "python3 -m venv {} failed", venv.display());
        }
        eprintln!("testkit: installing prometheus_client from PyPI into {}", venv.display());
        let ok = std::process::Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "prometheus_client"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok && has(&python), "cannot install prometheus_client into {}", venv.display());
    }
    python
}

/// Parses `text` with the Python reference parser: `openmetrics` picks
/// `prometheus_client.openmetrics.parser` (strict), else `prometheus_client.parser` (0.0.4).
/// Returns `family type samples` lines, one per family, or the parser's error.
pub fn python_parse(text: &str, openmetrics: bool) -> Result<Vec<String>, String> {
    use std::io::Write as _;
    let module = if openmetrics { "prometheus_client.openmetrics.parser" } else { "prometheus_client.parser" };
    let script = format!(
        "import sys\nfrom {module} import text_string_to_metric_families as p\nfor f in p(sys.stdin.read()):\n    print(f.name, f.type, len(f.samples))\n"
    );
    let mut child = std::process::Command::new(python_with_prometheus_client())
        .args(["-c", &script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python starts");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checker_refuses_what_promtool_refuses() {
        let good = "# HELP a_total A.\n# TYPE a_total counter\na_total{k=\"v\"} 1\n# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n";
        check_text_0_0_4(good).unwrap();
        for bad in [
            // OpenMetrics' counter naming: samples of an undeclared family.
            "# HELP a A.\n# TYPE a counter\na_total 1\n",
            "# TYPE a_total counter\na_total 1\n",
            "# HELP a_total A.\n# TYPE a_total counter\na_total 1\n# EOF\n",
            "a 1\n",
            "# HELP g G.\n# TYPE g gauge\ng{k=\"v\\x\"} 1\n",
            "# HELP g G.\n# TYPE g gauge\ng 1\ng 2\n",
            "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 3\nh_count 1\n",
        ] {
            assert!(check_text_0_0_4(bad).is_err(), "accepted: {bad}");
        }
    }
}

//! Output for people and for machines: aligned text tables, JSON, and a self-contained HTML
//! report with inline SVG for a directory of archives.
//!
//! Text output is deterministic for a given input and never depends on the terminal, except
//! for colour: with [`Style::color`] failures are red and warnings yellow. Failures stand out
//! without colour too: a `!` marker column, a count in the header and a `failed` section.

use std::fmt::Write as _;
use std::io::Write as _;

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

use super::diff::{ArchiveDiff, FieldChange, GathererChange};
use super::trend::{RunStatus, Trend};
use super::{is_unsafe_char, printable, GatheredFrom, Gathered, Listing, RecordInfo, Summary};
use insights_format::GATHERS_JSON;

/// How to render text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Style {
    /// Use ANSI colours (only when stdout is a terminal and `NO_COLOR` is unset).
    pub color: bool,
}

impl Style {
    /// No colour: what pipes, files and tests get.
    pub fn plain() -> Self {
        Style { color: false }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color && !text.is_empty() { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_owned() }
    }
}

const RED: &str = "31";
const GREEN: &str = "32";
const YELLOW: &str = "33";
const BOLD: &str = "1";

/// Longest value or message shown in text output before it is cut with `…`.
const MAX_TEXT: usize = 160;

/// Pretty JSON with a final newline: what `--json` prints.
pub fn json<T: Serialize + ?Sized>(value: &T) -> String {
    let mut s = serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}

/// `1536` → `1.5 KiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// `12` → `12 ms`, `1500` → `1.5 s`, `125000` → `2 min 5 s`.
pub fn human_ms(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

/// `2024-03-05 07:08:09 UTC`.
pub fn human_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    t.format(&format).unwrap_or_default()
}

fn gathered_text(g: Option<&Gathered>) -> String {
    match g {
        None => "unknown".into(),
        Some(g) => match g.from {
            GatheredFrom::Metadata => human_time(g.at),
            GatheredFrom::FileName => format!("{} (from the file name)", human_time(g.at)),
            GatheredFrom::Mtime => format!("{} (from record times)", human_time(g.at)),
        },
    }
}

/// Cuts `s` to [`MAX_TEXT`] characters on one line.
fn one_line(s: &str) -> String {
    let flat: String = printable(&s.split_whitespace().collect::<Vec<_>>().join(" "));
    if flat.chars().count() <= MAX_TEXT {
        return flat;
    }
    let cut: String = flat.chars().take(MAX_TEXT - 1).collect();
    format!("{cut}…")
}

/// `1 record`, `2 records`.
fn count(n: u64, word: &str) -> String {
    if n == 1 { format!("1 {word}") } else { format!("{n} {word}s") }
}

fn width(s: &str) -> usize {
    s.chars().count()
}

#[derive(Clone, Copy, PartialEq)]
enum Align {
    Left,
    Right,
}

#[derive(Clone, Copy, PartialEq)]
enum Tone {
    Plain,
    Warn,
    Bad,
}

/// A table with a one-character marker column (`!` for failures) in front.
struct Table {
    heads: Vec<(&'static str, Align)>,
    rows: Vec<(Tone, Vec<String>)>,
}

impl Table {
    fn new(heads: &[(&'static str, Align)]) -> Self {
        Table { heads: heads.to_vec(), rows: Vec::new() }
    }

    fn row(&mut self, tone: Tone, cells: Vec<String>) {
        self.rows.push((tone, cells.iter().map(|c| printable(c)).collect()));
    }

    fn render(&self, style: &Style, out: &mut String) {
        let widths: Vec<usize> = self
            .heads
            .iter()
            .enumerate()
            .map(|(i, (h, _))| self.rows.iter().map(|(_, c)| width(&c[i])).chain([width(h)]).max().unwrap_or(0))
            .collect();
        let line = |cells: &mut dyn Iterator<Item = &str>| {
            let mut s = String::new();
            for (i, cell) in cells.enumerate() {
                if i > 0 {
                    s.push_str("  ");
                }
                let pad = " ".repeat(widths[i].saturating_sub(width(cell)));
                match self.heads[i].1 {
                    Align::Left => s.push_str(&format!("{cell}{pad}")),
                    Align::Right => s.push_str(&format!("{pad}{cell}")),
                }
            }
            s.trim_end().to_owned()
        };
        let head = line(&mut self.heads.iter().map(|(h, _)| *h));
        out.push_str(&format!("  {}\n", style.paint(BOLD, &head)));
        for (tone, cells) in &self.rows {
            let text = line(&mut cells.iter().map(String::as_str));
            let (marker, code) = match tone {
                Tone::Bad => ('!', Some(RED)),
                Tone::Warn => (' ', Some(YELLOW)),
                Tone::Plain => (' ', None),
            };
            let text = match code {
                Some(code) => style.paint(code, &text),
                None => text,
            };
            let marker = if marker == '!' { style.paint(RED, "!") } else { " ".to_owned() };
            out.push_str(&format!("{marker} {text}\n"));
        }
    }
}

fn short_sha(sha: Option<&str>) -> String {
    sha.map(|s| s.chars().take(12).collect()).unwrap_or_else(|| "-".into())
}

/// `inspect ARCHIVE`.
pub fn summary_text(s: &Summary, style: &Style) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "archive    {}", s.archive.display());
    let mut gathered = gathered_text(s.gathered.as_ref());
    if let Some(ms) = s.duration_in_ms {
        gathered.push_str(&format!(", took {}", human_ms(ms)));
    }
    let _ = writeln!(out, "gathered   {gathered}");
    if let Some(v) = &s.agent_version {
        let _ = writeln!(out, "agent      gather-agent {}", printable(v));
    }
    let _ = writeln!(
        out,
        "size       {} compressed, {} in {}",
        human_bytes(s.compressed_bytes),
        human_bytes(s.uncompressed_bytes),
        count(s.records, "record")
    );
    let Some(gatherers) = &s.gatherers else {
        let _ = writeln!(out, "gatherers  unknown: {GATHERS_JSON} could not be read");
        if let Some(records) = &s.records_read {
            let _ = writeln!(out, "\n{} could be read:", count(records.len() as u64, "record"));
            records_table(records, false, &mut out);
        }
        return out;
    };
    let failed = s.failed();
    let warned = gatherers.iter().filter(|g| !g.failed && !g.warnings.is_empty()).count();
    let mut counts = format!("{} ran", gatherers.len());
    if failed > 0 {
        counts.push_str(&format!(", {}", style.paint(RED, &format!("{failed} failed"))));
    } else {
        counts.push_str(", none failed");
    }
    if warned > 0 {
        counts.push_str(&format!(", {warned} with warnings only"));
    }
    let _ = writeln!(out, "gatherers  {counts}");

    // The Insights Operator's gatherers have no version or sha256: leave those columns out.
    let ours = gatherers.iter().any(|g| g.version.is_some() || g.sha256.is_some());
    let mut heads = vec![("GATHERER", Align::Left)];
    if ours {
        heads.extend([("VERSION", Align::Left), ("SHA256", Align::Left)]);
    }
    heads.extend([("DURATION", Align::Right), ("RECORDS", Align::Right), ("ERRORS", Align::Right), ("WARNINGS", Align::Right)]);
    let mut table = Table::new(&heads);
    for g in gatherers {
        let mut cells = vec![g.name.clone()];
        if ours {
            cells.push(g.version.clone().unwrap_or_else(|| "-".into()));
            cells.push(short_sha(g.sha256.as_deref()));
        }
        cells.extend([
            human_ms(g.duration_in_ms),
            g.records.to_string(),
            g.errors.len().to_string(),
            g.warnings.len().to_string(),
        ]);
        let tone = if g.failed {
            Tone::Bad
        } else if !g.warnings.is_empty() {
            Tone::Warn
        } else {
            Tone::Plain
        };
        table.row(tone, cells);
    }
    out.push('\n');
    table.render(style, &mut out);
    if failed > 0 {
        let _ = writeln!(out, "\n{}", style.paint(RED, "failed (! above):"));
        let width = gatherers.iter().filter(|g| g.failed).map(|g| width(&g.name)).max().unwrap_or(0);
        for g in gatherers.iter().filter(|g| g.failed) {
            let first = g.panic.as_ref().map(|p| format!("panic: {p}")).or_else(|| g.errors.first().cloned()).unwrap_or_default();
            let kind = g.error_kind.as_ref().map(|k| format!("[{k}] ")).unwrap_or_default();
            let more = g.errors.len().saturating_sub(usize::from(g.panic.is_none()));
            let more = if more > 0 { format!(" (+{more} more)") } else { String::new() };
            let _ = writeln!(out, "  {:<width$}  {kind}{}{more}", printable(&g.name), one_line(&first));
        }
    }
    if !s.warnings.is_empty() {
        let _ = writeln!(out, "\nagent warnings:");
        for w in &s.warnings {
            let _ = writeln!(out, "  {}", one_line(w));
        }
    }
    out
}

fn records_table(records: &[RecordInfo], raw: bool, out: &mut String) {
    let w = records.iter().map(|r| r.size.to_string().len()).max().unwrap_or(0).max(4);
    let _ = writeln!(out, "{:>w$}  PATH", "SIZE");
    for r in records {
        let path = if raw { r.path.clone() } else { printable(&r.path) };
        let _ = writeln!(out, "{:>w$}  {path}", r.size);
    }
}

/// `inspect ARCHIVE ls [GLOB]`: paths with control characters and bidi overrides escaped.
pub fn listing_text(l: &Listing) -> String {
    listing(l, false)
}

/// `inspect ARCHIVE ls [GLOB] --raw`: paths exactly as stored.
pub fn listing_text_raw(l: &Listing) -> String {
    listing(l, true)
}

fn listing(l: &Listing, raw: bool) -> String {
    let mut out = String::new();
    if !l.records.is_empty() {
        records_table(&l.records, raw, &mut out);
    }
    let bytes = format!("{} bytes ({})", l.total_bytes, human_bytes(l.total_bytes));
    match &l.glob {
        Some(g) => {
            let _ = writeln!(out, "{} of {} match {g:?}, {bytes}", l.records.len(), count(l.archive_records, "record"));
        }
        None => {
            let _ = writeln!(out, "{}, {bytes}", count(l.records.len() as u64, "record"));
        }
    }
    out
}

/// `inspect ARCHIVE show PATH`: pretty JSON when the record is JSON, its text otherwise, in
/// both cases with nothing that drives the terminal (see [`TextEscaper`]).
///
/// In JSON, control characters and bidi overrides can only sit inside strings, where they are
/// written as `\uXXXX` escapes, so the output is still the same JSON.
pub fn record_text(bytes: &[u8]) -> Vec<u8> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => {
            let pretty = serde_json::to_string_pretty(&v).unwrap_or_default();
            let mut s = String::with_capacity(pretty.len() + 1);
            // serde_json escapes C0 controls inside strings already; the newlines left are
            // the pretty-printer's own.
            for c in pretty.chars() {
                if is_unsafe_char(c) && c != '\n' {
                    let _ = write!(s, "\\u{:04x}", u32::from(c));
                } else {
                    s.push(c);
                }
            }
            s.push('\n');
            s.into_bytes()
        }
        Err(_) => {
            let mut out = Vec::with_capacity(bytes.len());
            let mut escaper = TextEscaper::new(&mut out);
            // Writing to a Vec cannot fail.
            let _ = escaper.write_all(bytes).and_then(|()| escaper.finish());
            out
        }
    }
}

/// A writer that passes text on for a terminal: newlines and tabs as they are, every other
/// control character and bidi override escaped (`\u{1b}`, `\u{202e}`, `\r`) and bytes that
/// are not UTF-8 as `\xNN`. A character split across two writes is handled; call
/// [`TextEscaper::finish`] at the end so a truncated one is shown too.
pub struct TextEscaper<W: std::io::Write> {
    inner: W,
    /// The start of a UTF-8 sequence that the last write cut short (at most 3 bytes).
    pending: Vec<u8>,
}

impl<W: std::io::Write> TextEscaper<W> {
    /// Escapes into `inner`.
    pub fn new(inner: W) -> Self {
        TextEscaper { inner, pending: Vec::new() }
    }

    /// Writes out a trailing incomplete character (as `\xNN`) and flushes.
    pub fn finish(&mut self) -> std::io::Result<()> {
        let mut out = String::new();
        for b in std::mem::take(&mut self.pending) {
            let _ = write!(out, "\\x{b:02x}");
        }
        self.inner.write_all(out.as_bytes())?;
        self.inner.flush()
    }

    fn escape_str(s: &str, out: &mut String) {
        for c in s.chars() {
            if is_unsafe_char(c) && c != '\n' && c != '\t' {
                let _ = write!(out, "{}", c.escape_default());
            } else {
                out.push(c);
            }
        }
    }
}

impl<W: std::io::Write> std::io::Write for TextEscaper<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut input = std::mem::take(&mut self.pending);
        input.extend_from_slice(buf);
        let mut out = String::with_capacity(input.len());
        let mut rest = &input[..];
        while !rest.is_empty() {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    Self::escape_str(s, &mut out);
                    rest = &[];
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    Self::escape_str(std::str::from_utf8(valid).unwrap_or_default(), &mut out);
                    match e.error_len() {
                        Some(n) => {
                            for b in &after[..n] {
                                let _ = write!(out, "\\x{b:02x}");
                            }
                            rest = &after[n..];
                        }
                        None => {
                            self.pending = after.to_vec();
                            rest = &[];
                        }
                    }
                }
            }
        }
        self.inner.write_all(out.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// `inspect ARCHIVE show PATH --json`.
pub fn record_json(path: &str, bytes: &[u8]) -> String {
    use base64::Engine as _;
    let (encoding, content) = match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => ("json", v),
        Err(_) => match std::str::from_utf8(bytes) {
            Ok(text) => ("utf-8", Value::String(text.to_owned())),
            Err(_) => ("base64", Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))),
        },
    };
    json(&serde_json::json!({"path": path, "size": bytes.len(), "encoding": encoding, "content": content}))
}

/// `inspect ARCHIVE meta`: any JSON value as indented `key: value` text, in full.
pub fn meta_text(value: &Value) -> String {
    let mut out = String::new();
    tree(value, 0, &mut out);
    out
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) if !s.is_empty() && !s.contains('\n') && s.trim() == s => printable(s),
        Value::Array(a) if a.is_empty() => "[]".into(),
        Value::Object(o) if o.is_empty() => "{}".into(),
        other => other.to_string(),
    }
}

fn is_scalar(v: &Value) -> bool {
    match v {
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => true,
    }
}

fn tree(value: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                if is_scalar(v) {
                    let _ = writeln!(out, "{pad}{}: {}", printable(k), scalar(v));
                } else {
                    let _ = writeln!(out, "{pad}{}:", printable(k));
                    tree(v, indent + 2, out);
                }
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                if is_scalar(item) {
                    let _ = writeln!(out, "{pad}- {}", scalar(item));
                } else {
                    // `- ` then the item's first line, the rest indented under it.
                    let mut inner = String::new();
                    tree(item, indent + 2, &mut inner);
                    let inner = inner.strip_prefix(&" ".repeat(indent + 2)).unwrap_or(&inner);
                    let _ = write!(out, "{pad}- {inner}");
                }
            }
        }
        other => {
            let _ = writeln!(out, "{pad}{}", scalar(other));
        }
    }
}

fn value_text(v: Option<&Value>) -> String {
    match v {
        None => "(absent)".into(),
        Some(v) => one_line(&v.to_string()),
    }
}

fn field_line(c: &FieldChange) -> String {
    format!("    {}: {} → {}", c.path, value_text(c.old.as_ref()), value_text(c.new.as_ref()))
}

fn version_text(state: &super::diff::GathererState) -> String {
    let mut s = printable(state.version.as_deref().unwrap_or("-"));
    if let Some(sha) = &state.sha256 {
        s.push_str(&format!(" ({})", short_sha(Some(sha))));
    }
    s
}

fn gatherer_change_text(c: &GathererChange, style: &Style) -> (String, String) {
    match (&c.old, &c.new) {
        (None, Some(n)) => (style.paint(GREEN, "+"), format!("new, {}", version_text(n))),
        (Some(o), None) => (style.paint(RED, "-"), format!("gone, was {}", version_text(o))),
        (Some(o), Some(n)) => {
            let mut what = Vec::new();
            if o.version != n.version || o.sha256 != n.sha256 {
                what.push(format!("{} → {}", version_text(o), version_text(n)));
            }
            match (o.failed, n.failed) {
                (false, true) => what.push(style.paint(
                    RED,
                    &format!("now failing: {}", one_line(n.error.as_deref().unwrap_or_default())),
                )),
                (true, false) => what.push(style.paint(GREEN, "recovered")),
                _ => {}
            }
            ("~".into(), what.join("; "))
        }
        (None, None) => ("?".into(), String::new()),
    }
}

/// `inspect OLD NEW diff`.
pub fn diff_text(d: &ArchiveDiff, style: &Style) -> String {
    let mut out = String::new();
    for (label, side) in [("old", &d.old), ("new", &d.new)] {
        let _ = writeln!(
            out,
            "{label}  {}  gathered {}, {}",
            side.archive.display(),
            gathered_text(side.gathered.as_ref()),
            count(side.records, "record")
        );
    }
    out.push('\n');
    if d.gatherers.is_empty() {
        let _ = writeln!(out, "gatherers: no changes in versions or failures");
    } else {
        let _ = writeln!(out, "gatherers:");
        let w = d.gatherers.iter().map(|c| width(&c.name)).max().unwrap_or(0);
        for c in &d.gatherers {
            let (sign, what) = gatherer_change_text(c, style);
            let _ = writeln!(out, "  {sign} {:<w$}  {what}", printable(&c.name));
        }
    }
    out.push('\n');
    let _ = write!(
        out,
        "records: {} added, {} removed, {} changed, {} unchanged",
        d.added.len(),
        d.removed.len(),
        d.changed.len(),
        d.unchanged
    );
    if d.noise_only > 0 {
        let _ = write!(out, " ({} of them differ only in ignored fields; --all shows them)", d.noise_only);
    }
    let _ = writeln!(out, " ({GATHERS_JSON} not compared)");
    if d.all {
        let _ = writeln!(out, "comparing every field (--all): nothing is ignored");
    }
    if !(d.added.is_empty() && d.removed.is_empty() && d.changed.is_empty()) {
        out.push('\n');
    }
    for r in &d.added {
        let _ = writeln!(out, "{} {}  ({} bytes)", style.paint(GREEN, "+"), printable(&r.path), r.size);
    }
    for r in &d.removed {
        let _ = writeln!(out, "{} {}  ({} bytes)", style.paint(RED, "-"), printable(&r.path), r.size);
    }
    for c in &d.changed {
        let ignored = if c.ignored > 0 {
            format!("  ({} not shown)", count(c.ignored as u64, "ignored field"))
        } else {
            String::new()
        };
        if c.json {
            let _ = writeln!(out, "~ {}{ignored}", printable(&c.path));
            for f in &c.fields {
                let _ = writeln!(out, "{}", field_line(f));
            }
        } else {
            let _ = writeln!(out, "~ {}  (not JSON: {} → {} bytes)", printable(&c.path), c.old_size, c.new_size);
        }
    }
    out
}

const SPARKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

fn sparkline(values: &[Option<u64>]) -> String {
    let present: Vec<u64> = values.iter().flatten().copied().collect();
    let (Some(&lo), Some(&hi)) = (present.iter().min(), present.iter().max()) else {
        return String::new();
    };
    values
        .iter()
        .map(|v| match v {
            None => ' ',
            Some(_) if hi == lo => SPARKS[0],
            // In u128: a corrupt gathers.json may hold durations near u64::MAX.
            Some(v) => SPARKS[((u128::from(v - lo) * 7 + u128::from(hi - lo) / 2) / u128::from(hi - lo)) as usize],
        })
        .collect()
}

fn status_char(s: RunStatus) -> char {
    match s {
        RunStatus::Ok => '.',
        RunStatus::Warnings => 'w',
        RunStatus::Failed => '!',
        RunStatus::Absent => '-',
        RunStatus::Unreadable => '?',
    }
}

/// `inspect DIR`: one row per period, then one row per gatherer with its trend.
pub fn trend_text(t: &Trend, style: &Style) -> String {
    let mut out = String::new();
    let times: Vec<OffsetDateTime> = t.periods.iter().filter_map(|p| p.gathered.map(|g| g.at)).collect();
    let span = match (times.first(), times.last()) {
        (Some(a), Some(b)) => format!(", {} to {}", human_time(*a), human_time(*b)),
        _ => String::new(),
    };
    let _ = writeln!(out, "{} in {}{span}\n", count(t.periods.len() as u64, "archive"), t.directory.display());
    let mut table = Table::new(&[
        ("GATHERED", Align::Left),
        ("ARCHIVE", Align::Left),
        ("TOOK", Align::Right),
        ("SIZE", Align::Right),
        ("RECORDS", Align::Right),
        ("GATHERERS", Align::Right),
        ("FAILED", Align::Right),
        ("PROBLEM", Align::Left),
    ]);
    for p in &t.periods {
        let failed = p.failed();
        let tone = if failed > 0 || p.error.is_some() { Tone::Bad } else { Tone::Plain };
        let time = p.gathered.map(|g| human_time(g.at)).unwrap_or_else(|| "unknown".into());
        table.row(
            tone,
            vec![
                time,
                p.archive.clone(),
                p.duration_in_ms.map(human_ms).unwrap_or_else(|| "-".into()),
                human_bytes(p.compressed_bytes),
                p.records.to_string(),
                p.gatherers.len().to_string(),
                failed.to_string(),
                p.error.as_ref().map(|e| one_line(&e.to_string())).unwrap_or_default(),
            ],
        );
    }
    table.render(style, &mut out);
    if t.gatherers.is_empty() {
        return out;
    }
    out.push('\n');
    let mut table = Table::new(&[
        ("GATHERER", Align::Left),
        ("RUNS", Align::Right),
        ("FAILED", Align::Right),
        ("MIN", Align::Right),
        ("MEDIAN", Align::Right),
        ("MAX", Align::Right),
        ("DURATION", Align::Left),
        ("STATUS", Align::Left),
    ]);
    for g in &t.gatherers {
        let tone = if g.failed > 0 { Tone::Bad } else { Tone::Plain };
        table.row(
            tone,
            vec![
                g.name.clone(),
                g.runs.to_string(),
                g.failed.to_string(),
                human_ms(g.min_ms),
                human_ms(g.median_ms),
                human_ms(g.max_ms),
                sparkline(&g.durations),
                g.status.iter().map(|s| status_char(*s)).collect(),
            ],
        );
    }
    table.render(style, &mut out);
    let _ = writeln!(
        out,
        "\nDURATION and STATUS have one column per period, oldest first. STATUS: . ok, w warnings, ! failed, - did not run, ? unreadable"
    );
    out
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const PALETTE: [&str; 10] =
    ["#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#bab0ac", "#ff9da7", "#17becf"];
const FAIL_COLOR: &str = "#e15759";

/// A round step for about `target` intervals up to `max`.
fn nice_step(max: u64, target: u64) -> u64 {
    let raw = (max / target).max(1);
    let mut magnitude = 1;
    while magnitude * 10 <= raw {
        magnitude *= 10;
    }
    [1, 2, 5, 10].iter().map(|m| m * magnitude).find(|s| *s >= raw).unwrap_or(10 * magnitude)
}

/// Round tick steps for a time axis, in seconds: from 1 s to a year.
const TIME_STEPS: [i64; 25] = [
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172_800, 432_000, 604_800,
    1_209_600, 2_592_000, 7_776_000, 31_536_000,
];

/// A time axis over `[start, end]` (Unix seconds): where each tick goes, and its label.
#[derive(Debug, PartialEq)]
struct TimeAxis {
    start: f64,
    end: f64,
    /// (Unix seconds, label), oldest first; labels are distinct.
    ticks: Vec<(i64, String)>,
}

/// Ticks at the roundest step giving at most 8 intervals over the span, aligned to UTC
/// (whole minutes, hours, days), labelled with just enough to tell them apart: seconds only
/// for sub-minute steps, the date only when the span crosses midnight or the step is days.
fn time_axis(times: &[OffsetDateTime]) -> Option<TimeAxis> {
    let secs = |t: &OffsetDateTime| t.unix_timestamp_nanos() as f64 / 1e9;
    let start = times.iter().map(secs).fold(f64::INFINITY, f64::min);
    let end = times.iter().map(secs).fold(f64::NEG_INFINITY, f64::max);
    if !start.is_finite() || !end.is_finite() {
        return None;
    }
    let span = end - start;
    let step = TIME_STEPS.iter().copied().find(|s| span / *s as f64 <= 8.0).unwrap_or_else(|| {
        // Over 8 years: whole years of 365 days, as many as it takes.
        let year = TIME_STEPS[TIME_STEPS.len() - 1];
        year * ((span / (8.0 * year as f64)).ceil() as i64).max(1)
    });
    let first = (start / step as f64).ceil() as i64 * step;
    let mut at: Vec<i64> = (0..).map(|i| first + i * step).take_while(|t| *t as f64 <= end).collect();
    if at.is_empty() {
        // A span shorter than a second with no whole second inside: label the start.
        at.push(start.floor() as i64);
    }
    let when = |t: i64| OffsetDateTime::from_unix_timestamp(t).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let (first_day, last_day) = (when(start.floor() as i64).date(), when(end.floor() as i64).date());
    let years_differ = first_day.year() != last_day.year();
    let format: &[time::format_description::FormatItem<'static>] = if step >= 86_400 {
        if years_differ { time::macros::format_description!("[year]-[month]-[day]") } else { time::macros::format_description!("[month]-[day]") }
    } else {
        match (step < 60, first_day != last_day, years_differ) {
            (true, false, _) => time::macros::format_description!("[hour]:[minute]:[second]"),
            (true, true, false) => time::macros::format_description!("[month]-[day] [hour]:[minute]:[second]"),
            (true, true, true) => time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
            (false, false, _) => time::macros::format_description!("[hour]:[minute]"),
            (false, true, false) => time::macros::format_description!("[month]-[day] [hour]:[minute]"),
            (false, true, true) => time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]"),
        }
    };
    let ticks = at.into_iter().map(|t| (t, when(t).format(format).unwrap_or_default())).collect();
    Some(TimeAxis { start, end, ticks })
}

fn duration_chart(t: &Trend) -> String {
    const W: f64 = 960.0;
    const H: f64 = 360.0;
    const LEFT: f64 = 80.0;
    const RIGHT: f64 = 60.0;
    const TOP: f64 = 20.0;
    const BOTTOM: f64 = 60.0;
    // Clamped (2^50 ms is 35,000 years): the axis arithmetic below must not overflow on a
    // corrupt gathers.json (a panic with overflow checks, nonsense ticks without).
    let max = t.gatherers.iter().map(|g| g.max_ms).max().unwrap_or(0).clamp(1, 1 << 50);
    let step = nice_step(max, 5);
    let top = max.div_ceil(step) * step;
    // x is proportional to gathering time; a period whose time is unknown is not on the chart.
    let times: Vec<Option<OffsetDateTime>> = t.periods.iter().map(|p| p.gathered.map(|g| g.at)).collect();
    let known: Vec<OffsetDateTime> = times.iter().flatten().copied().collect();
    let axis = time_axis(&known);
    let x_at = |secs: f64| match &axis {
        Some(a) if a.end > a.start => LEFT + (W - LEFT - RIGHT) * (secs - a.start) / (a.end - a.start),
        _ => LEFT + (W - LEFT - RIGHT) / 2.0,
    };
    let x = |i: usize| times[i].map(|at| x_at(at.unix_timestamp_nanos() as f64 / 1e9));
    let y = |ms: u64| TOP + (H - TOP - BOTTOM) * (1.0 - ms as f64 / top as f64);
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="gatherer durations over time">"#
    );
    svg.push('\n');
    let mut tick = 0;
    while tick <= top {
        let ty = y(tick);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" x2="{}" y1="{ty:.1}" y2="{ty:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end" class="axis">{}</text>"##,
            W - RIGHT,
            LEFT - 8.0,
            ty + 4.0,
            esc(&human_ms(tick))
        );
        tick += step;
    }
    if let Some(axis) = &axis {
        for (at, label) in &axis.ticks {
            let tx = x_at(*at as f64);
            let _ = writeln!(
                svg,
                r##"<line x1="{tx:.1}" x2="{tx:.1}" y1="{TOP}" y2="{}" stroke="#eee"/><text x="{tx:.1}" y="{}" text-anchor="middle" class="axis time">{}</text>"##,
                H - BOTTOM,
                H - BOTTOM + 18.0,
                esc(label)
            );
        }
    }
    let unplaced = times.iter().filter(|t| t.is_none()).count();
    let caption = match unplaced {
        0 => "time (UTC)".to_owned(),
        n => format!("time (UTC); {n} period(s) of unknown time not shown"),
    };
    let _ = writeln!(svg, r#"<text x="{}" y="{}" text-anchor="middle" class="axis">{}</text>"#, LEFT + (W - LEFT - RIGHT) / 2.0, H - BOTTOM + 40.0, esc(&caption));
    for (gi, g) in t.gatherers.iter().enumerate() {
        let color = PALETTE[gi % PALETTE.len()];
        // One polyline per run of consecutive periods the gatherer ran in.
        let mut segment: Vec<String> = Vec::new();
        let flush = |segment: &mut Vec<String>, svg: &mut String| {
            if segment.len() > 1 {
                let _ = writeln!(
                    svg,
                    r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
                    segment.join(" ")
                );
            }
            segment.clear();
        };
        for (i, d) in g.durations.iter().enumerate() {
            match (d, x(i)) {
                (Some(ms), Some(px)) => segment.push(format!("{px:.1},{:.1}", y(*ms))),
                _ => flush(&mut segment, &mut svg),
            }
        }
        flush(&mut segment, &mut svg);
    }
    // Points after every line, failed runs last, so that nothing hides a failure.
    for failed_pass in [false, true] {
        for (gi, g) in t.gatherers.iter().enumerate() {
            let color = PALETTE[gi % PALETTE.len()];
            for (i, (d, status)) in g.durations.iter().zip(&g.status).enumerate() {
                let (Some(ms), Some(px)) = (d, x(i)) else { continue };
                let failed = *status == RunStatus::Failed;
                if failed != failed_pass {
                    continue;
                }
                let when = times[i].map(human_time).unwrap_or_default();
                let (r, fill, note) = if failed { (5.5, FAIL_COLOR, " (failed)") } else { (3.0, color, "") };
                let _ = writeln!(
                    svg,
                    r#"<circle cx="{px:.1}" cy="{:.1}" r="{r}" fill="{fill}" stroke="{color}"><title>{}: {}, {}{note}</title></circle>"#,
                    y(*ms),
                    esc(&g.name),
                    esc(&when),
                    esc(&human_ms(*ms))
                );
            }
        }
    }
    svg.push_str("</svg>\n");
    svg
}

/// `inspect DIR --html OUT`: one self-contained page (inline CSS and SVG, no scripts, nothing
/// fetched) with a duration chart per gatherer and the two tables of [`trend_text`].
pub fn trend_html(t: &Trend) -> String {
    let mut h = String::new();
    let title = format!("Insights archives in {}", t.directory.display());
    let _ = writeln!(
        h,
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ padding: 3px 10px; border-bottom: 1px solid #eee; text-align: left; }}
td.n {{ text-align: right; font-variant-numeric: tabular-nums; }}
tr.bad td {{ background: #fdecea; }}
.axis {{ font-size: 11px; fill: #555; }}
.legend span {{ display: inline-block; margin-right: 1.2em; }}
.legend i {{ display: inline-block; width: 12px; height: 12px; margin-right: 4px; vertical-align: -1px; }}
.st {{ font-family: ui-monospace, monospace; letter-spacing: 2px; }}
.st b {{ color: {FAIL_COLOR}; }}
</style>
</head>
<body>
<h1>{}</h1>"#,
        esc(&title),
        esc(&title)
    );
    let times: Vec<OffsetDateTime> = t.periods.iter().filter_map(|p| p.gathered.map(|g| g.at)).collect();
    let failed_periods = t.periods.iter().filter(|p| p.failed() > 0 || p.error.is_some()).count();
    let _ = writeln!(
        h,
        "<p>{} periods{}; {} with failures or damage.</p>",
        t.periods.len(),
        match (times.first(), times.last()) {
            (Some(a), Some(b)) => format!(" from {} to {}", human_time(*a), human_time(*b)),
            _ => String::new(),
        },
        failed_periods
    );
    let _ = writeln!(h, "<h2>Gatherer durations</h2>");
    if t.gatherers.is_empty() {
        let _ = writeln!(h, "<p>No gatherer data could be read.</p>");
    } else {
        h.push_str(&duration_chart(t));
        let _ = write!(h, r#"<p class="legend">"#);
        for (gi, g) in t.gatherers.iter().enumerate() {
            let _ = write!(h, r#"<span><i style="background:{}"></i>{}</span>"#, PALETTE[gi % PALETTE.len()], esc(&g.name));
        }
        let _ = writeln!(h, r#"<span><i style="background:{FAIL_COLOR};border-radius:6px"></i>failed run</span></p>"#);
    }
    let _ = writeln!(
        h,
        "<h2>Periods</h2>\n<table>\n<tr><th>gathered</th><th>archive</th><th>took</th><th>size</th><th>records</th><th>gatherers</th><th>failed</th><th>problem</th></tr>"
    );
    for p in &t.periods {
        let bad = p.failed() > 0 || p.error.is_some();
        let _ = writeln!(
            h,
            r#"<tr{}><td>{}</td><td>{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td>{}</td></tr>"#,
            if bad { r#" class="bad""# } else { "" },
            esc(&p.gathered.map(|g| human_time(g.at)).unwrap_or_else(|| "unknown".into())),
            esc(&p.archive),
            esc(&p.duration_in_ms.map(human_ms).unwrap_or_else(|| "-".into())),
            esc(&human_bytes(p.compressed_bytes)),
            p.records,
            p.gatherers.len(),
            p.failed(),
            esc(&p.error.as_ref().map(|e| e.to_string()).unwrap_or_default())
        );
    }
    let _ = writeln!(h, "</table>");
    if !t.gatherers.is_empty() {
        let _ = writeln!(
            h,
            "<h2>Gatherers</h2>\n<table>\n<tr><th>gatherer</th><th>runs</th><th>failed</th><th>min</th><th>median</th><th>max</th><th>status per period, oldest first</th></tr>"
        );
        for g in &t.gatherers {
            let status: String = g
                .status
                .iter()
                .map(|s| match s {
                    RunStatus::Failed => "<b>!</b>".to_owned(),
                    other => status_char(*other).to_string(),
                })
                .collect();
            let _ = writeln!(
                h,
                r#"<tr{}><td>{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="st">{status}</td></tr>"#,
                if g.failed > 0 { r#" class="bad""# } else { "" },
                esc(&g.name),
                g.runs,
                g.failed,
                esc(&human_ms(g.min_ms)),
                esc(&human_ms(g.median_ms)),
                esc(&human_ms(g.max_ms))
            );
        }
        let _ = writeln!(h, "</table>\n<p>Status: . ok, w warnings, ! failed, - did not run, ? unreadable.</p>");
    }
    let _ = writeln!(h, "<p><small>Written by gather-agent inspect.</small></p>\n</body>\n</html>");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_escaper_handles_characters_split_across_writes() {
        let text = "é\u{202e}x\x1b\n".as_bytes();
        for cut in 0..text.len() {
            let mut out = Vec::new();
            let mut e = TextEscaper::new(&mut out);
            e.write_all(&text[..cut]).unwrap();
            e.write_all(&text[cut..]).unwrap();
            e.finish().unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), "é\\u{202e}x\\u{1b}\n", "cut at {cut}");
        }
        // A sequence cut off at the very end is shown as bytes, not lost.
        let mut out = Vec::new();
        let mut e = TextEscaper::new(&mut out);
        e.write_all(b"ok\xe2\x80").unwrap();
        e.finish().unwrap();
        assert_eq!(out, b"ok\\xe2\\x80");
    }

    #[test]
    fn human_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024), "3.0 MiB");
        assert_eq!(human_ms(999), "999 ms");
        assert_eq!(human_ms(1500), "1.5 s");
        assert_eq!(human_ms(125_000), "2 min 5 s");
        assert_eq!(human_time(time::macros::datetime!(2024-03-05 09:08:09 +02:00)), "2024-03-05 07:08:09 UTC");
    }

    #[test]
    fn sparklines_scale_between_min_and_max() {
        assert_eq!(sparkline(&[Some(10), Some(20), None, Some(80)]), "▁▂ █");
        assert_eq!(sparkline(&[Some(5), Some(5)]), "▁▁");
        assert_eq!(sparkline(&[None]), "");
    }

    #[test]
    fn tables_align_and_mark_failures() {
        let mut t = Table::new(&[("NAME", Align::Left), ("N", Align::Right)]);
        t.row(Tone::Plain, vec!["a".into(), "10".into()]);
        t.row(Tone::Bad, vec!["long-name".into(), "2".into()]);
        let mut out = String::new();
        t.render(&Style::plain(), &mut out);
        assert_eq!(out, "  NAME        N\n  a          10\n! long-name   2\n");
        let mut colored = String::new();
        t.render(&Style { color: true }, &mut colored);
        assert!(colored.contains("\x1b[31m!\x1b[0m \x1b[31mlong-name   2\x1b[0m"), "{colored:?}");
    }

    #[test]
    fn meta_text_shows_everything() {
        let v = serde_json::json!({"status_reports": [{"name": "a", "errors": null, "warnings": ["x", "y"]}, {"name": "b", "errors": []}],
                                   "uptime_seconds": 1.5, "agent_version": "", "nested": {"k": " padded "}});
        assert_eq!(
            meta_text(&v),
            "status_reports:\n  - name: a\n    errors: null\n    warnings:\n      - x\n      - y\n  - name: b\n    errors: []\nuptime_seconds: 1.5\nagent_version: \"\"\nnested:\n  k: \" padded \"\n"
        );
    }

    fn at(unix: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(unix).unwrap()
    }

    /// 2024-05-01 10:00:00 UTC.
    const T0: i64 = 1_714_557_600;

    fn labels(times: &[i64]) -> Vec<String> {
        let times: Vec<OffsetDateTime> = times.iter().map(|t| at(*t)).collect();
        time_axis(&times).unwrap().ticks.into_iter().map(|(_, l)| l).collect()
    }

    /// Tick labels are distinct, inside the span, and as precise as their step needs: the
    /// old per-minute labels read the same for periods seconds apart.
    #[test]
    fn time_axis_ticks_are_chosen_by_span_and_distinct() {
        let every = |n: i64, step: i64, from: i64| (0..n).map(|i| from + i * step).collect::<Vec<_>>();
        // Eleven periods 2 s apart: seconds.
        assert_eq!(labels(&every(11, 2, T0 + 1)), ["10:00:05", "10:00:10", "10:00:15", "10:00:20"]);
        // Eleven periods a minute apart: minutes, every 2.
        assert_eq!(labels(&every(11, 60, T0 + 30)), ["10:02", "10:04", "10:06", "10:08", "10:10"]);
        // Ten hours: hours.
        assert_eq!(labels(&every(6, 7200, T0)), ["10:00", "12:00", "14:00", "16:00", "18:00", "20:00"]);
        // Across midnight: the date too.
        assert_eq!(labels(&[T0 + 12 * 3600, T0 + 18 * 3600]), ["05-01 22:00", "05-01 23:00", "05-02 00:00", "05-02 01:00", "05-02 02:00", "05-02 03:00", "05-02 04:00"]);
        // Days: dates; across a new year, with the year.
        assert_eq!(labels(&every(6, 86_400, T0)), ["05-02", "05-03", "05-04", "05-05", "05-06"]);
        let new_year = 1_735_689_600; // 2025-01-01 00:00:00 UTC
        let l = labels(&[new_year - 86_400 * 2 - 60, new_year + 86_400 * 5]);
        assert_eq!(l.len(), 8, "{l:?}");
        assert_eq!((l[0].as_str(), l[2].as_str(), l[7].as_str()), ("2024-12-30", "2025-01-01", "2025-01-06"));
        // One period: one tick at it.
        assert_eq!(labels(&[T0 + 7]), ["10:00:07"]);
        for span in [1, 7, 59, 61, 599, 3601, 86_399, 86_401, 10 * 86_400, 400 * 86_400, 20 * 365 * 86_400] {
            let l = labels(&[T0, T0 + span]);
            let distinct: std::collections::BTreeSet<&String> = l.iter().collect();
            assert_eq!(distinct.len(), l.len(), "span {span}: {l:?}");
            assert!((1..=9).contains(&l.len()), "span {span}: {l:?}");
        }
        assert_eq!(time_axis(&[]), None);
    }

    /// Points sit at their time: a period after a 10-minute gap is 10 times farther than one
    /// after a 1-minute gap (by index they were equally spaced).
    #[test]
    fn the_chart_places_periods_by_time() {
        use super::super::trend::{GathererRun, Period};
        let period = |unix: Option<i64>, ms: u64| Period {
            archive: format!("p{}.tar.gz", unix.unwrap_or(0)),
            gathered: unix.map(|u| Gathered { at: at(u), from: GatheredFrom::Metadata }),
            duration_in_ms: Some(ms),
            compressed_bytes: 1,
            uncompressed_bytes: 1,
            records: 1,
            gatherers: vec![GathererRun { name: "nodes".into(), version: None, duration_in_ms: ms, records: 1, errors: 0, warnings: 0, failed: false }],
            error: None,
        };
        let periods = vec![period(Some(T0), 10), period(Some(T0 + 60), 20), period(Some(T0 + 660), 30), period(None, 40)];
        let t = Trend::from_periods(std::path::Path::new("d"), periods);
        let svg = duration_chart(&t);
        let cx: Vec<f64> = svg
            .split("<circle cx=\"")
            .skip(1)
            .map(|rest| rest.split('"').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(cx.len(), 3, "the period of unknown time is not placed: {svg}");
        let (first, second, third) = (cx[0] - cx[0], cx[1] - cx[0], cx[2] - cx[0]);
        assert!(first == 0.0 && (third / second - 11.0).abs() < 0.05, "{cx:?}");
        assert!(svg.contains("1 period(s) of unknown time not shown"));
        let ticks: Vec<&str> = svg.split(r#"class="axis time">"#).skip(1).map(|r| r.split('<').next().unwrap()).collect();
        assert_eq!(ticks, ["10:00", "10:02", "10:04", "10:06", "10:08", "10:10"]);
    }

    #[test]
    fn html_is_escaped_and_self_contained() {
        let t = Trend {
            directory: "<dir>".into(),
            periods: Vec::new(),
            gatherers: vec![super::super::trend::GathererTrend {
                name: "<script>".into(),
                runs: 1,
                failed: 0,
                min_ms: 1,
                median_ms: 1,
                max_ms: 1,
                durations: vec![],
                status: vec![],
            }],
        };
        let html = trend_html(&t);
        assert!(!html.contains("<script>") && html.contains("&lt;script&gt;"));
        assert!(!html.contains("src=") && !html.contains("href="));
        assert_eq!(nice_step(1234, 5), 500);
        assert_eq!(nice_step(3, 5), 1);
    }
}

//! `gather-agent inspect` (and `gather-inspect`): read archives back on a laptop: summary, ls,
//! show, meta, diff, and a directory of archives over time. The work is in this crate's other
//! modules; this one parses the command line and decides what goes to stdout, what to stderr,
//! and the exit status.

use std::ffi::OsString;
use std::io::{IsTerminal as _, Write};
use std::path::{Path, PathBuf};

use crate as inspect;
use crate::{glob::Glob, render, InspectError};
use anyhow::Context as _;

const EXAMPLES: &str = "\
Commands:
  inspect ARCHIVE                 summary: when, size, one row per gatherer (! marks failures)
  inspect ARCHIVE ls [GLOB]       record paths and sizes; GLOB has *, ** and ?, and a directory
                                  lists everything under it (--raw: paths unescaped)
  inspect ARCHIVE show PATH       one record, pretty-printed if it is JSON (--raw: exact bytes)
  inspect ARCHIVE meta            insights-operator/gathers.json, in full
  inspect OLD NEW diff            what changed between two periods (also: inspect diff OLD NEW)
  inspect DIR                     every archive in DIR over time (--html OUT for a report)

Examples:
  gather-agent inspect archives/insights-2024-03-05-070809.tar.gz
  gather-agent inspect archive.tar.gz ls 'config/pod/**'
  gather-agent inspect archive.tar.gz ls '**/worker-*.json'
  gather-agent inspect archive.tar.gz show config/node/worker-0.json
  gather-agent inspect archive.tar.gz show config/id --raw > id
  gather-agent inspect archive.tar.gz meta --json | jq '.status_reports[] | select(.errors)'
  gather-agent inspect yesterday.tar.gz today.tar.gz diff
  gather-agent inspect diff yesterday.tar.gz today.tar.gz --all
  gather-agent inspect archives/ --html report.html

diff ignores bookkeeping that changes on every write unless --all is given: resourceVersion,
managedFields, generation, observedGeneration and last*Time / last*Timestamp fields
(lastHeartbeatTime, lastTransitionTime, lastProbeTime...). It says how many it ignored.

Control characters and bidi overrides (U+202E...) in paths and records are shown escaped
(\u{1b}, \u{202e}) unless --raw is given. A gathers.json over 16 MiB is skipped with an
error, and records over 4 MiB are streamed rather than pretty-printed.

Archives written by the Insights Operator itself work too. A damaged archive (truncated,
corrupt, not gzip, no gathers.json) gets a one-line error and exit status 1; the records that
could be read are still listed first.";

/// Arguments of `gather-agent inspect`.
#[derive(clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct InspectArgs {
    /// ARCHIVE [ls [GLOB] | show PATH | meta], OLD NEW diff, diff OLD NEW, or DIR.
    #[arg(value_name = "ARGS", required = true, num_args = 1..=4)]
    pub args: Vec<OsString>,
    /// Print JSON instead of text (every command).
    #[arg(long)]
    pub json: bool,
    /// show: write the record's exact bytes, without pretty-printing or escaping; ls: print
    /// paths as stored, without escaping control characters and bidi overrides.
    #[arg(long)]
    pub raw: bool,
    /// diff: compare every field, including resourceVersion, managedFields and timestamps.
    #[arg(long)]
    pub all: bool,
    /// DIR: also write a self-contained HTML report (tables and an SVG chart) to this file.
    #[arg(long, value_name = "OUT")]
    pub html: Option<PathBuf>,
    /// Colour: `auto` (when stdout is a terminal and NO_COLOR is unset), `always` or `never`.
    #[arg(long, value_name = "WHEN", default_value = "auto", value_parser = ["auto", "always", "never"])]
    pub color: String,
}

#[derive(Debug, PartialEq)]
enum Action {
    Summary(PathBuf),
    Ls(PathBuf, Option<String>),
    Show(PathBuf, String),
    Meta(PathBuf),
    Diff(PathBuf, PathBuf),
    Trend(PathBuf),
}

fn parse(args: &[OsString]) -> anyhow::Result<Action> {
    let word = |i: usize| args.get(i).and_then(|a| a.to_str());
    let path = |i: usize| PathBuf::from(&args[i]);
    let text = |i: usize| args[i].to_string_lossy().into_owned();
    let action = match (args.len(), word(0), word(1), word(2)) {
        (3, Some("diff"), _, _) => Action::Diff(path(1), path(2)),
        (3, _, _, Some("diff")) => Action::Diff(path(0), path(1)),
        (1, _, _, _) if path(0).is_dir() => Action::Trend(path(0)),
        (1, _, _, _) | (2, _, Some("summary"), _) => Action::Summary(path(0)),
        (2, _, Some("ls"), _) => Action::Ls(path(0), None),
        (3, _, Some("ls"), _) => Action::Ls(path(0), Some(text(2))),
        (3, _, Some("show"), _) => Action::Show(path(0), text(2)),
        (2, _, Some("meta"), _) => Action::Meta(path(0)),
        (2, _, Some("show"), _) => anyhow::bail!("show needs a record path: inspect ARCHIVE show PATH"),
        (_, Some("diff"), _, _) | (_, _, Some("diff"), _) | (_, _, _, Some("diff")) => {
            anyhow::bail!("diff needs two archives: inspect OLD NEW diff, or inspect diff OLD NEW")
        }
        (2, _, Some(w), _) if !Path::new(w).exists() => {
            anyhow::bail!("unknown command {w:?} after the archive: expected ls, show, meta or diff (see --help)")
        }
        (2, _, _, _) => anyhow::bail!("two archives given: to compare them, run inspect OLD NEW diff"),
        _ => anyhow::bail!(
            "cannot make sense of {:?}: expected ARCHIVE [ls [GLOB] | show PATH | meta], OLD NEW diff or DIR (see --help)",
            args.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ")
        ),
    };
    Ok(action)
}

/// Writes to stdout; a reader that went away (`| head`) is not an error.
fn emit(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing to stdout"),
    }
}

/// The library's errors already name the file and the cause in one line.
fn fail(e: InspectError) -> anyhow::Error {
    anyhow::Error::msg(e.to_string())
}

/// Exit status for a usage error, as clap gives for its own (an unknown flag, a bad value).
pub const EXIT_USAGE: u8 = 2;

/// Exit statuses, for `--help` (both binaries).
pub const EXIT_STATUS_HELP: &str = "\
Exit status: 0 success; 1 the command failed (the error line says why); 2 a usage error: a bad
flag, argument, environment variable or config value (nothing was done).";

/// A bad command line, environment variable or config value: exit status [`EXIT_USAGE`],
/// whichever check found it (clap's, or ours after parsing). It reads as the error it wraps.
#[derive(Debug)]
pub struct Usage(anyhow::Error);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for Usage {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.chain().nth(1)
    }
}

/// Marks `e` as a usage error (see [`Usage`]).
pub fn usage(e: impl Into<anyhow::Error>) -> anyhow::Error {
    anyhow::Error::new(Usage(e.into()))
}

/// The exit status for an error: [`EXIT_USAGE`] for a [`Usage`] error, else 1.
pub fn exit_status(e: &anyhow::Error) -> u8 {
    if e.chain().any(|c| c.is::<Usage>()) { EXIT_USAGE } else { 1 }
}

/// Runs one inspect command; an error means exit status 1 (2 for a usage error, see
/// [`exit_status`]) after printing it on one line.
pub fn run(args: InspectArgs) -> anyhow::Result<()> {
    let action = parse(&args.args).map_err(usage)?;
    let applies = |flag: &str, ok: bool, to: &str| -> anyhow::Result<()> {
        if !ok {
            return Err(usage(anyhow::anyhow!("{flag} only applies to {to}")));
        }
        Ok(())
    };
    applies("--raw", !args.raw || matches!(action, Action::Show(..) | Action::Ls(..)), "show and ls")?;
    applies("--all", !args.all || matches!(action, Action::Diff(..)), "diff")?;
    applies("--html", args.html.is_none() || matches!(action, Action::Trend(..)), "a directory (inspect DIR)")?;
    if args.raw && args.json {
        return Err(usage(anyhow::anyhow!("--raw and --json cannot be combined")));
    }
    let color = match args.color.as_str() {
        "always" => true,
        "never" => false,
        _ => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
    };
    let style = render::Style { color };

    match action {
        Action::Summary(path) => {
            let summary = inspect::summary(&path).map_err(fail)?;
            if args.json {
                emit(render::json(&summary).as_bytes())?;
            } else {
                emit(render::summary_text(&summary, &style).as_bytes())?;
            }
            damaged(summary.error, summary.records_read.map_or(0, |r| r.len()))
        }
        Action::Ls(path, pattern) => {
            let glob = pattern.as_deref().map(Glob::new);
            let listing = inspect::list(&path, glob.as_ref()).map_err(fail)?;
            if args.json {
                emit(render::json(&listing).as_bytes())?;
            } else if args.raw {
                emit(render::listing_text_raw(&listing).as_bytes())?;
            } else {
                emit(render::listing_text(&listing).as_bytes())?;
            }
            damaged(listing.error, listing.archive_records as usize)
        }
        Action::Show(path, record) if args.raw => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            match inspect::copy_record(&path, &record, &mut out).and_then(|_| out.flush().map_err(InspectError::Output)) {
                Err(InspectError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                other => other.map(drop).map_err(fail),
            }
        }
        Action::Show(path, record) if args.json => {
            let bytes = inspect::read_record(&path, &record).map_err(fail)?;
            emit(render::record_json(record.trim_start_matches("./"), &bytes).as_bytes())
        }
        Action::Show(path, record) => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            match inspect::show_record(&path, &record, &mut out).and_then(|()| out.flush().map_err(InspectError::Output)) {
                Err(InspectError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                other => other.map_err(fail),
            }
        }
        Action::Meta(path) => {
            let meta = inspect::meta(&path).map_err(fail)?;
            if args.json {
                emit(render::json(&meta).as_bytes())
            } else {
                emit(render::meta_text(&meta).as_bytes())
            }
        }
        Action::Diff(old, new) => {
            let diff = inspect::diff::diff_archives(&old, &new, args.all).map_err(fail)?;
            if args.json {
                emit(render::json(&diff).as_bytes())
            } else {
                emit(render::diff_text(&diff, &style).as_bytes())
            }
        }
        Action::Trend(dir) => {
            let trend = inspect::trend::trend(&dir).map_err(fail)?;
            if args.json {
                emit(render::json(&trend).as_bytes())?;
            } else {
                emit(render::trend_text(&trend, &style).as_bytes())?;
            }
            if let Some(out) = &args.html {
                std::fs::write(out, render::trend_html(&trend))
                    .with_context(|| format!("writing the HTML report to {}", out.display()))?;
                eprintln!("wrote {}", out.display());
            }
            trend.problem().map_or(Ok(()), |e| Err(fail(e)))
        }
    }
}

/// After listing what could be read: a warning, then the error (exit status 1).
fn damaged(error: Option<InspectError>, readable: usize) -> anyhow::Result<()> {
    let Some(error) = error else { return Ok(()) };
    if !matches!(
        error,
        InspectError::MissingMetadata { .. } | InspectError::BadMetadata { .. } | InspectError::MetadataTooLarge { .. }
    ) {
        eprintln!("warning: the archive is damaged; the {readable} records above are those read intact");
    }
    Err(fail(error))
}

/// The error and its causes on one line, skipping causes a message already includes (library
/// errors often name their source in their own text).
pub fn one_line(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(words: &[&str]) -> anyhow::Result<Action> {
        parse(&words.iter().map(OsString::from).collect::<Vec<_>>())
    }

    #[test]
    fn command_lines() {
        assert_eq!(p(&["a.tar.gz"]).unwrap(), Action::Summary("a.tar.gz".into()));
        assert_eq!(p(&["."]).unwrap(), Action::Trend(".".into()));
        assert_eq!(p(&["a.tar.gz", "ls"]).unwrap(), Action::Ls("a.tar.gz".into(), None));
        assert_eq!(p(&["a.tar.gz", "ls", "config/*"]).unwrap(), Action::Ls("a.tar.gz".into(), Some("config/*".into())));
        assert_eq!(p(&["a.tar.gz", "show", "config/id"]).unwrap(), Action::Show("a.tar.gz".into(), "config/id".into()));
        assert_eq!(p(&["a.tar.gz", "meta"]).unwrap(), Action::Meta("a.tar.gz".into()));
        assert_eq!(p(&["a", "b", "diff"]).unwrap(), Action::Diff("a".into(), "b".into()));
        assert_eq!(p(&["diff", "a", "b"]).unwrap(), Action::Diff("a".into(), "b".into()));
        assert!(p(&["a.tar.gz", "show"]).unwrap_err().to_string().contains("record path"));
        assert!(p(&["a.tar.gz", "lsx"]).unwrap_err().to_string().contains("unknown command \"lsx\""));
        assert!(p(&["diff", "a"]).unwrap_err().to_string().contains("two archives"));
        assert!(p(&["a", "b", "c", "d"]).unwrap_err().to_string().contains("cannot make sense"));
    }
}

//! `gather-agent version`: what this binary is, for bug reports and fleet inventories: the
//! crate version, the gatherer ABI it hosts, the git commit it was built from, and the default
//! gatherer set embedded in it (name, version, sha256 of each module).

use serde::Serialize;

/// Arguments of `version`.
#[derive(clap::Args)]
pub struct VersionArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// What `version` reports.
#[derive(Debug, Serialize)]
pub struct Version {
    /// The crate (and binary) version.
    pub version: &'static str,
    /// The gatherer ABI version the host speaks (`hostapi/ABI.md`).
    pub abi_version: u32,
    /// The git commit built from, or `unknown` (built outside a git work tree).
    pub git_commit: &'static str,
    /// The embedded default gatherers, by file name.
    pub default_gatherers: Vec<Gatherer>,
}

/// One embedded default gatherer.
#[derive(Debug, Serialize)]
pub struct Gatherer {
    /// Its manifest's name (or the file name, if it does not load).
    pub name: String,
    /// Its manifest's version (`None` if it does not load).
    pub version: Option<String>,
    /// Hex sha256 of the module bytes (what an index lists).
    pub sha256: String,
    /// Module size in bytes.
    pub size: usize,
}

/// Collects the report; the embedded modules' manifests are read by loading them.
pub fn collect() -> Version {
    let sandbox = agent::sandbox::Sandbox::new();
    let default_gatherers = gather_defaults::modules()
        .iter()
        .map(|m| {
            let manifest = sandbox.load(m.bytes).ok().map(|l| l.manifest.clone());
            Gatherer {
                name: manifest.as_ref().map_or_else(|| m.name.trim_end_matches(".wasm").to_owned(), |mf| mf.name.clone()),
                version: manifest.map(|mf| mf.version.clone()),
                sha256: agent::util::sha256_hex(m.bytes),
                size: m.bytes.len(),
            }
        })
        .collect();
    Version {
        version: env!("CARGO_PKG_VERSION"),
        abi_version: hostapi::abi::ABI_VERSION,
        git_commit: env!("GATHER_AGENT_GIT_COMMIT"),
        default_gatherers,
    }
}

pub fn run(args: VersionArgs) -> anyhow::Result<()> {
    let v = collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("gather-agent {}", v.version);
    println!("gatherer ABI {}", v.abi_version);
    println!("git commit   {}", v.git_commit);
    println!("default gatherers ({}, embedded):", v.default_gatherers.len());
    for g in &v.default_gatherers {
        println!("  {:<24} {:<10} sha256:{}  {:>8} bytes", g.name, g.version.as_deref().unwrap_or("(invalid)"), g.sha256, g.size);
    }
    Ok(())
}

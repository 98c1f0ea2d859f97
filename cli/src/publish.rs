//! `gather-agent publish` and `gather-agent keygen`: the gatherer author's side.

use std::path::PathBuf;

use anyhow::Context as _;

/// Arguments of `publish`.
#[derive(clap::Args)]
pub struct PublishArgs {
    /// Directory of gatherer modules (*.wasm) to publish.
    #[arg(long, value_name = "DIR")]
    pub modules: PathBuf,
    /// The site directory to write (created if missing; serve it with any HTTP server).
    #[arg(long, value_name = "SITE")]
    pub out: PathBuf,
    /// Sign the index with this key (from `gather-agent keygen`); writes index.json.sig.
    #[arg(long, value_name = "KEYFILE")]
    pub key: Option<PathBuf>,
    /// JSON with per-module config and limits to publish: {"modules": {"pods": {"config": {...}, "limits": {...}}}}.
    #[arg(long, value_name = "FILE")]
    pub settings: Option<PathBuf>,
    /// Make the index expire after this long (for example 30d); agents refuse expired indexes.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub expires_in: Option<std::time::Duration>,
}

/// Arguments of `keygen`.
#[derive(clap::Args)]
pub struct KeygenArgs {
    /// Where to write the secret key (mode 0600). The public key goes to KEYFILE.pub.
    #[arg(long, value_name = "KEYFILE")]
    pub out: PathBuf,
    /// Overwrite an existing key file.
    #[arg(long)]
    pub force: bool,
}

pub fn publish(args: PublishArgs) -> anyhow::Result<()> {
    let published = agent::publish::publish(&agent::publish::PublishOptions {
        modules_dir: args.modules.clone(),
        site: args.out.clone(),
        key: args.key,
        settings: args.settings,
        expires_in: args.expires_in,
    })
    .context("publish failed; the site was not changed")?;
    let index = &published.index;
    println!("published serial {} to {}", index.serial, args.out.display());
    for g in &index.gatherers {
        let new = if published.added.contains(&g.url) { "new" } else { "unchanged" };
        println!("  {:<20} {:<10} {}  {:>8} bytes  {new}", g.name, g.version, &g.sha256[..16], g.size);
    }
    if let Some(e) = &index.expires {
        println!("expires {e}");
    }
    match &published.public_key {
        Some(pk) => {
            println!("signed: {}", args.out.join("index.json.sig").display());
            println!("configure agents with: --public-key {pk}");
        }
        None => println!("unsigned (pass --key KEYFILE to sign; agents with a public key will refuse it)"),
    }
    Ok(())
}

pub fn keygen(args: KeygenArgs) -> anyhow::Result<()> {
    if args.out.exists() && !args.force {
        anyhow::bail!("{} already exists; pass --force to replace it (agents trusting the old key will refuse indexes signed with the new one)", args.out.display());
    }
    let (secret, public) = agent::index::generate_key();
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    std::io::Write::write_all(&mut opts.open(&args.out).with_context(|| format!("writing {}", args.out.display()))?, secret.as_bytes())?;
    let pub_path = PathBuf::from(format!("{}.pub", args.out.display()));
    std::fs::write(&pub_path, format!("{public}\n")).with_context(|| format!("writing {}", pub_path.display()))?;
    println!("secret key: {} (keep it private)", args.out.display());
    println!("public key: {} ({public})", pub_path.display());
    println!("sign with:  gather-agent publish --key {} ...", args.out.display());
    println!("verify in agents with: --public-key {public}");
    Ok(())
}

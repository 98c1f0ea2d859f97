//! `gather-agent serve`: a static server for a published site (demos and tests).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;

/// Arguments of `serve`.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// The site directory written by `gather-agent publish`.
    pub site: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    if !args.site.is_dir() {
        return Err(crate::usage(anyhow::anyhow!("site directory {} does not exist", args.site.display())));
    }
    let listener = tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;
    println!("serving {} on http://{addr}", args.site.display());
    println!("index: http://{addr}/index.json");
    agent::serve::serve(listener, &args.site, crate::shutdown_signal()).await?;
    println!("stopped");
    Ok(())
}

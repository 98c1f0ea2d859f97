//! `gather-agent completions SHELL`: a shell completion script on stdout (clap_complete),
//! generated from the same command definition the binary parses with, so it never drifts.

/// Arguments of `completions`.
#[derive(clap::Args)]
#[command(after_help = "Install, for example:\n  gather-agent completions bash > /etc/bash_completion.d/gather-agent\n  gather-agent completions zsh > \"${fpath[1]}/_gather-agent\"\n  gather-agent completions fish > ~/.config/fish/completions/gather-agent.fish")]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

pub fn run(args: CompletionsArgs, mut command: clap::Command) -> anyhow::Result<()> {
    use std::io::Write as _;
    let name = command.get_name().to_owned();
    // Into a buffer first: clap_complete panics on a write error, and `| head` is not an error.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, name, &mut script);
    let mut out = std::io::stdout().lock();
    match out.write_all(&script).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

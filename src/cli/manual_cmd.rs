//! `contactsync completions SHELL` and `contactsync man`: shell completions and man pages, made
//! from the same clap definition the binary parses with, so they never drift from the flags.

use super::{Cli, CommandError, CompletionsArgs, ManArgs};
use crate::exit_code::ExitCode;
use anyhow::Context;
use clap::CommandFactory;
use std::io::Write;

/// `contactsync completions SHELL`: the completion script on stdout.
pub(super) fn completions(args: CompletionsArgs) -> Result<ExitCode, CommandError> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "contactsync", &mut script);
    write_stdout(&script)?;
    Ok(ExitCode::Ok)
}

/// `contactsync man`: the top-level page on stdout, or with `--out DIR` one page per command
/// (`contactsync.1`, `contactsync-run.1`, ...) in `DIR`.
pub(super) fn man(args: ManArgs) -> Result<ExitCode, CommandError> {
    let command = Cli::command();
    match args.out {
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("creating the man page folder {}", dir.display()))?;
            clap_mangen::generate_to(command, &dir)
                .with_context(|| format!("writing man pages into {}", dir.display()))?;
            eprintln!("Man pages written to {}", dir.display());
        }
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(command)
                .render(&mut page)
                .context("rendering the man page")?;
            write_stdout(&page)?;
        }
    }
    Ok(ExitCode::Ok)
}

fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .context("writing to stdout")
}

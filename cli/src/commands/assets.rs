//! `jobcache completions SHELL` and `jobcache man DIR`: shell completion
//! scripts and man pages made from the clap definition, so they never
//! drift from the flags (`cargo xtask dist` writes them all).

use crate::error::{CliError, Result};
use crate::style::emit;
use clap_complete::Shell;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell
    #[arg(value_name = "SHELL")]
    shell: Shell,
}

/// Arguments of `man`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// The directory to write `jobcache.1` and `jobcache-COMMAND.1` into (made if missing)
    #[arg(value_name = "DIR")]
    dir: PathBuf,
}

/// Prints the completion script of `shell` for `cmd`.
pub fn completions(mut cmd: clap::Command, args: CompletionsArgs) -> Result<ExitCode> {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "jobcache", &mut out);
    emit(&String::from_utf8_lossy(&out));
    Ok(ExitCode::SUCCESS)
}

/// Writes one man page for `cmd` and one per visible subcommand.
pub fn man(cmd: clap::Command, args: ManArgs) -> Result<ExitCode> {
    std::fs::create_dir_all(&args.dir)
        .map_err(|e| CliError::io("create the directory", &args.dir, e))?;
    let mut written = 0;
    write_page(&args.dir, "jobcache", cmd.clone())?;
    written += 1;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("jobcache-{}", sub.get_name());
        write_page(&args.dir, &name, sub.clone().bin_name(name.clone()))?;
        written += 1;
    }
    eprintln!("wrote {written} man pages to {}", args.dir.display());
    Ok(ExitCode::SUCCESS)
}

fn write_page(dir: &Path, name: &str, cmd: clap::Command) -> Result<()> {
    let path = dir.join(format!("{name}.1"));
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .title(name)
        .render(&mut out)
        .map_err(|e| CliError::io("render the man page", &path, e))?;
    std::fs::write(&path, out).map_err(|e| CliError::io("write", &path, e))
}

//! `jobcache`: the command line of the jobcache cache. It inspects, verifies,
//! trims and reports on a cache directory made by `jobcache::Memory`,
//! through the store ([`jobcache_store::FsStore`]), the run journal
//! ([`jobcache_trace`]) and the persisted file format
//! ([`jobcache_persist`]); it never loads cached values.
//!
//! Subcommands: `ls`, `show`, `clear`, `gc`, `verify`, `log`, `report`,
//! `inspect`, `completions` (and the hidden `man DIR`); see `jobcache --help`
//! and README.md, which documents the
//! `--json` shapes. Exit codes: 0 ok, 1 problems found (`verify`, and
//! `inspect` of a file with a bad checksum), 2 usage or I/O error.
//!
//! # Limitations
//!
//! - Remote caches (`--dir s3://bucket/prefix` or `--remote URL`, feature
//!   `remote`, on by default; endpoint and credentials from the `AWS_*`
//!   variables): `ls`, `show`, `verify`, `gc` and `clear` work on them;
//!   `log`, `report` and `why` need the journal of a cache directory;
//!   `show` does not inspect a remote payload; `verify` removes a corrupt
//!   remote entry as it finds it (with or without `--fix`), and `gc` goes by
//!   publication time (no access times remotely).
//! - `show` lists the arrays of a payload kept in its own file; payloads
//!   small enough to live inside the metadata file are described by size
//!   only.
//! - Times are printed in UTC.
#![deny(missing_docs)]

mod cache;
mod commands;
mod error;
mod style;
mod units;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Inspect, verify, trim and report on a jobcache cache directory.
#[derive(Debug, Parser)]
#[command(name = "jobcache", version, about, long_about = None)]
#[command(
    after_help = "Examples:\n  jobcache --dir /tmp/cache ls\n  JOBCACHE_DIR=/tmp/cache jobcache gc --max-size 10GiB\n  jobcache verify --fix"
)]
struct Cli {
    /// The cache directory, or a remote cache as s3://bucket/prefix [default: ./.jobcache]
    #[arg(long, global = true, env = "JOBCACHE_DIR", value_name = "DIR")]
    dir: Option<PathBuf>,

    /// A remote cache, s3://bucket/prefix (as --dir s3://…; endpoint and
    /// credentials from the AWS_* environment variables)
    #[arg(long, global = true, env = "JOBCACHE_REMOTE", value_name = "URL")]
    remote: Option<String>,

    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// List functions (entries, size, last use, hit rate), or one function's entries
    #[command(
        after_help = "Examples:\n  jobcache ls\n  jobcache ls pipeline::smooth\n  jobcache ls smooth --json"
    )]
    Ls(commands::ls::Args),
    /// Show one entry: metadata, argument summary, captured output, payload arrays
    #[command(
        after_help = "Examples:\n  jobcache show pipeline::smooth 3f9a1c\n  jobcache show smooth 3f9a1c --json"
    )]
    Show(commands::show::Args),
    /// Remove every entry, or one function's entries
    #[command(after_help = "Examples:\n  jobcache clear pipeline::smooth\n  jobcache clear --yes")]
    Clear(commands::clear::Args),
    /// Evict least recently used entries until the limits hold
    #[command(
        after_help = "Examples:\n  jobcache gc --max-size 10GiB --dry-run\n  jobcache gc --max-age 30d --max-items 1000\n\nSizes: 4096, 500MB (10^6), 1.5G or 10GiB (2^30). Durations: 45s, 90m, 12h, 30d, 2w, 1h30m.\nEntries used in the last 10 seconds or being computed are kept."
    )]
    Gc(commands::gc::Args),
    /// Check every entry's checksums; exit code 1 if any is corrupt
    #[command(
        after_help = "Examples:\n  jobcache verify\n  jobcache verify --fix\n  jobcache verify --json > verify.json"
    )]
    Verify(commands::verify::Args),
    /// The run journal as a table
    #[command(
        after_help = "Examples:\n  jobcache log --since 1h\n  jobcache log -F smooth --since 2024-05-01\n  jobcache log -f"
    )]
    Log(commands::log::Args),
    /// Per-function totals and a timeline, as an HTML page or a table
    #[command(
        after_help = "Examples:\n  jobcache report -o report.html\n  jobcache report --text --since 1d"
    )]
    Report(commands::report::Args),
    /// Describe a persisted file or a .npy file; export an array to .npy
    #[command(
        after_help = "Examples:\n  jobcache inspect result.jcp\n  jobcache inspect data.npy --json\n  jobcache inspect result.jcp --array 1 --npy coef.npy"
    )]
    Inspect(commands::inspect::Args),
    /// Why each stored call of a function was computed: what differs from the nearest earlier call
    #[command(
        after_help = "Examples:\n  jobcache why pipeline::smooth\n  jobcache why smooth --last"
    )]
    Why(commands::why::Args),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    #[command(
        after_help = "Examples:\n  jobcache completions bash > ~/.local/share/bash-completion/completions/jobcache\n  jobcache completions zsh > ~/.zfunc/_jobcache\n  jobcache completions fish > ~/.config/fish/completions/jobcache.fish"
    )]
    Completions(commands::assets::CompletionsArgs),
    /// Write the man pages (jobcache.1, jobcache-COMMAND.1) into a directory
    #[command(hide = true, after_help = "Examples:\n  jobcache man target/dist/man")]
    Man(commands::assets::ManArgs),
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .format_timestamp(None)
        .init();
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let dir_on_command_line =
        matches.value_source("dir") == Some(clap::parser::ValueSource::CommandLine);
    let dir = match cli.remote {
        Some(url) => PathBuf::from(url),
        None => cli.dir.unwrap_or_else(|| PathBuf::from(".jobcache")),
    };
    let result = match cli.command {
        Command::Ls(a) => commands::ls::run(&dir, a),
        Command::Show(a) => commands::show::run(&dir, a),
        Command::Clear(a) => commands::clear::run(&dir, a),
        Command::Gc(a) => commands::gc::run(&dir, a),
        Command::Verify(a) => commands::verify::run(&dir, a),
        Command::Log(a) => commands::log::run(&dir, a),
        Command::Report(a) => commands::report::run(&dir, a),
        // `inspect` reads the file it is given; a cache directory has no
        // meaning there, so one given on the command line is refused
        // (JOBCACHE_DIR, set for other commands, is ignored).
        Command::Inspect(_) if dir_on_command_line => Err(error::CliError::Usage(
            "inspect reads the FILE it is given and takes no --dir; pass the file's path (a cache entry's payload is DIR/ns/FUNCTION/DIGEST/payload)".into(),
        )),
        Command::Inspect(a) => commands::inspect::run(a),
        Command::Why(a) => commands::why::run(&dir, a),
        Command::Completions(a) => commands::assets::completions(Cli::command(), a),
        Command::Man(a) => commands::assets::man(Cli::command(), a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("jobcache: error: {}", jobcache_trace::chain(&e));
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subcommand_has_an_example() {
        Cli::command().debug_assert();
        for sub in Cli::command().get_subcommands() {
            let help = sub
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            assert!(
                help.contains("Examples:"),
                "{} has no example",
                sub.get_name()
            );
        }
    }
}

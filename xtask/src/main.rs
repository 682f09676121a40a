//! Maintainers' tasks for the jobcache workspace, run as `cargo xtask TASK`.
//!
//! - `bench [GROUP]`: release-mode benchmarks; writes `target/bench/GROUP.json`.
//! - `proptest [--cases N]`: every property test in the workspace, long.
//! - `dist [--out DIR]`: the release binary of the CLI with its shell
//!   completions and man pages (see `dist.rs`).
//! - `lint`: the format and clippy checks that CI runs.
//! - `release VERSION [--dry-run]`: checks, versions, CHANGELOG, packages,
//!   commit and tag (see `release.rs`).
//! - `torture [--minutes M] [--seed S] [--workers N] [--dir D]`: the
//!   multi-process fault-injection run of `torture/` (see `torture.rs`).

mod bench;
mod changelog;
mod dist;
mod lint;
mod manifest;
mod packaging;
mod proptest;
mod release;
mod semver;
mod shell;
mod torture;

use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask <TASK>

tasks:
  bench [GROUP]        run benchmark groups (hash, persist, store, trace, memo; all when omitted)
  proptest [--cases N] run every property test with PROPTEST_CASES=N (default 10000)
  dist [--out DIR]     build the jobcache binary (release) and write it with its
                       shell completions and man pages to DIR (default target/dist)
  lint                 cargo fmt --check and cargo clippy -D warnings, as CI does
  release VERSION [--dry-run] [--skip-checks]
                       refuse a dirty tree or a version not above the current one;
                       fmt, clippy, test and doc checks; set every crate's version;
                       date CHANGELOG.md's Unreleased section; cargo package each
                       publishable crate; commit and tag vVERSION. --dry-run does
                       all but the commit and tag and puts every file back.
                       --skip-checks (for tests) skips the checks and the
                       package verification builds.
  torture [--minutes M] [--seed S] [--workers N] [--dir D]
                       build jobcache-torture and jobcache-cli (release) and run
                       N worker processes (default 8, half copy mode, half
                       mmap) for M minutes (default 10, seed 42) in D (default
                       target/torture/run, emptied) while faults are injected:
                       kills, byte flips, truncations, deletions, symlinks into
                       a sentinel directory, concurrent gc/verify/clear, a file
                       size limit, a fresh start together, the root removed.
                       Prints one line of figures; fails when wrong values,
                       panics, changes outside the root, failed API or CLI
                       calls or leftover temp bytes are not zero.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("bench") => bench::run(&args[1..]),
        Some("proptest") => proptest::run(&args[1..]),
        Some("dist") => dist::run(&args[1..]),
        Some("lint") => lint::run(&args[1..]),
        Some("release") => release::run(&args[1..]),
        Some("torture") => torture::run(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown task `{other}`\n\n{USAGE}")),
        None => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

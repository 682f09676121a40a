//! `cargo xtask torture [--minutes M] [--seed S] [--workers N] [--dir D]`:
//! builds `jobcache-torture` and the `jobcache` binary in release mode and
//! runs the torture (see `torture/README.md`): worker processes make cached
//! calls while faults are injected, and one line of figures is printed. It
//! fails when a must-be-zero figure is not zero.

use crate::shell;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The options, with their defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub minutes: f64,
    pub seed: u64,
    pub workers: usize,
    pub dir: Option<PathBuf>,
}

pub const USAGE: &str =
    "usage: cargo xtask torture [--minutes M] [--seed S] [--workers N] [--dir D]";

pub fn run(args: &[String]) -> Result<(), String> {
    let options = match parse(args) {
        Ok(o) => o,
        Err(e) => {
            // A usage error, as the torture binary reports one.
            eprintln!("xtask: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    shell::run(shell::cargo().args([
        "build",
        "--release",
        "-p",
        "jobcache-torture",
        "-p",
        "jobcache-cli",
    ]))?;
    let target = target_dir(&shell::root());
    let release = target.join("release");
    let dir = options
        .dir
        .clone()
        .unwrap_or_else(|| target.join("torture").join("run"));
    let mut cmd = Command::new(release.join("jobcache-torture"));
    cmd.arg("run")
        .arg("--cli")
        .arg(release.join("jobcache"))
        .args(["--minutes", &options.minutes.to_string()])
        .args(["--seed", &options.seed.to_string()])
        .args(["--workers", &options.workers.to_string()])
        .arg("--dir")
        .arg(&dir);
    shell::run(&mut cmd).map_err(|e| {
        format!(
            "{e}: a must-be-zero figure is not zero (details in {})",
            dir.join("details.txt").display()
        )
    })
}

/// The build's target directory: `CARGO_TARGET_DIR` (relative to the
/// workspace root, where cargo runs, when relative), else `ROOT/target`.
pub fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

pub fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        minutes: 10.0,
        seed: 42,
        workers: 8,
        dir: None,
    };
    let mut i = 0;
    while i < args.len() {
        let flag = args[i].as_str();
        let value = args
            .get(i + 1)
            .ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |what: &str| format!("{flag} {value}: {what}");
        match flag {
            "--minutes" => {
                o.minutes = value.parse().map_err(|_| bad("not a number of minutes"))?;
                if !(o.minutes > 0.0 && o.minutes <= 1440.0) {
                    return Err(bad("give 0 to 1440 minutes"));
                }
            }
            "--seed" => o.seed = value.parse().map_err(|_| bad("not a whole number"))?,
            "--workers" => {
                o.workers = value.parse().map_err(|_| bad("not a whole number"))?;
                if !(2..=64).contains(&o.workers) {
                    return Err(bad("give 2 to 64 workers"));
                }
            }
            "--dir" => o.dir = Some(PathBuf::from(value)),
            _ => return Err(format!("unknown argument `{flag}`")),
        }
        i += 2;
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn defaults_and_flags() {
        let o = parse(&[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((o.minutes, o.seed, o.workers, o.dir), (10.0, 42, 8, None));
        let o = parse(&args(&[
            "--minutes",
            "1",
            "--seed",
            "7",
            "--workers",
            "4",
            "--dir",
            "d",
        ]))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (o.minutes, o.seed, o.workers, o.dir),
            (1.0, 7, 4, Some(PathBuf::from("d")))
        );
    }

    #[test]
    fn bad_input_is_named() {
        for (list, names) in [
            (&["--minutes"][..], "--minutes needs a value"),
            (&["--minutes", "x"][..], "--minutes x"),
            (&["--minutes", "0"][..], "--minutes 0"),
            (&["--workers", "1"][..], "--workers 1"),
            (&["--what", "1"][..], "unknown argument `--what`"),
        ] {
            let e = parse(&args(list)).err().unwrap_or_default();
            assert!(e.contains(names), "{e}");
        }
    }
}

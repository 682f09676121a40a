//! `jobcache-torture`: see the crate's README. `run` is the orchestrator,
//! `worker` what it starts.

use jobcache_torture::orchestrator::{self, RunArgs};
use jobcache_torture::worker::{self, WorkerArgs};
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: jobcache-torture run --cli PATH --dir DIR [--minutes M] [--seed S] [--workers N] [--no-faults]

Runs N worker processes (default 8, at least 2; half copy mode, half mapped)
making cached calls in DIR/cache for M minutes (default 10) while faults are
injected; prints one line of figures. Exit 0 when every must-be-zero figure
is zero, 1 otherwise, 2 on a usage error. DIR must not exist or be a
previous run's (it is emptied). See torture/README.md.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("run") => match parse_run(&args[1..]) {
            Ok(run) => orchestrate(&run),
            Err(e) => usage_error(&e),
        },
        Some("worker") => match parse_worker(&args[1..]) {
            Ok(w) => ExitCode::from(worker::run(&w) as u8),
            Err(e) => usage_error(&e),
        },
        Some("-h" | "--help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => usage_error("expected `run` or `worker`"),
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("jobcache-torture: {message}\n\n{USAGE}");
    ExitCode::from(2)
}

fn orchestrate(args: &RunArgs) -> ExitCode {
    let outcome = match orchestrator::run(args) {
        Ok(o) => o,
        Err(e) => return usage_error(&e),
    };
    let f = &outcome.figures;
    // Every detail, for a closer look than the first few shown here.
    let all: String = outcome
        .details
        .iter()
        .flat_map(|(figure, details)| details.iter().map(move |d| format!("{figure}: {d}\n")))
        .collect();
    let _ = std::fs::write(args.dir.join("details.txt"), all);
    let bad: Vec<&str> = f
        .must_be_zero()
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(name, _)| *name)
        .collect();
    for (figure, details) in &outcome.details {
        let shown = bad.contains(figure) || matches!(*figure, "notes" | "refusals");
        if shown && !details.is_empty() {
            eprintln!("{figure}:");
            for d in details.iter().take(5) {
                eprintln!("  {d}");
            }
            if details.len() > 5 {
                eprintln!("  … and {} more", details.len() - 5);
            }
        }
    }
    println!("{}", f.line());
    if bad.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "torture: not zero: {} (all details in {})",
            bad.join(", "),
            args.dir.join("details.txt").display()
        );
        ExitCode::from(1)
    }
}

/// `--name value` pairs and bare flags, in any order.
struct Flags<'a> {
    args: &'a [String],
}

impl<'a> Flags<'a> {
    fn value(&self, name: &str) -> Result<Option<&'a str>, String> {
        match self.args.iter().position(|a| a == name) {
            None => Ok(None),
            Some(i) => match self.args.get(i + 1) {
                Some(v) => Ok(Some(v.as_str())),
                None => Err(format!("{name} needs a value")),
            },
        }
    }

    fn required(&self, name: &str) -> Result<&'a str, String> {
        self.value(name)?
            .ok_or_else(|| format!("{name} is required"))
    }

    fn number<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        match self.value(name)? {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("{name} {v}: not a valid number")),
        }
    }

    fn check_known(&self, known: &[&str], flags: &[&str]) -> Result<(), String> {
        let mut i = 0;
        while i < self.args.len() {
            let a = self.args[i].as_str();
            if flags.contains(&a) {
                i += 1;
            } else if known.contains(&a) {
                i += 2;
            } else {
                return Err(format!("unknown argument `{a}`"));
            }
        }
        Ok(())
    }
}

fn parse_run(args: &[String]) -> Result<RunArgs, String> {
    let f = Flags { args };
    f.check_known(
        &["--cli", "--dir", "--minutes", "--seed", "--workers"],
        &["--no-faults"],
    )?;
    let minutes: f64 = f.number("--minutes", 10.0)?;
    if !(minutes > 0.0 && minutes <= 24.0 * 60.0) {
        return Err(format!(
            "--minutes {minutes}: give a duration between 0 and 1440 minutes"
        ));
    }
    let workers: usize = f.number("--workers", 8)?;
    if !(2..=64).contains(&workers) {
        return Err(format!(
            "--workers {workers}: give 2 to 64 workers (half copy mode, half mapped)"
        ));
    }
    Ok(RunArgs {
        cli: PathBuf::from(f.required("--cli")?),
        minutes,
        seed: f.number("--seed", 42)?,
        workers,
        dir: PathBuf::from(f.required("--dir")?),
        faults: !args.iter().any(|a| a == "--no-faults"),
    })
}

fn parse_worker(args: &[String]) -> Result<WorkerArgs, String> {
    let f = Flags { args };
    f.check_known(
        &[
            "--root",
            "--slot",
            "--generation",
            "--mode",
            "--seed",
            "--reports",
            "--injections",
            "--start-at",
            "--stop",
        ],
        &[],
    )?;
    let mapped = match f.required("--mode")? {
        "mapped" => true,
        "copy" => false,
        other => return Err(format!("--mode {other}: give `copy` or `mapped`")),
    };
    Ok(WorkerArgs {
        root: PathBuf::from(f.required("--root")?),
        slot: f.number("--slot", 0)?,
        generation: f.number("--generation", 0)?,
        mapped,
        seed: f.number("--seed", 42)?,
        reports: PathBuf::from(f.required("--reports")?),
        injections: PathBuf::from(f.required("--injections")?),
        start_at: f.number("--start-at", 0)?,
        stop: PathBuf::from(f.required("--stop")?),
    })
}

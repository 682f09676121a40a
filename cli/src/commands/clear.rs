//! `jobcache clear [FUNCTION]`.

use crate::cache::Cache;
use crate::error::{CliError, Result};
use crate::style::{count, emit, Style};
use jobcache_trace::report::human_bytes;
use jobcache_trace::{Event, EventKind};
use serde_json::json;
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

/// Arguments of `clear`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this function's entries (its full name, or the last part of it)
    function: Option<String>,
    /// Do not ask for confirmation (required when not on a terminal)
    #[arg(long, short = 'y')]
    yes: bool,
    /// Print JSON (shape documented in README.md)
    #[arg(long)]
    json: bool,
}

/// Runs `clear`.
pub fn run(dir: &Path, args: Args) -> Result<ExitCode> {
    let cache = Cache::open(dir)?;
    let targets = match &args.function {
        Some(name) => vec![cache.resolve(name)?],
        None => cache.store.namespaces()?,
    };
    let mut counts = Vec::new();
    let busy = super::busy::Busy::start("counting entries");
    for ns in &targets {
        let entries = cache.store.entries(ns)?;
        counts.push((
            entries.len(),
            entries.iter().map(|e| e.stored_bytes).sum::<u64>(),
        ));
    }
    drop(busy);
    let n: usize = counts.iter().map(|c| c.0).sum();
    let bytes: u64 = counts.iter().map(|c| c.1).sum();
    let what = match &args.function {
        Some(_) => targets.join(", "),
        None => "every function".to_string(),
    };
    if !args.yes && n > 0 {
        if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
            return Err(CliError::Usage(format!(
                "clear would remove {} ({}) from {} and needs confirmation: pass --yes (stdin is not a terminal)",
                count(n, "entry", "entries"),
                human_bytes(bytes),
                cache.dir.display()
            )));
        }
        eprint!(
            "Remove {} ({}) of {what} from {}? [y/N] ",
            count(n, "entry", "entries"),
            human_bytes(bytes),
            cache.dir.display()
        );
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .map_err(|e| CliError::io("read the answer from", "stdin", e))?;
        if !matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
            eprintln!("nothing removed");
            return Ok(ExitCode::SUCCESS);
        }
    }
    let mut freed = 0u64;
    let mut events = Vec::new();
    let busy = super::busy::Busy::start("removing entries");
    for (ns, (entries, _)) in targets.iter().zip(&counts) {
        busy.say(&format!("removing the entries of {ns}"));
        let f = cache.store.remove_namespace(ns)?;
        freed += f;
        if *entries > 0 {
            events.push(
                Event::new(EventKind::Cleared, ns.as_str())
                    .output_bytes(f)
                    .message(format!(
                        "jobcache clear removed {} ({})",
                        count(*entries, "entry", "entries"),
                        human_bytes(f)
                    )),
            );
        }
    }
    drop(busy);
    super::record(&cache, &events);
    if args.json {
        emit(&super::json(&json!({
            "cache": cache.dir.display().to_string(),
            "functions": targets,
            "entries": n,
            "freed_bytes": freed,
        })));
    } else {
        let style = Style::detect();
        emit(&format!(
            "{} {} ({}) of {what} in {}\n",
            style.yellow("freed"),
            human_bytes(freed),
            count(n, "entry", "entries"),
            cache.dir.display()
        ));
    }
    Ok(ExitCode::SUCCESS)
}

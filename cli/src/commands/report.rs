//! `jobcache report [-o report.html] [--text | --json]`.

use crate::cache::{function_matches, Cache};
use crate::commands::log::{parse_since, selection};
use crate::error::{CliError, Result};
use crate::style::{count, emit};
use jobcache_trace::report::Stored;
use jobcache_trace::{Event, Filter, Timestamp};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `report`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write the HTML report to this file (default: stdout)
    #[arg(long, short = 'o', value_name = "FILE", conflicts_with_all = ["text", "json"])]
    output: Option<PathBuf>,
    /// Print the per-function totals as a table instead of HTML
    #[arg(long, conflicts_with = "json")]
    text: bool,
    /// Print the report's figures as JSON (shape documented in README.md)
    #[arg(long)]
    json: bool,
    /// Only this function (its full name, or the last part of it)
    #[arg(long, short = 'F', value_name = "FUNCTION")]
    function: Option<String>,
    /// Only events since this long ago (12h, 7d) or this time (2024-05-01)
    #[arg(long, value_name = "WHEN", value_parser = parse_since)]
    since: Option<Timestamp>,
}

/// Runs `report`.
pub fn run(dir: &Path, args: Args) -> Result<ExitCode> {
    let cache = Cache::open(dir)?;
    let keep = selection(args.function.as_deref(), args.since, &[]);
    let events: Vec<Event> = super::journal_events(&cache, &Filter::new())?
        .into_iter()
        .filter(|e| keep(e))
        .collect();
    if args.text {
        emit(&jobcache_trace::report::text(&events));
        return Ok(ExitCode::SUCCESS);
    }
    let stored = stored(&cache, args.function.as_deref())?;
    if args.json {
        emit(&super::json(&jobcache_trace::report::json_with(
            &events,
            Some(&stored),
        )));
        return Ok(ExitCode::SUCCESS);
    }
    let page = jobcache_trace::report::html_with(&events, Some(&stored));
    match &args.output {
        Some(path) if path.as_os_str() != "-" => {
            write_atomic(path, page.as_bytes())?;
            eprintln!(
                "wrote {} ({}, {})",
                path.display(),
                count(events.len(), "event", "events"),
                count(
                    jobcache_trace::report::totals(&events).len(),
                    "function",
                    "functions"
                )
            );
        }
        _ => emit(&page),
    }
    Ok(ExitCode::SUCCESS)
}

/// What the cache holds now per function (entries, bytes), for the
/// report's "stored now" beside the journal's "written ever".
fn stored(cache: &Cache, function: Option<&str>) -> Result<Stored> {
    let mut out = Stored::new();
    for ns in cache.store.namespaces()? {
        if function.is_some_and(|f| !function_matches(f, &ns)) {
            continue;
        }
        let entries = cache.store.entries(&ns)?;
        let bytes = entries.iter().map(|e| e.stored_bytes).sum();
        out.insert(ns, (entries.len() as u64, bytes));
    }
    Ok(out)
}

/// Writes through a temporary file in the same directory and a rename, so
/// a reader never sees half a page.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report".into());
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let r = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = r {
        let _ = std::fs::remove_file(&tmp);
        return Err(CliError::io("write the report to", path, e));
    }
    Ok(())
}

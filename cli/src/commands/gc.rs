//! `jobcache gc --max-size 10GiB --max-items N --max-age 30d [--dry-run]`.

use crate::cache::{short, Cache};
use crate::error::{CliError, Result};
use crate::style::{ago, count, emit, rfc3339, table, Align, Style};
use crate::units::{parse_duration, parse_size};
use jobcache_store::{Limits, StoreExt};
use jobcache_trace::report::human_bytes;
use jobcache_trace::{Event, EventKind};
use serde_json::json;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// Arguments of `gc`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keep at most this many bytes in entries (4096, 500MB, 1.5G, 10GiB)
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_size: Option<u64>,
    /// Keep at most this many entries
    #[arg(long, value_name = "N")]
    max_items: Option<usize>,
    /// Remove entries not used for this long (45s, 90m, 12h, 30d, 2w, 1h30m)
    #[arg(long, value_name = "AGE", value_parser = parse_duration)]
    max_age: Option<Duration>,
    /// List what would be removed, remove nothing
    #[arg(long, short = 'n')]
    dry_run: bool,
    /// Print JSON (shape documented in README.md)
    #[arg(long)]
    json: bool,
}

/// Runs `gc`.
pub fn run(dir: &Path, args: Args) -> Result<ExitCode> {
    if args.max_size.is_none() && args.max_items.is_none() && args.max_age.is_none() {
        return Err(CliError::Usage(
            "gc needs at least one limit: --max-size SIZE, --max-items N or --max-age AGE (see jobcache gc --help)".into(),
        ));
    }
    let cache = Cache::open(dir)?;
    let limits = Limits {
        max_bytes: args.max_size,
        max_items: args.max_items,
        max_age: args.max_age,
    };
    let busy = super::busy::Busy::start("trimming the cache");
    let r = cache.store.reduce_size(&limits, args.dry_run)?;
    drop(busy);
    if !args.dry_run {
        let events: Vec<Event> = r
            .removed
            .iter()
            .map(|e| {
                Event::new(EventKind::Evicted, e.namespace.as_str())
                    .args(e.key.as_str(), "")
                    .output_bytes(e.stored_bytes)
                    .message("removed by jobcache gc")
            })
            .collect();
        super::record(&cache, &events);
    }
    if args.json {
        let removed: Vec<_> = r
            .removed
            .iter()
            .map(|e| {
                json!({
                    "function": e.namespace,
                    "key": e.key,
                    "bytes": e.stored_bytes,
                    "last_access": rfc3339(e.last_access),
                })
            })
            .collect();
        emit(&super::json(&json!({
            "cache": cache.dir.display().to_string(),
            "dry_run": args.dry_run,
            "removed": removed,
            "freed_bytes": r.freed_bytes,
            "kept_entries": r.kept_items,
            "kept_bytes": r.kept_bytes,
            "skipped": r.skipped,
        })));
        return Ok(ExitCode::SUCCESS);
    }
    let style = Style::detect();
    let mut out = String::new();
    if r.removed.is_empty() {
        out.push_str("nothing to remove: the cache is within the limits\n");
    } else {
        let rows: Vec<Vec<String>> = r
            .removed
            .iter()
            .map(|e| {
                vec![
                    e.namespace.clone(),
                    short(&e.key).to_string(),
                    human_bytes(e.stored_bytes),
                    ago(e.last_access),
                ]
            })
            .collect();
        out.push_str(&table(
            style,
            &["FUNCTION", "DIGEST", "SIZE", "LAST USE"],
            &[Align::Left, Align::Left, Align::Right, Align::Right],
            &rows,
        ));
        let verb = if args.dry_run { "would free" } else { "freed" };
        out.push_str(&format!(
            "{} {} ({}){}\n",
            style.yellow(verb),
            human_bytes(r.freed_bytes),
            count(r.removed.len(), "entry", "entries"),
            if args.dry_run {
                "; nothing was removed (--dry-run)"
            } else {
                ""
            }
        ));
    }
    out.push_str(&format!(
        "{} {} ({})\n",
        if args.dry_run { "would keep" } else { "kept" },
        count(r.kept_items, "entry", "entries"),
        human_bytes(r.kept_bytes)
    ));
    if r.skipped > 0 {
        out.push_str(&style.yellow(&format!(
            "{} over the limits kept: in use by a live process (being computed or read)\n",
            count(r.skipped, "entry", "entries")
        )));
    }
    emit(&out);
    Ok(ExitCode::SUCCESS)
}

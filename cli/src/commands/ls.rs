//! `jobcache ls [FUNCTION]`.

use crate::cache::{short, Cache, FIELD_ARGS, FIELD_VERSION, PAYLOAD_FILE};
use crate::error::Result;
use crate::style::{ago, clip, count, emit, rfc3339, table, Align, Style};
use jobcache_store::EntryInfo;
use jobcache_trace::report::{human_bytes, human_duration, totals, FunctionTotals};
use jobcache_trace::Filter;
use serde_json::json;
use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;

/// Arguments of `ls`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this function's entries (its full name, or the last part of it)
    function: Option<String>,
    /// Print JSON (shape documented in README.md)
    #[arg(long)]
    json: bool,
}

/// Runs `ls`.
pub fn run(dir: &Path, args: Args) -> Result<ExitCode> {
    let cache = Cache::open(dir)?;
    match &args.function {
        Some(name) => entries(&cache, name, args.json),
        None => functions(&cache, args.json),
    }
    .map(|()| ExitCode::SUCCESS)
}

fn functions(cache: &Cache, as_json: bool) -> Result<()> {
    let events = super::journal_events(cache, &Filter::new())?;
    let stats: HashMap<String, FunctionTotals> = totals(&events)
        .into_iter()
        .map(|t| (t.function.clone(), t))
        .collect();
    let mut rows = Vec::new();
    let mut json_rows = Vec::new();
    let (mut all_entries, mut all_bytes, mut all_logical) = (0usize, 0u64, 0u64);
    let busy = super::busy::Busy::start("listing entries");
    for ns in cache.store.namespaces()? {
        busy.say(&format!("listing entries of {ns}"));
        let entries = cache.store.entries(&ns)?;
        let bytes: u64 = entries.iter().map(|e| e.stored_bytes).sum();
        let logical: u64 = entries.iter().map(|e| logical_bytes(cache, &ns, e)).sum();
        let last = entries.iter().map(|e| e.last_access).max();
        let t = stats.get(&ns).cloned().unwrap_or_default();
        let (hits, calls) = (t.hits, t.calls);
        let rate = (calls > 0).then(|| hits as f64 / calls as f64);
        all_entries += entries.len();
        all_bytes += bytes;
        all_logical += logical;
        rows.push(vec![
            ns.clone(),
            entries.len().to_string(),
            human_bytes(bytes),
            human_bytes(logical),
            last.map_or("-".into(), ago),
            calls.to_string(),
            rate.map_or("-".into(), |r| format!("{:.0}%", r * 100.0)),
        ]);
        json_rows.push(json!({
            "function": ns,
            "entries": entries.len(),
            "bytes": bytes,
            "logical_bytes": logical,
            "last_access": last.map(rfc3339),
            "calls": calls,
            "hits": hits,
            "computed": t.computed,
            "failed": t.failed,
            "hit_rate": rate,
        }));
    }
    drop(busy);
    if as_json {
        emit(&super::json(&json!({
            "cache": cache.dir.display().to_string(),
            "functions": json_rows,
            "entries": all_entries,
            "bytes": all_bytes,
            "logical_bytes": all_logical,
        })));
        return Ok(());
    }
    let style = Style::detect();
    if rows.is_empty() {
        emit(&format!("no entries in {}\n", cache.dir.display()));
        return Ok(());
    }
    let mut out = table(
        style,
        &[
            "FUNCTION", "ENTRIES", "STORED", "LOGICAL", "LAST USE", "CALLS", "HIT RATE",
        ],
        &[
            Align::Left,
            Align::Right,
            Align::Right,
            Align::Right,
            Align::Right,
            Align::Right,
            Align::Right,
        ],
        &rows,
    );
    out.push_str(&style.dim(&format!(
        "{}, {}, {} stored ({} logical) in {}\n",
        count(rows.len(), "function", "functions"),
        count(all_entries, "entry", "entries"),
        human_bytes(all_bytes),
        human_bytes(all_logical),
        cache.dir.display()
    )));
    emit(&out);
    Ok(())
}

fn entries(cache: &Cache, name: &str, as_json: bool) -> Result<()> {
    let ns = cache.resolve(name)?;
    let busy = super::busy::Busy::start(&format!("listing entries of {ns}"));
    let mut entries = cache.store.entries(&ns)?;
    drop(busy);
    entries.sort_by_key(|e| {
        (
            e.meta.as_ref().map_or(e.last_access, |m| m.created),
            e.key.clone(),
        )
    });
    let logical: Vec<u64> = entries
        .iter()
        .map(|e| logical_bytes(cache, &ns, e))
        .collect();
    if as_json {
        let rows: Vec<_> = entries
            .iter()
            .zip(&logical)
            .map(|(e, &logical)| match &e.meta {
                Ok(m) => json!({
                    "key": e.key,
                    "bytes": e.stored_bytes,
                    "logical_bytes": logical,
                    "payload_bytes": m.payload_len,
                    "created": rfc3339(m.created),
                    "last_access": rfc3339(e.last_access),
                    "compute_seconds": m.compute_duration.as_secs_f64(),
                    "args": m.fields.get(FIELD_ARGS),
                    "version": m.fields.get(FIELD_VERSION),
                    "error": null,
                }),
                Err(reason) => json!({
                    "key": e.key,
                    "bytes": e.stored_bytes,
                    "logical_bytes": logical,
                    "payload_bytes": null,
                    "created": null,
                    "last_access": rfc3339(e.last_access),
                    "compute_seconds": null,
                    "args": null,
                    "version": null,
                    "error": reason,
                }),
            })
            .collect();
        emit(&super::json(&json!({
            "cache": cache.dir.display().to_string(),
            "function": ns,
            "entries": rows,
        })));
        return Ok(());
    }
    let style = Style::detect();
    let rows: Vec<Vec<String>> = entries
        .iter()
        .zip(&logical)
        .map(|(e, &logical)| match &e.meta {
            Ok(m) => vec![
                short(&e.key).to_string(),
                human_bytes(e.stored_bytes),
                human_bytes(logical),
                ago(m.created),
                ago(e.last_access),
                human_duration(m.compute_duration),
                clip(m.fields.get(FIELD_ARGS).map_or("", String::as_str), 60),
            ],
            Err(reason) => vec![
                short(&e.key).to_string(),
                human_bytes(e.stored_bytes),
                human_bytes(logical),
                "-".into(),
                ago(e.last_access),
                "-".into(),
                style.red(&clip(&format!("unreadable: {reason}"), 60)),
            ],
        })
        .collect();
    let total: u64 = entries.iter().map(|e| e.stored_bytes).sum();
    let total_logical: u64 = logical.iter().sum();
    let mut out = format!("{}\n", style.bold(&ns));
    out.push_str(&table(
        style,
        &[
            "DIGEST",
            "STORED",
            "LOGICAL",
            "CREATED",
            "LAST ACCESS",
            "COMPUTE",
            "ARGUMENTS",
        ],
        &[
            Align::Left,
            Align::Right,
            Align::Right,
            Align::Right,
            Align::Right,
            Align::Right,
            Align::Left,
        ],
        &rows,
    ));
    out.push_str(&style.dim(&format!(
        "{}, {} stored ({} logical)\n",
        count(entries.len(), "entry", "entries"),
        human_bytes(total),
        human_bytes(total_logical)
    )));
    emit(&out);
    Ok(())
}

/// An entry's size once its payload is decompressed: the stored size, plus
/// what its zstd-compressed arrays grow by (read from the payload's
/// tables, not its data). An inline payload, or one that cannot be
/// inspected, counts as stored.
fn logical_bytes(cache: &Cache, ns: &str, entry: &EntryInfo) -> u64 {
    let payload = cache
        .store
        .entry_dir(ns, &entry.key)
        .map(|dir| dir.join(PAYLOAD_FILE));
    let growth = payload
        .ok()
        .filter(|p| p.is_file())
        .and_then(|p| jobcache_persist::inspect(p).ok())
        .map_or(0, |i| {
            i.arrays
                .iter()
                .filter(|a| a.zstd)
                .map(|a| a.byte_len.saturating_sub(a.stored_len))
                .sum()
        });
    entry.stored_bytes.saturating_add(growth)
}

//! `jobcache why FUNCTION [--last]`: why each stored call of a function was
//! computed, said as what differs from the nearest call stored before it.

use crate::cache::{short, Cache};
use crate::error::Result;
use crate::style::{clock, emit, table, Align, Style};
use jobcache_memo::why::{explain, CallRecord};
use jobcache_trace::Timestamp;
use serde_json::json;
use std::path::Path;
use std::process::ExitCode;
use std::time::SystemTime;

/// Arguments of `why`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The function (its full name, or the last part of it)
    function: String,
    /// Only the most recent call
    #[arg(long)]
    last: bool,
    /// Print JSON (shape documented in README.md)
    #[arg(long)]
    json: bool,
}

/// One stored call: when, its key, and its record if it has one (results
/// stored by versions that kept no per-argument digests have none).
struct Call {
    created: SystemTime,
    key: String,
    record: Option<CallRecord>,
}

/// Runs `why`.
pub fn run(dir: &Path, args: Args) -> Result<ExitCode> {
    let cache = Cache::open(dir)?;
    let ns = cache.resolve(&args.function)?;
    let mut calls: Vec<Call> = cache
        .store
        .entries(&ns)?
        .into_iter()
        .filter_map(|e| {
            let meta = e.meta.ok()?;
            Some(Call {
                created: meta.created,
                record: CallRecord::from_meta(&meta),
                key: e.key,
            })
        })
        .collect();
    calls.sort_by(|a, b| (a.created, &a.key).cmp(&(b.created, &b.key)));
    let first = if args.last {
        calls.len().saturating_sub(1)
    } else {
        0
    };
    let answers: Vec<(&Call, String)> = (first..calls.len())
        .map(|i| {
            let call = &calls[i];
            let answer = match &call.record {
                None => "(stored without per-argument digests: no answer)".to_string(),
                Some(record) => {
                    // The calls stored before it, most recent first.
                    let earlier = calls[..i].iter().rev().filter_map(|c| c.record.as_ref());
                    explain(record, earlier).to_string()
                }
            };
            (call, answer)
        })
        .collect();
    if args.json {
        let rows: Vec<_> = answers
            .iter()
            .map(|(c, why)| {
                json!({
                    "key": c.key,
                    "created": crate::style::rfc3339(c.created),
                    "why": why,
                })
            })
            .collect();
        emit(&super::json(&json!({ "function": ns, "calls": rows })));
        return Ok(ExitCode::SUCCESS);
    }
    if answers.is_empty() {
        emit(&format!("{ns}: no stored calls\n"));
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = answers
        .iter()
        .map(|(c, why)| {
            vec![
                clock(Timestamp::from_system_time(c.created)),
                short(&c.key).to_string(),
                why.clone(),
            ]
        })
        .collect();
    let style = Style::detect();
    let mut out = format!("{}\n", style.bold(&ns));
    out.push_str(&table(
        style,
        &["COMPUTED (UTC)", "KEY", "WHY IT WAS COMPUTED"],
        &[Align::Left, Align::Left, Align::Left],
        &rows,
    ));
    emit(&out);
    Ok(ExitCode::SUCCESS)
}

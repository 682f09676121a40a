//! `jobcache verify [--quick] [--fix]`.

use crate::cache::Cache;
use crate::error::Result;
use crate::style::{count, emit, Style};
use indicatif::{ProgressBar, ProgressStyle};
use jobcache_store::Verdict;
use jobcache_trace::report::human_bytes;
use jobcache_trace::{Event, EventKind};
use serde_json::json;
use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Arguments of `verify`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Remove the corrupt entries found (they are recomputed on next use)
    #[arg(long)]
    fix: bool,
    /// Check metadata and payload lengths only, reading no payload file
    /// (seconds for 10⁶ small entries); the full check reads every payload
    #[arg(long)]
    quick: bool,
    /// Print JSON (shape documented in README.md)
    #[arg(long)]
    json: bool,
}

/// Progress on stderr: a bar on a terminal, a plain line every few seconds
/// otherwise.
enum Progress {
    Bar(ProgressBar, usize),
    Lines { last: Instant, total: usize },
}

impl Progress {
    fn new(entries: usize, bytes: u64) -> Progress {
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(bytes);
            if let Ok(s) =
                ProgressStyle::with_template("{spinner} [{bar:30}] {bytes}/{total_bytes} {msg}")
            {
                bar.set_style(s.progress_chars("=> "));
            }
            bar.set_message(format!("0/{entries} entries"));
            Progress::Bar(bar, entries)
        } else {
            Progress::Lines {
                last: Instant::now(),
                total: entries,
            }
        }
    }

    fn step(&mut self, done: usize, bytes: u64, done_bytes: u64) {
        match self {
            Progress::Bar(bar, total) => {
                bar.inc(bytes);
                bar.set_message(format!("{done}/{total} entries"));
            }
            Progress::Lines { last, total } => {
                if last.elapsed() >= Duration::from_secs(2) {
                    eprintln!(
                        "verify: {done}/{total} entries, {}",
                        human_bytes(done_bytes)
                    );
                    *last = Instant::now();
                }
            }
        }
    }

    fn print(&self, text: &str) {
        match self {
            Progress::Bar(bar, _) => bar.suspend(|| emit(text)),
            Progress::Lines { .. } => emit(text),
        }
    }

    fn finish(self) {
        if let Progress::Bar(bar, _) = self {
            bar.finish_and_clear();
        }
    }
}

/// A corrupt entry, or a damaged range of a pack (whose record header may
/// name no entry, or an entry of no known function).
struct Problem<'a> {
    function: Option<&'a str>,
    key: Option<&'a str>,
    /// The entry's directory, or `<pack> @ <offset>`.
    path: String,
    /// Where in its pack, for a damaged pack range.
    pack: Option<serde_json::Value>,
    reason: &'a str,
    removed: bool,
}

/// Reports a problem: its line (unless --json), its journal event (if it was
/// removed and its entry is known) and its JSON.
fn report(
    problem: Problem<'_>,
    progress: Option<&Progress>,
    style: Style,
    problems: &mut Vec<serde_json::Value>,
    events: &mut Vec<Event>,
) {
    let Problem {
        function,
        key,
        path,
        pack,
        reason,
        removed,
    } = problem;
    if let Some(p) = progress {
        let who = match (function, key) {
            (Some(ns), Some(key)) => format!("{ns} {key}"),
            (None, Some(key)) => format!("{key} (function unknown)"),
            _ => path.clone(),
        };
        p.print(&format!(
            "{} {who}: {reason}{}\n",
            style.red("corrupt"),
            if removed { " (removed)" } else { "" }
        ));
    }
    if removed {
        if let (Some(ns), Some(key)) = (function, key) {
            events.push(
                Event::new(EventKind::Corrupt, ns)
                    .args(key, "")
                    .message(format!("{reason}; removed by jobcache verify --fix")),
            );
        }
    }
    let mut json = serde_json::Map::new();
    json.insert("function".into(), json!(function));
    json.insert("key".into(), json!(key));
    json.insert("path".into(), json!(path));
    if let Some(pack) = pack {
        json.insert("pack".into(), pack);
    }
    json.insert("reason".into(), json!(reason));
    json.insert("removed".into(), json!(removed));
    problems.push(serde_json::Value::Object(json));
}

/// Runs `verify`.
pub fn run(dir: &Path, args: Args) -> Result<ExitCode> {
    let cache = Cache::open(dir)?;
    // --quick: one walk checks every entry's metadata (and rebuilds the
    // index); the loop below reports its verdicts.
    let (entries, mut quick) = if args.quick {
        let busy = super::busy::Busy::start("checking metadata");
        let mut listed = Vec::new();
        cache
            .store
            .verify_quick(&mut |info, verdict| listed.push((info.clone(), verdict.clone())))?;
        drop(busy);
        let (entries, verdicts): (Vec<_>, Vec<_>) = listed.into_iter().unzip();
        (entries, Some(verdicts.into_iter()))
    } else {
        (cache.store.all_entries()?, None)
    };
    let total_bytes: u64 = entries
        .iter()
        .map(|e| e.meta.as_ref().map_or(0, |m| m.payload_len))
        .sum();
    let style = Style::detect();
    let mut progress = (!args.json).then(|| Progress::new(entries.len(), total_bytes));
    let (mut ok, mut missing, mut bytes) = (0usize, 0usize, 0u64);
    let mut problems = Vec::new();
    let mut events = Vec::new();
    for (i, info) in entries.iter().enumerate() {
        // Read-only: a corrupt entry is only removed with --fix, below.
        let verdict = match quick.as_mut().and_then(Iterator::next) {
            Some(v) => v,
            None => cache.store.check(&info.namespace, &info.key)?,
        };
        let step = info.meta.as_ref().map_or(0, |m| m.payload_len);
        match verdict {
            Verdict::Ok => {
                ok += 1;
                bytes += step;
            }
            Verdict::Missing => missing += 1,
            Verdict::Corrupt(reason) => {
                // Where it was, before a --fix removes it.
                let location = cache.store.locate(&info.namespace, &info.key)?;
                if args.fix {
                    cache.store.remove(&info.namespace, &info.key)?;
                }
                report(
                    Problem {
                        function: Some(&info.namespace),
                        key: Some(&info.key),
                        path: location.to_string(),
                        pack: None,
                        reason: &reason,
                        removed: args.fix,
                    },
                    progress.as_ref(),
                    style,
                    &mut problems,
                    &mut events,
                );
            }
        }
        if let Some(p) = progress.as_mut() {
            p.step(i + 1, step, bytes);
        }
    }
    // Damaged records and torn tails of packs: a lookup skips them (the
    // entries they held are misses), so they are listed by no function.
    let damage = cache.store.pack_damage()?;
    for d in &damage {
        let (function, key) = match &d.entry {
            Some((ns, key)) => (ns.as_deref(), Some(key.as_str())),
            None => (None, None),
        };
        let at = format!("{} @ {}", d.pack.display(), d.offset);
        let what = if d.tail {
            "torn pack tail (an append cut short)"
        } else {
            "damaged pack record"
        };
        let reason = format!("{what} at {at}, {} bytes", d.len);
        report(
            Problem {
                function,
                key,
                path: at,
                pack: Some(
                    json!({"path": d.pack.display().to_string(), "offset": d.offset, "bytes": d.len}),
                ),
                reason: &reason,
                removed: args.fix,
            },
            progress.as_ref(),
            style,
            &mut problems,
            &mut events,
        );
    }
    if args.fix && !damage.is_empty() {
        cache.store.repair_packs()?;
    }
    if let Some(p) = progress {
        p.finish();
    }
    if quick.is_none() {
        // The full check rebuilds the store's index too (--quick did).
        cache.store.rebuild_index()?;
    }
    super::record(&cache, &events);
    let corrupt = problems.len();
    // Each damaged range held an entry (or a torn append of one).
    let checked = entries.len() + damage.len();
    if args.json {
        emit(&super::json(&json!({
            "cache": cache.dir.display().to_string(),
            "checked": checked,
            "ok": ok,
            "corrupt": corrupt,
            "missing": missing,
            "bytes": bytes,
            "fixed": args.fix,
            "problems": problems,
        })));
    } else {
        let mut out = format!(
            "checked {} ({}) in {}: {ok} ok, ",
            count(checked, "entry", "entries"),
            human_bytes(bytes),
            cache.dir.display()
        );
        out.push_str(&if corrupt == 0 {
            style.green("0 corrupt")
        } else {
            style.red(&format!("{corrupt} corrupt"))
        });
        if missing > 0 {
            out.push_str(&format!(", {missing} removed meanwhile"));
        }
        if corrupt > 0 {
            out.push_str(if args.fix {
                "; removed them (they are recomputed on next use)"
            } else {
                "; run `jobcache verify --fix` to remove them"
            });
        }
        out.push('\n');
        emit(&out);
    }
    Ok(if corrupt > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

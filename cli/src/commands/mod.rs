//! One module per subcommand: its clap arguments (`Args`) and `run`.

pub mod assets;
mod busy;
pub mod clear;
pub mod gc;
pub mod inspect;
pub mod log;
pub mod ls;
pub mod report;
pub mod show;
pub mod verify;
pub mod why;

use crate::cache::Cache;
use crate::error::Result;
use jobcache_trace::{Event, Filter, Journal};

/// The journal's events passing `filter`; none when the cache has no journal.
pub(crate) fn journal_events(cache: &Cache, filter: &Filter) -> Result<Vec<Event>> {
    if cache.is_remote() {
        return Ok(Vec::new());
    }
    let path = cache.journal();
    if jobcache_trace::journal_files(&path).is_empty() {
        return Ok(Vec::new());
    }
    Ok(jobcache_trace::read_journal(&path, filter)?)
}

/// Appends events about what the command line removed to the journal, so
/// reports see them; a journal that cannot be written only warns.
pub(crate) fn record(cache: &Cache, events: &[Event]) {
    if events.is_empty() || cache.is_remote() {
        return;
    }
    let result =
        Journal::open(cache.journal()).and_then(|j| events.iter().try_for_each(|e| j.append(e)));
    if let Err(e) = result {
        ::log::warn!("could not record the removal in the journal: {e}");
    }
}

/// Serializes a JSON document for stdout (with a final newline).
pub(crate) fn json(value: &serde_json::Value) -> String {
    let mut s = serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".into());
    s.push('\n');
    s
}

//! The figures of a report, computed once from the events in O(n log n):
//! runs, per-function totals, problems, removals and the cache over time.
//! The HTML page and `--json` are two renderings of this one [`Summary`].

use super::{totals_of_calls, FunctionTotals};
use crate::{Event, EventKind, Timestamp};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// A gap of this long without any event of a process starts a new run
/// (a process id may be used again by a later process).
pub const RUN_GAP: Duration = Duration::from_secs(3600);

/// One call: a hit, a computation or a failure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Call {
    /// Its event's index in the events given.
    pub event: usize,
    /// For a hit: the time it saved (estimated); zero otherwise.
    pub saved: Duration,
}

/// The calls and other events of one process, close together in time.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// The host of the process.
    pub host: String,
    /// The process id.
    pub pid: u32,
    /// When its first call started.
    pub start: Timestamp,
    /// When its last event was recorded.
    pub end: Timestamp,
    /// Totals of its calls (function `"TOTAL"`).
    pub totals: FunctionTotals,
    /// Its calls, in time order.
    pub calls: Vec<Call>,
    /// Its functions, in the order they were first called (the timeline's lanes).
    pub functions: Vec<String>,
}

impl Run {
    /// `end - start`.
    pub fn wall(&self) -> Duration {
        Duration::from_micros((self.end.unix_micros() - self.start.unix_micros()).max(0) as u64)
    }
}

/// Problems of one kind and one function.
#[derive(Debug, Clone, PartialEq)]
pub struct ProblemGroup {
    /// `failed`, `corrupt` or `storage_error`.
    pub kind: EventKind,
    /// The function.
    pub function: String,
    /// How many.
    pub count: u64,
    /// The first one's time.
    pub first: Timestamp,
    /// The last one's time.
    pub last: Timestamp,
    /// The last one's message.
    pub message: String,
    /// How many different messages the group has.
    pub messages: usize,
}

/// A point of the cache-over-time chart: what the journal says was stored
/// after an event that changed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachePoint {
    /// The event's time.
    pub time: Timestamp,
    /// Bytes of the entries computed and not removed since.
    pub bytes: u64,
    /// Those entries.
    pub entries: u64,
}

/// Everything a report shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Events read.
    pub events: usize,
    /// The earliest start and the latest time of any event.
    pub span: Option<(Timestamp, Timestamp)>,
    /// Per function (sorted by name), then a `TOTAL` row.
    pub functions: Vec<FunctionTotals>,
    /// Runs with calls, newest first.
    pub runs: Vec<Run>,
    /// Problems grouped by kind and function, most frequent first.
    pub problems: Vec<ProblemGroup>,
    /// `cleared`, `evicted` and `corrupt` events (indexes), in time order.
    pub removals: Vec<usize>,
    /// The cache over time, in time order.
    pub cache: Vec<CachePoint>,
}

/// Computes the [`Summary`] of `events`.
pub fn summarize_events(events: &[Event]) -> Summary {
    let calls = calls(events);
    let functions = super::with_sum(totals_of_calls(events, &calls));
    let span = events
        .iter()
        .map(Event::start)
        .min()
        .zip(events.iter().map(|e| e.time).max());
    Summary {
        events: events.len(),
        span,
        functions,
        runs: runs(events, &calls),
        problems: problems(events),
        removals: events
            .iter()
            .enumerate()
            .filter(|(_, e)| {
                matches!(
                    e.kind,
                    EventKind::Cleared | EventKind::Evicted | EventKind::Corrupt
                )
            })
            .map(|(i, _)| i)
            .collect(),
        cache: cache_over_time(events),
    }
}

/// Every call, with the time each hit saved: what computing took (the
/// hit's `compute_duration`, else a computation of the same arguments in
/// these events, else the function's mean computation) minus the load.
pub(crate) fn calls(events: &[Event]) -> Vec<Call> {
    let mut by_args: HashMap<(&str, &str), Duration> = HashMap::with_capacity(events.len() / 2);
    let mut sums: HashMap<&str, (Duration, u32)> = HashMap::new();
    for e in events.iter().filter(|e| e.kind == EventKind::Computed) {
        by_args.insert((&e.function, &e.args_digest), e.duration);
        let s = sums.entry(&e.function).or_default();
        s.0 = s.0.saturating_add(e.duration);
        s.1 = s.1.saturating_add(1);
    }
    events
        .iter()
        .enumerate()
        .filter(|(_, e)| is_call(e.kind))
        .map(|(i, e)| {
            let saved = if e.kind == EventKind::Hit {
                e.compute_duration
                    .or_else(|| {
                        by_args
                            .get(&(e.function.as_str(), e.args_digest.as_str()))
                            .copied()
                    })
                    .or_else(|| sums.get(e.function.as_str()).map(|(d, n)| *d / (*n).max(1)))
                    .unwrap_or_default()
                    .saturating_mul(u32::try_from(e.calls).unwrap_or(u32::MAX))
                    .saturating_sub(e.duration)
            } else {
                Duration::ZERO
            };
            Call { event: i, saved }
        })
        .collect()
}

/// Whether events of this kind are calls.
pub fn is_call(kind: EventKind) -> bool {
    matches!(
        kind,
        EventKind::Hit | EventKind::Computed | EventKind::Failed
    )
}

fn runs(events: &[Event], calls: &[Call]) -> Vec<Run> {
    // Events of each process in time order, split where it was silent long.
    let mut by_process: HashMap<(&str, u32), Vec<usize>> = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        by_process.entry((&e.host, e.pid)).or_default().push(i);
    }
    let mut saved = vec![Duration::ZERO; events.len()];
    for c in calls {
        if let Some(s) = saved.get_mut(c.event) {
            *s = c.saved;
        }
    }
    let mut runs = Vec::new();
    for ((host, pid), mut idx) in by_process {
        idx.sort_by_key(|&i| (events[i].time, i));
        let mut current: Vec<usize> = Vec::new();
        let mut last_end: Option<Timestamp> = None;
        for i in idx {
            let e = &events[i];
            let gap = last_end.is_some_and(|end| {
                e.start().unix_micros() - end.unix_micros() > RUN_GAP.as_micros() as i64
            });
            if gap && !current.is_empty() {
                runs.extend(make_run(events, host, pid, &current, &saved));
                current.clear();
            }
            last_end = Some(last_end.map_or(e.time, |t| t.max(e.time)));
            current.push(i);
        }
        runs.extend(make_run(events, host, pid, &current, &saved));
    }
    runs.sort_by(|a, b| b.start.cmp(&a.start).then(b.pid.cmp(&a.pid)));
    runs
}

fn make_run(
    events: &[Event],
    host: &str,
    pid: u32,
    idx: &[usize],
    saved: &[Duration],
) -> Option<Run> {
    let calls: Vec<Call> = idx
        .iter()
        .filter(|&&i| is_call(events[i].kind))
        .map(|&i| Call {
            event: i,
            saved: saved.get(i).copied().unwrap_or_default(),
        })
        .collect();
    if calls.is_empty() {
        return None; // a `jobcache gc` or `clear`: shown with the removals
    }
    let start = idx.iter().map(|&i| events[i].start()).min()?;
    let end = idx.iter().map(|&i| events[i].time).max()?;
    let mut functions: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut ordered = calls.clone();
    ordered.sort_by_key(|c| (events[c.event].start(), c.event));
    for c in &ordered {
        let f = &events[c.event].function;
        if seen.insert(f.as_str()) {
            functions.push(f.clone());
        }
    }
    let mut totals = FunctionTotals {
        function: "TOTAL".into(),
        ..FunctionTotals::default()
    };
    for c in &calls {
        totals.add_call(&events[c.event], c.saved);
    }
    totals.corrupt = idx
        .iter()
        .filter(|&&i| events[i].kind == EventKind::Corrupt)
        .count() as u64;
    Some(Run {
        host: host.to_string(),
        pid,
        start,
        end,
        totals,
        calls: ordered,
        functions,
    })
}

fn problems(events: &[Event]) -> Vec<ProblemGroup> {
    let mut groups: BTreeMap<(EventKind, &str), (ProblemGroup, std::collections::HashSet<&str>)> =
        BTreeMap::new();
    for e in events.iter().filter(|e| {
        matches!(
            e.kind,
            EventKind::Failed | EventKind::Corrupt | EventKind::StorageError
        )
    }) {
        let message = e.message.as_deref().unwrap_or("no message");
        let (g, distinct) = groups.entry((e.kind, &e.function)).or_insert_with(|| {
            (
                ProblemGroup {
                    kind: e.kind,
                    function: e.function.clone(),
                    count: 0,
                    first: e.time,
                    last: e.time,
                    message: message.to_string(),
                    messages: 0,
                },
                std::collections::HashSet::new(),
            )
        });
        g.count += 1;
        g.first = g.first.min(e.time);
        if e.time >= g.last {
            g.last = e.time;
            message.clone_into(&mut g.message);
        }
        if distinct.len() < 1000 {
            distinct.insert(message);
        }
        g.messages = distinct.len();
    }
    let mut out: Vec<ProblemGroup> = groups.into_values().map(|(g, _)| g).collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then(b.last.cmp(&a.last)));
    out
}

/// Replays the journal's entries: a computation stores its key's bytes, an
/// eviction or a corrupt entry removes its key, a clear removes every key
/// of its function (or of all functions when it names none).
fn cache_over_time(events: &[Event]) -> Vec<CachePoint> {
    let mut order: Vec<usize> = (0..events.len()).collect();
    order.sort_by_key(|&i| (events[i].time, i));
    let mut keys: HashMap<(&str, &str), u64> = HashMap::with_capacity(events.len() / 2);
    let (mut bytes, mut entries) = (0u64, 0u64);
    let mut out = Vec::new();
    for i in order {
        let e = &events[i];
        let key = (e.function.as_str(), e.args_digest.as_str());
        let changed = match e.kind {
            EventKind::Computed => {
                if let Some(old) = keys.insert(key, e.output_bytes) {
                    bytes = bytes.saturating_sub(old);
                    entries = entries.saturating_sub(1);
                }
                bytes = bytes.saturating_add(e.output_bytes);
                entries += 1;
                true
            }
            EventKind::Evicted | EventKind::Corrupt => match keys.remove(&key) {
                Some(old) => {
                    bytes = bytes.saturating_sub(old);
                    entries = entries.saturating_sub(1);
                    true
                }
                None => false,
            },
            EventKind::Cleared => {
                let before = keys.len();
                keys.retain(|(f, _), b| {
                    let gone = e.function.is_empty() || *f == e.function;
                    if gone {
                        bytes = bytes.saturating_sub(*b);
                    }
                    !gone
                });
                entries = entries.saturating_sub((before - keys.len()) as u64);
                before != keys.len()
            }
            _ => false,
        };
        if changed {
            out.push(CachePoint {
                time: e.time,
                bytes,
                entries,
            });
        }
    }
    out
}

/// At most `max` points: the last point of each of `max` equal time slices.
pub fn downsample(points: &[CachePoint], max: usize) -> Vec<CachePoint> {
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return Vec::new();
    };
    if points.len() <= max || max == 0 {
        return points.to_vec();
    }
    let span = (last.time.unix_micros() - first.time.unix_micros()).max(1) as f64;
    let mut out: Vec<CachePoint> = Vec::with_capacity(max + 1);
    let mut slot = usize::MAX;
    for p in points {
        let s = ((p.time.unix_micros() - first.time.unix_micros()) as f64 / span * (max - 1) as f64)
            as usize;
        if s == slot {
            if let Some(l) = out.last_mut() {
                *l = *p;
            }
        } else {
            out.push(*p);
            slot = s;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_unix_micros(1_700_000_000_000_000 + secs * 1_000_000)
    }

    fn ev(kind: EventKind, f: &str, key: &str, secs: i64, pid: u32) -> Event {
        let mut e = Event::new(kind, f).args(key, "").at(at(secs));
        e.pid = pid;
        e.host = "h".into();
        e
    }

    #[test]
    fn runs_are_processes_newest_first_split_by_long_silence() {
        let events = vec![
            ev(EventKind::Computed, "f", "a", 0, 1).duration(Duration::from_secs(2)),
            ev(EventKind::Hit, "f", "a", 5, 1),
            ev(EventKind::Computed, "g", "b", 10, 2).duration(Duration::from_secs(1)),
            ev(EventKind::Evicted, "f", "a", 20, 3),
            ev(EventKind::Hit, "f", "a", 10_000, 1),
        ];
        let s = summarize_events(&events);
        assert_eq!(s.runs.len(), 3, "{:?}", s.runs);
        assert_eq!((s.runs[0].pid, s.runs[0].totals.hits), (1, 1));
        assert_eq!(
            (s.runs[1].pid, s.runs[1].functions.clone()),
            (2, vec!["g".to_string()])
        );
        let first = &s.runs[2];
        assert_eq!((first.totals.calls, first.totals.computed), (2, 1));
        assert_eq!(first.start, at(-2));
        assert_eq!(first.wall(), Duration::from_secs(7));
        assert_eq!(first.totals.time_saved, Duration::from_secs(2));
        assert_eq!(s.removals, vec![3]);
    }

    #[test]
    fn problems_are_grouped_by_kind_and_function() {
        let mut events = Vec::new();
        for i in 0..12 {
            events.push(ev(EventKind::Failed, "f", "a", i, 1).message(format!("boom {}", i % 2)));
        }
        events.push(ev(EventKind::Corrupt, "f", "a", 3, 1).message("bad"));
        let p = problems(&events);
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].count, p[0].messages), (12, 2));
        assert_eq!((p[0].first, p[0].last), (at(0), at(11)));
        assert_eq!(p[0].message, "boom 1");
        assert_eq!((p[1].kind, p[1].count), (EventKind::Corrupt, 1));
    }

    #[test]
    fn cache_over_time_follows_computations_and_removals() {
        let events = vec![
            ev(EventKind::Computed, "f", "a", 0, 1).output_bytes(100),
            ev(EventKind::Computed, "f", "b", 1, 1).output_bytes(50),
            ev(EventKind::Computed, "g", "c", 2, 1).output_bytes(7),
            ev(EventKind::Evicted, "f", "a", 3, 2),
            ev(EventKind::Hit, "f", "b", 4, 1),
            ev(EventKind::Cleared, "g", "", 5, 2),
            ev(EventKind::Corrupt, "f", "b", 6, 1),
        ];
        let c = cache_over_time(&events);
        let seen: Vec<(u64, u64)> = c.iter().map(|p| (p.bytes, p.entries)).collect();
        assert_eq!(
            seen,
            [(100, 1), (150, 2), (157, 3), (57, 2), (50, 1), (0, 0)]
        );
        assert_eq!(downsample(&c, 3).len(), 3);
        assert_eq!(downsample(&c, 3).last(), c.last());
    }
}

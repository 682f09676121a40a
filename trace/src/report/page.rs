//! The HTML page and the JSON document of a [`Summary`].
//!
//! The page is self-contained (inline CSS, no script, no font, no image,
//! no link): timelines are positioned boxes in percent of their run, so
//! they fit any width; the cache chart is an inline SVG. Every text that
//! comes from events is escaped. The size of the page is bounded whatever
//! the number of events: the newest [`RUNS_DRAWN`] runs get a timeline,
//! calls too short to see are merged into one mark per slice of the axis,
//! and lists keep their newest rows.

use super::model::{downsample, CachePoint, ProblemGroup, Run};
use super::{escape_html, human_bytes, human_duration, short, FunctionTotals, Summary};
use crate::{Event, EventKind, Timestamp};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// What the cache holds now, per function: `(entries, bytes)` (from the
/// store; the journal only knows what was written).
pub type Stored = BTreeMap<String, (u64, u64)>;

/// Runs that get a timeline (the newest); older ones are rows of the table.
pub const RUNS_DRAWN: usize = 10;
/// Rows of the runs table at most (the newest).
const RUNS_LISTED: usize = 200;
/// Removals and problem groups listed at most.
const LIST_MAX: usize = 200;
/// Boxes drawn per lane at most; calls beyond are counted in a note.
const BOXES_PER_LANE: usize = 1000;
/// Calls narrower than this (percent of the axis) share a mark per slice.
const SLICE: f64 = 1.0;
/// Points of the cache chart at most.
const CHART_POINTS: usize = 400;

/// The page of `events`, without what the cache holds now.
pub fn html(events: &[Event]) -> String {
    html_with(events, None)
}

/// The figures of [`html`] as JSON (the shape is in the CLI's README).
pub fn json(events: &[Event]) -> Value {
    json_with(events, None)
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn totals_json(t: &FunctionTotals, stored: Option<&Stored>) -> Value {
    let now = stored.map(|s| {
        if t.function == "TOTAL" {
            s.values().fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
        } else {
            s.get(&t.function).copied().unwrap_or((0, 0))
        }
    });
    json!({
        "function": t.function,
        "calls": t.calls,
        "hits": t.hits,
        "computed": t.computed,
        "failed": t.failed,
        "corrupt": t.corrupt,
        "hit_rate": t.hit_rate(),
        "computing_seconds": secs(t.time_computing),
        "loading_seconds": secs(t.time_loading),
        "saved_seconds": secs(t.time_saved),
        "written_bytes": t.bytes_written,
        "stored_entries": now.map(|n| n.0),
        "stored_bytes": now.map(|n| n.1),
        "slowest_seconds": secs(t.slowest),
        "slowest_args": t.slowest_args,
    })
}

fn run_json(r: &Run) -> Value {
    let t = &r.totals;
    json!({
        "host": r.host,
        "pid": r.pid,
        "start": r.start.to_string(),
        "end": r.end.to_string(),
        "wall_seconds": secs(r.wall()),
        "calls": t.calls,
        "hits": t.hits,
        "computed": t.computed,
        "failed": t.failed,
        "corrupt": t.corrupt,
        "computing_seconds": secs(t.time_computing),
        "saved_seconds": secs(t.time_saved),
        "written_bytes": t.bytes_written,
        "functions": r.functions,
    })
}

/// The figures as JSON, with what the cache holds now when known.
pub fn json_with(events: &[Event], stored: Option<&Stored>) -> Value {
    let s = super::summarize_events(events);
    let (functions, total) = split_total(&s.functions);
    json!({
        "events": s.events,
        "from": s.span.map(|(a, _)| a.to_string()),
        "to": s.span.map(|(_, b)| b.to_string()),
        "total": total.map(|t| totals_json(t, stored)),
        "functions": functions.iter().map(|t| totals_json(t, stored)).collect::<Vec<_>>(),
        "runs": s.runs.iter().map(run_json).collect::<Vec<_>>(),
        "problems": s.problems.iter().map(|p| json!({
            "kind": p.kind.as_str(),
            "function": p.function,
            "count": p.count,
            "first": p.first.to_string(),
            "last": p.last.to_string(),
            "message": p.message,
            "messages": p.messages,
        })).collect::<Vec<_>>(),
        "removals": s.removals.iter().filter_map(|&i| events.get(i)).map(|e| json!({
            "time": e.time.to_string(),
            "kind": e.kind.as_str(),
            "function": e.function,
            "key": e.args_digest,
            "bytes": e.output_bytes,
            "message": e.message,
        })).collect::<Vec<_>>(),
        "cache": downsample(&s.cache, 1000).iter().map(|p| json!({
            "time": p.time.to_string(),
            "bytes": p.bytes,
            "entries": p.entries,
        })).collect::<Vec<_>>(),
    })
}

fn split_total(rows: &[FunctionTotals]) -> (&[FunctionTotals], Option<&FunctionTotals>) {
    match rows.split_last() {
        Some((last, rest)) if last.function == "TOTAL" => (rest, Some(last)),
        _ => (rows, None),
    }
}

const STYLE: &str = "\
:root{--computed:#3b6fd0;--hit:#2f9e52;--failed:#d0453b;--corrupt:#b8860b;--line:#e3e3e3;--muted:#666}\
*{box-sizing:border-box}\
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;padding:1.2em;max-width:1400px;color:#222}\
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.15em;margin:1.6em 0 .5em;border-bottom:1px solid var(--line);padding-bottom:.2em}\
p.note,.muted{color:var(--muted)}\
ul.kpis{display:flex;flex-wrap:wrap;gap:.6em;list-style:none;padding:0;margin:.8em 0}\
ul.kpis li{border:1px solid var(--line);border-radius:6px;padding:.4em .8em;min-width:8.5em}\
ul.kpis b{display:block;font-size:1.25em}\
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}\
table{border-collapse:collapse;margin:.4em 0;font-variant-numeric:tabular-nums}\
th,td{padding:.25em .7em;border-bottom:1px solid var(--line);white-space:nowrap}\
th{text-align:left;background:#f5f5f5;font-size:.85em;letter-spacing:.02em}\
td.num{text-align:right}td.text{white-space:normal;min-width:14em;max-width:40em;overflow-wrap:anywhere}\
tr.total td{font-weight:600;border-top:2px solid #999}\
details.run{border:1px solid var(--line);border-radius:6px;margin:.7em 0;padding:.3em .7em}\
details.run summary{cursor:pointer;font-weight:600}\
details.run summary span{font-weight:400;color:var(--muted)}\
.timeline{margin:.5em 0 .3em}\
.lane{display:flex;align-items:center;min-height:22px;border-bottom:1px solid #f0f0f0}\
.lane-name{flex:0 0 13em;padding-right:.6em;text-align:right;overflow:hidden;text-overflow:ellipsis;white-space:nowrap;font-size:.85em}\
.track{position:relative;flex:1;height:18px;margin-right:2.2em}\
.axis{display:flex}.axis .track{height:1.6em;border-top:1px solid #999}\
.axis .lane-name{color:var(--muted)}\
.tick{position:absolute;top:0;font-size:.75em;color:var(--muted);border-left:1px solid #999;padding-left:2px;height:.6em;line-height:1.6em;white-space:nowrap}\
.bar,.mark{position:absolute;top:3px;height:12px;border-radius:2px}\
.bar{min-width:2px;background:var(--computed)}\
.mark{width:3px;margin-left:-1px;background:var(--hit)}\
.track .computed{background:var(--computed)}.track .failed{background:var(--failed)}.track .corrupt{background:var(--corrupt);top:0;height:18px}.track .hit{background:var(--hit)}\
tr.problem td:first-child{border-left:4px solid var(--failed)}tr.problem.corrupt td:first-child{border-left-color:var(--corrupt)}\
.mark.many{width:5px;margin-left:-2px;opacity:.85}\
.legend{display:flex;flex-wrap:wrap;gap:1.2em;font-size:.85em;color:var(--muted);margin:.3em 0}\
.sw{display:inline-block;width:.9em;height:.9em;margin-right:.35em;vertical-align:-.1em;border-radius:2px}\
svg.chart{width:100%;height:160px;border:1px solid var(--line);background:#fcfcfc}\
.chart-axis{display:flex;justify-content:space-between;font-size:.8em;color:var(--muted)}\
@media (max-width:700px){body{padding:.6em;font-size:13px}\
.lane{flex-wrap:wrap}.lane-name{flex:1 0 100%;text-align:left;padding:0}\
.axis .lane-name{display:none}ul.kpis li{min-width:45%}}";

/// The page of `events`, with what the cache holds now when known.
pub fn html_with(events: &[Event], stored: Option<&Stored>) -> String {
    let s = super::summarize_events(events);
    let mut h = String::with_capacity(64 << 10);
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    h.push_str("<title>jobcache report</title>\n<style>");
    h.push_str(STYLE);
    h.push_str("</style>\n</head>\n<body>\n<h1>jobcache report</h1>\n");
    header(&mut h, &s);
    runs(&mut h, events, &s);
    functions(&mut h, &s, stored);
    problems(&mut h, &s.problems);
    cache_chart(&mut h, &s.cache);
    removals(&mut h, events, &s.removals);
    h.push_str("</body>\n</html>\n");
    h
}

fn header(h: &mut String, s: &Summary) {
    let _ = write!(
        h,
        "<p class=\"range\">{}",
        count(s.events as u64, "event", "events")
    );
    if let Some((a, b)) = s.span {
        let _ = write!(
            h,
            " from <time>{}</time> to <time>{}</time> (UTC)",
            clock(a),
            clock(b)
        );
    }
    h.push_str(".</p>\n");
    let Some(t) = s.functions.last() else { return };
    let rate = t
        .hit_rate()
        .map_or("–".to_string(), |r| format!("{:.0}%", r * 100.0));
    let _ = writeln!(
        h,
        "<ul class=\"kpis\"><li>runs<b>{}</b></li><li>calls<b>{}</b></li><li>hit rate<b>{rate}</b></li>\
<li>time computing<b>{}</b></li><li>time saved by hits<b>{}</b></li><li>problems<b>{}</b></li></ul>",
        s.runs.len(),
        t.calls,
        human_duration(t.time_computing),
        human_duration(t.time_saved),
        s.problems.iter().map(|p| p.count).sum::<u64>(),
    );
}

/// `1 call`, `3 calls`.
fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `2024-05-01 12:00:03` (UTC).
fn clock(t: Timestamp) -> String {
    let s = t.to_string();
    s.get(..19).map_or(s.clone(), |p| p.replace('T', " "))
}

fn runs(h: &mut String, events: &[Event], s: &Summary) {
    h.push_str("<section id=\"runs\">\n<h2>Runs</h2>\n");
    if s.runs.is_empty() {
        h.push_str("<p class=\"note\">No calls recorded.</p>\n</section>\n");
        return;
    }
    h.push_str("<p class=\"note\">A run is one process's calls, newest first. Time saved is what the hits would have cost to compute again (estimated from the recorded computations).</p>\n");
    h.push_str("<div class=\"scroll\"><table class=\"runs\">\n<thead><tr><th>START (UTC)</th><th>PROCESS</th><th>WALL</th><th>CALLS</th><th>HITS</th><th>COMPUTED</th><th>FAILED</th><th>COMPUTING</th><th>SAVED</th><th>WRITTEN</th></tr></thead>\n<tbody>\n");
    for r in s.runs.iter().take(RUNS_LISTED) {
        let t = &r.totals;
        let _ = writeln!(
            h,
            "<tr class=\"run-row\"><td>{}</td><td>{} pid {}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            clock(r.start),
            escape_html(&short(&r.host, 30)),
            r.pid,
            human_duration(r.wall()),
            t.calls,
            t.hits,
            t.computed,
            t.failed,
            human_duration(t.time_computing),
            human_duration(t.time_saved),
            human_bytes(t.bytes_written),
        );
    }
    h.push_str("</tbody>\n</table></div>\n");
    if s.runs.len() > RUNS_LISTED {
        let _ = writeln!(
            h,
            "<p class=\"note\">{} older runs are not listed.</p>",
            s.runs.len() - RUNS_LISTED
        );
    }
    legend(h);
    for (i, r) in s.runs.iter().take(RUNS_DRAWN).enumerate() {
        timeline(h, events, r, i < 3);
    }
    if s.runs.len() > RUNS_DRAWN {
        let _ = writeln!(
            h,
            "<p class=\"note\">Timelines of the {} newest runs are drawn; {} older runs are in the table only.</p>",
            RUNS_DRAWN,
            s.runs.len() - RUNS_DRAWN
        );
    }
    h.push_str("</section>\n");
}

fn legend(h: &mut String) {
    h.push_str("<p class=\"legend\"><span><i class=\"sw\" style=\"background:var(--computed)\"></i>computed (bar as long as it took)</span><span><i class=\"sw\" style=\"background:var(--hit)\"></i>hit</span><span><i class=\"sw\" style=\"background:var(--failed)\"></i>failed</span><span><i class=\"sw\" style=\"background:var(--corrupt)\"></i>corrupt entry found</span><span>hover a mark for its arguments, key, duration and bytes</span></p>\n");
}

/// A step of the axis (seconds): 1, 2, 5 × 10^k below a minute, then
/// minutes and hours people count in.
fn tick_step(span: f64) -> f64 {
    const STEPS: [f64; 24] = [
        0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0,
        60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0,
    ];
    STEPS
        .iter()
        .copied()
        .find(|s| span / s <= 8.0)
        .unwrap_or_else(|| (span / 8.0 / 86400.0).ceil() * 86400.0)
}

/// A time from the start of a run: `0 s`, `250 ms`, `10 s`, `1 min`,
/// `1 min 30 s`, `2 h`, `1 h 30 min`.
pub(crate) fn relative(secs: f64) -> String {
    if secs <= 0.0 {
        return "0 s".into();
    }
    if secs < 1.0 {
        return format!("{} ms", (secs * 1000.0).round());
    }
    if secs < 60.0 {
        let s = (secs * 10.0).round() / 10.0;
        return if s.fract() == 0.0 {
            format!("{s:.0} s")
        } else {
            format!("{s:.1} s")
        };
    }
    let total = secs.round() as u64;
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    match (h, m, s) {
        (0, m, 0) => format!("{m} min"),
        (0, m, s) => format!("{m} min {s} s"),
        (h, 0, _) => format!("{h} h"),
        (h, m, _) => format!("{h} h {m} min"),
    }
}

fn kind_class(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Computed => "computed",
        EventKind::Hit => "hit",
        EventKind::Failed => "failed",
        _ => "corrupt",
    }
}

fn call_title(e: &Event) -> String {
    let mut t = format!("{} — {}\n", e.function, e.kind.as_str());
    if !e.args_summary.is_empty() {
        let _ = writeln!(t, "arguments: {}", short(&e.args_summary, 200));
    }
    if !e.args_digest.is_empty() {
        let _ = writeln!(t, "key: {}", short(&e.args_digest, 16));
    }
    if e.calls > 1 {
        let _ = writeln!(t, "calls: {} (durations added)", e.calls);
    }
    let _ = write!(t, "duration: {}", human_duration(e.duration));
    if e.output_bytes > 0 {
        let _ = write!(t, "\nbytes: {}", human_bytes(e.output_bytes));
    }
    if let Some(m) = &e.message {
        let _ = write!(t, "\nmessage: {}", short(m, 300));
    }
    let _ = write!(t, "\nended {} UTC", clock(e.time));
    t
}

/// One box of a lane: a call, or several too short to tell apart.
struct Mark<'a> {
    left: f64,
    width: f64,
    class: &'static str,
    events: Vec<&'a Event>,
}

fn timeline(h: &mut String, events: &[Event], r: &Run, open: bool) {
    let span_us = (r.end.unix_micros() - r.start.unix_micros()).max(1) as f64;
    let pct = |t: Timestamp| {
        ((t.unix_micros() - r.start.unix_micros()) as f64 / span_us * 100.0).clamp(0.0, 100.0)
    };
    let t = &r.totals;
    let _ = writeln!(
        h,
        "<details class=\"run\" data-pid=\"{}\"{}><summary>{} <span>· {} pid {} · {} wall · {}: {}, {} computed, {} failed</span></summary>\n<div class=\"timeline\">",
        r.pid,
        if open { " open" } else { "" },
        clock(r.start),
        escape_html(&short(&r.host, 30)),
        r.pid,
        human_duration(r.wall()),
        count(t.calls, "call", "calls"),
        count(t.hits, "hit", "hits"),
        t.computed,
        t.failed,
    );
    // The axis: relative times, the absolute start once (in the summary).
    let span = span_us / 1e6;
    let step = tick_step(span);
    h.push_str(
        "<div class=\"axis\"><div class=\"lane-name\">from the start</div><div class=\"track\">",
    );
    let mut k = 0u32;
    loop {
        let at = f64::from(k) * step;
        if at > span + 1e-9 || k > 50 {
            break;
        }
        let _ = write!(
            h,
            "<span class=\"tick\" style=\"left:{:.3}%\">{}</span>",
            at / span * 100.0,
            relative(at)
        );
        k += 1;
    }
    h.push_str("</div></div>\n");
    // Lanes: calls of each function, and the corrupt entries it met.
    let mut lanes: BTreeMap<&str, Vec<Mark<'_>>> = BTreeMap::new();
    let mut slices: BTreeMap<(&str, &'static str, i64), usize> = BTreeMap::new();
    let mut hidden: BTreeMap<&str, u64> = BTreeMap::new();
    let corrupt = events.iter().filter(|e| {
        e.kind == EventKind::Corrupt
            && e.pid == r.pid
            && e.host == r.host
            && e.time >= r.start
            && e.time <= r.end
    });
    let calls = r.calls.iter().filter_map(|c| events.get(c.event));
    for e in calls.chain(corrupt) {
        let lane = lanes.entry(e.function.as_str()).or_default();
        let class = kind_class(e.kind);
        let left = pct(e.start());
        let width = if e.kind == EventKind::Hit || e.kind == EventKind::Corrupt {
            0.0
        } else {
            pct(e.time) - left
        };
        if width < SLICE {
            let slice = (left / SLICE) as i64;
            if let Some(&at) = slices.get(&(e.function.as_str(), class, slice)) {
                if let Some(m) = lane.get_mut(at) {
                    m.events.push(e);
                    continue;
                }
            }
            if lane.len() >= BOXES_PER_LANE {
                *hidden.entry(e.function.as_str()).or_default() += 1;
                continue;
            }
            slices.insert((e.function.as_str(), class, slice), lane.len());
        } else if lane.len() >= BOXES_PER_LANE {
            *hidden.entry(e.function.as_str()).or_default() += 1;
            continue;
        }
        lane.push(Mark {
            left,
            width,
            class,
            events: vec![e],
        });
    }
    for f in &r.functions {
        let Some(marks) = lanes.get(f.as_str()) else {
            continue;
        };
        let _ = write!(
            h,
            "<div class=\"lane\" data-function=\"{}\"><div class=\"lane-name\" title=\"{}\">{}</div><div class=\"track\">",
            escape_html(f),
            escape_html(f),
            escape_html(&short(f, 40))
        );
        for m in marks {
            draw(h, m);
        }
        h.push_str("</div></div>\n");
        if let Some(n) = hidden.get(f.as_str()) {
            let _ = writeln!(
                h,
                "<p class=\"note\">{n} more calls of {} are not drawn.</p>",
                escape_html(f)
            );
        }
    }
    h.push_str("</div>\n</details>\n");
}

fn draw(h: &mut String, m: &Mark<'_>) {
    let n = m.events.len();
    let shape = if m.width >= SLICE { "bar" } else { "mark" };
    let title = match m.events.as_slice() {
        [one] => call_title(one),
        many => {
            let first = many.iter().map(|e| e.time).min().unwrap_or_default();
            let last = many.iter().map(|e| e.time).max().unwrap_or_default();
            let total: Duration = many.iter().map(|e| e.duration).sum();
            format!(
                "{} — {n} {} calls\nfrom {} to {} UTC\ntotal duration: {}",
                many.first().map_or("", |e| e.function.as_str()),
                m.class,
                clock(first),
                clock(last),
                human_duration(total)
            )
        }
    };
    let _ = write!(
        h,
        "<span class=\"{shape} {}{}\" data-count=\"{n}\" style=\"left:{:.3}%",
        m.class,
        if n > 1 { " many" } else { "" },
        m.left
    );
    if shape == "bar" {
        let _ = write!(h, ";width:{:.3}%", m.width);
    }
    let _ = write!(h, "\" title=\"{}\"></span>", escape_html(&title));
}

fn functions(h: &mut String, s: &Summary, stored: Option<&Stored>) {
    h.push_str("<section id=\"functions\">\n<h2>Per function</h2>\n");
    h.push_str("<p class=\"note\">Calls are hits, computations and failures. <i>Written ever</i>: bytes computations wrote in these events, entries since evicted or cleared included. <i>Stored now</i>: what the cache holds at the time of this report");
    if stored.is_none() {
        h.push_str(" (not known here: made from the journal alone)");
    }
    h.push_str(".</p>\n<div class=\"scroll\"><table class=\"functions\">\n<thead><tr><th>FUNCTION</th><th>CALLS</th><th>HITS</th><th>HIT RATE</th><th>COMPUTED</th><th>FAILED</th><th>CORRUPT</th><th>COMPUTING</th><th>SAVED</th><th>STORED NOW</th><th>WRITTEN EVER</th><th>SLOWEST CALL</th></tr></thead>\n<tbody>\n");
    let n = s.functions.len();
    for (i, t) in s.functions.iter().enumerate() {
        let total = i + 1 == n;
        let now = stored.map(|st| {
            if total {
                st.values().fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
            } else {
                st.get(&t.function).copied().unwrap_or((0, 0))
            }
        });
        let _ = writeln!(
            h,
            "<tr{} data-function=\"{}\"><td class=\"function\">{}</td><td class=\"calls num\">{}</td><td class=\"hits num\">{}</td><td class=\"rate num\">{}</td><td class=\"computed num\">{}</td><td class=\"failed num\">{}</td><td class=\"corrupt num\">{}</td><td class=\"computing num\">{}</td><td class=\"saved num\">{}</td><td class=\"stored num\">{}</td><td class=\"written num\">{}</td><td class=\"slowest num\" title=\"{}\">{}</td></tr>",
            if total { " class=\"total\"" } else { "" },
            escape_html(&t.function),
            escape_html(&t.function),
            t.calls,
            t.hits,
            t.hit_rate().map_or("–".into(), |r| format!("{:.0}%", r * 100.0)),
            t.computed,
            t.failed,
            t.corrupt,
            human_duration(t.time_computing),
            human_duration(t.time_saved),
            now.map_or("–".into(), |(e, b)| format!("{} in {e}", human_bytes(b))),
            human_bytes(t.bytes_written),
            escape_html(&short(&t.slowest_args, 200)),
            if t.slowest.is_zero() && t.slowest_args.is_empty() { "–".into() } else { human_duration(t.slowest) },
        );
    }
    h.push_str("</tbody>\n</table></div>\n</section>\n");
}

fn problems(h: &mut String, groups: &[ProblemGroup]) {
    h.push_str("<section id=\"problems\">\n<h2>Problems</h2>\n");
    if groups.is_empty() {
        h.push_str(
            "<p class=\"note\">None: no failure, corrupt entry or storage error.</p>\n</section>\n",
        );
        return;
    }
    h.push_str("<div class=\"scroll\"><table class=\"problems\">\n<thead><tr><th>KIND</th><th>FUNCTION</th><th>COUNT</th><th>FIRST (UTC)</th><th>LAST (UTC)</th><th>LAST MESSAGE</th></tr></thead>\n<tbody>\n");
    for p in groups.iter().take(LIST_MAX) {
        let others = if p.messages > 1 {
            format!(
                " <span class=\"muted\">({} different messages)</span>",
                p.messages
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            h,
            "<tr class=\"problem {}\"><td>{}</td><td>{}</td><td class=\"num count\">{}</td><td>{}</td><td>{}</td><td class=\"text message\">{}{others}</td></tr>",
            kind_class(p.kind),
            p.kind.as_str(),
            escape_html(&short(&p.function, 80)),
            p.count,
            clock(p.first),
            clock(p.last),
            escape_html(&short(&p.message, 500)),
        );
    }
    h.push_str("</tbody>\n</table></div>\n");
    if groups.len() > LIST_MAX {
        let _ = writeln!(
            h,
            "<p class=\"note\">{} smaller groups are not listed.</p>",
            groups.len() - LIST_MAX
        );
    }
    h.push_str("</section>\n");
}

fn cache_chart(h: &mut String, points: &[CachePoint]) {
    h.push_str("<section id=\"cache\">\n<h2>Cache over time</h2>\n");
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        h.push_str(
            "<p class=\"note\">No computation, eviction or clear recorded.</p>\n</section>\n",
        );
        return;
    };
    let pts = downsample(points, CHART_POINTS);
    let max_bytes = pts.iter().map(|p| p.bytes).max().unwrap_or(0).max(1);
    let max_entries = pts.iter().map(|p| p.entries).max().unwrap_or(0).max(1);
    let span = (last.time.unix_micros() - first.time.unix_micros()).max(1) as f64;
    let line = |value: &dyn Fn(&CachePoint) -> f64| {
        let mut out = String::new();
        let mut prev_y: Option<f64> = None;
        for p in &pts {
            let x = (p.time.unix_micros() - first.time.unix_micros()) as f64 / span * 1000.0;
            let y = 195.0 - value(p) * 185.0;
            // Steps: the value holds until the next event.
            if let Some(py) = prev_y {
                let _ = write!(out, "{x:.1},{py:.1} ");
            }
            let _ = write!(out, "{x:.1},{y:.1} ");
            prev_y = Some(y);
        }
        if let Some(py) = prev_y {
            let _ = write!(out, "1000,{py:.1}");
        }
        out
    };
    let bytes = line(&|p| p.bytes as f64 / max_bytes as f64);
    let entries = line(&|p| p.entries as f64 / max_entries as f64);
    let _ = writeln!(
        h,
        "<p class=\"legend\"><span><i class=\"sw\" style=\"background:var(--computed)\"></i>bytes stored (up to {})</span><span><i class=\"sw\" style=\"background:var(--hit)\"></i>entries (up to {max_entries})</span><span>now, by the journal: {} in {} entries</span></p>",
        human_bytes(max_bytes),
        human_bytes(last.bytes),
        last.entries
    );
    let _ = writeln!(
        h,
        "<svg class=\"chart\" viewBox=\"0 0 1000 200\" preserveAspectRatio=\"none\" role=\"img\" aria-label=\"bytes and entries stored over time\"><polyline class=\"bytes\" fill=\"none\" stroke=\"#3b6fd0\" stroke-width=\"2\" vector-effect=\"non-scaling-stroke\" points=\"{bytes}\"/><polyline class=\"entries\" fill=\"none\" stroke=\"#2f9e52\" stroke-width=\"1.5\" stroke-dasharray=\"4 3\" vector-effect=\"non-scaling-stroke\" points=\"{entries}\"/></svg>"
    );
    let _ = writeln!(
        h,
        "<div class=\"chart-axis\"><span>{}</span><span>{} UTC</span></div>\n<p class=\"note\">Replayed from the journal: computations add their entry, evictions, corrupt entries and clears remove theirs.</p>\n</section>",
        clock(first.time),
        clock(last.time)
    );
}

fn removals(h: &mut String, events: &[Event], idx: &[usize]) {
    h.push_str("<section id=\"removals\">\n<h2>Cleared, evicted and corrupt entries</h2>\n");
    if idx.is_empty() {
        h.push_str("<p class=\"note\">None recorded.</p>\n</section>\n");
        return;
    }
    let skipped = idx.len().saturating_sub(LIST_MAX);
    h.push_str("<div class=\"scroll\"><table class=\"removals\">\n<thead><tr><th>TIME (UTC)</th><th>KIND</th><th>FUNCTION</th><th>KEY</th><th>SIZE</th><th>MESSAGE</th></tr></thead>\n<tbody>\n");
    for e in idx
        .iter()
        .skip(skipped)
        .rev()
        .filter_map(|&i| events.get(i))
    {
        let _ = writeln!(
            h,
            "<tr class=\"removal {}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"text\">{}</td></tr>",
            e.kind.as_str(),
            clock(e.time),
            e.kind.as_str(),
            escape_html(&short(&e.function, 80)),
            escape_html(&short(&e.args_digest, 12)),
            if e.output_bytes > 0 { human_bytes(e.output_bytes) } else { String::new() },
            escape_html(&short(e.message.as_deref().unwrap_or(""), 300)),
        );
    }
    h.push_str("</tbody>\n</table></div>\n");
    if skipped > 0 {
        let _ = writeln!(
            h,
            "<p class=\"note\">{skipped} earlier ones are not listed.</p>"
        );
    }
    h.push_str("</section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_labels_read_as_people_count() {
        assert_eq!(relative(0.0), "0 s");
        assert_eq!(relative(0.25), "250 ms");
        assert_eq!(relative(10.0), "10 s");
        assert_eq!(relative(60.0), "1 min");
        assert_eq!(relative(90.0), "1 min 30 s");
        assert_eq!(relative(7200.0), "2 h");
        assert_eq!(relative(5400.0), "1 h 30 min");
        assert_eq!(tick_step(45.0), 10.0);
        assert_eq!(tick_step(0.3), 0.05);
        assert_eq!(tick_step(600.0), 120.0);
        assert_eq!(tick_step(4.0 * 3600.0), 1800.0);
    }
}

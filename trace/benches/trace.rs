//! Benchmark group `trace`: journal appends from several processes, the
//! summary of a 1 GiB array argument, and the HTML report of a journal of
//! 100,000 events (`trace/report_100k_events`, ms: building the page from
//! events already read, as `jobcache report` does after reading the file).
//!
//! `trace/append` re-runs this binary as child appenders (selected by the
//! environment variable `JOBCACHE_TRACE_BENCH_CHILD`) so that several
//! processes append to one journal at once; each child times its own loop.
//! The baseline is the same line written with one raw `write` to an
//! `O_APPEND` file by the same number of processes. The event is built once,
//! as the baseline's line is encoded once; what is timed per event is the
//! journal's append: encoding, the rotation check and the `write`.

use jobcache_bench::{median_of, micros, millis, scratch_dir, Group, Row};
use jobcache_trace::{report, summarize, Event, EventKind, Journal, Timestamp};
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "JOBCACHE_TRACE_BENCH_CHILD";
const PROCESSES: usize = 2;
const EVENTS: usize = 20_000;
/// Measured repetitions of each mode, after one warm-up.
const REPS: usize = 7;

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn event() -> Event {
    Event::new(EventKind::Computed, "square")
        .args(
            "3f".repeat(32),
            "(array(float64, shape=[1000, 1000], [0.0, 1.0, 2.0, 3.0, …]), 3)",
        )
        .duration(Duration::from_millis(1234))
        .output_bytes(8_000_000)
}

/// Runs in a child: appends `EVENTS` events, prints microseconds per event.
fn child(spec: &str) -> Result<(), Box<dyn std::error::Error>> {
    let (mode, path) = spec.split_once(':').ok_or("bad child spec")?;
    let start;
    match mode {
        "journal" => {
            let journal = Journal::open(path)?;
            let event = event();
            start = Instant::now();
            for _ in 0..EVENTS {
                journal.append(&event)?;
            }
        }
        _ => {
            let mut line = serde_json::to_vec(&event())?;
            line.push(b'\n');
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(path)?;
            start = Instant::now();
            for _ in 0..EVENTS {
                let n = file.write(&line)?;
                if n != line.len() {
                    return Err("short write".into());
                }
            }
        }
    }
    let per_event = micros(start.elapsed()) / EVENTS as f64;
    println!("{per_event}");
    Ok(())
}

/// Microseconds per event, the mean over `PROCESSES` concurrent appenders.
fn appenders(mode: &str, path: &Path) -> Result<f64, Box<dyn std::error::Error>> {
    let _ = std::fs::remove_file(path);
    let exe = std::env::current_exe()?;
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            Command::new(&exe)
                .env(CHILD_ENV, format!("{mode}:{}", path.display()))
                .stdout(std::process::Stdio::piped())
                .spawn()
        })
        .collect::<Result<_, _>>()?;
    let mut sum = 0.0;
    for c in children {
        let out = c.wait_with_output()?;
        if !out.status.success() {
            return Err(format!("{mode} appender failed").into());
        }
        sum += String::from_utf8_lossy(&out.stdout).trim().parse::<f64>()?;
    }
    let lines = std::fs::read(path)?.iter().filter(|&&b| b == b'\n').count();
    if lines != PROCESSES * EVENTS {
        return Err(format!("{mode}: {lines} lines, expected {}", PROCESSES * EVENTS).into());
    }
    Ok(sum / PROCESSES as f64)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        return child(&spec);
    }
    let mut group = Group::new("trace");
    let dir = scratch_dir("trace")?;

    // Interleaved, so that the shared machine's drift hits both alike.
    let (mut raw, mut ours) = (Vec::new(), Vec::new());
    for _ in 0..=REPS {
        raw.push(appenders("raw", &dir.join("raw.jsonl"))?);
        ours.push(appenders("journal", &dir.join("journal.jsonl"))?);
    }
    // The first pair is the warm-up.
    let (raw, ours) = (median(&raw[1..]), median(&ours[1..]));
    group.push(Row::ratio_lower_is_better("trace/append", ours, "us", raw));

    // 1 GiB of f64, allocated zeroed: pages are mapped lazily, so only the
    // few values the summary reads are ever touched.
    let big = ndarray::Array2::<f64>::zeros((16_384, 8_192));
    let mut text = String::new();
    let t = median_of(21, || {
        let start = Instant::now();
        text = summarize(std::hint::black_box(&big));
        start.elapsed()
    });
    eprintln!("  summary: {text}");
    group.push(Row::plain("trace/summary_1GiB_array", micros(t), "us"));

    // 100,000 events: 40 runs of 2,500 calls over 8 functions, a few
    // failures, corrupt entries and evictions.
    let events = many_events(100_000);
    let mut len = 0;
    let t = median_of(7, || {
        let start = Instant::now();
        len = report::html(std::hint::black_box(&events)).len();
        start.elapsed()
    });
    let ts = median_of(5, || {
        let start = Instant::now();
        std::hint::black_box(report::summarize_events(&events));
        start.elapsed()
    });
    eprintln!("  of which the figures: {:.1} ms", millis(ts));
    eprintln!(
        "  report of {} events: {} KiB of HTML",
        events.len(),
        len >> 10
    );
    group.push(Row::plain("trace/report_100k_events", millis(t), "ms"));

    group.finish()?;
    Ok(())
}

fn many_events(n: usize) -> Vec<Event> {
    let t0 = 1_780_000_000_000_000i64;
    (0..n)
        .map(|i| {
            let run = i / 2500;
            let f = i % 8;
            let kind = match i % 97 {
                0 => EventKind::Failed,
                1 => EventKind::Corrupt,
                2 => EventKind::Evicted,
                k if k % 3 == 0 => EventKind::Computed,
                _ => EventKind::Hit,
            };
            let mut e = Event::new(kind, format!("pipeline::step{f}"))
                .args(format!("{:064x}", i % 5000), format!("({i}, {f})"))
                .duration(Duration::from_millis(if kind == EventKind::Computed {
                    40
                } else {
                    2
                }))
                .output_bytes(1 << 16)
                .at(Timestamp::from_unix_micros(
                    t0 + run as i64 * 7_200_000_000 + (i % 2500) as i64 * 50_000,
                ));
            e.pid = 1000 + run as u32;
            if kind == EventKind::Failed {
                e = e.message("the function returned an error; nothing was cached");
            }
            e
        })
        .collect()
}

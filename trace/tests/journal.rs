//! The journal across processes: no interleaving or loss, rotation, torn
//! lines, filters and following.
// Test helpers outside #[test] functions panic on failure too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use jobcache_trace::{
    journal_files, read_journal, Event, EventKind, Filter, Follower, Journal, JournalOptions,
    JournalReader, Timestamp, TraceError,
};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const CHILD_ENV: &str = "JOBCACHE_TRACE_TEST_APPENDER";

/// Entry point of the child appenders (does nothing in a normal run).
#[test]
fn child_appender() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let parts: Vec<&str> = spec.split('|').collect();
    let (path, count, max_bytes, go) = (
        parts[0],
        parts[1].parse::<u64>().unwrap(),
        parts[2],
        parts[3],
    );
    let opts = JournalOptions {
        max_bytes: max_bytes.parse().ok(),
        keep: 10_000,
    };
    let journal = Journal::open_with(path, opts).unwrap();
    while !Path::new(go).exists() {
        std::thread::sleep(Duration::from_millis(1));
    }
    for seq in 0..count {
        let e = Event::new(EventKind::Computed, format!("f{}", seq % 3))
            .args(
                format!("{:064x}", seq),
                format!("({seq}, \"padding to make lines longer\")"),
            )
            .duration(Duration::from_micros(seq))
            .output_bytes(seq)
            .message(format!("seq {seq}"));
        journal.append(&e).unwrap();
    }
}

fn run_appenders(path: &Path, processes: usize, count: u64, max_bytes: Option<u64>) {
    let go = path.with_extension("go");
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..processes)
        .map(|_| {
            let spec = format!(
                "{}|{count}|{}|{}",
                path.display(),
                max_bytes.map_or("none".to_string(), |m| m.to_string()),
                go.display()
            );
            Command::new(&exe)
                .args([
                    "child_appender",
                    "--exact",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_ENV, spec)
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    std::fs::write(&go, b"").unwrap();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
}

/// Checks that every process's events are all there, in order, once.
fn check_complete(events: &[Event], processes: usize, count: u64) {
    assert_eq!(events.len() as u64, processes as u64 * count);
    let mut next: HashMap<u32, u64> = HashMap::new();
    for e in events {
        let seq: u64 = e
            .message
            .as_deref()
            .unwrap()
            .strip_prefix("seq ")
            .unwrap()
            .parse()
            .unwrap();
        let expected = next.entry(e.pid).or_insert(0);
        assert_eq!(seq, *expected, "pid {} out of order or lost", e.pid);
        assert_eq!(e.output_bytes, seq);
        assert_eq!(e.function, format!("f{}", seq % 3));
        *expected += 1;
    }
    assert_eq!(next.len(), processes);
    assert!(next.values().all(|&n| n == count));
}

#[test]
fn eight_processes_append_without_interleaving_or_loss() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.jsonl");
    run_appenders(&path, 8, 1000, None);
    // Every line is complete and parses: no interleaving.
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes.last(), Some(&b'\n'));
    let mut lines = 0;
    for item in JournalReader::open(&path).unwrap() {
        item.unwrap();
        lines += 1;
    }
    assert_eq!(lines, 8000);
    check_complete(&read_journal(&path, &Filter::new()).unwrap(), 8, 1000);
}

#[test]
fn rotation_under_concurrent_appends_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.jsonl");
    run_appenders(&path, 4, 500, Some(32 << 10));
    let files = journal_files(&path);
    assert!(files.len() > 5, "expected rotations, got {files:?}");
    assert_eq!(files.last(), Some(&path));
    let events = read_journal(&path, &Filter::new()).unwrap();
    assert_eq!(events.len(), 2000);
    // Within one process, order survives rotation too (rotated files are read
    // oldest first; a process writes to one file at a time).
    check_complete(&events, 4, 500);
}

/// A journal at `path` rotated past `max_bytes`, keeping two old files.
fn rotating_at(path: &Path, max_bytes: u64) -> Journal {
    let options = JournalOptions {
        max_bytes: Some(max_bytes),
        keep: 2,
    };
    Journal::open_with(path, options).unwrap()
}

#[test]
fn rotation_keeps_only_the_newest_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    let journal = rotating_at(&path, 2000);
    for i in 0..100 {
        journal
            .append(&Event::new(EventKind::Hit, "f").output_bytes(i))
            .unwrap();
    }
    let files = journal_files(&path);
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["j.jsonl.2", "j.jsonl.1", "j.jsonl"]);
    for f in &files {
        assert!(std::fs::metadata(f).unwrap().len() <= 2000);
    }
    let events = read_journal(&path, &Filter::new()).unwrap();
    assert_eq!(events.last().unwrap().output_bytes, 99);
    assert!(events
        .windows(2)
        .all(|w| w[0].output_bytes + 1 == w[1].output_bytes));
}

/// A rotation lock held by another process that never lets go (stopped,
/// or hostile) does not hang a writer: after a wait it writes on without
/// rotating, and loses no line.
#[test]
fn a_rotation_lock_held_forever_does_not_hang_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    let journal = rotating_at(&path, 300);
    journal.append(&Event::new(EventKind::Hit, "f")).unwrap();
    let lock_path = dir.path().join("j.jsonl.lock");
    let held = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .unwrap();
    fs2::FileExt::lock_exclusive(&held).unwrap();
    let started = std::time::Instant::now();
    for i in 0..3 {
        journal
            .append(&Event::new(EventKind::Hit, "f").output_bytes(i))
            .unwrap();
    }
    // One wait, not one per append.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(journal_files(&path).len(), 1, "rotated under a held lock");
    assert_eq!(read_journal(&path, &Filter::new()).unwrap().len(), 4);
    drop(held);
}

fn write_lines(path: &Path, lines: &[String], tail: &str) {
    let mut f = std::fs::File::create(path).unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
    f.write_all(tail.as_bytes()).unwrap();
}

fn line(kind: EventKind, function: &str, time: &str) -> String {
    serde_json::to_string(&Event::new(kind, function).at(Timestamp::parse(time).unwrap())).unwrap()
}

#[test]
fn torn_last_line_and_malformed_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.jsonl");
    let good = line(EventKind::Hit, "f", "2024-05-01T10:00:00Z");
    let torn = &good[..good.len() / 2];
    write_lines(
        &path,
        &[good.clone(), "not json".into(), String::new(), good.clone()],
        torn,
    );
    let items: Vec<Result<Event, TraceError>> = JournalReader::open(&path).unwrap().collect();
    assert_eq!(items.len(), 3);
    assert!(items[0].is_ok() && items[2].is_ok());
    match &items[1] {
        Err(TraceError::Malformed { line, .. }) => assert_eq!(*line, 2),
        other => panic!("expected a malformed line, got {other:?}"),
    }
    assert_eq!(read_journal(&path, &Filter::new()).unwrap().len(), 2);

    // A line longer than MAX_LINE is skipped without holding it in memory.
    let long = format!(
        "{{\"pad\":\"{}\"}}",
        "x".repeat(jobcache_trace::MAX_LINE + 10)
    );
    write_lines(&path, &[long, good], "");
    let items: Vec<_> = JournalReader::open(&path).unwrap().collect();
    assert!(items[0].is_err() && items[1].is_ok() && items.len() == 2);
}

#[test]
fn filters_by_function_time_and_kind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.jsonl");
    let lines = vec![
        line(EventKind::Computed, "square", "2024-05-01T09:00:00Z"),
        line(EventKind::Hit, "square", "2024-05-01T10:00:00Z"),
        line(EventKind::Hit, "cube", "2024-05-01T10:30:00Z"),
        line(EventKind::Hit, "square", "2024-05-02T00:00:00Z"),
    ];
    write_lines(&path, &lines, "");
    let t = |s| Timestamp::parse(s).unwrap();
    let count = |f: Filter| read_journal(&path, &f).unwrap().len();
    assert_eq!(count(Filter::new()), 4);
    assert_eq!(count(Filter::new().function("square")), 3);
    assert_eq!(count(Filter::new().since(t("2024-05-01T10:00:00Z"))), 3);
    assert_eq!(count(Filter::new().until(t("2024-05-01T10:00:00Z"))), 1);
    assert_eq!(
        count(
            Filter::new()
                .function("square")
                .since(t("2024-05-01T09:30:00Z"))
                .until(t("2024-05-02"))
        ),
        1
    );
    assert_eq!(count(Filter::new().kind(EventKind::Computed)), 1);
    let reader = JournalReader::open(&path)
        .unwrap()
        .filter(Filter::new().function("cube"));
    assert_eq!(reader.count(), 1);
    assert!(read_journal(dir.path().join("missing.jsonl"), &Filter::new()).is_err());
}

#[test]
fn follower_sees_appends_partial_lines_and_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("journal.jsonl");
    let mut follower = Follower::new(&path, false);
    assert!(follower.poll().unwrap().is_empty()); // no file yet
    let journal = Journal::open_with(
        &path,
        JournalOptions {
            max_bytes: Some(1500),
            keep: 5,
        },
    )
    .unwrap();
    journal.append(&Event::new(EventKind::Hit, "a")).unwrap();
    assert_eq!(follower.poll().unwrap().len(), 1);

    // Half a line is held back until its end arrives.
    let text = line(EventKind::Hit, "b", "2024-05-01T10:00:00Z");
    let (head, tail) = text.split_at(10);
    let mut raw = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    raw.write_all(head.as_bytes()).unwrap();
    assert!(follower.poll().unwrap().is_empty());
    raw.write_all(format!("{tail}\n").as_bytes()).unwrap();
    let got = follower.poll().unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].function, "b");

    // Through several rotations, nothing is missed.
    let mut seen = 0;
    for i in 0..40 {
        journal
            .append(&Event::new(EventKind::Computed, "c").output_bytes(i))
            .unwrap();
        if i % 3 == 0 {
            seen += follower.poll().unwrap().len();
        }
    }
    seen += follower.poll().unwrap().len();
    assert!(journal_files(&path).len() > 2);
    assert_eq!(seen, 40);

    // From the start, with a filter.
    let mut all = Follower::new(&path, true).filter(Filter::new().function("c"));
    assert!(!all.poll().unwrap().is_empty());
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn event() -> impl Strategy<Value = Event> {
        (
            "\\PC{0,12}|[\\n\\r\"\\\\]{1,4}",
            ".{0,30}",
            proptest::option::of("(?s).{0,30}"),
            any::<u64>(),
            0i64..253_402_300_799_999_999,
            0u64..1_000_000_000,
        )
            .prop_map(|(function, summary, message, bytes, micros, dur)| {
                let mut e = Event::new(EventKind::Hit, function)
                    .args("ab".repeat(32), summary)
                    .output_bytes(bytes)
                    .duration(Duration::from_micros(dur))
                    .at(Timestamp::from_unix_micros(micros));
                e.message = message;
                e
            })
    }

    proptest! {

        #[test]
        fn prop_journal_round_trips_one_line_per_event(events in prop::collection::vec(event(), 1..20)) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("j.jsonl");
            let journal = Journal::open(&path).unwrap();
            for e in &events {
                journal.append(e).unwrap();
            }
            let text = std::fs::read(&path).unwrap();
            prop_assert_eq!(text.iter().filter(|&&b| b == b'\n').count(), events.len());
            let back = read_journal(&path, &Filter::new()).unwrap();
            prop_assert_eq!(back.len(), events.len());
            for (a, b) in back.iter().zip(&events) {
                prop_assert_eq!(&a.function, &b.function);
                prop_assert_eq!(&a.args_summary, &b.args_summary);
                prop_assert_eq!(&a.message, &b.message);
                prop_assert_eq!(a.time, b.time);
                prop_assert_eq!(a.output_bytes, b.output_bytes);
                prop_assert_eq!(a.duration, b.duration);
            }
        }

        #[test]
        fn prop_a_torn_file_yields_exactly_its_complete_lines(
            events in prop::collection::vec(event(), 1..10), cut in any::<prop::sample::Index>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("j.jsonl");
            let journal = Journal::open(&path).unwrap();
            for e in &events {
                journal.append(e).unwrap();
            }
            let text = std::fs::read(&path).unwrap();
            let at = cut.index(text.len() + 1);
            std::fs::write(&path, &text[..at]).unwrap();
            let complete = text[..at].iter().filter(|&&b| b == b'\n').count();
            let items: Vec<_> = JournalReader::open(&path).unwrap().collect();
            prop_assert_eq!(items.len(), complete);
            prop_assert!(items.iter().all(Result::is_ok));
        }

        #[test]
        fn prop_filters_keep_exactly_the_matching_events(
            specs in prop::collection::vec((0usize..3, 0i64..100, 0usize..3), 0..30),
            function in proptest::option::of(0usize..3),
            since in proptest::option::of(0i64..100),
            until in proptest::option::of(0i64..100),
        ) {
            let names = ["a", "b", "c"];
            let kinds = [EventKind::Hit, EventKind::Computed, EventKind::Failed];
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("j.jsonl");
            let journal = Journal::open(&path).unwrap();
            let events: Vec<Event> = specs
                .iter()
                .map(|&(f, t, k)| Event::new(kinds[k], names[f]).at(Timestamp::from_unix_micros(t * 1_000_000)))
                .collect();
            for e in &events {
                journal.append(e).unwrap();
            }
            let mut filter = Filter::new();
            filter.function = function.map(|f| names[f].to_string());
            filter.since = since.map(|t| Timestamp::from_unix_micros(t * 1_000_000));
            filter.until = until.map(|t| Timestamp::from_unix_micros(t * 1_000_000));
            let got = read_journal(&path, &filter).unwrap();
            let expected: Vec<&Event> = events
                .iter()
                .filter(|e| {
                    function.is_none_or(|f| e.function == names[f])
                        && since.is_none_or(|t| e.time.unix_micros() >= t * 1_000_000)
                        && until.is_none_or(|t| e.time.unix_micros() < t * 1_000_000)
                })
                .collect();
            prop_assert_eq!(got.len(), expected.len());
            for (a, b) in got.iter().zip(expected) {
                prop_assert_eq!(a.time, b.time);
                prop_assert_eq!(&a.function, &b.function);
            }
        }
    }
}

fn kinds_in(path: &Path) -> Vec<(EventKind, String)> {
    read_journal(path, &Filter::new())
        .unwrap()
        .into_iter()
        .map(|e| (e.kind, e.function))
        .collect()
}

#[test]
fn call_lines_are_held_and_written_on_drop_other_lines_at_once() {
    use jobcache_trace::Tracer;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.jsonl");
    let journal = Journal::open(&path).unwrap();
    journal.record(&Event::new(EventKind::Hit, "h1"));
    journal.record(&Event::new(EventKind::Hit, "h2"));
    journal.record(&Event::new(EventKind::Computed, "miss"));
    assert!(kinds_in(&path).is_empty(), "hits and misses are held");
    // A failure is written at once, after the lines held before it.
    journal.record(&Event::new(EventKind::Failed, "failed"));
    assert_eq!(
        kinds_in(&path),
        [
            (EventKind::Hit, "h1".to_string()),
            (EventKind::Hit, "h2".to_string()),
            (EventKind::Computed, "miss".to_string()),
            (EventKind::Failed, "failed".to_string()),
        ]
    );
    journal.record(&Event::new(EventKind::Hit, "h3"));
    assert_eq!(kinds_in(&path).len(), 4, "h3 is held");
    drop(journal);
    let after = kinds_in(&path);
    assert_eq!(after.len(), 5, "dropping the journal writes h3: {after:?}");
    assert_eq!(after[4], (EventKind::Hit, "h3".to_string()));
}

#[test]
fn held_hit_lines_are_written_by_count_and_by_age_and_by_flush() {
    use jobcache_trace::{Tracer, HIT_BATCH, HIT_DELAY};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.jsonl");
    let journal = Journal::open(&path).unwrap();
    for i in 0..HIT_BATCH {
        journal.record(&Event::new(EventKind::Hit, "f").args(format!("{i:064x}"), ""));
    }
    assert_eq!(kinds_in(&path).len(), HIT_BATCH as usize, "a full batch");
    journal.record(&Event::new(EventKind::Hit, "old"));
    std::thread::sleep(HIT_DELAY + Duration::from_millis(20));
    journal.record(&Event::new(EventKind::Hit, "new"));
    assert_eq!(kinds_in(&path).len(), HIT_BATCH as usize + 2, "by age");
    journal.record(&Event::new(EventKind::Hit, "flushed"));
    journal.flush().unwrap();
    assert_eq!(kinds_in(&path).len(), HIT_BATCH as usize + 3, "by flush");
    // Nothing is written twice.
    drop(journal);
    assert_eq!(kinds_in(&path).len(), HIT_BATCH as usize + 3);
}

/// Repeated hits of one call (same function, same digest) held together
/// are one line counting them, with their durations added; other calls
/// keep lines of their own, in the order first seen.
#[test]
fn repeated_hits_of_a_call_are_one_line_counting_them() {
    use jobcache_trace::Tracer;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.jsonl");
    let journal = Journal::open(&path).unwrap();
    let (a, b) = ("a".repeat(64), "b".repeat(64));
    let hit = |digest: &str| {
        Event::new(EventKind::Hit, "f")
            .args(digest, "(1)")
            .duration(Duration::from_millis(2))
            .compute_duration(Duration::from_millis(50))
    };
    assert!(
        !journal.repeat_hit("f", &a, Duration::from_millis(2), std::time::Instant::now()),
        "nothing held yet: the caller records an event"
    );
    journal.record(&hit(&a));
    journal.record(&hit(&b));
    journal.record(&hit(&a));
    assert!(journal.repeat_hit("f", &a, Duration::from_millis(2), std::time::Instant::now()));
    assert!(
        !journal.repeat_hit("g", &a, Duration::from_millis(2), std::time::Instant::now()),
        "another function's call is another line"
    );
    journal.flush().unwrap();
    let events = read_journal(&path, &Filter::new()).unwrap();
    let lines: Vec<(&str, u64, Duration)> = events
        .iter()
        .map(|e| (&e.args_digest[..1], e.calls, e.duration))
        .collect();
    assert_eq!(
        lines,
        [
            ("a", 3, Duration::from_millis(6)),
            ("b", 1, Duration::from_millis(2))
        ]
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.matches("\"calls\":3").count(), 1, "{text}");
    assert!(!text.contains("\"calls\":1"), "1 is not written: {text}");
    // Totals count every call a line stands for.
    let totals = &jobcache_trace::report::totals(&events)[0];
    assert_eq!((totals.calls, totals.hits), (4, 4));
    assert_eq!(totals.time_saved, Duration::from_millis(4 * 50 - 8));
}

/// A killed writer loses at most its held lines: the file holds whole
/// lines only, and every line it was told to write at once.
#[test]
fn a_killed_writer_loses_only_held_lines() {
    if let Ok(path) = std::env::var("JOBCACHE_TRACE_TEST_KILLED") {
        use jobcache_trace::Tracer;
        let journal = Journal::open(&path).unwrap();
        journal.record(&Event::new(EventKind::Failed, "failed"));
        journal.record(&Event::new(EventKind::Computed, "held"));
        journal.record(&Event::new(EventKind::Hit, "held"));
        // Killed before the journal is dropped.
        std::process::abort();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.jsonl");
    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_killed_writer_loses_only_held_lines",
            "--nocapture",
        ])
        .env("JOBCACHE_TRACE_TEST_KILLED", &path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success());
    assert_eq!(kinds_in(&path), [(EventKind::Failed, "failed".to_string())]);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.ends_with('\n'), "whole lines only");
}

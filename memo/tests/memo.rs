//! Behaviour of cached calls in one process.

use jobcache_memo::{memoize, Ignored, Memory};
use jobcache_store::{FsStore, Location};
use jobcache_trace::{read_journal, EventKind, Filter};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn temp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn quiet(dir: &tempfile::TempDir) -> Memory {
    Memory::builder(dir.path()).verbose(0).build().unwrap()
}

static SQUARES: AtomicUsize = AtomicUsize::new(0);
fn square(x: u64) -> u64 {
    SQUARES.fetch_add(1, Ordering::SeqCst);
    x * x
}

#[test]
fn computes_once_then_loads() {
    let dir = temp();
    let mem = quiet(&dir);
    let cached = mem.cache(square);
    let before = SQUARES.load(Ordering::SeqCst);
    assert_eq!(cached.call(7), 49);
    assert_eq!(cached.call(7), 49);
    assert_eq!(SQUARES.load(Ordering::SeqCst) - before, 1);
    assert_eq!(cached.call(8), 64);
    assert_eq!(SQUARES.load(Ordering::SeqCst) - before, 2);
    assert!(cached.check_call_in_cache(&7));
    assert!(!cached.check_call_in_cache(&9));
    assert_eq!(cached.name(), "memo::square");
    // A new Memory on the same directory sees the same results.
    let again = quiet(&dir).cache(square);
    assert_eq!(again.call(7), 49);
    assert_eq!(SQUARES.load(Ordering::SeqCst) - before, 2);
}

static JOINS: AtomicUsize = AtomicUsize::new(0);
fn join(words: &[String], sep: &str, verbose: Ignored<bool>) -> String {
    JOINS.fetch_add(1, Ordering::SeqCst);
    if *verbose {
        eprintln!("joining {} words", words.len());
    }
    words.join(sep)
}

#[test]
fn borrowed_tuple_arguments_and_ignored_ones() {
    let dir = temp();
    let cached = quiet(&dir).cache(join);
    let words = ["a".to_string(), "b".to_string()];
    let before = JOINS.load(Ordering::SeqCst);
    assert_eq!(cached.call((&words[..], "-", Ignored(true))), "a-b");
    assert_eq!(cached.call((&words[..], "-", Ignored(false))), "a-b");
    assert_eq!(
        JOINS.load(Ordering::SeqCst) - before,
        1,
        "ignored args share an entry"
    );
    assert_eq!(cached.call((&words[..], "+", Ignored(false))), "a+b");
    assert_eq!(JOINS.load(Ordering::SeqCst) - before, 2);
}

static EDITS: AtomicUsize = AtomicUsize::new(0);

/// The same function before and after an edit of its body.
mod before_edit {
    use super::*;
    memoize! {
        pub fn step(x: u64) -> u64 {
            EDITS.fetch_add(1, Ordering::SeqCst);
            x + 1
        }
    }
}
mod after_edit {
    use super::*;
    memoize! {
        pub fn step(x: u64) -> u64 {
            EDITS.fetch_add(1, Ordering::SeqCst);
            x + 2
        }
    }
}

#[test]
fn an_edited_body_is_recomputed() {
    let dir = temp();
    let mem = quiet(&dir);
    // One name in the cache, as a function keeps its path across an edit.
    let old = mem.cache_named("app::step", before_edit::step);
    let new = mem.cache_named("app::step", after_edit::step);
    let before = EDITS.load(Ordering::SeqCst);
    assert_eq!(old.call(1), 2);
    assert_eq!(old.call(1), 2);
    assert_eq!(EDITS.load(Ordering::SeqCst) - before, 1);
    assert_eq!(new.call(1), 3, "the old body's result is never returned");
    assert_eq!(EDITS.load(Ordering::SeqCst) - before, 2);
    assert_eq!(new.call(1), 3);
    assert_eq!(EDITS.load(Ordering::SeqCst) - before, 2);
    // An explicit version works the same way.
    assert_eq!(new.clone().version("2").call(1), 3);
    assert_eq!(EDITS.load(Ordering::SeqCst) - before, 3);
}

memoize! {
    fn cube(x: i64) -> i64 { x * x * x }
}

#[test]
fn memoize_definitions_cache_like_functions() {
    let dir = temp();
    assert_eq!(cube(2), 8, "still an ordinary function");
    let cube = quiet(&dir).cache(cube);
    let cached = &cube;
    assert_eq!(cached.call(3), 27);
    assert_eq!(cached.call(3), 27);
    assert_eq!(cached.name(), "memo::cube");
    assert!(cached.check_call_in_cache(&3));
}

#[test]
fn a_disabled_memory_runs_every_time() {
    let mem = Memory::disabled();
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    let f = mem.cache_named("count", move |x: u8| {
        counter.fetch_add(1, Ordering::SeqCst);
        x
    });
    f.call(1);
    f.call(1);
    assert_eq!(count.load(Ordering::SeqCst), 2);
    assert!(!f.check_call_in_cache(&1));
    assert_eq!(f.call_and_shelve(5).load().unwrap(), 5);
}

#[test]
#[should_panic(expected = "cache_named")]
fn closures_need_a_name() {
    let dir = temp();
    quiet(&dir).cache(|x: u8| x).call(1);
}

#[test]
fn closures_with_distinct_names_do_not_share_entries() {
    let dir = temp();
    let mem = quiet(&dir);
    let double = mem.cache_named("double", |x: u32| x * 2);
    let triple = mem.cache_named("triple", |x: u32| x * 3);
    assert_eq!(double.call(5), 10);
    assert_eq!(triple.call(5), 15);
    assert_eq!(double.call(5), 10);
}

#[test]
fn expired_results_are_recomputed() {
    let dir = temp();
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    let f = quiet(&dir)
        .cache_named("expiring", move |x: u8| {
            counter.fetch_add(1, Ordering::SeqCst);
            x
        })
        .expires_after(Duration::from_millis(200));
    f.call(1);
    f.call(1);
    assert_eq!(count.load(Ordering::SeqCst), 1);
    std::thread::sleep(Duration::from_millis(300));
    f.call(1);
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

#[test]
fn a_validation_callback_can_reject_results() {
    let dir = temp();
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    let f = quiet(&dir)
        .cache_named("validated", move |x: u8| {
            counter.fetch_add(1, Ordering::SeqCst);
            x
        })
        .validate(|meta| meta.compute_duration > Duration::from_secs(3600));
    f.call(1);
    f.call(1);
    assert_eq!(count.load(Ordering::SeqCst), 2, "every result rejected");
}

#[test]
fn try_call_caches_ok_values_only() {
    let dir = temp();
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    let f = quiet(&dir).cache_named("parse", move |s: &str| {
        counter.fetch_add(1, Ordering::SeqCst);
        s.parse::<i32>().map_err(|e| e.to_string())
    });
    assert!(f.try_call("x").is_err());
    assert!(f.try_call("x").is_err());
    assert_eq!(count.load(Ordering::SeqCst), 2, "errors are not cached");
    assert_eq!(f.try_call("42"), Ok(42));
    assert_eq!(f.try_call("42"), Ok(42));
    assert_eq!(count.load(Ordering::SeqCst), 3);
}

#[test]
fn a_panicking_function_caches_nothing_and_the_panic_propagates() {
    let dir = temp();
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    let f = quiet(&dir).cache_named("explodes", move |x: u8| {
        counter.fetch_add(1, Ordering::SeqCst);
        if x == 0 {
            panic!("boom");
        }
        x
    });
    for _ in 0..2 {
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f.call(0)));
        assert!(caught.is_err());
    }
    assert_eq!(count.load(Ordering::SeqCst), 2);
    let events = read_journal(dir.path().join("journal.jsonl"), &Filter::new()).unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.kind == EventKind::Failed)
            .count(),
        2
    );
}

#[test]
fn a_corrupt_entry_is_recomputed_with_a_warning() {
    let dir = temp();
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    let f = quiet(&dir).cache_named("fragile", move |x: u64| {
        counter.fetch_add(1, Ordering::SeqCst);
        vec![x; 100]
    });
    let key = f.key(&3).unwrap().to_string();
    f.call(3);
    let store = FsStore::open(dir.path()).unwrap();
    // A small result is a record of a pack (store/LAYOUT.md, "Packs"): the
    // last byte of the meta file it holds (its inline payload's last byte)
    // is the one before the record's 8-byte checksum.
    let Some(Location::Packed { pack, offset, len }) = store.locate("fragile", &key).unwrap()
    else {
        panic!("a small result is packed");
    };
    let mut bytes = std::fs::read(&pack).unwrap();
    bytes[(offset + len - 9) as usize] ^= 0xff;
    std::fs::write(&pack, bytes).unwrap();
    assert_eq!(f.call(3), vec![3; 100]);
    assert_eq!(count.load(Ordering::SeqCst), 2);
    assert_eq!(f.call(3), vec![3; 100]);
    assert_eq!(
        count.load(Ordering::SeqCst),
        2,
        "stored again after the corrupt one"
    );
    let events = read_journal(dir.path().join("journal.jsonl"), &Filter::new()).unwrap();
    assert!(events.iter().any(|e| e.kind == EventKind::Corrupt));
}

#[test]
fn the_journal_has_one_event_per_call() {
    let dir = temp();
    let f = quiet(&dir).cache_named("journaled", |x: u8| x);
    f.call(1);
    f.call(1);
    f.call(2);
    f.memory().flush_journal();
    let events = read_journal(
        dir.path().join("journal.jsonl"),
        &Filter::new().function("journaled"),
    )
    .unwrap();
    let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [EventKind::Computed, EventKind::Hit, EventKind::Computed]
    );
    assert!(events.iter().all(|e| e.args_digest.len() == 64));
}

/// Hit and miss lines are held and written together: by a flush, by the
/// drop of the last clone of the memory, or before any other event.
#[test]
fn call_lines_reach_the_journal_on_flush_and_on_drop() {
    let dir = temp();
    let journal = dir.path().join("journal.jsonl");
    let kinds = || -> Vec<EventKind> {
        read_journal(&journal, &Filter::new().function("held"))
            .unwrap()
            .iter()
            .map(|e| e.kind)
            .collect()
    };
    let f = quiet(&dir).cache_named("held", |x: u8| x);
    f.call(1);
    f.call(1);
    f.call(1);
    assert_eq!(kinds(), [], "held");
    f.call(2);
    f.memory().flush_journal();
    let events = read_journal(&journal, &Filter::new().function("held")).unwrap();
    let kinds_and_calls: Vec<(EventKind, u64)> = events.iter().map(|e| (e.kind, e.calls)).collect();
    assert_eq!(
        kinds_and_calls,
        [
            (EventKind::Computed, 1),
            (EventKind::Hit, 2),
            (EventKind::Computed, 1)
        ],
        "in the order recorded, one line for the repeated hit"
    );
    assert!(
        events[1].time <= events[2].time,
        "dated by the last hit it counts"
    );
    f.call(2);
    let other = f.clone();
    drop(f);
    assert_eq!(kinds().len(), 3, "a clone still holds the memory");
    other.memory().flush_journal();
    assert_eq!(kinds().len(), 4, "flush_journal writes the held hit");
    other.call(2);
    drop(other);
    assert_eq!(kinds().len(), 5, "dropping the memory writes the held hit");
}

#[test]
fn shelved_results_load_later_and_clear() {
    let dir = temp();
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    let f = quiet(&dir).cache_named("shelf", move |n: usize| {
        counter.fetch_add(1, Ordering::SeqCst);
        vec![1.5_f64; n]
    });
    let handle = f.call_and_shelve(10);
    let again = f.call_and_shelve(10);
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert_eq!(handle.key(), again.key());
    assert_eq!(again.load().unwrap(), vec![1.5; 10]);
    // It round-trips through serde, as it would to another process.
    let json = serde_json::to_string(&handle).unwrap();
    let back: jobcache_memo::Shelved<Vec<f64>> = serde_json::from_str(&json).unwrap();
    assert_eq!(back.load().unwrap(), vec![1.5; 10]);
    assert!(back.clear().unwrap() > 0);
    assert!(matches!(
        handle.load(),
        Err(jobcache_memo::Error::NotInCache { .. })
    ));
}

#[test]
fn clear_and_reduce_size() {
    let dir = temp();
    let mem = quiet(&dir);
    let f = mem.cache_named("many", |x: u32| vec![x; 1000]);
    for i in 0..5 {
        f.call(i);
    }
    assert!(f.clear().unwrap() > 0);
    assert!(!f.check_call_in_cache(&0));
    f.call(1);
    assert!(mem.clear().unwrap() > 0);
    assert!(!f.check_call_in_cache(&1));
}

#[test]
fn threads_racing_on_one_call_compute_it_once() {
    let dir = temp();
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    let f = Arc::new(quiet(&dir).cache_named("slow", move |x: u64| {
        counter.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(200));
        x * 2
    }));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let f = f.clone();
            std::thread::spawn(move || f.call(21))
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 42);
    }
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[test]
fn memory_is_clone_send_sync() {
    fn shareable<T: Clone + Send + Sync + 'static>() {}
    shareable::<Memory>();
    shareable::<jobcache_memo::Shelved<Vec<f64>>>();
}

#[test]
fn a_custom_store_and_a_size_policy_from_the_builder() {
    let dir = temp();
    // A store that protects nothing as recent, so the policy acts at once.
    let store = FsStore::create(dir.path())
        .unwrap()
        .with_recent_protection(Duration::ZERO)
        .with_access_granularity(Duration::ZERO);
    let mem = Memory::builder(dir.path())
        .verbose(0)
        .store(Arc::new(store))
        .reduce_size(None, Some(2), None)
        .build()
        .unwrap();
    let f = mem.cache_named("bounded", |x: u32| vec![x; 10]);
    for i in 0..5 {
        f.call(i);
        std::thread::sleep(Duration::from_millis(20));
    }
    let kept: Vec<bool> = (0..5).map(|i| f.check_call_in_cache(&i)).collect();
    assert_eq!(
        kept,
        [false, false, false, true, true],
        "least recently used go first"
    );
    let reduced = mem.reduce_size(None, Some(1), None).unwrap();
    assert_eq!(reduced.removed.len(), 1);
    assert!(f.check_call_in_cache(&4));
}

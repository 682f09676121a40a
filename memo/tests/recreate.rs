//! A cache directory deleted under a live `Memory` (a user cleaning a temp
//! folder) is created again: later results are cached and journaled, as
//! joblib recreates its folder.

use jobcache_memo::{Memory, JOURNAL_FILE};
use jobcache_trace::{read_journal, EventKind, Filter};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn a_deleted_cache_directory_is_created_again() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("cache");
    let mem = Memory::builder(&dir).verbose(0).build().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let name = "recreate::double";
    let f = mem.cache_named(name, move |x: u32| {
        counter.fetch_add(1, Ordering::SeqCst);
        x * 2
    });
    assert_eq!(f.call(21), 42);
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    std::fs::remove_dir_all(&dir).unwrap();
    // The journal looks at its file at least once a second.
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(f.call(21), 42, "a miss: the result is gone");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(f.call(21), 42);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "a hit: the new result was cached in the recreated directory"
    );

    // The last hit's line is held until the memory is dropped or flushed.
    mem.flush_journal();
    let events = read_journal(dir.join(JOURNAL_FILE), &Filter::new().function(name)).unwrap();
    let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
    assert!(
        kinds.ends_with(&[EventKind::Computed, EventKind::Hit]),
        "the journal was created again with the later events: {kinds:?}"
    );
}

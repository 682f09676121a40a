//! Eviction acts at once: an entry is protected by liveness (a held lock,
//! an open reader), not by its age (issue 20).

use jobcache_memo::Memory;

fn double(x: u64) -> u64 {
    x * 2
}

#[test]
fn reduce_size_right_after_filling_removes_entries() {
    let dir = tempfile::tempdir().unwrap();
    let mem = Memory::builder(dir.path()).verbose(0).build().unwrap();
    let f = mem.cache(double);
    for i in 0..6 {
        assert_eq!(f.call(i), i * 2);
    }
    let r = mem.reduce_size(None, Some(2), None).unwrap();
    assert_eq!(r.removed.len(), 4, "{r:?}");
    assert_eq!(r.skipped, 0);
    assert_eq!(r.kept_items, 2);
}

#[test]
fn a_size_policy_holds_after_every_call() {
    let dir = tempfile::tempdir().unwrap();
    let mem = Memory::builder(dir.path())
        .verbose(0)
        .reduce_size(None, Some(3), None)
        .build()
        .unwrap();
    let f = mem.cache(double);
    for i in 0..10 {
        f.call(i);
        let left = mem.reduce_size(None, None, None).unwrap().kept_items;
        assert!(left <= 3, "{left} entries after call {i}");
    }
}

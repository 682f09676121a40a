//! Eviction order and counts over 10⁵ entries (issue 20).
//!
//! The entries are made by hand in the layout — a directory each holding a
//! hard link to one published meta file (an 8-byte inline payload) — so
//! that building them costs no `fsync` per entry; the index is then built
//! from them as `verify` does. The access order comes from the index.

use jobcache_store::StoreExt;
use jobcache_store::{encode_namespace, FsStore, Limits, NewEntry, Store};
use std::path::PathBuf;

const NS: &str = "scale::small";
const N: u64 = 100_000;
const TOUCHED: u64 = 1_000;
const EVICT: u64 = 2_000;

fn key(i: u64) -> String {
    format!("{i:064x}")
}

/// A RAM-backed directory where there is one (freeing 10⁵ directories on a
/// disk mounted with `discard` is slow), else the default.
fn scratch() -> tempfile::TempDir {
    let shm = PathBuf::from("/dev/shm");
    if shm.is_dir() {
        if let Ok(t) = tempfile::tempdir_in(&shm) {
            return t;
        }
    }
    tempfile::tempdir().unwrap()
}

#[test]
fn eviction_order_and_counts_over_1e5_entries() {
    let dir = scratch();
    let root = dir.path().join("cache");
    let s = FsStore::create(&root).unwrap();
    s.publish_bytes(NS, &key(0), &NewEntry::default(), &0u64.to_le_bytes())
        .unwrap();
    let ns_dir = root.join("ns").join(encode_namespace(NS).unwrap());
    let meta = ns_dir.join(key(0)).join("meta");
    let meta_len = std::fs::metadata(&meta).unwrap().len();
    for i in 1..N {
        let d = ns_dir.join(key(i));
        std::fs::create_dir(&d).unwrap();
        std::fs::hard_link(&meta, d.join("meta")).unwrap();
    }
    s.rebuild_index().unwrap();
    assert_eq!(s.indexed_totals().unwrap(), (N as usize, N * meta_len));

    // Use the first TOUCHED keys (in key order, so equal times tie the
    // same way); every other entry keeps its creation as last access.
    for i in 0..TOUCHED {
        s.touch(NS, &key(i)).unwrap();
    }
    let limits = Limits {
        max_items: Some((N - EVICT) as usize),
        ..Limits::default()
    };
    let r = s.apply_limits(&limits).unwrap();
    let removed: Vec<String> = r.removed.iter().map(|e| e.key.clone()).collect();
    let expected: Vec<String> = (TOUCHED..TOUCHED + EVICT).map(key).collect();
    assert!(
        removed == expected,
        "eviction left least-recently-used order"
    );
    assert_eq!(r.skipped, 0);
    assert_eq!(r.kept_items, (N - EVICT) as usize);
    assert_eq!(r.freed_bytes, EVICT * meta_len);
    assert_eq!(
        s.indexed_totals().unwrap(),
        ((N - EVICT) as usize, (N - EVICT) * meta_len)
    );
    // Within the limits, a policy check removes nothing.
    assert!(s.apply_limits(&limits).unwrap().removed.is_empty());
    // The index agrees with the tree.
    let listed = s.entries(NS).unwrap();
    assert_eq!(listed.len(), (N - EVICT) as usize);
    assert!((0..TOUCHED).all(|i| ns_dir.join(key(i)).is_dir()));
}

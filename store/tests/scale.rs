//! Eviction order and counts over 10⁵ entries (issue 20), as directories
//! and as pack records (the default home of a small entry).
//!
//! The entries are made by hand in the layout — a directory each holding a
//! hard link to one published meta file (an 8-byte inline payload), or pack
//! records copied from one published record — so that building them costs
//! no publish per entry; the index is then built from them as `verify`
//! does. The access order comes from the index.

use jobcache_store::StoreExt;
use jobcache_store::{encode_namespace, FsStore, Limits, NewEntry, Store};
use std::path::PathBuf;

mod support;

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

/// Brings the N entries of `entry_len` bytes each down to N - EVICT by an
/// item limit: exactly `expected` go, in that order, and the counts and the
/// index's totals follow; within the limits, a second policy check removes
/// nothing.
fn evict_and_check(s: &FsStore, expected: &[String], entry_len: u64) {
    let limits = Limits {
        max_items: Some((N - EVICT) as usize),
        ..Limits::default()
    };
    let r = s.apply_limits(&limits).unwrap();
    let removed: Vec<String> = r.removed.iter().map(|e| e.key.clone()).collect();
    assert!(
        removed == expected,
        "eviction left least-recently-used order"
    );
    assert_eq!(r.skipped, 0);
    assert_eq!(r.kept_items, (N - EVICT) as usize);
    assert_eq!(r.freed_bytes, EVICT * entry_len);
    assert_eq!(
        s.indexed_totals().unwrap(),
        ((N - EVICT) as usize, (N - EVICT) * entry_len)
    );
    assert!(s.apply_limits(&limits).unwrap().removed.is_empty());
}

#[test]
fn eviction_order_and_counts_over_1e5_entries() {
    let dir = scratch();
    let root = dir.path().join("cache");
    // Entry directories, made by hand from the first one.
    let s = FsStore::create(&root).unwrap().with_packs(false);
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
    let expected: Vec<String> = (TOUCHED..TOUCHED + EVICT).map(key).collect();
    evict_and_check(&s, &expected, meta_len);
    // The index agrees with the tree.
    let listed = s.entries(NS).unwrap();
    assert_eq!(listed.len(), (N - EVICT) as usize);
    assert!((0..TOUCHED).all(|i| ns_dir.join(key(i)).is_dir()));
}

/// The same over 10⁵ packed entries (the default home of a small entry):
/// the pack records are made by hand from one published record (its meta
/// file bytes do not hold the key), spread over the 256 packs by key as
/// digests are, and the index is built from them as `verify` does.
#[test]
fn eviction_order_and_counts_over_1e5_packed_entries() {
    let dir = scratch();
    let root = dir.path().join("cache");
    let s = FsStore::create(&root).unwrap();
    // Keys whose first byte varies, in the same order as their numbers.
    let spread = |i: u64| format!("{:02x}{:062x}", i % 256, i);
    let first = spread(0);
    s.publish_bytes(NS, &first, &NewEntry::default(), &0u64.to_le_bytes())
        .unwrap();
    let (pack, range) = support::record(&s, NS, &first);
    let len = range.end - range.start;
    let record = std::fs::read(&pack).unwrap()[range.start as usize..range.end as usize].to_vec();
    // A record's head ends with the key's 32 bytes; its tail is its
    // checksum.
    let head = support::RECORD_HEAD as usize;
    let mut packs: Vec<Vec<u8>> = vec![Vec::new(); 256];
    for i in 1..N {
        let k = spread(i);
        let mut r = record.clone();
        for (j, byte) in r[head - 32..head].iter_mut().enumerate() {
            *byte = u8::from_str_radix(&k[2 * j..2 * j + 2], 16).unwrap();
        }
        let n = r.len() - support::RECORD_TAIL as usize;
        let sum = jobcache_store::checksum::xxh3_64(&r[..n]);
        r[n..].copy_from_slice(&sum.to_le_bytes());
        packs[(i % 256) as usize].extend_from_slice(&r);
    }
    for (b, bytes) in packs.iter().enumerate() {
        let path = root.join("packs").join(format!("{b:02x}.pack"));
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        std::io::Write::write_all(&mut f, bytes).unwrap();
    }
    // A fresh handle (another process) reads the packs whole.
    let s = FsStore::open(&root).unwrap();
    s.rebuild_index().unwrap();
    assert_eq!(s.indexed_totals().unwrap(), (N as usize, N * len));

    // Use the first TOUCHED keys by hits, as a program does: a packed
    // entry's use is an `access` record of the index.
    let s = s.with_access_granularity(std::time::Duration::ZERO);
    for i in 0..TOUCHED {
        assert!(s.get(NS, &spread(i), false).unwrap().found().is_some());
    }
    // Every record was made at one time: the untouched ones tie, and go in
    // key order (the index's order for equal times).
    let mut untouched: Vec<String> = (TOUCHED..N).map(spread).collect();
    untouched.sort();
    let expected = &untouched[..EVICT as usize];
    evict_and_check(&s, expected, len);
    // The index agrees with the packs, in this process and a fresh one.
    assert_eq!(s.entries(NS).unwrap().len(), (N - EVICT) as usize);
    let fresh = FsStore::open(&root).unwrap();
    assert_eq!(fresh.entries(NS).unwrap().len(), (N - EVICT) as usize);
    assert!((0..TOUCHED).all(|i| fresh.locate(NS, &spread(i)).unwrap().is_some()));
    assert!(expected
        .iter()
        .all(|k| fresh.locate(NS, k).unwrap().is_none()));
}

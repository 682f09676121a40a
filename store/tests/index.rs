//! The index under `index/`: running totals kept by every handle (as by
//! every process), rebuilt when missing or damaged, and eviction from it
//! (issue 20).

use jobcache_store::StoreExt;
use jobcache_store::{FsStore, Limits, NewEntry, Store};
use std::fs;
use std::io::Write;
use std::path::Path;

mod support;

const NS: &str = "index::f";

fn key(i: u64) -> String {
    format!("{i:064x}")
}

fn store(dir: &Path) -> FsStore {
    FsStore::create(dir.join("cache")).unwrap()
}

fn fill(s: &FsStore, range: std::ops::Range<u64>) {
    for i in range {
        s.publish_bytes(NS, &key(i), &NewEntry::default(), &i.to_le_bytes())
            .unwrap();
    }
}

fn listed_totals(s: &FsStore) -> (usize, u64) {
    let all = s.all_entries().unwrap();
    (all.len(), all.iter().map(|e| e.stored_bytes).sum())
}

#[test]
fn totals_follow_publishes_and_removals_of_every_handle() {
    let dir = tempfile::tempdir().unwrap();
    let a = store(dir.path());
    let b = FsStore::open(dir.path().join("cache")).unwrap();
    fill(&a, 0..10);
    assert_eq!(a.indexed_totals().unwrap(), listed_totals(&a));
    fill(&b, 10..20);
    b.remove(NS, &key(3)).unwrap();
    a.remove(NS, &key(15)).unwrap();
    // Published twice: counted once.
    fill(&b, 0..2);
    assert_eq!(a.indexed_totals().unwrap(), listed_totals(&a));
    assert_eq!(b.indexed_totals().unwrap().0, 18);
    a.remove_namespace(NS).unwrap();
    assert_eq!(b.indexed_totals().unwrap(), (0, 0));
}

#[test]
fn a_missing_or_torn_index_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    fill(&s, 0..8);
    let ledger = dir.path().join("cache/index/ledger");
    // A torn append (a writer killed mid-record) is cut and ignored.
    fs::OpenOptions::new()
        .append(true)
        .open(&ledger)
        .unwrap()
        .write_all(&[0x4a; 33])
        .unwrap();
    let other = FsStore::open(dir.path().join("cache")).unwrap();
    assert_eq!(other.indexed_totals().unwrap(), listed_totals(&s));
    fill(&other, 8..10);
    assert_eq!(s.indexed_totals().unwrap().0, 10);
    // Deleted: built again from the entries.
    fs::remove_file(&ledger).unwrap();
    let fresh = FsStore::open(dir.path().join("cache")).unwrap();
    assert_eq!(fresh.indexed_totals().unwrap(), listed_totals(&s));
    // Damaged in the middle: built again too.
    let mut bytes = fs::read(&ledger).unwrap();
    bytes[200] ^= 0xff;
    fs::write(&ledger, &bytes).unwrap();
    let fresh = FsStore::open(dir.path().join("cache")).unwrap();
    assert_eq!(fresh.indexed_totals().unwrap(), listed_totals(&s));
}

#[test]
fn entries_removed_behind_the_index_are_forgotten_and_verify_rebuilds() {
    let dir = tempfile::tempdir().unwrap();
    // Entry directories, removed by hand.
    let s = store(dir.path()).with_packs(false);
    fill(&s, 0..6);
    let ns_dir = dir.path().join("cache/ns/index.f");
    fs::remove_dir_all(ns_dir.join(key(0))).unwrap();
    fs::remove_dir_all(ns_dir.join(key(1))).unwrap();
    assert_eq!(s.indexed_totals().unwrap().0, 6);
    let r = s
        .apply_limits(&Limits {
            max_items: Some(5),
            ..Limits::default()
        })
        .unwrap();
    // The first gone one is forgotten, which brings the count within the
    // limit: no live entry had to go.
    assert!(r.removed.is_empty(), "{r:?}");
    assert_eq!(r.kept_items, 5);
    fs::remove_dir_all(ns_dir.join(key(2))).unwrap();
    s.verify_all(&mut |_, _| {}).unwrap();
    assert_eq!(s.indexed_totals().unwrap(), listed_totals(&s));
}

#[test]
fn a_policy_holds_after_every_publish() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let limits = Limits {
        max_items: Some(5),
        max_bytes: Some(10_000),
        ..Limits::default()
    };
    for i in 0..40 {
        fill(&s, i..i + 1);
        let r = s.apply_limits(&limits).unwrap();
        assert!(r.kept_items <= 5, "{r:?}");
    }
    let left: Vec<String> = s.entries(NS).unwrap().into_iter().map(|e| e.key).collect();
    assert_eq!(left, (35..40).map(key).collect::<Vec<_>>());
    // No lock file is left behind by eviction.
    let locks = fs::read_dir(dir.path().join("cache/ns/index.f"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".lock")
        })
        .count();
    assert_eq!(locks, 0);
}

#[test]
fn a_version_1_store_is_upgraded_and_indexed() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    fill(&s, 0..5);
    let root = dir.path().join("cache");
    // What version 1 left: the same entries, no index.
    fs::remove_dir_all(root.join("index")).unwrap();
    fs::write(
        root.join("jobcache-store-layout"),
        "jobcache-store layout 1\n",
    )
    .unwrap();
    let up = FsStore::open(&root).unwrap();
    assert_eq!(
        fs::read_to_string(root.join("jobcache-store-layout")).unwrap(),
        format!("jobcache-store layout {}\n", jobcache_store::LAYOUT_VERSION)
    );
    assert_eq!(up.indexed_totals().unwrap(), listed_totals(&up));
    assert_eq!(
        up.get_bytes(NS, &key(3)).unwrap().unwrap(),
        3u64.to_le_bytes()
    );
}

#[test]
fn verify_quick_checks_metadata_and_lengths_without_reading_payloads() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    fill(&s, 0..4);
    s.publish_bytes(NS, &key(9), &NewEntry::default(), &vec![3u8; 40_000])
        .unwrap();
    let ns_dir = dir.path().join("cache/ns/index.f");
    // A damaged meta file (in its pack record), and a payload file cut
    // short.
    let (meta, range) = support::meta_bytes(&s, NS, &key(1));
    support::flip(&meta, range.start + 20, 1);
    let pack_before = fs::read(&meta).unwrap();
    let payload = ns_dir.join(key(9)).join("payload");
    fs::OpenOptions::new()
        .write(true)
        .open(&payload)
        .unwrap()
        .set_len(100)
        .unwrap();
    let mut seen = 0;
    let r = s.verify_quick(&mut |_, _| seen += 1).unwrap();
    assert_eq!((r.ok, r.corrupt, seen), (3, 2, 5));
    // It reports; it does not repair.
    assert_eq!(fs::read(&meta).unwrap(), pack_before);
    assert!(payload.exists());
    assert_eq!(s.indexed_totals().unwrap().0, 5);
}

#[test]
fn threads_publishing_and_trimming_at_once_keep_the_totals_exact() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let limits = Limits {
        max_items: Some(30),
        ..Limits::default()
    };
    std::thread::scope(|scope| {
        for t in 0..4u64 {
            let s = &s;
            scope.spawn(move || {
                for i in 0..25u64 {
                    fill(s, t * 1000 + i..t * 1000 + i + 1);
                    s.apply_limits(&limits).unwrap();
                    if i % 5 == 0 {
                        s.get(NS, &key(t * 1000 + i), false).unwrap();
                    }
                }
            });
        }
    });
    let other = FsStore::open(dir.path().join("cache")).unwrap();
    assert_eq!(other.indexed_totals().unwrap(), listed_totals(&s));
    assert!(listed_totals(&s).0 <= 30);
}

#[test]
fn eviction_ends_while_others_keep_publishing() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    fill(&s, 0..20);
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut i = 1000;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                fill(&s, i..i + 1);
                i += 1;
            }
        });
        // Everything must go, but only what was there when it began: the
        // walk does not chase what the publisher keeps adding.
        let r = s
            .reduce_size(
                &Limits {
                    max_items: Some(0),
                    ..Limits::default()
                },
                false,
            )
            .unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(r.removed.len() >= 20, "{}", r.removed.len());
    });
}

#[test]
fn eviction_in_batches_removes_exactly_the_oldest_and_makes_no_lock_files() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    fill(&s, 0..300);
    // A lock held by a live computation keeps its entry.
    let held = s.lock(NS, &key(5), jobcache_store::Wait::NoWait).unwrap();
    assert!(held.is_acquired());
    let r = s
        .reduce_size(
            &Limits {
                max_items: Some(100),
                ..Limits::default()
            },
            false,
        )
        .unwrap();
    assert_eq!(r.removed.len(), 200);
    assert_eq!(r.skipped_entries.len(), 1);
    assert_eq!(s.indexed_totals().unwrap(), listed_totals(&s));
    assert_eq!(listed_totals(&s).0, 100);
    let mut left: Vec<String> = s.entries(NS).unwrap().into_iter().map(|e| e.key).collect();
    left.sort();
    let mut expected: Vec<String> = (201..300).map(key).collect();
    expected.push(key(5));
    expected.sort();
    assert_eq!(left, expected);
    drop(held);
    let ns_dir = dir
        .path()
        .join("cache/ns")
        .join(jobcache_store::encode_namespace(NS).unwrap());
    let locks: Vec<_> = fs::read_dir(&ns_dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".lock"))
        .map(|e| e.file_name())
        .collect();
    // Only the lock file the test made is left; eviction made none.
    assert!(locks.len() <= 1, "{locks:?}");
    assert!(fs::read_dir(dir.path().join("cache/tmp"))
        .unwrap()
        .next()
        .is_none());
}

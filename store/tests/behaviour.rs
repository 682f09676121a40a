//! Behaviour of `FsStore` in one process: round trips, listing, removal,
//! eviction, corruption detection and refusal of bad roots.

#![allow(clippy::unwrap_used, clippy::expect_used)]
use jobcache_store::StoreExt;
use jobcache_store::{
    EntryInfo, FsStore, Limits, LockState, Lookup, NewEntry, SkipReason, Store, StoreError,
    Verdict, Wait, INLINE_MAX,
};
use std::fs;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

mod support;

const NS: &str = "my_crate::stats::square";

fn key(i: u64) -> String {
    format!("{i:064x}")
}

fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn store(dir: &Path) -> FsStore {
    FsStore::create(dir.join("cache")).unwrap()
}

fn found(store: &FsStore, ns: &str, key: &str, verify: bool) -> jobcache_store::Entry {
    match store.get(ns, key, verify).unwrap() {
        Lookup::Found(e) => *e,
        other => panic!("expected an entry, got {other:?}"),
    }
}

#[test]
fn round_trips_of_every_size_class() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let sizes = [
        0,
        1,
        100,
        INLINE_MAX,
        INLINE_MAX + 1,
        1 << 20,
        (1 << 20) + 7,
        3 << 20,
        9 << 20,
    ];
    for (i, &len) in sizes.iter().enumerate() {
        let k = key(i as u64);
        let data = payload(len, i as u8);
        let meta = NewEntry::new(Duration::from_millis(i as u64))
            .field("function", NS)
            .field("stdout", "y".repeat(6000));
        let p = s.publish_bytes(NS, &k, &meta, &data).unwrap();
        assert!(!p.already_present);
        assert_eq!(p.meta.payload_len, len as u64);
        for verify in [true, false] {
            let mut e = found(&s, NS, &k, verify);
            assert_eq!(*e.meta().fields, meta.fields);
            assert_eq!(e.meta().compute_duration, Duration::from_millis(i as u64));
            assert_eq!(e.len(), len as u64);
            assert_eq!(e.local_path().is_some(), len > INLINE_MAX, "len {len}");
            assert_eq!(e.read_to_vec().unwrap(), data);
            // Reading again (rewind) and through `Read` gives the same bytes.
            let mut via_read = Vec::new();
            let mut e = found(&s, NS, &k, verify);
            e.read_to_end(&mut via_read).unwrap();
            assert_eq!(via_read, data);
            if let Some(path) = e.local_path() {
                assert_eq!(fs::read(path).unwrap(), data);
            }
        }
    }
    // A second publish of the same key keeps the first entry.
    let again = s
        .publish_bytes(NS, &key(2), &NewEntry::default(), b"other")
        .unwrap();
    assert!(again.already_present);
    assert_eq!(s.get_bytes(NS, &key(2)).unwrap().unwrap(), payload(100, 2));
    // Nothing is left in tmp/.
    assert_eq!(fs::read_dir(s.root().join("tmp")).unwrap().count(), 0);
}

#[test]
fn bad_keys_and_namespaces_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    for bad in ["", "../x", &"A".repeat(64), &"a".repeat(65)] {
        let e = s.get(NS, bad, true).unwrap_err();
        assert!(matches!(e, StoreError::InvalidKey { .. }), "{e}");
    }
    assert!(matches!(
        s.get("", &key(1), true).unwrap_err(),
        StoreError::InvalidNamespace { .. }
    ));
    // Hostile namespaces stay inside ns/.
    for ns in ["..", "../../etc", "/abs", "a\0b", &"x".repeat(3000)] {
        s.publish_bytes(ns, &key(1), &NewEntry::default(), b"v")
            .unwrap();
        assert_eq!(s.get_bytes(ns, &key(1)).unwrap().unwrap(), b"v");
    }
    let mut names = s.namespaces().unwrap();
    names.sort();
    assert_eq!(names.len(), 5);
    assert!(names.contains(&"x".repeat(3000)));
    for e in fs::read_dir(s.root().join("ns")).unwrap() {
        assert!(e.unwrap().file_type().unwrap().is_dir());
    }
}

#[test]
fn open_refuses_what_is_not_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain");
    fs::create_dir(&plain).unwrap();
    fs::write(plain.join("notes.txt"), "mine").unwrap();
    let e = FsStore::open(&plain).unwrap_err();
    assert!(matches!(e, StoreError::NotAStore { .. }), "{e}");
    let e = FsStore::create(&plain).unwrap_err();
    assert!(e.to_string().contains("notes.txt"), "{e}");

    let file = dir.path().join("file");
    fs::write(&file, "x").unwrap();
    let e = FsStore::create(&file).unwrap_err();
    assert!(e.to_string().contains(file.to_str().unwrap()), "{e}");
    assert!(FsStore::open(&file).is_err());

    let s = store(dir.path());
    assert!(s.root().join("CACHEDIR.TAG").exists());
    FsStore::open(s.root()).unwrap();
    FsStore::create(s.root()).unwrap();
    fs::write(
        s.root().join("jobcache-store-layout"),
        "jobcache-store layout 99\n",
    )
    .unwrap();
    let e = FsStore::open(s.root()).unwrap_err();
    assert!(matches!(e, StoreError::UnsupportedVersion { .. }), "{e}");
}

/// Flips a byte or truncates: every damage must come out as `Corrupt`. A
/// small entry lives in a pack record (`LAYOUT.md`, "Packs"): its damage is
/// checked by [`damaged_records_are_never_a_value`].
#[test]
fn byte_flips_and_truncations_are_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path()).with_packs(false);
    let cases: &[(usize, &str)] = &[
        (100, "meta"),
        (5000, "meta"),
        (50_000, "meta"),
        (50_000, "payload"),
        (3 << 20, "payload"),
        (9 << 20, "payload"),
    ];
    let mut n = 0;
    for &(len, file) in cases {
        for damage in DAMAGES {
            n += 1;
            let k = key(n);
            let data = payload(len, n as u8);
            s.publish_bytes(NS, &k, &NewEntry::default().field("f", "v"), &data)
                .unwrap();
            let path = s.entry_dir(NS, &k).unwrap().join(file);
            let mut bytes = fs::read(&path).unwrap();
            let at = match damage {
                "flip-first" => 0,
                "flip-last" => bytes.len() - 1,
                _ => bytes.len() / 2,
            };
            match damage {
                "truncate" => bytes.truncate(at),
                "extend" => bytes.push(0),
                _ => bytes[at] ^= 0x01,
            }
            fs::write(&path, &bytes).unwrap();
            // Length damage is seen even without payload verification; a
            // flipped payload byte needs verification (at get, or on read).
            let outcome = s.get(NS, &k, true).unwrap();
            match outcome {
                Lookup::Corrupt(c) => assert!(!c.reason.is_empty()),
                Lookup::Found(mut e) => {
                    assert!(
                        len > (1 << 20) && file == "payload",
                        "{len} {file} {damage}"
                    );
                    let err = e.read_to_vec().unwrap_err();
                    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
                }
                Lookup::Missing => panic!("{len} {file} {damage}: missing"),
            }
            // Quarantined: now a plain miss, and publishing works again.
            assert!(matches!(s.get(NS, &k, true).unwrap(), Lookup::Missing));
            s.publish_bytes(NS, &k, &NewEntry::default(), &data)
                .unwrap();
            assert_eq!(s.get_bytes(NS, &k).unwrap().unwrap(), data);
        }
    }
}

const DAMAGES: [&str; 5] = [
    "flip-first",
    "flip-last",
    "flip-middle",
    "truncate",
    "extend",
];

/// A process that kept a packed record (it was hit) and then sees the pack
/// damaged on disk: its own verification walk reads the record again and
/// finds the damage, wherever it is, and drops the record.
#[test]
fn a_verify_walk_sees_damage_to_records_this_process_kept() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let meta = NewEntry::default().field("f", "v");
    let (k1, k2) = (key(901), key(902));
    for k in [&k1, &k2] {
        s.publish_bytes(NS, k, &meta, &payload(100, 7)).unwrap();
        // Two hits: the record is read, checked and kept.
        for _ in 0..2 {
            assert_eq!(s.get_bytes(NS, k).unwrap().unwrap(), payload(100, 7));
        }
    }
    // The record's own checksum (its last byte), and a payload byte.
    let (pack1, rec1) = support::record(&s, NS, &k1);
    support::flip(&pack1, rec1.end - 1, 0x01);
    let (pack2, rec2) = support::record(&s, NS, &k2);
    support::flip(&pack2, rec2.end - 20, 0x01);
    for k in [&k1, &k2] {
        assert!(
            !matches!(s.check(NS, k).unwrap(), Verdict::Ok),
            "check missed the damage of {k}"
        );
    }
    let report = s.verify_all(&mut |_, _| {}).unwrap();
    assert_eq!(report.corrupt, 2, "{report:?}");
    for k in [&k1, &k2] {
        assert!(matches!(s.get(NS, k, true).unwrap(), Lookup::Missing));
    }
}

/// The same damage done to small entries' pack records: the record's first,
/// last and middle byte flipped, the pack cut in the middle of the record
/// (a torn append), a byte inserted in it. Whoever looks — the process that
/// published it, whose map already points at the record, or another one,
/// which scans the pack — never gets a wrong value, and the entry can be
/// stored again.
#[test]
fn damaged_records_are_never_a_value() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let mut n = 0;
    for len in [0, 100, 5000, INLINE_MAX] {
        for damage in DAMAGES {
            n += 1;
            let k = key(n);
            let data = payload(len, n as u8);
            s.publish_bytes(NS, &k, &NewEntry::default().field("f", "v"), &data)
                .unwrap();
            let (pack, rec) = support::record(&s, NS, &k);
            assert_eq!(
                rec.end,
                fs::metadata(&pack).unwrap().len(),
                "the last record"
            );
            let middle = (rec.start + rec.end) / 2;
            match damage {
                "flip-first" => support::flip(&pack, rec.start, 0x01),
                "flip-last" => support::flip(&pack, rec.end - 1, 0x01),
                "flip-middle" => support::flip(&pack, middle, 0x01),
                "truncate" => support::splice(&pack, middle..rec.end, &[]),
                _ => support::splice(&pack, middle..middle, &[0]),
            }
            let what = format!("{len} bytes, {damage}");
            // Another process scans the pack: the record's checksum fails.
            let other = FsStore::open(s.root()).unwrap();
            assert!(
                !matches!(other.get(NS, &k, true).unwrap(), Lookup::Found(_)),
                "{what}: another process found a damaged record"
            );
            // This one reads the record its map points at: the meta file's
            // checksums are checked; only the record's own checksum (the
            // last 8 bytes, vouching for nothing a hit returns) is not.
            match support::value_of(&s, NS, &k) {
                None => {
                    assert!(
                        matches!(s.get(NS, &k, true).unwrap(), Lookup::Missing),
                        "{what}: not a miss after the damage was found"
                    );
                }
                Some(v) => {
                    assert_eq!(v, data, "{what}: a wrong value");
                    assert_eq!(damage, "flip-last", "{what}: damage unseen");
                }
            }
            assert!(!s.pack_damage().unwrap().is_empty(), "{what}");
            // Stored again by the other process, found by both.
            other
                .publish_bytes(NS, &k, &NewEntry::default(), &data)
                .unwrap();
            assert_eq!(
                support::value_of(&other, NS, &k).as_deref(),
                Some(&data[..]),
                "{what}"
            );
            assert_eq!(
                support::value_of(&s, NS, &k).as_deref(),
                Some(&data[..]),
                "{what}"
            );
            // `verify` (a process of its own) drops the damaged bytes.
            FsStore::open(s.root())
                .unwrap()
                .verify_all(&mut |_, _| {})
                .unwrap();
            assert!(s.pack_damage().unwrap().is_empty(), "{what}");
            assert_eq!(
                support::value_of(&s, NS, &k).as_deref(),
                Some(&data[..]),
                "{what}"
            );
        }
    }
}

#[test]
fn an_entry_directory_without_meta_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    s.publish_bytes(NS, &key(1), &NewEntry::default(), &payload(50_000, 1))
        .unwrap();
    fs::remove_file(s.entry_dir(NS, &key(1)).unwrap().join("meta")).unwrap();
    assert!(matches!(
        s.get(NS, &key(1), false).unwrap(),
        Lookup::Corrupt(_)
    ));
    assert!(matches!(
        s.get(NS, &key(1), false).unwrap(),
        Lookup::Missing
    ));
    let p = s
        .publish_bytes(NS, &key(1), &NewEntry::default(), b"again")
        .unwrap();
    assert!(!p.already_present);
    assert_eq!(s.get_bytes(NS, &key(1)).unwrap().unwrap(), b"again");
}

#[test]
fn a_streamed_read_reports_a_bad_checksum_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let data = payload(9 << 20, 9);
    s.publish_bytes(NS, &key(1), &NewEntry::default(), &data)
        .unwrap();
    let path = s.entry_dir(NS, &key(1)).unwrap().join("payload");
    let mut bytes = fs::read(&path).unwrap();
    bytes[12345] ^= 0x80;
    fs::write(&path, &bytes).unwrap();
    // Without verification the damage goes unseen (documented: for mmap).
    let mut e = found(&s, NS, &key(1), false);
    assert_eq!(e.read_to_vec().unwrap(), bytes);
    let mut e = found(&s, NS, &key(1), true);
    let err = e.read_to_end(&mut Vec::new()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert!(matches!(s.get(NS, &key(1), true).unwrap(), Lookup::Missing));
}

#[test]
fn symlinks_are_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    // Entry directories (a pack in the way is in `packs.rs`).
    let s = store(dir.path()).with_packs(false);
    let outside = dir.path().join("outside");
    fs::create_dir(&outside).unwrap();
    s.publish_bytes(NS, &key(1), &NewEntry::default(), b"secret")
        .unwrap();
    // Move a real entry outside and point a symlink at it.
    let entry = s.entry_dir(NS, &key(1)).unwrap();
    fs::rename(&entry, outside.join("e")).unwrap();
    std::os::unix::fs::symlink(outside.join("e"), &entry).unwrap();
    assert!(matches!(
        s.get(NS, &key(1), true).unwrap(),
        Lookup::Corrupt(_)
    ));
    assert!(
        outside.join("e").join("meta").exists(),
        "the target is untouched"
    );
    assert!(matches!(s.get(NS, &key(1), true).unwrap(), Lookup::Missing));
    // A symlinked namespace directory is never followed: a lookup does not
    // find what it points at, and a publish replaces the symlink (a name in
    // the store) by a real directory, leaving the target untouched.
    let ns_dir = s.entry_dir("other", &key(1)).unwrap();
    let ns_dir = ns_dir.parent().unwrap();
    std::os::unix::fs::symlink(&outside, ns_dir).unwrap();
    assert!(!matches!(
        s.get("other", "e".repeat(64).as_str(), true).unwrap(),
        Lookup::Found(_)
    ));
    std::os::unix::fs::symlink(&outside, ns_dir).unwrap();
    s.publish_bytes("other", &key(1), &NewEntry::default(), b"v")
        .unwrap();
    assert!(fs::symlink_metadata(ns_dir).unwrap().is_dir());
    assert_eq!(s.get_bytes("other", &key(1)).unwrap().unwrap(), b"v");
    let outside_names: Vec<_> = fs::read_dir(&outside)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(outside_names, ["e"]);
}

#[test]
fn listing_removal_and_verification() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    for ns in ["a::f", "b::g"] {
        for i in 0..3 {
            s.publish_bytes(
                ns,
                &key(i),
                &NewEntry::default().field("i", i.to_string()),
                &payload(30_000, i as u8),
            )
            .unwrap();
        }
    }
    assert_eq!(s.namespaces().unwrap(), ["a::f", "b::g"]);
    let listed = s.entries("a::f").unwrap();
    assert_eq!(
        listed.iter().map(|e| e.key.clone()).collect::<Vec<_>>(),
        [key(0), key(1), key(2)]
    );
    let info = &listed[1];
    assert_eq!(info.meta.as_ref().unwrap().fields["i"], "1");
    assert!(info.stored_bytes > 30_000);

    // Damage one entry: verify_all reports it through the callback.
    let p = s.entry_dir("b::g", &key(2)).unwrap().join("payload");
    let mut bytes = fs::read(&p).unwrap();
    bytes[0] ^= 1;
    fs::write(&p, bytes).unwrap();
    let mut seen: Vec<(EntryInfo, Verdict)> = Vec::new();
    let report = s
        .verify_all(&mut |i, v| seen.push((i.clone(), v.clone())))
        .unwrap();
    assert_eq!((report.ok, report.corrupt), (5, 1));
    assert_eq!(seen.len(), 6);
    assert!(seen.iter().any(|(i, v)| i.key == key(2)
        && i.namespace == "b::g"
        && matches!(v, Verdict::Corrupt(_))));

    let freed = s.remove("a::f", &key(0)).unwrap();
    assert!(freed > 30_000);
    assert_eq!(s.remove("a::f", &key(0)).unwrap(), 0);
    assert!(s.remove_namespace("b::g").unwrap() > 60_000);
    assert_eq!(s.namespaces().unwrap(), ["a::f"]);
    assert!(s.clear().unwrap() > 60_000);
    assert!(s.namespaces().unwrap().is_empty());
    // Only the quarantined entry is left, until it ages out.
    let left: Vec<String> = fs::read_dir(s.root().join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(left.len(), 1);
    assert!(left[0].starts_with("corrupt-"), "{left:?}");
    assert_eq!(s.clean_temp(Duration::ZERO).unwrap(), 1);
}

#[test]
fn reduce_size_evicts_least_recently_used_first() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path()).with_access_granularity(Duration::ZERO);
    for i in 0..6 {
        s.publish_bytes(NS, &key(i), &NewEntry::default(), &payload(20_000, i as u8))
            .unwrap();
    }
    // Use the entries in the order 3, 1, 5, 0, 2, 4 (4 is the most recent).
    for i in [3, 1, 5, 0, 2, 4] {
        std::thread::sleep(Duration::from_millis(5));
        s.get(NS, &key(i), false).unwrap();
    }
    let limits = Limits {
        max_items: Some(4),
        ..Limits::default()
    };
    let dry = s.reduce_size(&limits, true).unwrap();
    assert!(dry.dry_run);
    let dry_keys: Vec<String> = dry.removed.iter().map(|e| e.key.clone()).collect();
    assert_eq!(dry_keys, [key(3), key(1)]);
    assert_eq!(s.entries(NS).unwrap().len(), 6, "a dry run removes nothing");

    // An entry being computed (locked) is skipped.
    let guard = s.lock(NS, &key(3), Wait::NoWait).unwrap();
    assert_eq!(guard.state(), LockState::Acquired);
    let r = s.reduce_size(&limits, false).unwrap();
    drop(guard);
    let removed: Vec<String> = r.removed.iter().map(|e| e.key.clone()).collect();
    assert_eq!(removed, [key(1), key(5)]);
    assert_eq!(r.skipped, 1);
    assert!(r.freed_bytes >= 40_000);
    assert_eq!(r.kept_items, 4);

    let by_bytes = Limits {
        max_bytes: Some(45_000),
        ..Limits::default()
    };
    let r = s.reduce_size(&by_bytes, false).unwrap();
    let removed: Vec<String> = r.removed.iter().map(|e| e.key.clone()).collect();
    assert_eq!(removed, [key(3), key(0)]);
    assert!(r.kept_bytes <= 45_000);

    std::thread::sleep(Duration::from_millis(20));
    s.get(NS, &key(4), false).unwrap();
    let by_age = Limits {
        max_age: Some(Duration::from_millis(10)),
        ..Limits::default()
    };
    let r = s.reduce_size(&by_age, false).unwrap();
    assert_eq!(r.removed.len(), 1);
    assert_eq!(r.removed[0].key, key(2));
    assert_eq!(s.entries(NS).unwrap().len(), 1);
}

#[test]
fn eviction_acts_at_once_on_entries_not_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    for i in 0..5 {
        s.publish_bytes(NS, &key(i), &NewEntry::default(), b"v")
            .unwrap();
    }
    let two = Limits {
        max_items: Some(2),
        ..Limits::default()
    };
    let r = s.reduce_size(&two, false).unwrap();
    assert_eq!(r.removed.len(), 3, "{r:?}");
    assert_eq!(r.skipped, 0);
    assert_eq!(r.kept_items, 2);
    assert_eq!(s.entries(NS).unwrap().len(), 2);
}

#[test]
fn eviction_skips_entries_locked_or_open_for_reading_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path()).with_access_granularity(Duration::ZERO);
    // Two large entries (payload files of their own) and a small one.
    for i in 0..3 {
        let len = if i < 2 { 40_000 } else { 10 };
        s.publish_bytes(NS, &key(i), &NewEntry::default(), &payload(len, i as u8))
            .unwrap();
    }
    let reader = s.get(NS, &key(0), false).unwrap().found().unwrap();
    assert!(reader.file().is_some());
    let guard = s.lock(NS, &key(1), Wait::NoWait).unwrap();
    assert!(guard.is_acquired());
    let none = Limits {
        max_items: Some(0),
        ..Limits::default()
    };
    let r = s.reduce_size(&none, false).unwrap();
    assert_eq!(r.removed.len(), 1);
    assert_eq!(r.removed[0].key, key(2));
    assert_eq!(r.skipped, 2);
    let mut why: Vec<(String, SkipReason)> = r
        .skipped_entries
        .iter()
        .map(|k| (k.entry.key.clone(), k.reason))
        .collect();
    why.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        why,
        [(key(0), SkipReason::Reading), (key(1), SkipReason::Locked)]
    );
    drop(reader);
    drop(guard);
    let r = s.reduce_size(&none, false).unwrap();
    assert_eq!(r.removed.len(), 2);
    assert_eq!(r.skipped, 0);
}

#[test]
fn access_is_recorded_coarsely() {
    let dir = tempfile::tempdir().unwrap();
    // The access time of an entry directory's meta file (packed entries
    // record theirs in the index: `packs.rs`).
    let s = store(dir.path())
        .with_packs(false)
        .with_access_granularity(Duration::from_secs(3600));
    s.publish_bytes(NS, &key(1), &NewEntry::default(), b"v")
        .unwrap();
    let meta_path = s.entry_dir(NS, &key(1)).unwrap().join("meta");
    // Age the access time by an hour and a bit.
    let old = std::time::SystemTime::now() - Duration::from_secs(4000);
    let f = fs::File::options().write(true).open(&meta_path).unwrap();
    f.set_times(fs::FileTimes::new().set_accessed(old)).unwrap();
    drop(f);
    let before = fs::metadata(&meta_path).unwrap().accessed().unwrap();
    s.get(NS, &key(1), false).unwrap();
    let after = fs::metadata(&meta_path).unwrap().accessed().unwrap();
    assert!(after > before, "a stale access time is refreshed");
    s.get(NS, &key(1), false).unwrap();
    assert_eq!(
        fs::metadata(&meta_path).unwrap().accessed().unwrap(),
        after,
        "a fresh one is left alone"
    );
}

#[test]
fn a_failing_writer_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    for len in [10, 100_000] {
        let err = s
            .publish(
                NS,
                &key(1),
                &NewEntry::default(),
                &mut |w: &mut dyn Write| {
                    w.write_all(&payload(len, 0))?;
                    Err(std::io::Error::other("the value could not be encoded"))
                },
            )
            .unwrap_err();
        assert!(matches!(err, StoreError::Writer { .. }), "{err}");
        assert!(matches!(s.get(NS, &key(1), true).unwrap(), Lookup::Missing));
        assert_eq!(fs::read_dir(s.root().join("tmp")).unwrap().count(), 0);
    }
    let huge = NewEntry::default().field("stdout", "z".repeat(jobcache_store::FIELDS_MAX));
    assert!(matches!(
        s.publish_bytes(NS, &key(1), &huge, b"v").unwrap_err(),
        StoreError::MetadataTooLarge { .. }
    ));
}

#[test]
fn threads_compute_each_key_once() {
    let dir = tempfile::tempdir().unwrap();
    let s: Arc<dyn Store> = Arc::new(store(dir.path()));
    let computed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let s = Arc::clone(&s);
            let computed = Arc::clone(&computed);
            std::thread::spawn(move || {
                for i in 0..6u64 {
                    // Keys 0..3 are shared, the others distinct per thread.
                    let k = if i < 3 { key(i) } else { key(100 + t * 10 + i) };
                    let expected = payload(1000 * (i as usize + 1), i as u8);
                    let got = s
                        .get_or_compute(NS, &k, Wait::Forever, &mut || {
                            computed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(20));
                            Ok((expected.clone(), NewEntry::default()))
                        })
                        .unwrap();
                    assert_eq!(got.bytes, expected);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(
        computed.load(std::sync::atomic::Ordering::SeqCst),
        3 + 8 * 3
    );
}

#[test]
fn a_lock_wait_timeout_computes_anyway() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let _held = s.lock(NS, &key(1), Wait::NoWait).unwrap();
    let got = s
        .get_or_compute(
            NS,
            &key(1),
            Wait::Timeout(Duration::from_millis(30)),
            &mut || Ok((b"anyway".to_vec(), NewEntry::default())),
        )
        .unwrap();
    assert!(got.computed);
    assert_eq!(s.get_bytes(NS, &key(1)).unwrap().unwrap(), b"anyway");
}

#[test]
fn lock_wait_policies() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let held = s.lock(NS, &key(1), Wait::NoWait).unwrap();
    assert!(held.is_acquired());
    // Another open file description in the same process is excluded too.
    assert_eq!(
        s.lock(NS, &key(1), Wait::NoWait).unwrap().state(),
        LockState::TimedOut
    );
    let t = s
        .lock(NS, &key(1), Wait::Timeout(Duration::from_millis(50)))
        .unwrap();
    assert_eq!(t.state(), LockState::TimedOut);
    assert!(t.waited() >= Duration::from_millis(50));
    assert!(s.lock(NS, &key(2), Wait::NoWait).unwrap().is_acquired());
    drop(held);
    assert!(s.lock(NS, &key(1), Wait::NoWait).unwrap().is_acquired());
    // Released locks leave no lock file; those of holders that died (made
    // here by hand) are cleaned when free.
    assert_eq!(s.clean_locks().unwrap(), 0);
    let ns_dir = s.entry_dir(NS, &key(3)).unwrap();
    let ns_dir = ns_dir.parent().unwrap();
    // Compute locks are bytes of `index/locks` where the kernel allows: the
    // namespace directory is made by the first publish, not by a lock.
    fs::create_dir_all(ns_dir).unwrap();
    for i in [3, 4] {
        fs::write(ns_dir.join(format!("{}.lock", key(i))), b"").unwrap();
    }
    assert_eq!(s.clean_locks().unwrap(), 2);
}

#[test]
fn check_reports_without_repairing() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    // One inline payload and one in a file of its own, each damaged.
    for (i, len) in [(0, 100), (1, INLINE_MAX + 4096)] {
        s.publish_bytes(NS, &key(i), &NewEntry::default(), &payload(len, 7))
            .unwrap();
    }
    s.publish_bytes(NS, &key(2), &NewEntry::default(), &payload(50, 1))
        .unwrap();
    // The inline one is a pack record: its meta file's last byte is
    // flipped where it lies.
    let (pack, meta) = support::meta_bytes(&s, NS, &key(0));
    support::flip(&pack, meta.end - 1, 0x40);
    let p = s.entry_dir(NS, &key(1)).unwrap().join("payload");
    let last = fs::metadata(&p).unwrap().len() - 1;
    support::flip(&p, last, 0x40);
    for _ in 0..2 {
        assert!(matches!(s.check(NS, &key(0)).unwrap(), Verdict::Corrupt(_)));
        assert!(matches!(s.check(NS, &key(1)).unwrap(), Verdict::Corrupt(_)));
        assert_eq!(s.check(NS, &key(2)).unwrap(), Verdict::Ok);
        assert_eq!(s.check(NS, &key(3)).unwrap(), Verdict::Missing);
    }
    // Nothing was moved: both damaged entries are still listed.
    assert_eq!(s.entries(NS).unwrap().len(), 3);
    // A repairing lookup quarantines them.
    let report = s.verify_all(&mut |_, _| {}).unwrap();
    assert_eq!((report.ok, report.corrupt), (1, 2));
    assert_eq!(s.entries(NS).unwrap().len(), 1);
}

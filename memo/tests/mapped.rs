//! Mapped hits are checked: damage anywhere in a stored array's files is
//! detected, logged and journaled, and the result computed again; with
//! `mmap_unchecked` the array data is not read (and its damage not seen).
//! One logger per process, so this file installs its own.

use jobcache_memo::{ArrayOutput, Cached, Memory};
use jobcache_trace::{read_journal, EventKind, Filter};
use ndarray::Array1;
use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

mod support;
use support::{capture_logs, take_about};

const LEN: usize = 8192; // 64 KiB of f64: a payload file of its own

fn values(seed: u64) -> Array1<f64> {
    (0..LEN)
        .map(|i| (i as f64 * 0.731 + seed as f64).sin() + 0.123_456_789)
        .collect()
}

/// A deterministic generator (splitmix64), so every run damages the same
/// positions.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The one entry's directory under `root`.
fn entry_dir(root: &Path) -> PathBuf {
    let ns = fs::read_dir(root.join("ns"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    fs::read_dir(ns.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .unwrap()
}

/// Which part of the stored files a case damages.
#[derive(Debug, Clone, Copy)]
enum Part {
    /// The array's data in the payload file.
    Data,
    /// The payload file's 64-byte header.
    Header,
    /// The payload file after the data: padding, body, table, trailer.
    Body,
    /// The store's meta file.
    Meta,
}

/// Flips a byte or zero-fills a range inside `part`, always changing the
/// file; returns what it did.
fn damage(root: &Path, part: Part, zero_fill: bool, rng: &mut Rng) -> String {
    let dir = entry_dir(root);
    let payload = dir.join("payload");
    let info = &jobcache_persist::inspect(&payload).unwrap().arrays[0];
    let (path, range) = match part {
        Part::Data => (payload, info.offset..info.offset + info.byte_len),
        Part::Header => (payload, 0..64),
        Part::Body => {
            let len = fs::metadata(&payload).unwrap().len();
            (payload, info.offset + info.byte_len..len)
        }
        Part::Meta => {
            let meta = dir.join("meta");
            let len = fs::metadata(&meta).unwrap().len();
            (meta, 0..len)
        }
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    loop {
        let at = range.start + rng.below(range.end - range.start);
        let len = if zero_fill {
            (1 + rng.below(64)).min(range.end - at)
        } else {
            1
        };
        let mut bytes = vec![0u8; len as usize];
        file.read_exact_at(&mut bytes, at).unwrap();
        let new: Vec<u8> = if zero_fill {
            vec![0; bytes.len()]
        } else {
            vec![bytes[0] ^ (1 + rng.below(255)) as u8]
        };
        if new != bytes {
            file.write_all_at(&new, at).unwrap();
            let what = if zero_fill { "zero-filled" } else { "flipped" };
            return format!("{what} {len} byte(s) at {at} of {part:?}");
        }
    }
}

/// `values` under `name`, counting its computations.
fn counted(mem: &Memory, name: &str) -> (Cached<impl Fn(u64) -> Array1<f64>>, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let f = mem.cache_named(name, move |seed: u64| {
        counter.fetch_add(1, Ordering::SeqCst);
        values(seed)
    });
    (f, calls)
}

#[test]
fn mapped_hits_detect_damage_anywhere_log_it_and_recompute() {
    capture_logs(log::LevelFilter::Warn);
    let dir = tempfile::tempdir().unwrap();
    let name = "mapped::checked_producer";
    let mem = Memory::builder(dir.path())
        .verbose(0)
        .mmap(true)
        .build()
        .unwrap();
    let (f, calls) = counted(&mem, name);
    let expected = values(7);
    let first = f.call_mapped(7);
    assert!(first.is_mapped());
    assert_eq!(first.view(), expected.view());
    drop(first);
    let hit = f.call_mapped(7);
    assert!(hit.is_mapped());
    assert_eq!(hit.view(), expected.view());
    drop(hit);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(take_about(name).is_empty());

    let parts = [Part::Data, Part::Header, Part::Body, Part::Meta];
    let mut rng = Rng(0x005E_ED13);
    let cases = 100;
    for case in 0..cases {
        let part = parts[case / 2 % parts.len()];
        let what = damage(dir.path(), part, case % 2 == 1, &mut rng);
        let out: ArrayOutput<f64, _> = f.call_mapped(7);
        assert_eq!(out.view(), expected.view(), "case {case}: {what}");
        assert!(
            out.is_mapped(),
            "case {case}: the recomputed result is mapped"
        );
        drop(out);
        let lines = take_about(name);
        assert!(
            lines.len() == 1 && lines[0].contains("corrupt cache entry for"),
            "case {case}: {what}: {lines:?}"
        );
        assert_eq!(
            calls.load(Ordering::SeqCst),
            case + 2,
            "case {case}: {what}: computed again"
        );
        // The damaged entry was removed: the next call is a clean hit.
        assert_eq!(f.call_mapped(7).view(), expected.view());
        assert_eq!(calls.load(Ordering::SeqCst), case + 2);
    }
    let corrupt = read_journal(
        dir.path().join("journal.jsonl"),
        &Filter::new().function(name).kind(EventKind::Corrupt),
    )
    .unwrap();
    assert_eq!(
        corrupt.len(),
        cases,
        "one `corrupt` event per damaged entry"
    );
}

#[test]
fn mmap_unchecked_does_not_read_the_array_data() {
    capture_logs(log::LevelFilter::Warn);
    let dir = tempfile::tempdir().unwrap();
    let name = "mapped::unchecked_producer";
    let mem = Memory::builder(dir.path())
        .verbose(0)
        .mmap_unchecked(true)
        .build()
        .unwrap();
    let (f, calls) = counted(&mem, name);
    let expected = values(3);
    assert_eq!(f.call_mapped(3).view(), expected.view());

    // Damage inside the array data is the price of O(1) hits: not seen.
    let mut rng = Rng(1);
    let what = damage(dir.path(), Part::Data, false, &mut rng);
    let out = f.call_mapped(3);
    assert!(out.is_mapped());
    assert_ne!(out.view(), expected.view(), "{what}: the data is not read");
    drop(out);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(take_about(name).is_empty());

    // The file's header and metadata are still checked when it is mapped.
    let what = damage(dir.path(), Part::Header, false, &mut rng);
    assert_eq!(f.call_mapped(3).view(), expected.view(), "{what}");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let lines = take_about(name);
    assert!(
        lines.len() == 1 && lines[0].contains("corrupt cache entry for"),
        "{what}: {lines:?}"
    );

    // The same damage in checked mode is found.
    let what = damage(dir.path(), Part::Data, true, &mut rng);
    let checked = Memory::builder(dir.path())
        .verbose(0)
        .mmap_unchecked(true)
        .mmap_unchecked(false)
        .build()
        .unwrap();
    let (g, more) = counted(&checked, name);
    let out = g.call_mapped(3);
    assert!(out.is_mapped(), "mmap_unchecked(false) keeps mapping on");
    assert_eq!(out.view(), expected.view(), "{what}");
    assert_eq!(more.load(Ordering::SeqCst), 1);
    assert_eq!(take_about(name).len(), 1);
}

#[test]
fn mapped_calls_share_the_one_call_protocol() {
    // call_mapped goes through the same look up, lock, look up again,
    // compute path as call: threads asking at once compute once, and
    // every one of them gets the stored result, mapped.
    let dir = tempfile::tempdir().unwrap();
    let mem = Memory::builder(dir.path())
        .verbose(0)
        .mmap(true)
        .build()
        .unwrap();
    let name = "mapped::shared_producer";
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let f = mem.cache_named(name, move |seed: u64| {
        counter.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(std::time::Duration::from_millis(200));
        values(seed)
    });
    let expected = values(5);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..6).map(|_| s.spawn(|| f.call_mapped(5))).collect();
        for h in handles {
            let out = h.join().unwrap();
            assert!(out.is_mapped());
            assert_eq!(out.view(), expected.view());
        }
    });
    assert_eq!(calls.load(Ordering::SeqCst), 1, "computed once");
    // A plain call and a mapped one share the entry.
    assert_eq!(f.call(5), expected);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn shelved_arrays_load_mapped_and_verified() {
    let dir = tempfile::tempdir().unwrap();
    // Mapping a shelved result needs no mmap setting on the memory.
    let mem = Memory::builder(dir.path()).verbose(0).build().unwrap();
    let f = mem.cache_named("mapped::shelved_producer", values);
    let handle = f.call_and_shelve(9);
    let out = handle.load_mapped().unwrap();
    assert!(out.is_mapped());
    assert_eq!(out.view(), values(9).view());
    drop(out);
    // A small array lives in the metadata file: loaded, not mapped.
    let other = tempfile::tempdir().unwrap();
    let small = Memory::builder(other.path())
        .verbose(0)
        .build()
        .unwrap()
        .cache_named("mapped::small", |n: usize| Array1::<f64>::zeros(n));
    let out = small.call_and_shelve(4).load_mapped().unwrap();
    assert!(!out.is_mapped());
    assert_eq!(out.view().len(), 4);
    // A handle of a disabled memory holds its value.
    let held = Memory::disabled().cache(values).call_and_shelve(2);
    assert_eq!(held.load_mapped().unwrap().into_owned(), values(2));
    // Damage in the array data is found over the map (verified by
    // default), the entry removed, and the error says so.
    let mut rng = Rng(7);
    let what = damage(dir.path(), Part::Data, false, &mut rng);
    let err = handle.load_mapped().unwrap_err();
    assert!(
        matches!(err, jobcache_memo::Error::Corrupt { .. }),
        "{what}: {err}"
    );
    assert!(matches!(
        handle.load_mapped().unwrap_err(),
        jobcache_memo::Error::NotInCache { .. }
    ));
}

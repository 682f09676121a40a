//! What each durability mode promises (`LAYOUT.md`, "Durability"): an entry
//! whose files are torn after its publish — truncated, or zero-filled as a
//! power loss leaves a file whose data never reached the disk — is a miss or
//! a reported corruption, never a value, whether the publish synced or not;
//! and the index stays exact when its tail is torn the same way.

use jobcache_store::StoreExt;
use jobcache_store::{Durability, FsStore, Location, Lookup, NewEntry, Store};
use std::fs;
use std::io::Write;
use std::path::Path;

mod support;

const NS: &str = "durability::f";
const MODES: [Durability; 2] = [Durability::Checksummed, Durability::Synced];

fn key(i: u64) -> String {
    format!("{i:064x}")
}

fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) | 1)
        .collect()
}

fn store(dir: &Path, mode: Durability) -> FsStore {
    FsStore::create(dir.join("cache"))
        .unwrap()
        .with_durability(mode)
}

/// Ways a file can be torn after its publish.
#[derive(Debug, Clone, Copy)]
enum Tear {
    Empty,
    Half,
    ZeroFilled,
    ZeroTail,
}

fn tear(path: &Path, how: Tear) {
    let len = fs::metadata(path).unwrap().len();
    tear_tail(path, 0..len, how);
}

/// Tears the bytes `range` at the end of the file `path` (a whole file, or
/// the last record appended to a pack) as [`tear`] tears a file.
fn tear_tail(path: &Path, range: std::ops::Range<u64>, how: Tear) {
    let mut bytes = fs::read(path).unwrap();
    assert_eq!(range.end, bytes.len() as u64, "the torn bytes end the file");
    let (start, len) = (range.start as usize, (range.end - range.start) as usize);
    match how {
        Tear::Empty => bytes.truncate(start),
        Tear::Half => bytes.truncate(start + len / 2),
        Tear::ZeroFilled => bytes[start..].fill(0),
        Tear::ZeroTail => {
            let from = bytes.len() - len.clamp(1, 4096);
            bytes[from..].fill(0);
        }
    }
    fs::write(path, bytes).unwrap();
}

#[test]
fn the_default_is_checksummed() {
    let dir = tempfile::tempdir().unwrap();
    let s = FsStore::create(dir.path().join("cache")).unwrap();
    assert_eq!(s.durability(), Durability::Checksummed);
    assert_eq!(Durability::default(), Durability::Checksummed);
}

#[test]
fn torn_files_are_never_a_value_in_either_mode() {
    // Inline (in the meta file), a payload file read inside `get`, and one
    // checked while it is read (over 1 MiB).
    let sizes = [100usize, 64 << 10, (1 << 20) + 4096];
    let tears = [Tear::Empty, Tear::Half, Tear::ZeroFilled, Tear::ZeroTail];
    for mode in MODES {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), mode);
        let mut n = 0u64;
        for (si, &len) in sizes.iter().enumerate() {
            for &how in &tears {
                for file in ["meta", "payload"] {
                    if file == "payload" && len <= jobcache_store::INLINE_MAX {
                        continue;
                    }
                    n += 1;
                    let k = key(n);
                    let data = payload(len, si as u8);
                    s.publish_bytes(NS, &k, &NewEntry::default(), &data)
                        .unwrap();
                    assert_eq!(support::value_of(&s, NS, &k).as_deref(), Some(&data[..]));
                    // A small entry's meta file is the last record of its
                    // pack: a power loss tears the pack's tail.
                    let packed = matches!(s.locate(NS, &k).unwrap(), Some(Location::Packed { .. }));
                    let (path, range) = if packed && file == "meta" {
                        support::record(&s, NS, &k)
                    } else {
                        let path = s.entry_dir(NS, &k).unwrap().join(file);
                        let len = fs::metadata(&path).unwrap().len();
                        (path, 0..len)
                    };
                    tear_tail(&path, range, how);
                    // A power loss ends every process: the next run opens
                    // the cache afresh (a live handle may keep serving the
                    // packed record it checked before the tear, which is
                    // still the right value).
                    let s = store(dir.path(), mode);
                    let what = format!("{mode:?}, {len} bytes, {file} {how:?}");
                    assert_eq!(
                        support::value_of(&s, NS, &k),
                        None,
                        "{what}: a torn entry gave a value"
                    );
                    // Quarantined: the next lookup is a clean miss, and the
                    // entry can be computed and stored again.
                    assert!(
                        matches!(s.get(NS, &k, true).unwrap(), Lookup::Missing),
                        "{what}: not a miss after the corruption was found"
                    );
                    let published = s
                        .publish_bytes(NS, &k, &NewEntry::default(), &data)
                        .unwrap();
                    assert!(!published.already_present, "{what}");
                    assert_eq!(
                        support::value_of(&s, NS, &k).as_deref(),
                        Some(&data[..]),
                        "{what}"
                    );
                }
            }
        }
    }
}

#[test]
fn verify_reports_torn_entries_in_either_mode() {
    for mode in MODES {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), mode);
        for i in 0..6 {
            s.publish_bytes(NS, &key(i), &NewEntry::default(), &payload(40 << 10, 7))
                .unwrap();
        }
        tear(
            &s.entry_dir(NS, &key(1)).unwrap().join("payload"),
            Tear::ZeroTail,
        );
        tear(
            &s.entry_dir(NS, &key(2)).unwrap().join("meta"),
            Tear::ZeroFilled,
        );
        let report = s.verify_all(&mut |_, _| {}).unwrap();
        assert_eq!((report.ok, report.corrupt), (4, 2), "{mode:?}");
        assert_eq!(s.indexed_totals().unwrap().0, 4, "{mode:?}");
    }
}

#[test]
fn a_torn_index_tail_is_ignored_in_either_mode() {
    for mode in MODES {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), mode);
        for i in 0..8 {
            s.publish_bytes(NS, &key(i), &NewEntry::default(), &i.to_le_bytes())
                .unwrap();
        }
        let ledger = dir.path().join("cache/index/ledger");
        // What a power loss leaves after unsynced appends: the file grew
        // but the last records' data is zeros, or part of a record.
        let mut f = fs::OpenOptions::new().append(true).open(&ledger).unwrap();
        f.write_all(&[0u8; 160]).unwrap();
        f.write_all(&[0x4a; 17]).unwrap();
        drop(f);
        let all = s.all_entries().unwrap();
        let listed = (all.len(), all.iter().map(|e| e.stored_bytes).sum::<u64>());
        let other = FsStore::open(dir.path().join("cache"))
            .unwrap()
            .with_durability(mode);
        assert_eq!(other.indexed_totals().unwrap(), listed, "{mode:?}");
        // Appends after the torn tail are read back.
        for i in 8..12 {
            other
                .publish_bytes(NS, &key(i), &NewEntry::default(), &i.to_le_bytes())
                .unwrap();
        }
        other.remove(NS, &key(0)).unwrap();
        let fresh = FsStore::open(dir.path().join("cache")).unwrap();
        assert_eq!(fresh.indexed_totals().unwrap().0, 11, "{mode:?}");
        assert_eq!(s.indexed_totals().unwrap().0, 11, "{mode:?}");
    }
}

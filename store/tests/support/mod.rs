//! What the store's tests share: where an entry's bytes are on disk (a
//! record of a pack, or a directory of its own), so that a test damages the
//! bytes a lookup reads wherever they live (`LAYOUT.md`, "Packs"); what a
//! verified lookup gives; and how many lock files a namespace holds.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use jobcache_store::{FsStore, Location, Lookup, Store};
use std::fs;
use std::ops::Range;
use std::path::PathBuf;

/// Bytes of a pack record before the meta file it holds.
pub const RECORD_HEAD: u64 = 60;
/// Bytes of a pack record after the meta file it holds (its checksum).
pub const RECORD_TAIL: u64 = 8;

/// The pack holding a packed entry and the byte range of its record;
/// panics if the entry is not packed.
pub fn record(s: &FsStore, ns: &str, key: &str) -> (PathBuf, Range<u64>) {
    match s.locate(ns, key).unwrap() {
        Some(Location::Packed { pack, offset, len }) => (pack, offset..offset + len),
        other => panic!("{ns} {key} is not packed: {other:?}"),
    }
}

/// The file that holds an entry's meta file bytes and their range in it:
/// inside its pack record, or its `meta` file whole.
pub fn meta_bytes(s: &FsStore, ns: &str, key: &str) -> (PathBuf, Range<u64>) {
    match s.locate(ns, key).unwrap() {
        Some(Location::Packed { pack, offset, len }) => {
            (pack, offset + RECORD_HEAD..offset + len - RECORD_TAIL)
        }
        Some(Location::Directory(dir)) => {
            let meta = dir.join("meta");
            let len = fs::metadata(&meta).unwrap().len();
            (meta, 0..len)
        }
        other => panic!("{ns} {key}: no meta file bytes at {other:?}"),
    }
}

/// Xors `mask` into the byte at `at` of `path`.
pub fn flip(path: &std::path::Path, at: u64, mask: u8) {
    let mut bytes = fs::read(path).unwrap();
    bytes[at as usize] ^= mask;
    fs::write(path, bytes).unwrap();
}

/// Replaces the bytes `range` of `path` by `with` (which may be shorter or
/// longer: what follows moves).
pub fn splice(path: &std::path::Path, range: Range<u64>, with: &[u8]) {
    let mut bytes = fs::read(path).unwrap();
    bytes.splice(
        range.start as usize..range.end as usize,
        with.iter().copied(),
    );
    fs::write(path, bytes).unwrap();
}

/// What a verified lookup and a full read give: `Some(bytes)` only if a
/// value came out.
pub fn value_of(s: &FsStore, ns: &str, k: &str) -> Option<Vec<u8>> {
    match s.get(ns, k, true).unwrap() {
        Lookup::Found(mut e) => e.read_to_vec().ok(),
        Lookup::Missing | Lookup::Corrupt(_) => None,
    }
}

/// How many lock files the namespace `ns` of the store at `root` holds (none
/// if it has no directory yet).
pub fn lock_files(root: &std::path::Path, ns: &str) -> usize {
    let dir = root
        .join("ns")
        .join(jobcache_store::encode_namespace(ns).unwrap());
    fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().ends_with(".lock"))
                .count()
        })
        .unwrap_or(0)
}

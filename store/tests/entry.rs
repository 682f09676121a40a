//! `Entry` as a backend hands it out (issue 14's review): a payload that
//! cannot be read is an error, never an unfilled buffer; an entry is
//! "verified" only if its checksum was checked.

use jobcache_store::StoreExt;
use jobcache_store::{Entry, EntryMeta, FsStore, Lookup, NewEntry, Payload, Store, StoreError};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

const NS: &str = "entry::f";

fn meta_for(len: u64) -> EntryMeta {
    EntryMeta {
        created: SystemTime::UNIX_EPOCH,
        last_access: SystemTime::UNIX_EPOCH,
        payload_len: len,
        checksum: 0,
        compute_duration: Duration::ZERO,
        fields: BTreeMap::new().into(),
    }
}

#[test]
fn an_in_memory_payload_with_a_bad_range_is_an_error_not_an_empty_read() {
    // Past the end, and (as a backend may build one) start after end.
    #[allow(clippy::reversed_empty_ranges)]
    let ranges = [(false, 2usize..10), (true, 2..10), (false, 6..4)];
    for (verify, range) in ranges {
        let len = range.end.saturating_sub(range.start) as u64;
        let payload = Payload::Memory {
            buf: vec![7u8; 3],
            range: range.clone(),
        };
        let mut e = Entry::new(meta_for(len), payload, None, "x".into(), verify);
        let mut out = vec![0xAAu8; len as usize];
        let r = e.read_into(&mut out);
        assert!(
            matches!(r, Err(StoreError::Corrupt { .. })),
            "range {range:?}, verify {verify}: {r:?}"
        );
        assert!(!e.is_verified());
    }
}

#[test]
fn only_checked_entries_are_verified() {
    let dir = tempfile::tempdir().unwrap();
    let s = FsStore::create(dir.path().join("cache")).unwrap();
    let small = "1".repeat(64);
    let mid = "2".repeat(64);
    let big = "3".repeat(64);
    for (k, len) in [(&small, 100usize), (&mid, 64 << 10), (&big, (1 << 20) + 1)] {
        s.publish_bytes(NS, k, &NewEntry::default(), &vec![5u8; len])
            .unwrap();
    }
    let found = |k: &str, verify| match s.get(NS, k, verify).unwrap() {
        Lookup::Found(e) => e,
        other => panic!("{k}: {other:?}"),
    };
    // Looked up without verification: not verified, inline or not.
    for k in [&small, &mid, &big] {
        let mut e = found(k, false);
        assert!(!e.is_verified(), "{k}");
        e.verify().unwrap();
        assert!(e.is_verified(), "{k}");
    }
    // Checked inside the lookup: verified at once.
    assert!(found(&small, true).is_verified());
    assert!(found(&mid, true).is_verified());
    // Checked while read: verified once read.
    let mut e = found(&big, true);
    assert!(!e.is_verified());
    e.read_to_vec().unwrap();
    assert!(e.is_verified());
}

/// A payload longer than the memory the allocator will give (a file of
/// holes planted in a shared cache with a forged meta file) is an error
/// from `read_to_vec`, not an abort of the process.
#[test]
fn a_payload_too_large_for_memory_is_an_error_not_an_abort() {
    // Where every allocation is granted (`overcommit_memory` 1), the
    // allocator never refuses: nothing to show there.
    if std::fs::read_to_string("/proc/sys/vm/overcommit_memory").is_ok_and(|m| m.trim() == "1") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("payload");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(1 << 40).unwrap();
    let mut entry = Entry::new(
        meta_for(1 << 40),
        Payload::File(std::fs::File::open(&path).unwrap()),
        Some(path),
        "holes".into(),
        false,
    );
    let e = entry.read_to_vec().unwrap_err();
    assert!(e.to_string().contains("does not fit in memory"), "{e}");
}

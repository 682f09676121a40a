//! A minimal backend that implements only the seven required methods of
//! `Store` gets eviction, verification, clearing and the conveniences
//! through the shared policy (`StoreExt`), with the trait's default hooks.

use jobcache_store::{
    Entry, EntryInfo, EntryLock, EntryMeta, Limits, LockState, Lookup, NewEntry, Payload,
    Published, SkipReason, Store, StoreExt, Verdict, Wait, WriteFn,
};
use proptest::prelude::*;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

type Id = (String, String);

/// Entries in a map; a lock is a key in a set, held until its guard drops.
#[derive(Debug, Default)]
struct MemStore {
    entries: Mutex<BTreeMap<Id, (EntryMeta, Vec<u8>)>>,
    locks: Arc<Mutex<HashSet<Id>>>,
}

fn id(namespace: &str, key: &str) -> Id {
    (namespace.to_string(), key.to_string())
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Releases a lock of a `MemStore` when dropped.
struct Release(Arc<Mutex<HashSet<Id>>>, Id);

impl Drop for Release {
    fn drop(&mut self) {
        locked(&self.0).remove(&self.1);
    }
}

impl MemStore {
    /// Sets an entry's last access, to order entries for eviction.
    fn age(&self, namespace: &str, key: &str, ago: Duration) {
        if let Some((meta, _)) = locked(&self.entries).get_mut(&id(namespace, key)) {
            meta.last_access = SystemTime::now() - ago;
        }
    }

    /// Flips a payload byte behind the store's back.
    fn damage(&self, namespace: &str, key: &str) {
        if let Some((_, bytes)) = locked(&self.entries).get_mut(&id(namespace, key)) {
            bytes[0] ^= 0xff;
        }
    }

    fn info(namespace: &str, key: &str, meta: &EntryMeta) -> EntryInfo {
        EntryInfo {
            namespace: namespace.to_string(),
            key: key.to_string(),
            stored_bytes: meta.payload_len,
            last_access: meta.last_access,
            meta: Ok(meta.clone()),
        }
    }
}

impl Store for MemStore {
    fn get(
        &self,
        namespace: &str,
        key: &str,
        verify_payload: bool,
    ) -> jobcache_store::Result<Lookup> {
        let Some((meta, bytes)) = locked(&self.entries).get(&id(namespace, key)).cloned() else {
            return Ok(Lookup::Missing);
        };
        let range = 0..bytes.len();
        let payload = Payload::Memory { buf: bytes, range };
        let location = format!("mem:{namespace}/{key}");
        let entry = Entry::new(meta, payload, None, location, verify_payload);
        Ok(Lookup::Found(Box::new(entry)))
    }

    fn publish(
        &self,
        namespace: &str,
        key: &str,
        entry: &NewEntry,
        write: WriteFn<'_>,
    ) -> jobcache_store::Result<Published> {
        let (bytes, meta) = entry.buffer(namespace, key, write)?;
        let mut entries = locked(&self.entries);
        if let Some((kept, _)) = entries.get(&id(namespace, key)) {
            return Ok(Published {
                meta: kept.clone(),
                already_present: true,
            });
        }
        entries.insert(id(namespace, key), (meta.clone(), bytes));
        Ok(Published {
            meta,
            already_present: false,
        })
    }

    fn lock(&self, namespace: &str, key: &str, wait: Wait) -> jobcache_store::Result<EntryLock> {
        assert_eq!(wait, Wait::NoWait, "the tests only try locks");
        if !locked(&self.locks).insert(id(namespace, key)) {
            return Ok(EntryLock::new(LockState::TimedOut, Duration::ZERO, None));
        }
        let release = Release(Arc::clone(&self.locks), id(namespace, key));
        let held: Box<dyn std::any::Any + Send + Sync> = Box::new(Mutex::new(release));
        Ok(EntryLock::new(
            LockState::Acquired,
            Duration::ZERO,
            Some(held),
        ))
    }

    fn remove(&self, namespace: &str, key: &str) -> jobcache_store::Result<u64> {
        let removed = locked(&self.entries).remove(&id(namespace, key));
        Ok(removed.map_or(0, |(meta, _)| meta.payload_len))
    }

    fn remove_namespace(&self, namespace: &str) -> jobcache_store::Result<u64> {
        let mut entries = locked(&self.entries);
        let mut freed = 0;
        entries.retain(|(ns, _), (meta, _)| {
            let keep = ns != namespace;
            if !keep {
                freed += meta.payload_len;
            }
            keep
        });
        Ok(freed)
    }

    fn namespaces(&self) -> jobcache_store::Result<Vec<String>> {
        let mut names: Vec<String> = locked(&self.entries)
            .keys()
            .map(|(ns, _)| ns.clone())
            .collect();
        names.dedup();
        Ok(names)
    }

    fn entries(&self, namespace: &str) -> jobcache_store::Result<Vec<EntryInfo>> {
        Ok(locked(&self.entries)
            .iter()
            .filter(|((ns, _), _)| ns == namespace)
            .map(|((ns, key), (meta, _))| MemStore::info(ns, key, meta))
            .collect())
    }
}

const NS: &str = "tests::policy";

fn key(i: u8) -> String {
    format!("{i:02x}").repeat(32)
}

/// Five entries of 100 bytes each, entry 0 the least recently used.
fn filled() -> MemStore {
    let store = MemStore::default();
    for i in 0..5u8 {
        let entry = NewEntry::new(Duration::from_millis(1));
        store
            .publish_bytes(NS, &key(i), &entry, &[i; 100])
            .expect("publish");
        store.age(NS, &key(i), Duration::from_secs(100 - u64::from(i)));
    }
    store
}

fn keys(infos: &[EntryInfo]) -> Vec<String> {
    infos.iter().map(|e| e.key.clone()).collect()
}

#[test]
fn reduce_size_evicts_least_recently_used_first_through_the_default_hook() {
    let store = filled();
    let limits = Limits {
        max_items: Some(2),
        ..Limits::default()
    };
    let dry = store.reduce_size(&limits, true).expect("dry run");
    assert!(dry.dry_run);
    assert_eq!(keys(&dry.removed), [key(0), key(1), key(2)]);
    assert_eq!(
        store.all_entries().expect("list").len(),
        5,
        "a dry run removes nothing"
    );

    let done = store.reduce_size(&limits, false).expect("reduce");
    assert_eq!(keys(&done.removed), [key(0), key(1), key(2)]);
    assert_eq!(done.freed_bytes, 300);
    assert_eq!((done.kept_items, done.kept_bytes), (2, 200));
    assert!(!store.contains(NS, &key(0)).expect("contains"));
    assert!(store.contains(NS, &key(4)).expect("contains"));
}

#[test]
fn eviction_skips_an_entry_whose_lock_is_held() {
    let store = filled();
    let guard = store.lock(NS, &key(0), Wait::NoWait).expect("lock");
    assert!(guard.is_acquired());
    let limits = Limits {
        max_bytes: Some(400),
        ..Limits::default()
    };
    let r = store.apply_limits(&limits).expect("apply limits");
    assert_eq!(keys(&r.removed), [key(1)]);
    assert_eq!(r.skipped, 1);
    assert_eq!(r.skipped_entries[0].entry.key, key(0));
    assert_eq!(r.skipped_entries[0].reason, SkipReason::Locked);
    drop(guard);
    let old = Limits {
        max_age: Some(Duration::from_millis(97_500)),
        ..Limits::default()
    };
    let r = store.reduce_size(&old, false).expect("by age");
    assert_eq!(keys(&r.removed), [key(0), key(2)]);
}

#[test]
fn verify_all_finds_a_damaged_payload_through_the_default_check() {
    let store = filled();
    store.damage(NS, &key(3));
    let mut seen = Vec::new();
    let report = store
        .verify_all(&mut |info, verdict| seen.push((info.key.clone(), verdict.clone())))
        .expect("verify");
    assert_eq!((report.ok, report.corrupt, report.missing), (4, 1, 0));
    assert_eq!(report.bytes, 400);
    assert_eq!(seen.len(), 5);
    assert!(matches!(&seen[3], (k, Verdict::Corrupt(_)) if *k == key(3)));
    assert_eq!(
        store.get_bytes(NS, &key(3)).expect("get"),
        None,
        "corrupt reads as missing"
    );
    assert_eq!(
        store.get_bytes(NS, &key(2)).expect("get"),
        Some(vec![2; 100])
    );
}

#[test]
fn clear_and_get_or_compute_work_over_the_primitives() {
    let store = filled();
    store
        .publish_bytes(
            "tests::other",
            &key(9),
            &NewEntry::new(Duration::ZERO),
            b"x",
        )
        .expect("publish");
    assert_eq!(store.clear().expect("clear"), 501);
    assert!(store.namespaces().expect("namespaces").is_empty());

    let mut runs = 0;
    let mut compute = || {
        runs += 1;
        Ok((b"value".to_vec(), NewEntry::new(Duration::ZERO)))
    };
    let first = store
        .get_or_compute(NS, &key(1), Wait::NoWait, &mut compute)
        .expect("compute");
    let second = store
        .get_or_compute(NS, &key(1), Wait::NoWait, &mut compute)
        .expect("read");
    assert!(first.computed && !second.computed);
    assert_eq!(second.bytes, b"value");
    assert_eq!(runs, 1);
}

#[test]
fn the_policy_reaches_a_backend_behind_a_trait_object() {
    let store: Arc<dyn Store> = Arc::new(filled());
    let limits = Limits {
        max_items: Some(4),
        ..Limits::default()
    };
    assert_eq!(
        keys(&store.reduce_size(&limits, false).expect("reduce").removed),
        [key(0)]
    );
    assert_eq!(store.verify_all(&mut |_, _| {}).expect("verify").ok, 4);
}

// Case counts follow PROPTEST_CASES (default 256), so that
// `cargo xtask proptest --cases N` scales them.
proptest! {
    /// Whatever the ages, sizes and limits, the shared eviction leaves the
    /// store within the limits (nothing is locked), removes only entries
    /// less recently used than every entry it keeps, reports what it did
    /// exactly, and a dry run reports the same removals.
    #[test]
    fn prop_shared_eviction_keeps_the_limits_and_the_most_recent(
        entries in proptest::collection::vec((1u64..10_000, 1usize..300), 0..24),
        max_items in proptest::option::of(0usize..24),
        max_bytes in proptest::option::of(0u64..5_000),
    ) {
        let store = MemStore::default();
        for (i, (ago, len)) in entries.iter().enumerate() {
            let k = key(i as u8);
            store.publish_bytes(NS, &k, &NewEntry::new(Duration::ZERO), &vec![7; *len]).unwrap();
            // Distinct ages: the order of eviction is then defined.
            store.age(NS, &k, Duration::from_millis(ago * 100 + i as u64));
        }
        let limits = Limits { max_items, max_bytes, ..Limits::default() };
        let dry = store.reduce_size(&limits, true).unwrap();
        let done = store.reduce_size(&limits, false).unwrap();
        prop_assert_eq!(keys(&dry.removed), keys(&done.removed));
        let left = store.all_entries().unwrap();
        prop_assert_eq!(done.kept_items, left.len());
        prop_assert_eq!(done.kept_bytes, left.iter().map(|e| e.stored_bytes).sum::<u64>());
        prop_assert_eq!(done.freed_bytes, done.removed.iter().map(|e| e.stored_bytes).sum::<u64>());
        prop_assert!(max_items.is_none_or(|m| done.kept_items <= m));
        prop_assert!(max_bytes.is_none_or(|m| done.kept_bytes <= m));
        let newest_removed = done.removed.iter().map(|e| e.last_access).max();
        let oldest_kept = left.iter().map(|e| e.last_access).min();
        if let (Some(removed), Some(kept)) = (newest_removed, oldest_kept) {
            prop_assert!(removed < kept);
        }
    }
}

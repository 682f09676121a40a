//! Eviction in least-recently-used order from the index (`LAYOUT.md`,
//! "Removal, eviction, cleaning" and "Index"): no meta file is read to find
//! what goes, and a policy check within the limits costs no scan.

use super::clean::{lock_linked, Moved};
use super::index::{Id, NsId, Op, Record};
use super::layout::INDEX_DIR;
use super::FsStore;
use crate::api::{Limits, Lookup, Reduction, SkipReason, Store};
use crate::error::{Result, StoreError};
use crate::lock;
use crate::meta::to_nanos;
use crate::names::encode_namespace;
use std::collections::HashMap;
use std::time::SystemTime;

/// Entries moved away before they are deleted together (in parallel) and
/// their removal appended to the index in one write.
const BATCH: usize = 64;

/// Removals not yet deleted nor in the index.
#[derive(Default)]
struct Pending {
    moved: Vec<Moved>,
    /// One `remove` per evicted entry: also the packed entries to drop from
    /// their packs (an id absent from its pack costs nothing there).
    records: Vec<Record>,
}

impl Pending {
    /// Deletes what was moved and records the removals; the bytes freed.
    fn flush(&mut self, store: &FsStore) -> u64 {
        let mut freed = store.delete_moved(std::mem::take(&mut self.moved));
        let ids: Vec<Id> = self.records.iter().map(|r| (r.ns, r.key)).collect();
        match store.remove_packed(&ids) {
            Ok(n) => freed += n,
            Err(e) => log::warn!("{e}"),
        }
        if !self.records.is_empty() {
            store.index_append(&std::mem::take(&mut self.records));
        }
        freed
    }
}

fn nanos(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl FsStore {
    /// The namespaces by index id.
    pub(super) fn namespace_ids(&self) -> Result<HashMap<NsId, String>> {
        Ok(self
            .namespaces()?
            .into_iter()
            .map(|n| (super::index::ns_id(&n), n))
            .collect())
    }

    /// Removes least recently used entries while a limit is exceeded,
    /// skipping those in use; with `dry_run`, only reports.
    pub(super) fn evict(&self, limits: &Limits, dry_run: bool) -> Result<Reduction> {
        let mut pending = Pending::default();
        let report = self.evict_with(limits, dry_run, &mut pending);
        // Deleted and recorded even when the walk stopped on an error.
        let freed = pending.flush(self);
        report.map(|mut r| {
            r.freed_bytes += freed;
            r
        })
    }

    fn evict_with(
        &self,
        limits: &Limits,
        dry_run: bool,
        pending: &mut Pending,
    ) -> Result<Reduction> {
        let path = self.root().join(INDEX_DIR);
        let ioerr = |e| StoreError::io("read index", &path, e);
        let now = to_nanos(SystemTime::now());
        let max_age = limits.max_age.map(nanos);
        let recent = nanos(self.recent);
        let mut report = Reduction {
            dry_run,
            ..Reduction::default()
        };
        let mut cursor: Option<(u64, Id)> = None;
        let mut names: Option<HashMap<NsId, String>> = None;
        // Removed (or, in a dry run, that would be) but not yet in the
        // index this loop reads.
        let (mut gone_items, mut gone_bytes) = (0usize, 0u64);
        loop {
            let next = {
                let Some(mut l) = self.index.lock(self).map_err(ioerr)? else {
                    break;
                };
                let t = l.table(self).map_err(ioerr)?;
                let items = t.len().saturating_sub(gone_items);
                let bytes = t.bytes().saturating_sub(gone_bytes);
                report.kept_items = items;
                report.kept_bytes = bytes;
                let over = limits.max_items.is_some_and(|m| items > m)
                    || limits.max_bytes.is_some_and(|m| bytes > m);
                // Only entries last used before this call began: those
                // published or used meanwhile by others are newer than
                // anything it may remove, and ending there bounds the walk
                // however fast others publish.
                t.next_after(cursor.as_ref()).filter(|(access, _, _)| {
                    *access < now
                        && (over || max_age.is_some_and(|m| now.saturating_sub(*access) > m))
                })
            };
            let Some((access, id, known)) = next else {
                break;
            };
            cursor = Some((access, id));
            let mut namespace = names.as_ref().and_then(|m| m.get(&id.0).cloned());
            if namespace.is_none() {
                let fresh = self.namespace_ids()?;
                namespace = fresh.get(&id.0).cloned();
                names = Some(fresh);
            }
            let forget = || {
                if !dry_run {
                    self.index_append(&[Record::new(Op::Remove, id, 0, 0)]);
                }
            };
            let Some(namespace) = namespace else {
                // Its namespace is gone: so is the entry.
                forget();
                continue;
            };
            let mut info = FsStore::indexed_info(&namespace, &id, &known);
            let key = info.key.clone();
            if recent > 0 && now.saturating_sub(access) < recent {
                report.skip(info, SkipReason::Recent);
                continue;
            }
            // Held by a live process or thread, as a byte of `index/locks`
            // or as a lock file: in use.
            let Some(byte) = self.ofd.try_hold(self, &id) else {
                report.skip(info, SkipReason::Locked);
                continue;
            };
            let Some(guard) = self.hold_lock_if_any(&namespace, &key) else {
                report.skip(info, SkipReason::Locked);
                continue;
            };
            if self.is_being_read(&namespace, &key) {
                report.skip(info, SkipReason::Reading);
                continue;
            }
            info.meta = match self.get_inner(&namespace, &key, false, false, false)? {
                Lookup::Found(e) => Ok(e.meta().clone()),
                Lookup::Corrupt(c) => Err(c.reason),
                Lookup::Missing => {
                    // Removed behind the index's back: forget it.
                    forget();
                    if guard.is_some() {
                        self.unlink_lock(&namespace, &key);
                    }
                    continue;
                }
            };
            gone_items += 1;
            gone_bytes += known.bytes;
            if dry_run {
                report.freed_bytes += known.bytes;
            } else {
                if let Some(moved) = self.move_entry_away(&namespace, &key)? {
                    pending.moved.push(moved);
                }
                pending.records.push(Record::new(Op::Remove, id, 0, 0));
                if guard.is_some() {
                    self.unlink_lock(&namespace, &key);
                }
                if pending.records.len() >= BATCH {
                    report.freed_bytes += pending.flush(self);
                    // The index now says they are gone.
                    (gone_items, gone_bytes) = (0, 0);
                }
            }
            drop(guard);
            drop(byte);
            report.removed.push(info);
        }
        Ok(report)
    }

    /// The entry's lock, held, if its lock file exists; `Some(None)` if it
    /// does not (nobody holds it, and none is made just to look); `None` if
    /// a live process holds it. Where the file system cannot lock, free.
    fn hold_lock_if_any(&self, namespace: &str, key: &str) -> Option<Option<lock::Held>> {
        let enc = encode_namespace(namespace).ok()?;
        let rel = format!("{}/{enc}/{key}.lock", super::layout::NS_DIR);
        let root = self.handle();
        for _ in 0..4 {
            let file = match root.open_file(&rel, false) {
                Ok(f) => f,
                Err(_) => return Some(None),
            };
            match lock::try_exclusive(&file) {
                Ok(lock::Try::Locked) => {}
                Ok(lock::Try::Busy) => return None,
                Ok(lock::Try::Unsupported) | Err(_) => return Some(None),
            }
            // Unlinked by a cleaner before we locked it: look again.
            if lock_linked(&root, &rel, &file).unwrap_or(false) {
                return Some(Some(lock::Held(file)));
            }
            lock::unlock(&file);
        }
        None
    }

    /// Unlinks the lock file of an entry just removed, while its lock is
    /// held (`LAYOUT.md`, "Locks": a waiter retries on a fresh file).
    fn unlink_lock(&self, namespace: &str, key: &str) {
        if let Ok(enc) = encode_namespace(namespace) {
            let _ = self
                .handle()
                .unlink(format!("{}/{enc}/{key}.lock", super::layout::NS_DIR));
        }
    }
}

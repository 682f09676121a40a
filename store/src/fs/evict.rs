//! Eviction in least-recently-used order from the index (`LAYOUT.md`,
//! "Removal, eviction, cleaning" and "Index"): no meta file is read to find
//! what goes, and a policy check within the limits costs no scan.

use super::index::{Id, NsId, Op, Record};
use super::layout::INDEX_DIR;
use super::FsStore;
use crate::api::{Limits, LockState, Lookup, Reduction, SkipReason, Store, Wait};
use crate::error::{Result, StoreError};
use crate::meta::to_nanos;
use crate::names::encode_namespace;
use std::collections::HashMap;
use std::time::SystemTime;

fn nanos(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl FsStore {
    /// The namespaces by index id.
    fn namespace_ids(&self) -> Result<HashMap<NsId, String>> {
        Ok(self
            .namespaces()?
            .into_iter()
            .map(|n| (super::index::ns_id(&n), n))
            .collect())
    }

    /// Removes least recently used entries while a limit is exceeded,
    /// skipping those in use; with `dry_run`, only reports.
    pub(super) fn evict(&self, limits: &Limits, dry_run: bool) -> Result<Reduction> {
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
        // What a dry run would have removed so far.
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
            let guard = self.lock(&namespace, &key, Wait::NoWait)?;
            if guard.state() == LockState::TimedOut {
                report.skip(info, SkipReason::Locked);
                continue;
            }
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
                    if guard.is_acquired() {
                        self.unlink_lock(&namespace, &key);
                    }
                    continue;
                }
            };
            let freed = if dry_run {
                gone_items += 1;
                gone_bytes += known.bytes;
                known.bytes
            } else {
                let freed = self.remove(&namespace, &key)?;
                if guard.is_acquired() {
                    self.unlink_lock(&namespace, &key);
                }
                freed
            };
            drop(guard);
            report.freed_bytes += freed;
            report.removed.push(info);
        }
        Ok(report)
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

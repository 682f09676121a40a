//! Policy over the [`Store`] trait, shared by every backend: verification
//! walks, size reduction, clearing, and the conveniences built on the
//! primitives ([`StoreExt`]).
//!
//! [`StoreExt`] is an extension trait with a blanket implementation for
//! every [`Store`] (`dyn Store` and `Arc<dyn Store>` included), so that
//! call sites read as before (`store.verify_all(..)`) while no backend can
//! override the policy: coherence forbids a second implementation. Where a
//! backend does a step better, it replaces the narrow hook of the trait
//! that step calls ([`Store::check_entry`], [`Store::evict`],
//! [`Store::apply_limits`], [`Store::tidy`]), never the walk itself.

use crate::api::{
    EntryInfo, Limits, LockState, Lookup, Published, Reduction, SkipReason, Store, Verdict,
    VerifyReport, Wait, Walk,
};
use crate::error::{Result, StoreError};
use crate::meta::NewEntry;
use std::io::{self, Write};
use std::time::SystemTime;

/// What [`StoreExt::get_or_compute`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Computed {
    /// The payload.
    pub bytes: Vec<u8>,
    /// Whether this caller computed it (false: it was read from the store).
    pub computed: bool,
}

/// Policy and conveniences over any [`Store`]; implemented for every store
/// (see the [module docs](self)). Bring it into scope to call them.
pub trait StoreExt: Store {
    /// Whether an entry with intact metadata exists.
    fn contains(&self, namespace: &str, key: &str) -> Result<bool> {
        Ok(matches!(self.get(namespace, key, false)?, Lookup::Found(_)))
    }

    /// The verified payload of an entry, or `None` if it is missing or was
    /// corrupt (logged as a warning).
    fn get_bytes(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>> {
        match self.get(namespace, key, true)? {
            Lookup::Found(mut e) => match e.read_to_vec() {
                Ok(v) => Ok(Some(v)),
                Err(StoreError::Corrupt { path, reason }) => {
                    log::warn!(
                        "{}: corrupt entry treated as missing: {reason}",
                        path.display()
                    );
                    Ok(None)
                }
                Err(e) => Err(e),
            },
            Lookup::Missing => Ok(None),
            Lookup::Corrupt(c) => {
                log::warn!("corrupt entry treated as missing: {c}");
                Ok(None)
            }
        }
    }

    /// Publishes a payload held in memory.
    fn publish_bytes(
        &self,
        namespace: &str,
        key: &str,
        entry: &NewEntry,
        payload: &[u8],
    ) -> Result<Published> {
        self.publish(namespace, key, entry, &mut |w: &mut dyn Write| {
            w.write_all(payload)
        })
    }

    /// The compute-once protocol in one call, over bytes: get; on a miss
    /// lock, get again, and only then `compute` and publish. Waiting past
    /// `wait` computes anyway (logged). (memo runs the same protocol over
    /// values, with its journal: `jobcache_memo`'s call protocol.)
    fn get_or_compute(
        &self,
        namespace: &str,
        key: &str,
        wait: Wait,
        compute: &mut dyn FnMut() -> io::Result<(Vec<u8>, NewEntry)>,
    ) -> Result<Computed> {
        if let Some(bytes) = self.get_bytes(namespace, key)? {
            return Ok(Computed {
                bytes,
                computed: false,
            });
        }
        let guard = self.lock(namespace, key, wait)?;
        if !guard.is_acquired() {
            log::info!(
                "{namespace}/{key}: lock {:?} after {:?}; computing without it",
                guard.state(),
                guard.waited()
            );
        }
        if let Some(bytes) = self.get_bytes(namespace, key)? {
            return Ok(Computed {
                bytes,
                computed: false,
            });
        }
        let (bytes, entry) =
            compute().map_err(|source| StoreError::writer(namespace, key, source))?;
        self.publish_bytes(namespace, key, &entry, &bytes)?;
        drop(guard);
        Ok(Computed {
            bytes,
            computed: true,
        })
    }

    /// Removes every namespace; returns the bytes freed.
    fn clear(&self) -> Result<u64> {
        let mut freed = 0;
        for ns in self.namespaces()? {
            freed += self.remove_namespace(&ns)?;
        }
        Ok(freed)
    }

    /// Reads every entry in full and checks its checksums
    /// ([`Store::check_entry`]), calling `progress` after each; corrupt
    /// entries are removed. Then the backend tidies up
    /// ([`Store::tidy`] with [`Walk::Verify`]).
    fn verify_all(&self, progress: &mut dyn FnMut(&EntryInfo, &Verdict)) -> Result<VerifyReport> {
        let mut report = VerifyReport::default();
        for info in self.all_entries()? {
            let verdict = self.check_entry(&info)?;
            match verdict {
                Verdict::Ok => {
                    report.ok += 1;
                    report.bytes += info.meta.as_ref().map_or(0, |m| m.payload_len);
                }
                Verdict::Missing => report.missing += 1,
                Verdict::Corrupt(_) => report.corrupt += 1,
            }
            progress(&info, &verdict);
        }
        self.tidy(Walk::Verify)?;
        Ok(report)
    }

    /// Evicts least-recently-used entries until every given limit holds (or
    /// only entries in use remain: locked by a live computation, or open
    /// for reading; see [`Reduction::skipped_entries`]) through
    /// [`Store::evict`]. Everything else over the limits goes at once,
    /// however young. With `dry_run`, removes nothing and reports what
    /// would go; otherwise the backend then tidies up ([`Store::tidy`] with
    /// [`Walk::Reduce`]).
    fn reduce_size(&self, limits: &Limits, dry_run: bool) -> Result<Reduction> {
        let report = self.evict(limits, dry_run)?;
        if !dry_run {
            self.tidy(Walk::Reduce)?;
        }
        Ok(report)
    }
}

impl<S: Store + ?Sized> StoreExt for S {}

/// The verdict on an entry looked up with verification, once its payload
/// is read through (the default [`Store::check_entry`]).
pub(crate) fn verdict_of(lookup: Lookup) -> Result<Verdict> {
    Ok(match lookup {
        Lookup::Found(mut e) => match e.verify() {
            Ok(()) => Verdict::Ok,
            Err(StoreError::Corrupt { reason, .. }) => Verdict::Corrupt(reason),
            Err(e) => return Err(e),
        },
        Lookup::Missing => Verdict::Missing,
        Lookup::Corrupt(c) => Verdict::Corrupt(c.reason),
    })
}

/// The default [`Store::evict`]: lists every entry, then removes entries
/// with unreadable metadata and, least recently used first, entries while a
/// limit is exceeded (or older than `max_age`), each under its lock taken
/// without waiting; an entry whose lock is held is skipped
/// ([`SkipReason::Locked`]).
pub fn evict_listed<S: Store + ?Sized>(
    store: &S,
    limits: &Limits,
    dry_run: bool,
) -> Result<Reduction> {
    let mut entries = store.all_entries()?;
    let now = SystemTime::now();
    // Entries with unreadable metadata go first, then least recently used.
    entries.sort_by_key(|e| (e.meta.is_ok(), e.last_access));
    let mut items = entries.len();
    let mut bytes: u64 = entries.iter().map(|e| e.stored_bytes).sum();
    let mut report = Reduction {
        dry_run,
        ..Reduction::default()
    };
    let age = |e: &EntryInfo| now.duration_since(e.last_access).unwrap_or_default();
    for info in entries {
        let over_items = limits.max_items.is_some_and(|m| items > m);
        let over_bytes = limits.max_bytes.is_some_and(|m| bytes > m);
        let too_old = limits.max_age.is_some_and(|m| age(&info) > m);
        if !(over_items || over_bytes || too_old || info.meta.is_err()) {
            continue;
        }
        let guard = store.lock(&info.namespace, &info.key, Wait::NoWait)?;
        if guard.state() == LockState::TimedOut {
            report.skip(info, SkipReason::Locked);
            continue;
        }
        let freed = if dry_run {
            info.stored_bytes
        } else {
            store.remove(&info.namespace, &info.key)?
        };
        drop(guard);
        items -= 1;
        bytes = bytes.saturating_sub(info.stored_bytes);
        report.freed_bytes += freed;
        report.removed.push(info);
    }
    report.kept_items = items;
    report.kept_bytes = bytes;
    Ok(report)
}

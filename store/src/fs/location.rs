//! Where an entry lives on disk, and the damage packs hold: for tools that
//! point a user at bytes (`jobcache show`, `jobcache verify`).

use super::index;
use super::pack;
use super::packed::pack_rel;
use super::{entry_rel, is_not_followed, FsStore};
use crate::beneath::{info_of, Kind};
use crate::error::{Result, StoreError};
use crate::lock;
use crate::names::{encode_namespace, validate_key};
use std::fmt;
use std::io::{self, Read};
use std::path::PathBuf;

/// Where an entry's bytes are (`LAYOUT.md`, "Tree" and "Packs").
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Location {
    /// A directory of its own, `ns/<namespace>/<key>`.
    Directory(PathBuf),
    /// A record of a pack file, `packs/<xx>.pack`.
    Packed {
        /// The pack file.
        pack: PathBuf,
        /// Where the record starts in it.
        offset: u64,
        /// The record's length in bytes.
        len: u64,
    },
}

impl fmt::Display for Location {
    /// A directory's path, or `<pack> @ <offset>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Directory(p) => write!(f, "{}", p.display()),
            Location::Packed { pack, offset, .. } => write!(f, "{} @ {offset}", pack.display()),
        }
    }
}

/// Bytes of a pack that hold no valid record: a damaged record, or a torn
/// tail (an append cut short). Lookups skip them (a miss, never a value);
/// [`FsStore::repair_packs`] drops them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PackDamage {
    /// The pack file.
    pub pack: PathBuf,
    /// Where the damaged bytes start.
    pub offset: u64,
    /// How many bytes are damaged.
    pub len: u64,
    /// Whether the damage runs to the end of the pack (a torn append looks
    /// like this).
    pub tail: bool,
    /// The entry the damaged bytes' record header names, if they start
    /// with one: namespace (if it is one the store lists) and key. The
    /// header is not checked (its checksum failed), so this is a hint.
    pub entry: Option<(Option<String>, String)>,
}

impl FsStore {
    /// Where the entry lives: the pack record a lookup would read (through
    /// the same map of the pack, caught up as lookups do), else its
    /// directory; `None` if neither holds it.
    pub fn locate(&self, namespace: &str, key: &str) -> Result<Option<Location>> {
        validate_key(key)?;
        let enc = encode_namespace(namespace)?;
        if let Some(id) = index::id_of(namespace, key) {
            if let Some(s) = self.packed_slot(&self.handle(), &id)? {
                return Ok(Some(Location::Packed {
                    pack: self.root.join(pack_rel(id.1[0])),
                    offset: s.offset,
                    len: u64::from(s.len),
                }));
            }
        }
        let rel = entry_rel(&enc, key);
        match self.handle().stat(&rel) {
            Ok(i) if i.kind == Kind::Dir => Ok(Some(Location::Directory(self.root.join(rel)))),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound || is_not_followed(&e) => Ok(None),
            Err(e) => Err(StoreError::io("stat", self.root.join(rel), e)),
        }
    }

    /// Every range of bytes in the packs that holds no valid record, in
    /// pack and offset order. Reads every pack once, changes nothing.
    pub fn pack_damage(&self) -> Result<Vec<PackDamage>> {
        let names = self.namespace_ids()?;
        let mut out = Vec::new();
        for b in 0..=u8::MAX {
            let Some((pack, bytes, len)) = self.read_pack(b)? else {
                continue;
            };
            let mut ranges = Vec::new();
            let mut end = 0;
            let scan = pack::scan(&bytes, |at, n, _| {
                if at > end {
                    ranges.push((end, at));
                }
                end = at + n;
            });
            // The tail runs to the pack's end, of which only its first
            // bytes were read.
            let len = usize::try_from(len).unwrap_or(usize::MAX);
            if scan.valid_end < len {
                ranges.push((scan.valid_end, len));
            }
            for (from, to) in ranges {
                let seen = bytes.get(from..to.min(bytes.len())).unwrap_or_default();
                let entry = pack::header_id(seen)
                    .map(|(ns, key)| (names.get(&ns).cloned(), index::key_hex(&key)));
                out.push(PackDamage {
                    pack: pack.clone(),
                    offset: from as u64,
                    len: (to - from) as u64,
                    tail: to == len,
                    entry,
                });
            }
        }
        Ok(out)
    }

    /// Rewrites every pack that holds damage or a torn tail without it, as
    /// [`Store::verify_all`](crate::Store::verify_all) does (`LAYOUT.md`,
    /// "Packs", compaction); returns how many packs were rewritten.
    pub fn repair_packs(&self) -> Result<usize> {
        self.compact_packs(true)
    }

    /// The pack of keys starting with byte `b`, its bytes up to the end of
    /// its records and the first bytes of its tail (a tail of holes or
    /// garbage is not read through), and its length, read under a shared
    /// lock; `None` if there is no such pack file (a symlink or directory in
    /// its place is not one).
    fn read_pack(&self, b: u8) -> Result<Option<(PathBuf, Vec<u8>, u64)>> {
        let rel = pack_rel(b);
        let path = self.root.join(&rel);
        let file = match self.handle().open_file(&rel, false) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound || is_not_followed(&e) => {
                return Ok(None)
            }
            Err(e) => return Err(StoreError::io("open", path, e)),
        };
        let ioerr = |op: &'static str| {
            let path = path.clone();
            move |e| StoreError::io(op, path, e)
        };
        if info_of(&file).map_err(ioerr("stat"))?.kind != Kind::File {
            return Ok(None);
        }
        let _held = lock::shared(&file).map_err(ioerr("lock"))?;
        let len = info_of(&file).map_err(ioerr("stat"))?.len;
        let end = super::packed::records_end(&file, len).map_err(ioerr("read"))?;
        let read = len.min(end.saturating_add(pack::RECORD_MAX as u64));
        let mut bytes = Vec::new();
        (&file)
            .take(read)
            .read_to_end(&mut bytes)
            .map_err(ioerr("read"))?;
        Ok(Some((path, bytes, len)))
    }
}

//! Pack records: small entries appended to shared files (`LAYOUT.md`,
//! "Packs").
//!
//! A record is, little-endian:
//!
//! | offset  | size | field                                              |
//! |--------:|-----:|----------------------------------------------------|
//! | 0       | 4    | magic `JCPK`                                       |
//! | 4       | 4    | record length `n`, all fields included             |
//! | 8       | 1    | op: 1 put, 2 remove, 3 remove namespace            |
//! | 9       | 3    | zero                                               |
//! | 12      | 16   | namespace id (as in the ledger)                    |
//! | 28      | 32   | the key's 32 bytes (zero for remove namespace)     |
//! | 60      | n-68 | put: the bytes of the entry's meta file; else none |
//! | n-8     | 8    | XXH3-64 of bytes 0..n-8                            |
//!
//! This module only encodes, decodes and scans bytes; the file handling is
//! in `packed`.

use super::index::{Id, KeyBytes, NsId};
use crate::checksum::xxh3_64;
use crate::meta::META_FILE_MAX;
use std::collections::HashMap;

/// Magic bytes at the start of every record.
pub(super) const MAGIC: [u8; 4] = *b"JCPK";
/// Bytes before the meta bytes.
pub(super) const HEAD: usize = 60;
/// Bytes of a record without meta bytes.
pub(super) const OVERHEAD: usize = HEAD + 8;
/// Largest record a reader accepts.
pub(super) const RECORD_MAX: usize = OVERHEAD + META_FILE_MAX as usize;

/// What a record does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PackOp {
    /// An entry was published; the record holds its meta file.
    Put = 1,
    /// An entry was removed.
    Remove = 2,
    /// Every entry of a namespace in this pack was removed.
    RemoveNs = 3,
}

/// A decoded record, borrowing its meta bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PackRecord<'a> {
    pub(super) op: PackOp,
    pub(super) ns: NsId,
    pub(super) key: KeyBytes,
    pub(super) meta: &'a [u8],
}

/// Encodes a record.
pub(super) fn encode(op: PackOp, ns: &NsId, key: &KeyBytes, meta: &[u8]) -> Vec<u8> {
    let n = OVERHEAD + meta.len();
    let mut b = Vec::with_capacity(n);
    b.extend_from_slice(&MAGIC);
    b.extend_from_slice(&(n as u32).to_le_bytes());
    b.push(op as u8);
    b.extend_from_slice(&[0, 0, 0]);
    b.extend_from_slice(ns);
    b.extend_from_slice(key);
    b.extend_from_slice(meta);
    let sum = xxh3_64(&b);
    b.extend_from_slice(&sum.to_le_bytes());
    b
}

/// The length a record starting at `b` claims, if `b` starts with the magic
/// and a length in range.
pub(super) fn claimed_len(b: &[u8]) -> Option<usize> {
    if b.get(..4)? != MAGIC {
        return None;
    }
    let n = u32::from_le_bytes(b.get(4..8)?.try_into().ok()?) as usize;
    (OVERHEAD..=RECORD_MAX).contains(&n).then_some(n)
}

/// Decodes the record that is exactly `b`, if it is whole and valid.
pub(super) fn decode(b: &[u8]) -> Option<PackRecord<'_>> {
    let n = claimed_len(b)?;
    let sum = u64::from_le_bytes(b.get(n.checked_sub(8)?..)?.try_into().ok()?);
    if sum != xxh3_64(b.get(..n - 8)?) {
        return None;
    }
    parse(b)
}

/// Reads the framing of the record that is exactly `b` without checking its
/// checksum: for a lookup of a record the scan already checked, whose meta
/// bytes carry their own checksum (so the bytes are hashed once per hit).
pub(super) fn parse(b: &[u8]) -> Option<PackRecord<'_>> {
    let n = claimed_len(b)?;
    if n != b.len() || b.get(9..12)? != [0, 0, 0] {
        return None;
    }
    let op = match b[8] {
        1 => PackOp::Put,
        2 => PackOp::Remove,
        3 => PackOp::RemoveNs,
        _ => return None,
    };
    let meta = b.get(HEAD..n - 8)?;
    if op != PackOp::Put && !meta.is_empty() {
        return None;
    }
    let (ns, key) = header_id(b)?;
    Some(PackRecord { op, ns, key, meta })
}

/// The (namespace id, key) a record header at the start of `b` names, if
/// `b` starts with the magic and is long enough (nothing else checked).
pub(super) fn header_id(b: &[u8]) -> Option<super::index::Id> {
    if b.get(..4)? != MAGIC {
        return None;
    }
    Some((
        b.get(12..28)?.try_into().ok()?,
        b.get(28..60)?.try_into().ok()?,
    ))
}

/// What a scan of bytes found.
#[derive(Debug, Default)]
pub(super) struct Scan {
    /// Offset (relative to the scanned bytes) just past the last valid
    /// record; bytes after it are a torn or damaged tail (or a record
    /// still being written).
    pub(super) valid_end: usize,
    /// Bytes skipped as damage before `valid_end`.
    pub(super) damaged: usize,
}

/// Scans `b`, calling `each(offset, record length, record)` for every valid
/// record in order. A damaged record is skipped: the scan resynchronizes
/// on the next magic that starts a valid record.
pub(super) fn scan<'a>(b: &'a [u8], mut each: impl FnMut(usize, usize, &PackRecord<'a>)) -> Scan {
    let mut at = 0;
    let mut scan = Scan::default();
    let mut bad_from: Option<usize> = None;
    while at + OVERHEAD <= b.len() {
        let rec = claimed_len(&b[at..])
            .and_then(|n| b.get(at..at + n))
            .and_then(decode);
        match rec {
            Some(r) => {
                if let Some(from) = bad_from.take() {
                    scan.damaged += at - from;
                }
                let n = OVERHEAD + r.meta.len();
                each(at, n, &r);
                at += n;
                scan.valid_end = at;
            }
            None => {
                bad_from.get_or_insert(at);
                // The next possible start of a record.
                at = match b.get(at + 1..).and_then(find_magic) {
                    Some(i) => at + 1 + i,
                    None => break,
                };
            }
        }
    }
    scan
}

fn find_magic(b: &[u8]) -> Option<usize> {
    b.windows(4).position(|w| w == MAGIC)
}

/// Where a live record lies in its pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Slot {
    pub(super) offset: u64,
    pub(super) len: u32,
}

/// The live records of one pack, as a process knows them: built by a scan
/// and caught up by scanning the bytes appended since.
#[derive(Debug, Default)]
pub(super) struct PackMap {
    pub(super) live: HashMap<Id, Slot>,
    /// Bytes of the records in `live`.
    pub(super) live_bytes: u64,
    /// Everything up to here has been scanned (the end of the last valid
    /// record seen).
    pub(super) scanned: u64,
    /// Damaged bytes met so far.
    pub(super) damaged: u64,
    /// The pack's length when what lies past `scanned` was found to be a
    /// run of damage too long to read through: not read again until the
    /// length changes.
    pub(super) tail_at: Option<u64>,
}

impl PackMap {
    /// Applies the bytes `b`, read at offset `base` of the pack: at
    /// `self.scanned`, or past it when what lies between holds no whole
    /// record.
    pub(super) fn feed(&mut self, base: u64, b: &[u8]) {
        let live = &mut self.live;
        let live_bytes = &mut self.live_bytes;
        let s = scan(b, |at, n, r| {
            let id = (r.ns, r.key);
            match r.op {
                PackOp::Put => {
                    let slot = Slot {
                        offset: base + at as u64,
                        len: n as u32,
                    };
                    if let Some(old) = live.insert(id, slot) {
                        *live_bytes -= u64::from(old.len);
                    }
                    *live_bytes += n as u64;
                }
                PackOp::Remove => {
                    if let Some(old) = live.remove(&id) {
                        *live_bytes -= u64::from(old.len);
                    }
                }
                PackOp::RemoveNs => {
                    live.retain(|(ns, _), slot| {
                        let keep = *ns != r.ns;
                        if !keep {
                            *live_bytes -= u64::from(slot.len);
                        }
                        keep
                    });
                }
            }
        });
        self.damaged += s.damaged as u64;
        self.scanned = base + s.valid_end as u64;
        if s.valid_end > 0 {
            // A record past the tail seen before (an append that cut it): the
            // length the tail was seen at says nothing any more.
            self.tail_at = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn op(n: u8) -> PackOp {
        [PackOp::Put, PackOp::Remove, PackOp::RemoveNs][usize::from(n % 3)]
    }

    fn rec(op: PackOp, ns: [u8; 16], key: [u8; 32], meta: &[u8]) -> Vec<u8> {
        let meta = if op == PackOp::Put { meta } else { &[] };
        encode(op, &ns, &key, meta)
    }

    #[test]
    fn a_record_round_trips_and_every_flip_is_detected() {
        let b = encode(PackOp::Put, &[1; 16], &[2; 32], b"meta bytes");
        let r = decode(&b).unwrap();
        assert_eq!(
            (r.op, r.ns, r.key, r.meta),
            (PackOp::Put, [1; 16], [2; 32], &b"meta bytes"[..])
        );
        for i in 0..b.len() {
            let mut c = b.clone();
            c[i] ^= 0x04;
            assert!(decode(&c).is_none(), "flip at {i}");
        }
        for n in 0..b.len() {
            assert!(decode(&b[..n]).is_none(), "cut to {n}");
        }
    }

    #[test]
    fn a_scan_skips_damage_and_stops_at_a_torn_tail() {
        let a = encode(PackOp::Put, &[1; 16], &[1; 32], b"aaaa");
        let c = encode(PackOp::Put, &[1; 16], &[3; 32], b"cccc");
        let mut b = a.clone();
        let mut damaged = encode(PackOp::Put, &[1; 16], &[2; 32], b"bbbb");
        damaged[HEAD] ^= 1;
        b.extend_from_slice(&damaged);
        b.extend_from_slice(&c);
        let whole = b.len();
        b.extend_from_slice(&c[..c.len() - 3]);
        b.extend_from_slice(&[0; 100]);
        let mut keys = Vec::new();
        let s = scan(&b, |_, _, r| keys.push(r.key[0]));
        assert_eq!(keys, vec![1, 3]);
        assert_eq!(s.valid_end, whole);
        assert_eq!(s.damaged, damaged.len());
    }

    proptest! {
        #[test]
        fn records_round_trip(n: u8, ns: [u8; 16], key: [u8; 32],
                              meta in proptest::collection::vec(any::<u8>(), 0..300)) {
            let b = rec(op(n), ns, key, &meta);
            let r = decode(&b).unwrap();
            prop_assert_eq!(r.op, op(n));
            prop_assert_eq!(r.ns, ns);
            prop_assert_eq!(r.key, key);
            prop_assert_eq!(r.meta, if op(n) == PackOp::Put { &meta[..] } else { &[][..] });
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = decode(&b);
            let mut with_magic = MAGIC.to_vec();
            with_magic.extend_from_slice(&b);
            let _ = decode(&with_magic);
            let _ = scan(&with_magic, |_, _, _| {});
            let mut m = PackMap::default();
            m.feed(0, &with_magic);
        }

        /// Records written, then a torn or garbled tail: the scan yields
        /// exactly the records written before the damage, in order, and
        /// nothing that was not written.
        #[test]
        fn a_torn_or_garbled_tail_yields_only_written_records(
            recs in proptest::collection::vec((any::<u8>(), any::<[u8; 16]>(), any::<[u8; 32]>(),
                proptest::collection::vec(any::<u8>(), 0..64)), 1..8),
            cut in any::<proptest::sample::Index>(),
            garbage in proptest::collection::vec(any::<u8>(), 0..200),
            zeros in 0usize..200,
        ) {
            let encoded: Vec<Vec<u8>> = recs.iter().map(|(n, ns, k, m)| rec(op(*n), *ns, *k, m)).collect();
            let mut b: Vec<u8> = encoded.concat();
            let keep = cut.index(b.len() + 1);
            b.truncate(keep);
            b.extend_from_slice(&garbage);
            b.extend(std::iter::repeat_n(0u8, zeros));
            let mut seen = Vec::new();
            scan(&b, |at, n, _| seen.push(b[at..at + n].to_vec()));
            // Whole records before the cut come first, in order.
            let mut whole = Vec::new();
            let mut end = 0;
            for e in &encoded {
                if end + e.len() > keep {
                    break;
                }
                whole.push(e.clone());
                end += e.len();
            }
            prop_assert!(seen.len() >= whole.len());
            prop_assert_eq!(&seen[..whole.len()], &whole[..]);
            // Anything more must be a record that was written (a garbled tail
            // cannot forge a checksum) or one the garbage itself encodes.
            for extra in &seen[whole.len()..] {
                let in_garbage = garbage.windows(extra.len()).any(|w| w == &extra[..]);
                prop_assert!(encoded.contains(extra) || in_garbage);
            }
        }

        /// The map of a pack is the set its records describe.
        #[test]
        fn the_map_is_the_set_the_records_describe(
            ops in proptest::collection::vec((0u8..3, 0u8..3, 0u8..4), 0..40),
            split in any::<proptest::sample::Index>(),
        ) {
            let mut bytes = Vec::new();
            let mut model: HashMap<Id, usize> = HashMap::new();
            for (o, ns, k) in &ops {
                let (ns, key) = ([*ns; 16], [*k; 32]);
                let r = rec(op(*o), ns, key, &[*k; 5]);
                match op(*o) {
                    PackOp::Put => { model.insert((ns, key), bytes.len()); }
                    PackOp::Remove => { model.remove(&(ns, key)); }
                    PackOp::RemoveNs => model.retain(|(n, _), _| *n != ns),
                }
                bytes.extend_from_slice(&r);
            }
            // Fed in two pieces, as a reader catching up does.
            let mut m = PackMap::default();
            let at = split.index(bytes.len() + 1);
            m.feed(0, &bytes[..at]);
            let from = m.scanned as usize;
            m.feed(m.scanned, &bytes[from..]);
            prop_assert_eq!(m.scanned as usize, bytes.len());
            let got: HashMap<Id, usize> = m.live.iter().map(|(id, s)| (*id, s.offset as usize)).collect();
            prop_assert_eq!(got, model);
            let sum: u64 = m.live.values().map(|s| u64::from(s.len)).sum();
            prop_assert_eq!(m.live_bytes, sum);
        }
    }
}

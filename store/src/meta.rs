//! Entry metadata and its file format (`LAYOUT.md`, "The meta file").

use crate::api::WriteFn;
use crate::checksum::Xxh3;
use crate::error::{Result, StoreError};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Magic bytes at the start of every meta file.
pub(crate) const MAGIC: [u8; 8] = *b"JCSTMETA";
/// Version of the meta file format.
pub(crate) const META_VERSION: u16 = 1;
/// Size of the fixed header.
pub(crate) const HEADER_LEN: usize = 64;
/// Largest fields section accepted (writing and reading).
pub const FIELDS_MAX: usize = 1 << 20;
/// Payloads up to this many bytes are stored inside the meta file.
pub const INLINE_MAX: usize = 16 * 1024;
/// Largest meta file a reader accepts before allocating.
pub(crate) const META_FILE_MAX: u64 = (HEADER_LEN + FIELDS_MAX + INLINE_MAX) as u64;

const FLAG_INLINE: u16 = 1;

/// What the caller of `publish` tells about an entry besides its payload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewEntry {
    /// How long computing the value took.
    pub compute_duration: Duration,
    /// Free-form fields: function name, argument summary, captured output…
    /// Their encoded size is limited to [`FIELDS_MAX`] bytes in all.
    pub fields: BTreeMap<String, String>,
}

impl NewEntry {
    /// An entry description with a compute duration and no fields.
    pub fn new(compute_duration: Duration) -> Self {
        NewEntry {
            compute_duration,
            fields: BTreeMap::new(),
        }
    }

    /// Adds a free-form field (builder style).
    pub fn field(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.fields.insert(name.into(), value.into());
        self
    }

    /// Runs a publish's payload writer into memory, for a backend that
    /// holds the payload in memory when it publishes: the payload, and the
    /// metadata of this entry published now with it. A failed writer is a
    /// [`StoreError::Writer`].
    pub fn buffer(
        &self,
        namespace: &str,
        key: &str,
        write: WriteFn<'_>,
    ) -> Result<(Vec<u8>, EntryMeta)> {
        let mut payload = Vec::new();
        write(&mut payload).map_err(|source| StoreError::writer(namespace, key, source))?;
        let meta = self.meta_for(&payload);
        Ok((payload, meta))
    }

    fn meta_for(&self, payload: &[u8]) -> EntryMeta {
        let now = SystemTime::now();
        EntryMeta {
            created: now,
            last_access: now,
            payload_len: payload.len() as u64,
            checksum: payload_checksum(payload),
            compute_duration: self.compute_duration,
            fields: std::sync::Arc::new(self.fields.clone()),
        }
    }
}

/// The metadata of a stored entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryMeta {
    /// When the entry was published (the publisher's clock).
    pub created: SystemTime,
    /// Last recorded access; coarse (see `LAYOUT.md`, "Access times"): never
    /// earlier than `created`.
    pub last_access: SystemTime,
    /// Length of the payload in bytes.
    pub payload_len: u64,
    /// XXH3-64 of the payload bytes.
    pub checksum: u64,
    /// How long computing the value took.
    pub compute_duration: Duration,
    /// The free-form fields given at publish; shared, because a repeated
    /// hit of a record a process keeps hands out the same fields each time.
    pub fields: std::sync::Arc<BTreeMap<String, String>>,
}

/// The parts of a decoded meta file.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub meta: EntryMeta,
    /// Byte range of an inline payload within the file.
    pub inline: Option<std::ops::Range<usize>>,
}

pub(crate) fn to_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

pub(crate) fn from_nanos(n: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(n)
}

/// The size of the encoded fields section.
pub(crate) fn fields_len(fields: &BTreeMap<String, String>) -> usize {
    4 + fields
        .iter()
        .map(|(k, v)| 8 + k.len() + v.len())
        .sum::<usize>()
}

/// Encodes a meta file. The caller has checked `fields_len <= FIELDS_MAX`.
pub(crate) fn encode(
    entry: &NewEntry,
    created: SystemTime,
    payload_len: u64,
    checksum: u64,
    inline: Option<&[u8]>,
) -> Vec<u8> {
    let flen = fields_len(&entry.fields);
    let mut buf = Vec::with_capacity(HEADER_LEN + flen + inline.map_or(0, <[u8]>::len));
    buf.extend_from_slice(&MAGIC);
    buf.extend_from_slice(&META_VERSION.to_le_bytes());
    let flags = if inline.is_some() { FLAG_INLINE } else { 0 };
    buf.extend_from_slice(&flags.to_le_bytes());
    buf.extend_from_slice(&(flen as u32).to_le_bytes());
    buf.extend_from_slice(&payload_len.to_le_bytes());
    buf.extend_from_slice(&checksum.to_le_bytes());
    buf.extend_from_slice(&to_nanos(created).to_le_bytes());
    let compute = u64::try_from(entry.compute_duration.as_nanos()).unwrap_or(u64::MAX);
    buf.extend_from_slice(&compute.to_le_bytes());
    buf.extend_from_slice(&[0u8; 8]);
    buf.extend_from_slice(&[0u8; 8]); // checksum, filled below
    buf.extend_from_slice(&(entry.fields.len() as u32).to_le_bytes());
    for (k, v) in &entry.fields {
        buf.extend_from_slice(&(k.len() as u32).to_le_bytes());
        buf.extend_from_slice(k.as_bytes());
        buf.extend_from_slice(&(v.len() as u32).to_le_bytes());
        buf.extend_from_slice(v.as_bytes());
    }
    if let Some(payload) = inline {
        buf.extend_from_slice(payload);
    }
    let sum = meta_checksum(&buf);
    buf[56..64].copy_from_slice(&sum.to_le_bytes());
    buf
}

fn meta_checksum(buf: &[u8]) -> u64 {
    let mut h = Xxh3::new();
    h.update(buf.get(..56).unwrap_or_default());
    h.update(buf.get(HEADER_LEN..).unwrap_or_default());
    h.digest()
}

fn u16_at(buf: &[u8], at: usize) -> u16 {
    let mut b = [0u8; 2];
    if let Some(s) = buf.get(at..at + 2) {
        b.copy_from_slice(s);
    }
    u16::from_le_bytes(b)
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    if let Some(s) = buf.get(at..at + 4) {
        b.copy_from_slice(s);
    }
    u32::from_le_bytes(b)
}

fn u64_at(buf: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    if let Some(s) = buf.get(at..at + 8) {
        b.copy_from_slice(s);
    }
    u64::from_le_bytes(b)
}

/// Decodes and checks a meta file; the error says what did not match.
/// `last_access` is set to `created` (the caller fills in the real one).
pub(crate) fn decode(buf: &[u8]) -> Result<Decoded, String> {
    if buf.len() < HEADER_LEN {
        return Err(format!(
            "meta file has {} bytes, shorter than its {HEADER_LEN}-byte header",
            buf.len()
        ));
    }
    if buf.get(..8) != Some(&MAGIC[..]) {
        return Err("meta file does not start with JCSTMETA".into());
    }
    let version = u16_at(buf, 8);
    if version != META_VERSION {
        return Err(format!(
            "meta file version {version}, expected {META_VERSION}"
        ));
    }
    let flags = u16_at(buf, 10);
    if flags & !FLAG_INLINE != 0 {
        return Err(format!("unknown meta flags {flags:#x}"));
    }
    let flen = u32_at(buf, 12) as usize;
    let payload_len = u64_at(buf, 16);
    let checksum = u64_at(buf, 24);
    let created = u64_at(buf, 32);
    let compute = u64_at(buf, 40);
    let stored_sum = u64_at(buf, 56);
    if !(4..=FIELDS_MAX).contains(&flen) {
        return Err(format!("fields section of {flen} bytes is out of range"));
    }
    let inline = flags & FLAG_INLINE != 0;
    let inline_len = if inline {
        if payload_len > INLINE_MAX as u64 {
            return Err(format!("inline payload of {payload_len} bytes is too long"));
        }
        payload_len as usize
    } else {
        0
    };
    let expected = HEADER_LEN + flen + inline_len;
    if buf.len() != expected {
        return Err(format!(
            "meta file has {} bytes, its header says {expected}",
            buf.len()
        ));
    }
    let sum = meta_checksum(buf);
    if sum != stored_sum {
        return Err(format!(
            "meta checksum {sum:016x} does not match the recorded {stored_sum:016x}"
        ));
    }
    let fields = decode_fields(buf.get(HEADER_LEN..HEADER_LEN + flen).unwrap_or_default())?;
    let created = from_nanos(created);
    let start = HEADER_LEN + flen;
    Ok(Decoded {
        meta: EntryMeta {
            created,
            last_access: created,
            payload_len,
            checksum,
            compute_duration: Duration::from_nanos(compute),
            fields: fields.into(),
        },
        inline: inline.then_some(start..start + inline_len),
    })
}

fn decode_fields(sec: &[u8]) -> Result<BTreeMap<String, String>, String> {
    let count = u32_at(sec, 0) as usize;
    let mut at = 4;
    let take = |at: &mut usize| -> Result<String, String> {
        let overrun = || "a field overruns the fields section".to_string();
        let len_bytes = sec.get(*at..*at + 4).ok_or_else(overrun)?;
        let len = u32_at(len_bytes, 0) as usize;
        let start = *at + 4;
        let end = start.checked_add(len).ok_or_else(overrun)?;
        let bytes = sec.get(start..end).ok_or_else(overrun)?;
        *at = end;
        String::from_utf8(bytes.to_vec()).map_err(|_| "a field is not UTF-8".to_string())
    };
    let mut fields = BTreeMap::new();
    for _ in 0..count.min(sec.len() / 8) {
        let k = take(&mut at)?;
        let v = take(&mut at)?;
        fields.insert(k, v);
    }
    if fields.len() != count || at != sec.len() {
        return Err("fields section does not match its count".into());
    }
    Ok(fields)
}

/// XXH3-64 of a payload held in memory.
pub(crate) fn payload_checksum(bytes: &[u8]) -> u64 {
    crate::checksum::xxh3_64(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> NewEntry {
        NewEntry::new(Duration::from_millis(1500))
            .field("function", "my_crate::square")
            .field("stdout", "x".repeat(5000))
    }

    #[test]
    fn round_trip_with_inline_payload() {
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let buf = encode(&sample(), t, 3, payload_checksum(b"abc"), Some(b"abc"));
        let d = decode(&buf).unwrap();
        assert_eq!(*d.meta.fields, sample().fields);
        assert_eq!(d.meta.created, t);
        assert_eq!(d.meta.payload_len, 3);
        assert_eq!(d.meta.compute_duration, Duration::from_millis(1500));
        assert_eq!(&buf[d.inline.unwrap()], b"abc");
    }

    proptest::proptest! {

        #[test]
        fn prop_meta_round_trips(
            fields in proptest::collection::btree_map(".{0,8}", ".{0,300}", 0..6),
            payload in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
            inline in proptest::prelude::any::<bool>(),
            nanos in 0u64..u64::MAX / 2,
            compute in 0u64..u64::MAX,
        ) {
            let entry = NewEntry { compute_duration: Duration::from_nanos(compute), fields };
            let created = from_nanos(nanos);
            let sum = payload_checksum(&payload);
            let buf = encode(&entry, created, payload.len() as u64, sum, inline.then_some(&payload[..]));
            let d = decode(&buf).unwrap();
            proptest::prop_assert_eq!(&*d.meta.fields, &entry.fields);
            proptest::prop_assert_eq!(d.meta.created, created);
            proptest::prop_assert_eq!(d.meta.checksum, sum);
            proptest::prop_assert_eq!(d.meta.compute_duration, entry.compute_duration);
            proptest::prop_assert_eq!(d.inline.map(|r| buf[r].to_vec()), inline.then(|| payload.clone()));
        }

        #[test]
        fn prop_meta_decode_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let mut with_magic = MAGIC.to_vec();
            with_magic.extend_from_slice(&bytes);
            let _ = decode(&bytes);
            let _ = decode(&with_magic);
        }
    }

    /// Pins version 1 of the meta file byte for byte (LAYOUT.md).
    #[test]
    fn golden_meta_file_v1() {
        let entry = NewEntry::new(Duration::from_nanos(0x0102)).field("f", "sq");
        let created = from_nanos(0x0A0B_0C0D);
        let buf = encode(&entry, created, 3, payload_checksum(b"abc"), Some(b"abc"));
        let hex: String = buf.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, GOLDEN_V1);
        let d = decode(&buf).unwrap();
        assert_eq!(*d.meta.fields, entry.fields);
        assert_eq!(d.meta.created, created);
    }

    const GOLDEN_V1: &str = "4a4353544d455441010001000f000000030000000000000050392f89945faf780d0c0b0a00000000020100000000000000000000000000001e23aefdf0b5014a010000000100000066020000007371616263";

    #[test]
    fn every_byte_flip_and_truncation_is_detected() {
        let buf = encode(&sample(), SystemTime::now(), 3, 7, Some(b"abc"));
        for i in 0..buf.len() {
            let mut b = buf.clone();
            b[i] ^= 0x10;
            assert!(decode(&b).is_err(), "flip at {i}");
        }
        for n in 0..buf.len() {
            assert!(decode(&buf[..n]).is_err(), "truncated to {n}");
        }
    }
}

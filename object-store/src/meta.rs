//! The remote metadata object: one entry's [`EntryMeta`], its namespace and
//! key, and (for a small payload) the payload itself, sealed by a checksum.
//!
//! ```text
//! magic  "JCR1"              4 bytes (the format version is the last byte)
//! len    u32 little-endian   length of the JSON header
//! header JSON                see `Header`
//! inline payload bytes       `payload_len` bytes when `inline`, else none
//! sum    u64 little-endian   XXH3-64 (seed 0) of every byte before it
//! ```

pub(crate) use jobcache_store::checksum::{xxh3_64 as xxh3, Xxh3};
use jobcache_store::EntryMeta;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The magic bytes of a metadata object of this version.
pub(crate) const MAGIC: &[u8; 4] = b"JCR1";
/// Payloads up to this size live inside the metadata object.
pub(crate) const INLINE_MAX: u64 = 64 * 1024;
/// A metadata object larger than this is refused before it is parsed.
pub(crate) const META_MAX: u64 = INLINE_MAX + (2 << 20);

/// The JSON header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Header {
    pub namespace: String,
    pub key: String,
    /// Publisher's clock, nanoseconds since the Unix epoch.
    pub created_ns: u64,
    pub payload_len: u64,
    /// XXH3-64 of the payload, 16 lowercase hex digits.
    pub checksum: String,
    pub compute_ns: u64,
    pub fields: BTreeMap<String, String>,
    /// Whether the payload follows the header in this object.
    pub inline: bool,
}

/// A decoded metadata object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decoded {
    pub header: Header,
    pub meta: EntryMeta,
    pub inline: Option<Vec<u8>>,
}

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The header for an entry.
pub(crate) fn header(namespace: &str, key: &str, meta: &EntryMeta, inline: bool) -> Header {
    Header {
        namespace: namespace.to_string(),
        key: key.to_string(),
        created_ns: nanos(meta.created),
        payload_len: meta.payload_len,
        checksum: format!("{:016x}", meta.checksum),
        compute_ns: u64::try_from(meta.compute_duration.as_nanos()).unwrap_or(u64::MAX),
        fields: (*meta.fields).clone(),
        inline,
    }
}

/// Encodes a metadata object; `inline` is the payload when it is kept inside.
pub(crate) fn encode(header: &Header, inline: Option<&[u8]>) -> Result<Vec<u8>, String> {
    let json = serde_json::to_vec(header).map_err(|e| e.to_string())?;
    let len = u32::try_from(json.len()).map_err(|_| "metadata header too large".to_string())?;
    let mut out = Vec::with_capacity(json.len() + 16 + inline.map_or(0, <[u8]>::len));
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&json);
    if let Some(bytes) = inline {
        out.extend_from_slice(bytes);
    }
    let sum = xxh3(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    Ok(out)
}

/// Decodes a metadata object; every length and checksum is checked, so
/// arbitrary bytes give an error, never a panic.
pub(crate) fn decode(bytes: &[u8]) -> Result<Decoded, String> {
    if bytes.len() < 16 {
        return Err(format!(
            "metadata object of {} bytes is truncated",
            bytes.len()
        ));
    }
    let (body, sum) = bytes.split_at(bytes.len() - 8);
    if body.get(..3) != Some(&MAGIC[..3]) {
        return Err("not a jobcache metadata object (bad magic)".into());
    }
    if body.get(..4) != Some(&MAGIC[..]) {
        return Err(format!(
            "metadata object version {:?} is not supported (expected 1)",
            body.get(3).map(|b| *b as char)
        ));
    }
    let recorded = u64::from_le_bytes(sum.try_into().map_err(|_| "bad trailer".to_string())?);
    let actual = xxh3(body);
    if recorded != actual {
        return Err(format!(
            "metadata checksum {actual:016x} does not match the recorded {recorded:016x}"
        ));
    }
    let len_bytes: [u8; 4] = body
        .get(4..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| "truncated header length".to_string())?;
    let len = u32::from_le_bytes(len_bytes) as usize;
    let json = body
        .get(8..8usize.saturating_add(len))
        .ok_or_else(|| "header length runs past the object".to_string())?;
    let header: Header = serde_json::from_slice(json).map_err(|e| format!("bad header: {e}"))?;
    let rest = body.get(8 + len..).unwrap_or_default();
    let checksum = u64::from_str_radix(&header.checksum, 16)
        .map_err(|_| format!("bad payload checksum {:?}", header.checksum))?;
    let inline = if header.inline {
        if rest.len() as u64 != header.payload_len {
            return Err(format!(
                "inline payload has {} bytes, the header records {}",
                rest.len(),
                header.payload_len
            ));
        }
        if xxh3(rest) != checksum {
            return Err("inline payload does not match its checksum".into());
        }
        Some(rest.to_vec())
    } else {
        if !rest.is_empty() {
            return Err(format!("{} unexpected bytes after the header", rest.len()));
        }
        None
    };
    let created = UNIX_EPOCH + Duration::from_nanos(header.created_ns);
    let meta = EntryMeta {
        created,
        last_access: created,
        payload_len: header.payload_len,
        checksum,
        compute_duration: Duration::from_nanos(header.compute_ns),
        fields: header.fields.clone().into(),
    };
    Ok(Decoded {
        header,
        meta,
        inline,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample(payload: &[u8], inline: bool) -> (Header, Vec<u8>) {
        let meta = EntryMeta {
            created: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            last_access: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            payload_len: payload.len() as u64,
            checksum: xxh3(payload),
            compute_duration: Duration::from_millis(12),
            fields: std::sync::Arc::new([("function".to_string(), "f".to_string())].into()),
        };
        let h = header("my::ns", &"ab".repeat(32), &meta, inline);
        let bytes = encode(&h, inline.then_some(payload)).unwrap();
        (h, bytes)
    }

    #[test]
    fn round_trips_inline_and_not() {
        for inline in [true, false] {
            let (h, bytes) = sample(b"the value", inline);
            let d = decode(&bytes).unwrap();
            assert_eq!(d.header, h);
            assert_eq!(d.inline.as_deref(), inline.then_some(&b"the value"[..]));
            assert_eq!(d.meta.payload_len, 9);
        }
    }

    #[test]
    fn any_flipped_bit_or_cut_is_caught() {
        let (_, bytes) = sample(b"some payload bytes", true);
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            assert!(decode(&b).is_err(), "flip at {i}");
            assert!(decode(&bytes[..i]).is_err(), "cut at {i}");
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn round_trip(payload in proptest::collection::vec(any::<u8>(), 0..512), inline: bool) {
            let (h, bytes) = sample(&payload, inline);
            let d = decode(&bytes).unwrap();
            prop_assert_eq!(d.header, h);
            if inline {
                prop_assert_eq!(d.inline, Some(payload));
            }
        }
    }
}

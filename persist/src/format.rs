//! The container's fixed structures: header, trailer, segment table (see
//! FORMAT.md, which this module implements byte for byte).

use std::path::Path;

use xxhash_rust::xxh3::Xxh3;

use crate::check::data_len;
use crate::element::DType;
use crate::error::{Error, Result};
use crate::io::{Region, Source};

/// First eight bytes of every container file.
pub(crate) const MAGIC: [u8; 8] = *b"\x89JCPRS\r\n";
/// Last eight bytes of every container file.
pub(crate) const END_MAGIC: [u8; 8] = *b"JCPRSEND";
/// The format version of files without compression (written byte for byte
/// as before compression existed).
pub(crate) const VERSION: u32 = 1;
/// The format version of files with zstd segments or body.
pub(crate) const VERSION_ZSTD: u32 = 2;
pub(crate) const HEADER_LEN: u64 = 64;
pub(crate) const TRAILER_LEN: u64 = 64;
pub(crate) const ALIGN: u64 = 64;
/// Fixed part of a table entry; `ndim` dimensions of 8 bytes follow.
const ENTRY_FIXED: u64 = 32;
/// Arrays of more dimensions are refused (ndarray's fixed types stop at 6).
const MAX_NDIM: u32 = 64;

/// Rounds up to the next multiple of 64.
pub(crate) fn align_up(n: u64) -> u64 {
    n.div_ceil(ALIGN) * ALIGN
}

/// The 64-byte header of a file of `version`.
pub(crate) fn header(version: u32) -> [u8; 64] {
    let mut h = [0u8; 64];
    h[..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&version.to_le_bytes());
    h
}

/// Table entry codec codes (version 2).
pub(crate) const CODEC_RAW: u8 = 0;
/// Blocks of zstd frames and a directory (FORMAT.md).
pub(crate) const CODEC_ZSTD: u8 = 1;

/// One stored array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) offset: u64,
    pub(crate) len: u64,
    pub(crate) checksum: u64,
    /// `None` for an empty array whose element type was never seen.
    pub(crate) dtype: Option<DType>,
    /// ndarray's serde format version, handed back on load.
    pub(crate) version: u8,
    pub(crate) dims: Vec<u64>,
    /// [`CODEC_RAW`] or [`CODEC_ZSTD`].
    pub(crate) codec: u8,
    /// Bytes stored (without padding): `len` for a raw segment.
    pub(crate) stored: u64,
}

impl Entry {
    /// Whether the segment is zstd blocks (it cannot be viewed in place).
    pub(crate) fn compressed(&self) -> bool {
        self.codec == CODEC_ZSTD
    }

    pub(crate) fn padding(&self) -> usize {
        (align_up(self.stored) - self.stored) as usize
    }

    /// What to check when reading this entry, array `index`, of `path`.
    pub(crate) fn region<'p>(&self, index: usize, path: &'p Path) -> Region<'p> {
        Region {
            path,
            offset: self.offset,
            padding: self.padding(),
            checksum: Some((self.checksum, format!("array {index}"))),
            crc32: None,
            big_endian: false,
        }
    }

    fn encode(&self, out: &mut Vec<u8>, version: u32) {
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(&self.len.to_le_bytes());
        out.extend_from_slice(&self.checksum.to_le_bytes());
        out.push(self.dtype.map_or(0, DType::code));
        out.push(self.version);
        out.extend_from_slice(&[self.codec, 0]);
        out.extend_from_slice(&(self.dims.len() as u32).to_le_bytes());
        if version >= VERSION_ZSTD {
            out.extend_from_slice(&self.stored.to_le_bytes());
        }
        for d in &self.dims {
            out.extend_from_slice(&d.to_le_bytes());
        }
    }
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        x.copy_from_slice(s);
    }
    u64::from_le_bytes(x)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut x = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        x.copy_from_slice(s);
    }
    u32::from_le_bytes(x)
}

/// Builds the end of a file: table, padding and trailer, given the body and
/// where it starts. Returns the bytes to append. `body_raw_len` is the
/// length of a zstd-compressed body once decompressed (version 2), 0 for a
/// body stored as is.
pub(crate) fn finish(
    body: &[u8],
    body_offset: u64,
    entries: &[Entry],
    version: u32,
    body_raw_len: u64,
) -> Vec<u8> {
    let mut tail = Vec::with_capacity(entries.len() * 56 + 128);
    for e in entries {
        e.encode(&mut tail, version);
    }
    let table_len = tail.len() as u64;
    let end = body_offset + body.len() as u64 + table_len;
    tail.resize(tail.len() + (align_up(end) - end) as usize, 0);
    let file_len = align_up(end) + TRAILER_LEN;
    let mut trailer = [0u8; 64];
    trailer[0..8].copy_from_slice(&body_offset.to_le_bytes());
    trailer[8..16].copy_from_slice(&(body.len() as u64).to_le_bytes());
    trailer[16..24].copy_from_slice(&table_len.to_le_bytes());
    trailer[24..32].copy_from_slice(&(entries.len() as u64).to_le_bytes());
    trailer[32..40].copy_from_slice(&file_len.to_le_bytes());
    trailer[40..48].copy_from_slice(&body_raw_len.to_le_bytes());
    let mut h = Xxh3::new();
    h.update(&header(version));
    h.update(body);
    h.update(&tail);
    h.update(&trailer[..48]);
    trailer[48..56].copy_from_slice(&h.digest().to_le_bytes());
    trailer[56..64].copy_from_slice(&END_MAGIC);
    tail.extend_from_slice(&trailer);
    tail
}

/// The parsed, checked metadata of a container file.
#[derive(Debug)]
pub(crate) struct Layout {
    pub(crate) version: u32,
    pub(crate) body: Vec<u8>,
    pub(crate) entries: Vec<Entry>,
}

impl Layout {
    /// Reads and checks header, trailer, body and table; the metadata
    /// checksum is verified before anything is parsed. Segments are not
    /// read. Every allocation is bounded by `file_len`, and one that the
    /// allocator refuses (a file of holes has a length, not the bytes) is
    /// an error.
    pub(crate) fn read(src: Source<'_>, file_len: u64, path: &Path) -> Result<Layout> {
        let io = |e| Error::io(path, "reading", e);
        if file_len < HEADER_LEN + TRAILER_LEN {
            let mut start = vec![0u8; file_len.min(8) as usize];
            src.read_at(0, &mut start).map_err(io)?;
            if !MAGIC.starts_with(&start) {
                return Err(bad_magic(path, start));
            }
            return Err(Error::truncated(
                path,
                "header and trailer",
                HEADER_LEN + TRAILER_LEN,
                file_len,
            ));
        }
        let mut head = [0u8; 64];
        src.read_at(0, &mut head).map_err(io)?;
        if head[..8] != MAGIC {
            return Err(bad_magic(path, head[..8].to_vec()));
        }
        let version = u32_at(&head, 8);
        if version != VERSION && version != VERSION_ZSTD {
            return Err(Error::UnsupportedVersion {
                path: path.to_path_buf(),
                format: "jobcache-persist container",
                found: version.to_string(),
                supported: "1 and 2",
            });
        }
        let mut trailer = [0u8; 64];
        let trailer_at = file_len - TRAILER_LEN;
        src.read_at(trailer_at, &mut trailer).map_err(io)?;
        if trailer[56..] != END_MAGIC {
            return Err(Error::malformed(
                path,
                "trailer",
                format!("{END_MAGIC:02x?} at the end of the file"),
                format!("{:02x?} (truncated or appended to?)", &trailer[56..]),
            ));
        }
        let body_offset = u64_at(&trailer, 0);
        let body_len = u64_at(&trailer, 8);
        let table_len = u64_at(&trailer, 16);
        let count = u64_at(&trailer, 24);
        let claimed_len = u64_at(&trailer, 32);
        let stored_sum = u64_at(&trailer, 48);
        if claimed_len != file_len {
            return Err(Error::truncated(
                path,
                "the length recorded in the trailer",
                claimed_len,
                file_len,
            ));
        }
        body_offset
            .checked_add(body_len)
            .and_then(|x| x.checked_add(table_len))
            .filter(|&end| {
                body_offset >= HEADER_LEN
                    && body_offset.is_multiple_of(ALIGN)
                    && align_up(end) == trailer_at
            })
            .ok_or_else(|| {
                Error::malformed(
                    path,
                    "trailer",
                    format!("a body and table ending 64-byte aligned at {trailer_at}"),
                    format!(
                        "body at {body_offset} of {body_len} bytes, table of {table_len} bytes"
                    ),
                )
            })?;
        let mut meta = crate::io::zeroed_bytes(
            trailer_at - body_offset,
            path,
            "allocating the body and table",
        )?;
        src.read_at(body_offset, &mut meta).map_err(io)?;
        let mut h = Xxh3::new();
        h.update(&head);
        h.update(&meta);
        h.update(&trailer[..48]);
        let found = h.digest();
        if found != stored_sum {
            return Err(Error::ChecksumMismatch {
                path: path.to_path_buf(),
                region: "metadata (header, body and table)".into(),
                expected: stored_sum,
                found,
            });
        }
        let body_raw_len = u64_at(&trailer, 40);
        if head[12..].iter().any(|&b| b != 0) || (version == VERSION && body_raw_len != 0) {
            return Err(Error::malformed(
                path,
                "reserved bytes",
                "zeros",
                "non-zero bytes",
            ));
        }
        let table = meta.split_off(body_len as usize);
        let body = if body_raw_len != 0 {
            crate::codec::decompress_body(&meta, body_raw_len, path)?
        } else {
            meta
        };
        if table[table_len as usize..].iter().any(|&b| b != 0) {
            return Err(Error::malformed(
                path,
                "table padding",
                "zeros",
                "non-zero bytes",
            ));
        }
        let entries = parse_table(
            &table[..table_len as usize],
            count,
            body_offset,
            version,
            path,
        )?;
        Ok(Layout {
            version,
            body,
            entries,
        })
    }
}

fn bad_magic(path: &Path, found: Vec<u8>) -> Error {
    Error::BadMagic {
        path: path.to_path_buf(),
        expected: "jobcache-persist container",
        found,
    }
}

fn parse_table(
    table: &[u8],
    count: u64,
    body_offset: u64,
    format_version: u32,
    path: &Path,
) -> Result<Vec<Entry>> {
    let fixed_len = if format_version >= VERSION_ZSTD {
        ENTRY_FIXED + 8
    } else {
        ENTRY_FIXED
    };
    if count > table.len() as u64 / fixed_len {
        return Err(Error::malformed(
            path,
            "segment count",
            format!(
                "at most {} for a table of {} bytes",
                table.len() as u64 / fixed_len,
                table.len()
            ),
            count,
        ));
    }
    let mut entries = Vec::with_capacity(count as usize);
    let mut at = 0usize;
    let mut next_offset = HEADER_LEN;
    for i in 0..count {
        let fixed = table.get(at..at + fixed_len as usize).ok_or_else(|| {
            Error::malformed(path, "segment table", format!("entry {i}"), "end of table")
        })?;
        let offset = u64_at(fixed, 0);
        let len = u64_at(fixed, 8);
        let checksum = u64_at(fixed, 16);
        let code = fixed[24];
        let version = fixed[25];
        let codec = if format_version >= VERSION_ZSTD {
            fixed[26]
        } else {
            0
        };
        let reserved = [fixed[26] - codec, fixed[27]];
        let ndim = u32_at(fixed, 28);
        let stored = if format_version >= VERSION_ZSTD {
            u64_at(fixed, 32)
        } else {
            len
        };
        if codec > CODEC_ZSTD || (codec == CODEC_RAW && stored != len) {
            return Err(Error::malformed(
                path,
                "segment codec",
                format!("array {i}: codec 0 (raw, stored length = length) or 1 (zstd)"),
                format!("codec {codec}, {stored} bytes stored for {len}"),
            ));
        }
        if reserved != [0, 0] {
            return Err(Error::malformed(
                path,
                "segment table reserved bytes",
                "zeros",
                format!("{reserved:?}"),
            ));
        }
        if ndim > MAX_NDIM {
            return Err(Error::malformed(
                path,
                "array rank",
                format!("at most {MAX_NDIM}"),
                ndim,
            ));
        }
        at += fixed_len as usize;
        let dims_bytes = table.get(at..at + 8 * ndim as usize).ok_or_else(|| {
            Error::malformed(
                path,
                "segment table",
                format!("{ndim} dimensions for entry {i}"),
                "end of table",
            )
        })?;
        at += 8 * ndim as usize;
        let dims: Vec<u64> = (0..ndim as usize)
            .map(|k| u64_at(dims_bytes, 8 * k))
            .collect();
        let dtype = match code {
            0 => None,
            c => Some(DType::from_code(c).ok_or_else(|| Error::UnknownDtype {
                path: path.to_path_buf(),
                found: format!("code {c}"),
            })?),
        };
        // Code 0 is counted as one byte per element: the shape passes the
        // same check as any other, and must then hold no element.
        let expected_len = data_len(&dims, dtype.map_or(1, |d| d.size() as u64), path)?;
        if dtype.is_none() && expected_len != 0 {
            return Err(Error::malformed(
                path,
                "array element type",
                "a dtype code for a non-empty array",
                "code 0",
            ));
        }
        if len != expected_len || offset != next_offset {
            return Err(Error::malformed(
                path,
                "segment table",
                format!("array {i} at offset {next_offset} with {expected_len} bytes"),
                format!("offset {offset} with {len} bytes"),
            ));
        }
        next_offset = offset
            .checked_add(align_up(stored.min(u64::MAX - 64)))
            .ok_or_else(|| Error::truncated(path, format!("array {i}"), u64::MAX, body_offset))?;
        if next_offset > body_offset {
            return Err(Error::truncated(
                path,
                format!("array {i}"),
                next_offset,
                body_offset,
            ));
        }
        entries.push(Entry {
            offset,
            len,
            checksum,
            dtype,
            version,
            dims,
            codec,
            stored,
        });
    }
    if at != table.len() || next_offset != body_offset {
        return Err(Error::malformed(
            path,
            "segment table",
            format!(
                "{} bytes of entries ending at body offset {body_offset}",
                table.len()
            ),
            format!("{at} bytes ending at {next_offset}"),
        ));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn align_and_header() {
        assert_eq!(align_up(0), 0);
        assert_eq!(align_up(1), 64);
        assert_eq!(align_up(64), 64);
        assert_eq!(align_up(65), 128);
        let h = header(VERSION);
        assert_eq!(&h[..8], b"\x89JCPRS\r\n");
        assert_eq!(u32_at(&h, 8), 1);
    }

    #[test]
    fn finish_and_read_agree() {
        let entries = vec![Entry {
            offset: 64,
            len: 24,
            checksum: xxhash_rust::xxh3::xxh3_64(
                &xxhash_rust::xxh3::xxh3_64(&[0u8; 64]).to_le_bytes(),
            ),
            dtype: Some(DType::F64),
            version: 1,
            dims: vec![3],
            codec: CODEC_RAW,
            stored: 24,
        }];
        let mut file = header(VERSION).to_vec();
        file.extend_from_slice(&[0u8; 64]);
        let body = [0u8];
        file.extend_from_slice(&body);
        let tail = finish(&body, 128, &entries, VERSION, 0);
        file.extend_from_slice(&tail);
        assert_eq!(file.len() % 64, 0);
        let layout = Layout::read(Source::Bytes(&file), file.len() as u64, Path::new("t")).unwrap();
        assert_eq!(layout.entries, entries);
        assert_eq!(layout.body, body);
    }
}

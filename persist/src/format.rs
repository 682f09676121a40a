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
/// The format version this build writes and reads.
pub(crate) const VERSION: u32 = 1;
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

/// The 64-byte header.
pub(crate) fn header() -> [u8; 64] {
    let mut h = [0u8; 64];
    h[..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h
}

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
}

impl Entry {
    pub(crate) fn padding(&self) -> usize {
        (align_up(self.len) - self.len) as usize
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

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(&self.len.to_le_bytes());
        out.extend_from_slice(&self.checksum.to_le_bytes());
        out.push(self.dtype.map_or(0, DType::code));
        out.push(self.version);
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&(self.dims.len() as u32).to_le_bytes());
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
/// where it starts. Returns the bytes to append.
pub(crate) fn finish(body: &[u8], body_offset: u64, entries: &[Entry]) -> Vec<u8> {
    let mut tail = Vec::with_capacity(entries.len() * 48 + 128);
    for e in entries {
        e.encode(&mut tail);
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
    let mut h = Xxh3::new();
    h.update(&header());
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
    /// read. Every allocation is bounded by `file_len`, the real size.
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
        if version != VERSION {
            return Err(Error::UnsupportedVersion {
                path: path.to_path_buf(),
                format: "jobcache-persist container",
                found: version.to_string(),
                supported: "1",
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
        let mut meta = vec![0u8; (trailer_at - body_offset) as usize];
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
        if head[12..].iter().any(|&b| b != 0) || trailer[40..48].iter().any(|&b| b != 0) {
            return Err(Error::malformed(
                path,
                "reserved bytes",
                "zeros",
                "non-zero bytes",
            ));
        }
        let table = meta.split_off(body_len as usize);
        let body = meta;
        if table[table_len as usize..].iter().any(|&b| b != 0) {
            return Err(Error::malformed(
                path,
                "table padding",
                "zeros",
                "non-zero bytes",
            ));
        }
        let entries = parse_table(&table[..table_len as usize], count, body_offset, path)?;
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

fn parse_table(table: &[u8], count: u64, body_offset: u64, path: &Path) -> Result<Vec<Entry>> {
    if count > table.len() as u64 / ENTRY_FIXED {
        return Err(Error::malformed(
            path,
            "segment count",
            format!(
                "at most {} for a table of {} bytes",
                table.len() as u64 / ENTRY_FIXED,
                table.len()
            ),
            count,
        ));
    }
    let mut entries = Vec::with_capacity(count as usize);
    let mut at = 0usize;
    let mut next_offset = HEADER_LEN;
    for i in 0..count {
        let fixed = table.get(at..at + ENTRY_FIXED as usize).ok_or_else(|| {
            Error::malformed(path, "segment table", format!("entry {i}"), "end of table")
        })?;
        let offset = u64_at(fixed, 0);
        let len = u64_at(fixed, 8);
        let checksum = u64_at(fixed, 16);
        let code = fixed[24];
        let version = fixed[25];
        let reserved = [fixed[26], fixed[27]];
        let ndim = u32_at(fixed, 28);
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
        at += ENTRY_FIXED as usize;
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
        next_offset = offset + align_up(len);
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
        let h = header();
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
        }];
        let mut file = header().to_vec();
        file.extend_from_slice(&[0u8; 64]);
        let body = [0u8];
        file.extend_from_slice(&body);
        let tail = finish(&body, 128, &entries);
        file.extend_from_slice(&tail);
        assert_eq!(file.len() % 64, 0);
        let layout = Layout::read(Source::Bytes(&file), file.len() as u64, Path::new("t")).unwrap();
        assert_eq!(layout.entries, entries);
        assert_eq!(layout.body, body);
    }
}

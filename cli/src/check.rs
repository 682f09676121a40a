//! A read-only integrity check of one entry.
//!
//! The store's `Store::verify_all` removes (quarantines) every corrupt
//! entry it finds, but `jobcache verify` without `--fix` must only report.
//! This adapter checks what `verify_all` checks, per `store/LAYOUT.md`,
//! without changing anything: the metadata decodes (the store's `entries`
//! has already checked its checksum and fields), the payload has the
//! recorded length, and its XXH3-64 matches the recorded checksum. Inline
//! payloads are the `payload length` bytes after the fields section
//! (offset `64 + F`, where `F` is the little-endian `u32` at offset 12).

use crate::cache::{META_FILE, PAYLOAD_FILE};
use jobcache_store::EntryInfo;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use xxhash_rust::xxh3::Xxh3;

const HEADER_LEN: u64 = 64;
const FLAG_INLINE: u16 = 1;
const CHUNK: usize = 1 << 20;

/// The outcome of checking one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// Intact; the payload's length.
    Ok(u64),
    /// Damaged, and why.
    Corrupt(String),
    /// Removed by someone else while checking.
    Missing,
}

/// Checks the entry in `dir` described by `info`.
pub fn check_entry(dir: &Path, info: &EntryInfo) -> io::Result<Check> {
    let meta = match &info.meta {
        Ok(m) => m,
        Err(reason) => {
            return Ok(if dir.exists() {
                Check::Corrupt(format!("unreadable metadata: {reason}"))
            } else {
                Check::Missing
            })
        }
    };
    let meta_path = dir.join(META_FILE);
    let mut meta_file = match open_regular(&meta_path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Check::Missing),
        Err(e) => return Err(e),
    };
    let mut header = [0u8; HEADER_LEN as usize];
    if meta_file.read_exact(&mut header).is_err() {
        return Ok(Check::Corrupt(
            "metadata file shorter than its header".into(),
        ));
    }
    let flags = u16::from_le_bytes([header[10], header[11]]);
    let fields_len = u32::from_le_bytes([header[12], header[13], header[14], header[15]]);
    let mut hasher = Xxh3::new();
    let read = if flags & FLAG_INLINE != 0 {
        let start = HEADER_LEN + u64::from(fields_len);
        let file_len = meta_file.metadata()?.len();
        let expected = start.checked_add(meta.payload_len);
        if expected != Some(file_len) {
            return Ok(Check::Corrupt(format!(
                "metadata file has {file_len} bytes, its header announces {}",
                expected.map_or("more than 2^64".into(), |n| n.to_string())
            )));
        }
        meta_file.seek(SeekFrom::Start(start))?;
        hash_all(&mut meta_file, &mut hasher)?
    } else {
        let payload_path = dir.join(PAYLOAD_FILE);
        let mut f = match open_regular(&payload_path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(if meta_path.exists() {
                    Check::Corrupt("the payload file is missing".into())
                } else {
                    Check::Missing
                })
            }
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                return Ok(Check::Corrupt(e.to_string()))
            }
            Err(e) => return Err(e),
        };
        hash_all(&mut f, &mut hasher)?
    };
    if read != meta.payload_len {
        return Ok(Check::Corrupt(format!(
            "payload has {read} bytes, the metadata records {}",
            meta.payload_len
        )));
    }
    let sum = hasher.digest();
    if sum != meta.checksum {
        return Ok(Check::Corrupt(format!(
            "payload checksum {sum:016x} does not match the recorded {:016x}",
            meta.checksum
        )));
    }
    Ok(Check::Ok(read))
}

/// Opens a regular file, refusing symlinks (reported as `InvalidData`).
fn open_regular(path: &Path) -> io::Result<File> {
    let md = std::fs::symlink_metadata(path)?;
    if !md.file_type().is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is not a regular file", path.display()),
        ));
    }
    File::open(path)
}

fn hash_all(f: &mut File, hasher: &mut Xxh3) -> io::Result<u64> {
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(buf.get(..n).unwrap_or_default());
        total += n as u64;
    }
}

//! The zstd segment encoding (FORMAT.md, version 2): a segment's logical
//! bytes in 1 MiB blocks (the checksum's blocks), each an independent zstd
//! frame or stored raw when it does not shrink, followed by a directory of
//! one u32 per block. Blocks are compressed and decompressed on the threads
//! the raw paths use; checksums cover the logical (uncompressed) bytes.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{Error, Result};
use crate::format::Entry;
use crate::io::{combine, on_threads, threads_for, SegmentHasher, Source, CHUNK};

/// Directory flag: the block is a zstd frame (else stored raw).
const ZSTD_FLAG: u32 = 1 << 31;
/// A block is compressed only if it shrinks to this many 1/100ths or less.
const KEEP_PERCENT: usize = 97;
/// Compressed blocks waiting to be written, per compressing thread.
const QUEUE_PER_THREAD: usize = 4;
/// The probe of a block: this many slices of [`PROBE_SLICE`] bytes, spread
/// over the block, compressed together before the block itself.
const PROBE_SLICES: usize = 4;
/// Bytes in one slice of the probe.
const PROBE_SLICE: usize = 4096;
/// A probe that does not shrink to this many 1/100ths marks its block as
/// incompressible: it is stored raw without compressing it whole.
const PROBE_KEEP_PERCENT: usize = 99;

/// Compresses one block: `Some(frame)` when it shrinks enough, `None` to
/// store it raw. A block whose probe (a few KiB sampled across it) does not
/// shrink at all is stored raw at once, so incompressible data (random
/// floats, already-compressed bytes) costs a small fraction of a full
/// compression.
fn encode_block(c: &mut zstd::bulk::Compressor<'_>, block: &[u8]) -> Option<Vec<u8>> {
    if block.len() >= 4 * PROBE_SLICES * PROBE_SLICE {
        // One slice from the middle of each quarter of the block (not its
        // start, which periodic data would align with).
        let step = block.len() / PROBE_SLICES;
        let mut probe = Vec::with_capacity(PROBE_SLICES * PROBE_SLICE);
        for k in 0..PROBE_SLICES {
            let at = k * step + (step - PROBE_SLICE) / 2;
            probe.extend_from_slice(&block[at..at + PROBE_SLICE]);
        }
        match c.compress(&probe) {
            Ok(frame) if frame.len() * 100 < probe.len() * PROBE_KEEP_PERCENT => {}
            _ => return None,
        }
    }
    // A block that does not shrink (or that the library refuses) is stored
    // raw.
    let frame = c.compress(block).ok()?;
    (frame.len() * 100 <= block.len() * KEEP_PERCENT).then_some(frame)
}

/// Streams one segment's logical (little-endian) bytes as zstd blocks.
pub(crate) struct BlockWriter {
    level: i32,
    pending: Vec<u8>,
    directory: Vec<u32>,
    stored: u64,
    logical: u64,
    hasher: SegmentHasher,
}

impl BlockWriter {
    pub(crate) fn new(level: i32) -> Self {
        BlockWriter {
            level,
            pending: Vec::new(),
            directory: Vec::new(),
            stored: 0,
            logical: 0,
            hasher: SegmentHasher::new(),
        }
    }

    fn compressor(&self) -> io::Result<zstd::bulk::Compressor<'static>> {
        zstd::bulk::Compressor::new(self.level)
    }

    /// Writes one block (its frame, or the block itself when `frame` is
    /// `None`) and records it in the directory.
    fn emit(&mut self, out: &mut dyn Write, block: &[u8], frame: Option<&[u8]>) -> io::Result<()> {
        let (word, bytes) = match frame {
            Some(f) => (f.len() as u32 | ZSTD_FLAG, f),
            None => (block.len() as u32, block),
        };
        out.write_all(bytes)?;
        self.directory.push(word);
        self.stored += bytes.len() as u64;
        Ok(())
    }

    /// Appends logical bytes; whole blocks of large inputs are compressed
    /// on several threads while this one writes them out in order.
    pub(crate) fn write(&mut self, out: &mut dyn Write, mut bytes: &[u8]) -> io::Result<()> {
        self.logical += bytes.len() as u64;
        if !self.pending.is_empty() {
            let take = (CHUNK - self.pending.len()).min(bytes.len());
            self.hasher.update(&bytes[..take]);
            self.pending.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.pending.len() == CHUNK {
                let block = std::mem::take(&mut self.pending);
                let frame = encode_block(&mut self.compressor()?, &block);
                self.emit(out, &block, frame.as_deref())?;
            }
        }
        let whole = bytes.len() / CHUNK * CHUNK;
        let (blocks, rest) = bytes.split_at(whole);
        if threads_for(blocks.len()) > 1 {
            self.write_parallel(out, blocks)?;
        } else {
            let mut c = self.compressor()?;
            for block in blocks.chunks(CHUNK) {
                self.hasher.update(block);
                let frame = encode_block(&mut c, block);
                self.emit(out, block, frame.as_deref())?;
            }
        }
        self.hasher.update(rest);
        self.pending.extend_from_slice(rest);
        Ok(())
    }

    /// Whole blocks on several threads: each thread takes the next block,
    /// digests and compresses it, and queues the result; this thread writes
    /// the results in block order as they come, so compressing and writing
    /// overlap and no thread waits for a batch to end.
    fn write_parallel(&mut self, out: &mut dyn Write, blocks: &[u8]) -> io::Result<()> {
        type Done = io::Result<(usize, u64, Option<Vec<u8>>)>;
        let n = blocks.len() / CHUNK;
        let threads = threads_for(blocks.len());
        let next = AtomicUsize::new(0);
        let level = self.level;
        std::thread::scope(|scope| -> io::Result<()> {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Done>(threads * QUEUE_PER_THREAD);
            for _ in 0..threads {
                let (tx, next) = (tx.clone(), &next);
                scope.spawn(move || {
                    let mut c = match zstd::bulk::Compressor::new(level) {
                        Ok(c) => c,
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    };
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(block) = blocks.get(i * CHUNK..(i + 1) * CHUNK) else {
                            return;
                        };
                        let digest = xxhash_rust::xxh3::xxh3_64(block);
                        let frame = encode_block(&mut c, block);
                        if tx.send(Ok((i, digest, frame))).is_err() {
                            return;
                        }
                    }
                });
            }
            drop(tx);
            let mut waiting = BTreeMap::new();
            let mut want = 0;
            let written = (|| {
                for done in &rx {
                    let (i, digest, frame) = done?;
                    waiting.insert(i, (digest, frame));
                    while let Some((digest, frame)) = waiting.remove(&want) {
                        self.hasher.push_block_digest(digest);
                        let block = &blocks[want * CHUNK..(want + 1) * CHUNK];
                        self.emit(out, block, frame.as_deref())?;
                        want += 1;
                    }
                }
                if want == n {
                    Ok(())
                } else {
                    Err(io::Error::other("a compressing thread stopped early"))
                }
            })();
            // On an error, the threads stop at their next block (the
            // receiver is dropped when this closure returns).
            next.store(n, Ordering::Relaxed);
            written
        })
    }

    /// Writes the last block and the directory; returns the stored length
    /// (without padding), the logical length and the checksum of the logical
    /// bytes padded to 64.
    pub(crate) fn finish(mut self, out: &mut dyn Write) -> io::Result<(u64, u64, u64)> {
        if !self.pending.is_empty() {
            let block = std::mem::take(&mut self.pending);
            let frame = encode_block(&mut self.compressor()?, &block);
            self.emit(out, &block, frame.as_deref())?;
        }
        let pad = (crate::format::align_up(self.logical) - self.logical) as usize;
        self.hasher.update(&[0u8; 64][..pad]);
        let mut dir = Vec::with_capacity(self.directory.len() * 4);
        for w in &self.directory {
            dir.extend_from_slice(&w.to_le_bytes());
        }
        out.write_all(&dir)?;
        self.stored += dir.len() as u64;
        Ok((self.stored, self.logical, self.hasher.digest()))
    }
}

/// Where one stored block lies and what it decodes to.
struct Block {
    /// Absolute offset of its stored bytes.
    at: u64,
    stored: usize,
    zstd: bool,
}

/// Reads and checks a compressed segment's directory.
fn directory(
    src: Source<'_>,
    offset: u64,
    stored: u64,
    len: u64,
    path: &Path,
    what: &str,
) -> Result<Vec<Block>> {
    let blocks = len.div_ceil(CHUNK as u64);
    let dir_len = blocks
        .checked_mul(4)
        .filter(|&d| d <= stored)
        .ok_or_else(|| {
            Error::malformed(
                path,
                "zstd segment",
                format!("{what}: a directory of {blocks} blocks"),
                format!("{stored} stored bytes"),
            )
        })?;
    let mut dir = crate::io::zeroed_bytes(dir_len, path, "allocating a zstd segment directory")?;
    src.read_at(offset + stored - dir_len, &mut dir)
        .map_err(|e| Error::io(path, "reading a zstd segment directory", e))?;
    let mut out = Vec::with_capacity(blocks as usize);
    let mut at = offset;
    for (i, w) in dir.chunks_exact(4).enumerate() {
        let word = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        let size = (word & !ZSTD_FLAG) as usize;
        let zstd = word & ZSTD_FLAG != 0;
        let logical = CHUNK.min((len - (i * CHUNK) as u64) as usize);
        let ok = if zstd {
            size > 0 && size < logical
        } else {
            size == logical
        };
        if !ok {
            return Err(Error::malformed(
                path,
                "zstd segment directory",
                format!(
                    "{what}, block {i}: a stored size below {logical} (zstd) or equal to it (raw)"
                ),
                format!("{size} ({})", if zstd { "zstd" } else { "raw" }),
            ));
        }
        out.push(Block {
            at,
            stored: size,
            zstd,
        });
        at += size as u64;
    }
    if at != offset + stored - dir_len {
        return Err(Error::malformed(
            path,
            "zstd segment",
            format!("{what}: blocks filling {} bytes", stored - dir_len),
            format!("{} bytes", at - offset),
        ));
    }
    Ok(out)
}

/// Decompresses a zstd segment into `dest` (its logical bytes, exactly
/// `len` of them), on several threads for large segments, checking each
/// frame's declared size before decoding into place, then the checksum of
/// the logical bytes and padding, and the stored padding.
pub(crate) fn decode_into(
    src: Source<'_>,
    offset: u64,
    stored: u64,
    dest: &mut [u8],
    checksum: u64,
    path: &Path,
    what: &str,
) -> Result<()> {
    let len = dest.len() as u64;
    let blocks = directory(src, offset, stored, len, path, what)?;
    let pad = (crate::format::align_up(len) - len) as usize;
    let stored_pad = (crate::format::align_up(stored) - stored) as usize;
    let mut padding = [0u8; 64];
    src.read_at(offset + stored, &mut padding[..stored_pad])
        .map_err(|e| Error::io(path, "reading segment padding", e))?;
    if padding.iter().any(|&b| b != 0) {
        return Err(Error::malformed(
            path,
            "segment padding",
            "zeros",
            "non-zero bytes",
        ));
    }
    let n = blocks.len();
    let mut digests = vec![0u64; n];
    let threads = threads_for(dest.len());
    let per_thread = n.div_ceil(threads).max(1);
    let last = n.saturating_sub(1);
    let parts: Vec<_> = dest
        .chunks_mut(per_thread * CHUNK)
        .zip(digests.chunks_mut(per_thread))
        .zip(blocks.chunks(per_thread))
        .enumerate()
        .collect();
    on_threads(parts, path, |(t, ((out, sums), blocks))| {
        let mut d =
            zstd::bulk::Decompressor::new().map_err(|e| Error::io(path, "starting zstd", e))?;
        let mut staged = Vec::new();
        for (k, ((chunk, digest), block)) in out
            .chunks_mut(CHUNK)
            .zip(sums.iter_mut())
            .zip(blocks)
            .enumerate()
        {
            let index = t * per_thread + k;
            if block.zstd {
                staged.resize(block.stored, 0);
                src.read_at(block.at, &mut staged)
                    .map_err(|e| Error::io(path, "reading array data", e))?;
                let want = chunk.len();
                let bad = |found: String| {
                    Error::malformed(
                        path,
                        "zstd frame",
                        format!("{what}, block {index}: a frame of {want} bytes"),
                        found,
                    )
                };
                match zstd::zstd_safe::get_frame_content_size(&staged) {
                    Ok(Some(size)) if size == want as u64 => {}
                    Ok(Some(size)) => return Err(bad(format!("a frame declaring {size} bytes"))),
                    _ => return Err(bad("no readable frame size".into())),
                }
                let got = d
                    .decompress_to_buffer(&staged, chunk)
                    .map_err(|e| bad(format!("a corrupt frame ({e})")))?;
                if got != want {
                    return Err(bad(format!("{got} bytes")));
                }
            } else {
                src.read_at(block.at, chunk)
                    .map_err(|e| Error::io(path, "reading array data", e))?;
            }
            *digest = if index == last && pad > 0 {
                let mut h = xxhash_rust::xxh3::Xxh3::new();
                h.update(chunk);
                h.update(&[0u8; 64][..pad]);
                h.digest()
            } else {
                xxhash_rust::xxh3::xxh3_64(chunk)
            };
        }
        Ok(())
    })?;
    let found = combine(&digests);
    if found != checksum {
        return Err(Error::ChecksumMismatch {
            path: path.to_path_buf(),
            region: what.to_string(),
            expected: checksum,
            found,
        });
    }
    Ok(())
}

/// Decompresses array `index`'s zstd segment into `dest` (its logical
/// bytes), checking everything [`decode_into`] does.
pub(crate) fn decode_entry(
    src: Source<'_>,
    entry: &Entry,
    index: usize,
    dest: &mut [u8],
    path: &Path,
) -> Result<()> {
    if dest.len() as u64 != entry.len {
        return Err(Error::malformed(
            path,
            "decompression buffer",
            format!("{} bytes for array {index}", entry.len),
            dest.len(),
        ));
    }
    decode_into(
        src,
        entry.offset,
        entry.stored,
        dest,
        entry.checksum,
        path,
        &format!("array {index}"),
    )
}

/// What a refused allocation for a compressed array was for.
pub(crate) const DECOMPRESS_ACTION: &str = "allocating memory to decompress an array";

/// [`decode_entry`] into a new vector; an allocation the system refuses
/// is an error, not an abort.
pub(crate) fn decode_entry_vec(
    src: Source<'_>,
    entry: &Entry,
    index: usize,
    path: &Path,
) -> Result<Vec<u8>> {
    let mut out = crate::io::zeroed_bytes(entry.len, path, DECOMPRESS_ACTION)?;
    decode_entry(src, entry, index, &mut out, path)?;
    Ok(out)
}

/// Compresses a body as one frame, or `None` when it does not shrink.
pub(crate) fn compress_body(body: &[u8], level: i32) -> Option<Vec<u8>> {
    if body.len() < 256 {
        return None;
    }
    let frame = zstd::bulk::compress(body, level).ok()?;
    (frame.len() * 100 <= body.len() * KEEP_PERCENT).then_some(frame)
}

/// Decompresses a body that must hold exactly `len` bytes; the output grows
/// with the bytes really decoded, never to a size a header claims.
pub(crate) fn decompress_body(frame: &[u8], len: u64, path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let bad = |found: String| {
        Error::malformed(
            path,
            "body (zstd)",
            format!("a frame of {len} bytes"),
            found,
        )
    };
    let decoder = zstd::stream::read::Decoder::with_buffer(frame)
        .map_err(|e| bad(format!("no frame ({e})")))?;
    let mut out = Vec::new();
    decoder
        .take(len.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| bad(format!("a corrupt frame ({e})")))?;
    if out.len() as u64 != len {
        return Err(bad(format!("{} bytes", out.len())));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(bytes: &[u8], level: i32) -> (Vec<u8>, u64, u64) {
        let mut out = Vec::new();
        let mut w = BlockWriter::new(level);
        for piece in bytes.chunks(700_000) {
            w.write(&mut out, piece).unwrap();
        }
        let (stored, _, sum) = w.finish(&mut out).unwrap();
        assert_eq!(stored, out.len() as u64);
        (out, stored, sum)
    }

    #[test]
    fn round_trip_mixed_blocks_and_hostile_frames() {
        let mut data = vec![0u8; 3 * CHUNK + 777];
        // One incompressible block, the others compressible.
        let mut x = 1u64;
        for b in &mut data[CHUNK..2 * CHUNK] {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            *b = (x >> 56) as u8;
        }
        let (mut seg, stored, sum) = encode(&data, 3);
        let mut padded = data.clone();
        padded.resize(crate::format::align_up(data.len() as u64) as usize, 0);
        let mut h = SegmentHasher::new();
        h.update(&padded);
        assert_eq!(sum, h.digest());
        assert!(stored < data.len() as u64);
        seg.resize(crate::format::align_up(stored) as usize, 0);
        let mut dest = vec![0u8; data.len()];
        decode_into(
            Source::Bytes(&seg),
            0,
            stored,
            &mut dest,
            sum,
            Path::new("t"),
            "a",
        )
        .unwrap();
        assert_eq!(dest, data);
        // A frame that declares a bigger size than its block is refused
        // before decoding.
        let big = zstd::bulk::compress(&vec![0u8; CHUNK + 1], 1).unwrap();
        let mut hostile = big.clone();
        hostile.extend_from_slice(&((big.len() as u32) | ZSTD_FLAG).to_le_bytes());
        let hs = hostile.len() as u64;
        hostile.resize(crate::format::align_up(hs) as usize, 0);
        let mut dest = vec![0u8; CHUNK];
        let err = decode_into(
            Source::Bytes(&hostile),
            0,
            hs,
            &mut dest,
            0,
            Path::new("t"),
            "a",
        )
        .unwrap_err();
        assert!(matches!(err, Error::Malformed { .. }), "{err}");
        // Any flipped byte is an error, never a panic.
        for at in [0, 100, seg.len() / 2, stored as usize - 2] {
            let mut bad = seg.clone();
            bad[at] ^= 0x10;
            let mut dest = vec![0u8; data.len()];
            assert!(decode_into(
                Source::Bytes(&bad),
                0,
                stored,
                &mut dest,
                sum,
                Path::new("t"),
                "a"
            )
            .is_err());
        }
    }

    #[test]
    fn body_round_trip_and_bounded() {
        let body = vec![7u8; 10_000];
        let frame = compress_body(&body, 3).unwrap();
        assert_eq!(
            decompress_body(&frame, 10_000, Path::new("t")).unwrap(),
            body
        );
        assert!(decompress_body(&frame, 9_999, Path::new("t")).is_err());
        assert!(decompress_body(&frame, 10_001, Path::new("t")).is_err());
        assert!(decompress_body(b"garbage", 10, Path::new("t")).is_err());
    }
}

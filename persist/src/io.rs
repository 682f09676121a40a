//! Low-level helpers: advised allocations, chunked positional reads, atomic
//! writes, and the run-time type test behind the array fast paths.

use std::any::TypeId;
use std::fs::File;
use std::io::{self, Write};
use std::marker::PhantomData;
use std::path::Path;

use crate::element::{as_bytes, swap_bytes, swap_to_le, DType, Element};
use crate::error::{Error, Result};

/// Size of the chunks segments are read and written in: small enough to stay
/// in cache between the read, the checksum and the copy.
pub(crate) const CHUNK: usize = 1 << 20;

/// Where the bytes of a file come from: an open file (positional reads) or
/// bytes already in memory (a map, or a stream read to its end).
#[derive(Clone, Copy)]
pub(crate) enum Source<'a> {
    File(&'a File),
    Bytes(&'a [u8]),
}

impl Source<'_> {
    /// Fills `buf` from `offset`; the caller has checked the range against
    /// the file length.
    pub(crate) fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        match self {
            Source::File(file) => read_exact_at(file, offset, buf),
            Source::Bytes(bytes) => {
                let start = usize::try_from(offset).map_err(|_| eof())?;
                let end = start.checked_add(buf.len()).ok_or_else(eof)?;
                let src = bytes.get(start..end).ok_or_else(eof)?;
                buf.copy_from_slice(src);
                Ok(())
            }
        }
    }
}

fn eof() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "read past the end of the data",
    )
}

#[cfg(unix)]
fn read_exact_at(file: &File, offset: u64, buf: &mut [u8]) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(not(unix))]
fn read_exact_at(mut file: &File, offset: u64, buf: &mut [u8]) -> io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(buf)
}

/// `n` zero bytes for the file at `path`, or [`Error::out_of_memory`]
/// (while `action`) when the allocator refuses.
pub(crate) fn zeroed_bytes(n: u64, path: &Path, action: &'static str) -> Result<Vec<u8>> {
    usize::try_from(n)
        .ok()
        .and_then(try_alloc_zeroed::<u8>)
        .ok_or_else(|| Error::out_of_memory(path, action, n.into()))
}

/// A zero-filled vector of `n` elements, advised for transparent huge pages,
/// or `None` when the allocator refuses. A file's length does not justify
/// `n`: a file of holes has a length and no bytes.
pub(crate) fn try_alloc_zeroed<A: Element>(n: usize) -> Option<Vec<A>> {
    if n == 0 || std::mem::size_of::<A>() == 0 {
        return Some(Vec::new());
    }
    let layout = std::alloc::Layout::array::<A>(n).ok()?;
    // SAFETY: the layout has a non-zero size (n > 0, elements are not ZSTs).
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<A>();
    if ptr.is_null() {
        return None;
    }
    advise_huge_pages(ptr.cast::<u8>(), layout.size());
    // SAFETY: `ptr` was allocated by the global allocator with exactly the
    // layout of `[A; n]`; all-zero bytes are a valid value of every element
    // type (0, 0.0, false), so all `n` elements are initialised.
    Some(unsafe { Vec::from_raw_parts(ptr, n, n) })
}

/// Asks the kernel to back the page-aligned interior of a fresh allocation
/// with huge pages; this divides the page faults of filling it by 512.
///
/// Only where the system's transparent huge pages are enabled on advice
/// (`enabled` is `madvise`): where they are enabled `always`, a fault takes
/// a huge page already when one is free, and the advice would only add
/// direct compaction (the `defrag` setting `madvise`, the usual default),
/// which stalls a fault for milliseconds when memory is fragmented; a load
/// of 1 GiB then took anywhere from 0.5x to 2x its usual time.
fn advise_huge_pages(ptr: *mut u8, len: usize) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        if len < HUGE || !huge_pages_need_advice() {
            return;
        }
        let page = 4096usize;
        let start = (ptr as usize).div_ceil(page) * page;
        let end = (ptr as usize + len) / page * page;
        if end > start {
            // SAFETY: the range lies inside an allocation we own; madvise
            // with MADV_HUGEPAGE only changes how the kernel backs it and
            // never its contents. Failure is harmless and ignored.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (ptr, len);
    }
}

/// Whether transparent huge pages are enabled on advice only (read once):
/// `false` when they are always on, off, or the setting is unreadable.
#[cfg(target_os = "linux")]
fn huge_pages_need_advice() -> bool {
    static NEED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *NEED.get_or_init(|| {
        std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
            .is_ok_and(|s| thp_setting_is_advice(&s))
    })
}

/// Whether a `transparent_hugepage/enabled` file selects `madvise`.
#[cfg(any(target_os = "linux", test))]
fn thp_setting_is_advice(setting: &str) -> bool {
    setting.split_whitespace().any(|w| w == "[madvise]")
}

/// Mutable bytes of a vector of non-bool elements.
fn bytes_mut<A: Element>(data: &mut [A]) -> &mut [u8] {
    debug_assert!(A::DTYPE != DType::Bool);
    // SAFETY: `Element` types other than bool accept every bit pattern, have
    // no padding, and the length covers exactly the slice.
    unsafe {
        std::slice::from_raw_parts_mut(data.as_mut_ptr().cast::<u8>(), std::mem::size_of_val(data))
    }
}

/// Reinterprets a vector as another element type of identical layout.
///
/// # Safety
/// `A` and `B` must be the same type up to lifetimes, or `A` must be `u8`,
/// `B` `bool`, and every byte 0 or 1.
unsafe fn cast_vec<A, B>(v: Vec<A>) -> Vec<B> {
    let mut v = std::mem::ManuallyDrop::new(v);
    // SAFETY: by the caller's contract, size and alignment agree and the
    // values are valid `B`s; the allocation is handed over unchanged.
    unsafe { Vec::from_raw_parts(v.as_mut_ptr().cast::<B>(), v.len(), v.capacity()) }
}

/// What to check while reading a region.
pub(crate) struct Region<'p> {
    pub(crate) path: &'p Path,
    pub(crate) offset: u64,
    /// Bytes of zero padding that follow the data and are covered by the
    /// checksum.
    pub(crate) padding: usize,
    /// The stored checksum, if the region has one.
    pub(crate) checksum: Option<(u64, String)>,
    /// A zip member's CRC-32 to check instead: the hasher holds the bytes
    /// before the region (the member's `.npy` header), the `u32` is the
    /// CRC-32 of the whole member. Checked per 1 MiB block while the data
    /// is in cache, and combined.
    pub(crate) crc32: Option<(crc32fast::Hasher, u32)>,
    /// Whether the data is stored big-endian.
    pub(crate) big_endian: bool,
}

impl Region<'_> {
    /// Compares a computed checksum with the stored one, if there is one.
    pub(crate) fn check_sum(&self, found: u64) -> Result<()> {
        match &self.checksum {
            Some((expected, name)) if found != *expected => Err(Error::ChecksumMismatch {
                path: self.path.to_path_buf(),
                region: name.clone(),
                expected: *expected,
                found,
            }),
            _ => Ok(()),
        }
    }
}

/// Opens a file for reading and returns it with its length.
pub(crate) fn open_file(path: &Path) -> Result<(File, u64)> {
    let file = File::open(path).map_err(|e| Error::io(path, "opening", e))?;
    let len = file
        .metadata()
        .map_err(|e| Error::io(path, "reading the metadata of", e))?
        .len();
    Ok((file, len))
}

/// Reads `n` elements straight into their final, huge-page advised
/// allocation in chunks, checks the checksum and padding, and converts the
/// byte order.
pub(crate) fn read_elements<A: Element>(
    src: Source<'_>,
    n: usize,
    region: &Region<'_>,
) -> Result<Vec<A>> {
    elements_with::<A>(n, region, |bytes| fill(src, bytes, region))?.ok_or_else(|| {
        let bytes = n as u128 * A::DTYPE.size() as u128;
        Error::out_of_memory(region.path, "allocating array data", bytes)
    })
}

/// Reads `n` elements from a stream straight into their final allocation,
/// as [`read_elements`]; `None` (nothing read) when the allocator refuses
/// the whole length at once.
pub(crate) fn read_stream_elements<A: Element>(
    r: &mut dyn io::Read,
    n: usize,
    region: &Region<'_>,
) -> Result<Option<Vec<A>>> {
    elements_with::<A>(n, region, |bytes| {
        let need = bytes.len() as u64;
        let mut done = 0u64;
        for chunk in bytes.chunks_mut(CHUNK) {
            r.read_exact(chunk).map_err(|e| {
                if e.kind() == io::ErrorKind::UnexpectedEof {
                    Error::truncated(region.path, "array data", need, done)
                } else {
                    Error::io(region.path, "reading array data", e)
                }
            })?;
            done += chunk.len() as u64;
        }
        Ok(())
    })
}

/// Allocates `n` zeroed elements (`None` if the allocator refuses), lets
/// `fill` write their bytes as stored, then checks bools and converts the
/// byte order.
pub(crate) fn elements_with<A: Element>(
    n: usize,
    region: &Region<'_>,
    fill: impl FnOnce(&mut [u8]) -> Result<()>,
) -> Result<Option<Vec<A>>> {
    if A::DTYPE == DType::Bool {
        let Some(mut bytes) = try_alloc_zeroed::<u8>(n) else {
            return Ok(None);
        };
        fill(&mut bytes)?;
        if let Some(pos) = bytes.iter().position(|&b| b > 1) {
            return Err(Error::malformed(
                region.path,
                "bool element",
                "0 or 1",
                format!("{} at element {pos}", bytes[pos]),
            ));
        }
        // SAFETY: A is bool (its DTYPE is Bool and the trait is sealed) and
        // every byte was just checked to be 0 or 1.
        return Ok(Some(unsafe { cast_vec::<u8, A>(bytes) }));
    }
    let Some(mut data) = try_alloc_zeroed::<A>(n) else {
        return Ok(None);
    };
    let bytes = bytes_mut(&mut data);
    fill(bytes)?;
    let size = A::DTYPE.size();
    if region.big_endian != cfg!(target_endian = "big") {
        swap_bytes(bytes, size);
    }
    Ok(Some(data))
}

/// Segments at least this large are read by several threads.
const PARALLEL_MIN: usize = 64 << 20;
/// At most this many reading threads.
const MAX_THREADS: usize = 4;

/// How many threads read or check a segment of `len` bytes.
pub(crate) fn threads_for(len: usize) -> usize {
    if len >= PARALLEL_MIN {
        std::thread::available_parallelism()
            .map_or(1, usize::from)
            .clamp(1, MAX_THREADS)
    } else {
        1
    }
}

fn fill(src: Source<'_>, bytes: &mut [u8], region: &Region<'_>) -> Result<()> {
    fill_threads(src, bytes, region, threads_for(bytes.len()))
}

/// Runs `work` on each part: on this thread when there is one part, else
/// on one scoped thread per part. Returns the first error.
pub(crate) fn on_threads<P: Send>(
    parts: Vec<P>,
    path: &Path,
    work: impl Fn(P) -> Result<()> + Sync,
) -> Result<()> {
    if parts.len() <= 1 {
        return parts.into_iter().try_for_each(work);
    }
    let work = &work;
    std::thread::scope(|scope| -> Result<()> {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|part| scope.spawn(move || work(part)))
            .collect();
        for h in handles {
            h.join().map_err(|_| {
                Error::io(
                    path,
                    "reading array data",
                    io::Error::other("a reading thread panicked"),
                )
            })??;
        }
        Ok(())
    })
}

/// Reads a segment with `threads` threads, each taking a contiguous run of
/// blocks, and checks the combined checksum.
///
/// Handing out 4 MiB or 16 MiB pieces from a shared queue instead (so that
/// a thread slowed by another process would do less) measured no better on
/// a shared 2-core machine: loads of a 1 GiB payload alternated with this
/// split, four runs of 12-25 pairs, had medians either side of it (0.40 vs
/// 0.54 s, 0.51 vs 0.38, 0.25 vs 0.30, 0.38 vs 0.34) and minima no lower.
/// Most of a load is the kernel zeroing fresh pages as they are first
/// written, which each thread does for its own share.
fn fill_threads(
    src: Source<'_>,
    bytes: &mut [u8],
    region: &Region<'_>,
    threads: usize,
) -> Result<()> {
    let blocks = bytes.len().div_ceil(CHUNK);
    let mut digests = vec![0u64; blocks];
    let hash = match (&region.checksum, &region.crc32) {
        (_, Some(_)) => Digest::Crc32,
        (Some(_), None) => Digest::Xxh3,
        (None, None) => Digest::None,
    };
    let per_thread = blocks.div_ceil(threads).max(1);
    let last = blocks.saturating_sub(1);
    let len = bytes.len();
    let parts: Vec<_> = bytes
        .chunks_mut(per_thread * CHUNK)
        .zip(digests.chunks_mut(per_thread))
        .enumerate()
        .collect();
    on_threads(parts, region.path, |(t, (dest, sums))| {
        fill_blocks(src, dest, sums, t * per_thread, last, hash, region)
    })?;
    if region.checksum.is_some() {
        region.check_sum(combine(&digests))?;
    }
    if let Some((prefix, expected)) = &region.crc32 {
        let mut crc = prefix.clone();
        for (i, d) in digests.iter().enumerate() {
            let block_len = CHUNK.min(len - i * CHUNK) as u64;
            crc.combine(&crc32fast::Hasher::new_with_initial_len(
                *d as u32, block_len,
            ));
        }
        let found = crc.finalize();
        if found != *expected {
            return Err(Error::ChecksumMismatch {
                path: region.path.to_path_buf(),
                region: "zip member (CRC-32)".into(),
                expected: u64::from(*expected),
                found: u64::from(found),
            });
        }
    }
    Ok(())
}

/// Which digest each block records while it is read.
#[derive(Clone, Copy, PartialEq)]
enum Digest {
    None,
    /// XXH3-64 of the block and its padding (the container's checksum).
    Xxh3,
    /// CRC-32 of the block's data (a zip member's).
    Crc32,
}

/// Checks a segment of `len` bytes at `region.offset` in `bytes` (a map)
/// where it lies: its checksum (data and padding) and zero padding. Nothing
/// is copied; blocks are hashed by the threads [`fill`] would use, and the
/// only allocation is one 8-byte digest per 1 MiB block when there is more
/// than one thread.
pub(crate) fn verify_in_place(bytes: &[u8], len: u64, region: &Region<'_>) -> Result<()> {
    let threads = threads_for(usize::try_from(len).unwrap_or(usize::MAX));
    verify_threads(bytes, len, region, threads)
}

fn verify_threads(bytes: &[u8], len: u64, region: &Region<'_>, threads: usize) -> Result<()> {
    let end = region
        .offset
        .checked_add(len)
        .and_then(|e| e.checked_add(region.padding as u64));
    let segment = end
        .and_then(|end| bytes.get(usize::try_from(region.offset).ok()?..usize::try_from(end).ok()?))
        .ok_or_else(|| {
            Error::truncated(
                region.path,
                "array data",
                end.unwrap_or(u64::MAX),
                bytes.len() as u64,
            )
        })?;
    let found = if threads == 1 {
        let mut hasher = SegmentHasher::new();
        hasher.update(segment);
        hasher.digest()
    } else {
        let blocks = segment.len().div_ceil(CHUNK);
        let per_thread = blocks.div_ceil(threads);
        let mut digests = vec![0u64; blocks];
        let parts: Vec<_> = segment
            .chunks(per_thread * CHUNK)
            .zip(digests.chunks_mut(per_thread))
            .collect();
        on_threads(parts, region.path, |(part, sums)| {
            for (block, digest) in part.chunks(CHUNK).zip(sums) {
                *digest = xxhash_rust::xxh3::xxh3_64(block);
            }
            Ok(())
        })?;
        combine(&digests)
    };
    region.check_sum(found)?;
    let padding = segment
        .get(segment.len() - region.padding..)
        .unwrap_or_default();
    check_zero_padding(padding, region)
}

fn check_zero_padding(padding: &[u8], region: &Region<'_>) -> Result<()> {
    if padding.iter().any(|&b| b != 0) {
        return Err(Error::malformed(
            region.path,
            "segment padding",
            "zeros",
            "non-zero bytes",
        ));
    }
    Ok(())
}

/// Reads blocks `first..` straight into `dest`, recording each block's
/// digest; the block numbered `last` also carries the padding and is read
/// through a reused buffer.
fn fill_blocks(
    src: Source<'_>,
    dest: &mut [u8],
    digests: &mut [u64],
    first: usize,
    last: usize,
    hash: Digest,
    region: &Region<'_>,
) -> Result<()> {
    // A block without padding is read straight into place (one copy, by
    // the kernel); the block that carries the padding goes through a small
    // reused buffer so that data and padding come in one read. Staging
    // every block (a second copy, the page faults taken by it) measured
    // faster only while the allocation was advised for huge pages on a
    // system with them always on (see `advise_huge_pages`); without that
    // advice, ten 100 MiB `.npz` members read in about 0.6x the time
    // straight into place, and a 1 GiB container load no slower.
    BOUNCE.with(|bounce| -> Result<()> {
        let mut bounce = bounce.borrow_mut();
        bounce.resize(CHUNK + 64, 0);
        for (k, (chunk, digest)) in dest.chunks_mut(CHUNK).zip(digests.iter_mut()).enumerate() {
            let block = first + k;
            let pad = if block == last { region.padding } else { 0 };
            let offset = region.offset + (block * CHUNK) as u64;
            if pad == 0 {
                src.read_at(offset, chunk)
                    .map_err(|e| Error::io(region.path, "reading array data", e))?;
                *digest = block_digest(hash, chunk, chunk.len());
                continue;
            }
            let staged = bounce.get_mut(..chunk.len() + pad).unwrap_or_default();
            src.read_at(offset, staged)
                .map_err(|e| Error::io(region.path, "reading array data", e))?;
            *digest = block_digest(hash, staged, chunk.len());
            let (data, padding) = staged.split_at(chunk.len());
            check_zero_padding(padding, region)?;
            chunk.copy_from_slice(data);
        }
        Ok(())
    })
}

/// The digest of one block as stored: XXH3 covers the block with its
/// padding, CRC-32 only its first `data_len` bytes (the data).
fn block_digest(hash: Digest, block: &[u8], data_len: usize) -> u64 {
    match hash {
        Digest::None => 0,
        Digest::Xxh3 => xxhash_rust::xxh3::xxh3_64(block),
        Digest::Crc32 => u64::from(crc32fast::hash(block.get(..data_len).unwrap_or(block))),
    }
}

/// A segment's checksum from its block digests (see FORMAT.md).
pub(crate) fn combine(digests: &[u64]) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for d in digests {
        h.update(&d.to_le_bytes());
    }
    h.digest()
}

/// The segment checksum computed over a stream: XXH3-64 of each 1 MiB block
/// of the padded segment, then XXH3-64 of those digests (little-endian),
/// so blocks can be checked in parallel.
#[derive(Clone)]
pub(crate) struct SegmentHasher {
    block: xxhash_rust::xxh3::Xxh3,
    in_block: usize,
    digests: xxhash_rust::xxh3::Xxh3,
}

impl SegmentHasher {
    pub(crate) fn new() -> Self {
        SegmentHasher {
            block: xxhash_rust::xxh3::Xxh3::new(),
            in_block: 0,
            digests: xxhash_rust::xxh3::Xxh3::new(),
        }
    }

    pub(crate) fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let take = (CHUNK - self.in_block).min(data.len());
            let (now, rest) = data.split_at(take);
            self.block.update(now);
            self.in_block += take;
            if self.in_block == CHUNK {
                self.digests.update(&self.block.digest().to_le_bytes());
                self.block.reset();
                self.in_block = 0;
            }
            data = rest;
        }
    }

    /// Records the digest of a whole block hashed elsewhere (another
    /// thread); the stream must be at a block boundary.
    pub(crate) fn push_block_digest(&mut self, digest: u64) {
        debug_assert_eq!(self.in_block, 0, "a block digest pushed mid-block");
        self.digests.update(&digest.to_le_bytes());
    }

    pub(crate) fn digest(&self) -> u64 {
        let mut digests = self.digests.clone();
        if self.in_block > 0 {
            digests.update(&self.block.digest().to_le_bytes());
        }
        digests.digest()
    }
}

thread_local! {
    /// The reused read buffer (allocated and faulted in once per thread).
    static BOUNCE: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Reads and checks the zero padding after a region, then the checksum.
pub(crate) fn check_padding_and_sum(
    src: Source<'_>,
    offset: u64,
    mut hasher: SegmentHasher,
    region: &Region<'_>,
) -> Result<()> {
    if region.padding > 0 {
        let mut pad = [0u8; 64];
        let pad = pad.get_mut(..region.padding.min(64)).unwrap_or_default();
        src.read_at(offset, pad)
            .map_err(|e| Error::io(region.path, "reading array padding", e))?;
        hasher.update(pad);
    }
    if region.checksum.is_some() {
        region.check_sum(hasher.digest())?;
    }
    Ok(())
}

/// Writes elements little-endian in chunks, feeding each chunk to `hasher`.
pub(crate) fn write_slice<A: Element>(
    w: &mut dyn Write,
    data: &[A],
    hasher: Option<&mut SegmentHasher>,
) -> io::Result<u64> {
    write_native(w, as_bytes(data), A::DTYPE.size(), hasher)
}

/// Writes the native-endian bytes of elements of `size` bytes
/// little-endian in chunks, feeding each chunk to `hasher`.
pub(crate) fn write_native(
    w: &mut dyn Write,
    bytes: &[u8],
    size: usize,
    mut hasher: Option<&mut SegmentHasher>,
) -> io::Result<u64> {
    if cfg!(target_endian = "little") && bytes.len() >= PARALLEL_MIN {
        if let Some(h) = hasher {
            // The checksum of a large in-memory array is computed by a
            // second thread while this one writes it.
            return std::thread::scope(|scope| {
                let hashing = scope.spawn(move || h.update(bytes));
                let written = write_all_chunked(w, bytes);
                hashing
                    .join()
                    .map_err(|_| io::Error::other("the checksum thread panicked"))?;
                written
            });
        }
    }
    let mut swapped = Vec::new();
    for chunk in bytes.chunks(CHUNK) {
        let chunk = if cfg!(target_endian = "big") {
            swapped.clear();
            swapped.extend_from_slice(chunk);
            swap_to_le(&mut swapped, size);
            &swapped[..]
        } else {
            chunk
        };
        if let Some(h) = hasher.as_deref_mut() {
            h.update(chunk);
        }
        w.write_all(chunk)?;
    }
    Ok(bytes.len() as u64)
}

fn write_all_chunked(w: &mut dyn Write, bytes: &[u8]) -> io::Result<u64> {
    for chunk in bytes.chunks(CHUNK) {
        w.write_all(chunk)?;
    }
    Ok(bytes.len() as u64)
}

/// Writes elements given in logical order (any layout) through a staging
/// buffer.
pub(crate) fn write_iter<'a, A: Element, I: Iterator<Item = &'a A>>(
    w: &mut dyn Write,
    iter: I,
    mut hasher: Option<&mut SegmentHasher>,
) -> io::Result<u64> {
    let mut staging: Vec<A> = Vec::with_capacity(CHUNK / A::DTYPE.size());
    let mut total = 0;
    for &x in iter {
        staging.push(x);
        if staging.len() == staging.capacity() {
            total += write_slice(w, &staging, hasher.as_deref_mut())?;
            staging.clear();
        }
    }
    total += write_slice(w, &staging, hasher)?;
    Ok(total)
}

/// Writes a file atomically: a temporary file in the target's directory,
/// fsync, rename over the target, fsync of the directory.
pub(crate) fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut File) -> Result<u64>,
) -> Result<u64> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".jobcache-tmp-")
        .tempfile_in(dir)
        .map_err(|e| Error::io(path, "creating a temporary file beside", e))?;
    let n = write(tmp.as_file_mut())?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| Error::io(path, "syncing the temporary file for", e))?;
    // Holding the file being replaced open keeps the rename from freeing
    // its blocks and cached pages on this thread (about 0.2 s per GiB
    // here); a short-lived thread closes it afterwards.
    let replaced = File::open(path).ok();
    tmp.persist(path)
        .map_err(|e| Error::io(path, "renaming into place", e.error))?;
    sync_dir(dir).map_err(|e| Error::io(dir, "syncing the directory", e))?;
    if let Some(old) = replaced {
        let large = old.metadata().is_ok_and(|m| m.len() >= 64 << 20);
        if large {
            // A failed spawn drops the file here, which is merely slower.
            let _ = std::thread::Builder::new().spawn(move || drop(old));
        }
    }
    Ok(n)
}

/// Bytes written between two requests to start writeback.
const WRITE_BEHIND: u64 = 16 << 20;

/// A file being written that asks the kernel to start writing back each
/// 16 MiB as soon as it is written (`sync_file_range`, Linux), so that the
/// final fsync waits for the last few MiB rather than the whole file: the
/// kernel otherwise starts writeback only when dirty pages pass a share of
/// memory (about 2 GB here), after a 1 GiB save has been copied.
///
/// The bytes go to `inner` (the file itself, or a writer that ends in it,
/// such as a zip writer); `file` is the file whose writeback is started.
pub(crate) struct WriteBehind<'a, W = &'a File> {
    inner: W,
    file: &'a File,
    unkicked: u64,
}

impl<'a> WriteBehind<'a> {
    pub(crate) fn new(file: &'a File) -> Self {
        Self::over(file, file)
    }
}

impl<'a, W: Write> WriteBehind<'a, W> {
    /// Writes to `inner`, whose bytes end up in `file`.
    pub(crate) fn over(inner: W, file: &'a File) -> Self {
        WriteBehind {
            inner,
            file,
            unkicked: 0,
        }
    }

    fn kick(&mut self) {
        start_writeback(self.file);
        self.unkicked = 0;
    }
}

/// Asks the kernel to start writing back the dirty pages of `file`
/// (`sync_file_range`, Linux; nothing elsewhere). Returns at once.
pub(crate) fn start_writeback(file: &File) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: the descriptor is open for the borrow's lifetime; the
        // call only starts writeback of the file's dirty pages, and its
        // failure (say, on a file system without it) changes nothing.
        unsafe {
            libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = file;
    }
}

impl<W: Write> Write for WriteBehind<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.unkicked += n as u64;
        if self.unkicked >= WRITE_BEHIND {
            self.kick();
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// The `TypeId` of any type, lifetimes erased. Two types with equal ids are
/// the same type up to lifetimes; every comparison in this crate is against
/// a type without lifetime parameters, so equality means identity.
pub(crate) fn type_id_of<T: ?Sized>() -> TypeId {
    trait NonStaticAny {
        fn get_type_id(&self) -> TypeId
        where
            Self: 'static;
    }
    impl<T: ?Sized> NonStaticAny for PhantomData<T> {
        fn get_type_id(&self) -> TypeId
        where
            Self: 'static,
        {
            TypeId::of::<T>()
        }
    }
    let phantom = PhantomData::<T>;
    let any: &dyn NonStaticAny = &phantom;
    // SAFETY: only the lifetime bound of the trait object changes; the
    // method called reads no data and `TypeId::of` does not depend on
    // lifetimes (the technique of the `typeid` crate).
    let any: &(dyn NonStaticAny + 'static) = unsafe { std::mem::transmute(any) };
    any.get_type_id()
}

/// A type without lifetime parameters, so that a type with the same
/// [`type_id_of`] is that very type (lifetimes are all `type_id_of`
/// ignores).
///
/// # Safety
///
/// Implement only for types without lifetime parameters.
pub(crate) unsafe trait LifetimeFree {}

macro_rules! lifetime_free {
    ($($d:ty),*) => {$(
        // SAFETY: `Element` is sealed to primitive types and `$d` is one of
        // ndarray's index types: `Array<A, $d>` has no lifetime parameter.
        unsafe impl<A: Element> LifetimeFree for ndarray::Array<A, $d> {}
    )*};
}
lifetime_free!(
    ndarray::Ix0,
    ndarray::Ix1,
    ndarray::Ix2,
    ndarray::Ix3,
    ndarray::Ix4,
    ndarray::Ix5,
    ndarray::Ix6,
    ndarray::IxDyn
);

/// `value` as a `T`, when `T` is `S`'s type.
pub(crate) fn into_same<S: LifetimeFree, T>(value: S) -> Option<T> {
    if type_id_of::<S>() != type_id_of::<T>() {
        return None;
    }
    let value = std::mem::ManuallyDrop::new(value);
    // SAFETY: equal ids mean S and T are the same type up to lifetimes, and
    // S has none (`LifetimeFree`), so T is exactly S: the bits are a valid
    // T, and the original is not dropped.
    Some(unsafe { std::mem::transmute_copy::<S, T>(&*value) })
}

/// `value` as a `&T`, when `S` is `T`'s type.
pub(crate) fn as_same<S: ?Sized, T: LifetimeFree>(value: &S) -> Option<&T> {
    if type_id_of::<S>() != type_id_of::<T>() {
        return None;
    }
    // SAFETY: equal ids mean S and T are the same type up to lifetimes, and
    // T has none (`LifetimeFree`), so S is exactly T (and sized): the
    // reference points to a valid T for the same lifetime.
    Some(unsafe { &*(value as *const S).cast::<T>() })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3 MiB + 1000 byte segment at offset 64 with 24 bytes of padding,
    /// and the region that describes it (with its streamed checksum).
    fn segment() -> (Vec<u8>, usize, Region<'static>) {
        // Ten blocks: several per thread for up to four threads.
        let len = 9 * CHUNK + 1000;
        let mut file: Vec<u8> = (0..len + 24 + 64).map(|i| (i * 7 % 251) as u8).collect();
        file[..64].fill(0);
        file[64 + len..].fill(0);
        let mut hasher = SegmentHasher::new();
        hasher.update(&file[64..64 + len + 24]);
        let region = Region {
            path: Path::new("t"),
            offset: 64,
            padding: 24,
            checksum: Some((hasher.digest(), "array 0".to_string())),
            crc32: None,
            big_endian: false,
        };
        (file, len, region)
    }

    #[test]
    fn write_behind_writes_every_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..(WRITE_BEHIND as usize * 2 + 12_345))
            .map(|i| (i % 251) as u8)
            .collect();
        let file = File::create(&path).unwrap();
        let mut w = WriteBehind::new(&file);
        for piece in data.chunks(3 << 20) {
            w.write_all(piece).unwrap();
        }
        w.flush().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), data);
    }

    #[test]
    fn huge_page_advice_only_where_huge_pages_are_on_advice() {
        assert!(thp_setting_is_advice("always [madvise] never\n"));
        assert!(!thp_setting_is_advice("[always] madvise never\n"));
        assert!(!thp_setting_is_advice("always madvise [never]\n"));
        assert!(!thp_setting_is_advice(""));
    }

    #[test]
    fn parallel_fill_matches_the_streaming_checksum_and_detects_corruption() {
        let (file, len, region) = segment();
        for threads in [1, 2, 3, 4] {
            let mut dest = vec![0u8; len];
            fill_threads(Source::Bytes(&file), &mut dest, &region, threads).unwrap();
            assert_eq!(dest, &file[64..64 + len]);
        }
        for at in [64, 64 + 2 * CHUNK + 5, 64 + 5 * CHUNK, 64 + len - 1] {
            let mut bad = file.clone();
            bad[at] ^= 1;
            let mut dest = vec![0u8; len];
            let err = fill_threads(Source::Bytes(&bad), &mut dest, &region, 3).unwrap_err();
            assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err}");
        }
        let mut bad = file.clone();
        bad[64 + len + 3] = 9;
        let mut dest = vec![0u8; len];
        let err = fill_threads(Source::Bytes(&bad), &mut dest, &region, 2).unwrap_err();
        assert!(matches!(err, Error::Malformed { .. }), "{err}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
        /// Whatever the length, padding and number of threads, a parallel
        /// fill copies the segment exactly and agrees with the streaming
        /// checksum.
        #[test]
        fn parallel_fill_is_a_checked_copy(
            len in 0usize..(11 * CHUNK),
            padding in 0usize..64,
            threads in 1usize..5,
            seed in proptest::prelude::any::<u8>(),
        ) {
            let mut file: Vec<u8> = (0..len + padding + 8)
                .map(|i| (i * 31 + usize::from(seed)) as u8)
                .collect();
            file[..8].fill(0);
            file[8 + len..].fill(0);
            let mut hasher = SegmentHasher::new();
            hasher.update(&file[8..]);
            let region = Region {
                path: Path::new("t"),
                offset: 8,
                padding,
                checksum: Some((hasher.digest(), "array 0".to_string())),
                crc32: None,
                big_endian: false,
            };
            let mut dest = vec![0u8; len];
            fill_threads(Source::Bytes(&file), &mut dest, &region, threads).unwrap();
            proptest::prop_assert!(dest == file[8..8 + len]);
        }
    }

    #[test]
    fn in_place_verification_matches_the_streaming_checksum_on_any_threads() {
        let (file, len, region) = segment();
        for threads in [1, 2, 3, 4] {
            verify_threads(&file, len as u64, &region, threads).unwrap();
            for at in [
                64,
                64 + CHUNK,
                64 + 2 * CHUNK + 5,
                64 + len - 1,
                64 + len + 3,
            ] {
                let mut bad = file.clone();
                bad[at] ^= 0x40;
                let err = verify_threads(&bad, len as u64, &region, threads).unwrap_err();
                assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err}");
            }
            let err = verify_threads(&file[..64 + len], len as u64, &region, threads).unwrap_err();
            assert!(matches!(err, Error::Truncated { .. }), "{err}");
        }
    }

    #[test]
    fn type_ids_ignore_nothing_but_lifetimes() {
        assert_eq!(type_id_of::<Vec<u8>>(), TypeId::of::<Vec<u8>>());
        assert_ne!(type_id_of::<Vec<u8>>(), TypeId::of::<Vec<i8>>());
        fn erased<'a>(_: &'a str) -> TypeId {
            type_id_of::<&'a str>()
        }
        assert_eq!(erased("x"), TypeId::of::<&'static str>());
        let a = ndarray::Array1::from(vec![1.0f64, 2.0]);
        let same: Option<&ndarray::Array1<f64>> = as_same(&a);
        assert_eq!(same, Some(&a));
        assert!(as_same::<_, ndarray::Array1<f32>>(&a).is_none());
        assert!(as_same::<str, ndarray::Array1<f32>>("x").is_none());
        assert_eq!(
            into_same::<_, ndarray::Array1<f64>>(a.clone()),
            Some(a.clone())
        );
        assert_eq!(into_same::<_, Vec<f64>>(a), None);
    }
}

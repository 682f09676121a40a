//! Low-level helpers: advised allocations, chunked positional reads, atomic
//! writes, and the run-time type test behind the array fast paths.

use std::any::TypeId;
use std::fs::File;
use std::io::{self, Write};
use std::marker::PhantomData;
use std::path::Path;

use xxhash_rust::xxh3::Xxh3;

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

/// A zero-filled vector of `n` elements, advised for transparent huge pages.
/// The caller has checked that the file holds `n` elements, so `n` is
/// justified by real bytes.
pub(crate) fn alloc_zeroed<A: Element>(n: usize) -> Vec<A> {
    if n == 0 || std::mem::size_of::<A>() == 0 {
        return Vec::new();
    }
    let Ok(layout) = std::alloc::Layout::array::<A>(n) else {
        std::alloc::handle_alloc_error(std::alloc::Layout::new::<A>())
    };
    // SAFETY: the layout has a non-zero size (n > 0, elements are not ZSTs).
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<A>();
    if ptr.is_null() {
        std::alloc::handle_alloc_error(layout);
    }
    advise_huge_pages(ptr.cast::<u8>(), layout.size());
    // SAFETY: `ptr` was allocated by the global allocator with exactly the
    // layout of `[A; n]`; all-zero bytes are a valid value of every element
    // type (0, 0.0, false), so all `n` elements are initialised.
    unsafe { Vec::from_raw_parts(ptr, n, n) }
}

/// Asks the kernel to back the page-aligned interior of a fresh allocation
/// with huge pages; this divides the page faults of filling it by 512.
fn advise_huge_pages(ptr: *mut u8, len: usize) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        if len < HUGE {
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
    /// Whether the data is stored big-endian.
    pub(crate) big_endian: bool,
}

/// Reads `n` elements straight into their final, huge-page advised
/// allocation in chunks, checks the checksum and padding, and converts the
/// byte order.
pub(crate) fn read_elements<A: Element>(
    src: Source<'_>,
    n: usize,
    region: &Region<'_>,
) -> Result<Vec<A>> {
    if A::DTYPE == DType::Bool {
        let mut bytes: Vec<u8> = alloc_zeroed(n);
        fill(src, &mut bytes, region)?;
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
        return Ok(unsafe { cast_vec::<u8, A>(bytes) });
    }
    let mut data: Vec<A> = alloc_zeroed(n);
    let bytes = bytes_mut(&mut data);
    fill(src, bytes, region)?;
    let size = A::DTYPE.size();
    if region.big_endian != cfg!(target_endian = "big") {
        swap_bytes(bytes, size);
    }
    Ok(data)
}

fn fill(src: Source<'_>, bytes: &mut [u8], region: &Region<'_>) -> Result<()> {
    let mut hasher = Xxh3::new();
    let read_err = |e| Error::io(region.path, "reading array data", e);
    let mut offset = region.offset;
    match src {
        Source::Bytes(_) => {
            for chunk in bytes.chunks_mut(CHUNK) {
                src.read_at(offset, chunk).map_err(read_err)?;
                if region.checksum.is_some() {
                    hasher.update(chunk);
                }
                offset += chunk.len() as u64;
            }
        }
        Source::File(_) => {
            // Reading through a small reused buffer that stays in cache and
            // copying into the fresh allocation measured faster than reading
            // into the allocation directly: page faults are taken by the
            // copy, outside the kernel's read path.
            BOUNCE.with(|bounce| -> Result<()> {
                let mut bounce = bounce.borrow_mut();
                bounce.resize(CHUNK, 0);
                for chunk in bytes.chunks_mut(CHUNK) {
                    let staged = bounce.get_mut(..chunk.len()).unwrap_or_default();
                    src.read_at(offset, staged).map_err(read_err)?;
                    if region.checksum.is_some() {
                        hasher.update(staged);
                    }
                    chunk.copy_from_slice(staged);
                    offset += chunk.len() as u64;
                }
                Ok(())
            })?;
        }
    }
    check_padding_and_sum(src, offset, hasher, region)
}

thread_local! {
    /// The reused read buffer (allocated and faulted in once per thread).
    static BOUNCE: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Reads and checks the zero padding after a region, then the checksum.
pub(crate) fn check_padding_and_sum(
    src: Source<'_>,
    offset: u64,
    mut hasher: Xxh3,
    region: &Region<'_>,
) -> Result<()> {
    if region.padding > 0 {
        let mut pad = [0u8; 64];
        let pad = pad.get_mut(..region.padding.min(64)).unwrap_or_default();
        src.read_at(offset, pad)
            .map_err(|e| Error::io(region.path, "reading array padding", e))?;
        hasher.update(pad);
    }
    if let Some((expected, name)) = &region.checksum {
        let found = hasher.digest();
        if found != *expected {
            return Err(Error::ChecksumMismatch {
                path: region.path.to_path_buf(),
                region: name.clone(),
                expected: *expected,
                found,
            });
        }
    }
    Ok(())
}

/// Writes elements little-endian in chunks, feeding each chunk to `hasher`.
pub(crate) fn write_slice<A: Element>(
    w: &mut dyn Write,
    data: &[A],
    mut hasher: Option<&mut Xxh3>,
) -> io::Result<u64> {
    let bytes = as_bytes(data);
    let size = A::DTYPE.size();
    let mut swapped = Vec::new();
    for chunk in bytes.chunks(CHUNK * 4) {
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

/// Writes elements given in logical order (any layout) through a staging
/// buffer.
pub(crate) fn write_iter<'a, A: Element, I: Iterator<Item = &'a A>>(
    w: &mut dyn Write,
    iter: I,
    mut hasher: Option<&mut Xxh3>,
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
    tmp.persist(path)
        .map_err(|e| Error::io(path, "renaming into place", e.error))?;
    sync_dir(dir).map_err(|e| Error::io(dir, "syncing the directory", e))?;
    Ok(n)
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

/// Moves a value into a type with the same `type_id_of`.
///
/// # Safety
/// `type_id_of::<S>() == type_id_of::<T>()`, and `S` has no lifetime
/// parameters (so `T` is exactly `S`).
pub(crate) unsafe fn cast<S, T>(value: S) -> T {
    debug_assert_eq!(type_id_of::<S>(), type_id_of::<T>());
    let value = std::mem::ManuallyDrop::new(value);
    // SAFETY: by the contract S and T are the same type, so the bits are a
    // valid T; the original is not dropped.
    unsafe { std::mem::transmute_copy::<S, T>(&*value) }
}

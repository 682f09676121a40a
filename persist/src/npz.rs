//! NumPy `.npz` archives: several named arrays in one zip file, as
//! `np.savez` (stored members) and `np.savez_compressed` (deflate) write
//! them.
//!
//! [`NpzReader`] reads members one at a time ([`by_name`](NpzReader::by_name),
//! [`read_any`](NpzReader::read_any)) or all at once
//! ([`read_all`](NpzReader::read_all)); each member is a `.npy` file and
//! gets exactly the checks of [`npy::from_reader`]
//! (shape, exact length, no trailing bytes), plus the zip CRC-32.
//! [`NpzWriter`] writes archives `np.load` reads; [`write_file`] writes one
//! atomically.
//!
//! Names: `np.savez(f, x=a)` stores the member `x.npy`; [`NpzReader::names`]
//! lists `x`, and every reader accepts `x` or `x.npy`, as `np.load` does.
//!
//! Speed: a stored member of an archive opened with [`NpzReader::open`] is
//! read with positional reads straight into its final allocation (the
//! `.npy` reader's path, on several threads for large members), its CRC-32
//! checked block by block as the data arrives; deflate members and
//! archives read from any other reader are streamed.
//!
//! Mapping: [`NpzReader::view`] views a stored member in place when its
//! data is aligned for its element type. NumPy does not align members
//! (a `.npy` header follows a zip local header of varying length), so
//! archives written by NumPy usually give a copy; [`NpzWriter`] aligns
//! stored members' data to 64 bytes, so its archives map. A mapped view
//! does not check the CRC-32 (as a mapped `.npy` has no checksum at all).
//!
//! Hostile archives: the member count and the inflated size of each
//! compressed member (declared in the zip directory, in the member's
//! `.npy` header, and actually inflated) are bounded by [`NpzLimits`];
//! exceeding one is [`Error::LimitExceeded`]. Memory grows with the bytes
//! actually inflated, never with what a header claims, so a zip bomb costs
//! at most about the limit. The zip directory itself is parsed by the
//! `zip` crate, whose memory is bounded by the file's size.
//!
//! ```
//! use jobcache_persist::npz::{self, Compression, NpzReader};
//! use ndarray::{array, Ix1, Ix2};
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("fit.npz");
//! npz::write_file(&path, Compression::Deflated, |npz| {
//!     npz.add("coef", &array![[1.0, 2.0], [3.0, 4.0]])?;
//!     npz.add("labels", &array![1u8, 0, 1])
//! })?;
//!
//! let mut npz = NpzReader::open(&path)?;
//! assert_eq!(npz.names(), ["coef", "labels"]);
//! let coef = npz.by_name::<f64, Ix2>("coef")?;
//! assert_eq!(coef[[1, 0]], 3.0);
//! let labels = npz.read_any("labels")?; // element type found in the file
//! assert_eq!(labels.dtype().name(), "u8");
//! assert_eq!(labels.try_into_array::<u8, Ix1>()?, array![1u8, 0, 1]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ndarray::{Array, ArrayBase, ArrayView, Data, Dimension};
use zip::result::ZipError;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use crate::check::{check_file_len, dim_of};
use crate::element::Element;
use crate::error::{stream_path, Error, Result};
use crate::io::{write_atomic, WriteBehind};
use crate::npy::{self, AnyArray, NpyHeader};
use crate::view::ArrayMap;

/// Limits that keep a hostile or damaged archive from exhausting memory.
/// Non-exhaustive: start from `NpzLimits::default()` and set fields, or
/// chain `with_…`: `NpzLimits::default().with_max_inflated(64 << 30)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct NpzLimits {
    /// Most members an archive may have (default 65 536).
    pub max_members: usize,
    /// Most bytes a compressed member may inflate to, `.npy` header
    /// included (default 4 GiB). Checked against the size the zip
    /// directory declares, the size the member's `.npy` header implies,
    /// and the bytes actually inflated. Stored members are bounded by
    /// the archive's own length instead.
    pub max_inflated: u64,
}

impl Default for NpzLimits {
    fn default() -> Self {
        NpzLimits {
            max_members: 1 << 16,
            max_inflated: 4 << 30,
        }
    }
}

impl NpzLimits {
    /// These limits with `max_members` set.
    pub fn with_max_members(mut self, max_members: usize) -> Self {
        self.max_members = max_members;
        self
    }

    /// These limits with `max_inflated` set.
    pub fn with_max_inflated(mut self, max_inflated: u64) -> Self {
        self.max_inflated = max_inflated;
        self
    }
}

/// Reads the arrays of a `.npz` archive. `R` is [`File`] for archives
/// opened by path (fast stored reads, [`view`](NpzReader::view)), or any
/// `Read + Seek` ([`new`](NpzReader::new)).
pub struct NpzReader<R> {
    zip: ZipArchive<R>,
    /// A second handle on the archive, for positional reads and maps.
    file: Option<File>,
    map: Option<Arc<memmap2::Mmap>>,
    path: PathBuf,
    limits: NpzLimits,
}

impl<R: Read + Seek> std::fmt::Debug for NpzReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NpzReader")
            .field("path", &self.path)
            .field("members", &self.zip.len())
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

fn zip_error(path: &Path, e: ZipError) -> Error {
    match e {
        ZipError::Io(e) => Error::io(path, "reading the zip archive", e),
        other => Error::Zip {
            path: path.to_path_buf(),
            message: format!("not a readable .npz (zip) archive: {other}"),
        },
    }
}

impl NpzReader<File> {
    /// Opens an archive with the default [`NpzLimits`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, NpzLimits::default())
    }

    /// Opens an archive with the given limits.
    pub fn open_with(path: impl AsRef<Path>, limits: NpzLimits) -> Result<Self> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| Error::io(path, "opening", e))?;
        let second = file
            .try_clone()
            .map_err(|e| Error::io(path, "opening", e))?;
        let mut reader = Self::build(file, path, limits)?;
        reader.file = Some(second);
        Ok(reader)
    }

    /// A member viewed in place through a read-only map of the archive
    /// when it is stored (not compressed), little-endian and aligned for
    /// `A`; otherwise a copy, read as [`by_name`](Self::by_name) reads it
    /// ([`NpzArray::is_mapped`] tells which). The archive is mapped once
    /// and shared by every view. A mapped view does not check the
    /// member's CRC-32.
    ///
    /// # Safety
    ///
    /// As [`npy::map`]: nothing may modify the archive while a view of it
    /// is alive.
    pub unsafe fn view<A: Element, D: Dimension>(&mut self, name: &str) -> Result<NpzArray<A, D>> {
        let (index, mpath) = self.find(name)?;
        let found = {
            let mut member = self.zip.by_index(index).map_err(|e| zip_error(&mpath, e))?;
            if member.compression() != CompressionMethod::Stored {
                None
            } else {
                let (start, size) = (member.data_start(), member.size());
                let header = npy::stream_header(&mut member, &mpath)?;
                check_file_len(
                    &mpath,
                    "the .npy member",
                    header.data_offset + header.data_len,
                    size,
                )?;
                Some((start, header))
            }
        };
        let Some((start, header)) = found else {
            return self.by_name(name).map(NpzArray::owned);
        };
        let offset = start + header.data_offset;
        let aligned = offset.is_multiple_of(align_of::<A>() as u64);
        if header.big_endian && A::DTYPE.size() > 1 || !aligned {
            return self.by_name(name).map(NpzArray::owned);
        }
        npy::check_dtype::<A>(&header, &mpath)?;
        let dim: D = dim_of(&header.shape, &mpath)?;
        let map = match (&self.map, &self.file) {
            (Some(map), _) => Arc::clone(map),
            (None, Some(file)) => {
                // SAFETY: the caller guarantees the archive is not modified
                // while mapped.
                let map = unsafe { memmap2::Mmap::map(file) }
                    .map_err(|e| Error::io(&self.path, "mapping", e))?;
                Arc::clone(self.map.insert(Arc::new(map)))
            }
            (None, None) => return self.by_name(name).map(NpzArray::owned),
        };
        let array = ArrayMap::new(map, offset, dim, header.fortran_order, false, &mpath)?;
        Ok(NpzArray {
            inner: Inner::Mapped(array),
        })
    }
}

impl<R: Read + Seek> NpzReader<R> {
    /// Reads the zip directory of an archive held by any reader, with the
    /// default [`NpzLimits`]. Members are streamed.
    pub fn new(reader: R) -> Result<Self> {
        Self::with_limits(reader, NpzLimits::default())
    }

    /// As [`new`](Self::new), with the given limits.
    pub fn with_limits(reader: R, limits: NpzLimits) -> Result<Self> {
        Self::build(reader, stream_path(), limits)
    }

    fn build(reader: R, path: &Path, limits: NpzLimits) -> Result<Self> {
        let zip = ZipArchive::new(reader).map_err(|e| zip_error(path, e))?;
        if zip.len() > limits.max_members {
            return Err(Error::LimitExceeded {
                path: path.to_path_buf(),
                what: "the number of members",
                limit: limits.max_members as u64,
                found: zip.len() as u64,
            });
        }
        Ok(NpzReader {
            zip,
            file: None,
            map: None,
            path: path.to_path_buf(),
            limits,
        })
    }

    /// The arrays' names, in archive order, without the `.npy` suffix.
    pub fn names(&self) -> Vec<String> {
        self.zip
            .file_names()
            .map(|n| n.strip_suffix(".npy").unwrap_or(n).to_string())
            .collect()
    }

    /// The number of members.
    pub fn len(&self) -> usize {
        self.zip.len()
    }

    /// Whether the archive has no members.
    pub fn is_empty(&self) -> bool {
        self.zip.is_empty()
    }

    /// Reads the array `name` (or `name.npy`) as `Array<A, D>`.
    pub fn by_name<A: Element, D: Dimension>(&mut self, name: &str) -> Result<Array<A, D>> {
        self.read_member(name)
    }

    /// Reads the array `name` (or `name.npy`), whatever its element type.
    pub fn read_any(&mut self, name: &str) -> Result<AnyArray> {
        self.read_member(name)
    }

    /// Reads every array, in archive order.
    pub fn read_all(&mut self) -> Result<Vec<(String, AnyArray)>> {
        self.names()
            .into_iter()
            .map(|name| {
                let array = self.read_any(&name)?;
                Ok((name, array))
            })
            .collect()
    }

    /// The member's index and the path its errors name (`archive[member]`).
    fn find(&self, name: &str) -> Result<(usize, PathBuf)> {
        let with_suffix = format!("{name}.npy");
        let index = self
            .zip
            .index_for_name(&with_suffix)
            .or_else(|| self.zip.index_for_name(name))
            .ok_or_else(|| Error::NoSuchArray {
                path: self.path.clone(),
                name: name.to_string(),
                available: self.names(),
            })?;
        let member = self.zip.name_for_index(index).unwrap_or(name);
        let mpath = PathBuf::from(format!("{}[{member}]", self.path.display()));
        Ok((index, mpath))
    }

    fn read_member<T: Target>(&mut self, name: &str) -> Result<T> {
        let (index, mpath) = self.find(name)?;
        let limit = self.limits.max_inflated;
        let mut member = self.zip.by_index(index).map_err(|e| zip_error(&mpath, e))?;
        let stored = member.compression() == CompressionMethod::Stored;
        let (size, crc, start) = (member.size(), member.crc32(), member.data_start());
        let over = |what, found| Error::LimitExceeded {
            path: mpath.clone(),
            what,
            limit,
            found,
        };
        if !stored && size > limit {
            return Err(over("the declared inflated size of the member", size));
        }
        if stored && member.compressed_size() != size {
            return Err(Error::malformed(
                &mpath,
                "zip member sizes",
                format!("a stored member's sizes equal ({size} bytes)"),
                format!("{} bytes stored", member.compressed_size()),
            ));
        }
        let mut hashed = CrcReader {
            inner: &mut member,
            hasher: crc32fast::Hasher::new(),
        };
        let header = npy::stream_header(&mut hashed, &mpath)?;
        let need = header.data_offset + header.data_len;
        if !stored && need > limit {
            return Err(over("the member's .npy size", need));
        }
        check_file_len(&mpath, "the .npy member", need, size)?;
        match &self.file {
            Some(file) if stored => {
                // Positional reads straight into the array; the CRC-32 is
                // checked block by block as the data arrives.
                let crc = Some((hashed.hasher, crc));
                drop(member);
                T::from_file(file, start, &header, &mpath, crc)
            }
            // The stream ends at the member's end, where the zip reader
            // checks the CRC-32; deflate output past the declared size is
            // refused as trailing bytes. The data's length matches the
            // member's declared size, which is within the archive (stored)
            // or the limit (compressed), so it is reserved up front.
            _ => T::from_stream(&mut member, &header, &mpath),
        }
    }
}

/// What a member is read into: a typed array or an [`AnyArray`].
trait Target: Sized {
    fn from_file(file: &File, base: u64, header: &NpyHeader, path: &Path, crc: Crc)
        -> Result<Self>;
    fn from_stream(r: &mut dyn Read, header: &NpyHeader, path: &Path) -> Result<Self>;
}

/// The CRC-32 of a member's `.npy` header so far, and of the whole member.
type Crc = Option<(crc32fast::Hasher, u32)>;

impl<A: Element, D: Dimension> Target for Array<A, D> {
    fn from_file(
        file: &File,
        base: u64,
        header: &NpyHeader,
        path: &Path,
        crc: Crc,
    ) -> Result<Self> {
        npy::read_opened(file, base, header, path, crc)
    }
    fn from_stream(r: &mut dyn Read, header: &NpyHeader, path: &Path) -> Result<Self> {
        npy::stream_data(r, header, path, true)
    }
}

impl Target for AnyArray {
    fn from_file(
        file: &File,
        base: u64,
        header: &NpyHeader,
        path: &Path,
        crc: Crc,
    ) -> Result<Self> {
        AnyArray::read_opened(file, base, header, path, crc)
    }
    fn from_stream(r: &mut dyn Read, header: &NpyHeader, path: &Path) -> Result<Self> {
        AnyArray::stream_data(r, header, path, true)
    }
}

/// A reader that computes the CRC-32 of what passes through it.
struct CrcReader<R> {
    inner: R,
    hasher: crc32fast::Hasher,
}

impl<R: Read> Read for CrcReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// A member returned by [`NpzReader::view`]: a view of the mapped
/// archive, or a copy when the member cannot be viewed in place.
#[derive(Debug)]
pub struct NpzArray<A: Element, D: Dimension> {
    inner: Inner<A, D>,
}

#[derive(Debug)]
enum Inner<A: Element, D: Dimension> {
    Mapped(ArrayMap<Arc<memmap2::Mmap>, A, D>),
    Owned(Array<A, D>),
}

impl<A: Element, D: Dimension> NpzArray<A, D> {
    fn owned(array: Array<A, D>) -> Self {
        NpzArray {
            inner: Inner::Owned(array),
        }
    }

    /// The array (no copy).
    pub fn view(&self) -> ArrayView<'_, A, D> {
        match &self.inner {
            Inner::Mapped(m) => m.view(),
            Inner::Owned(a) => a.view(),
        }
    }

    /// Whether the array is viewed in place (rather than copied).
    pub fn is_mapped(&self) -> bool {
        matches!(self.inner, Inner::Mapped(_))
    }
}

/// How [`NpzWriter`] stores members. Non-exhaustive: more methods may come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Compression {
    /// No compression, as `np.savez`; the data is aligned to 64 bytes so
    /// that [`NpzReader::view`] can map it.
    #[default]
    Stored,
    /// Deflate, as `np.savez_compressed` (zlib's default level).
    Deflated,
}

/// Writes a `.npz` archive that `np.load` reads. Call
/// [`finish`](Self::finish) at the end: an unfinished archive has no zip
/// directory and is unreadable.
pub struct NpzWriter<W: Write + Seek> {
    zip: ZipWriter<W>,
    compression: Compression,
    path: PathBuf,
    /// The file the archive is written to, when known ([`write_file`]):
    /// its writeback is started every 16 MiB, as saves do.
    writeback: Option<File>,
}

impl<W: Write + Seek> std::fmt::Debug for NpzWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NpzWriter")
            .field("path", &self.path)
            .field("compression", &self.compression)
            .finish_non_exhaustive()
    }
}

impl<W: Write + Seek> NpzWriter<W> {
    /// Starts an archive on `w`.
    pub fn new(w: W, compression: Compression) -> Self {
        Self::with_path(w, compression, stream_path())
    }

    fn with_path(w: W, compression: Compression, path: &Path) -> Self {
        NpzWriter {
            zip: ZipWriter::new(w),
            compression,
            path: path.to_path_buf(),
            writeback: None,
        }
    }

    /// Writes a member's bytes: straight to the zip writer, or through
    /// [`WriteBehind`] when the archive's file is known.
    fn write_member(&mut self, write: impl FnOnce(&mut dyn Write) -> Result<u64>) -> Result<()> {
        match &self.writeback {
            Some(file) => write(&mut WriteBehind::over(&mut self.zip, file)),
            None => write(&mut self.zip),
        }
        .map_err(|e| npy::with_path(e, &self.path))?;
        Ok(())
    }

    /// Adds `array` as the member `name.npy` (`np.load(f)[name]`), written
    /// as [`npy::to_writer`] writes it. Names must be non-empty and
    /// unique.
    pub fn add<A, S, D>(&mut self, name: &str, array: &ArrayBase<S, D>) -> Result<()>
    where
        A: Element,
        S: Data<Elem = A>,
        D: Dimension,
    {
        let bytes = (array.len() * A::DTYPE.size()) as u64;
        self.start(name, bytes)?;
        self.write_member(|w| npy::to_writer(w, array))
    }

    /// Adds an array of any element type, as [`add`](Self::add).
    pub fn add_any(&mut self, name: &str, array: &AnyArray) -> Result<()> {
        let bytes = (array.len() * array.dtype().size()) as u64;
        self.start(name, bytes)?;
        self.write_member(|w| array.to_writer(w))
    }

    fn start(&mut self, name: &str, data_bytes: u64) -> Result<()> {
        let bad = |reason: &str| Error::BadName {
            path: self.path.clone(),
            name: name.to_string(),
            reason: reason.to_string(),
        };
        if name.is_empty() {
            return Err(bad("names must not be empty"));
        }
        if name.contains('\0') {
            return Err(bad("names must not contain NUL"));
        }
        let options = SimpleFileOptions::default()
            // Zip64 where a member may pass 4 GiB (headers and deflate's
            // worst case included); NumPy's reader takes either.
            .large_file(data_bytes >= (1 << 31))
            .unix_permissions(0o644);
        let options = match self.compression {
            Compression::Stored => options
                .compression_method(CompressionMethod::Stored)
                .with_alignment(64),
            Compression::Deflated => options.compression_method(CompressionMethod::Deflated),
        };
        let member = format!("{name}.npy");
        self.zip.start_file(&member, options).map_err(|e| match e {
            ZipError::InvalidArchive(m) if m.contains("uplicate") => {
                bad("the archive already holds an array of that name")
            }
            ZipError::Io(e) => Error::io(&self.path, "writing the zip archive", e),
            other => Error::Zip {
                path: self.path.clone(),
                message: format!("cannot write the zip archive: {other}"),
            },
        })
    }

    /// Writes the zip directory and returns the writer.
    pub fn finish(self) -> Result<W> {
        let path = self.path;
        self.zip.finish().map_err(|e| match e {
            ZipError::Io(e) => Error::io(&path, "writing the zip archive", e),
            other => Error::Zip {
                path: path.clone(),
                message: format!("cannot write the zip archive: {other}"),
            },
        })
    }
}

/// Writes a `.npz` archive to `path` atomically (temporary file, fsync,
/// rename, directory fsync): `add` calls `NpzWriter::add` for each array.
/// Returns the archive's length in bytes. As with [`save`](crate::save),
/// the archive's writeback starts every 16 MiB while it is written, so
/// the final fsync waits for the last few MiB only.
pub fn write_file(
    path: impl AsRef<Path>,
    compression: Compression,
    add: impl FnOnce(&mut NpzWriter<&mut File>) -> Result<()>,
) -> Result<u64> {
    let path = path.as_ref();
    write_atomic(path, |file| {
        // A second handle on the file, to start its writeback.
        let writeback = file
            .try_clone()
            .map_err(|e| Error::io(path, "writing the zip archive", e))?;
        let mut npz = NpzWriter::with_path(file, compression, path);
        npz.writeback = Some(writeback);
        add(&mut npz)?;
        let file = npz.finish()?;
        file.stream_position()
            .map_err(|e| Error::io(path, "writing the zip archive", e))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array1, Ix1};

    #[test]
    fn crc_is_checked_block_by_block_on_several_threads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.npz");
        let a = Array1::from_shape_fn((65 << 20) + 3, |i| (i * 7 + (i >> 11)) as u8);
        write_file(&path, Compression::Stored, |npz| npz.add("a", &a)).unwrap();
        let mut npz = NpzReader::open(&path).unwrap();
        assert_eq!(npz.by_name::<u8, Ix1>("a").unwrap(), a);
        drop(npz);
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.len() - (3 << 20);
        bytes[at] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let err = NpzReader::open(&path).unwrap().read_any("a").unwrap_err();
        assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err}");
    }

    #[test]
    fn write_file_writes_the_bytes_of_a_writer_on_memory() {
        // Members past the writeback interval, so that writeback starts
        // several times while the archive is written.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.npz");
        let a = Array1::from_shape_fn((40 << 20) + 5, |i| (i % 251) as u8);
        let b = Array1::from_shape_fn(1000, |i| i as f64);
        for compression in [Compression::Stored, Compression::Deflated] {
            let len = write_file(&path, compression, |npz| {
                npz.add("a", &a)?;
                npz.add("b", &b)
            })
            .unwrap();
            let mut npz = NpzWriter::new(std::io::Cursor::new(Vec::new()), compression);
            npz.add("a", &a).unwrap();
            npz.add("b", &b).unwrap();
            let expected = npz.finish().unwrap().into_inner();
            let written = std::fs::read(&path).unwrap();
            assert_eq!(len, written.len() as u64);
            assert!(written == expected, "{compression:?}");
        }
    }

    #[test]
    fn stored_members_are_aligned_and_viewed_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.npz");
        let a = Array1::from_shape_fn(1000, |i| i as f64);
        write_file(&path, Compression::Stored, |npz| {
            npz.add("odd", &array![1u8, 2, 3])?;
            npz.add("a", &a)
        })
        .unwrap();
        let mut npz = NpzReader::open(&path).unwrap();
        // SAFETY: nothing modifies the test's archive.
        let view = unsafe { npz.view::<f64, Ix1>("a") }.unwrap();
        assert!(view.is_mapped());
        assert_eq!(view.view(), a.view());
        // SAFETY: as above.
        let err = unsafe { npz.view::<f32, Ix1>("a") }.unwrap_err();
        assert!(matches!(err, Error::TypeMismatch { .. }), "{err}");
    }
}

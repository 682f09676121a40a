//! The container: save and load any serde value, arrays out of band.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use ndarray::{Array, ArrayView, Dimension, Ix0, Ix1, Ix2, Ix3, Ix4, Ix5, Ix6, IxDyn};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::de::{check_dtype, entry_dim, read_array, Reader};
use crate::element::{DType, Element};
use crate::error::{stream_path, Error, Result};
use crate::format::{Entry, Layout};
use crate::io::{
    as_same, check_padding_and_sum, open_file, verify_in_place, write_atomic, Region, Source,
    WriteBehind, CHUNK,
};
use crate::npy::with_path;
use crate::ser::{Inner, Writer};
use crate::view::{ArrayMap, StableBytes};

/// Serializes `value` into `writer` in the container format and returns the
/// number of bytes written. Works on any [`Write`]: nothing is sought back.
///
/// Every ndarray array inside the value (the whole value, a field, an
/// element of a `Vec`…) is stored as a raw aligned segment, not in the body.
/// When `T` itself is an owned `Array<A, D>` its memory is written directly.
pub fn to_writer<W: Write, T: Serialize + ?Sized>(writer: W, value: &T) -> Result<u64> {
    to_writer_with(writer, value, &SaveOptions::default())
}

/// How [`save_with`] and [`to_writer_with`] store a value. The default is
/// what [`save`] writes: format version 1, every array raw.
///
/// ```
/// let opts = jobcache_persist::SaveOptions::default().compress(3);
/// assert_eq!(opts.compression(), Some(3));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SaveOptions {
    compress: Option<i32>,
}

impl SaveOptions {
    /// Compresses the body and every array segment with zstd at `level`
    /// (1–22; 1–3 are the fast ones, negative levels faster still), in
    /// independent 1 MiB frames; blocks that do not shrink by 3% are
    /// stored raw. The file is format version 2 and loads with no option;
    /// its arrays cannot be memory-mapped.
    pub fn compress(mut self, level: i32) -> Self {
        self.compress = Some(level);
        self
    }

    /// Sets or clears compression ([`SaveOptions::compress`]).
    pub fn compression_level(mut self, level: Option<i32>) -> Self {
        self.compress = level;
        self
    }

    /// The zstd level, if compressing.
    pub fn compression(&self) -> Option<i32> {
        self.compress
    }
}

/// [`to_writer`] with options (compression).
pub fn to_writer_with<W: Write, T: Serialize + ?Sized>(
    mut writer: W,
    value: &T,
    options: &SaveOptions,
) -> Result<u64> {
    write_value(&mut writer, value, options).map_err(|e| e.into_error(stream_path()))
}

fn write_value<T: Serialize + ?Sized>(
    out: &mut dyn Write,
    value: &T,
    options: &SaveOptions,
) -> Result<u64, Inner> {
    let mut w = Writer::new(out, options.compress)?;
    if !write_direct(&mut w, value)? {
        value.serialize(&mut w)?;
    }
    w.finish()
}

/// Writes `value` straight from memory when it is an owned ndarray array.
fn write_direct<T: ?Sized>(w: &mut Writer<'_>, value: &T) -> Result<bool, Inner> {
    fn dims<T: ?Sized, A: Element>(w: &mut Writer<'_>, value: &T) -> Result<bool, Inner> {
        macro_rules! try_dim {
            ($($d:ty),*) => {$(
                if let Some(array) = as_same::<T, Array<A, $d>>(value) {
                    w.write_array(array)?;
                    return Ok(true);
                }
            )*};
        }
        try_dim!(Ix1, Ix2, Ix3, Ix0, Ix4, Ix5, Ix6, IxDyn);
        Ok(false)
    }
    macro_rules! try_elem {
        ($($a:ty),*) => {$(
            if dims::<T, $a>(w, value)? {
                return Ok(true);
            }
        )*};
    }
    try_elem!(f64, f32, i64, i32, u64, u32, u8, i8, i16, u16, bool);
    Ok(false)
}

/// Saves `value` to `path` atomically: a temporary file in the same
/// directory, fsync, rename over `path`, fsync of the directory. A crash
/// leaves the old file or the new one, never a torn one. Returns the file's
/// length.
pub fn save<T: Serialize + ?Sized>(path: impl AsRef<Path>, value: &T) -> Result<u64> {
    save_with(path, value, &SaveOptions::default())
}

/// [`save`] with options: `save_with(path, &value,
/// &SaveOptions::default().compress(3))` stores it zstd-compressed.
pub fn save_with<T: Serialize + ?Sized>(
    path: impl AsRef<Path>,
    value: &T,
    options: &SaveOptions,
) -> Result<u64> {
    let path = path.as_ref();
    write_atomic(path, |file| {
        write_value(&mut WriteBehind::new(file), value, options).map_err(|e| e.into_error(path))
    })
}

/// Loads a value saved by [`save`] or [`to_writer`]. Metadata and every
/// array's checksum are verified before the value is returned; each array is
/// read straight into its final, huge-page advised allocation. When `T` is an
/// owned `Array<A, D>` (or holds some), the arrays skip serde entirely.
pub fn load<T: DeserializeOwned>(path: impl AsRef<Path>) -> Result<T> {
    let path = path.as_ref();
    let (file, _) = open_file(path)?;
    load_file(&file, path)
}

/// [`load`] from a file that is already open (one a store has just opened,
/// say), saving an open; reads are positional, so the file's position does
/// not matter. `path` names the file in errors.
pub fn load_file<T: DeserializeOwned>(file: &File, path: &Path) -> Result<T> {
    let len = file
        .metadata()
        .map_err(|e| Error::io(path, "reading the metadata of", e))?
        .len();
    let src = Source::File(file);
    let layout = Layout::read(src, len, path)?;
    decode(&layout, src, path)
}

fn decode<T: DeserializeOwned>(layout: &Layout, src: Source<'_>, path: &Path) -> Result<T> {
    let mut reader = Reader::new(&layout.body, &layout.entries, src, path);
    let value = T::deserialize(&mut reader).map_err(|e| e.into_error(path))?;
    reader.end().map_err(|e| e.into_error(path))?;
    Ok(value)
}

/// Loads a value from container bytes in memory.
pub fn from_bytes<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    let path = stream_path();
    let src = Source::Bytes(bytes);
    let layout = Layout::read(src, bytes.len() as u64, path)?;
    decode(&layout, src, path)
}

/// Loads a value from a stream holding one container (read to its end:
/// the trailer that describes the file comes last). Prefer [`load`] for
/// files, which reads arrays straight into place.
pub fn from_reader<R: Read, T: DeserializeOwned>(mut reader: R) -> Result<T> {
    let mut bytes = Vec::new();
    reader
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(stream_path(), "reading", e))?;
    from_bytes(&bytes)
}

/// A container file mapped read-only: arrays are viewed in place, without a
/// copy. Created by [`Mapped::open`], which verifies the header, body and
/// table (the metadata checksum); array segments are verified by
/// [`Mapped::verify_arrays`] / [`Mapped::verify_array`], which read them
/// where they are mapped.
#[derive(Debug)]
pub struct Mapped {
    map: memmap2::Mmap,
    layout: Layout,
    path: PathBuf,
}

// SAFETY: `map` is private to this module and never replaced or mutated
// after `Mapped::open`, so a `Mapped` exposes the same mapped bytes for its
// whole life, wherever it moves (the mapping does not move with it).
unsafe impl StableBytes for Mapped {
    fn bytes(&self) -> &[u8] {
        &self.map
    }
}

impl Mapped {
    /// Maps `path` and verifies its header, body and table (including the
    /// metadata checksum). Cost: a few small reads, independent of the
    /// size of the arrays.
    ///
    /// # Safety
    ///
    /// The map reads the file lazily: if another process truncates or
    /// rewrites the file while it is mapped, reading an array may crash the
    /// process (SIGBUS) or show changing data. Only map files that nothing
    /// modifies in place — such as files published by rename, as [`save`]
    /// and jobcache's store do. This is ripgrep's `MmapChoice::auto`
    /// contract.
    pub unsafe fn open(path: impl AsRef<Path>) -> Result<Mapped> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| Error::io(path, "opening", e))?;
        // SAFETY: forwarded to the caller.
        unsafe { Mapped::open_file(&file, path) }
    }

    /// [`Mapped::open`] of a file that is already open (one a store has
    /// just opened without following symlinks, say): the map is of that
    /// very file, whatever its name points at by now. `path` names it in
    /// errors.
    ///
    /// # Safety
    ///
    /// As for [`Mapped::open`].
    pub unsafe fn open_file(file: &File, path: &Path) -> Result<Mapped> {
        // SAFETY: the caller guarantees the file is not modified while mapped.
        let map = unsafe { memmap2::Mmap::map(file) }.map_err(|e| Error::io(path, "mapping", e))?;
        let layout = Layout::read(Source::Bytes(&map), map.len() as u64, path)?;
        Ok(Mapped {
            map,
            layout,
            path: path.to_path_buf(),
        })
    }

    /// The arrays stored in the file, in order.
    pub fn arrays(&self) -> Vec<ArrayInfo> {
        infos(&self.layout)
    }

    /// A zero-copy view of array `index`, checked against `A` and `D`.
    /// The segment's checksum is not read: call [`Mapped::verify_array`]
    /// first to have it checked.
    pub fn array<A: Element, D: Dimension>(&self, index: usize) -> Result<ArrayView<'_, A, D>> {
        let (offset, dim) = self.place::<A, D>(index)?;
        Ok(ArrayMap::new(&self.map[..], offset, dim, false, false, &self.path)?.into_view())
    }

    /// Where array `index` starts, and its shape, checked against `A`
    /// and `D`.
    fn place<A: Element, D: Dimension>(&self, index: usize) -> Result<(u64, D)> {
        let entry = self.entry(index)?;
        if entry.compressed() {
            return Err(Error::Unmappable {
                path: self.path.clone(),
                reason: format!(
                    "array {index} is zstd-compressed and cannot be viewed in place; load it instead"
                ),
            });
        }
        check_dtype::<A>(entry, &self.path)?;
        let dim: D = entry_dim(entry, &self.path)?;
        Ok((entry.offset, dim))
    }

    fn entry(&self, index: usize) -> Result<&Entry> {
        self.layout.entries.get(index).ok_or_else(|| {
            Error::malformed(
                &self.path,
                "array index",
                format!("below {}", self.layout.entries.len()),
                index,
            )
        })
    }

    /// Deserializes the whole value, copying arrays out of the map (their
    /// checksums are verified as they are copied).
    pub fn load<T: DeserializeOwned>(&self) -> Result<T> {
        decode(&self.layout, Source::Bytes(&self.map), &self.path)
    }

    /// Verifies the checksum and padding of every array segment over the
    /// map itself: no copy, 1 MiB blocks, large segments on several
    /// threads. With [`Mapped::open`]'s checks, every byte of the file has
    /// then been verified.
    pub fn verify_arrays(&self) -> Result<()> {
        (0..self.layout.entries.len()).try_for_each(|i| self.verify_array(i))
    }

    /// Verifies array `index`'s segment over the map, as
    /// [`Mapped::verify_arrays`] does for all of them.
    pub fn verify_array(&self, index: usize) -> Result<()> {
        let entry = self.entry(index)?;
        if entry.compressed() {
            let src = Source::Bytes(&self.map);
            return crate::codec::decode_entry_vec(src, entry, index, &self.path).map(drop);
        }
        verify_in_place(&self.map, entry.len, &entry.region(index, &self.path))
    }

    /// Turns this map into a handle on array `index`, checked against `A`
    /// and `D`, whose [`MappedArray::view`] cannot fail.
    pub fn into_array<A: Element, D: Dimension>(self, index: usize) -> Result<MappedArray<A, D>> {
        let (offset, dim) = self.place::<A, D>(index)?;
        let path = self.path.clone();
        let array = ArrayMap::new(self, offset, dim, false, false, &path)?;
        Ok(MappedArray { array, index })
    }

    /// The mapped file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn verify_entry(src: Source<'_>, entry: &Entry, index: usize, path: &Path) -> Result<()> {
    stream_entry(src, entry, index, path, &mut |_| Ok(()))
}

/// Reads array `index`'s segment in chunks, handing each to `sink`, and
/// checks its padding and checksum at the end.
fn stream_entry(
    src: Source<'_>,
    entry: &Entry,
    index: usize,
    path: &Path,
    sink: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    if entry.compressed() {
        let data = crate::codec::decode_entry_vec(src, entry, index, path)?;
        return data.chunks(CHUNK).try_for_each(sink);
    }
    let mut hasher = crate::io::SegmentHasher::new();
    let mut buf = vec![0u8; CHUNK.min(entry.len as usize)];
    let mut offset = entry.offset;
    let end = entry.offset + entry.len;
    while offset < end {
        let n = (end - offset).min(CHUNK as u64) as usize;
        let chunk = buf.get_mut(..n).unwrap_or_default();
        src.read_at(offset, chunk)
            .map_err(|e| Error::io(path, "reading array data", e))?;
        hasher.update(chunk);
        sink(chunk)?;
        offset += n as u64;
    }
    let region = Region {
        offset,
        ..entry.region(index, path)
    };
    check_padding_and_sum(src, offset, hasher, &region)
}

/// A mapped file whose array is viewed in place; the map stays alive as
/// long as this handle (and any view borrowed from it). Made by [`map`] or
/// [`Mapped::into_array`], which checked the array's type, shape, bounds
/// and alignment; its checksum is checked by [`MappedArray::verify`].
#[derive(Debug)]
pub struct MappedArray<A, D> {
    array: ArrayMap<Mapped, A, D>,
    index: usize,
}

impl<A: Element, D: Dimension> MappedArray<A, D> {
    /// The array, viewing the mapped bytes (no copy, no check: O(1)).
    pub fn view(&self) -> ArrayView<'_, A, D> {
        self.array.view()
    }

    /// Verifies this array's checksum over the map (no copy; see
    /// [`Mapped::verify_arrays`]). The header, body and table were verified
    /// when the file was mapped, so after this every byte the view shows
    /// has been checked.
    pub fn verify(&self) -> Result<()> {
        self.mapped().verify_array(self.index)
    }

    /// The underlying map (to verify segments, or inspect).
    pub fn mapped(&self) -> &Mapped {
        self.array.owner()
    }
}

/// Maps a file whose whole value is one array (as saved by
/// `save(path, &array)`), and checks it against `A` and `D`: header, body
/// and table are verified, the array's checksum is not — call
/// [`MappedArray::verify`] before trusting the data (or use [`load`], which
/// checks everything).
///
/// # Safety
///
/// As for [`Mapped::open`]: nothing may modify the file in place while it
/// is mapped.
pub unsafe fn map<A: Element, D: Dimension>(path: impl AsRef<Path>) -> Result<MappedArray<A, D>> {
    // SAFETY: forwarded to the caller.
    single_array(unsafe { Mapped::open(path) }?)
}

/// [`map`] of a file that is already open (see [`Mapped::open_file`]).
///
/// # Safety
///
/// As for [`Mapped::open`].
pub unsafe fn map_file<A: Element, D: Dimension>(
    file: &File,
    path: &Path,
) -> Result<MappedArray<A, D>> {
    // SAFETY: forwarded to the caller.
    single_array(unsafe { Mapped::open_file(file, path) }?)
}

/// The one array of a mapped file whose whole value is that array.
fn single_array<A: Element, D: Dimension>(mapped: Mapped) -> Result<MappedArray<A, D>> {
    if mapped.layout.body != [0] || mapped.layout.entries.len() != 1 {
        return Err(Error::Unmappable {
            path: mapped.path.clone(),
            reason: "the stored value is not a single array; use Mapped::open and Mapped::array"
                .into(),
        });
    }
    mapped.into_array(0)
}

/// What a file holds, as reported by [`inspect`] and [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// The file inspected.
    pub path: PathBuf,
    /// Its format and version.
    pub format: FileFormat,
    /// Its length in bytes.
    pub file_len: u64,
    /// Length of the postcard body (0 for `.npy`).
    pub body_len: u64,
    /// The metadata checksum (header, body, table); `Valid` for every
    /// container that inspects at all (a mismatch is an error).
    pub metadata: ChecksumStatus,
    /// The stored arrays.
    pub arrays: Vec<ArrayInfo>,
}

impl Inspection {
    /// Whether no checksum was found invalid.
    pub fn is_valid(&self) -> bool {
        !matches!(self.metadata, ChecksumStatus::Invalid { .. })
            && self
                .arrays
                .iter()
                .all(|a| !matches!(a.checksum, ChecksumStatus::Invalid { .. }))
    }
}

/// The format of an inspected file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileFormat {
    /// This crate's container, with its format version.
    Container {
        /// Format version.
        version: u32,
    },
    /// A NumPy `.npy` file.
    Npy {
        /// Major version.
        major: u8,
        /// Minor version.
        minor: u8,
    },
}

/// The state of a checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChecksumStatus {
    /// Present but not checked (run [`verify`]).
    Unchecked,
    /// Checked and matching.
    Valid,
    /// Checked and not matching: the data is corrupt.
    Invalid {
        /// Stored.
        expected: u64,
        /// Computed.
        found: u64,
    },
    /// The format has no checksum (`.npy`).
    Absent,
}

/// One stored array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArrayInfo {
    /// Position among the file's arrays (what [`Mapped::array`] and
    /// [`export_npy`] take).
    pub index: usize,
    /// Element type; `None` for an empty array whose type was not recorded.
    pub dtype: Option<DType>,
    /// Shape.
    pub shape: Vec<u64>,
    /// Bytes of data.
    pub byte_len: u64,
    /// Offset of the data in the file.
    pub offset: u64,
    /// Whether the data is in Fortran order (`.npy` only).
    pub fortran_order: bool,
    /// The stored checksum, or its verification.
    pub checksum: ChecksumStatus,
    /// Whether the segment is zstd-compressed (format version 2).
    pub zstd: bool,
    /// Bytes the segment takes in the file (without padding): `byte_len`
    /// unless compressed.
    pub stored_len: u64,
}

fn infos(layout: &Layout) -> Vec<ArrayInfo> {
    layout
        .entries
        .iter()
        .enumerate()
        .map(|(index, e)| ArrayInfo {
            index,
            dtype: e.dtype,
            shape: e.dims.clone(),
            byte_len: e.len,
            offset: e.offset,
            fortran_order: false,
            checksum: ChecksumStatus::Unchecked,
            zstd: e.compressed(),
            stored_len: e.stored,
        })
        .collect()
}

/// Describes a container or `.npy` file (recognised by its magic bytes):
/// format version, each array's dtype, shape and size. Verifies the
/// container's metadata checksum but not the arrays' (see [`verify`]).
pub fn inspect(path: impl AsRef<Path>) -> Result<Inspection> {
    inspect_impl(path.as_ref(), false)
}

/// Like [`inspect`], and also reads every array to check its checksum; the
/// result says which arrays are corrupt ([`Inspection::is_valid`]). A
/// `.npy` file, which has no checksum, is checked for structure and length.
pub fn verify(path: impl AsRef<Path>) -> Result<Inspection> {
    inspect_impl(path.as_ref(), true)
}

fn inspect_impl(path: &Path, full: bool) -> Result<Inspection> {
    let (file, len) = open_file(path)?;
    let mut start = vec![0u8; len.min(8) as usize];
    Source::File(&file)
        .read_at(0, &mut start)
        .map_err(|e| Error::io(path, "reading", e))?;
    if start.starts_with(b"\x93NUMPY") {
        let h = crate::npy::read_header(path)?;
        return Ok(Inspection {
            path: path.to_path_buf(),
            format: FileFormat::Npy {
                major: h.version.0,
                minor: h.version.1,
            },
            file_len: len,
            body_len: 0,
            metadata: ChecksumStatus::Absent,
            arrays: vec![ArrayInfo {
                index: 0,
                dtype: Some(h.dtype),
                shape: h.shape,
                byte_len: h.data_len,
                offset: h.data_offset,
                fortran_order: h.fortran_order,
                checksum: ChecksumStatus::Absent,
                zstd: false,
                stored_len: h.data_len,
            }],
        });
    }
    let src = Source::File(&file);
    let layout = Layout::read(src, len, path)?;
    let mut arrays = infos(&layout);
    if full {
        for (info, entry) in arrays.iter_mut().zip(&layout.entries) {
            info.checksum = match verify_entry(src, entry, info.index, path) {
                Ok(()) => ChecksumStatus::Valid,
                Err(Error::ChecksumMismatch {
                    expected, found, ..
                }) => ChecksumStatus::Invalid { expected, found },
                Err(e) => return Err(e),
            };
        }
    }
    Ok(Inspection {
        path: path.to_path_buf(),
        format: FileFormat::Container {
            version: layout.version,
        },
        file_len: len,
        body_len: layout.body.len() as u64,
        metadata: ChecksumStatus::Valid,
        arrays,
    })
}

/// Exports array `index` of a container file to a `.npy` file (C order),
/// atomically, verifying the array's checksum on the way (a corrupt array
/// leaves no output). Returns the bytes written.
pub fn export_npy(
    container: impl AsRef<Path>,
    index: usize,
    npy_path: impl AsRef<Path>,
) -> Result<u64> {
    let path = container.as_ref();
    let out = npy_path.as_ref();
    let (file, len) = open_file(path)?;
    let src = Source::File(&file);
    let layout = Layout::read(src, len, path)?;
    let entry = layout.entries.get(index).ok_or_else(|| {
        Error::malformed(
            path,
            "array index",
            format!("below {}", layout.entries.len()),
            index,
        )
    })?;
    let dtype = entry.dtype.unwrap_or(DType::F64);
    let shape: Vec<usize> = entry.dims.iter().map(|&d| d as usize).collect();
    write_atomic(out, |f| {
        let header = crate::npy::header_bytes(dtype, &shape, false);
        f.write_all(&header)
            .map_err(|e| Error::io(out, "writing", e))?;
        stream_entry(src, entry, index, path, &mut |chunk| {
            f.write_all(chunk).map_err(|e| Error::io(out, "writing", e))
        })?;
        Ok(header.len() as u64 + entry.len)
    })
}

/// Loads array `index` of a container file as an owned array (the direct
/// path, whatever the rest of the value is).
pub fn load_array<A: Element, D: Dimension>(
    path: impl AsRef<Path>,
    index: usize,
) -> Result<Array<A, D>> {
    let path = path.as_ref();
    let (file, len) = open_file(path)?;
    let src = Source::File(&file);
    let layout = Layout::read(src, len, path)?;
    read_array(src, &layout.entries, index, path).map_err(|e| with_path(e, path))
}

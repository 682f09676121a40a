//! NumPy `.npy` files: read, write and memory-map ndarray arrays.
//!
//! Supported: dtypes bool, i8–i64, u8–u64, f32, f64; any dimension (fixed
//! [`Ix1`](type@ndarray::Ix1)… or [`IxDyn`](type@ndarray::IxDyn)); C and Fortran order;
//! format versions 1.0, 2.0 and 3.0 on read. Writing produces the bytes NumPy
//! writes for the same array: version 1.0 unless the header needs 2.0, the
//! header padded with spaces so the data starts 64-byte aligned.
//! Big-endian files are byte-swapped on read, and refused by [`map`].
//!
//! Every reader ([`read_header`], [`read`], [`from_reader`], [`map`], and
//! [`inspect`](crate::inspect)) applies the same checks to a header before
//! trusting it, so all of them accept or refuse the same bytes:
//!
//! - the element size times the product of the non-zero axis lengths fits
//!   `isize` (NumPy's "array is too big" rule, which implies ndarray's); a
//!   zero-length axis does not excuse the others, so `(0, 2**64-1)` and,
//!   for `<f8`, `(0, 2**62)` are refused ([`Error::ShapeOverflow`]);
//! - the data the header announces is exactly what follows: a shorter file
//!   is [`Error::Truncated`], and bytes after the data are refused
//!   ([`Error::Malformed`], "file length") — by the file readers from the
//!   file's length, by [`from_reader`] by checking that the stream ends
//!   right after the data (it reads at most 64 KiB further to say how much
//!   is left). So `from_reader` does not read one array out of a longer
//!   stream; NumPy's `np.load` on a stream does, but trailing bytes in a
//!   file are damage or another format, and are not trusted here.
//!
//! [`map`] additionally refuses ([`Error::Unmappable`]) what it cannot view
//! in place: data in the other byte order, or a non-empty array whose data
//! offset is not aligned for its element type; [`read`] loads both.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use ndarray::{Array, ArrayBase, ArrayView, Data, Dimension, ShapeBuilder};

use crate::check::{check_file_len, check_stream_end, data_len, dim_of};
use crate::element::{DType, Element};
use crate::error::{stream_path, Error, Result};
use crate::io::{
    open_file, read_elements, read_stream_elements, write_atomic, write_iter, write_slice, Region,
    Source, WriteBehind,
};
use crate::view::ArrayMap;

mod any;

pub use any::{from_reader_any, map_any, read_any, AnyArray, MappedAny};

const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// Headers longer than this are refused before allocating (NumPy itself
/// refuses headers over 10 000 bytes by default).
const MAX_HEADER: u64 = 1 << 20;

/// The parsed header of a `.npy` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyHeader {
    /// Format version `(major, minor)`: (1, 0), (2, 0) or (3, 0).
    pub version: (u8, u8),
    /// Element type.
    pub dtype: DType,
    /// Whether the elements are stored big-endian.
    pub big_endian: bool,
    /// Whether the data is in Fortran (column-major) order.
    pub fortran_order: bool,
    /// The array's shape.
    pub shape: Vec<u64>,
    /// Byte offset of the data in the file.
    pub data_offset: u64,
    /// Byte length of the data.
    pub data_len: u64,
}

/// Reads the header of a `.npy` file and checks that the data it announces
/// is exactly what the file holds.
pub fn read_header(path: impl AsRef<Path>) -> Result<NpyHeader> {
    open_npy(path.as_ref()).map(|(_, header)| header)
}

/// Opens a `.npy` file and reads its header, checked against the file's
/// length.
pub(crate) fn open_npy(path: &Path) -> Result<(File, NpyHeader)> {
    let (file, len) = open_file(path)?;
    let header = parse_header_from(&mut &file, path, Some(len))?;
    check_file_len(
        path,
        &format!("array data of shape {:?}", header.shape),
        header.data_offset + header.data_len,
        len,
    )?;
    Ok((file, header))
}

/// Reads and parses a header from `r`, which must be positioned at the start.
fn parse_header_from(r: &mut dyn Read, path: &Path, file_len: Option<u64>) -> Result<NpyHeader> {
    let mut start = [0u8; 8];
    read_exact_or(r, &mut start, path, "the .npy magic and version", file_len)?;
    if &start[..6] != MAGIC {
        return Err(Error::BadMagic {
            path: path.to_path_buf(),
            expected: ".npy",
            found: start[..6].to_vec(),
        });
    }
    let version = (start[6], start[7]);
    let (len_bytes, utf8) = match version {
        (1, 0) => (2usize, false),
        (2, 0) => (4, false),
        (3, 0) => (4, true),
        (major, minor) => {
            return Err(Error::UnsupportedVersion {
                path: path.to_path_buf(),
                format: ".npy",
                found: format!("{major}.{minor}"),
                supported: "1.0, 2.0 and 3.0",
            })
        }
    };
    let mut len_buf = [0u8; 4];
    let len_buf = &mut len_buf[..len_bytes];
    read_exact_or(r, len_buf, path, "the .npy header length", file_len)?;
    let header_len = len_buf
        .iter()
        .rev()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    let data_offset = 8 + len_bytes as u64 + header_len;
    if header_len > MAX_HEADER || file_len.is_some_and(|l| l < data_offset) {
        return Err(Error::truncated(
            path,
            "the .npy header",
            data_offset,
            file_len.unwrap_or(data_offset.min(MAX_HEADER)),
        ));
    }
    let mut text = Vec::new();
    r.take(header_len)
        .read_to_end(&mut text)
        .map_err(|e| Error::io(path, "reading the .npy header of", e))?;
    if (text.len() as u64) < header_len {
        return Err(Error::truncated(
            path,
            "the .npy header",
            data_offset,
            8 + len_bytes as u64 + text.len() as u64,
        ));
    }
    let text: String = if utf8 {
        String::from_utf8(text)
            .map_err(|_| Error::malformed(path, ".npy header", "UTF-8 text", "invalid UTF-8"))?
    } else {
        text.iter().map(|&b| char::from(b)).collect()
    };
    let dict = parse_dict(&text)
        .map_err(|why| Error::malformed(path, ".npy header", why, text.trim_end()))?;
    let (dtype, big_endian) = parse_descr(&dict.descr).ok_or_else(|| Error::UnknownDtype {
        path: path.to_path_buf(),
        found: dict.descr.clone(),
    })?;
    let data_len = data_len(&dict.shape, dtype.size() as u64, path)?;
    Ok(NpyHeader {
        version,
        dtype,
        big_endian,
        fortran_order: dict.fortran_order,
        shape: dict.shape,
        data_offset,
        data_len,
    })
}

fn read_exact_or(
    r: &mut dyn Read,
    buf: &mut [u8],
    path: &Path,
    what: &str,
    len: Option<u64>,
) -> Result<()> {
    r.read_exact(buf).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            Error::truncated(path, what, buf.len() as u64, len.unwrap_or(0))
        } else {
            Error::io(path, "reading", e)
        }
    })
}

struct Dict {
    descr: String,
    fortran_order: bool,
    shape: Vec<u64>,
}

/// Parses NumPy's header dictionary, a Python literal such as
/// `{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }`.
fn parse_dict(text: &str) -> Result<Dict, &'static str> {
    const EXPECTED: &str = "a dict with 'descr', 'fortran_order' and 'shape'";
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    p.expect(b'{').ok_or(EXPECTED)?;
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    loop {
        p.ws();
        if p.eat(b'}') {
            break;
        }
        let key = p.string().ok_or(EXPECTED)?;
        p.expect(b':').ok_or(EXPECTED)?;
        p.ws();
        match key.as_str() {
            "descr" => descr = Some(p.string().ok_or("a string descr")?),
            "fortran_order" => {
                fortran = Some(p.boolean().ok_or("True or False for fortran_order")?)
            }
            "shape" => shape = Some(p.tuple().ok_or("a tuple of integers for shape")?),
            _ => return Err(EXPECTED),
        }
        p.ws();
        if !p.eat(b',') {
            p.expect(b'}').ok_or(EXPECTED)?;
            break;
        }
    }
    p.ws();
    if p.i != p.s.len() {
        return Err("only spaces and a newline after the dict");
    }
    match (descr, fortran, shape) {
        (Some(descr), Some(fortran_order), Some(shape)) => Ok(Dict {
            descr,
            fortran_order,
            shape,
        }),
        _ => Err(EXPECTED),
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, c: u8) -> Option<()> {
        self.ws();
        self.eat(c).then_some(())
    }
    fn string(&mut self) -> Option<String> {
        let quote = *self.s.get(self.i)?;
        if quote != b'\'' && quote != b'"' {
            return None;
        }
        let start = self.i + 1;
        let len = self.s.get(start..)?.iter().position(|&c| c == quote)?;
        self.i = start + len + 1;
        std::str::from_utf8(self.s.get(start..start + len)?)
            .ok()
            .map(str::to_string)
    }
    fn boolean(&mut self) -> Option<bool> {
        for (word, value) in [(&b"True"[..], true), (&b"False"[..], false)] {
            if self.s.get(self.i..)?.starts_with(word) {
                self.i += word.len();
                return Some(value);
            }
        }
        None
    }
    fn tuple(&mut self) -> Option<Vec<u64>> {
        self.expect(b'(')?;
        let mut dims = Vec::new();
        loop {
            self.ws();
            if self.eat(b')') {
                return Some(dims);
            }
            let start = self.i;
            while self.s.get(self.i).is_some_and(u8::is_ascii_digit) {
                self.i += 1;
            }
            let digits = std::str::from_utf8(self.s.get(start..self.i)?).ok()?;
            dims.push(digits.parse().ok()?);
            self.ws();
            if !self.eat(b',') {
                self.expect(b')')?;
                return Some(dims);
            }
        }
    }
}

fn parse_descr(descr: &str) -> Option<(DType, bool)> {
    let (order, kind) = descr.split_at_checked(1)?;
    let dtype = DType::ALL.into_iter().find(|d| d.npy_kind() == kind)?;
    let big = match order {
        "<" => false,
        ">" => dtype.size() > 1,
        "|" => false,
        "=" => cfg!(target_endian = "big"),
        _ => return None,
    };
    Some((dtype, big))
}

/// The header bytes NumPy writes for an array (version 1.0, or 2.0 when the
/// header does not fit in 65 535 bytes).
pub(crate) fn header_bytes(dtype: DType, shape: &[usize], fortran_order: bool) -> Vec<u8> {
    let shape_repr = match shape {
        [] => "()".to_string(),
        [n] => format!("({n},)"),
        dims => format!(
            "({})",
            dims.iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut dict = format!(
        "{{'descr': '{}', 'fortran_order': {}, 'shape': {}, }}",
        dtype.npy_descr(),
        if fortran_order { "True" } else { "False" },
        shape_repr
    );
    // NumPy leaves room to grow the first (C) or last (Fortran) axis in place.
    let growth_axis = if fortran_order {
        shape.last()
    } else {
        shape.first()
    };
    if let Some(axis) = growth_axis {
        let digits = axis.to_string().len();
        dict.push_str(&" ".repeat(21usize.saturating_sub(digits)));
    }
    let hlen = dict.len() + 1;
    let pad_v1 = 64 - (10 + hlen) % 64;
    let (prefix_len, version, padlen) = if hlen + pad_v1 <= 65535 {
        (10, 1u8, pad_v1)
    } else {
        (12, 2u8, 64 - (12 + hlen) % 64)
    };
    let total = hlen + padlen;
    let mut out = Vec::with_capacity(prefix_len + total);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[version, 0]);
    if version == 1 {
        out.extend_from_slice(&(total as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(total as u32).to_le_bytes());
    }
    out.extend_from_slice(dict.as_bytes());
    out.resize(prefix_len + total - 1, b' ');
    out.push(b'\n');
    out
}

/// Writes `array` as `.npy` to `w` and returns the number of bytes written.
/// A standard-layout array is written in C order, a Fortran-contiguous one in
/// Fortran order (both straight from memory), any other in C order.
pub fn to_writer<A, S, D>(w: &mut dyn Write, array: &ArrayBase<S, D>) -> Result<u64>
where
    A: Element,
    S: Data<Elem = A>,
    D: Dimension,
{
    let path = stream_path();
    let err = |e| Error::io(path, "writing .npy data", e);
    let shape = array.shape();
    if let Some(slice) = array.as_slice() {
        let header = header_bytes(A::DTYPE, shape, false);
        w.write_all(&header).map_err(err)?;
        return Ok(header.len() as u64 + write_slice(w, slice, None).map_err(err)?);
    }
    if array.ndim() > 1 {
        if let Some(slice) = array.t().as_slice() {
            let header = header_bytes(A::DTYPE, shape, true);
            w.write_all(&header).map_err(err)?;
            return Ok(header.len() as u64 + write_slice(w, slice, None).map_err(err)?);
        }
    }
    let header = header_bytes(A::DTYPE, shape, false);
    w.write_all(&header).map_err(err)?;
    Ok(header.len() as u64 + write_iter(w, array.iter(), None).map_err(err)?)
}

/// Writes `array` to `path` as `.npy`, atomically (temporary file, fsync,
/// rename, directory fsync). Returns the number of bytes written.
pub fn write<A, S, D>(path: impl AsRef<Path>, array: &ArrayBase<S, D>) -> Result<u64>
where
    A: Element,
    S: Data<Elem = A>,
    D: Dimension,
{
    let path = path.as_ref();
    write_atomic(path, |file| {
        to_writer(&mut WriteBehind::new(file), array).map_err(|e| with_path(e, path))
    })
}

/// Replaces the `<stream>` placeholder of an error by a real path.
pub(crate) fn with_path(e: Error, path: &Path) -> Error {
    match e {
        Error::Io { action, source, .. } => Error::io(path, action, source),
        other => other,
    }
}

pub(crate) fn check_dtype<A: Element>(header: &NpyHeader, path: &Path) -> Result<()> {
    if header.dtype != A::DTYPE {
        return Err(Error::TypeMismatch {
            path: path.to_path_buf(),
            expected: A::DTYPE.to_string(),
            found: header.dtype.to_string(),
        });
    }
    Ok(())
}

fn build<A: Element, D: Dimension>(
    header: &NpyHeader,
    dim: D,
    data: Vec<A>,
    path: &Path,
) -> Result<Array<A, D>> {
    let shape = dim.set_f(header.fortran_order);
    Array::from_shape_vec(shape, data)
        .map_err(|e| Error::malformed(path, ".npy data", "as many elements as the shape", e))
}

/// Reads a `.npy` file into an owned array: one positional read per 1 MiB
/// chunk straight into a huge-page advised allocation.
pub fn read<A: Element, D: Dimension>(path: impl AsRef<Path>) -> Result<Array<A, D>> {
    let path = path.as_ref();
    let (file, header) = open_npy(path)?;
    read_opened(&file, 0, &header, path, None)
}

/// Reads the data of an opened file whose header (at `base`) was checked
/// against its length, checking a zip member's CRC-32 if given (see
/// `Region::crc32`).
pub(crate) fn read_opened<A: Element, D: Dimension>(
    file: &File,
    base: u64,
    header: &NpyHeader,
    path: &Path,
    crc32: Option<(crc32fast::Hasher, u32)>,
) -> Result<Array<A, D>> {
    check_dtype::<A>(header, path)?;
    let dim: D = dim_of(&header.shape, path)?;
    let region = Region {
        path,
        offset: base + header.data_offset,
        padding: 0,
        checksum: None,
        crc32,
        big_endian: header.big_endian,
    };
    let data = read_elements::<A>(Source::File(file), dim.size(), &region)?;
    build(header, dim, data, path)
}

/// Reads a `.npy` array from a stream, which must end right after the data
/// (see the module docs). The data is read in bounded steps, so a header
/// claiming more than the stream holds fails without allocating it.
pub fn from_reader<A: Element, D: Dimension>(r: &mut dyn Read) -> Result<Array<A, D>> {
    let path = stream_path();
    let header = stream_header(r, path)?;
    stream_data(r, &header, path, false)
}

/// Reads and checks the header at the start of a stream.
pub(crate) fn stream_header(r: &mut dyn Read, path: &Path) -> Result<NpyHeader> {
    parse_header_from(r, path, None)
}

/// Reads the data that follows `header` in a stream, which must end right
/// after it. Memory grows with the bytes actually read, never ahead of
/// them. With `reserve` (for a length the caller has bounded), the data is
/// read straight into the array's allocation, whose pages the kernel backs
/// only as they are written (or, if the allocator refuses the length, as
/// without `reserve`).
pub(crate) fn stream_data<A: Element, D: Dimension>(
    r: &mut dyn Read,
    header: &NpyHeader,
    path: &Path,
    reserve: bool,
) -> Result<Array<A, D>> {
    check_dtype::<A>(header, path)?;
    let dim: D = dim_of(&header.shape, path)?;
    let region = Region {
        path,
        offset: 0,
        padding: 0,
        checksum: None,
        crc32: None,
        big_endian: header.big_endian,
    };
    if reserve {
        if let Some(data) = read_stream_elements::<A>(r, dim.size(), &region)? {
            check_stream_end(r, path, header.data_offset + header.data_len)?;
            return build(header, dim, data, path);
        }
    }
    let mut bytes = Vec::new();
    r.take(header.data_len)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, "reading .npy data", e))?;
    if (bytes.len() as u64) < header.data_len {
        return Err(Error::truncated(
            path,
            "array data",
            header.data_len,
            bytes.len() as u64,
        ));
    }
    check_stream_end(r, path, header.data_offset + header.data_len)?;
    let data = read_elements::<A>(Source::Bytes(&bytes), dim.size(), &region)?;
    build(header, dim, data, path)
}

/// A read-only memory map of a `.npy` file, viewed as an array without
/// copying. Created by [`map`], which checked everything the view relies
/// on; the map lives as long as this handle and any view borrowed from it.
#[derive(Debug)]
pub struct MappedNpy<A, D> {
    array: ArrayMap<memmap2::Mmap, A, D>,
    header: NpyHeader,
    path: PathBuf,
}

impl<A: Element, D: Dimension> MappedNpy<A, D> {
    /// The array, viewing the mapped bytes (no copy).
    pub fn view(&self) -> ArrayView<'_, A, D> {
        self.array.view()
    }

    /// The parsed header.
    pub fn header(&self) -> &NpyHeader {
        &self.header
    }

    /// The mapped file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Memory-maps a `.npy` file read-only and checks that it holds an array of
/// `A` with `D`'s rank; [`MappedNpy::view`] then views it without a copy.
///
/// # Safety
///
/// The map reads the file lazily: if another process truncates or rewrites
/// the file while the map is alive, reading the view may crash the process
/// (SIGBUS) or show changing data. Call this only on files that nothing
/// modifies in place while they are mapped — for example files published
/// by rename, as this crate's writers and jobcache's store do. This is the
/// same contract as ripgrep's `MmapChoice::auto`.
pub unsafe fn map<A: Element, D: Dimension>(path: impl AsRef<Path>) -> Result<MappedNpy<A, D>> {
    let path = path.as_ref();
    let (file, header) = open_npy(path)?;
    // SAFETY: passed on from the caller.
    unsafe { map_opened(&file, header, path) }
}

/// Maps an opened file whose header was checked against its length.
///
/// # Safety
///
/// As [`map`].
pub(crate) unsafe fn map_opened<A: Element, D: Dimension>(
    file: &File,
    header: NpyHeader,
    path: &Path,
) -> Result<MappedNpy<A, D>> {
    check_dtype::<A>(&header, path)?;
    let dim: D = dim_of(&header.shape, path)?;
    // SAFETY: the caller guarantees the file is not modified while mapped.
    let map = unsafe { memmap2::Mmap::map(file) }.map_err(|e| Error::io(path, "mapping", e))?;
    // The length was checked on the open file; the map, which is what the
    // view reads, must agree (a file changed in between is refused).
    let need = header.data_offset + header.data_len;
    check_file_len(path, "the mapped file", need, map.len() as u64)?;
    let array = ArrayMap::new(
        map,
        header.data_offset,
        dim,
        header.fortran_order,
        header.big_endian,
        path,
    )?;
    Ok(MappedNpy {
        array,
        header,
        path: path.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_64_byte_aligned_and_switches_to_v2_when_long() {
        for shape in [vec![], vec![3], vec![1, 2, 3], vec![123_456_789, 2]] {
            let h = header_bytes(DType::F64, &shape, false);
            assert_eq!(h.len() % 64, 0, "{shape:?}");
            assert_eq!(&h[6..8], &[1, 0]);
            assert_eq!(h.last(), Some(&b'\n'));
        }
        let many = vec![1usize; 30_000];
        let h = header_bytes(DType::U8, &many, false);
        assert_eq!(&h[6..8], &[2, 0]);
        assert_eq!(h.len() % 64, 0);
        let parsed = parse_header_from(&mut &h[..], Path::new("x"), None).unwrap();
        assert_eq!(parsed.shape.len(), 30_000);
        assert_eq!(parsed.data_offset, h.len() as u64);
    }

    #[test]
    fn dict_parser_accepts_numpy_variants_and_rejects_garbage() {
        let d = parse_dict("{\"descr\": \">i4\", \"shape\": (2,3), \"fortran_order\": True}  \n")
            .unwrap();
        assert_eq!(d.shape, vec![2, 3]);
        assert!(d.fortran_order);
        assert_eq!(parse_descr(&d.descr), Some((DType::I32, true)));
        assert_eq!(
            parse_dict("{'descr': '|b1', 'fortran_order': False, 'shape': (), }")
                .unwrap()
                .shape,
            Vec::<u64>::new()
        );
        for bad in [
            "",
            "{",
            "{'descr': '<f8'}",
            "{'descr': 1, 'fortran_order': False, 'shape': ()}",
            "{'descr': '<f8', 'fortran_order': Maybe, 'shape': ()}",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (-1,)}",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (), 'x': 1}",
            "{'descr': '<f8', 'fortran_order': False, 'shape': ()} junk",
        ] {
            assert!(parse_dict(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_descr("<c16"), None);
        assert_eq!(parse_descr(""), None);
    }
}

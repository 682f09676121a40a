//! The container serializer: postcard's encoding for the body, with every
//! ndarray array diverted into a raw, aligned segment.
//!
//! ndarray serializes an array as `struct Array { v: u8, dim, data: [elements] }`.
//! A struct named `Array` with exactly those three fields, in that order, is
//! recognised: `v` and `dim` go to the segment table, the elements are
//! streamed little-endian into a segment, and the body holds only the
//! segment's index.

use std::fmt;
use std::io::Write;

use ndarray::{ArrayBase, Data, Dimension};
use serde::ser::{self, Serialize};

use crate::codec::BlockWriter;
use crate::element::as_bytes;
use crate::element::{DType, Element};
use crate::error::Error;
use crate::format::{align_up, Entry, CODEC_RAW, CODEC_ZSTD, HEADER_LEN, VERSION, VERSION_ZSTD};
use crate::io::{write_iter, write_native, write_slice, SegmentHasher, CHUNK};

/// The error carried through serde: a full crate error, or serde's message.
#[derive(Debug)]
pub(crate) enum Inner {
    Error(Box<Error>),
    Message(String),
}

impl fmt::Display for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Inner::Error(e) => e.fmt(f),
            Inner::Message(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Inner {}

impl ser::Error for Inner {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Inner::Message(msg.to_string())
    }
}

impl serde::de::Error for Inner {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Inner::Message(msg.to_string())
    }
}

impl From<Error> for Inner {
    fn from(e: Error) -> Self {
        Inner::Error(Box::new(e))
    }
}

impl Inner {
    pub(crate) fn into_error(self, path: &std::path::Path) -> Error {
        match self {
            Inner::Error(e) => crate::npy::with_path(*e, path),
            Inner::Message(message) => Error::Serde {
                path: path.to_path_buf(),
                message,
            },
        }
    }
}

fn io_err(e: std::io::Error) -> Inner {
    Error::io(crate::error::stream_path(), "writing", e).into()
}

fn msg(m: impl Into<String>) -> Inner {
    Inner::Message(m.into())
}

/// ndarray's serde format version, written for arrays saved directly.
pub(crate) const NDARRAY_SERDE_VERSION: u8 = 1;

/// Writes a container: segments stream to `out` as the value is walked, the
/// body collects in memory and is written by [`Writer::finish`].
pub(crate) struct Writer<'w> {
    out: &'w mut dyn Write,
    pos: u64,
    body: Vec<u8>,
    entries: Vec<Entry>,
    /// The zstd level of a compressed file (format version 2); `None`
    /// writes version 1, byte for byte as without compression.
    level: Option<i32>,
}

impl<'w> Writer<'w> {
    pub(crate) fn new(out: &'w mut dyn Write, level: Option<i32>) -> Result<Writer<'w>, Inner> {
        let version = if level.is_some() {
            VERSION_ZSTD
        } else {
            VERSION
        };
        out.write_all(&crate::format::header(version))
            .map_err(io_err)?;
        Ok(Writer {
            out,
            pos: HEADER_LEN,
            body: Vec::new(),
            entries: Vec::new(),
            level,
        })
    }

    /// Writes the body, table and trailer; returns the file's length.
    pub(crate) fn finish(self) -> Result<u64, Inner> {
        let (version, compressed) = match self.level {
            Some(level) => (VERSION_ZSTD, crate::codec::compress_body(&self.body, level)),
            None => (VERSION, None),
        };
        let (body, raw_len) = match &compressed {
            Some(frame) => (&frame[..], self.body.len() as u64),
            None => (&self.body[..], 0),
        };
        let tail = crate::format::finish(body, self.pos, &self.entries, version, raw_len);
        self.out.write_all(body).map_err(io_err)?;
        self.out.write_all(&tail).map_err(io_err)?;
        self.out.flush().map_err(io_err)?;
        Ok(self.pos + body.len() as u64 + tail.len() as u64)
    }

    /// Ends a zstd segment: pads the stored bytes, records the entry, and
    /// writes its index into the body.
    fn end_zstd(
        &mut self,
        start: u64,
        blocks: BlockWriter,
        dtype: Option<DType>,
        version: u8,
        dims: Vec<u64>,
    ) -> Result<(), Inner> {
        let (stored, len, checksum) = blocks.finish(self.out).map_err(io_err)?;
        let pad = (align_up(stored) - stored) as usize;
        self.out.write_all(&[0u8; 64][..pad]).map_err(io_err)?;
        self.pos = start + stored + pad as u64;
        let index = self.entries.len();
        self.entries.push(Entry {
            offset: start,
            len,
            checksum,
            dtype,
            version,
            dims,
            codec: CODEC_ZSTD,
            stored,
        });
        self.varint(index as u128);
        Ok(())
    }

    /// Compresses the little-endian bytes of a whole segment.
    fn write_zstd_segment(
        &mut self,
        level: i32,
        le_bytes: &[u8],
        dtype: DType,
        dims: Vec<u64>,
    ) -> Result<(), Inner> {
        let start = self.pos;
        let mut blocks = BlockWriter::new(level);
        blocks.write(self.out, le_bytes).map_err(io_err)?;
        self.end_zstd(start, blocks, Some(dtype), NDARRAY_SERDE_VERSION, dims)
    }

    fn varint(&mut self, mut x: u128) {
        loop {
            let byte = (x & 0x7f) as u8;
            x >>= 7;
            if x == 0 {
                self.body.push(byte);
                return;
            }
            self.body.push(byte | 0x80);
        }
    }

    fn zigzag(&mut self, x: i128) {
        self.varint(((x << 1) ^ (x >> 127)) as u128);
    }

    /// Pads the segment just written, records it, and writes its index into
    /// the body.
    fn end_segment(
        &mut self,
        start: u64,
        len: u64,
        mut hasher: SegmentHasher,
        dtype: Option<DType>,
        version: u8,
        dims: Vec<u64>,
    ) -> Result<(), Inner> {
        let pad = (align_up(len) - len) as usize;
        let zeros = [0u8; 64];
        let zeros = zeros.get(..pad).unwrap_or_default();
        hasher.update(zeros);
        self.out.write_all(zeros).map_err(io_err)?;
        self.pos = start + len + pad as u64;
        let index = self.entries.len();
        self.entries.push(Entry {
            offset: start,
            len,
            checksum: hasher.digest(),
            dtype,
            version,
            dims,
            codec: CODEC_RAW,
            stored: len,
        });
        self.varint(index as u128);
        Ok(())
    }

    /// Stores a typed array straight from memory (no per-element serde).
    pub(crate) fn write_array<A, S, D>(&mut self, array: &ArrayBase<S, D>) -> Result<(), Inner>
    where
        A: Element,
        S: Data<Elem = A>,
        D: Dimension,
    {
        if let Some(level) = self.level {
            let dims = array.shape().iter().map(|&d| d as u64).collect();
            return match array.as_slice() {
                Some(slice) if cfg!(target_endian = "little") => {
                    self.write_zstd_segment(level, as_bytes(slice), A::DTYPE, dims)
                }
                _ => {
                    let mut le = Vec::new();
                    write_iter(&mut le, array.iter(), None).map_err(io_err)?;
                    self.write_zstd_segment(level, &le, A::DTYPE, dims)
                }
            };
        }
        let mut hasher = SegmentHasher::new();
        let start = self.pos;
        let len = match array.as_slice() {
            Some(slice) => write_slice(self.out, slice, Some(&mut hasher)),
            None => write_iter(self.out, array.iter(), Some(&mut hasher)),
        }
        .map_err(io_err)?;
        let dims = array.shape().iter().map(|&d| d as u64).collect();
        self.end_segment(
            start,
            len,
            hasher,
            Some(A::DTYPE),
            NDARRAY_SERDE_VERSION,
            dims,
        )
    }
}

impl Writer<'_> {
    /// Stores an array handed over as raw memory by [`RawArray`], after
    /// checking that the bytes match the shape.
    fn write_raw(&mut self, code: u8, dims: Vec<u64>, bytes: &[u8]) -> Result<(), Inner> {
        let dtype =
            DType::from_code(code).ok_or_else(|| msg(format!("unknown dtype code {code}")))?;
        let count = dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d));
        if count.and_then(|c| c.checked_mul(dtype.size() as u64)) != Some(bytes.len() as u64) {
            return Err(msg(format!(
                "raw array of shape {dims:?} and {dtype} has {} bytes",
                bytes.len()
            )));
        }
        if let Some(level) = self.level {
            if cfg!(target_endian = "little") {
                return self.write_zstd_segment(level, bytes, dtype, dims);
            }
            let mut le = Vec::new();
            write_native(&mut le, bytes, dtype.size(), None).map_err(io_err)?;
            return self.write_zstd_segment(level, &le, dtype, dims);
        }
        let mut hasher = SegmentHasher::new();
        let start = self.pos;
        let len = write_native(self.out, bytes, dtype.size(), Some(&mut hasher)).map_err(io_err)?;
        self.end_segment(start, len, hasher, Some(dtype), NDARRAY_SERDE_VERSION, dims)
    }
}

/// The newtype name under which [`crate::direct::serialize`] hands an
/// array's memory to this crate's writer — and only to it: the name is
/// used only once the serializer is known to be [`Writer`].
pub(crate) const RAW_ARRAY: &str = "$jobcache_persist::RawArray";

/// A contiguous array's memory, serialized as the 3-tuple (dtype code,
/// shape, native-endian bytes) inside the [`RAW_ARRAY`] newtype.
pub(crate) struct RawArray<'a> {
    pub(crate) dtype: DType,
    pub(crate) shape: &'a [usize],
    pub(crate) bytes: &'a [u8],
}

impl Serialize for RawArray<'_> {
    fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Bytes<'a>(&'a [u8]);
        impl Serialize for Bytes<'_> {
            fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(self.0)
            }
        }
        use ser::SerializeTuple;
        let mut t = s.serialize_tuple(3)?;
        t.serialize_element(&self.dtype.code())?;
        t.serialize_element(self.shape)?;
        t.serialize_element(&Bytes(self.bytes))?;
        t.end()
    }
}

impl<'a, 'w> ser::Serializer for &'a mut Writer<'w> {
    type Ok = ();
    type Error = Inner;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = StructSer<'a, 'w>;
    type SerializeStructVariant = Self;

    fn is_human_readable(&self) -> bool {
        false
    }
    fn serialize_bool(self, v: bool) -> Result<(), Inner> {
        self.body.push(u8::from(v));
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), Inner> {
        self.body.push(v as u8);
        Ok(())
    }
    fn serialize_i16(self, v: i16) -> Result<(), Inner> {
        self.zigzag(v.into());
        Ok(())
    }
    fn serialize_i32(self, v: i32) -> Result<(), Inner> {
        self.zigzag(v.into());
        Ok(())
    }
    fn serialize_i64(self, v: i64) -> Result<(), Inner> {
        self.zigzag(v.into());
        Ok(())
    }
    fn serialize_i128(self, v: i128) -> Result<(), Inner> {
        self.zigzag(v);
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<(), Inner> {
        self.body.push(v);
        Ok(())
    }
    fn serialize_u16(self, v: u16) -> Result<(), Inner> {
        self.varint(v.into());
        Ok(())
    }
    fn serialize_u32(self, v: u32) -> Result<(), Inner> {
        self.varint(v.into());
        Ok(())
    }
    fn serialize_u64(self, v: u64) -> Result<(), Inner> {
        self.varint(v.into());
        Ok(())
    }
    fn serialize_u128(self, v: u128) -> Result<(), Inner> {
        self.varint(v);
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<(), Inner> {
        self.body.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_f64(self, v: f64) -> Result<(), Inner> {
        self.body.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), Inner> {
        self.serialize_str(v.encode_utf8(&mut [0u8; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<(), Inner> {
        self.serialize_bytes(v.as_bytes())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Inner> {
        self.varint(v.len() as u128);
        self.body.extend_from_slice(v);
        Ok(())
    }
    fn serialize_none(self) -> Result<(), Inner> {
        self.body.push(0);
        Ok(())
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), Inner> {
        self.body.push(1);
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Inner> {
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Inner> {
        Ok(())
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
    ) -> Result<(), Inner> {
        self.varint(index.into());
        Ok(())
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<(), Inner> {
        if name == RAW_ARRAY {
            return value.serialize(RawSer {
                w: self,
                code: 0,
                dims: Vec::new(),
            });
        }
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        value: &T,
    ) -> Result<(), Inner> {
        self.varint(index.into());
        value.serialize(self)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Self, Inner> {
        let len = len.ok_or_else(|| {
            msg("sequences of unknown length cannot be stored; collect them first")
        })?;
        self.varint(len as u128);
        Ok(self)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self, Inner> {
        Ok(self)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self, Inner> {
        Ok(self)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self, Inner> {
        self.varint(index.into());
        Ok(self)
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Self, Inner> {
        let len =
            len.ok_or_else(|| msg("maps of unknown length cannot be stored; collect them first"))?;
        self.varint(len as u128);
        Ok(self)
    }
    fn serialize_struct(self, name: &'static str, len: usize) -> Result<StructSer<'a, 'w>, Inner> {
        if name == "Array" && len == 3 {
            Ok(StructSer::Array(ArraySer {
                w: self,
                field: 0,
                version: 0,
                dims: Vec::new(),
            }))
        } else {
            Ok(StructSer::Plain(self))
        }
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self, Inner> {
        self.varint(index.into());
        Ok(self)
    }
}

macro_rules! compound {
    ($trait:ident, $method:ident $(, $key:ident)?) => {
        impl ser::$trait for &mut Writer<'_> {
            type Ok = ();
            type Error = Inner;
            fn $method<T: ?Sized + Serialize>(&mut self, $($key: &'static str,)? value: &T) -> Result<(), Inner> {
                $(let _ = $key;)?
                value.serialize(&mut **self)
            }
            fn end(self) -> Result<(), Inner> {
                Ok(())
            }
        }
    };
}
compound!(SerializeSeq, serialize_element);
compound!(SerializeTuple, serialize_element);
compound!(SerializeTupleStruct, serialize_field);
compound!(SerializeTupleVariant, serialize_field);
compound!(SerializeStructVariant, serialize_field, key);

impl ser::SerializeMap for &mut Writer<'_> {
    type Ok = ();
    type Error = Inner;
    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), Inner> {
        key.serialize(&mut **self)
    }
    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Inner> {
        value.serialize(&mut **self)
    }
    fn end(self) -> Result<(), Inner> {
        Ok(())
    }
}

/// A struct being serialized: a plain one, or ndarray's `Array`.
pub(crate) enum StructSer<'a, 'w> {
    Plain(&'a mut Writer<'w>),
    Array(ArraySer<'a, 'w>),
    /// Transient, while switching from `Array` to `Plain`.
    Switching,
}

pub(crate) struct ArraySer<'a, 'w> {
    w: &'a mut Writer<'w>,
    field: usize,
    version: u8,
    dims: Vec<u64>,
}

const NOT_NDARRAY: &str = "a struct named `Array` with three fields must be ndarray's serde form \
     (fields v: u8, dim: integers, data: a sequence of bool or numbers); rename the struct";

impl ser::SerializeStruct for StructSer<'_, '_> {
    type Ok = ();
    type Error = Inner;
    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Inner> {
        if let StructSer::Array(a) = self {
            if a.field == 0 && key != "v" {
                // Another struct that happens to be named `Array`: store it
                // as a plain struct.
                if let StructSer::Array(a) = std::mem::replace(self, StructSer::Switching) {
                    *self = StructSer::Plain(a.w);
                }
            }
        }
        match self {
            StructSer::Switching => Err(msg(NOT_NDARRAY)),
            StructSer::Plain(w) => value.serialize(&mut **w),
            StructSer::Array(a) => {
                match (a.field, key) {
                    (0, "v") => a.version = value.serialize(U8Capture)?,
                    (1, "dim") => value.serialize(DimCapture(&mut a.dims))?,
                    (2, "data") => {
                        let dims = std::mem::take(&mut a.dims);
                        value.serialize(DataSer {
                            w: &mut *a.w,
                            version: a.version,
                            dims,
                        })?
                    }
                    _ => return Err(msg(NOT_NDARRAY)),
                }
                a.field += 1;
                Ok(())
            }
        }
    }
    fn end(self) -> Result<(), Inner> {
        match self {
            StructSer::Array(a) if a.field != 3 => Err(msg(NOT_NDARRAY)),
            _ => Ok(()),
        }
    }
}

/// Rejects everything but the few forms the captures accept.
macro_rules! reject {
    ($($method:ident($($arg:ty),*)),* $(,)?) => {$(
        fn $method(self, $(_: $arg),*) -> Result<Self::Ok, Inner> {
            Err(msg(NOT_NDARRAY))
        }
    )*};
}

/// Rejects the forms no capture accepts.
macro_rules! reject_common {
    () => {
        reject!(
            serialize_bool(bool),
            serialize_i8(i8),
            serialize_i16(i16),
            serialize_i32(i32),
            serialize_i64(i64),
            serialize_u16(u16),
            serialize_f32(f32),
            serialize_f64(f64),
            serialize_char(char),
            serialize_str(&str),
            serialize_none(),
            serialize_unit(),
            serialize_unit_struct(&'static str),
            serialize_unit_variant(&'static str, u32, &'static str),
        );
    };
}

macro_rules! reject_compound {
    () => {
        fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<Self::Ok, Inner> {
            Err(msg(NOT_NDARRAY))
        }
        fn serialize_newtype_struct<T: ?Sized + Serialize>(
            self,
            _: &'static str,
            _: &T,
        ) -> Result<Self::Ok, Inner> {
            Err(msg(NOT_NDARRAY))
        }
        fn serialize_newtype_variant<T: ?Sized + Serialize>(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: &T,
        ) -> Result<Self::Ok, Inner> {
            Err(msg(NOT_NDARRAY))
        }
        fn serialize_tuple_struct(
            self,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleStruct, Inner> {
            Err(msg(NOT_NDARRAY))
        }
        fn serialize_tuple_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleVariant, Inner> {
            Err(msg(NOT_NDARRAY))
        }
        fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Inner> {
            Err(msg(NOT_NDARRAY))
        }
        fn serialize_struct(
            self,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStruct, Inner> {
            Err(msg(NOT_NDARRAY))
        }
        fn serialize_struct_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStructVariant, Inner> {
            Err(msg(NOT_NDARRAY))
        }
    };
}

struct U8Capture;

impl ser::Serializer for U8Capture {
    type Ok = u8;
    type Error = Inner;
    type SerializeSeq = ser::Impossible<u8, Inner>;
    type SerializeTuple = ser::Impossible<u8, Inner>;
    type SerializeTupleStruct = ser::Impossible<u8, Inner>;
    type SerializeTupleVariant = ser::Impossible<u8, Inner>;
    type SerializeMap = ser::Impossible<u8, Inner>;
    type SerializeStruct = ser::Impossible<u8, Inner>;
    type SerializeStructVariant = ser::Impossible<u8, Inner>;
    fn serialize_u8(self, v: u8) -> Result<u8, Inner> {
        Ok(v)
    }
    reject!(
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_bytes(&[u8]),
    );
    reject_common!();
    reject_compound!();
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Inner> {
        Err(msg(NOT_NDARRAY))
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Inner> {
        Err(msg(NOT_NDARRAY))
    }
}

/// Collects the dimensions: a tuple (fixed rank) or sequence (`IxDyn`) of
/// unsigned integers.
struct DimCapture<'a>(&'a mut Vec<u64>);

impl<'a> ser::Serializer for DimCapture<'a> {
    type Ok = ();
    type Error = Inner;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = ser::Impossible<(), Inner>;
    type SerializeTupleVariant = ser::Impossible<(), Inner>;
    type SerializeMap = ser::Impossible<(), Inner>;
    type SerializeStruct = ser::Impossible<(), Inner>;
    type SerializeStructVariant = ser::Impossible<(), Inner>;
    fn serialize_u64(self, v: u64) -> Result<(), Inner> {
        self.0.push(v);
        Ok(())
    }
    fn serialize_u32(self, v: u32) -> Result<(), Inner> {
        self.0.push(v.into());
        Ok(())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self, Inner> {
        Ok(self)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self, Inner> {
        Ok(self)
    }
    reject!(serialize_u8(u8), serialize_bytes(&[u8]),);
    reject_common!();
    reject_compound!();
}

impl ser::SerializeSeq for DimCapture<'_> {
    type Ok = ();
    type Error = Inner;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Inner> {
        value.serialize(DimCapture(&mut *self.0))
    }
    fn end(self) -> Result<(), Inner> {
        Ok(())
    }
}

impl ser::SerializeTuple for DimCapture<'_> {
    type Ok = ();
    type Error = Inner;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Inner> {
        value.serialize(DimCapture(&mut *self.0))
    }
    fn end(self) -> Result<(), Inner> {
        Ok(())
    }
}

/// The `data` field: must be a sequence of primitive elements.
struct DataSer<'a, 'w> {
    w: &'a mut Writer<'w>,
    version: u8,
    dims: Vec<u64>,
}

impl<'a, 'w> ser::Serializer for DataSer<'a, 'w> {
    type Ok = ();
    type Error = Inner;
    type SerializeSeq = SegmentSer<'a, 'w>;
    type SerializeTuple = ser::Impossible<(), Inner>;
    type SerializeTupleStruct = ser::Impossible<(), Inner>;
    type SerializeTupleVariant = ser::Impossible<(), Inner>;
    type SerializeMap = ser::Impossible<(), Inner>;
    type SerializeStruct = ser::Impossible<(), Inner>;
    type SerializeStructVariant = ser::Impossible<(), Inner>;
    fn serialize_seq(self, len: Option<usize>) -> Result<SegmentSer<'a, 'w>, Inner> {
        let count = self
            .dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| msg("array shape overflows"))?;
        if len.is_some_and(|l| l as u64 != count) {
            return Err(msg(NOT_NDARRAY));
        }
        let start = self.w.pos;
        let zstd = self.w.level.map(BlockWriter::new);
        Ok(SegmentSer {
            zstd,
            w: self.w,
            version: self.version,
            dims: self.dims,
            count,
            seen: 0,
            dtype: None,
            staging: Vec::with_capacity(CHUNK),
            hasher: SegmentHasher::new(),
            start,
            len: 0,
        })
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Inner> {
        Err(msg(NOT_NDARRAY))
    }
    reject!(
        serialize_u8(u8),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_bytes(&[u8]),
    );
    reject_common!();
    reject_compound!();
}

/// Streams the elements of one array into its segment.
pub(crate) struct SegmentSer<'a, 'w> {
    w: &'a mut Writer<'w>,
    version: u8,
    dims: Vec<u64>,
    count: u64,
    seen: u64,
    dtype: Option<DType>,
    staging: Vec<u8>,
    hasher: SegmentHasher,
    start: u64,
    len: u64,
    /// The segment's blocks when the file is compressed.
    zstd: Option<BlockWriter>,
}

impl SegmentSer<'_, '_> {
    #[inline]
    fn push(&mut self, dtype: DType, bytes: &[u8]) -> Result<(), Inner> {
        if self.dtype != Some(dtype) {
            match self.dtype {
                None => self.dtype = Some(dtype),
                Some(first) => {
                    return Err(msg(format!(
                        "array elements change type from {first} to {dtype}; arrays must hold one element type"
                    )))
                }
            }
        }
        self.staging.extend_from_slice(bytes);
        if self.staging.len() >= CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Inner> {
        if let Some(blocks) = &mut self.zstd {
            blocks.write(self.w.out, &self.staging).map_err(io_err)?;
            self.staging.clear();
            return Ok(());
        }
        self.hasher.update(&self.staging);
        self.w.out.write_all(&self.staging).map_err(io_err)?;
        self.len += self.staging.len() as u64;
        self.staging.clear();
        Ok(())
    }
}

impl ser::SerializeSeq for SegmentSer<'_, '_> {
    type Ok = ();
    type Error = Inner;
    #[inline]
    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Inner> {
        self.seen += 1;
        value.serialize(ElemSer(self))
    }
    fn end(mut self) -> Result<(), Inner> {
        if self.seen != self.count {
            return Err(msg(NOT_NDARRAY));
        }
        self.flush()?;
        let hasher = std::mem::replace(&mut self.hasher, SegmentHasher::new());
        let dims = std::mem::take(&mut self.dims);
        if let Some(blocks) = self.zstd.take() {
            return self
                .w
                .end_zstd(self.start, blocks, self.dtype, self.version, dims);
        }
        self.w
            .end_segment(self.start, self.len, hasher, self.dtype, self.version, dims)
    }
}

const NOT_PRIMITIVE: &str =
    "array elements must be bool, i8-i64, u8-u64, f32 or f64 to be stored raw; \
     store other element types in a Vec instead of an ndarray array";

/// One element: a primitive, written little-endian.
struct ElemSer<'s, 'a, 'w>(&'s mut SegmentSer<'a, 'w>);

macro_rules! elem {
    ($($method:ident($t:ty) => $d:ident),*) => {$(
        #[inline]
        fn $method(self, v: $t) -> Result<(), Inner> {
            self.0.push(DType::$d, &v.to_le_bytes())
        }
    )*};
}

impl ser::Serializer for ElemSer<'_, '_, '_> {
    type Ok = ();
    type Error = Inner;
    type SerializeSeq = ser::Impossible<(), Inner>;
    type SerializeTuple = ser::Impossible<(), Inner>;
    type SerializeTupleStruct = ser::Impossible<(), Inner>;
    type SerializeTupleVariant = ser::Impossible<(), Inner>;
    type SerializeMap = ser::Impossible<(), Inner>;
    type SerializeStruct = ser::Impossible<(), Inner>;
    type SerializeStructVariant = ser::Impossible<(), Inner>;
    #[inline]
    fn serialize_bool(self, v: bool) -> Result<(), Inner> {
        self.0.push(DType::Bool, &[u8::from(v)])
    }
    elem!(serialize_i8(i8) => I8, serialize_i16(i16) => I16, serialize_i32(i32) => I32,
        serialize_i64(i64) => I64, serialize_u8(u8) => U8, serialize_u16(u16) => U16,
        serialize_u32(u32) => U32, serialize_u64(u64) => U64, serialize_f32(f32) => F32,
        serialize_f64(f64) => F64);
    fn serialize_char(self, _: char) -> Result<(), Inner> {
        Err(msg(NOT_PRIMITIVE))
    }
    fn serialize_str(self, _: &str) -> Result<(), Inner> {
        Err(msg(NOT_PRIMITIVE))
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), Inner> {
        Err(msg(NOT_PRIMITIVE))
    }
    fn serialize_none(self) -> Result<(), Inner> {
        Err(msg(NOT_PRIMITIVE))
    }
    fn serialize_unit(self) -> Result<(), Inner> {
        Err(msg(NOT_PRIMITIVE))
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Inner> {
        Err(msg(NOT_PRIMITIVE))
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Result<(), Inner> {
        Err(msg(NOT_PRIMITIVE))
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Inner> {
        Err(msg(NOT_PRIMITIVE))
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Inner> {
        Err(msg(NOT_PRIMITIVE))
    }
    reject_compound!();
}

const NOT_RAW: &str = "the raw array form is internal to jobcache_persist::direct";

/// Receives a [`RawArray`]: first the 3-tuple, then (with the code and
/// shape captured) its bytes, which go straight to their segment.
struct RawSer<'a, 'w> {
    w: &'a mut Writer<'w>,
    code: u8,
    dims: Vec<u64>,
}

impl<'a, 'w> ser::Serializer for RawSer<'a, 'w> {
    type Ok = ();
    type Error = Inner;
    type SerializeSeq = ser::Impossible<(), Inner>;
    type SerializeTuple = RawTuple<'a, 'w>;
    type SerializeTupleStruct = ser::Impossible<(), Inner>;
    type SerializeTupleVariant = ser::Impossible<(), Inner>;
    type SerializeMap = ser::Impossible<(), Inner>;
    type SerializeStruct = ser::Impossible<(), Inner>;
    type SerializeStructVariant = ser::Impossible<(), Inner>;
    fn serialize_tuple(self, _: usize) -> Result<RawTuple<'a, 'w>, Inner> {
        Ok(RawTuple {
            raw: self,
            field: 0,
        })
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Inner> {
        self.w.write_raw(self.code, self.dims, v)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Inner> {
        Err(msg(NOT_RAW))
    }
    reject!(serialize_u8(u8), serialize_u32(u32), serialize_u64(u64),);
    reject_common!();
    reject_compound!();
}

/// The fields of a [`RawArray`]: dtype code, shape, bytes.
struct RawTuple<'a, 'w> {
    raw: RawSer<'a, 'w>,
    field: usize,
}

impl ser::SerializeTuple for RawTuple<'_, '_> {
    type Ok = ();
    type Error = Inner;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Inner> {
        let raw = &mut self.raw;
        match self.field {
            0 => raw.code = value.serialize(U8Capture)?,
            1 => value.serialize(DimCapture(&mut raw.dims))?,
            2 => value.serialize(RawSer {
                w: &mut *raw.w,
                code: raw.code,
                dims: std::mem::take(&mut raw.dims),
            })?,
            _ => return Err(msg(NOT_RAW)),
        }
        self.field += 1;
        Ok(())
    }
    fn end(self) -> Result<(), Inner> {
        if self.field != 3 {
            return Err(msg(NOT_RAW));
        }
        Ok(())
    }
}

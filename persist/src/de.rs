//! The container deserializer: postcard's encoding for the body; arrays come
//! from their segments, straight into their final allocation when the target
//! type is an owned ndarray array of a supported element type.

use std::any::TypeId;
use std::path::Path;

use ndarray::{Array, Dimension, Ix0, Ix1, Ix2, Ix3, Ix4, Ix5, Ix6, IxDyn};
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

use crate::element::{DType, Element};
use crate::error::Error;
use crate::format::Entry;
use crate::io::{
    check_padding_and_sum, into_same, read_elements, type_id_of, Region, SegmentHasher, Source,
    CHUNK,
};
use crate::ser::Inner;

/// Field names of ndarray's serde form.
const ARRAY_FIELDS: [&str; 3] = ["v", "dim", "data"];

pub(crate) struct Reader<'de> {
    body: &'de [u8],
    pos: usize,
    entries: &'de [Entry],
    src: Source<'de>,
    path: &'de Path,
}

fn msg(m: impl Into<String>) -> Inner {
    Inner::Message(m.into())
}

impl<'de> Reader<'de> {
    pub(crate) fn new(
        body: &'de [u8],
        entries: &'de [Entry],
        src: Source<'de>,
        path: &'de Path,
    ) -> Self {
        Reader {
            body,
            pos: 0,
            entries,
            src,
            path,
        }
    }

    /// Fails unless the whole body was consumed.
    pub(crate) fn end(&self) -> Result<(), Inner> {
        if self.pos != self.body.len() {
            return Err(Error::malformed(
                self.path,
                "body",
                format!("{} bytes for the requested type", self.pos),
                format!("{} bytes", self.body.len()),
            )
            .into());
        }
        Ok(())
    }

    fn eof(&self) -> Inner {
        msg(format!(
            "the body ends early at byte {}: the file holds a different type than requested",
            self.pos
        ))
    }

    fn byte(&mut self) -> Result<u8, Inner> {
        let b = *self.body.get(self.pos).ok_or_else(|| self.eof())?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'de [u8], Inner> {
        let end = self.pos.checked_add(n).ok_or_else(|| self.eof())?;
        let s = self.body.get(self.pos..end).ok_or_else(|| self.eof())?;
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Inner> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn varint(&mut self, bits: u32) -> Result<u128, Inner> {
        let overflow = || msg(format!("an integer in the body overflows {bits} bits"));
        let mut x: u128 = 0;
        for i in 0..bits.div_ceil(7) {
            let b = self.byte()?;
            let part = u128::from(b & 0x7f);
            if 7 * i + 7 > 128 && part >> (128 - 7 * i) != 0 {
                return Err(overflow());
            }
            x |= part << (7 * i);
            if b & 0x80 == 0 {
                if bits < 128 && x >> bits != 0 {
                    return Err(overflow());
                }
                return Ok(x);
            }
        }
        Err(overflow())
    }

    fn unsigned(&mut self, bits: u32) -> Result<u128, Inner> {
        self.varint(bits)
    }

    fn signed(&mut self, bits: u32) -> Result<i128, Inner> {
        let z = self.varint(bits)?;
        Ok(((z >> 1) as i128) ^ -((z & 1) as i128))
    }

    fn len(&mut self) -> Result<usize, Inner> {
        let n = self.varint(64)?;
        usize::try_from(n).map_err(|_| msg("a length in the body overflows usize"))
    }

    fn str(&mut self) -> Result<&'de str, Inner> {
        let n = self.len()?;
        std::str::from_utf8(self.take(n)?).map_err(|_| msg("a string in the body is not UTF-8"))
    }

    fn entry(&self, index: usize) -> Result<&'de Entry, Inner> {
        self.entries.get(index).ok_or_else(|| {
            Error::malformed(
                self.path,
                "array reference",
                format!("an index below {}", self.entries.len()),
                index,
            )
            .into()
        })
    }
}

/// Reads array `index` into an owned array of `A` and `D`.
pub(crate) fn read_array<A: Element, D: Dimension>(
    src: Source<'_>,
    entries: &[Entry],
    index: usize,
    path: &Path,
) -> Result<Array<A, D>, Error> {
    let entry = entries.get(index).ok_or_else(|| {
        Error::malformed(
            path,
            "array index",
            format!("below {}", entries.len()),
            index,
        )
    })?;
    let dim: D = entry_dim(entry, path)?;
    check_dtype::<A>(entry, path)?;
    let region = entry.region(index, path);
    let data = if entry.compressed() {
        crate::io::elements_with::<A>(dim.size(), &region, |bytes| {
            crate::codec::decode_entry(src, entry, index, bytes, path)
        })?
        .ok_or_else(|| {
            Error::out_of_memory(path, crate::codec::DECOMPRESS_ACTION, entry.len.into())
        })?
    } else {
        read_elements::<A>(src, dim.size(), &region)?
    };
    Array::from_shape_vec(dim, data)
        .map_err(|e| Error::malformed(path, "array data", "as many elements as the shape", e))
}

pub(crate) fn check_dtype<A: Element>(entry: &Entry, path: &Path) -> Result<(), Error> {
    match entry.dtype {
        Some(d) if d == A::DTYPE => Ok(()),
        None => Ok(()),
        Some(d) => Err(Error::TypeMismatch {
            path: path.to_path_buf(),
            expected: A::DTYPE.to_string(),
            found: d.to_string(),
        }),
    }
}

pub(crate) fn entry_dim<D: Dimension>(entry: &Entry, path: &Path) -> Result<D, Error> {
    crate::check::dim_of(&entry.dims, path)
}

/// The direct path: when `T` is `Array<A, D>` for a supported `A` and any
/// ndarray dimension type, reads the segment straight into the array.
fn direct<T>(
    src: Source<'_>,
    entries: &[Entry],
    index: usize,
    path: &Path,
) -> Result<Option<T>, Error> {
    fn dims<T, A: Element>(
        src: Source<'_>,
        entries: &[Entry],
        index: usize,
        path: &Path,
    ) -> Result<Option<T>, Error> {
        let target = type_id_of::<T>();
        macro_rules! try_dim {
            ($($d:ty),*) => {$(
                if target == TypeId::of::<Array<A, $d>>() {
                    let array = read_array::<A, $d>(src, entries, index, path)?;
                    return Ok(into_same::<Array<A, $d>, T>(array));
                }
            )*};
        }
        try_dim!(Ix1, Ix2, Ix3, Ix0, Ix4, Ix5, Ix6, IxDyn);
        Ok(None)
    }
    macro_rules! try_elem {
        ($($a:ty),*) => {$(
            if let Some(v) = dims::<T, $a>(src, entries, index, path)? {
                return Ok(Some(v));
            }
        )*};
    }
    try_elem!(f64, f32, i64, i32, u64, u32, u8, i8, i16, u16, bool);
    Ok(None)
}

impl<'de> de::Deserializer<'de> for &mut Reader<'de> {
    type Error = Inner;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Inner> {
        Err(msg(
            "this format is not self-describing: deserialize_any is not supported (untagged enums, flatten and serde_json::Value cannot be loaded)",
        ))
    }
    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Inner> {
        match self.byte()? {
            0 => visitor.visit_bool(false),
            1 => visitor.visit_bool(true),
            b => Err(msg(format!("a bool in the body is {b}, not 0 or 1"))),
        }
    }
    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Inner> {
        visitor.visit_i8(self.byte()? as i8)
    }
    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Inner> {
        visitor.visit_i16(self.signed(16)? as i16)
    }
    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Inner> {
        visitor.visit_i32(self.signed(32)? as i32)
    }
    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Inner> {
        visitor.visit_i64(self.signed(64)? as i64)
    }
    fn deserialize_i128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Inner> {
        visitor.visit_i128(self.signed(128)?)
    }
    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Inner> {
        visitor.visit_u8(self.byte()?)
    }
    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Inner> {
        visitor.visit_u16(self.unsigned(16)? as u16)
    }
    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Inner> {
        visitor.visit_u32(self.unsigned(32)? as u32)
    }
    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Inner> {
        visitor.visit_u64(self.unsigned(64)? as u64)
    }
    fn deserialize_u128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Inner> {
        visitor.visit_u128(self.unsigned(128)?)
    }
    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Inner> {
        visitor.visit_f32(f32::from_le_bytes(self.array()?))
    }
    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Inner> {
        visitor.visit_f64(f64::from_le_bytes(self.array()?))
    }
    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Inner> {
        let s = self.str()?;
        let mut chars = s.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => visitor.visit_char(c),
            _ => Err(msg("a char in the body is not a single character")),
        }
    }
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Inner> {
        visitor.visit_borrowed_str(self.str()?)
    }
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Inner> {
        self.deserialize_str(visitor)
    }
    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Inner> {
        let n = self.len()?;
        visitor.visit_borrowed_bytes(self.take(n)?)
    }
    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Inner> {
        self.deserialize_bytes(visitor)
    }
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Inner> {
        match self.byte()? {
            0 => visitor.visit_none(),
            1 => visitor.visit_some(self),
            b => Err(msg(format!("an option tag in the body is {b}, not 0 or 1"))),
        }
    }
    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Inner> {
        visitor.visit_unit()
    }
    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, Inner> {
        visitor.visit_unit()
    }
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, Inner> {
        visitor.visit_newtype_struct(self)
    }
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Inner> {
        let n = self.len()?;
        visitor.visit_seq(Counted { r: self, left: n })
    }
    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Inner> {
        visitor.visit_seq(Counted { r: self, left: len })
    }
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Inner> {
        visitor.visit_seq(Counted { r: self, left: len })
    }
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Inner> {
        let n = self.len()?;
        visitor.visit_map(Counted { r: self, left: n })
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Inner> {
        if name == "Array" && fields == ARRAY_FIELDS {
            let index = self.len()?;
            if let Some(value) = direct::<V::Value>(self.src, self.entries, index, self.path)? {
                return Ok(value);
            }
            let entry = self.entry(index)?;
            return visitor.visit_seq(ArrayParts {
                entry,
                index,
                stage: 0,
                src: self.src,
                path: self.path,
            });
        }
        visitor.visit_seq(Counted {
            r: self,
            left: fields.len(),
        })
    }
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Inner> {
        visitor.visit_enum(self)
    }
    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Inner> {
        visitor.visit_u32(self.unsigned(32)? as u32)
    }
    fn deserialize_ignored_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Inner> {
        Err(msg("this format cannot skip values of unknown type"))
    }
    fn is_human_readable(&self) -> bool {
        false
    }
}

struct Counted<'r, 'de> {
    r: &'r mut Reader<'de>,
    left: usize,
}

impl<'de> de::SeqAccess<'de> for Counted<'_, 'de> {
    type Error = Inner;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Inner> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(&mut *self.r).map(Some)
    }
    fn size_hint(&self) -> Option<usize> {
        // Never more than the body could hold, so no hint allocates beyond
        // what the file justifies.
        Some(self.left.min(self.r.body.len() - self.r.pos))
    }
}

impl<'de> de::MapAccess<'de> for Counted<'_, 'de> {
    type Error = Inner;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Inner> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(&mut *self.r).map(Some)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Inner> {
        seed.deserialize(&mut *self.r)
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.left.min(self.r.body.len() - self.r.pos))
    }
}

impl<'de> de::EnumAccess<'de> for &mut Reader<'de> {
    type Error = Inner;
    type Variant = Self;
    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), Inner> {
        let index = self.unsigned(32)? as u32;
        let value = seed.deserialize(IntoDeserializer::<Inner>::into_deserializer(index))?;
        Ok((value, self))
    }
}

impl<'de> de::VariantAccess<'de> for &mut Reader<'de> {
    type Error = Inner;
    fn unit_variant(self) -> Result<(), Inner> {
        Ok(())
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Inner> {
        seed.deserialize(self)
    }
    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Inner> {
        visitor.visit_seq(Counted { r: self, left: len })
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Inner> {
        visitor.visit_seq(Counted {
            r: self,
            left: fields.len(),
        })
    }
}

/// ndarray's `(v, dim, data)` handed to its visitor from a segment (the
/// general path, used for target types other than owned arrays).
struct ArrayParts<'a> {
    entry: &'a Entry,
    index: usize,
    stage: u8,
    src: Source<'a>,
    path: &'a Path,
}

impl<'de> de::SeqAccess<'de> for ArrayParts<'_> {
    type Error = Inner;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Inner> {
        self.stage += 1;
        match self.stage {
            1 => seed
                .deserialize(IntoDeserializer::<Inner>::into_deserializer(
                    self.entry.version,
                ))
                .map(Some),
            2 => seed
                .deserialize(DimsDe {
                    dims: &self.entry.dims,
                    path: self.path,
                })
                .map(Some),
            3 => seed
                .deserialize(ElementsDe {
                    elements: Elements::new(self.src, self.entry, self.index, self.path),
                })
                .map(Some),
            _ => Ok(None),
        }
    }
    fn size_hint(&self) -> Option<usize> {
        Some(3usize.saturating_sub(self.stage as usize))
    }
}

struct DimsDe<'a> {
    dims: &'a [u64],
    path: &'a Path,
}

impl<'de> de::Deserializer<'de> for DimsDe<'_> {
    type Error = Inner;
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Inner> {
        visitor.visit_seq(de::value::SeqDeserializer::new(self.dims.iter().copied()))
    }
    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Inner> {
        if len != self.dims.len() {
            return Err(Error::RankMismatch {
                path: self.path.to_path_buf(),
                expected: len,
                found: self.dims.len(),
            }
            .into());
        }
        self.deserialize_any(visitor)
    }
    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq
        tuple_struct map struct enum identifier ignored_any
    }
}

/// Streams a segment's elements through a reused buffer, checking the
/// checksum when the last element has been read.
struct Elements<'a> {
    src: Source<'a>,
    entry: &'a Entry,
    index: usize,
    path: &'a Path,
    buf: Vec<u8>,
    at: usize,
    offset: u64,
    left_bytes: u64,
    left: u64,
    hasher: SegmentHasher,
    done: bool,
    /// A zstd segment's logical bytes, decompressed and checked at once.
    decoded: Option<Vec<u8>>,
}

impl<'a> Elements<'a> {
    fn new(src: Source<'a>, entry: &'a Entry, index: usize, path: &'a Path) -> Self {
        let size = entry.dtype.map_or(1, DType::size) as u64;
        Elements {
            src,
            entry,
            index,
            path,
            buf: Vec::new(),
            at: 0,
            offset: entry.offset,
            left_bytes: entry.len,
            left: entry.len / size,
            hasher: SegmentHasher::new(),
            done: false,
            decoded: None,
        }
    }

    fn refill(&mut self) -> Result<(), Inner> {
        let n = self.left_bytes.min(CHUNK as u64) as usize;
        if self.entry.compressed() {
            if self.decoded.is_none() {
                self.decoded = Some(crate::codec::decode_entry_vec(
                    self.src, self.entry, self.index, self.path,
                )?);
                self.offset = 0;
            }
            let all = self.decoded.as_deref().unwrap_or_default();
            let start = self.offset as usize;
            self.buf.clear();
            self.buf
                .extend_from_slice(all.get(start..start + n).unwrap_or_default());
            self.offset += n as u64;
            self.left_bytes -= n as u64;
            self.at = 0;
            return Ok(());
        }
        self.buf.resize(n, 0);
        self.src
            .read_at(self.offset, &mut self.buf)
            .map_err(|e| Error::io(self.path, "reading array data", e))?;
        self.hasher.update(&self.buf);
        self.offset += n as u64;
        self.left_bytes -= n as u64;
        self.at = 0;
        Ok(())
    }

    fn finish(&mut self) -> Result<(), Inner> {
        if !self.done && self.entry.compressed() {
            // Checked when decompressed; an empty segment is checked here.
            self.done = true;
            if self.decoded.is_none() {
                crate::codec::decode_entry_vec(self.src, self.entry, self.index, self.path)?;
            }
            return Ok(());
        }
        if !self.done {
            self.done = true;
            let region = Region {
                offset: self.offset,
                ..self.entry.region(self.index, self.path)
            };
            let hasher = std::mem::replace(&mut self.hasher, SegmentHasher::new());
            check_padding_and_sum(self.src, self.offset, hasher, &region)?;
        }
        Ok(())
    }
}

struct ElementsDe<'a> {
    elements: Elements<'a>,
}

impl<'de> de::Deserializer<'de> for ElementsDe<'_> {
    type Error = Inner;
    fn deserialize_any<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, Inner> {
        let value = visitor.visit_seq(&mut self.elements)?;
        if self.elements.left != 0 {
            return Err(msg("the array's visitor stopped before the last element"));
        }
        self.elements.finish()?;
        Ok(value)
    }
    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

impl<'de> de::SeqAccess<'de> for &mut Elements<'_> {
    type Error = Inner;
    #[inline]
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Inner> {
        let Some(dtype) = self.entry.dtype else {
            return Ok(None);
        };
        if self.left == 0 {
            self.finish()?;
            return Ok(None);
        }
        let size = dtype.size();
        if self.at + size > self.buf.len() {
            self.refill()?;
        }
        let mut bytes = [0u8; 8];
        let src = self
            .buf
            .get(self.at..self.at + size)
            .ok_or_else(|| msg("array data ends early"))?;
        bytes[..size].copy_from_slice(src);
        self.at += size;
        self.left -= 1;
        seed.deserialize(ElemDe {
            dtype,
            bytes,
            path: self.path,
        })
        .map(Some)
    }
    fn size_hint(&self) -> Option<usize> {
        usize::try_from(self.left).ok()
    }
}

/// One stored element; a request for another primitive type is an error.
struct ElemDe<'a> {
    dtype: DType,
    bytes: [u8; 8],
    path: &'a Path,
}

impl ElemDe<'_> {
    fn mismatch(&self, wanted: DType) -> Inner {
        Error::TypeMismatch {
            path: self.path.to_path_buf(),
            expected: wanted.to_string(),
            found: self.dtype.to_string(),
        }
        .into()
    }
}

macro_rules! elem_de {
    ($($method:ident => $d:ident, $t:ty, $visit:ident);* $(;)?) => {$(
        #[inline]
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Inner> {
            if self.dtype != DType::$d {
                return Err(self.mismatch(DType::$d));
            }
            let mut b = [0u8; std::mem::size_of::<$t>()];
            b.copy_from_slice(&self.bytes[..std::mem::size_of::<$t>()]);
            visitor.$visit(<$t>::from_le_bytes(b))
        }
    )*};
}

impl<'de> de::Deserializer<'de> for ElemDe<'_> {
    type Error = Inner;
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Inner> {
        match self.dtype {
            DType::Bool => self.deserialize_bool(visitor),
            DType::I8 => self.deserialize_i8(visitor),
            DType::I16 => self.deserialize_i16(visitor),
            DType::I32 => self.deserialize_i32(visitor),
            DType::I64 => self.deserialize_i64(visitor),
            DType::U8 => self.deserialize_u8(visitor),
            DType::U16 => self.deserialize_u16(visitor),
            DType::U32 => self.deserialize_u32(visitor),
            DType::U64 => self.deserialize_u64(visitor),
            DType::F32 => self.deserialize_f32(visitor),
            DType::F64 => self.deserialize_f64(visitor),
        }
    }
    #[inline]
    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Inner> {
        if self.dtype != DType::Bool {
            return Err(self.mismatch(DType::Bool));
        }
        match self.bytes[0] {
            0 => visitor.visit_bool(false),
            1 => visitor.visit_bool(true),
            b => Err(Error::malformed(self.path, "bool element", "0 or 1", b).into()),
        }
    }
    elem_de! {
        deserialize_i8 => I8, i8, visit_i8;
        deserialize_i16 => I16, i16, visit_i16;
        deserialize_i32 => I32, i32, visit_i32;
        deserialize_i64 => I64, i64, visit_i64;
        deserialize_u8 => U8, u8, visit_u8;
        deserialize_u16 => U16, u16, visit_u16;
        deserialize_u32 => U32, u32, visit_u32;
        deserialize_u64 => U64, u64, visit_u64;
        deserialize_f32 => F32, f32, visit_f32;
        deserialize_f64 => F64, f64, visit_f64;
    }
    serde::forward_to_deserialize_any! {
        i128 u128 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

//! The canonical encoding (ENCODING.md): postcard 1.x's wire format, with map
//! entries sorted by their encoded bytes.
//!
//! The encoder writes into one buffer. When it hashes (since version 2 of
//! the encoding), the buffer fills up to [`CHUNK`] bytes: a value whose
//! encoding stays shorter is hashed as one item, exactly as in version 1; a
//! longer one is a run, cut into chunks that a [`Tree`] hashes on several threads while
//! the encoder goes on walking the value. Inside a map (whose entries must be
//! sorted before they are hashed) or a sequence of unknown length (whose
//! length prefix is written at its end) nothing is cut.
//!
//! A non-contiguous array (Fortran order, a strided view) reaches the encoder
//! one element at a time in logical order, as ndarray serializes it: the
//! elements are copied into the chunk buffer, and whole chunks are hashed.

use serde::ser::{self, Serialize};
use sha2::{Digest as _, Sha256};

use crate::tree::{Tree, CHUNK};
use crate::{Error, TAG_VALUE, TAG_VALUE_TREE};

/// Where encoded bytes go.
enum Sink<'s> {
    /// Kept in the buffer.
    Keep,
    /// Hashed into `sha` as one item: short values directly, long ones as a
    /// tree started at the first full chunk.
    Hash {
        sha: &'s mut Sha256,
        threads: usize,
        tree: Option<Tree>,
    },
}

pub(crate) struct Encoder<'s> {
    buf: Vec<u8>,
    /// Open maps and unknown-length sequences: while non-zero, the buffer
    /// must not be cut because it will still be rewritten.
    held: usize,
    /// `CHUNK` when hashing, never when keeping every byte.
    cut_at: usize,
    sink: Sink<'s>,
}

impl<'s> Encoder<'s> {
    /// An encoder that keeps every byte (for [`crate::canonical_bytes`]).
    pub(crate) fn to_vec() -> Encoder<'static> {
        Encoder::keeping(Vec::new())
    }

    /// An encoder that keeps every byte, appending to `buf` (a buffer
    /// reused across calls, so a short encoding allocates nothing).
    pub(crate) fn keeping(buf: Vec<u8>) -> Encoder<'static> {
        Encoder {
            buf,
            held: 0,
            cut_at: usize::MAX,
            sink: Sink::Keep,
        }
    }

    /// An encoder that hashes the value as one item into `sha`, with up to
    /// `threads` threads for a long one.
    pub(crate) fn to_sha(sha: &'s mut Sha256, buf: Vec<u8>, threads: usize) -> Encoder<'s> {
        Encoder {
            buf,
            held: 0,
            cut_at: CHUNK,
            sink: Sink::Hash {
                sha,
                threads,
                tree: None,
            },
        }
    }

    /// Hashes the item (a short value with its tag, or a long one's tree
    /// root), waits for the hashing threads if any, and returns the buffer
    /// for reuse.
    pub(crate) fn finish(mut self) -> Result<Vec<u8>, Error> {
        if self.buf.len() >= self.cut_at {
            self.cut();
        }
        let Sink::Hash { sha, tree, .. } = self.sink else {
            return Ok(self.buf);
        };
        match tree {
            None => {
                sha.update([TAG_VALUE]);
                sha.update(&self.buf);
            }
            Some(tree) => {
                let root = tree.finish(&self.buf)?;
                sha.update([TAG_VALUE_TREE]);
                sha.update(root);
            }
        }
        let mut buf = self.buf;
        buf.clear();
        Ok(buf)
    }

    /// The buffer, for [`crate::arrays`] to write encoded bytes into.
    pub(crate) fn buf_mut(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Bytes that still fit before the buffer is cut into a chunk.
    pub(crate) fn room(&self) -> usize {
        self.cut_at.saturating_sub(self.buf.len())
    }

    /// Copies `bytes` into the chunk buffers (hashed by the pool as each
    /// fills), never in place: the caller reuses its memory.
    pub(crate) fn copy_in(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            // Inside a map nothing is cut: take it all at once.
            let n = if self.held > 0 {
                bytes.len()
            } else {
                self.room().clamp(1, bytes.len())
            };
            self.buf.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            self.maybe_cut();
        }
    }

    /// The bytes kept (by an encoder from [`Encoder::to_vec`]).
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// Cuts the buffer into chunks if it is full and may be cut.
    #[inline]
    pub(crate) fn maybe_cut(&mut self) {
        if self.buf.len() >= self.cut_at && self.held == 0 {
            self.cut();
        }
    }

    /// Hands every whole chunk in the buffer to the tree, keeping the rest
    /// (never called while `held`).
    #[cold]
    fn cut(&mut self) {
        let Sink::Hash { threads, tree, .. } = &mut self.sink else {
            return;
        };
        let tree = tree.get_or_insert_with(|| Tree::new(*threads));
        if self.buf.len() < 2 * CHUNK {
            // The usual case: one chunk and the few bytes of the element
            // that crossed its end.
            let mut next = tree.buffer();
            next.extend_from_slice(&self.buf[CHUNK..]);
            self.buf.truncate(CHUNK);
            tree.push_owned(std::mem::replace(&mut self.buf, next));
        } else {
            // A map or an unknown-length sequence just ended: hash its
            // whole chunks in place.
            let whole = self.buf.len() / CHUNK * CHUNK;
            tree.push_slice(&self.buf[..whole]);
            self.buf.drain(..whole);
        }
    }

    #[inline]
    pub(crate) fn varint(&mut self, mut value: u128) {
        while value >= 0x80 {
            self.buf.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.buf.push(value as u8);
    }

    #[inline]
    fn zigzag(&mut self, value: i128) {
        self.varint(((value << 1) ^ (value >> 127)) as u128);
    }

    pub(crate) fn raw(&mut self, bytes: &[u8]) {
        // A long byte string is hashed in place, past the chunk it tops up,
        // when nothing buffered is waiting to be rewritten.
        if bytes.len() >= 2 * CHUNK && self.held == 0 && matches!(self.sink, Sink::Hash { .. }) {
            if self.buf.len() >= CHUNK {
                self.cut();
            }
            let (head, rest) = bytes.split_at(CHUNK - self.buf.len());
            self.buf.extend_from_slice(head);
            self.cut();
            let whole = rest.len() / CHUNK * CHUNK;
            if let Sink::Hash {
                tree: Some(tree), ..
            } = &mut self.sink
            {
                tree.push_slice(&rest[..whole]);
            }
            self.buf.extend_from_slice(&rest[whole..]);
            return;
        }
        self.buf.extend_from_slice(bytes);
        self.maybe_cut();
    }

    fn length_prefixed(&mut self, bytes: &[u8]) {
        self.varint(bytes.len() as u128);
        self.raw(bytes);
    }

    fn variant(&mut self, index: u32) {
        self.varint(u128::from(index));
    }
}

/// Encodes one value: an ndarray array of floats from its memory
/// ([`crate::arrays`]), anything else through its `Serialize`.
///
/// Called for whole values, tuple elements, struct fields and newtype or
/// `Some` contents; not for sequence elements or map entries, which are
/// rarely arrays and are the hot loop of small elements.
#[inline]
pub(crate) fn encode<T: Serialize + ?Sized>(enc: &mut Encoder<'_>, value: &T) -> Result<(), Error> {
    if crate::arrays::encode(enc, value)? {
        return Ok(());
    }
    value.serialize(enc)
}

impl<'a, 's> ser::Serializer for &'a mut Encoder<'s> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = SeqEncoder<'a, 's>;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = MapEncoder<'a, 's>;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    fn is_human_readable(&self) -> bool {
        false
    }

    #[inline]
    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.buf.push(u8::from(v));
        Ok(())
    }
    #[inline]
    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        self.buf.push(v as u8);
        Ok(())
    }
    #[inline]
    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        self.zigzag(i128::from(v));
        Ok(())
    }
    #[inline]
    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        self.zigzag(i128::from(v));
        Ok(())
    }
    #[inline]
    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        self.zigzag(i128::from(v));
        Ok(())
    }
    #[inline]
    fn serialize_i128(self, v: i128) -> Result<(), Error> {
        self.zigzag(v);
        Ok(())
    }
    #[inline]
    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        self.buf.push(v);
        Ok(())
    }
    #[inline]
    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        self.varint(u128::from(v));
        Ok(())
    }
    #[inline]
    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        self.varint(u128::from(v));
        Ok(())
    }
    #[inline]
    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        self.varint(u128::from(v));
        Ok(())
    }
    #[inline]
    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        self.varint(v);
        Ok(())
    }
    #[inline]
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        self.buf.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    #[inline]
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        self.buf.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        let mut utf8 = [0u8; 4];
        self.length_prefixed(v.encode_utf8(&mut utf8).as_bytes());
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        self.length_prefixed(v.as_bytes());
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        self.length_prefixed(v);
        Ok(())
    }
    fn serialize_none(self) -> Result<(), Error> {
        self.buf.push(0);
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        self.buf.push(1);
        encode(self, value)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        Ok(())
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
    ) -> Result<(), Error> {
        self.variant(index);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        encode(self, value)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.variant(index);
        encode(self, value)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqEncoder<'a, 's>, Error> {
        let unknown_from = match len {
            Some(len) => {
                self.varint(len as u128);
                None
            }
            None => {
                self.held += 1;
                Some(self.buf.len())
            }
        };
        Ok(SeqEncoder {
            enc: self,
            unknown_from,
            count: 0,
        })
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self, Error> {
        Ok(self)
    }
    fn serialize_tuple_struct(self, _name: &'static str, _len: usize) -> Result<Self, Error> {
        Ok(self)
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self, Error> {
        self.variant(index);
        Ok(self)
    }
    fn serialize_map(self, len: Option<usize>) -> Result<MapEncoder<'a, 's>, Error> {
        self.held += 1;
        Ok(MapEncoder {
            start: self.buf.len(),
            entry_start: self.buf.len(),
            entries: Vec::with_capacity(len.unwrap_or(0)),
            enc: self,
        })
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Self, Error> {
        Ok(self)
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self, Error> {
        self.variant(index);
        Ok(self)
    }
}

/// A sequence: length prefix, then the elements. The buffer may be cut
/// after each element; this is the hot path for arrays.
pub(crate) struct SeqEncoder<'a, 's> {
    enc: &'a mut Encoder<'s>,
    /// Where the elements of a sequence of unknown length start: its length
    /// prefix is inserted there at the end.
    unknown_from: Option<usize>,
    count: u64,
}

impl ser::SerializeSeq for SeqEncoder<'_, '_> {
    type Ok = ();
    type Error = Error;

    #[inline]
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        value.serialize(&mut *self.enc)?;
        self.count += 1;
        self.enc.maybe_cut();
        Ok(())
    }

    fn end(self) -> Result<(), Error> {
        if let Some(start) = self.unknown_from {
            let mut prefix = Encoder::to_vec();
            prefix.varint(u128::from(self.count));
            self.enc.buf.splice(start..start, prefix.buf);
            self.enc.held -= 1;
            self.enc.maybe_cut();
        }
        Ok(())
    }
}

/// A map: the length prefix, then the entries sorted by their encoded bytes,
/// so that the insertion order and the hasher's random state do not matter.
pub(crate) struct MapEncoder<'a, 's> {
    enc: &'a mut Encoder<'s>,
    start: usize,
    entry_start: usize,
    /// Byte ranges of the finished entries, relative to the buffer.
    entries: Vec<(usize, usize)>,
}

impl ser::SerializeMap for MapEncoder<'_, '_> {
    type Ok = ();
    type Error = Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.entry_start = self.enc.buf.len();
        key.serialize(&mut *self.enc)
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        value.serialize(&mut *self.enc)?;
        self.entries.push((self.entry_start, self.enc.buf.len()));
        Ok(())
    }

    fn end(mut self) -> Result<(), Error> {
        let buf = &self.enc.buf;
        self.entries
            .sort_unstable_by(|a, b| buf[a.0..a.1].cmp(&buf[b.0..b.1]));
        let mut sorted = Encoder::to_vec();
        sorted.buf.reserve(buf.len() - self.start + 10);
        sorted.varint(self.entries.len() as u128);
        for &(from, to) in &self.entries {
            sorted.buf.extend_from_slice(&buf[from..to]);
        }
        self.enc.buf.truncate(self.start);
        self.enc.buf.extend_from_slice(&sorted.buf);
        self.enc.held -= 1;
        self.enc.maybe_cut();
        Ok(())
    }
}

macro_rules! in_order {
    ($trait:ident, $method:ident) => {
        impl ser::$trait for &mut Encoder<'_> {
            type Ok = ();
            type Error = Error;

            #[inline]
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
                encode(self, value)?;
                self.maybe_cut();
                Ok(())
            }

            fn end(self) -> Result<(), Error> {
                Ok(())
            }
        }
    };
}

in_order!(SerializeTuple, serialize_element);
in_order!(SerializeTupleStruct, serialize_field);
in_order!(SerializeTupleVariant, serialize_field);

macro_rules! fields_in_order {
    ($trait:ident) => {
        impl ser::$trait for &mut Encoder<'_> {
            type Ok = ();
            type Error = Error;

            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                _key: &'static str,
                value: &T,
            ) -> Result<(), Error> {
                encode(self, value)
            }

            fn end(self) -> Result<(), Error> {
                Ok(())
            }
        }
    };
}

fields_in_order!(SerializeStruct);
fields_in_order!(SerializeStructVariant);

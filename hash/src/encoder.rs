//! The canonical encoding (ENCODING.md): postcard 1.x's wire format, with map
//! entries sorted by their encoded bytes.
//!
//! The encoder writes into one buffer. When a SHA-256 state is attached, the
//! buffer is handed to it in blocks between sequence elements, so a large
//! array streams through a small buffer; inside a map (whose entries must be
//! sorted before they are hashed) or a sequence of unknown length (whose
//! length prefix is written at its end) nothing is flushed.
//!
//! Once a value has streamed more than [`PIPE_AFTER`] bytes, SHA-256 moves to
//! a worker thread fed through a channel: encoding (reading the value from
//! memory) and hashing then overlap, so a large array hashes at about the
//! speed of SHA-256 over its raw bytes instead of the sum of both.

use serde::ser::{self, Serialize};
use sha2::{Digest as _, Sha256};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

use crate::Error;

/// Bytes buffered before they are fed to SHA-256 on this thread: small
/// enough to stay in the L1 cache between being written and being hashed.
const FLUSH_AT: usize = 16 * 1024;
/// Bytes streamed by one value before hashing moves to a worker thread
/// (a thread costs tens of microseconds; this much takes about a millisecond).
const PIPE_AFTER: usize = 2 << 20;
/// Block size handed to the worker thread: large enough to amortise the
/// channel, small enough to stay in the L2 cache.
const PIPE_BLOCK: usize = 256 * 1024;

/// Where encoded bytes go.
enum Sink<'s> {
    /// Kept in the buffer.
    Keep,
    /// Hashed on this thread.
    Sha(&'s mut Sha256),
    /// Hashed on a worker thread; its final state goes back into `slot`.
    Piped { slot: &'s mut Sha256, pipe: Pipe },
}

struct Pipe {
    full: SyncSender<Vec<u8>>,
    empty: Receiver<Vec<u8>>,
    worker: JoinHandle<Sha256>,
}

impl Pipe {
    fn start(state: Sha256) -> Option<Pipe> {
        let (full, blocks) = mpsc::sync_channel::<Vec<u8>>(2);
        let (recycle, empty) = mpsc::channel::<Vec<u8>>();
        let worker = std::thread::Builder::new()
            .name("jobcache-hash".into())
            .spawn(move || {
                let mut sha = state;
                for block in blocks {
                    sha.update(&block);
                    // The encoder may have finished and gone: then the
                    // block is simply dropped.
                    let _ = recycle.send(block);
                }
                sha
            })
            .ok()?;
        Some(Pipe {
            full,
            empty,
            worker,
        })
    }
}

pub(crate) struct Encoder<'s> {
    buf: Vec<u8>,
    /// Open maps and unknown-length sequences: while non-zero, the buffer
    /// must not be flushed because it will still be rewritten.
    held: usize,
    flush_at: usize,
    /// Bytes handed to the sink so far.
    streamed: usize,
    sink: Sink<'s>,
    /// Set when the worker thread went away: the digest would be wrong.
    broken: bool,
}

impl<'s> Encoder<'s> {
    /// An encoder that keeps every byte (for [`crate::canonical_bytes`]).
    pub(crate) fn to_vec() -> Encoder<'static> {
        Encoder {
            buf: Vec::new(),
            held: 0,
            flush_at: usize::MAX,
            streamed: 0,
            sink: Sink::Keep,
            broken: false,
        }
    }

    /// An encoder that streams into `sha`.
    pub(crate) fn to_sha(sha: &'s mut Sha256, buf: Vec<u8>) -> Encoder<'s> {
        Encoder {
            buf,
            held: 0,
            flush_at: FLUSH_AT,
            streamed: 0,
            sink: Sink::Sha(sha),
            broken: false,
        }
    }

    /// Hashes what is still buffered, waits for the worker thread if there
    /// is one, and returns the buffer (emptied when streaming) for reuse.
    pub(crate) fn finish(mut self) -> Result<Vec<u8>, Error> {
        match self.sink {
            Sink::Keep => {}
            Sink::Sha(sha) => {
                sha.update(&self.buf);
                self.buf.clear();
            }
            Sink::Piped { slot, pipe } => {
                self.broken |= pipe.full.send(std::mem::take(&mut self.buf)).is_err();
                drop(pipe.full);
                match pipe.worker.join() {
                    Ok(state) => *slot = state,
                    Err(_) => self.broken = true,
                }
            }
        }
        if self.broken {
            return Err(Error::Serialize(
                "the hashing thread stopped before the value was hashed".into(),
            ));
        }
        Ok(self.buf)
    }

    #[inline]
    fn maybe_flush(&mut self) {
        if self.buf.len() >= self.flush_at && self.held == 0 {
            self.flush();
        }
    }

    /// Hands the buffer to the sink (never called while `held`).
    #[cold]
    fn flush(&mut self) {
        self.streamed += self.buf.len();
        match &mut self.sink {
            Sink::Keep => {}
            Sink::Sha(sha) => {
                sha.update(&self.buf);
                self.buf.clear();
                if self.streamed >= PIPE_AFTER {
                    self.start_pipe();
                }
            }
            Sink::Piped { pipe, .. } => {
                let next = pipe
                    .empty
                    .try_recv()
                    .unwrap_or_else(|_| Vec::with_capacity(PIPE_BLOCK + 64));
                let block = std::mem::replace(&mut self.buf, next);
                if let Err(mpsc::SendError(_)) = pipe.full.send(block) {
                    self.broken = true;
                }
                self.buf.clear();
            }
        }
    }

    fn start_pipe(&mut self) {
        let Sink::Sha(sha) = std::mem::replace(&mut self.sink, Sink::Keep) else {
            return;
        };
        match Pipe::start(sha.clone()) {
            Some(pipe) => {
                self.sink = Sink::Piped { slot: sha, pipe };
                self.flush_at = PIPE_BLOCK;
                self.buf.reserve(PIPE_BLOCK + 64);
            }
            // No thread to be had: keep hashing here.
            None => self.sink = Sink::Sha(sha),
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
        // A large byte string goes straight to the hash instead of through
        // the buffer, when nothing buffered is waiting to be rewritten.
        if bytes.len() >= FLUSH_AT && self.held == 0 {
            if let Sink::Sha(sha) = &mut self.sink {
                sha.update(&self.buf);
                self.buf.clear();
                sha.update(bytes);
                return;
            }
        }
        self.buf.extend_from_slice(bytes);
        self.maybe_flush();
    }

    fn length_prefixed(&mut self, bytes: &[u8]) {
        self.varint(bytes.len() as u128);
        self.raw(bytes);
    }

    fn variant(&mut self, index: u32) {
        self.varint(u128::from(index));
    }
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
        value.serialize(self)
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
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.variant(index);
        value.serialize(self)
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

/// A sequence: length prefix, then the elements. The buffer may be flushed
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
        self.enc.maybe_flush();
        Ok(())
    }

    fn end(self) -> Result<(), Error> {
        if let Some(start) = self.unknown_from {
            let mut prefix = Encoder::to_vec();
            prefix.varint(u128::from(self.count));
            self.enc.buf.splice(start..start, prefix.buf);
            self.enc.held -= 1;
            self.enc.maybe_flush();
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
        self.enc.maybe_flush();
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
                value.serialize(&mut **self)?;
                self.maybe_flush();
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
                value.serialize(&mut **self)
            }

            fn end(self) -> Result<(), Error> {
                Ok(())
            }
        }
    };
}

fields_in_order!(SerializeStruct);
fields_in_order!(SerializeStructVariant);

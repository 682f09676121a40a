//! Digests of a tuple's elements, each hashed on its own: what a key made
//! of one digest per argument needs (the arguments' bytes are hashed once).

use crate::{Digest, Error};
use serde::ser::{self, Impossible, Serialize};
use std::fmt;

/// One digest per element when `value` serializes as a tuple of at most
/// `max` elements (each element hashed exactly as [`crate::hash`] would
/// hash it alone); `None` for anything else, which the caller hashes whole.
///
/// ```
/// let d = jobcache_hash::hash_elements(&(1u8, "x"), 8).unwrap().unwrap();
/// assert_eq!(d, vec![jobcache_hash::hash(&1u8).unwrap(), jobcache_hash::hash("x").unwrap()]);
/// assert_eq!(jobcache_hash::hash_elements(&vec![1u8, 2], 8).unwrap(), None);
/// ```
pub fn hash_elements<T: Serialize + ?Sized>(
    value: &T,
    max: usize,
) -> Result<Option<Vec<Digest>>, Error> {
    let mut split = Split {
        max,
        digests: Vec::new(),
        error: None,
    };
    let taken_apart = value.serialize(&mut split).is_ok();
    match split.error {
        Some(e) => Err(e),
        None if taken_apart => Ok(Some(split.digests)),
        None => Ok(None),
    }
}

/// A serializer that takes a tuple apart, hashing each element on its own;
/// anything but a tuple is refused (the caller hashes it whole).
struct Split {
    max: usize,
    digests: Vec<Digest>,
    error: Option<Error>,
}

#[derive(Debug)]
struct NotATuple;

impl fmt::Display for NotATuple {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a tuple")
    }
}

impl std::error::Error for NotATuple {}

impl ser::Error for NotATuple {
    fn custom<T: fmt::Display>(_: T) -> Self {
        NotATuple
    }
}

impl ser::SerializeTuple for &mut Split {
    type Ok = ();
    type Error = NotATuple;

    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), NotATuple> {
        match crate::hash(value) {
            Ok(d) => {
                self.digests.push(d);
                Ok(())
            }
            Err(e) => {
                self.error = Some(e);
                Err(NotATuple)
            }
        }
    }

    fn end(self) -> Result<(), NotATuple> {
        Ok(())
    }
}

macro_rules! refuse {
    ($($name:ident($($arg:ty),*)),* $(,)?) => {
        $(fn $name(self, $(_: $arg),*) -> Result<(), NotATuple> { Err(NotATuple) })*
    };
}

impl ser::Serializer for &mut Split {
    type Ok = ();
    type Error = NotATuple;
    type SerializeSeq = Impossible<(), NotATuple>;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Impossible<(), NotATuple>;
    type SerializeTupleVariant = Impossible<(), NotATuple>;
    type SerializeMap = Impossible<(), NotATuple>;
    type SerializeStruct = Impossible<(), NotATuple>;
    type SerializeStructVariant = Impossible<(), NotATuple>;

    refuse!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_char(char),
        serialize_str(&str),
        serialize_bytes(&[u8]),
        serialize_none(),
        serialize_unit(),
        serialize_unit_struct(&'static str),
        serialize_unit_variant(&'static str, u32, &'static str),
    );

    fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<(), NotATuple> {
        Err(NotATuple)
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<(), NotATuple> {
        Err(NotATuple)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), NotATuple> {
        Err(NotATuple)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, NotATuple> {
        Err(NotATuple)
    }
    fn serialize_tuple(self, len: usize) -> Result<Self, NotATuple> {
        if len > self.max {
            return Err(NotATuple);
        }
        Ok(self)
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, NotATuple> {
        Err(NotATuple)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, NotATuple> {
        Err(NotATuple)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, NotATuple> {
        Err(NotATuple)
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, NotATuple> {
        Err(NotATuple)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, NotATuple> {
        Err(NotATuple)
    }
}

//! Serializers that look into an ndarray array's `dim` and `data` fields.

use super::{cut_str, summarize_with, Error, SummaryOptions};
use serde::ser::{self, Impossible, Serialize, Serializer};

/// Methods that reject anything but what the probe is for.
macro_rules! reject {
    ($ok:ty; $($name:ident($($arg:ty),*)),* $(,)?) => {
        $(fn $name(self, $(_: $arg),*) -> Result<$ok, Error> { Err(Error::NotScalar) })*
    };
}

macro_rules! reject_composites {
    ($ok:ty) => {
        fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<$ok, Error> {
            Err(Error::NotScalar)
        }
        fn serialize_newtype_struct<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            _: &T,
        ) -> Result<$ok, Error> {
            Err(Error::NotScalar)
        }
        fn serialize_newtype_variant<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: &T,
        ) -> Result<$ok, Error> {
            Err(Error::NotScalar)
        }
        fn serialize_tuple_struct(
            self,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleStruct, Error> {
            Err(Error::NotScalar)
        }
        fn serialize_tuple_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleVariant, Error> {
            Err(Error::NotScalar)
        }
        fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Error> {
            Err(Error::NotScalar)
        }
        fn serialize_struct(
            self,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStruct, Error> {
            Err(Error::NotScalar)
        }
        fn serialize_struct_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStructVariant, Error> {
            Err(Error::NotScalar)
        }
    };
}

/// Renders one scalar as (dtype, text).
struct ScalarProbe {
    max_str: usize,
}

type Scalar = (&'static str, String);

impl Serializer for ScalarProbe {
    type Ok = Scalar;
    type Error = Error;
    type SerializeSeq = Impossible<Scalar, Error>;
    type SerializeTuple = Impossible<Scalar, Error>;
    type SerializeTupleStruct = Impossible<Scalar, Error>;
    type SerializeTupleVariant = Impossible<Scalar, Error>;
    type SerializeMap = Impossible<Scalar, Error>;
    type SerializeStruct = Impossible<Scalar, Error>;
    type SerializeStructVariant = Impossible<Scalar, Error>;

    fn serialize_bool(self, v: bool) -> Result<Scalar, Error> {
        Ok(("bool", v.to_string()))
    }
    fn serialize_i8(self, v: i8) -> Result<Scalar, Error> {
        Ok(("int8", v.to_string()))
    }
    fn serialize_i16(self, v: i16) -> Result<Scalar, Error> {
        Ok(("int16", v.to_string()))
    }
    fn serialize_i32(self, v: i32) -> Result<Scalar, Error> {
        Ok(("int32", v.to_string()))
    }
    fn serialize_i64(self, v: i64) -> Result<Scalar, Error> {
        Ok(("int64", v.to_string()))
    }
    fn serialize_i128(self, v: i128) -> Result<Scalar, Error> {
        Ok(("int128", v.to_string()))
    }
    fn serialize_u8(self, v: u8) -> Result<Scalar, Error> {
        Ok(("uint8", v.to_string()))
    }
    fn serialize_u16(self, v: u16) -> Result<Scalar, Error> {
        Ok(("uint16", v.to_string()))
    }
    fn serialize_u32(self, v: u32) -> Result<Scalar, Error> {
        Ok(("uint32", v.to_string()))
    }
    fn serialize_u64(self, v: u64) -> Result<Scalar, Error> {
        Ok(("uint64", v.to_string()))
    }
    fn serialize_u128(self, v: u128) -> Result<Scalar, Error> {
        Ok(("uint128", v.to_string()))
    }
    fn serialize_f32(self, v: f32) -> Result<Scalar, Error> {
        Ok(("float32", format!("{v:?}")))
    }
    fn serialize_f64(self, v: f64) -> Result<Scalar, Error> {
        Ok(("float64", format!("{v:?}")))
    }
    fn serialize_char(self, v: char) -> Result<Scalar, Error> {
        Ok(("char", format!("{v:?}")))
    }
    fn serialize_str(self, v: &str) -> Result<Scalar, Error> {
        Ok(("str", format!("{:?}", cut_str(v, self.max_str))))
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<Scalar, Error> {
        Ok(("enum", variant.to_string()))
    }
    reject!(Scalar; serialize_bytes(&[u8]), serialize_none(), serialize_unit(),
        serialize_unit_struct(&'static str));
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Err(Error::NotScalar)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Error> {
        Err(Error::NotScalar)
    }
    reject_composites!(Scalar);
}

/// Collects an array's shape (a tuple or sequence of integers).
pub(super) struct DimProbe(pub(super) Vec<usize>);

/// More axes than any real array has: stop rather than collect.
const MAX_DIMS: usize = 64;

impl DimProbe {
    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        if self.0.len() >= MAX_DIMS {
            return Err(Error::NotScalar);
        }
        let (dtype, text) = value.serialize(ScalarProbe { max_str: 0 })?;
        if !dtype.starts_with("uint") && !dtype.starts_with("int") {
            return Err(Error::NotScalar);
        }
        self.0.push(text.parse().map_err(|_| Error::NotScalar)?);
        Ok(())
    }
}

impl Serializer for &mut DimProbe {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Impossible<(), Error>;
    type SerializeStruct = Impossible<(), Error>;
    type SerializeStructVariant = Impossible<(), Error>;

    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        // A zero-dimensional shape `()` or a one-axis `Ix1` written as a number.
        self.0
            .push(usize::try_from(v).map_err(|_| Error::NotScalar)?);
        Ok(())
    }
    fn serialize_unit(self) -> Result<(), Error> {
        Ok(())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self, Error> {
        Ok(self)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self, Error> {
        Ok(self)
    }
    reject!((); serialize_bool(bool), serialize_i8(i8), serialize_i16(i16), serialize_i32(i32),
        serialize_i64(i64), serialize_u8(u8), serialize_u16(u16), serialize_u32(u32),
        serialize_f32(f32), serialize_f64(f64), serialize_char(char), serialize_str(&str),
        serialize_bytes(&[u8]), serialize_none(), serialize_unit_struct(&'static str),
        serialize_unit_variant(&'static str, u32, &'static str));
    reject_composites!(());
}

impl ser::SerializeSeq for &mut DimProbe {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.push(value)
    }
    fn end(self) -> Result<(), Error> {
        Ok(())
    }
}

impl ser::SerializeTuple for &mut DimProbe {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.push(value)
    }
    fn end(self) -> Result<(), Error> {
        Ok(())
    }
}

/// Takes the first few values of an array's `data` sequence, then stops it.
pub(super) struct DataProbe {
    pub(super) dtype: &'static str,
    pub(super) values: Vec<String>,
    opts: SummaryOptions,
}

impl DataProbe {
    pub(super) fn new(opts: SummaryOptions) -> Self {
        DataProbe {
            dtype: "unknown",
            values: Vec::new(),
            opts,
        }
    }
}

impl Serializer for &mut DataProbe {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Self;
    type SerializeTuple = Impossible<(), Error>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Impossible<(), Error>;
    type SerializeStruct = Impossible<(), Error>;
    type SerializeStructVariant = Impossible<(), Error>;

    fn serialize_seq(self, _: Option<usize>) -> Result<Self, Error> {
        Ok(self)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Error> {
        Err(Error::NotScalar)
    }
    reject!((); serialize_bool(bool), serialize_i8(i8), serialize_i16(i16), serialize_i32(i32),
        serialize_i64(i64), serialize_u8(u8), serialize_u16(u16), serialize_u32(u32),
        serialize_u64(u64), serialize_f32(f32), serialize_f64(f64), serialize_char(char),
        serialize_str(&str), serialize_bytes(&[u8]), serialize_none(), serialize_unit(),
        serialize_unit_struct(&'static str), serialize_unit_variant(&'static str, u32, &'static str));
    reject_composites!(());
}

impl ser::SerializeSeq for &mut DataProbe {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        if self.values.len() >= self.opts.array_values {
            // Enough: stop the array's iteration here, whatever its length.
            return Err(Error::Done);
        }
        let max_str = self.opts.max_str.min(16);
        let (dtype, text) = match value.serialize(ScalarProbe { max_str }) {
            Ok(scalar) => scalar,
            Err(_) => {
                let small = SummaryOptions {
                    max_len: 40,
                    max_items: 3,
                    max_str,
                    max_depth: 2,
                    array_values: 2,
                };
                ("object", summarize_with(value, &small))
            }
        };
        if self.values.is_empty() {
            self.dtype = dtype;
        }
        self.values.push(text);
        Ok(())
    }
    fn end(self) -> Result<(), Error> {
        Ok(())
    }
}

/// Reads a string, or an `Option` of one (`Ok(None)` for `None`), for
/// the fields of a shelved handle; anything else is `NotScalar`.
pub(super) struct StrProbe {
    /// Bytes kept of the string.
    pub(super) max: usize,
}

impl Serializer for StrProbe {
    type Ok = Option<String>;
    type Error = Error;
    type SerializeSeq = Impossible<Option<String>, Error>;
    type SerializeTuple = Impossible<Option<String>, Error>;
    type SerializeTupleStruct = Impossible<Option<String>, Error>;
    type SerializeTupleVariant = Impossible<Option<String>, Error>;
    type SerializeMap = Impossible<Option<String>, Error>;
    type SerializeStruct = Impossible<Option<String>, Error>;
    type SerializeStructVariant = Impossible<Option<String>, Error>;

    fn serialize_str(self, v: &str) -> Result<Option<String>, Error> {
        Ok(Some(cut_str(v, self.max)))
    }
    fn serialize_none(self) -> Result<Option<String>, Error> {
        Ok(None)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Option<String>, Error> {
        value.serialize(self)
    }
    fn collect_str<T: std::fmt::Display + ?Sized>(
        self,
        value: &T,
    ) -> Result<Option<String>, Error> {
        use std::fmt::Write as _;
        let mut w = super::Capped::new(self.max * 4 + 8);
        let _ = write!(w, "{value}");
        self.serialize_str(&w.buf)
    }
    reject!(Option<String>; serialize_bool(bool), serialize_i8(i8), serialize_i16(i16),
        serialize_i32(i32), serialize_i64(i64), serialize_u8(u8), serialize_u16(u16),
        serialize_u32(u32), serialize_u64(u64), serialize_f32(f32), serialize_f64(f64),
        serialize_char(char), serialize_bytes(&[u8]), serialize_unit(),
        serialize_unit_struct(&'static str), serialize_unit_variant(&'static str, u32, &'static str));
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Err(Error::NotScalar)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Error> {
        Err(Error::NotScalar)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<Option<String>, Error> {
        Err(Error::NotScalar)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<Option<String>, Error> {
        Err(Error::NotScalar)
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Error> {
        Err(Error::NotScalar)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(Error::NotScalar)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Error> {
        Err(Error::NotScalar)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, Error> {
        Err(Error::NotScalar)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(Error::NotScalar)
    }
}

//! Element types that can be stored raw: bool, integers and floats.

use std::fmt;

/// The element type of a stored array.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DType {
    /// `bool`, one byte, 0 or 1.
    Bool,
    /// `i8`.
    I8,
    /// `i16`.
    I16,
    /// `i32`.
    I32,
    /// `i64`.
    I64,
    /// `u8`.
    U8,
    /// `u16`.
    U16,
    /// `u32`.
    U32,
    /// `u64`.
    U64,
    /// `f32`.
    F32,
    /// `f64`.
    F64,
}

impl DType {
    /// Every supported dtype.
    pub const ALL: [DType; 11] = [
        DType::Bool,
        DType::I8,
        DType::I16,
        DType::I32,
        DType::I64,
        DType::U8,
        DType::U16,
        DType::U32,
        DType::U64,
        DType::F32,
        DType::F64,
    ];

    /// Size of one element in bytes.
    pub fn size(self) -> usize {
        match self {
            DType::Bool | DType::I8 | DType::U8 => 1,
            DType::I16 | DType::U16 => 2,
            DType::I32 | DType::U32 | DType::F32 => 4,
            DType::I64 | DType::U64 | DType::F64 => 8,
        }
    }

    /// The Rust name of the element type (`f64`).
    pub fn name(self) -> &'static str {
        match self {
            DType::Bool => "bool",
            DType::I8 => "i8",
            DType::I16 => "i16",
            DType::I32 => "i32",
            DType::I64 => "i64",
            DType::U8 => "u8",
            DType::U16 => "u16",
            DType::U32 => "u32",
            DType::U64 => "u64",
            DType::F32 => "f32",
            DType::F64 => "f64",
        }
    }

    /// The code stored in container files (see FORMAT.md).
    pub(crate) fn code(self) -> u8 {
        match self {
            DType::Bool => 1,
            DType::I8 => 2,
            DType::I16 => 3,
            DType::I32 => 4,
            DType::I64 => 5,
            DType::U8 => 6,
            DType::U16 => 7,
            DType::U32 => 8,
            DType::U64 => 9,
            DType::F32 => 10,
            DType::F64 => 11,
        }
    }

    pub(crate) fn from_code(code: u8) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.code() == code)
    }

    /// NumPy's type character and size (`b1`, `i4`, `f8`), without byte order.
    pub(crate) fn npy_kind(self) -> &'static str {
        match self {
            DType::Bool => "b1",
            DType::I8 => "i1",
            DType::I16 => "i2",
            DType::I32 => "i4",
            DType::I64 => "i8",
            DType::U8 => "u1",
            DType::U16 => "u2",
            DType::U32 => "u4",
            DType::U64 => "u8",
            DType::F32 => "f4",
            DType::F64 => "f8",
        }
    }

    /// The little-endian `.npy` descr NumPy writes (`<f8`, `|b1`).
    pub(crate) fn npy_descr(self) -> String {
        let order = if self.size() == 1 { '|' } else { '<' };
        format!("{order}{}", self.npy_kind())
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

mod sealed {
    pub trait Sealed {}
}

/// A primitive element type stored raw, little-endian: `bool`, `i8`…`i64`,
/// `u8`…`u64`, `f32`, `f64`. Sealed: every bit pattern of the right size is
/// a valid value, except for `bool`, which the readers check.
pub trait Element: Copy + Send + Sync + fmt::Debug + PartialEq + 'static + sealed::Sealed {
    /// The stored dtype of this type.
    const DTYPE: DType;
}

/// Calls the macro `$m` with every element type, as `Variant type` pairs
/// after a `;` (and after `$args`, if given): the one list of element
/// types that code generated per type is written from.
macro_rules! with_dtypes {
    ($m:ident $(, $($args:tt)*)?) => {
        $m! {$($($args)*)? ; Bool bool, I8 i8, I16 i16, I32 i32, I64 i64, U8 u8, U16 u16,
            U32 u32, U64 u64, F32 f32, F64 f64}
    };
}
pub(crate) use with_dtypes;

macro_rules! element {
    (; $($d:ident $t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl Element for $t {
            const DTYPE: DType = DType::$d;
        }
    )*};
}

with_dtypes!(element);

/// The bytes of a slice of elements (native byte order).
pub(crate) fn as_bytes<A: Element>(data: &[A]) -> &[u8] {
    // SAFETY: `Element` types are plain integers, floats or bool: no padding,
    // no pointers, every byte initialised; the length covers exactly the slice.
    unsafe { std::slice::from_raw_parts(data.as_ptr().cast::<u8>(), std::mem::size_of_val(data)) }
}

/// Converts native-order element bytes to little-endian in place (a no-op on
/// little-endian machines) — the same swap also converts back.
pub(crate) fn swap_to_le(bytes: &mut [u8], size: usize) {
    if cfg!(target_endian = "big") {
        swap_bytes(bytes, size);
    }
}

/// Reverses the bytes of each `size`-byte element.
pub(crate) fn swap_bytes(bytes: &mut [u8], size: usize) {
    if size > 1 {
        for chunk in bytes.chunks_exact_mut(size) {
            chunk.reverse();
        }
    }
}

//! Arrays whose element type is known only once the file is read:
//! [`AnyArray`] (owned) and [`MappedAny`] (mapped), one variant per
//! supported element type, and the readers that return them.

use std::any::Any;
use std::io::Read;
use std::path::Path;

use ndarray::{Array, ArrayD, ArrayViewD, Dimension, IxDyn};

use super::{map_opened, open_npy, read_opened, stream_data, stream_header, MappedNpy, NpyHeader};
use crate::element::{with_dtypes, DType, Element};
use crate::error::{stream_path, Error, Result};

macro_rules! any_types {
    (; $($v:ident $t:ty),*) => {
        /// An owned array of any supported element type, as read from a
        /// file whose dtype is not known in advance ([`read_any`],
        /// [`from_reader_any`], [`NpzReader::read_any`](crate::npz::NpzReader::read_any)).
        ///
        /// Match on the variant, or convert: [`into_f64`](Self::into_f64)
        /// (for the types every value of which is an `f64`),
        /// [`try_into_array`](Self::try_into_array) (to a known type and
        /// rank). Non-exhaustive: a later version may support more types.
        #[derive(Debug, Clone, PartialEq)]
        #[non_exhaustive]
        pub enum AnyArray {
            $(
                #[doc = concat!("An array of `", stringify!($t), "`.")]
                $v(ArrayD<$t>),
            )*
        }

        /// A memory-mapped `.npy` file of any supported element type
        /// ([`map_any`]). Non-exhaustive, as [`AnyArray`].
        #[derive(Debug)]
        #[non_exhaustive]
        pub enum MappedAny {
            $(
                #[doc = concat!("A mapped array of `", stringify!($t), "`.")]
                $v(MappedNpy<$t, IxDyn>),
            )*
        }

        $(
            impl<D: Dimension> From<Array<$t, D>> for AnyArray {
                fn from(array: Array<$t, D>) -> Self {
                    AnyArray::$v(array.into_dyn())
                }
            }
        )*

        impl AnyArray {
            /// The element type.
            pub fn dtype(&self) -> DType {
                match self {
                    $(AnyArray::$v(_) => DType::$v,)*
                }
            }

            /// The shape.
            pub fn shape(&self) -> &[usize] {
                match self {
                    $(AnyArray::$v(a) => a.shape(),)*
                }
            }

            /// Writes the array as `.npy`, as [`to_writer`](super::to_writer).
            pub(crate) fn to_writer(&self, w: &mut dyn std::io::Write) -> Result<u64> {
                match self {
                    $(AnyArray::$v(a) => super::to_writer(w, a),)*
                }
            }

            /// The array, boxed for [`try_into_array`](Self::try_into_array).
            fn into_boxed(self) -> Box<dyn Any> {
                match self {
                    $(AnyArray::$v(a) => Box::new(a),)*
                }
            }

            /// Converts to `f64` when every value of the element type is
            /// exactly an `f64` (bool as 0 and 1, integers up to 32 bits,
            /// `f32`; an `f64` array is returned as is). `i64` and `u64`
            /// arrays are refused ([`Error::Convert`]), whatever their
            /// values: match on the variant to convert them knowingly.
            pub fn into_f64(self) -> Result<ArrayD<f64>> {
                let (from, shape) = (self.dtype(), self.shape().to_vec());
                let converted = match self {
                    $(AnyArray::$v(a) => <$t as ToF64>::to_f64(a),)*
                };
                converted.ok_or_else(|| Error::Convert {
                    from,
                    shape,
                    to: "f64".into(),
                    reason: format!(
                        "not every {from} is exactly an f64; match on AnyArray::{from:?} and convert with `mapv` if rounding is acceptable"
                    ),
                })
            }

            /// Reads the data of an opened `.npy` file (see `npy::read_opened`).
            pub(crate) fn read_opened(
                file: &std::fs::File,
                base: u64,
                header: &NpyHeader,
                path: &Path,
                crc32: Option<(crc32fast::Hasher, u32)>,
            ) -> Result<Self> {
                match header.dtype {
                    $(DType::$v => read_opened::<$t, IxDyn>(file, base, header, path, crc32).map(AnyArray::$v),)*
                }
            }

            /// Reads the data that follows `header` in a stream.
            pub(crate) fn stream_data(
                r: &mut dyn Read,
                header: &NpyHeader,
                path: &Path,
                reserve: bool,
            ) -> Result<Self> {
                match header.dtype {
                    $(DType::$v => stream_data::<$t, IxDyn>(r, header, path, reserve).map(AnyArray::$v),)*
                }
            }
        }

        impl MappedAny {
            /// The element type.
            pub fn dtype(&self) -> DType {
                match self {
                    $(MappedAny::$v(_) => DType::$v,)*
                }
            }

            /// The parsed header (shape, order, byte order, offsets).
            pub fn header(&self) -> &NpyHeader {
                match self {
                    $(MappedAny::$v(m) => m.header(),)*
                }
            }

            /// The mapped file.
            pub fn path(&self) -> &Path {
                match self {
                    $(MappedAny::$v(m) => m.path(),)*
                }
            }

            /// A copy of the mapped array.
            pub fn to_owned(&self) -> AnyArray {
                match self {
                    $(MappedAny::$v(m) => AnyArray::$v(m.view().to_owned()),)*
                }
            }

            fn as_any(&self) -> &dyn Any {
                match self {
                    $(MappedAny::$v(m) => m,)*
                }
            }

            /// Maps an opened `.npy` file.
            ///
            /// # Safety
            ///
            /// As [`map_any`].
            unsafe fn map_opened(file: &std::fs::File, header: NpyHeader, path: &Path) -> Result<Self> {
                match header.dtype {
                    // SAFETY: passed on from the caller.
                    $(DType::$v => unsafe { map_opened::<$t, IxDyn>(file, header, path) }.map(MappedAny::$v),)*
                }
            }
        }
    };
}

with_dtypes!(any_types);

/// Conversion to `f64` where no value changes.
trait ToF64: Element {
    fn to_f64(a: ArrayD<Self>) -> Option<ArrayD<f64>>;
}

macro_rules! to_f64 {
    (exact: $($t:ty),*; refused: $($r:ty),*) => {
        $(impl ToF64 for $t {
            fn to_f64(a: ArrayD<Self>) -> Option<ArrayD<f64>> {
                Some(a.mapv(f64::from))
            }
        })*
        $(impl ToF64 for $r {
            fn to_f64(_: ArrayD<Self>) -> Option<ArrayD<f64>> {
                None
            }
        })*
    };
}

to_f64!(exact: bool, i8, i16, i32, u8, u16, u32, f32; refused: i64, u64);

impl ToF64 for f64 {
    fn to_f64(a: ArrayD<Self>) -> Option<ArrayD<f64>> {
        Some(a)
    }
}

impl AnyArray {
    /// The array as `Array<A, D>`, if it holds `A`s with `D`'s rank
    /// (`IxDyn` takes any); otherwise [`Error::Convert`], and the array
    /// is dropped (check [`dtype`](Self::dtype) first to keep it).
    pub fn try_into_array<A: Element, D: Dimension>(self) -> Result<Array<A, D>> {
        let (from, shape) = (self.dtype(), self.shape().to_vec());
        let error = |to: String, reason: &str| Error::Convert {
            from,
            shape: shape.clone(),
            to,
            reason: reason.into(),
        };
        let array = self.into_boxed().downcast::<ArrayD<A>>().map_err(|_| {
            error(
                format!("an array of {}", A::DTYPE),
                "the element types differ; use the matching type, or into_f64",
            )
        })?;
        array.into_dimensionality::<D>().map_err(|_| {
            error(
                format!("{} dimensions", D::NDIM.unwrap_or(0)),
                "the ranks differ; use the matching dimension type, or IxDyn",
            )
        })
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.shape().iter().product()
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl MappedAny {
    /// The shape.
    pub fn shape(&self) -> Vec<usize> {
        // The header's shape passed the shared check, so it fits usize.
        self.header().shape.iter().map(|&d| d as usize).collect()
    }

    /// The mapped array as a view of `A`s, if it holds `A`s; otherwise
    /// [`Error::Convert`].
    pub fn view<A: Element>(&self) -> Result<ArrayViewD<'_, A>> {
        match self.as_any().downcast_ref::<MappedNpy<A, IxDyn>>() {
            Some(m) => Ok(m.view()),
            None => Err(Error::Convert {
                from: self.dtype(),
                shape: self.shape(),
                to: format!("a view of {}", A::DTYPE),
                reason: "the element types differ; view with the matching type".into(),
            }),
        }
    }
}

/// Reads a `.npy` file of any supported element type and rank: the same
/// checks and speed as [`read`](super::read), without naming the type.
///
/// ```
/// use jobcache_persist::npy::{self, AnyArray};
/// use ndarray::array;
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("counts.npy");
/// npy::write(&path, &array![[1u16, 2], [3, 4]])?;
///
/// let any = npy::read_any(&path)?;
/// assert_eq!(any.dtype().name(), "u16");
/// assert_eq!(any.shape(), &[2, 2]);
/// if let AnyArray::U16(counts) = &any {
///     assert_eq!(counts[[1, 0]], 3);
/// }
/// assert_eq!(any.clone().into_f64()?.sum(), 10.0);
/// let counts = any.try_into_array::<u16, ndarray::Ix2>()?;
/// assert_eq!(counts, array![[1u16, 2], [3, 4]]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn read_any(path: impl AsRef<Path>) -> Result<AnyArray> {
    let path = path.as_ref();
    let (file, header) = open_npy(path)?;
    AnyArray::read_opened(&file, 0, &header, path, None)
}

/// Reads a `.npy` array of any supported element type from a stream, which
/// must end right after the data, as [`from_reader`](super::from_reader).
pub fn from_reader_any(r: &mut dyn Read) -> Result<AnyArray> {
    let path = stream_path();
    let header = stream_header(r, path)?;
    AnyArray::stream_data(r, &header, path, false)
}

/// Memory-maps a `.npy` file of any supported element type, as
/// [`map`](super::map) (which see for what is refused).
///
/// # Safety
///
/// As [`map`](super::map): nothing may modify the file while it is mapped.
pub unsafe fn map_any(path: impl AsRef<Path>) -> Result<MappedAny> {
    let path = path.as_ref();
    let (file, header) = open_npy(path)?;
    // SAFETY: passed on from the caller.
    unsafe { MappedAny::map_opened(&file, header, path) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Ix1, Ix2};

    #[test]
    fn conversions_refuse_what_would_change() {
        let a = AnyArray::from(array![[1i32, -2], [3, 4]]);
        assert_eq!(a.dtype(), DType::I32);
        assert_eq!(a.len(), 4);
        assert_eq!(
            a.clone().into_f64().unwrap(),
            array![[1.0, -2.0], [3.0, 4.0]].into_dyn()
        );
        let err = a.clone().try_into_array::<i64, Ix2>().unwrap_err();
        assert!(err.to_string().contains("element types differ"), "{err}");
        let err = a.clone().try_into_array::<i32, Ix1>().unwrap_err();
        assert!(err.to_string().contains("ranks differ"), "{err}");
        assert_eq!(a.try_into_array::<i32, Ix2>().unwrap()[[1, 0]], 3);
        let big = AnyArray::from(array![1u64 << 60]);
        let err = big.into_f64().unwrap_err();
        assert!(err.to_string().contains("not every u64"), "{err}");
        let flags = AnyArray::from(array![true, false]);
        assert_eq!(flags.into_f64().unwrap(), array![1.0, 0.0].into_dyn());
    }
}

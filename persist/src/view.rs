//! Zero-copy array views of mapped bytes, checked once, when built.
//!
//! [`ArrayMap`] is the only way this crate views bytes as an array: its
//! constructor runs every check the view's soundness needs, its fields are
//! private and never change afterwards, and the bytes it views belong to an
//! owner it holds. So [`ArrayMap::view`] needs no check and cannot fail.

use std::marker::PhantomData;
use std::path::Path;
use std::ptr::NonNull;

use ndarray::{ArrayView, Dimension, ShapeBuilder};

use crate::check::data_len;
use crate::element::{DType, Element};
use crate::error::{Error, Result};

/// An owner of bytes that stay at the same address, with the same
/// contents, for as long as the owner lives — even when the owner itself
/// moves.
///
/// # Safety
///
/// `bytes` must return the same slice (address, length and contents) on
/// every call during the owner's life. A read-only map qualifies (the
/// mapping does not move with the handle; files mapped by this crate are
/// not modified in place, which `map`'s own `unsafe` contract puts on its
/// caller); so does a shared slice.
pub(crate) unsafe trait StableBytes {
    /// The bytes.
    fn bytes(&self) -> &[u8];
}

// SAFETY: a read-only mapping's address and length are fixed for the life
// of the handle, and the handle has no way to change them.
unsafe impl StableBytes for memmap2::Mmap {
    fn bytes(&self) -> &[u8] {
        self
    }
}

// SAFETY: a shared map is the same map (the `Mmap` impl above applies):
// cloning or moving the `Arc` moves neither the mapping nor its contents.
unsafe impl StableBytes for std::sync::Arc<memmap2::Mmap> {
    fn bytes(&self) -> &[u8] {
        self
    }
}

// SAFETY: a shared slice is immutable for its lifetime.
unsafe impl StableBytes for &[u8] {
    fn bytes(&self) -> &[u8] {
        self
    }
}

/// The owner of some bytes, with the place of one array in them, checked:
/// the data starts `offset` bytes in, aligned for `A`, in native byte
/// order, holds `dim`'s elements (and valid ones: bools are 0 or 1), and
/// `dim` has a byte count within `isize`.
#[derive(Debug)]
pub(crate) struct ArrayMap<O, A, D> {
    owner: O,
    offset: usize,
    dim: D,
    fortran: bool,
    _elem: PhantomData<A>,
}

impl<O: StableBytes, A: Element, D: Dimension> ArrayMap<O, A, D> {
    /// Checks that `owner`'s bytes from `offset` can be viewed as an array
    /// of `A` with shape `dim` (in Fortran order if `fortran`), stored in
    /// the byte order `big_endian` says.
    pub(crate) fn new(
        owner: O,
        offset: u64,
        dim: D,
        fortran: bool,
        big_endian: bool,
        path: &Path,
    ) -> Result<Self> {
        let shape: Vec<u64> = dim.slice().iter().map(|&d| d as u64).collect();
        let need = data_len(&shape, A::DTYPE.size() as u64, path)?;
        let bytes = owner.bytes();
        let truncated = |found: usize| {
            Error::truncated(
                path,
                "mapped array data",
                offset.saturating_add(need),
                found as u64,
            )
        };
        let start = usize::try_from(offset).map_err(|_| truncated(bytes.len()))?;
        let data = bytes.get(start..).ok_or_else(|| truncated(bytes.len()))?;
        // `need` fits isize (checked above), hence usize.
        let data = data
            .get(..need as usize)
            .ok_or_else(|| truncated(bytes.len()))?;
        if big_endian != cfg!(target_endian = "big") && A::DTYPE.size() > 1 {
            return Err(Error::Unmappable {
                path: path.to_path_buf(),
                reason: "the data is stored in the other byte order; load it with `read` (which swaps bytes) instead".into(),
            });
        }
        if !data.is_empty() && !(data.as_ptr() as usize).is_multiple_of(align_of::<A>()) {
            return Err(Error::Unmappable {
                path: path.to_path_buf(),
                reason: format!(
                    "the data offset {offset} is not aligned to {} bytes for {}; load it with `read` instead",
                    align_of::<A>(),
                    A::DTYPE
                ),
            });
        }
        if A::DTYPE == DType::Bool {
            if let Some(pos) = data.iter().position(|&b| b > 1) {
                return Err(Error::malformed(
                    path,
                    "bool element",
                    "0 or 1",
                    format!("{} at element {pos}", data[pos]),
                ));
            }
        }
        Ok(ArrayMap {
            owner,
            offset: start,
            dim,
            fortran,
            _elem: PhantomData,
        })
    }

    /// The array, viewing the owner's bytes (no copy).
    pub(crate) fn view(&self) -> ArrayView<'_, A, D> {
        let ptr = if self.dim.size() == 0 {
            NonNull::<A>::dangling().as_ptr().cast_const()
        } else {
            self.owner
                .bytes()
                .as_ptr()
                .wrapping_add(self.offset)
                .cast::<A>()
        };
        // SAFETY: `new` checked, on the bytes `StableBytes` guarantees are
        // still the owner's (same address and contents), that the data at
        // `offset` is aligned for `A`, holds the shape's elements as valid
        // `A`s in native byte order, and that the element size times the
        // product of the non-zero axis lengths fits isize (so every offset
        // ndarray computes along the contiguous C or Fortran layout stays
        // within those bytes, or is zero for an empty array, whose pointer
        // may then be dangling but aligned). The fields are private and
        // never change after `new`. The view borrows `self`, hence the
        // owner, for its whole life, and the bytes are never written.
        unsafe { ArrayView::from_shape_ptr(self.dim.clone().set_f(self.fortran), ptr) }
    }

    /// The owner of the bytes.
    pub(crate) fn owner(&self) -> &O {
        &self.owner
    }
}

impl<'a, A: Element, D: Dimension> ArrayMap<&'a [u8], A, D> {
    /// The view, borrowing the slice rather than `self`.
    pub(crate) fn into_view(self) -> ArrayView<'a, A, D> {
        let ptr = if self.dim.size() == 0 {
            NonNull::<A>::dangling().as_ptr().cast_const()
        } else {
            self.owner.as_ptr().wrapping_add(self.offset).cast::<A>()
        };
        // SAFETY: as in `view`; the slice lives for 'a and is immutable.
        unsafe { ArrayView::from_shape_ptr(self.dim.set_f(self.fortran), ptr) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Ix1, Ix2, IxDyn};

    /// 8-aligned bytes to carve test views from.
    fn aligned(n: usize) -> Vec<u64> {
        vec![0x0102_0304_0506_0708; n.div_ceil(8)]
    }

    fn bytes_of(words: &[u64]) -> &[u8] {
        // SAFETY: u64 has no padding; the slice covers exactly the words.
        unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), words.len() * 8) }
    }

    #[test]
    fn edges_are_checked_once_and_viewed_safely() {
        let p = Path::new("t");
        let words = aligned(512);
        let bytes = bytes_of(&words);
        // Empty arrays, zero-length axes, the offset at the very end.
        let empty = ArrayMap::<_, f64, Ix2>::new(bytes, 512, Ix2(0, 7), false, false, p).unwrap();
        assert_eq!(empty.view().shape(), &[0, 7]);
        assert_eq!(empty.into_view().len(), 0);
        let fortran = ArrayMap::<_, u16, Ix2>::new(bytes, 8, Ix2(3, 2), true, false, p).unwrap();
        assert_eq!(fortran.view().t().as_slice().map(<[u16]>::len), Some(6));
        // A zero axis does not excuse the others.
        let huge = IxDyn(&[0, usize::MAX]);
        assert!(ArrayMap::<_, u8, IxDyn>::new(bytes, 0, huge, false, false, p).is_err());
        let big = IxDyn(&[0, 1 << 62]);
        assert!(ArrayMap::<_, f64, IxDyn>::new(bytes, 0, big, false, false, p).is_err());
        // Past the end, misaligned, short, wrong byte order, bad bools.
        for (offset, n) in [(513, 0), (u64::MAX, 1), (0, 65), (504, 2)] {
            let err = ArrayMap::<_, f64, Ix1>::new(bytes, offset, Ix1(n), false, false, p);
            assert!(matches!(err, Err(Error::Truncated { .. })), "{offset} {n}");
        }
        let err = ArrayMap::<_, f64, Ix1>::new(bytes, 4, Ix1(2), false, false, p).unwrap_err();
        assert!(matches!(err, Error::Unmappable { .. }), "{err}");
        let ok = ArrayMap::<_, f64, Ix1>::new(bytes, 4, Ix1(0), false, false, p).unwrap();
        assert_eq!(ok.view().len(), 0);
        let err = ArrayMap::<_, f64, Ix1>::new(bytes, 0, Ix1(2), false, true, p).unwrap_err();
        assert!(matches!(err, Error::Unmappable { .. }), "{err}");
        let err = ArrayMap::<_, bool, Ix1>::new(bytes, 0, Ix1(3), false, false, p).unwrap_err();
        assert!(matches!(err, Error::Malformed { .. }), "{err}");
        let flags = [0u8, 1, 1, 0];
        let flags = ArrayMap::<_, bool, Ix1>::new(&flags[..], 1, Ix1(3), false, false, p).unwrap();
        assert_eq!(flags.view().to_vec(), [false, true, true, false][1..]);
    }
}

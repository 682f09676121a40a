//! ndarray arrays of `f64` and `f32`, encoded from their memory in blocks.
//!
//! ndarray's serde form hands an array's elements over one at a time, in
//! logical (row-major) order: for a large array that costs more than hashing
//! its bytes, and for a Fortran-order array each step jumps a whole column
//! ahead in memory. When the value being encoded *is* such an array (or a
//! reference to one), recognised by its type, the encoder writes the very
//! same canonical bytes (ENCODING.md: the struct `v`, `dim`, `data`) straight
//! from memory instead:
//!
//! - a C-contiguous array is one byte string, hashed in place (no copy);
//! - a 2-D array whose rows are closer in memory than its columns (Fortran
//!   order, or a view of one) is copied band by band into the chunk buffer,
//!   reading each column's part of the band contiguously;
//! - any other layout is copied element by element in logical order.
//!
//! The digest is the one the serde path gives: `tests/props.rs` checks it
//! for every layout.

use ndarray::{ArcArray, Array, ArrayBase, ArrayView, Data, Dimension, Ix2, IxDyn};
use ndarray::{Ix1, Ix3, Ix4};
use serde::Serialize;

use crate::encoder::Encoder;
use crate::Error;

/// An element whose canonical encoding is its little-endian bytes.
pub(crate) trait Raw: Copy + 'static {
    const SIZE: usize;
    fn write_le(self, out: &mut [u8]);
}

impl Raw for f64 {
    const SIZE: usize = 8;
    #[inline]
    fn write_le(self, out: &mut [u8]) {
        out.copy_from_slice(&self.to_le_bytes());
    }
}

impl Raw for f32 {
    const SIZE: usize = 4;
    #[inline]
    fn write_le(self, out: &mut [u8]) {
        out.copy_from_slice(&self.to_le_bytes());
    }
}

/// The bytes of a slice of floats as they lie in memory: their canonical
/// encoding on a little-endian machine.
#[cfg(target_endian = "little")]
fn as_le_bytes<A: Raw>(slice: &[A]) -> Option<&[u8]> {
    // SAFETY: `A` is f64 or f32 (the only `Raw` types): plain data with no
    // padding, every byte initialised; u8 has alignment 1 and the length is
    // the slice's size in bytes, so the byte slice covers exactly the same
    // memory, borrowed for as long as `slice`.
    Some(unsafe { std::slice::from_raw_parts(slice.as_ptr().cast::<u8>(), size_of_val(slice)) })
}

#[cfg(not(target_endian = "little"))]
fn as_le_bytes<A: Raw>(_: &[A]) -> Option<&[u8]> {
    None
}

/// Encodes `value` if its type is an array (or a reference to one) with a
/// fast path, returning whether it did; the caller serializes it otherwise.
#[inline]
pub(crate) fn encode<T: ?Sized>(enc: &mut Encoder<'_>, value: &T) -> Result<bool, Error> {
    macro_rules! arrays_of {
        (@one $ty:ty) => {
            // Type ids compare as constants once this is monomorphised:
            // every branch but one (or all) folds away.
            if typeid::of::<T>() == typeid::of::<$ty>() {
                // SAFETY: `T` is `$ty` up to lifetimes (typeid ignores
                // them), so the pointer cast keeps the value's type and
                // layout. The array is only read, inside this call, while
                // `value` is borrowed; the 'static in `$ty` never lets a
                // reference escape.
                let array: &$ty = unsafe { &*(value as *const T).cast::<$ty>() };
                encode_array(enc, array)?;
                return Ok(true);
            }
        };
        (@dims $elem:ty; $($dim:ty),*) => {$(
            arrays_of!(@one Array<$elem, $dim>);
            arrays_of!(@one ArrayView<'static, $elem, $dim>);
            arrays_of!(@one ArcArray<$elem, $dim>);
            arrays_of!(@one &'static Array<$elem, $dim>);
            arrays_of!(@one &'static ArrayView<'static, $elem, $dim>);
            arrays_of!(@one &'static ArcArray<$elem, $dim>);
        )*};
        ($($elem:ty),*) => {$(
            arrays_of!(@dims $elem; Ix1, Ix2, Ix3, Ix4, IxDyn);
        )*};
    }
    arrays_of!(f64, f32);
    Ok(false)
}

/// Something that derefs to an array: the array itself or a reference.
trait AsArray {
    type Elem: Raw;
    type Dim: Dimension + Serialize;
    fn as_view(&self) -> ArrayView<'_, Self::Elem, Self::Dim>;
}

impl<A: Raw, S: Data<Elem = A>, D: Dimension + Serialize> AsArray for ArrayBase<S, D> {
    type Elem = A;
    type Dim = D;
    fn as_view(&self) -> ArrayView<'_, A, D> {
        self.view()
    }
}

impl<T: AsArray> AsArray for &T {
    type Elem = T::Elem;
    type Dim = T::Dim;
    fn as_view(&self) -> ArrayView<'_, T::Elem, T::Dim> {
        (**self).as_view()
    }
}

/// ndarray's serde form, `{ v: 1u8, dim, data: [elements] }`, written from
/// memory.
fn encode_array<T: AsArray>(enc: &mut Encoder<'_>, array: &T) -> Result<(), Error> {
    /// The `v` field of ndarray's serde form.
    const ARRAY_FORMAT_VERSION: u8 = 1;
    let view = array.as_view();
    enc.buf_mut().push(ARRAY_FORMAT_VERSION);
    view.raw_dim().serialize(&mut *enc)?;
    enc.varint(view.len() as u128);
    if let Some(bytes) = view.as_slice().and_then(as_le_bytes) {
        enc.raw(bytes);
        return Ok(());
    }
    if let Ok(two) = view.view().into_dimensionality::<Ix2>() {
        let strides = two.strides();
        if strides[0].unsigned_abs() < strides[1].unsigned_abs() {
            by_bands(enc, two);
            return Ok(());
        }
    }
    in_logical_order(enc, view.into_dyn());
    Ok(())
}

/// Rows × columns of the tile a column-wise band is transposed through.
const TILE_ROWS: usize = 8;
const TILE_COLS: usize = 64;
/// Bytes of one band of rows: tall bands read more of each column's memory
/// page per visit (a page walk per column per band is what a transpose of a
/// large array pays most), while the band stays in the L2 cache and TLB.
const BAND_BYTES: usize = 4 << 20;

/// A 2-D array stored column-wise: the rows are copied in bands (into the
/// chunk buffers, hashed on other threads while the next band is copied).
/// A band is transposed through a small tile, a block of columns at a time:
/// the tile is filled reading each column's part of the band contiguously,
/// then its rows are copied out whole. (Writing each element straight to its
/// row would touch a cache line per element, all in one cache set when the
/// row length is a power of two.)
fn by_bands<A: Raw>(enc: &mut Encoder<'_>, array: ArrayView<'_, A, Ix2>) {
    let (rows, cols) = array.dim();
    // Fortran order proper: one slice, element (r, c) at r + c × rows.
    match array.t().to_slice() {
        Some(memory) => transpose_in_bands(enc, rows, cols, |r, c| memory[r + c * rows]),
        None => transpose_in_bands(enc, rows, cols, |r, c| array[[r, c]]),
    }
}

fn transpose_in_bands<A: Raw>(
    enc: &mut Encoder<'_>,
    rows: usize,
    cols: usize,
    at: impl Fn(usize, usize) -> A,
) {
    let row_bytes = cols * A::SIZE;
    if row_bytes == 0 || rows == 0 {
        return;
    }
    let band_rows = (BAND_BYTES / row_bytes).clamp(1, rows);
    let mut stage = vec![0u8; band_rows * row_bytes];
    let mut tile = [[0u8; TILE_COLS * 8]; TILE_ROWS];
    let mut row = 0;
    while row < rows {
        let band = band_rows.min(rows - row);
        let out = &mut stage[..band * row_bytes];
        for c0 in (0..cols).step_by(TILE_COLS) {
            let c1 = (c0 + TILE_COLS).min(cols);
            let width = (c1 - c0) * A::SIZE;
            for r0 in (0..band).step_by(TILE_ROWS) {
                let r1 = (r0 + TILE_ROWS).min(band);
                for c in c0..c1 {
                    let x = (c - c0) * A::SIZE;
                    for r in r0..r1 {
                        at(row + r, c).write_le(&mut tile[r - r0][x..x + A::SIZE]);
                    }
                }
                for r in r0..r1 {
                    let from = (r * cols + c0) * A::SIZE;
                    out[from..from + width].copy_from_slice(&tile[r - r0][..width]);
                }
            }
        }
        enc.copy_in(out);
        row += band;
    }
}

/// Any other layout: element by element in logical order, into the chunk
/// buffer.
fn in_logical_order<A: Raw>(enc: &mut Encoder<'_>, array: ArrayView<'_, A, IxDyn>) {
    let mut bytes = [0u8; 8];
    for &x in array.iter() {
        x.write_le(&mut bytes[..A::SIZE]);
        enc.buf_mut().extend_from_slice(&bytes[..A::SIZE]);
        enc.maybe_cut();
    }
}

//! Fast, safe persistence of serde values with raw, 64-byte aligned ndarray
//! arrays, memory-mapped loads, and NumPy `.npy` interop.
//!
//! [`save`] / [`load`] store any `T: Serialize` / `DeserializeOwned` in a
//! small container (specified byte for byte in `FORMAT.md`): a header, the
//! value's [postcard](https://docs.rs/postcard) encoding, and every ndarray
//! array inside the value stored out of band as a raw little-endian segment
//! aligned to 64 bytes. A checksum (XXH3-64) covers the metadata and each
//! segment, so corruption is detected, never returned as data. [`to_writer`]
//! and [`from_reader`] do the same on streams; [`Mapped`] and [`map`] view
//! arrays in place through a read-only memory map; [`inspect`], [`verify`]
//! and [`export_npy`] serve tools. The [`npy`] module reads, writes and maps
//! NumPy `.npy` files, byte-identical to NumPy's own, also when the element
//! type is known only from the file ([`npy::read_any`]); the [`npz`] module
//! reads and writes NumPy `.npz` archives. Errors are [`Error`].
//!
//! How arrays are found: ndarray serializes an array as the struct
//! `Array { v, dim, data }`; this crate's serializer recognises that struct
//! and streams the elements to a segment instead of the body, so plain
//! array fields need no annotation. When the value itself is an owned
//! `Array<A, D>`, or a field carries `#[serde(with = "jobcache_persist::direct")]`
//! ([`direct`]), the array's memory is written in large chunks instead of
//! element by element. On load, an owned `Array<A, D>` target (the whole
//! value or any field) is recognised at run time by its type id and its
//! segment read straight into its final allocation; `load::<Array2<f64>>`
//! costs the same as [`load_array`].
//!
//! # What each load checks
//!
//! | load | checked before data is returned | not checked |
//! |------|------------------------------|-------------|
//! | copying: [`load`], [`load_file`], [`load_array`], [`from_bytes`], [`from_reader`], [`Mapped::load`] | everything: header, trailer, metadata checksum (body and table), array descriptors, every array's checksum and padding, bool values | — |
//! | [`map`] / [`Mapped::open`], then [`MappedArray::verify`] / [`Mapped::verify_arrays`] | at map time: header, trailer, metadata checksum, descriptors, the viewed array's bounds, alignment and bool values; then the arrays' checksums and padding, read over the map itself (no copy; 1 MiB blocks, on up to four threads for 64 MiB or more) | — |
//! | [`map`] then [`MappedArray::view`] without `verify` (O(1)) | everything above except the array data | a flipped or zeroed byte in an array's data is returned as data: only when the caller chose to skip verification |
//! | [`npy`] readers | header structure, shape ([`npy`] module docs), exact length | `.npy` has no checksums |
//! | [`npz`] readers | each member as the [`npy`] readers check a file, plus its zip CRC-32; the member count and inflated sizes against [`npz::NpzLimits`] | a view ([`npz::NpzReader::view`]) skips the CRC-32 |
//!
//! Each format's readers apply one shared header check (shape, element
//! size × count against `isize`, data length against the file, no
//! trailing bytes), so they accept and refuse the same bytes; `map` may in
//! addition refuse, with [`Error::Unmappable`], data it cannot view in place.
//!
//! Speed: arrays of 64 MiB or more are read by up to four threads (the
//! machine's available parallelism), each filling its share of the final
//! allocation (advised for huge pages where the system enables them only on
//! advice) by positioned reads straight into place and checking
//! its 1 MiB blocks' checksums; on save, a second thread checksums a large
//! array while it is written, and the writeback of each 16 MiB written
//! starts at once (the final fsync waits only for the last few).
//!
//! ```
//! use ndarray::{array, Array2, Ix2};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize, PartialEq, Debug)]
//! struct Fit {
//!     coef: Array2<f64>,
//!     iterations: u32,
//! }
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("fit.jcp");
//! let fit = Fit { coef: array![[1.0, 2.0], [3.0, 4.0]], iterations: 7 };
//! jobcache_persist::save(&path, &fit)?;
//! assert_eq!(jobcache_persist::load::<Fit>(&path)?, fit);
//!
//! // A plain array, viewed in place through a memory map.
//! jobcache_persist::save(&path, &fit.coef)?;
//! // SAFETY: files written by `save` are replaced by rename, never modified.
//! let mapped = unsafe { jobcache_persist::map::<f64, Ix2>(&path)? };
//! assert_eq!(mapped.view(), fit.coef.view());
//!
//! // NumPy interop.
//! let npy = dir.path().join("coef.npy");
//! jobcache_persist::npy::write(&npy, &fit.coef)?;
//! assert_eq!(jobcache_persist::npy::read::<f64, Ix2>(&npy)?, fit.coef);
//! let any = jobcache_persist::npy::read_any(&npy)?; // whatever the dtype
//! assert_eq!(any.into_f64()?, fit.coef.clone().into_dyn());
//!
//! // Several named arrays in one .npz archive (np.savez / np.load).
//! let npz = dir.path().join("fit.npz");
//! use jobcache_persist::npz::{write_file, Compression, NpzReader};
//! write_file(&npz, Compression::Stored, |w| w.add("coef", &fit.coef))?;
//! let mut archive = NpzReader::open(&npz)?;
//! assert_eq!(archive.by_name::<f64, Ix2>("coef")?, fit.coef);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Limitations
//!
//! - Array elements must be `bool`, `i8`–`i64`, `u8`–`u64`, `f32` or `f64`;
//!   an ndarray array of any other element type (strings, complex numbers,
//!   structs) fails to save. Store such data in a `Vec`.
//! - The body is postcard, which is not self-describing: types that need
//!   `deserialize_any` (untagged enums, `#[serde(flatten)]`,
//!   `serde_json::Value`) and sequences of unknown length cannot be stored.
//! - A serde struct named `Array` whose fields are `v`, `dim`, `data` is
//!   taken for ndarray's form (other structs named `Array` are stored
//!   normally).
//! - Only owned `Array<A, D>` targets take the direct load path;
//!   `ArcArray`, `CowArray` and element-converting loads go element by
//!   element through serde (correct, about 1 GB/s).
//! - Memory maps are `unsafe` to create: a file truncated by another
//!   process while mapped can crash the reader.
//! - Arrays are stored in logical (C) order; Fortran-order arrays are
//!   transposed on save and load back in standard layout.
//! - A process killed during [`save`] can leave a `.jobcache-tmp-*` file
//!   beside the target (never a torn target); remove such files at leisure.
//! - Loads of large arrays use extra threads; there is no knob to turn
//!   that off yet.
//! - `from_reader` reads the whole stream into memory first (the trailer that
//!   describes the file comes last, so saving never needs to seek).
#![deny(missing_docs)]

/// The README's examples, run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

mod check;
mod codec;
mod container;
mod de;
pub mod direct;
mod element;
mod error;
mod format;
mod io;
pub mod npy;
pub mod npz;
mod ser;
mod view;

pub use container::{
    export_npy, from_bytes, from_reader, inspect, load, load_array, load_file, map, map_file, save,
    save_with, to_writer, to_writer_with, verify, ArrayInfo, ChecksumStatus, FileFormat,
    Inspection, Mapped, MappedArray, SaveOptions,
};
pub use element::{DType, Element};
pub use error::{Error, Result};

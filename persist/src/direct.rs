//! `#[serde(with = "jobcache_persist::direct")]`: store an array field
//! straight from memory.
//!
//! Without the attribute, an array field is still stored as a raw segment,
//! but its elements reach the segment one by one through serde. With it, a
//! contiguous array's memory is written in large chunks. Loading is direct
//! either way (see [`load`](crate::load)). With other serializers
//! (serde_json, postcard, …) the attribute changes nothing: the array is
//! serialized exactly as ndarray does.
//!
//! ```
//! use ndarray::Array1;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Output {
//!     #[serde(with = "jobcache_persist::direct")]
//!     weights: Array1<f64>,
//!     label: String,
//! }
//! # let dir = tempfile::tempdir().unwrap();
//! # let path = dir.path().join("out.jcp");
//! let out = Output { weights: Array1::linspace(0.0, 1.0, 5), label: "fit".into() };
//! jobcache_persist::save(&path, &out).unwrap();
//! let back: Output = jobcache_persist::load(&path).unwrap();
//! assert_eq!(back.weights, out.weights);
//! ```

use ndarray::{Array, ArrayBase, Data, Dimension};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::element::Element;
use crate::io::{cast, type_id_of};
use crate::ser::{Inner, Writer};

/// Serializes an array: directly from memory into this crate's container,
/// as ndarray's serde form for any other serializer.
pub fn serialize<A, S, D, Ser>(
    array: &ArrayBase<S, D>,
    serializer: Ser,
) -> Result<Ser::Ok, Ser::Error>
where
    A: Element + Serialize,
    S: Data<Elem = A>,
    D: Dimension + Serialize,
    Ser: Serializer,
{
    if type_id_of::<Ser>() == type_id_of::<&mut Writer<'_>>() {
        // SAFETY: `Ser` is `&mut Writer` (equal type ids; the lifetimes are
        // those of the caller's serializer, which outlives this call, and
        // the reference is used only within it).
        let writer: &mut Writer<'_> = unsafe { cast::<Ser, &mut Writer<'_>>(serializer) };
        let result: Result<(), Inner> = writer.write_array(array);
        // SAFETY: `Ser::Ok` is `()` and `Ser::Error` is `Inner` for this
        // serializer, so the result types are identical.
        return unsafe { cast::<Result<(), Inner>, Result<Ser::Ok, Ser::Error>>(result) };
    }
    array.serialize(serializer)
}

/// Deserializes an array (the container's loader already reads owned
/// arrays directly; this exists so `with = "…"` works on both sides).
pub fn deserialize<'de, A, D, De>(deserializer: De) -> Result<Array<A, D>, De::Error>
where
    A: Element + Deserialize<'de>,
    D: Dimension + Deserialize<'de>,
    De: Deserializer<'de>,
{
    Array::deserialize(deserializer)
}

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

use crate::element::{as_bytes, Element};
use crate::io::type_id_of;
use crate::ser::{RawArray, Writer, RAW_ARRAY};

/// Serializes an array: directly from memory into this crate's container,
/// as ndarray's serde form for any other serializer.
///
/// The container's writer is recognised by its type id (a comparison only:
/// nothing is cast); it then receives the array's memory through an
/// ordinary serde call, a newtype of a private name that no other
/// serializer is ever shown. An array that is not in standard (C) layout
/// takes ndarray's serde form, which the writer stores element by element.
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
        if let Some(slice) = array.as_slice() {
            let raw = RawArray {
                dtype: A::DTYPE,
                shape: array.shape(),
                bytes: as_bytes(slice),
            };
            return serializer.serialize_newtype_struct(RAW_ARRAY, &raw);
        }
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

#[cfg(test)]
mod tests {
    use ndarray::{array, Array2};

    use crate::ser::{RawArray, Writer, RAW_ARRAY};
    use crate::DType;

    #[derive(serde::Serialize)]
    struct Field<'a>(#[serde(with = "crate::direct")] &'a Array2<i16>);

    fn bytes_of(value: &impl serde::Serialize) -> Vec<u8> {
        let mut out = Vec::new();
        crate::to_writer(&mut out, value).unwrap();
        out
    }

    #[test]
    fn every_layout_matches_the_plain_form() {
        let a = array![[1i16, 2, 3], [4, 5, 6]];
        let t = a.t().to_owned();
        let transposed = a.clone().reversed_axes();
        for x in [&a, &t, &transposed] {
            assert_eq!(bytes_of(&Field(x)), bytes_of(&(x,)));
        }
    }

    #[test]
    fn raw_arrays_must_match_their_shape() {
        let mut out = Vec::new();
        let mut w = Writer::new(&mut out, None).unwrap();
        let raw = RawArray {
            dtype: DType::I16,
            shape: &[3],
            bytes: &[0; 4],
        };
        let err = serde::Serializer::serialize_newtype_struct(&mut w, RAW_ARRAY, &raw);
        assert!(err.unwrap_err().to_string().contains("has 4 bytes"));
    }
}

//! `.npy` interop against files written by NumPy (tests/fixtures/make_fixtures.py).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers

use std::path::PathBuf;

use jobcache_persist::{npy, DType, Element, Error};
use ndarray::{Array, Array2, ArrayD, Ix0, Ix1, Ix2, Ix3, IxDyn, ShapeBuilder};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/npy")
        .join(name)
}

/// The values make_fixtures.py writes, for each dtype.
trait Value: Element {
    fn value(i: usize) -> Self;
}
macro_rules! signed {
    ($($t:ty),*) => {$(impl Value for $t { fn value(i: usize) -> Self { (i as i64 - 5) as $t } })*};
}
macro_rules! unsigned {
    ($($t:ty),*) => {$(impl Value for $t { fn value(i: usize) -> Self { i as $t } })*};
}
signed!(i8, i16, i32, i64, f32, f64);
unsigned!(u8, u16, u32, u64);
impl Value for bool {
    fn value(i: usize) -> Self {
        i.is_multiple_of(3)
    }
}

fn expected<A: Value>() -> Array2<A> {
    Array::from_shape_fn((3, 4), |(r, c)| A::value(r * 4 + c))
}

fn check_dtype<A: Value>(name: &str) {
    let want = expected::<A>();
    for order in ["c", "f"] {
        for v in [1, 2, 3] {
            let file = format!("{name}_{order}_v{v}.npy");
            let got: Array2<A> = npy::read(fixture(&file)).unwrap();
            assert_eq!(got, want, "{file}");
            let dynamic: ArrayD<A> = npy::read(fixture(&file)).unwrap();
            assert_eq!(dynamic, want.clone().into_dyn(), "{file} as IxDyn");
            // SAFETY: fixtures are never modified.
            let mapped = unsafe { npy::map::<A, Ix2>(fixture(&file)) }.unwrap();
            assert_eq!(mapped.view(), want.view(), "{file} mapped");
            assert_eq!(mapped.header().version, (v as u8, 0));
            assert_eq!(mapped.header().fortran_order, order == "f");
            let mut reader = std::fs::File::open(fixture(&file)).unwrap();
            let streamed: Array2<A> = npy::from_reader(&mut reader).unwrap();
            assert_eq!(streamed, want);
        }
        // What we write for the same array is what NumPy's np.save wrote.
        let numpy = std::fs::read(fixture(&format!("{name}_{order}_save.npy"))).unwrap();
        let array = if order == "c" {
            want.clone()
        } else {
            let mut f = Array2::from_elem((3, 4).f(), A::value(0));
            f.assign(&want);
            f
        };
        let mut ours = Vec::new();
        let n = npy::to_writer(&mut ours, &array).unwrap();
        assert_eq!(n as usize, ours.len());
        assert_eq!(ours, numpy, "{name} {order}: bytes differ from NumPy's");
        assert_eq!(ours.iter().position(|&b| b == b'\n').unwrap() % 64, 63);
    }
}

#[test]
fn every_dtype_order_and_version_matches_numpy() {
    check_dtype::<bool>("bool");
    check_dtype::<i8>("i8");
    check_dtype::<i16>("i16");
    check_dtype::<i32>("i32");
    check_dtype::<i64>("i64");
    check_dtype::<u8>("u8");
    check_dtype::<u16>("u16");
    check_dtype::<u32>("u32");
    check_dtype::<u64>("u64");
    check_dtype::<f32>("f32");
    check_dtype::<f64>("f64");
}

fn roundtrip_bytes<A: Element, D: ndarray::Dimension>(name: &str, array: &Array<A, D>) {
    let numpy = std::fs::read(fixture(name)).unwrap();
    let mut ours = Vec::new();
    npy::to_writer(&mut ours, array).unwrap();
    assert_eq!(ours, numpy, "{name}");
}

#[test]
fn other_shapes_match_numpy() {
    let one: Array<f64, Ix1> = npy::read(fixture("f64_1d.npy")).unwrap();
    assert_eq!(one, Array::from_shape_fn(5, |i| i as f64 / 4.0));
    roundtrip_bytes("f64_1d.npy", &one);
    let zero: Array<f64, Ix0> = npy::read(fixture("f64_0d.npy")).unwrap();
    assert_eq!(zero.into_scalar(), 2.5);
    roundtrip_bytes("f64_0d.npy", &ndarray::arr0(2.5));
    let c3: Array<i32, Ix3> = npy::read(fixture("i32_3d_c.npy")).unwrap();
    let f3: Array<i32, Ix3> = npy::read(fixture("i32_3d_f.npy")).unwrap();
    assert_eq!(c3, f3);
    assert_eq!(c3[[1, 2, 3]], 23 - 5);
    roundtrip_bytes("i32_3d_c.npy", &c3);
    roundtrip_bytes("i32_3d_f.npy", &f3);
    let empty: Array<f32, Ix2> = npy::read(fixture("f32_empty.npy")).unwrap();
    assert_eq!(empty.shape(), &[0, 3]);
    roundtrip_bytes("f32_empty.npy", &empty);
    let long: Array<u8, Ix1> = npy::read(fixture("u8_long.npy")).unwrap();
    assert_eq!(long[300], (300 % 251) as u8);
    roundtrip_bytes("u8_long.npy", &long);
}

#[test]
fn big_endian_is_swapped_on_read_and_refused_by_map() {
    let f: Array2<f64> = npy::read(fixture("f64_be.npy")).unwrap();
    assert_eq!(f, expected::<f64>());
    let i: Array2<i16> = npy::read(fixture("i16_be.npy")).unwrap();
    assert_eq!(i, expected::<i16>());
    // SAFETY: fixtures are never modified.
    let err = unsafe { npy::map::<f64, Ix2>(fixture("f64_be.npy")) }.unwrap_err();
    assert!(matches!(err, Error::Unmappable { .. }), "{err}");
}

#[test]
fn wrong_type_or_rank_is_a_clear_error() {
    let err = npy::read::<f32, Ix2>(fixture("f64_c_v1.npy")).unwrap_err();
    assert!(matches!(err, Error::TypeMismatch { .. }), "{err}");
    assert!(err.to_string().contains("f32") && err.to_string().contains("f64"));
    let err = npy::read::<f64, Ix3>(fixture("f64_c_v1.npy")).unwrap_err();
    assert!(
        matches!(
            err,
            Error::RankMismatch {
                expected: 3,
                found: 2,
                ..
            }
        ),
        "{err}"
    );
    // SAFETY: fixtures are never modified.
    let err = unsafe { npy::map::<i64, Ix2>(fixture("f64_c_v1.npy")) }.unwrap_err();
    assert!(matches!(err, Error::TypeMismatch { .. }), "{err}");
}

#[test]
fn write_is_atomic_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.npy");
    let a = Array::from_shape_fn((4, 5, 6), |(i, j, k)| (i * 100 + j * 10 + k) as u16);
    npy::write(&path, &a).unwrap();
    npy::write(&path, &a).unwrap();
    assert_eq!(npy::read::<u16, Ix3>(&path).unwrap(), a);
    // Not contiguous: written in C order.
    let sliced = a.slice(ndarray::s![.., ..;2, 1..]);
    npy::write(&path, &sliced).unwrap();
    assert_eq!(
        npy::read::<u16, IxDyn>(&path).unwrap(),
        sliced.to_owned().into_dyn()
    );
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 1, "no temporary file left behind");
    let h = npy::read_header(&path).unwrap();
    assert_eq!(h.dtype, DType::U16);
    assert_eq!(h.data_offset % 64, 0);
}

#[test]
fn truncated_and_garbage_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixture("f64_c_save.npy")).unwrap();
    let path = dir.path().join("t.npy");
    for cut in [0, 3, 9, 50, 127, 128, 130, bytes.len() - 1] {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let err = npy::read::<f64, Ix2>(&path).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Truncated { .. } | Error::BadMagic { .. } | Error::Malformed { .. }
            ),
            "cut {cut}: {err}"
        );
    }
    let mut huge = bytes.clone();
    let text = String::from_utf8_lossy(&huge[10..128]).replace("(3, 4)", "(9999999999999, 4)");
    huge.splice(10..128, text.bytes().take(118));
    std::fs::write(&path, &huge).unwrap();
    let err = npy::read::<f64, Ix2>(&path).unwrap_err();
    assert!(matches!(err, Error::Truncated { .. }), "{err}");
    let mut overflow = bytes.clone();
    let text = String::from_utf8_lossy(&overflow[10..128])
        .replace("(3, 4),", "(99999999999999, 999999999999),");
    overflow.splice(10..128, text.bytes().take(118));
    std::fs::write(&path, &overflow).unwrap();
    let err = npy::read::<f64, Ix2>(&path).unwrap_err();
    assert!(matches!(err, Error::ShapeOverflow { .. }), "{err}");
    let mut unknown = bytes.clone();
    unknown[22] = b'c';
    std::fs::write(&path, &unknown).unwrap();
    let err = npy::read::<f64, Ix2>(&path).unwrap_err();
    assert!(matches!(err, Error::UnknownDtype { .. }), "{err}");
    let mut future = bytes;
    future[6] = 4;
    std::fs::write(&path, &future).unwrap();
    let err = npy::read::<f64, Ix2>(&path).unwrap_err();
    assert!(matches!(err, Error::UnsupportedVersion { .. }), "{err}");
}

#[test]
fn misaligned_data_is_read_but_not_mapped() {
    let bytes = std::fs::read(fixture("f64_c_save.npy")).unwrap();
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let mut odd = bytes[..10 + header_len - 1].to_vec();
    odd.extend_from_slice(b"    \n");
    odd[8..10].copy_from_slice(&((header_len + 4) as u16).to_le_bytes());
    odd.extend_from_slice(&bytes[10 + header_len..]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("odd.npy");
    std::fs::write(&path, &odd).unwrap();
    assert_eq!(npy::read::<f64, Ix2>(&path).unwrap(), expected::<f64>());
    // SAFETY: the file is not modified while mapped.
    let err = unsafe { npy::map::<f64, Ix2>(&path) }.unwrap_err();
    assert!(matches!(err, Error::Unmappable { .. }), "{err}");
    assert!(err.to_string().contains("aligned"), "{err}");
}

//! The container: round trips, mapped loads, inspection, the golden file and
//! bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers

mod common;

use std::path::{Path, PathBuf};

use common::{reseal, sample, table_offset, Output};
use jobcache_persist::{
    export_npy, from_bytes, from_reader, inspect, load, load_array, map, npy, save, to_writer,
    verify, ChecksumStatus, DType, Error, FileFormat, Mapped,
};
use ndarray::{array, ArcArray, Array, Array1, Array2, ArrayD, Ix1, Ix2, IxDyn, ShapeBuilder};
use serde::{Deserialize, Serialize};

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden_v1.jcp")
}

#[test]
fn struct_with_plain_array_fields_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.jcp");
    for seed in 0..4 {
        let value = sample(seed);
        let n = save(&path, &value).unwrap();
        assert_eq!(n, std::fs::metadata(&path).unwrap().len());
        assert_eq!(load::<Output>(&path).unwrap(), value);
        let info = inspect(&path).unwrap();
        // Every array went out of band, not into the body.
        let arrays = 6 + usize::from(seed % 2 == 0) + usize::from(seed % 4 == 3);
        assert_eq!(info.arrays.len(), arrays, "seed {seed}");
        assert!(info.arrays.iter().all(|a| a.offset % 64 == 0));
        assert!(
            info.body_len < 200,
            "body holds only metadata: {}",
            info.body_len
        );
    }
}

#[test]
fn every_dtype_and_rank_round_trips_directly_and_through_serde() {
    fn check<A: jobcache_persist::Element + Serialize + serde::de::DeserializeOwned>(
        f: impl Fn(usize) -> A,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jcp");
        let a2 = Array2::from_shape_fn((4, 3), |(i, j)| f(i * 3 + j));
        save(&path, &a2).unwrap();
        assert_eq!(load::<Array2<A>>(&path).unwrap(), a2);
        assert_eq!(load_array::<A, Ix2>(&path, 0).unwrap(), a2);
        assert_eq!(load::<ArrayD<A>>(&path).unwrap(), a2.clone().into_dyn());
        // ArcArray goes through serde's element-by-element path.
        assert_eq!(load::<ArcArray<A, Ix2>>(&path).unwrap(), a2);
        let info = inspect(&path).unwrap();
        assert_eq!(info.arrays[0].dtype, Some(A::DTYPE));
        assert_eq!(info.arrays[0].shape, vec![4, 3]);
        // A view and a Fortran-order array take the serde path when saved.
        let f_order = {
            let mut f_arr = Array2::from_shape_fn((4, 3).f(), |(i, j)| f(i * 3 + j));
            f_arr.assign(&a2);
            f_arr
        };
        save(&path, &f_order).unwrap();
        assert_eq!(load::<Array2<A>>(&path).unwrap(), a2);
        save(&path, &a2.view()).unwrap();
        assert_eq!(load::<Array2<A>>(&path).unwrap(), a2);
        let a0 = ndarray::arr0(f(5));
        save(&path, &a0).unwrap();
        assert_eq!(load::<Array<A, ndarray::Ix0>>(&path).unwrap(), a0);
    }
    check(|i| i % 2 == 1);
    check(|i| i as i8 - 3);
    check(|i| i as i16 * -300);
    check(|i| i as i32 * -70000);
    check(|i| i as i64 * -(1 << 40));
    check(|i| i as u8);
    check(|i| i as u16 * 1000);
    check(|i| i as u32 * 100000);
    check(|i| i as u64 * (1 << 50));
    check(|i| i as f32 * 0.25);
    check(|i| i as f64 * -1e300);
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Direct {
    #[serde(with = "jobcache_persist::direct")]
    x: Array1<f64>,
    #[serde(with = "jobcache_persist::direct")]
    y: Array2<i32>,
    note: String,
}

#[test]
fn direct_attribute_round_trips_and_is_plain_ndarray_elsewhere() {
    let v = Direct {
        x: Array1::linspace(0.0, 1.0, 11),
        y: array![[1, 2], [3, 4]],
        note: "n".into(),
    };
    let mut ours = Vec::new();
    to_writer(&mut ours, &v).unwrap();
    assert_eq!(from_bytes::<Direct>(&ours).unwrap(), v);
    // The same bytes as without the attribute.
    #[derive(Serialize)]
    struct Plain<'a> {
        x: &'a Array1<f64>,
        y: &'a Array2<i32>,
        note: &'a str,
    }
    let mut plain = Vec::new();
    to_writer(
        &mut plain,
        &Plain {
            x: &v.x,
            y: &v.y,
            note: &v.note,
        },
    )
    .unwrap();
    assert_eq!(ours, plain);
    // Other serializers see ndarray's own form.
    let json = serde_json::to_string(&v).unwrap();
    assert!(json.contains("\"dim\":[11]"), "{json}");
    assert_eq!(serde_json::from_str::<Direct>(&json).unwrap(), v);
}

#[test]
fn writer_and_reader_agree_with_files() {
    let value = sample(3);
    let mut bytes = Vec::new();
    let n = to_writer(&mut bytes, &value).unwrap();
    assert_eq!(n as usize, bytes.len());
    assert_eq!(from_reader::<_, Output>(&bytes[..]).unwrap(), value);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.jcp");
    save(&path, &value).unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "save writes what to_writer writes"
    );
}

#[test]
fn body_is_postcard_when_there_are_no_arrays() {
    #[derive(Serialize)]
    struct NoArrays {
        a: Vec<(String, i64)>,
        b: Option<u16>,
        c: std::collections::BTreeMap<u8, Vec<f32>>,
    }
    let v = NoArrays {
        a: vec![("x".into(), -5), ("y".into(), 1 << 40)],
        b: Some(300),
        c: [(1, vec![1.0, 2.0])].into_iter().collect(),
    };
    let mut bytes = Vec::new();
    to_writer(&mut bytes, &v).unwrap();
    let postcard = postcard::to_allocvec(&v).unwrap();
    assert_eq!(&bytes[64..64 + postcard.len()], &postcard[..]);
}

#[test]
fn mapped_views_are_zero_copy_and_verified_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.jcp");
    let a = Array2::from_shape_fn((100, 30), |(i, j)| (i * 30 + j) as f64);
    save(&path, &a).unwrap();
    // SAFETY: the file is not modified while mapped.
    let m = unsafe { map::<f64, Ix2>(&path) }.unwrap();
    assert_eq!(m.view(), a.view());
    assert_eq!(m.view().as_ptr() as usize % 64, 0);
    m.mapped().verify_arrays().unwrap();
    // SAFETY: as above.
    let err = unsafe { map::<f32, Ix2>(&path) }.unwrap_err();
    assert!(matches!(err, Error::TypeMismatch { .. }), "{err}");
    // SAFETY: as above.
    let err = unsafe { map::<f64, Ix1>(&path) }.unwrap_err();
    assert!(matches!(err, Error::RankMismatch { .. }), "{err}");

    let value = sample(0);
    save(&path, &value).unwrap();
    // SAFETY: as above.
    let m = unsafe { Mapped::open(&path) }.unwrap();
    assert_eq!(m.array::<f64, Ix2>(0).unwrap(), value.weights.view());
    assert_eq!(m.array::<bool, Ix1>(2).unwrap(), value.mask.view());
    assert_eq!(m.load::<Output>().unwrap(), value);
    m.verify_arrays().unwrap();
    // SAFETY: as above.
    let err = unsafe { map::<f64, Ix2>(&path) }.unwrap_err();
    assert!(matches!(err, Error::Unmappable { .. }), "{err}");
}

#[test]
fn mapped_load_detects_corrupt_segments_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.jcp");
    let a = Array1::from_shape_fn(1000, |i| i as f64);
    save(&path, &a).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[64 + 800] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    // SAFETY: the file is not modified while mapped.
    let m = unsafe { map::<f64, Ix1>(&path) }.unwrap();
    let err = m.mapped().verify_arrays().unwrap_err();
    assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err}");
    let err = load::<Array1<f64>>(&path).unwrap_err();
    assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err}");
    let report = verify(&path).unwrap();
    assert!(!report.is_valid());
    assert!(matches!(
        report.arrays[0].checksum,
        ChecksumStatus::Invalid { .. }
    ));
}

#[test]
fn inspect_verify_and_export() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.jcp");
    let value = sample(2);
    save(&path, &value).unwrap();
    let info = inspect(&path).unwrap();
    assert_eq!(info.format, FileFormat::Container { version: 1 });
    assert_eq!(info.metadata, ChecksumStatus::Valid);
    assert!(info
        .arrays
        .iter()
        .all(|a| a.checksum == ChecksumStatus::Unchecked));
    assert_eq!(info.arrays[0].dtype, Some(DType::F64));
    assert_eq!(info.arrays[0].byte_len, 3 * 5 * 8);
    assert_eq!(info.arrays[3].dtype, None, "an empty array of unseen type");
    let full = verify(&path).unwrap();
    assert!(full.is_valid());
    assert!(full
        .arrays
        .iter()
        .all(|a| a.checksum == ChecksumStatus::Valid));

    let out = dir.path().join("w.npy");
    export_npy(&path, 0, &out).unwrap();
    assert_eq!(npy::read::<f64, Ix2>(&out).unwrap(), value.weights);
    let npy_info = inspect(&out).unwrap();
    assert_eq!(npy_info.format, FileFormat::Npy { major: 1, minor: 0 });
    assert_eq!(npy_info.arrays[0].shape, vec![3, 5]);
    assert_eq!(npy_info.arrays[0].checksum, ChecksumStatus::Absent);
    assert!(verify(&out).unwrap().is_valid());
    let err = export_npy(&path, 99, &out).unwrap_err();
    assert!(matches!(err, Error::Malformed { .. }), "{err}");
}

#[test]
fn save_is_atomic_and_leaves_no_temporary_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.jcp");
    save(&path, &sample(1)).unwrap();
    // A map of the old file stays valid while a new one is published.
    // SAFETY: the file is replaced by rename, never modified in place.
    let old = unsafe { Mapped::open(&path) }.unwrap();
    save(&path, &sample(2)).unwrap();
    assert_eq!(old.load::<Output>().unwrap(), sample(1));
    assert_eq!(load::<Output>(&path).unwrap(), sample(2));
    // A failing serialization leaves the old file and no temporary.
    #[derive(Serialize)]
    struct Bad(Array1<String>);
    let err = save(&path, &Bad(Array1::from_elem(2, "s".to_string()))).unwrap_err();
    assert!(matches!(err, Error::Serde { .. }), "{err}");
    assert!(err.to_string().contains("bool, i8-i64"), "{err}");
    assert_eq!(load::<Output>(&path).unwrap(), sample(2));
    let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(entries.len(), 1);
}

fn golden_value() -> Output {
    sample(3)
}

#[test]
fn golden_file_is_stable() {
    let mut bytes = Vec::new();
    to_writer(&mut bytes, &golden_value()).unwrap();
    if std::env::var_os("JOBCACHE_BLESS").is_some() {
        std::fs::write(golden_path(), &bytes).unwrap();
    }
    let golden = std::fs::read(golden_path()).unwrap();
    assert_eq!(
        bytes, golden,
        "the format changed: bump its version (FORMAT.md) before re-blessing"
    );
    assert_eq!(load::<Output>(golden_path()).unwrap(), golden_value());
    assert_eq!(&golden[..8], b"\x89JCPRS\r\n");
    assert_eq!(&golden[golden.len() - 8..], b"JCPRSEND");
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn every_flipped_byte_and_truncation_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = Vec::new();
    to_writer(&mut bytes, &sample(3)).unwrap();
    let path = dir.path().join("f.jcp");
    for i in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[i] ^= 0x10;
        std::fs::write(&path, &bad).unwrap();
        assert!(load::<Output>(&path).is_err(), "flip at {i} undetected");
        assert!(
            from_bytes::<Output>(&bad).is_err(),
            "flip at {i} undetected in memory"
        );
    }
    for cut in (0..bytes.len()).step_by(7) {
        let err = from_bytes::<Output>(&bytes[..cut]).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Truncated { .. } | Error::BadMagic { .. } | Error::Malformed { .. }
            ),
            "cut {cut}: {err}"
        );
    }
}

#[test]
fn specific_errors_for_bad_headers() {
    let dir = tempfile::tempdir().unwrap();
    let mut good = Vec::new();
    to_writer(&mut good, &Array1::from_elem(16, 1.0f64)).unwrap();

    let mut magic = good.clone();
    magic[1] = b'X';
    let err = load::<Array1<f64>>(write(dir.path(), "m", &magic)).unwrap_err();
    assert!(matches!(err, Error::BadMagic { .. }), "{err}");

    let mut future = good.clone();
    future[8] = 3;
    let err = load::<Array1<f64>>(write(dir.path(), "v", &future)).unwrap_err();
    assert!(
        matches!(err, Error::UnsupportedVersion { ref found, .. } if found == "3"),
        "{err}"
    );

    let t = table_offset(&good);
    // A table claiming a 1 TiB array in this small file.
    let mut huge = good.clone();
    huge[t + 8..t + 16].copy_from_slice(&(1u64 << 40).to_le_bytes());
    huge[t + 32..t + 40].copy_from_slice(&(1u64 << 37).to_le_bytes());
    reseal(&mut huge);
    let err = load::<Array1<f64>>(write(dir.path(), "h", &huge)).unwrap_err();
    assert!(matches!(err, Error::Truncated { .. }), "{err}");

    let mut overflow = good.clone();
    overflow[t + 32..t + 40].copy_from_slice(&u64::MAX.to_le_bytes());
    reseal(&mut overflow);
    let err = load::<Array1<f64>>(write(dir.path(), "o", &overflow)).unwrap_err();
    assert!(matches!(err, Error::ShapeOverflow { .. }), "{err}");

    let mut dtype = good.clone();
    dtype[t + 24] = 99;
    reseal(&mut dtype);
    let err = load::<Array1<f64>>(write(dir.path(), "d", &dtype)).unwrap_err();
    assert!(matches!(err, Error::UnknownDtype { .. }), "{err}");

    let mut flipped = good.clone();
    flipped[t] ^= 1;
    let err = load::<Array1<f64>>(write(dir.path(), "c", &flipped)).unwrap_err();
    assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err}");

    let p = write(dir.path(), "g", &good);
    let err = load::<Array1<f32>>(&p).unwrap_err();
    assert!(matches!(err, Error::TypeMismatch { .. }), "{err}");
    let err = load::<Array2<f64>>(&p).unwrap_err();
    assert!(
        matches!(
            err,
            Error::RankMismatch {
                expected: 2,
                found: 1,
                ..
            }
        ),
        "{err}"
    );
    let err = load::<ArcArray<f32, Ix1>>(&p).unwrap_err();
    assert!(matches!(err, Error::TypeMismatch { .. }), "{err}");
    let err = load::<ArcArray<f64, Ix2>>(&p).unwrap_err();
    assert!(matches!(err, Error::RankMismatch { .. }), "{err}");
    let err = load::<Output>(&p).unwrap_err();
    assert!(
        matches!(err, Error::Serde { .. } | Error::TypeMismatch { .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains(&*p.to_string_lossy()),
        "errors name the file: {err}"
    );
    let err = load::<ArrayD<f64>>(dir.path().join("missing")).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    let _ = IxDyn(&[1]);
}

#[test]
fn large_arrays_take_the_parallel_paths() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.jcp");
    let mut a = Array1::from_elem(70 << 20, 3u8);
    for i in (0..a.len()).step_by(4099) {
        a[i] = (i % 251) as u8;
    }
    save(&path, &a).unwrap();
    assert_eq!(load::<Array1<u8>>(&path).unwrap(), a);
    assert!(verify(&path).unwrap().is_valid());
    // SAFETY: the file is replaced, never modified, while mapped.
    unsafe { map::<u8, Ix1>(&path) }.unwrap().verify().unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[64 + (50 << 20)] ^= 4;
    std::fs::write(dir.path().join("bad.jcp"), &bytes).unwrap();
    std::fs::rename(dir.path().join("bad.jcp"), &path).unwrap();
    let err = load::<Array1<u8>>(&path).unwrap_err();
    assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err}");
    // SAFETY: as above.
    let err = unsafe { map::<u8, Ix1>(&path) }
        .unwrap()
        .verify()
        .unwrap_err();
    assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err}");
}

#[test]
fn other_structs_named_array_are_plain_structs() {
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Array {
        x: u32,
        y: String,
        z: Vec<f64>,
    }
    let v = Array {
        x: 3,
        y: "why".into(),
        z: vec![1.0, 2.0],
    };
    let mut bytes = Vec::new();
    to_writer(&mut bytes, &v).unwrap();
    assert_eq!(from_bytes::<Array>(&bytes).unwrap(), v);
}

#[test]
fn load_file_reads_an_open_file_whatever_its_position() {
    use std::io::{Seek, SeekFrom};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("open.jcp");
    let value = (
        String::from("kept"),
        ndarray::Array1::from_elem(5000, 2.5f64),
    );
    jobcache_persist::save(&path, &value).unwrap();
    let mut file = std::fs::File::open(&path).unwrap();
    file.seek(SeekFrom::Start(17)).unwrap();
    let back: (String, ndarray::Array1<f64>) = jobcache_persist::load_file(&file, &path).unwrap();
    assert_eq!(back, value);
}
